"""Role pm_shutdown_stack and the maintenance playbooks on a stack three machines deep.

lab03 is the guest "lab03" of lab02, which is the guest "lab02" of lab01 (pmlab_lib.hypervisor's
nested machines: the VM and the lab machine go down and up together). lab01 also runs "outer",
lab03 runs "deep". Ground truth: virsh run outside the machines, the machines' power state, and
the hypervisor watcher's record of guests that died with their host (must stay empty).
"""

from __future__ import annotations

import json
import os

import pytest

from pmtest.shutdown import run_role, run_stack_playbook, stack_lab

pytestmark = [pytest.mark.lab, pytest.mark.slow, pytest.mark.skipif(os.geteuid() != 0, reason="the lab's namespaces need root")]

GUESTS = {"nested": {"lab02": "lab01", "lab03": "lab02"}, "stop_delay": 0.5,
          "guests": {"lab01": [{"name": "outer", "kind": "honour"}], "lab03": [{"name": "deep", "kind": "honour"}]}}


@pytest.fixture(scope="module")
def lab(tmp_path_factory):
    with stack_lab(tmp_path_factory, "deep", GUESTS) as lab:
        yield lab  # Lab.down() on leaving, also when a test failed


def all_running(lab, hv):
    """The whole stack up, outermost first: each level's machine runs before its guests are started."""
    top = lab.machine("lab01")
    if top.power_state() != "on":
        top.control.call("power", action="on")
    top.wait_os("up", timeout=20)
    for host, guests in (("lab01", ["outer", "lab02"]), ("lab02", ["lab03"]), ("lab03", ["deep"])):
        machine = lab.machine(host)
        hv.start_guests(lab, machine, guests)
        for name in guests:
            if name.startswith("lab"):
                lab.machine(name).wait_os("up", timeout=30)
    return [lab.machine(name) for name in ("lab01", "lab02", "lab03")]


def states(lab, hv):
    return {name: hv.guest_states(lab, lab.machine(name)) for name in ("lab01", "lab02", "lab03")}


def test_the_stack_is_drained_leaves_first_through_every_level(lab, hv, tmp_path, records):
    top, middle, bottom = all_running(lab, hv)
    checked = run_role(lab, "lab01", tmp_path, records, check=True, pm_shutdown_self=False)
    assert checked.rc == 0, checked.stdout[-3000:]
    assert states(lab, hv) == {"lab01": {"outer": "running", "lab02": "running"}, "lab02": {"lab03": "running"},
                               "lab03": {"deep": "running"}} and not records.exists()
    run = run_role(lab, "lab01", tmp_path, records, pm_shutdown_self=False)
    assert run.rc == 0, run.stdout[-3000:]
    assert states(lab, hv) == {"lab01": {"outer": "shut off", "lab02": "shut off"}, "lab02": {"lab03": "shut off"},
                               "lab03": {"deep": "shut off"}}
    assert top.power_state() == "on" and middle.power_state() == "off" and bottom.power_state() == "off"
    assert hv.lost_guests(lab) == []  # nothing died with its host: deep went before lab03, lab03 before lab02
    ran = {host: sorted(json.loads((records / f"{host}.json").read_text())["guests_ran"]) for host in ("lab01", "lab02", "lab03")}
    assert ran == {"lab01": ["lab02", "outer"], "lab02": ["lab03"], "lab03": ["deep"]}


def test_a_deeper_hypervisor_that_is_off_is_skipped_not_contacted(lab, hv, tmp_path, records):
    """lab01 cannot see lab03; lab02 lists it as shut off, so the role must not try to reach it."""
    top, middle, bottom = all_running(lab, hv)
    hv.virsh(lab, bottom, "destroy", "deep")
    hv.virsh(lab, middle, "destroy", "lab03")  # the VM goes, and the lab's machine lab03 with it
    bottom.wait_os("down", timeout=20)
    assert bottom.power_state() == "off" and states(lab, hv)["lab02"] == {"lab03": "shut off"}
    run = run_role(lab, "lab01", tmp_path, records, pm_shutdown_self=False)
    assert run.rc == 0, run.stdout[-3000:]
    assert "skipping: [lab01] => (item=lab03)" in run.stdout and "UNREACHABLE" not in run.stdout, run.stdout[-3000:]
    assert states(lab, hv)["lab01"] == {"outer": "shut off", "lab02": "shut off"} and middle.power_state() == "off"
    assert hv.lost_guests(lab) == []
    assert not (records / "lab02.json").exists() and not (records / "lab03.json").exists()  # nothing ran on either


@pytest.mark.compat
def test_maintenance_of_the_top_machine_alone_brings_back_every_level(lab, hv, tmp_path, records):
    """Only lab01 is targeted: maintenance_exit.yml must still restart what ran inside lab02 and lab03, outermost first."""
    top, middle, bottom = all_running(lab, hv)
    enter = run_stack_playbook(lab, "maintenance_enter.yml", records, pm_target="lab01", pm_maintenance_wol=False, pm_shutdown_timeout=30)
    assert enter.rc == 0, enter.stdout[-3000:]
    assert [m.power_state() for m in (top, middle, bottom)] == ["off", "off", "off"] and hv.lost_guests(lab) == []
    assert sorted(path.name for path in records.iterdir()) == ["lab01.json", "lab02.json", "lab03.json"]

    back = run_stack_playbook(lab, "maintenance_exit.yml", records, pm_target="lab01", pm_maintenance_power="bmc", pm_maintenance_timeout=60)
    assert back.rc == 0, back.stdout[-3000:]
    assert [m.power_state() for m in (top, middle, bottom)] == ["on", "on", "on"]
    assert states(lab, hv) == {"lab01": {"outer": "running", "lab02": "running"}, "lab02": {"lab03": "running"},
                               "lab03": {"deep": "running"}}
    assert list(records.iterdir()) == []  # every record retired
