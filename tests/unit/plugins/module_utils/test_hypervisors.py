"""Guest listings of every hypervisor, read from real recorded outputs; commands checked at the argv seam."""

from __future__ import annotations

from pathlib import Path
from typing import Dict, List, Tuple

import pytest

from ansible_collections.ctys.pm.plugins.module_utils import _hypervisors as hv
from ansible_collections.ctys.pm.plugins.module_utils._errors import PmConnectionError, PmError, PmInputError, PmUnsupportedError
from ansible_collections.ctys.pm.plugins.module_utils._hypervisors_parse import (
    parse_qm_list,
    parse_vbox_list,
    parse_vbox_long,
    parse_vbox_machinereadable_state,
    parse_virsh_list,
    parse_vmrun_list,
    parse_xl_list,
)

FIXTURES = Path(__file__).resolve().parents[3] / "unit" / "fixtures"

# vmrun has no recorded fixture file yet: this is `vmrun list` as printed by VMware Fusion on macOS
# (vmrun 1.17), a path with spaces and non-ASCII characters; shape as in VMware's vmrun documentation.
VMRUN_LIST = (
    "Total running VMs: 2\n"
    "/Users/general/Virtual Machines.localized/CentOS 7 64 \u4f4d.vmwarevm/CentOS 7 64 \u4f4d.vmx\n"
    "/Users/general/Virtual Machines.localized/kw01/kw01.vmx\n"
)


def fixture(name: str) -> str:
    return (FIXTURES / name).read_text(encoding="utf-8")


def states(guests) -> Dict[str, str]:
    return {g.name: g.state for g in guests}


# ----- parsers on real outputs ------------------------------------------------------
def test_virsh_list_running_paused_and_shut_off():
    guests = parse_virsh_list(fixture("virsh/1.txt"))
    assert len(guests) == 13
    assert states(guests)["rhel7.4"] == "running" and states(guests)["rhel7.0"] == "paused"
    assert [g.name for g in guests if g.running] == ["rhel7.4", "rhel7.0"]  # a paused guest still holds its memory
    assert {g.id for g in guests if not g.running} == {None}
    assert guests[0].id == "2" and guests[0].key == "rhel7.4"


def test_virsh_list_header_only_is_no_guest():
    assert parse_virsh_list(fixture("virsh/3.txt")) == []


def test_virsh_name_overflowing_its_column_still_reads():
    (guest,) = parse_virsh_list(fixture("virsh/5.txt"))
    assert (guest.name, guest.state, guest.id) == ("Debian_Squeeze_64_bits", "running", "6")


def test_virsh_names_with_spaces_and_state_words():
    # the real header and rule of virsh/1.txt, with rows whose names hold spaces and state words
    head = "\n".join(fixture("virsh/1.txt").splitlines()[:2])
    text = (head + "\n 7     web server 1                   running\n -     my running vm                  shut off\n"
            " -     db                             saved\n")
    guests = parse_virsh_list(text)
    assert states(guests) == {"web server 1": "running", "my running vm": "shut off", "db": "saved"}
    assert not guests[2].running


def test_vboxmanage_long_list_skips_usb_filters_and_snapshots():
    guests = parse_vbox_long(fixture("vboxmanage/1.txt"))
    assert len(guests) == 9  # "Name:" lines of USB filters and snapshots are not VMs
    assert guests[0].name == "Fusion-UsineRefav" and guests[0].key == "03a37b40-31f0-4c10-8a92-472d02b02221"
    assert set(states(guests).values()) == {"shut off"} and guests[0].raw_state == "powered off"


def test_vboxmanage_long_list_names_with_colons_and_accents():
    names = [g.name for g in parse_vbox_long(fixture("vboxmanage/3.txt"))]
    assert "Node 4 : CentOS" in names and "Debian Ma\u00eetre - Squeeze" in names and len(names) == 6


