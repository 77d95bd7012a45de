"""Role pm_shutdown_stack and the maintenance playbooks in the lab.

Real QEMU guests under a session libvirtd on the lab machines (see
pmlab_lib.hypervisor): "web 1", "web 2", "app" and "inner" run a Linux kernel
that powers off on the ACPI button; "legacy" is firmware only and ignores it.
lab02 is itself the guest "lab02" of lab01 (nested). Ground truth: virsh run
outside the machines, the machines' own power state, and the hypervisor
watcher's record of guests that died because their host lost power
(``lost_guests``: must stay empty, that is the promise). The BMCs have their
Redfish face too and the inventory says ``pm_bmc_protocol: redfish``; the BMC
fallback also runs over IPMI.
"""

from __future__ import annotations

import json
import os
import re

import pytest

from pmtest.redfish_lab import sessions
from pmtest.shutdown import run_role, run_stack_playbook, stack_lab

pytestmark = [pytest.mark.lab, pytest.mark.slow, pytest.mark.skipif(os.geteuid() != 0, reason="the lab's namespaces need root")]

GUESTS = {
    "guests": {
        "lab01": [{"name": "web 1", "kind": "honour"}, {"name": "web 2", "kind": "honour"}],
        "lab02": [{"name": "inner", "kind": "honour"}],
        "lab03": [{"name": "app", "kind": "honour"}, {"name": "legacy", "kind": "refuse"}],
    },
    "nested": {"lab02": "lab01"},
    "stop_delay": 0.5,
}


@pytest.fixture(scope="module")
def lab(tmp_path_factory):
    with stack_lab(tmp_path_factory, "shutdown", GUESTS, redfish=True) as lab:
        yield lab  # Lab.down() on leaving, also when a test failed


def powered(lab, name):
    machine = lab.machine(name)
    if machine.power_state() != "on":
        machine.control.call("power", action="on")
    machine.wait_os("up", timeout=20)
    machine.control.call("configure", os_shutdown="honour")
    return machine


def lost(hv, lab, host):
    return [entry for entry in hv.lost_guests(lab) if entry.get("machine") == host]


def test_check_mode_changes_nothing(lab, hv, tmp_path, records):
    m = powered(lab, "lab03")
    hv.start_guests(lab, m, ["app", "legacy"])
    run = run_role(lab, "lab03", tmp_path, records, check=True, pm_shutdown_self=True)
    assert run.rc == 0, run.stdout[-3000:]
    assert hv.guest_states(lab, m) == {"app": "running", "legacy": "running"}
    assert m.power_state() == "on" and not records.exists()


def test_a_refusing_guest_without_force_keeps_the_host_up_and_names_the_guest(lab, hv, tmp_path, records):
    m = powered(lab, "lab03")
    hv.start_guests(lab, m, ["app", "legacy"])
    run = run_role(lab, "lab03", tmp_path, records, pm_shutdown_self=True, pm_shutdown_timeout=3)
    assert run.rc != 0
    assert "legacy" in run.stdout and "force" in run.stdout
    states = hv.guest_states(lab, m)
    assert states["legacy"] == "running" and states["app"] == "shut off"  # the willing guest did stop
    assert m.power_state() == "on" and lab.ssh(m, "true").returncode == 0


def test_self_false_empties_the_host_and_leaves_it_running(lab, hv, tmp_path, records):
    m = powered(lab, "lab03")
    hv.start_guests(lab, m, ["app"])
    run = run_role(lab, "lab03", tmp_path, records, pm_shutdown_self=False, pm_shutdown_exclude=["legacy"], pm_shutdown_force=False)
    assert run.rc == 0, run.stdout[-3000:]
    assert hv.guest_states(lab, m)["app"] == "shut off" and m.power_state() == "on"
    assert json.loads((records / "lab03.json").read_text())["guests_ran"] == ["app"]


def test_force_destroys_the_refusing_guest_after_the_timeout_then_the_host_goes_off(lab, hv, tmp_path, records):
    m = powered(lab, "lab03")
    hv.start_guests(lab, m, ["app", "legacy"])
    run = run_role(lab, "lab03", tmp_path, records, pm_shutdown_self=True, pm_shutdown_force=True, pm_shutdown_timeout=3)
    assert run.rc == 0, run.stdout[-3000:]
    assert m.power_state() == "off"
    assert lost(hv, lab, "lab03") == [], "a guest was still running when the host lost power"
    assert sorted(json.loads((records / "lab03.json").read_text())["guests_ran"]) == ["app", "legacy"]


def bmc_tasks(run):
    """The pm_power tasks the role (or playbook) ran: [(task name without the role's, protocol used, power state)]."""
    return [(t["task"].split(" : ")[-1], t["result"].get("protocol"), t["result"].get("power_state"))
            for t in run.tasks if t["action"].endswith(".pm_power") and t["status"] != "skipped"]


