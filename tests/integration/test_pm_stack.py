"""pm_stack in the lab: real QEMU guests under a session libvirtd on each lab machine.

Guests named "web 1" and "web 2" run a Linux kernel that powers off on the ACPI
button; "legacy db" is firmware only and ignores it (the real refusing guest).
The module runs on lab01 over SSH (virsh there: /usr/bin/python3 has no
libvirt-python) and on the controller through libvirt-python; ground truth comes
from virsh run outside the machine, and from the machine's own power state.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from pmtest.ansible_run import REPO_ROOT, run_module, run_playbook

pytestmark = [pytest.mark.lab, pytest.mark.slow, pytest.mark.skipif(os.geteuid() != 0, reason="the lab's namespaces need root")]

MODULE = "ctys.pm.pm_stack"
WEB = ["web 1", "web 2"]
REFUSING = "legacy db"
GUESTS = {
    "guests": {
        "lab01": [{"name": "web 1", "kind": "honour"}, {"name": "web 2", "kind": "honour"}, {"name": REFUSING, "kind": "refuse"}],
        "lab02": [{"name": "inner", "kind": "honour"}],
    },
    "nested": {"lab02": "lab01"},  # lab02 is also the guest "lab02" of lab01
    "stop_delay": 0.5,
}


@pytest.fixture(scope="module")
def lab(tmp_path_factory):
    from pmlab_lib.lab import Lab

    with Lab.up(machines=2, state="on", bmc=None, boot_delay=0.2, shutdown_delay=0.2, lab_dir=tmp_path_factory.mktemp("stack"),
                hypervisor=GUESTS) as lab:
        yield lab  # Lab.down() on leaving, also when a test failed


def on_lab01(lab, check=False, diff=False, **params):
    params.setdefault("uri", "{{ pm_stack_uri }}")
    return run_module(MODULE, params, hosts="lab01", inventory=lab.inventory_path, netns=lab.controller_netns, check=check, diff=diff).host("lab01")


def running(hv, lab, names, machine="lab01"):
    hv.start_guests(lab, lab.machine(machine), names)


def test_query_lists_every_guest_with_its_real_state(lab, hv):
    running(hv, lab, WEB + [REFUSING])
    result = on_lab01(lab, state="query")
    assert result.get("failed") is not True, result
    assert result["changed"] is False and result["hypervisors"] == ["libvirt"]
    seen = {g["name"]: (g["state"], g["running"]) for g in result["guests"]}
    assert seen == {"web 1": ("running", True), "web 2": ("running", True), REFUSING: ("running", True), "lab02": ("running", True)}


def test_graceful_stop_of_the_guests_that_honour_shutdown(lab, hv):
    running(hv, lab, WEB + [REFUSING])
    result = on_lab01(lab, state="stopped", include=["web*"], timeout=60)
    assert result.get("failed") is not True, result
    assert sorted(result["stopped"]) == WEB and result["forced"] == [] and result["remaining"] == []
    states = hv.guest_states(lab, lab.machine("lab01"))
    assert states["web 1"] == states["web 2"] == "shut off"
    assert states[REFUSING] == "running" and states["lab02"] == "running"  # not selected: untouched


def test_refusing_guest_without_force_fails_naming_it_and_the_host_stays_up(lab, hv):
    running(hv, lab, [REFUSING, "web 1"])
    result = on_lab01(lab, state="stopped", names=[REFUSING, "web 1"], timeout=3)
    assert result["failed"] is True
    assert f"'{REFUSING}' (libvirt, running)" in result["msg"] and "force: true" in result["msg"]
    assert result["stopped"] == ["web 1"] and result["remaining"] == [{"name": REFUSING, "hypervisor": "libvirt", "state": "running"}]
    m = lab.machine("lab01")
    assert hv.guest_states(lab, m)[REFUSING] == "running"  # not destroyed
    assert m.power_state() == "on" and lab.ssh(m, "hostname").stdout.strip() == "lab01"


def test_force_destroys_the_refusing_guest_after_the_timeout(lab, hv):
    running(hv, lab, [REFUSING, "web 2"])
    result = on_lab01(lab, state="stopped", names=[REFUSING, "web 2"], timeout=2, force=True)
    assert result.get("failed") is not True, result
    assert result["stopped"] == ["web 2"] and result["forced"] == [REFUSING] and result["remaining"] == []
    assert hv.guest_states(lab, lab.machine("lab01"))[REFUSING] == "shut off"


def test_check_mode_reports_and_changes_nothing(lab, hv):
    running(hv, lab, WEB + [REFUSING])
    result = on_lab01(lab, check=True, diff=True, state="stopped", exclude=["lab02"])
    assert result["changed"] is True and sorted(result["would_stop"]) == sorted(WEB + [REFUSING])
    assert "libvirt/legacy db: running" in result["diff"]["before"] and "libvirt/legacy db: shut off" in result["diff"]["after"]
    assert all(hv.guest_states(lab, lab.machine("lab01"))[name] == "running" for name in WEB + [REFUSING])


@pytest.mark.compat
def test_four_steps_check_apply_check_apply(lab, hv):
    running(hv, lab, WEB)
    steps = [on_lab01(lab, check=check, state="stopped", include=["web*"], timeout=60) for check in (True, False, True, False)]
    assert [s.get("failed") for s in steps] == [None] * 4, steps
    assert [s["changed"] for s in steps] == [True, True, False, False]
    assert sorted(steps[1]["stopped"]) == WEB and steps[3]["stopped"] == []


def test_saved_and_started_again(lab, hv):
    running(hv, lab, ["web 1"])
    saved = on_lab01(lab, state="saved", names=["web 1"], timeout=60)
    assert saved.get("failed") is not True, saved
    assert saved["saved"] == ["web 1"]
    m = lab.machine("lab01")
    assert "saved" in hv.virsh(lab, m, "list", "--all", "--managed-save").stdout
    started = on_lab01(lab, state="started", names=["web 1"], timeout=60)
    assert started.get("failed") is not True, started
    assert started["started"] == ["web 1"] and hv.guest_states(lab, m)["web 1"] == "running"
    again = on_lab01(lab, state="started", names=["web 1"])
    assert again["changed"] is False


def test_controller_side_through_libvirt_python(lab, hv):
    """The same module on the controller, local connection, .venv python: libvirt-python, not virsh."""
    m = lab.machine("lab01")
    running(hv, lab, ["web 2"])
    result = run_module(MODULE, {"state": "stopped", "uri": hv.uri(lab, m), "names": ["web 2"], "timeout": 60})
    assert result.result.get("failed") is not True, result.result
    assert result.result["stopped"] == ["web 2"] and hv.guest_states(lab, m)["web 2"] == "shut off"


def test_stopping_a_nested_hypervisor_guest_takes_that_machine_down(lab, hv):
    """lab02 is the guest "lab02" of lab01: drained first (nothing lost), then stopped on lab01."""
    outer, inner = lab.machine("lab01"), lab.machine("lab02")
    assert inner.power_state() == "on"
    running(hv, lab, ["inner"], machine="lab02")
    drained = run_module(MODULE, {"state": "stopped", "uri": "{{ pm_stack_uri }}", "timeout": 60}, hosts="lab02",
                         inventory=lab.inventory_path, netns=lab.controller_netns).host("lab02")
    assert drained.get("failed") is not True, drained
    assert drained["stopped"] == ["inner"]
    result = on_lab01(lab, state="stopped", names=["lab02"], timeout=60)
    assert result.get("failed") is not True, result
    assert result["stopped"] == ["lab02"]
    inner.wait_os("down", timeout=10)
    assert inner.power_state() == "off" and outer.power_state() == "on"
    assert [entry["guest"] for entry in hv.lost_guests(lab)] == []  # leaves first: nothing died with its host


def test_ansible_test_target(lab, hv, tmp_path):
    running(hv, lab, WEB)
    play = tmp_path / "target.yml"
    play.write_text("- hosts: lab01\n  gather_facts: false\n  roles:\n    - pm_stack\n")
    run = run_playbook(play, inventory=lab.inventory_path, netns=lab.controller_netns,
                       env={"ANSIBLE_ROLES_PATH": str(Path(REPO_ROOT) / "tests" / "integration" / "targets")})
    assert run.rc == 0, run.stdout[-3000:] + run.stderr[-2000:]
    assert "failed=0" in run.stdout