def test_vboxmanage_running_state_and_inaccessible_entry():
    text = fixture("vboxmanage/3.txt").replace("State:           powered off (since 2012-04-01T15:33:47.000000000)",
                                               "State:           running (since 2012-04-01T15:33:47.000000000)", 1)
    running = [g.name for g in parse_vbox_long(text) if g.running]
    assert len(running) == 1
    (entry,) = parse_vbox_list(fixture("vboxmanage/5.txt"))
    assert entry.state == "inaccessible" and not entry.running and entry.key == "dd5682a8-7e9b-45eb-a097-db98e5d3d1f7"


def test_vboxmanage_short_list_of_running_vms():
    guests = parse_vbox_list('"Node 4 : CentOS" {677daaa1-3e7a-441a-91be-449e02c82dd0}\n', running=True)
    assert states(guests) == {"Node 4 : CentOS": "running"}


def test_vboxmanage_machinereadable_state():
    assert parse_vbox_machinereadable_state('name="a b"\nVMState="saved"\n') == "saved"
    with pytest.raises(PmUnsupportedError):
        parse_vbox_machinereadable_state('name="a"\n')


def test_vmrun_list_names_from_vmx_paths():
    guests = parse_vmrun_list(VMRUN_LIST)
    assert [g.name for g in guests] == ["CentOS 7 64 \u4f4d", "kw01"] and all(g.running for g in guests)
    assert guests[1].key == "/Users/general/Virtual Machines.localized/kw01/kw01.vmx"
    assert parse_vmrun_list("Total running VMs: 0\n") == []


def test_vmrun_count_mismatch_is_reported():
    with pytest.raises(PmUnsupportedError, match="announced 3"):
        parse_vmrun_list(VMRUN_LIST.replace("2", "3", 1))


def test_xl_list_leaves_out_domain0():
    guests = parse_xl_list(fixture("xl/1.txt"))
    assert [(g.name, g.key, g.state) for g in guests] == [("vm1", "4", "idle"), ("vm2", "11", "idle")]


def test_xm_list_runnable_domains_are_running():
    assert states(parse_xl_list(fixture("xl/3.txt"))) == {
        "Fedora3": "running", "Fedora4": "running", "Mandrake2006": "idle", "Mandrake10.2": "running", "Suse9.2": "running"}


def test_xl_flags_shut_down_crashed_paused():
    text = fixture("xl/1.txt").replace("-b----  1415311.0", "---s--  1415311.0").replace("-b----  175634.0", "--p---  175634.0")
    assert states(parse_xl_list(text)) == {"vm1": "shut off", "vm2": "paused"}


def test_qm_list_name_with_space_and_states():
    guests = parse_qm_list(fixture("qm/1.txt"))
    assert states(guests)["VM 104"] == "shut off" and states(guests)["PBS"] == "running"
    assert [g.key for g in guests][:3] == ["102", "104", "190"]
    assert sum(g.running for g in guests) == 6


@pytest.mark.parametrize("parser,text", [
    (parse_virsh_list, "error: failed to connect to the hypervisor\n"),
    (parse_virsh_list, " Id Name State\n--\n 1 onlyname\n"),
    (parse_vbox_long, "garbage line\n"),
    (parse_vbox_list, "not quoted {x}\n"),
    (parse_xl_list, "Name ID\nvm1 4 x\n"),
    (parse_qm_list, "VMID NAME\nabc def\n"),
    (parse_vmrun_list, "Error: Cannot connect to the virtual machine\n"),
])
def test_unreadable_output_is_explained(parser, text):
    with pytest.raises(PmUnsupportedError, match="cannot read"):
        parser(text)