# The lab's inventory says pm_bmc_protocol: redfish; the IPMI face of the same BMC listens on 623 (namespaces).
BMC_VARIABLES = {"redfish": {}, "ipmi": {"pm_bmc_protocol": "ipmi", "pm_bmc_port": 623}}


@pytest.mark.parametrize("protocol", sorted(BMC_VARIABLES))
def test_os_that_ignores_the_shutdown_is_taken_down_through_the_bmc(lab, hv, tmp_path, records, protocol):
    m = powered(lab, "lab03")
    m.control.call("configure", os_shutdown="ignore")
    run = run_role(lab, "lab03", tmp_path, records, pm_shutdown_self=True, pm_shutdown_timeout=3, **BMC_VARIABLES[protocol])
    assert run.rc == 0, run.stdout[-3000:]
    assert bmc_tasks(run) == [("Ask the BMC for a soft off (ACPI)", protocol, "off"), ("Verify the host is off through its BMC", protocol, "off")]
    assert m.power_state() == "off"
    assert lab.ipmitool(m, "chassis", "power", "status").stdout.strip().endswith("off")
    assert sessions(lab, m) == [], "each BMC task logs out: a BMC with a 4-session limit must never fill up"


def test_wake_on_lan_is_armed_before_poweroff_or_the_host_stays_up(lab, hv, tmp_path, records):
    """The lab's NICs are veths, which have no Wake-on-LAN register: arming must fail, and then nothing goes down."""
    m = powered(lab, "lab03")
    run = run_role(lab, "lab03", tmp_path, records, pm_shutdown_self=True, pm_shutdown_wol=True, pm_wol_prepare_interface="eth0")
    assert run.rc != 0
    assert "veth" in run.stdout, run.stdout[-3000:]
    assert m.power_state() == "on" and lab.ssh(m, "true").returncode == 0


@pytest.mark.compat
def test_shutdown_playbook_keeps_a_host_with_a_refusing_guest_up_until_forced(lab, hv, tmp_path, records):
    m = powered(lab, "lab03")
    hv.start_guests(lab, m, ["app", "legacy"])
    refused = run_stack_playbook(lab, "shutdown.yml", records, pm_target="lab03", pm_shutdown_timeout=3)
    assert refused.rc != 0 and "legacy" in refused.stdout and "force" in refused.stdout, refused.stdout[-3000:]
    assert hv.guest_states(lab, m)["legacy"] == "running" and m.power_state() == "on"

    forced = run_stack_playbook(lab, "shutdown.yml", records, pm_target="lab03", pm_shutdown_timeout=3, pm_shutdown_force=True)
    assert forced.rc == 0, forced.stdout[-3000:]
    assert m.power_state() == "off" and lost(hv, lab, "lab03") == []


@pytest.mark.compat
def test_maintenance_round_trip_drains_the_nested_hypervisor_first_and_starts_again_what_ran(lab, hv, tmp_path, records):
    outer, inner = powered(lab, "lab01"), powered(lab, "lab02")
    hv.start_guests(lab, outer, ["web 1", "web 2"])
    hv.start_guests(lab, inner, ["inner"])
    # both are targeted; lab02 runs on lab01, so it must be drained through lab01, not taken down on its own
    run = run_stack_playbook(lab, "maintenance_enter.yml", records, pm_target="lab01:lab02", pm_maintenance_wol=False, pm_shutdown_timeout=30)
    assert run.rc == 0, run.stdout[-3000:]
    drain_play = run.stdout[run.stdout.index("PLAY [Drain, arm Wake-on-LAN and power off]"):run.stdout.index("PLAY RECAP")]
    assert "[lab02]" not in drain_play, drain_play[-3000:]
    assert drain_play.index("Drain nested hypervisors") < drain_play.index("Stop every guest of this host")
    assert inner.power_state() == "off" and outer.power_state() == "off"
    assert lost(hv, lab, "lab01") == [] and lost(hv, lab, "lab02") == [], hv.lost_guests(lab)
    assert sorted(json.loads((records / "lab01.json").read_text())["guests_ran"]) == ["lab02", "web 1", "web 2"]
    assert json.loads((records / "lab02.json").read_text())["guests_ran"] == ["inner"]

    # the way back: wake lab01, start what ran, including the nested machine and its guest
    back = run_stack_playbook(lab, "maintenance_exit.yml", records, pm_target="lab01:lab02", pm_maintenance_timeout=60)
    assert back.rc == 0, back.stdout[-3000:]
    assert outer.power_state() == "on" and inner.power_state() == "on"
    assert hv.guest_states(lab, outer) == {"web 1": "running", "web 2": "running", "lab02": "running"}
    assert hv.guest_states(lab, inner) == {"inner": "running"}
    assert not (records / "lab01.json").exists() and not (records / "lab02.json").exists()


