"""Property-based tests of the hypervisor listing parsers: a result or the collection's own error, never anything else.

Inputs are real recorded listings cut, spliced and sprinkled with noise, plus
well-formed rows with arbitrary names, so both the refusal and the success
paths are exercised.
"""

from __future__ import annotations

from pathlib import Path

from hypothesis import given, settings
from hypothesis import strategies as st

from ansible_collections.ctys.pm.plugins.module_utils import _hypervisors_parse as hp
from ansible_collections.ctys.pm.plugins.module_utils._errors import PmError

CASES = settings(max_examples=10_000, deadline=None)
FIXTURES = Path(__file__).resolve().parents[1] / "unit" / "fixtures"


def lines_of(*names: str):
    return [line for name in names for line in (FIXTURES / name).read_text(encoding="utf-8").splitlines()]


def listing(real_lines):
    """Real lines in any order and number, with noise lines and mangled copies mixed in."""
    noise = st.text(max_size=60)
    mangled = st.tuples(st.sampled_from(real_lines), st.integers(0, 80), noise).map(lambda t: t[0][:t[1]] + t[2])
    return st.lists(st.one_of(st.sampled_from(real_lines), mangled, noise), max_size=25).map("\n".join)


def holds(parser, text, **kwargs):
    try:
        guests = parser(text, **kwargs)
    except PmError as error:
        assert error.msg.strip()
        return None
    for guest in guests:
        assert isinstance(guest.name, str) and isinstance(guest.key, str)
        assert isinstance(guest.running, bool)
        assert guest.result()["state"] == guest.state
    return guests


VIRSH = lines_of("virsh/1.txt", "virsh/3.txt", "virsh/5.txt")
# what a guest may be called: printable, single spaces inside (virsh pads columns with spaces)
NAMES = st.text(alphabet=st.characters(blacklist_categories=("Cc", "Cs", "Zl", "Zp", "Zs")), min_size=1, max_size=12).flatmap(
    lambda first: st.lists(st.text(alphabet=st.characters(blacklist_categories=("Cc", "Cs", "Zl", "Zp", "Zs")), min_size=1, max_size=8),
                           max_size=3).map(lambda rest: " ".join([first] + rest)))


@CASES
@given(listing(VIRSH))
def test_virsh_list_result_or_explanation(text):
    holds(hp.parse_virsh_list, text)


@CASES
@given(st.lists(st.tuples(st.one_of(st.just("-"), st.integers(1, 9999).map(str)), NAMES, st.sampled_from(sorted(hp.VIRSH_STATES))), max_size=8))
def test_virsh_rows_with_any_name_read_back(rows):
    text = " Id   Name   State\n------------\n" + "".join(f" {i}    {n}    {s}\n" for i, n, s in rows)
    guests = holds(hp.parse_virsh_list, text)
    assert guests is not None
    # even a name that holds or ends in a state word keeps the state virsh printed last
    assert [(g.name, g.state) for g in guests] == [(n, hp.VIRSH_STATES[s]) for _i, n, s in rows]


VBOX = lines_of("vboxmanage/1.txt", "vboxmanage/3.txt")


@CASES
@given(listing(VBOX))
def test_vboxmanage_long_result_or_explanation(text):
    holds(hp.parse_vbox_long, text)


@CASES
@given(st.one_of(listing(lines_of("vboxmanage/5.txt")), st.lists(st.tuples(NAMES, st.uuids()), max_size=6).map(
    lambda rows: "\n".join(f'"{n}" {{{u}}}' for n, u in rows))), st.booleans())
def test_vboxmanage_short_result_or_explanation(text, running):
    holds(hp.parse_vbox_list, text, running=running)


@CASES
@given(st.text(max_size=200))
def test_vboxmanage_machinereadable_state_or_explanation(text):
    try:
        state = hp.parse_vbox_machinereadable_state(text)
    except PmError as error:
        assert error.msg
        return
    assert isinstance(state, str) and state


VMRUN = ["Total running VMs: 2", "/Users/general/Virtual Machines.localized/kw01/kw01.vmx", "C:\\VMs\\win 10\\win 10.vmx", "Total running VMs: 0"]


@CASES
@given(listing(VMRUN))
def test_vmrun_list_result_or_explanation(text):
    holds(hp.parse_vmrun_list, text)


XL = lines_of("xl/1.txt", "xl/3.txt")


@CASES
@given(listing(XL))
def test_xl_list_result_or_explanation(text):
    guests = holds(hp.parse_xl_list, text)
    assert guests is None or all(g.key != "0" for g in guests)  # Domain-0, the host, is never a guest


@CASES
@given(st.text(alphabet="rbpscd-x", max_size=8))
def test_xen_state_flags_always_map(flags):
    assert hp.xen_state(flags) in ("dying", "crashed", "shut off", "paused", "idle", "running")


QM = lines_of("qm/1.txt")


@CASES
@given(listing(QM))
def test_qm_list_result_or_explanation(text):
    holds(hp.parse_qm_list, text)


@CASES
@given(st.integers(-5, 20), st.booleans())
def test_libvirt_state_codes_always_map(code, saved):
    state = hp.libvirt_state(code, saved)
    assert state in set(hp.LIBVIRT_STATE_CODES.values()) | {"saved"}