# ----- backends at the command seam --------------------------------------------------
class FakeCommands(hv.Commands):
    """Answers argv lists from a table; records every call."""

    def __init__(self, answers: Dict[Tuple[str, ...], Tuple[int, str, str]], programs=("virsh",)) -> None:
        self.answers = answers
        self.calls: List[List[str]] = []
        self.programs = programs
        super().__init__(self._answer, lambda name: f"/usr/bin/{name}" if name in self.programs else None)

    def _answer(self, argv: List[str]) -> Tuple[int, str, str]:
        self.calls.append(argv)
        key = tuple(argv)
        if key in self.answers:
            return self.answers[key]
        return 0, "", ""


def no_libvirt_python():
    return None


def test_virsh_backend_commands_and_uri():
    uri = "qemu+unix:///session?socket=/run/x/libvirt-sock"
    commands = FakeCommands({("/usr/bin/virsh", "-c", uri, "list", "--all", "--managed-save"): (0, fixture("virsh/1.txt"), "")})
    found, notes = hv.discover(commands, uri=uri, libvirt_loader=no_libvirt_python)
    (backend, guests), = found
    assert backend.name == "libvirt" and len(guests) == 13 and notes == []
    paused = next(g for g in guests if g.state == "paused")
    backend.shutdown(guests[0], 10)
    backend.destroy(guests[0])
    backend.save(guests[0])
    backend.start(paused)
    assert commands.calls[1:] == [
        ["/usr/bin/virsh", "-c", uri, "shutdown", "--domain", "rhel7.4"],
        ["/usr/bin/virsh", "-c", uri, "destroy", "--domain", "rhel7.4"],
        ["/usr/bin/virsh", "-c", uri, "managedsave", "--domain", "rhel7.4"],
        ["/usr/bin/virsh", "-c", uri, "resume", "--domain", "rhel7.0"],
    ]


def test_virsh_failure_names_the_guest_and_the_reason():
    commands = FakeCommands({("/usr/bin/virsh", "destroy", "--domain", "rhel7.4"): (1, "", "error: Requested operation is not valid\n")})
    backend = hv.Virsh(commands, "/usr/bin/virsh", None)
    guest = parse_virsh_list(fixture("virsh/1.txt"))[0]
    with pytest.raises(PmConnectionError, match="virsh destroy of 'rhel7.4' failed \\(rc=1\\): error: Requested operation is not valid"):
        backend.destroy(guest)


def test_unreachable_default_libvirt_is_skipped_but_an_explicit_uri_fails():
    answers = {("/usr/bin/virsh", "list", "--all", "--managed-save"): (1, "", "error: failed to connect to the hypervisor\n")}
    found, notes = hv.discover(FakeCommands(answers), libvirt_loader=no_libvirt_python)
    assert found == [] and notes and "libvirt skipped" in notes[0]
    answers = {("/usr/bin/virsh", "-c", "qemu:///system", "list", "--all", "--managed-save"): (1, "", "error: failed to connect\n")}
    with pytest.raises(PmConnectionError, match="failed to connect"):
        hv.discover(FakeCommands(answers), uri="qemu:///system", libvirt_loader=no_libvirt_python)


def test_every_hypervisor_present_is_found():
    programs = ("virsh", "VBoxManage", "vmrun", "xl", "qm")
    answers = {
        ("/usr/bin/virsh", "list", "--all", "--managed-save"): (0, fixture("virsh/5.txt"), ""),
        ("/usr/bin/VBoxManage", "list", "--long", "vms"): (0, fixture("vboxmanage/3.txt"), ""),
        ("/usr/bin/vmrun", "list"): (0, VMRUN_LIST, ""),
        ("/usr/bin/xl", "list"): (0, fixture("xl/1.txt"), ""),
        ("/usr/bin/qm", "list"): (0, fixture("qm/1.txt"), ""),
    }
    found, _notes = hv.discover(FakeCommands(answers, programs), libvirt_loader=no_libvirt_python)
    assert [(b.name, len(g)) for b, g in found] == [("libvirt", 1), ("virtualbox", 6), ("vmware", 2), ("xen", 2), ("proxmox", 8)]
    only, _notes = hv.discover(FakeCommands(answers, programs), wanted=["xen"], libvirt_loader=no_libvirt_python)
    assert [b.name for b, _g in only] == ["xen"]


