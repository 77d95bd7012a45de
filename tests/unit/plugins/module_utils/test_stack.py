"""pm_stack's control flow: ask all at once, poll the real state, force or fail naming the guest.

Two seams only: the hypervisor tool's argv (answered from the real ``qm list`` and
``xl list`` recordings, with the state words changed as the guests change), and
libvirt-python against libvirt's own test driver (a real library, no daemon).
Time is a fake clock that the waits advance, so no test sleeps through a timeout.
"""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Dict, List, Optional, Tuple

import pytest

from ansible_collections.ctys.pm.plugins.module_utils import _stack
from ansible_collections.ctys.pm.plugins.module_utils._errors import PmInputError, PmStateError
from ansible_collections.ctys.pm.plugins.module_utils._hypervisors import Commands
from ansible_collections.ctys.pm.plugins.module_utils._hypervisors_parse import parse_qm_list, parse_xl_list

FIXTURES = Path(__file__).resolve().parents[3] / "unit" / "fixtures"
QM_RUNNING = ["190", "191", "831", "832", "833", "834"]  # running in qm/1.txt


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0
        self.lock = threading.Lock()

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        with self.lock:
            self.now += seconds


class FakeProxmox:
    """``qm`` on a Proxmox host: guests stop ``stop_after`` seconds after ``qm shutdown`` (None: the guest refuses)."""

    def __init__(self, clock: Clock, stop_after: Dict[str, Optional[float]], destroy_refused=(), failing=()) -> None:
        self.clock = clock
        self.text = (FIXTURES / "qm" / "1.txt").read_text()
        self.status = {g.key: g.raw_state for g in parse_qm_list(self.text)}
        self.stop_after = stop_after
        self.destroy_refused = set(destroy_refused)
        self.failing = set(failing)
        self.off_at: Dict[str, float] = {}
        self.calls: List[Tuple[float, List[str]]] = []
        self.lock = threading.Lock()
        self.commands = Commands(self.answer, lambda name: "/usr/sbin/qm" if name == "qm" else None)

    def render(self) -> str:
        lines = self.text.splitlines()
        out = [lines[0]]
        for line in lines[1:]:
            vmid = line.split()[0]
            old = line.split()[-4]
            out.append(line.replace(f" {old} ", f" {self.status[vmid]} ", 1))  # same width: running / stopped
        return "\n".join(out) + "\n"

    def answer(self, argv: List[str]) -> Tuple[int, str, str]:
        with self.lock:
            self.calls.append((self.clock(), argv))
            verb = argv[1]
            for vmid, when in list(self.off_at.items()):
                if self.clock() >= when:
                    self.status[vmid] = "stopped"
                    del self.off_at[vmid]
            if verb == "list":
                return 0, self.render(), ""
            vmid = argv[2]
            if vmid in self.failing:
                return 2, "", f"trying to acquire lock...\ncan't lock file '/var/lock/qemu-server/lock-{vmid}.conf' - got timeout\n"
            if verb == "shutdown":
                delay = self.stop_after.get(vmid)
                if delay is not None:
                    self.off_at[vmid] = self.clock() + delay
            elif verb == "stop" and vmid not in self.destroy_refused:
                self.status[vmid] = "stopped"
            elif verb == "suspend":
                self.status[vmid] = "stopped"
            elif verb == "start":
                self.status[vmid] = "running"
            return 0, "", ""

    def verbs(self, verb: str) -> List[str]:
        return sorted(argv[2] for _t, argv in self.calls if argv[1] == verb)


def run(fake, clock: Clock, check_mode=False, diff=False, **params):
    params.setdefault("state", "stopped")
    params.setdefault("timeout", 60)
    return _stack.run(params, fake.commands, check_mode=check_mode, diff=diff, libvirt_loader=lambda: None, clock=clock, sleeper=clock.sleep)


def test_all_guests_are_asked_at_once_and_reported_stopped_when_off():
    clock = Clock()
    fake = FakeProxmox(clock, {vmid: 2.0 + i for i, vmid in enumerate(QM_RUNNING)})
    result = run(fake, clock)
    assert sorted(result["stopped"]) == sorted(["W25S", "BNW-W25S-PG", "PVET1", "PVET2", "PVET3", "PBS"])
    assert result["changed"] is True and result["forced"] == [] and result["remaining"] == []
    # every shutdown request went out before the second look at the real state
    second_list = [i for i, (_t, argv) in enumerate(fake.calls) if argv[1] == "list"][1]
    assert fake.verbs("shutdown") == sorted(QM_RUNNING)
    assert all(argv[1] != "shutdown" for _t, argv in fake.calls[second_list:])
    assert {g["name"]: g["state"] for g in result["guests"]}["PBS"] == "shut off"
    assert len(result["guests_before"]) == 8 and sum(g["running"] for g in result["guests_before"]) == 6


