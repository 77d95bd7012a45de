"""The filter ctys.pm.stack_levels: the pm_containing_machine walk of role pm_shutdown_stack, at any depth."""

from __future__ import annotations

import pytest
from ansible.errors import AnsibleFilterError

from ansible_collections.ctys.pm.plugins.filter.stack_levels import FilterModule

stack_levels = FilterModule().filters()["stack_levels"]


def chain(depth: int, top: str = "top") -> dict:
    """top contains h1, h1 contains h2, ... down to h<depth>."""
    return {f"h{n}": (top if n == 1 else f"h{n - 1}") for n in range(1, depth + 1)}


def test_levels_in_input_order():
    parents = {"a": "top", "b": "a", "c": "b", "d": "top", "x": "elsewhere", "y": "", "top": None}
    assert stack_levels(parents, "top") == [["a", "d"], ["b"], ["c"]]
    assert stack_levels(parents, "b") == [["c"]]
    assert stack_levels(parents, "c") == []
    assert stack_levels({}, "top") == []


def test_ten_levels_deep_every_level_is_returned():
    levels = stack_levels(chain(10), "top")
    assert levels == [[f"h{n}"] for n in range(1, 11)]  # the Jinja walk it replaces stopped after 8


def test_deeper_than_max_depth_fails_naming_the_chain():
    assert len(stack_levels(chain(32), "top")) == 32  # the default limit itself is accepted
    with pytest.raises(AnsibleFilterError, match=r"nested deeper than max_depth 32 \(top -> h1 -> .* -> h33\)"):
        stack_levels(chain(33), "top")
    with pytest.raises(AnsibleFilterError, match=r"deeper than max_depth 9 \(top -> h1 -> h2 .* -> h10\); raise max_depth"):
        stack_levels(chain(10), "top", max_depth=9)


def test_a_loop_fails_naming_it():
    looped = {**chain(3), "top": "h3"}
    with pytest.raises(AnsibleFilterError, match=r"forms a loop \(top -> h1 -> h2 -> h3 -> top\)"):
        stack_levels(looped, "top")
    with pytest.raises(AnsibleFilterError, match=r"forms a loop \(top -> top\)"):
        stack_levels({"top": "top"}, "top")
    # a loop elsewhere in the inventory is not below this machine: not its business
    assert stack_levels({"a": "top", "p": "q", "q": "p"}, "top") == [["a"]]


@pytest.mark.parametrize(
    "args, message",
    [
        ((["a"], "top"), "the input is a list, not a dictionary"),
        (({}, ""), "top '' is not a host name"),
        (({}, "top", 0), "max_depth '0' is not a positive whole number"),
        (({}, "top", True), "max_depth 'True' is not a positive whole number"),
    ],
)
def test_bad_arguments_are_named(args, message):
    with pytest.raises(AnsibleFilterError, match=message):
        stack_levels(*args)