def test_asking_for_a_missing_hypervisor_fails_clearly():
    with pytest.raises(PmUnsupportedError, match="virtualbox was asked for but VBoxManage is not installed"):
        hv.discover(FakeCommands({}, programs=()), wanted=["virtualbox"], libvirt_loader=no_libvirt_python)
    with pytest.raises(PmInputError, match="hypervisors 'kvm' is not valid"):
        hv.discover(FakeCommands({}), wanted=["kvm"], libvirt_loader=no_libvirt_python)


VBOX_UUID = "ab6afdd6-aa78-4a22-8fc9-02b471c9084c"  # "Debian Ma\u00eetre - Squeeze" in vboxmanage/3.txt
KW01 = "/Users/general/Virtual Machines.localized/kw01/kw01.vmx"


@pytest.mark.parametrize("backend_class,program,guests,expected", [
    (hv.VBoxManage, "VBoxManage", lambda: parse_vbox_long(fixture("vboxmanage/3.txt")),
     [["controlvm", VBOX_UUID, "acpipowerbutton"], ["controlvm", VBOX_UUID, "poweroff"], ["controlvm", VBOX_UUID, "savestate"],
      ["startvm", VBOX_UUID, "--type", "headless"]]),
    (hv.Vmrun, "vmrun", lambda: parse_vmrun_list(VMRUN_LIST),
     [["stop", KW01, "soft"], ["stop", KW01, "hard"], ["suspend", KW01, "soft"], ["start", KW01, "nogui"]]),
    (hv.Qm, "qm", lambda: parse_qm_list(fixture("qm/1.txt")),
     [["shutdown", "834", "--timeout", "42"], ["stop", "834"], ["suspend", "834", "--todisk", "1"], ["start", "834"]]),
])
def test_cli_backends_address_guests_by_their_stable_key(backend_class, program, guests, expected):
    guest = guests()[-1]
    commands = FakeCommands({}, programs=(program,))
    backend = backend_class(commands, f"/usr/bin/{program}")
    backend.shutdown(guest, 42.0)
    backend.destroy(guest)
    backend.save(guest)
    backend.start(guest)
    assert commands.calls == [[f"/usr/bin/{program}"] + argv for argv in expected]


def test_xen_cannot_save_or_start_a_stopped_domain():
    commands = FakeCommands({}, programs=("xl",))
    backend = hv.Xl(commands, "/usr/bin/xl")
    guest = parse_xl_list(fixture("xl/1.txt"))[0]
    assert backend.can_save is False
    with pytest.raises(PmUnsupportedError, match="cannot save"):
        backend.save(guest)
    backend.shutdown(guest, 5)
    assert commands.calls == [["/usr/bin/xl", "shutdown", "4"]]


# ----- libvirt-python against libvirt's own test driver (real library, no daemon) ------------
libvirt = pytest.importorskip("libvirt")


def test_libvirt_api_lists_and_controls_the_test_driver():
    found, _notes = hv.discover(FakeCommands({}, programs=()), uri="test:///default")
    (backend, guests), = found
    assert isinstance(backend, hv.LibvirtApi)
    (guest,) = guests
    assert (guest.name, guest.state, guest.id) == ("test", "running", "1")
    backend.save(guest)
    assert backend.list()[0].state == "saved"
    backend.start(guest)
    assert backend.list()[0].state == "running"
    backend.shutdown(guest, 5)
    assert backend.list()[0].state == "shut off"


def test_libvirt_api_unreachable_uri_is_a_connection_error():
    with pytest.raises(PmError, match="libvirt connection to test:///nonexistent/node.xml failed"):
        hv.discover(FakeCommands({}, programs=()), uri="test:///nonexistent/node.xml")
