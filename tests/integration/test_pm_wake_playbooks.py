"""playbooks/wake.yml and the ansible-test target pm_wake, run by ansible-playbook against the lab."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from pmtest.ansible_run import REPO_ROOT, run_playbook

pytestmark = [pytest.mark.lab, pytest.mark.skipif(os.geteuid() != 0, reason="the lab's namespaces need root")]


@pytest.fixture(scope="module")
def lab(tmp_path_factory):
    from pmlab_lib.lab import Lab

    with Lab.up(machines=3, state="off", bmc="lab", boot_delay=0.3, shutdown_delay=0.2, lab_dir=tmp_path_factory.mktemp("wakeplay")) as lab:
        yield lab  # Lab.down() on leaving, also when a test failed


def all_off(lab):
    for machine in lab.machines:
        machine.control.call("power", action="off")
    for machine in lab.machines:
        machine.wait_os("down")


@pytest.mark.compat
@pytest.mark.parametrize("raw", [False, True], ids=["udp-broadcast", "raw-0x0842"])
def test_wake_playbook_wakes_the_group_and_ssh_answers(lab, raw):
    all_off(lab)
    before = [len(m.control.call("wol_log")["packets"]) for m in lab.machines]
    run = run_playbook(REPO_ROOT / "playbooks" / "wake.yml", inventory=lab.inventory_path, netns=lab.controller_netns,
                       extra_vars={"pm_wake_timeout": 30, "pm_wake_raw": raw})
    assert run.rc == 0, run.stdout[-3000:] + run.stderr[-2000:]
    for machine, seen in zip(lab.machines, before):
        assert machine.control.status()["power"] == "on"
        assert lab.ssh(machine, "hostname").stdout.strip() == machine.name
        forms = {packet["form"] for packet in machine.control.call("wol_log")["packets"][seen:]}
        assert forms == ({"ether"} if raw else {"udp"}), forms
    all_off(lab)


def test_ansible_test_target_four_steps(lab, tmp_path):
    all_off(lab)
    play = tmp_path / "target.yml"
    play.write_text("- hosts: pm_lab\n  gather_facts: false\n  roles:\n    - pm_wake\n")
    run = run_playbook(play, inventory=lab.inventory_path, netns=lab.controller_netns,
                       env={"ANSIBLE_ROLES_PATH": str(Path(REPO_ROOT) / "tests" / "integration" / "targets")})
    assert run.rc == 0, run.stdout[-3000:] + run.stderr[-2000:]
    assert "failed=0" in run.stdout and run.stdout.count("ok=") == len(lab.machines)
    assert all(m.control.status()["power"] == "on" for m in lab.machines)
    all_off(lab)


def test_raw_wake_without_a_sending_interface_stops_before_sending(tmp_path):
    # pm_wol_interface (the machine's own NIC) must not be taken for the interface frames leave from
    inventory = tmp_path / "hosts.yml"
    inventory.write_text(json.dumps({"all": {"hosts": {"m1": {
        "ansible_host": "127.0.0.1", "ansible_connection": "local", "pm_mac": "02:00:00:00:00:01", "pm_wol_interface": "eno1"}}}}))
    run = run_playbook(REPO_ROOT / "playbooks" / "wake.yml", inventory=inventory, extra_vars={"pm_wake_raw": True, "pm_wake_timeout": 1})
    assert run.rc != 0
    assert "pm_wake_raw=true needs pm_wake_interface, the interface of the sending host (localhost)" in run.stdout
    assert "Send magic packets" not in run.stdout