def test_a_refusing_guest_without_force_fails_naming_it_and_is_not_destroyed():
    clock = Clock()
    fake = FakeProxmox(clock, {"190": 1.0, "834": None})
    with pytest.raises(PmStateError) as caught:
        run(fake, clock, include=["W25S", "PBS"], timeout=10)
    error = caught.value
    assert error.msg.startswith("1 guest(s) still run after timeout 10 s: 'PBS' (proxmox, running)")
    assert "force: true" in error.msg
    assert error.result["stopped"] == ["W25S"] and error.result["remaining"] == [{"name": "PBS", "hypervisor": "proxmox", "state": "running"}]
    assert fake.verbs("stop") == [] and fake.status["834"] == "running"


def test_force_destroys_only_after_the_timeout():
    clock = Clock()
    fake = FakeProxmox(clock, {"190": 1.0, "834": None})
    start = clock()
    result = run(fake, clock, include=["W25S", "PBS"], timeout=10, force=True)
    assert result["stopped"] == ["W25S"] and result["forced"] == ["PBS"] and result["remaining"] == []
    (stop_time,) = [t for t, argv in fake.calls if argv[1] == "stop"]
    assert stop_time - start >= 10  # destroyed no earlier than the timeout
    assert fake.status["834"] == "stopped"


def test_a_guest_the_hypervisor_cannot_destroy_remains_and_fails():
    clock = Clock()
    fake = FakeProxmox(clock, {"834": None}, destroy_refused={"834"})
    with pytest.raises(PmStateError, match="still run after being destroyed: 'PBS' \\(proxmox, running\\)") as caught:
        run(fake, clock, names=["PBS"], timeout=5, force=True)
    assert caught.value.result["forced"] == [] and caught.value.result["remaining"][0]["name"] == "PBS"


def test_a_failed_request_is_named_with_the_hypervisors_words():
    clock = Clock()
    fake = FakeProxmox(clock, {"834": 1.0, "833": 1.0}, failing={"833"})
    with pytest.raises(PmStateError) as caught:
        run(fake, clock, include=["PBS", "PVET3"], timeout=5)
    assert "'PVET3' (proxmox, running) [qm shutdown of 'PVET3' failed (rc=2): trying to acquire lock...]" in caught.value.msg
    assert caught.value.result["stopped"] == ["PBS"]
    assert caught.value.result["request_errors"][0]["name"] == "PVET3"


def test_check_mode_reports_what_would_stop_and_touches_nothing():
    clock = Clock()
    fake = FakeProxmox(clock, {vmid: 1.0 for vmid in QM_RUNNING})
    result = run(fake, clock, check_mode=True, diff=True, exclude=["PVET*"])
    assert result["changed"] is True and sorted(result["would_stop"]) == ["BNW-W25S-PG", "PBS", "W25S"]
    assert fake.verbs("shutdown") == [] and result["stopped"] == []
    assert "proxmox/PBS: running\n" in result["diff"]["before"] and "proxmox/PBS: shut off\n" in result["diff"]["after"]
    assert "proxmox/PVET1" not in result["diff"]["before"]


def test_four_steps_check_apply_check_apply():
    clock = Clock()
    fake = FakeProxmox(clock, {vmid: 0.5 for vmid in QM_RUNNING})
    assert run(fake, clock, check_mode=True)["changed"] is True
    assert run(fake, clock)["changed"] is True
    again = run(fake, clock, check_mode=True)
    assert again["changed"] is False and again["would_stop"] == []
    last = run(fake, clock)
    assert last["changed"] is False and last["stopped"] == []
    assert len(fake.verbs("shutdown")) == 6  # only the first apply asked


def test_saved_suspends_to_disk_where_the_hypervisor_can():
    clock = Clock()
    fake = FakeProxmox(clock, {})
    result = run(fake, clock, state="saved", names=["PBS"])
    assert result["saved"] == ["PBS"] and fake.verbs("suspend") == ["834"]


