"""The role pm_shutdown_stack's templates that decide which nested hypervisors to drain, on a deeper inventory than the lab's.

Rendered by ansible-playbook itself (the role's own lookups), on an inventory of inventory-only hosts:
top runs the guests vm-a and d; a contains b, b contains c. ``looks`` is what look.yml read from nested hypervisors.
"""

from __future__ import annotations

import json

from pmtest.ansible_run import REPO_ROOT, run_playbook

TEMPLATES = REPO_ROOT / "roles" / "pm_shutdown_stack" / "templates"

INVENTORY = {
    "all": {
        "hosts": {
            "top": {"ansible_connection": "local"},
            "a": {"pm_containing_machine": "top", "pm_guest_name": "vm-a"},
            "b": {"pm_containing_machine": "a", "pm_stack_uri": "qemu:///system"},
            "c": {"pm_containing_machine": "b"},
            "d": {"pm_containing_machine": "top", "pm_stack_uri": "qemu:///system"},
        }
    }
}


def _render(tmp_path, first_look, looks=None, inventory_data=None, expect_rc=0):
    inventory = tmp_path / "inventory.json"
    inventory.write_text(json.dumps(inventory_data or INVENTORY))
    play = tmp_path / "play.yml"
    play.write_text(f"""
- hosts: top
  gather_facts: false
  vars:
    pm_shutdown_stack_first_look: {json.dumps(first_look)}
    pm_shutdown_stack_looks: {json.dumps(looks or {})}
  tasks:
    - ansible.builtin.set_fact:
        pm_shutdown_stack_nested: "{{{{ lookup('ansible.builtin.template', '{TEMPLATES}/nested_hypervisors.j2') | trim | from_json }}}}"
    - ansible.builtin.debug:
        msg: "{{{{ {{'nested': pm_shutdown_stack_nested,
                   'off': lookup('ansible.builtin.template', '{TEMPLATES}/nested_off.j2') | trim | from_json}} }}}}"
""")
    run = run_playbook(play, inventory=inventory, timeout=120)
    if expect_rc:
        assert run.rc == expect_rc, run.stdout + run.stderr
        return run
    assert run.rc == 0, run.stdout + run.stderr
    return run.tasks[-1]["result"]["msg"]


def test_nested_hypervisors_are_listed_deepest_first(tmp_path):
    rendered = _render(tmp_path, {"guests_before": []})
    assert rendered["nested"] == ["b", "a", "d"]  # c contains nothing and names no stack: not a hypervisor


def test_a_guest_listed_off_is_skipped_with_every_hypervisor_inside_it(tmp_path):
    rendered = _render(tmp_path, {"guests_before": [{"name": "vm-a", "running": False}, {"name": "d", "running": True}]})
    assert sorted(rendered["off"]) == ["a", "b"]


def test_a_guest_the_stack_does_not_list_or_lists_running_is_drained(tmp_path):
    assert _render(tmp_path, {"guests_before": [{"name": "vm-a", "running": True}]})["off"] == []
    assert _render(tmp_path, {"guests_before": [{"name": "a", "running": False}]})["off"] == []  # listed by its domain name vm-a
    assert _render(tmp_path, {})["off"] == []  # the stack could not be read: try them all


def test_a_deeper_guest_its_containing_machine_lists_off_is_skipped(tmp_path):
    top_runs_a = {"guests_before": [{"name": "vm-a", "running": True}]}
    assert _render(tmp_path, top_runs_a, looks={"a": [{"name": "b", "running": False}]})["off"] == ["b"]
    assert _render(tmp_path, top_runs_a, looks={"a": [{"name": "b", "running": True}]})["off"] == []
    assert _render(tmp_path, top_runs_a, looks={"b": [{"name": "a", "running": False}]})["off"] == []  # only a's listing counts for b


def _chain_inventory(depth, top_parent=None):
    """top contains h1, h1 contains h2, ... h<depth>; every level but the last runs a guest."""
    hosts = {"top": {"ansible_connection": "local"}}
    if top_parent:
        hosts["top"]["pm_containing_machine"] = top_parent
    for n in range(1, depth + 1):
        hosts[f"h{n}"] = {"pm_containing_machine": "top" if n == 1 else f"h{n - 1}"}
    return {"all": {"hosts": hosts}}


def test_ten_levels_deep_every_nested_hypervisor_is_found(tmp_path):
    """The Jinja walk it replaces stopped after 8 levels and left h9 running below a drained h8."""
    rendered = _render(tmp_path, {"guests_before": []}, inventory_data=_chain_inventory(10))
    assert rendered["nested"] == [f"h{n}" for n in range(9, 0, -1)]  # deepest first; h10 contains nothing
    off = _render(tmp_path, {"guests_before": [{"name": "h1", "running": False}]}, inventory_data=_chain_inventory(10))["off"]
    assert sorted(off, key=lambda name: int(name[1:])) == [f"h{n}" for n in range(1, 10)]  # all of it sits inside h1


def test_a_loop_of_containing_machines_fails_with_its_chain(tmp_path):
    run = _render(tmp_path, {"guests_before": []}, inventory_data=_chain_inventory(3, top_parent="h3"), expect_rc=2)
    assert "pm_containing_machine forms a loop (top -> h1 -> h2 -> h3 -> top)" in run.stdout + run.stderr
