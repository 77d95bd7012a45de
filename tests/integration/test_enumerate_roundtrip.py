"""Round trip in the lab: enumerate running machines with playbooks/enumerate.yml, power them off,
rebuild the inventory from the written enum.fdb/macmap.fdb with the ctys.pm.ctys plugin, and wake
every machine by name with ctys.pm.pm_wake (MAC looked up in the written macmap.fdb, broadcast
taken from the rebuilt inventory).  Ground truth: the machines' own power state and SSH."""

from __future__ import annotations

import json
import os
import subprocess
import time
from pathlib import Path

import pytest

from pmtest.ansible_run import REPO_ROOT, VENV_BIN, ansible_env, run_module, run_playbook, without_unsafe_markers

pytestmark = [pytest.mark.lab, pytest.mark.skipif(os.geteuid() != 0, reason="the lab's namespaces need root")]

PLAYBOOK = REPO_ROOT / "playbooks" / "enumerate.yml"


@pytest.fixture(scope="module")
def lab(tmp_path_factory):
    from pmlab_lib.lab import Lab

    with Lab.up(machines=3, state="on", bmc=None, boot_delay=0.3, shutdown_delay=0.2, lab_dir=tmp_path_factory.mktemp("enumerate")) as lab:
        yield lab  # Lab.down() on leaving, also when a test failed


def _inventory(config: Path):
    proc = subprocess.run([str(VENV_BIN / "ansible-inventory"), "-i", str(config), "--list"], env=ansible_env(), capture_output=True,
                          text=True, timeout=120, check=False)
    assert proc.returncode == 0, proc.stderr
    assert "ctys inventory:" not in proc.stderr, proc.stderr  # the files enumerate.yml writes are clean
    return without_unsafe_markers(json.loads(proc.stdout))


def _wait_power(machine, wanted, timeout=10.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if machine.power_state() == wanted:
            return
        time.sleep(0.05)
    raise AssertionError(f"{machine.name} is {machine.power_state()}, not {wanted}")


@pytest.mark.compat
def test_enumerate_power_off_rebuild_inventory_wake_by_name(lab, tmp_path):
    db = tmp_path / "db"
    run = run_playbook(PLAYBOOK, inventory=lab.inventory_path, extra_vars={"ctys_db": str(db), "ctys_category": "PM"},
                       netns=lab.controller_netns)
    assert run.rc == 0, run.stdout + run.stderr
    enum_lines = (db / "enum.fdb").read_text().splitlines()
    macmap_lines = (db / "macmap.fdb").read_text().splitlines()
    for m in lab.machines:
        mine = [line.split(";") for line in enum_lines if line.split(";")[2] == m.name]
        assert mine and all(len(fields) == 47 for fields in mine), enum_lines
        v4 = [fields for fields in mine if fields[6] == m.ip]
        assert v4 and v4[0][5] == m.mac.upper() and v4[0][0] == m.name and v4[0][1] == "PM" and v4[0][32] == "eth0"
        assert v4[0][34] == "255.255.0.0" and v4[0][26] == str(m.ssh_port)
        assert f"{m.name};{m.mac.upper()};{m.ip};" in macmap_lines
    assert enum_lines == sorted(set(enum_lines))

    # the machines go dark
    for m in lab.machines:
        m.control.call("power", action="off")
    for m in lab.machines:
        _wait_power(m, "off")
        assert lab.ssh(m, "true", timeout=10).returncode != 0

    # the inventory comes back from the files alone
    config = tmp_path / "lab.ctys.yml"
    config.write_text(f"plugin: ctys.pm.ctys\ndb_paths: [{db}]\ngroups_paths: []\n")
    inventory = _inventory(config)
    hostvars = inventory["_meta"]["hostvars"]
    assert sorted(inventory["ctys_pm"]["hosts"]) == [m.name for m in lab.machines]
    for m in lab.machines:
        hv = hostvars[m.name]
        assert (hv["ansible_host"], hv["pm_mac"], hv["pm_wol_broadcast"]) == (m.ip, m.mac, "198.18.255.255")
        assert hv["ansible_port"] == m.ssh_port and hv["pm_category"] == "PM"

    # wake each by name: pm_wake looks the MAC up in the written macmap.fdb
    for m in lab.machines:
        result = run_module(
            "ctys.pm.pm_wake",
            {"name": m.name, "macmap": str(db / "macmap.fdb"), "ethers": str(tmp_path / "no-ethers"),
             "broadcast": hostvars[m.name]["pm_wol_broadcast"], "port": m.wol_port, "host": hostvars[m.name]["ansible_host"],
             "poll": "tcp", "poll_port": hostvars[m.name]["ansible_port"], "wait_timeout": 20},
            netns=lab.controller_netns,
        ).result
        assert result.get("failed") is not True, result
        assert result["macs"] == [m.mac] and result["reachable"] is True
    for m in lab.machines:
        assert m.power_state() == "on"
        assert lab.ssh(m, "hostname").stdout.strip() == m.name


def test_pm_info_writes_pm_conf_idempotently_on_a_lab_machine(lab, tmp_path):
    m = lab.machines[0]
    if m.power_state() != "on":
        m.control.call("power", action="on")
        m.wait_os("up", timeout=10)
    path = f"{m.state_dir}/ctys.d/pm.conf"
    args = {"label": m.name, "category": "PM", "write_config": path}
    steps = []
    for check in (True, False, True, False):
        steps.append(run_module("ctys.pm.pm_info", args, hosts=m.name, inventory=lab.inventory_path, netns=lab.controller_netns,
                                check=check, diff=True).result)
        if len(steps) == 1:
            assert not os.path.exists(path), "check mode wrote the file"
    assert [s.get("failed") for s in steps] == [None] * 4, steps
    assert [s["changed"] for s in steps] == [True, True, False, False]
    text = Path(path).read_text()
    assert '#@#MAGICID-Linux' in text and f'#@#LABEL           = "{m.name}"' in text
    assert f'#@#MAC0             = "{m.mac.upper()}"' in text and f"{m.ip}%255.255.0.0%%eth0%{m.ssh_port}%" in text
    assert steps[1]["diff"]["before"] == "" and steps[1]["diff"]["after"] == text
    iface = next(i for i in steps[1]["machine"]["interfaces"] if i["ifname"] == "eth0")
    assert iface["mac"] == m.mac.upper() and iface["wol"] == {"supported": "", "enabled": "", "capable": False, "source": "ioctl"}  # veth: no WoL
    assert steps[1]["machine"]["hostname"] == m.name