def test_started_brings_back_named_guests_and_refuses_unknown_names():
    clock = Clock()
    fake = FakeProxmox(clock, {})
    result = run(fake, clock, state="started", names=["VM 104", "Rocky"])
    assert sorted(result["started"]) == ["Rocky", "VM 104"] and fake.verbs("start") == ["102", "104"]
    assert run(fake, clock, state="started", names=["VM 104"])["changed"] is False
    with pytest.raises(PmStateError, match="guest\\(s\\) 'VM 105' not found on this host"):
        run(fake, clock, state="started", names=["VM 105"])


def test_query_changes_nothing():
    clock = Clock()
    fake = FakeProxmox(clock, {})
    result = run(fake, clock, state="query")
    assert result["changed"] is False and result["hypervisors"] == ["proxmox"]
    assert [g["name"] for g in result["guests"]][:2] == ["Rocky", "VM 104"]
    assert [argv[1] for _t, argv in fake.calls] == ["list"]


@pytest.mark.parametrize("params,message", [
    ({"state": "halted"}, "state 'halted' is not valid"),
    ({"timeout": 0}, "timeout '0' is not valid"),
    ({"include": [""]}, "include '' is not valid"),
    ({"names": []}, "names is empty"),
])
def test_bad_options_are_one_sentence(params, message):
    clock = Clock()
    with pytest.raises(PmInputError, match=message):
        run(FakeProxmox(clock, {}), clock, **params)


class FakeXen:
    """``xl``: a domain that shuts down leaves the listing (the real xl/1.txt, rows removed)."""

    def __init__(self) -> None:
        self.lines = (FIXTURES / "xl" / "1.txt").read_text().splitlines()
        self.calls: List[List[str]] = []
        self.commands = Commands(self.answer, lambda name: "/usr/sbin/xl" if name == "xl" else None)

    def answer(self, argv: List[str]) -> Tuple[int, str, str]:
        self.calls.append(argv)
        if argv[1] == "list":
            return 0, "\n".join(self.lines) + "\n", ""
        if argv[1] in ("shutdown", "destroy"):
            self.lines = [line for line in self.lines if line.split()[1] != argv[2]]
        return 0, "", ""


def test_xen_cannot_save_so_it_shuts_down_and_says_so():
    clock = Clock()
    fake = FakeXen()
    result = _stack.run({"state": "saved", "timeout": 30}, fake.commands, libvirt_loader=lambda: None, clock=clock, sleeper=clock.sleep)
    assert sorted(result["stopped"]) == ["vm1", "vm2"] and result["saved"] == []
    assert result["warnings"] == [
        "xen cannot save guests to disk; 'vm1' is shut down instead", "xen cannot save guests to disk; 'vm2' is shut down instead"]
    assert ["/usr/sbin/xl", "shutdown", "4"] in fake.calls
    assert all(g["state"] == "shut off" for g in result["guests"])
    assert not any(argv[2:] == ["0"] for argv in fake.calls)  # Domain-0 is the host: never asked
    assert parse_xl_list("\n".join(fake.lines)) == []


# ----- the real libvirt library, test driver ------------------------------------------------
libvirt = pytest.importorskip("libvirt")

NODE = """<node>
{domains}
</node>
"""
DOMAIN = """  <domain type='test' xmlns:test='http://libvirt.org/schemas/domain/test/1.0'>
    <name>{name}</name>
    <memory>8192</memory>
    <os><type>hvm</type></os>
    <test:runstate>{runstate}</test:runstate>
  </domain>"""


@pytest.fixture
def node(tmp_path):
    guests = [("web server 1", 1), ("db 2", 1), ("paused one", 3), ("old", 5)]
    path = tmp_path / "node.xml"
    path.write_text(NODE.format(domains="\n".join(DOMAIN.format(name=n, runstate=s) for n, s in guests)))
    return f"test://{path}"


def run_libvirt(uri, check_mode=False, **params):
    params.setdefault("timeout", 10)
    commands = Commands(lambda argv: (127, "", "not expected"), lambda name: None)
    return _stack.run(dict(params, uri=uri), commands, check_mode=check_mode)


def test_libvirt_query_lists_names_with_spaces_and_real_states(node):
    result = run_libvirt(node, state="query")
    assert {g["name"]: g["state"] for g in result["guests"]} == {"web server 1": "running", "db 2": "running", "paused one": "paused", "old": "shut off"}
    assert result["hypervisors"] == ["libvirt"]


def test_libvirt_stopped_with_patterns(node):
    result = run_libvirt(node, state="stopped", include=["*"], exclude=["db*"])
    assert sorted(result["stopped"]) == ["paused one", "web server 1"]
    assert {g["name"]: g["state"] for g in result["guests"]} == {"web server 1": "shut off", "paused one": "shut off", "old": "shut off"}