def test_a_nested_hypervisor_that_is_off_is_skipped_not_contacted(lab, hv, tmp_path, records):
    """lab01 lists its guest lab02 as shut off: nothing runs inside it, so the role must not try to reach it."""
    outer, nested = powered(lab, "lab01"), lab.machine("lab02")
    if nested.power_state() == "on":
        if hv.guest_states(lab, nested).get("inner") == "running":
            hv.virsh(lab, nested, "destroy", "inner")
        hv.virsh(lab, outer, "destroy", "lab02")  # the VM goes, and the lab's machine lab02 with it
    nested.wait_os("down", timeout=20)
    assert hv.guest_states(lab, outer)["lab02"] == "shut off" and nested.power_state() == "off"
    hv.start_guests(lab, outer, ["web 1"])
    run = run_role(lab, "lab01", tmp_path, records, pm_shutdown_self=False)
    assert run.rc == 0, run.stdout[-3000:]
    assert "skipping: [lab01] => (item=lab02)" in run.stdout and "UNREACHABLE" not in run.stdout, run.stdout[-3000:]
    assert hv.guest_states(lab, outer)["web 1"] == "shut off" and outer.power_state() == "on"
    ran = json.loads((records / "lab01.json").read_text())["guests_ran"]
    assert "web 1" in ran and "lab02" not in ran and not (records / "lab02.json").exists()


def test_reboot_with_saved_guests_then_maintenance_exit_through_the_bmc_restores_them(lab, hv, tmp_path, records):
    """Save works without the guest's help ("legacy" ignores ACPI); reboot brings the host back; exit restores both."""
    m = powered(lab, "lab03")
    hv.start_guests(lab, m, ["app", "legacy"])
    m.control.call("configure", boot_delay=3)  # a reboot SSH can be seen to leave (the lab's default is 0.3 s)
    try:
        changes = m.control.status()["power_changes"]
        run = run_role(lab, "lab03", tmp_path, records, pm_shutdown_self=True, pm_shutdown_method="reboot", pm_shutdown_guest_action="save")
        assert run.rc == 0 and "...ignoring" not in run.stdout, run.stdout[-3000:]
        assert m.power_state() == "on" and m.control.status()["power_changes"] == changes + 2  # off, then on: one reboot
        assert lab.ssh(m, "hostname").stdout.strip() == "lab03"
    finally:
        m.control.call("configure", boot_delay=0.3)
    assert hv.guest_states(lab, m) == {"app": "shut off", "legacy": "shut off"}
    for guest in ("app", "legacy"):
        assert re.search(r"^Managed save:\s+yes$", hv.virsh(lab, m, "dominfo", "--domain", guest).stdout, re.M), guest
    record = json.loads((records / "lab03.json").read_text())
    assert record["saved"] is True and sorted(record["guests_ran"]) == ["app", "legacy"]
    assert lost(hv, lab, "lab03") == []

    m.control.call("power", action="off")  # nothing runs on it: safe to cut
    back = run_stack_playbook(lab, "maintenance_exit.yml", records, pm_target="lab03", pm_maintenance_power="bmc", pm_maintenance_timeout=60)
    assert back.rc == 0, back.stdout[-3000:]
    assert bmc_tasks(back) == [("Power on through the BMC", "redfish", "on")] and sessions(lab, m) == []  # as the inventory says
    assert lab.ipmitool(m, "chassis", "power", "status").stdout.strip().endswith("on")
    assert hv.guest_states(lab, m) == {"app": "running", "legacy": "running"}
    assert not (records / "lab03.json").exists()


def test_logged_in_users_are_warned_the_delay_ahead_of_the_shutdown(lab, hv, tmp_path, records):
    m = powered(lab, "lab03")
    for name, state in hv.guest_states(lab, m).items():
        if state == "running":
            hv.virsh(lab, m, "destroy", "--domain", name)
    seen = len(m.control.call("os_log")["entries"])
    run = run_role(lab, "lab03", tmp_path, records, pm_shutdown_self=True, pm_shutdown_delay=2)
    assert run.rc == 0, run.stdout[-3000:]
    wall, poweroff = m.control.call("os_log")["entries"][seen:]  # what the machine's own commands were asked, in order
    assert wall["command"] == "wall" and wall["message"] == "ctys.pm: this machine goes down (poweroff) in 2 seconds for maintenance"
    assert poweroff["command"] == "poweroff" and poweroff["t"] - wall["t"] >= 2
    assert m.power_state() == "off"
