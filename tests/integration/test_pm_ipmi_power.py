"""pm_ipmi_power against the lab's BMCs, checked by ipmitool and by the machine itself."""

from __future__ import annotations

import json
import os
import subprocess
import time

import pytest

from pmtest.ansible_run import REPO_ROOT, run_module, run_playbook

pytestmark = [pytest.mark.lab, pytest.mark.skipif(os.geteuid() != 0, reason="the lab's namespaces need root")]

MODULE = "ctys.pm.pm_ipmi_power"


@pytest.fixture(scope="module", params=["lab", "ipmi_sim"])
def lab(request, tmp_path_factory):
    from pmlab_lib.lab import Lab

    with Lab.up(machines=3, state="off", bmc=request.param, boot_delay=0.2, shutdown_delay=0.2,
                lab_dir=tmp_path_factory.mktemp(f"power-{request.param}")) as lab:
        yield lab  # Lab.down() on leaving, also when a test failed


def power(lab, machine, **args):
    params = {"bmc": machine.bmc_host, "port": machine.bmc_port, "user": machine.bmc_user, "password": machine.bmc_password, "timeout": 30}
    params.update(args)
    check = params.pop("_check", False)
    return run_module(MODULE, params, netns=lab.controller_netns, check=check, diff=True)


def ipmitool_power(lab, machine):
    return lab.ipmitool(machine, "chassis", "power", "status").stdout.strip().rsplit(" ", 1)[-1]


def four_steps(lab, machine, state, expect_after):
    """check mode, apply, check mode again, apply again."""
    before = machine.power_state()
    check = power(lab, machine, state=state, _check=True).result
    assert check.get("failed") is not True, check
    assert check["changed"] is True and check["power_state_before"] == before
    assert machine.power_state() == before, "check mode must not change the machine"
    applied = power(lab, machine, state=state).result
    assert applied["changed"] is True and applied["power_state"] == expect_after, applied
    assert ipmitool_power(lab, machine) == expect_after
    assert machine.power_state() == expect_after
    again = power(lab, machine, state=state, _check=True).result
    assert again["changed"] is False
    final = power(lab, machine, state=state).result
    assert final["changed"] is False and final["power_state"] == expect_after
    return applied


@pytest.mark.compat
def test_on_then_off_four_steps_with_ssh_as_witness(lab):
    m = lab.machines[0]
    applied = four_steps(lab, m, "on", "on")
    assert applied["diff"]["before"]["power_state"] == "off" and applied["diff"]["after"]["power_state"] == "on"
    m.wait_os("up")
    assert lab.ssh(m, "hostname").stdout.strip() == m.name
    four_steps(lab, m, "off", "off")
    result = lab.ssh(m, "true")
    assert result.returncode == 255 and "refused" in result.stderr


def test_soft_off_waits_for_the_os(lab):
    m = lab.machines[1]
    power(lab, m, state="on")
    m.wait_os("up")
    four_steps(lab, m, "soft", "off")


def test_soft_off_that_the_os_ignores_times_out_clearly(lab):
    m = lab.machines[1]
    power(lab, m, state="on")
    m.control.call("configure", acpi="ignore")
    try:
        result = power(lab, m, state="soft", timeout=1.5).result
        assert result["failed"] is True
        assert "did not reach power state 'off' within the timeout" in result["msg"]
        assert "still reports 'on' (the OS may ignore the ACPI request" in result["msg"]
        assert m.power_state() == "on"
    finally:
        m.control.call("configure", acpi="honour")
        power(lab, m, state="off")


def test_reset_and_cycle_need_a_running_machine_and_boot_does_both(lab):
    m = lab.machines[2]
    assert m.power_state() == "off"
    for state in ("reset", "cycle"):
        result = power(lab, m, state=state).result
        assert result["failed"] is True
        assert result["msg"] == f"state '{state}' needs a running machine and this one is off; use state: boot to power on or reset"
    booted = power(lab, m, state="boot").result
    assert booted["changed"] is True and booted["power_state_before"] == "off" and booted["power_state"] == "on"
    changes = m.control.status()["power_changes"]
    rebooted = power(lab, m, state="boot").result
    assert rebooted["changed"] is True and rebooted["power_state"] == "on"
    assert m.control.status()["power_changes"] > changes, "a boot of a running machine resets it"
    for state in ("reset", "cycle"):
        changes = m.control.status()["power_changes"]
        result = power(lab, m, state=state).result
        assert result["changed"] is True and result["power_state"] == "on"
        assert m.control.status()["power_changes"] >= changes + 2
    power(lab, m, state="off")


def test_pxe_once_then_power_on_in_one_task(lab):
    m = lab.machines[2]
    params = {"boot_device": "network", "boot_mode": "uefi", "state": "on"}
    check = power(lab, m, _check=True, **params).result
    assert check["changed"] is True and "Force PXE" not in lab.ipmitool(m, "chassis", "bootparam", "get", "5").stdout
    result = power(lab, m, **params).result
    assert result["boot_device"] == {"device": "network", "persistent": False, "mode": "uefi"}
    assert result["power_state"] == "on" and m.power_state() == "on"
    if m.bmc_kind == "lab":  # the lab machine records which device it booted from
        assert "boot device network" in (m.state_dir / "machine.log").read_text() or m.control.status()["boot_device"] == "default"
    power(lab, m, state="off")
    if m.bmc_kind == "ipmi_sim":
        # ipmi_sim keeps the device selector but drops the boot-flags valid bit
        # (bootparam data reads back 00 08), so a persistent setting cannot be read back there
        return
    persistent = {"boot_device": "hd", "boot_persistent": True, "state": "query"}
    first = power(lab, m, **persistent).result
    assert first["changed"] is True
    bootparam = lab.ipmitool(m, "chassis", "bootparam", "get", "5").stdout
    assert "Hard-Drive" in bootparam and "all future boots" in bootparam
    second = power(lab, m, **persistent).result
    assert second["changed"] is False
    power(lab, m, boot_device="default")


def test_query_never_changes_anything(lab):
    m = lab.machines[0]
    changes = m.control.status()["power_changes"]
    result = power(lab, m).result
    assert result["changed"] is False and result["power_state"] == ipmitool_power(lab, m)
    assert m.control.status()["power_changes"] == changes


def test_wrong_password_fails_at_once_naming_user_and_host(lab):
    m = lab.machines[0]
    result = power(lab, m, password="not-the-password").result
    assert result["failed"] is True
    assert result["msg"].startswith(f"the BMC at {m.bmc_host}:{m.bmc_port} refused the password of user 'admin'")
    assert result["elapsed"] < 10 if "elapsed" in result else True


def test_unknown_user_fails_naming_the_user(lab):
    m = lab.machines[0]
    result = power(lab, m, user="nobody").result
    assert result["failed"] is True
    assert "nobody" in result["msg"] and f"{m.bmc_host}:{m.bmc_port}" in result["msg"]


def test_privilege_too_low_for_power_control(lab):
    m = lab.machines[0]
    result = power(lab, m, user="viewer", privilege="user", state="on").result
    assert result["failed"] is True
    assert "privilege 'user'" in result["msg"] and "viewer" in result["msg"]
    assert m.power_state() == "off"
    status = power(lab, m, user="viewer", privilege="user").result
    assert status["power_state"] == "off"


def test_unreachable_port_fails_within_connect_timeout(lab):
    m = lab.machines[0]
    result = power(lab, m, port=6999, connect_timeout=1.5).result
    assert result["failed"] is True
    assert result["msg"].startswith(f"the BMC at {m.bmc_host}:6999 did not complete login within 1.5 s")


def test_bad_values_are_named(lab):
    m = lab.machines[0]
    result = power(lab, m, cipher_suite="0").result  # pyghmi cannot negotiate suite 0: not offered
    assert result["failed"] is True and "cipher_suite" in result["msg"] and "auto, 3, 17" in result["msg"], result["msg"]
    targets = [{"bmc": m.bmc_host, "port": m.bmc_port, "password": m.bmc_password, "cipher_suite": "16"}]
    result = run_module(MODULE, {"user": "admin", "targets": targets}, netns=lab.controller_netns).result
    assert result["msg"] == "cipher_suite '16' is not valid; use auto, 3 or 17, the suites pyghmi negotiates (it offers no other)"
    result = power(lab, m, port=70000).result
    assert result["msg"].startswith("port '70000' is outside 1..65535")
    result = power(lab, m, boot_persistent=True).result
    assert result["msg"] == "boot_persistent and boot_mode need boot_device; set boot_device, for example boot_device: network"


class OpenSessionCapture:
    """tshark on the controller's side of the lab: the RMCP+ open-session requests and responses to one BMC.

    Decoded here from the UDP payload (IPMI 2.0 tables 13-16 to 13-18): the algorithms each request
    proposes and each response accepts, as (authentication, integrity, confidentiality) numbers.
    """

    SUITES = {(3, 4, 1): 17, (1, 1, 1): 3, (0, 0, 0): 0}

    def __init__(self, lab, machine):
        self.proc = lab.popen(
            ["tshark", "-i", "lab0", "-l", "-a", "duration:60", "-f", f"udp port {machine.bmc_port} and host {machine.bmc_host}",
             "-T", "fields", "-e", "udp.payload"],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        )
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline:  # tshark says "Capturing on" when it listens
            line = self.proc.stderr.readline()
            if "Capturing on" in line or not line:
                break

    def exchanges(self):
        """[("proposed", suite), ("accepted", suite) or ("refused", status), ...] in wire order."""
        time.sleep(0.5)  # the last datagrams reach tshark's output
        self.proc.terminate()
        out, _errors = self.proc.communicate(timeout=20)
        seen = []
        for line in out.split():
            packet = bytes.fromhex(line.replace(":", ""))
            if len(packet) < 18 or packet[4] != 6:  # RMCP+ (authentication type 6) only; ipmi_sim's refusals are 2 bytes
                continue
            kind, payload = packet[5] & 0x3F, packet[16:]
            if kind == 0x10 and len(payload) >= 32:
                seen.append(("proposed", self.SUITES.get((payload[12], payload[20], payload[28]))))
            elif kind == 0x11 and len(payload) >= 2:
                if payload[1] == 0 and len(payload) >= 36:
                    seen.append(("accepted", self.SUITES.get((payload[16], payload[24], payload[32]))))
                else:
                    seen.append(("refused", payload[1]))
        return seen


# The lab's own BMC negotiates suites 17 and 3, as modern BMCs do; OpenIPMI 2.0.33's ipmi_sim refuses
# RAKP-HMAC-SHA256 (status 0x04), so there auto falls back to 3 and 17 fails.
@pytest.mark.parametrize("suite", ["auto", "3", "17"])
def test_cipher_suite_used_is_read_on_the_wire(lab, suite):
    m = lab.machines[2]
    capture = OpenSessionCapture(lab, m)
    try:
        result = power(lab, m, cipher_suite=suite, timeout=15).result
    finally:
        seen = capture.exchanges()
    if suite == "3":  # 3 from the first request, on both kinds
        assert seen == [("proposed", 3), ("accepted", 3)], seen
    elif m.bmc_kind == "lab":  # auto and 17: 17 proposed and accepted at once
        assert seen == [("proposed", 17), ("accepted", 17)], seen
    elif suite == "auto":  # ipmi_sim: 17 first, then pyghmi's fall-back to 3
        assert seen[:4] == [("proposed", 17), ("refused", seen[1][1]), ("proposed", 3), ("accepted", 3)], seen
    else:  # ipmi_sim, 17 asked: refused, the task fails, no session on another suite is used
        assert result["failed"] is True, result
        assert result["msg"] == f"the BMC at {m.bmc_host}:{m.bmc_port} does not offer cipher suite 17; use cipher_suite: auto or 3"
        assert seen[:2] == [("proposed", 17), ("refused", seen[1][1])] and seen[1][1] != 0, seen
        return
    assert result.get("failed") is not True, result
    assert result["power_state"] == ipmitool_power(lab, m) == m.power_state(), result


@pytest.mark.compat
def test_fleet_mode_with_a_dead_bmc(lab):
    targets = [{"bmc": m.bmc_host, "port": m.bmc_port, "name": m.name, "password": m.bmc_password} for m in lab.machines]
    targets.append({"bmc": "198.18.1.99", "name": "dead", "password": "x", "connect_timeout": 1})
    params = {"user": "admin", "targets": targets, "state": "on", "timeout": 30}
    result = run_module(MODULE, params, netns=lab.controller_netns).result
    assert result["failed"] is True and result["msg"].startswith("1 of 4 targets failed: dead (")
    by_name = {r["name"]: r for r in result["results"]}
    for m in lab.machines:
        assert by_name[m.name]["power_state"] == "on" and m.power_state() == "on"
    assert by_name["dead"]["failed"] is True
    params.update(state="off", fail_on="never")
    result = run_module(MODULE, params, netns=lab.controller_netns).result
    assert result.get("failed") is not True and result["summary"]["power_off"] == 3 and result["summary"]["failed"] == 1
    assert all(m.power_state() == "off" for m in lab.machines)


def test_bmc_that_stops_answering_mid_task_fails_within_timeout(lab):
    m = lab.machines[1]
    if lab.machines[1].bmc_kind != "lab":
        pytest.skip("fault modes are a feature of the lab's own BMC")
    m.bmc_faults_file.write_text(json.dumps({"mode": "silent"}))
    try:
        result = power(lab, m, state="on", timeout=3, connect_timeout=2).result
        assert result["failed"] is True and f"{m.bmc_host}:{m.bmc_port}" in result["msg"]
    finally:
        m.bmc_faults_file.write_text(json.dumps({"mode": "none"}))


def test_bmc_that_goes_silent_after_login_fails_clearly_within_timeout(lab):
    m = lab.machines[1]
    if m.bmc_kind != "lab":
        pytest.skip("fault modes are a feature of the lab's own BMC")
    # seven answers cover the login on suite 17 (no refused proposal since the lab BMC does 17) and the
    # first status read; then silence
    m.bmc_faults_file.write_text(json.dumps({"mode": "silent", "after": 7}))
    try:
        result = power(lab, m, state="on", timeout=4, connect_timeout=3).result
        assert result["failed"] is True and f"{m.bmc_host}:{m.bmc_port}" in result["msg"], result
        assert "silent" not in result["msg"]
        # pyghmi alone would retransmit for about 30 s; the task's timeout (4 s) bounds it
        assert result["elapsed"] < 4 + 2.5, result["elapsed"]
    finally:
        m.bmc_faults_file.write_text(json.dumps({"mode": "none"}))
        m.control.call("power", action="off")


def test_transient_faults_are_retried(lab):
    m = lab.machines[1]
    if m.bmc_kind != "lab":
        pytest.skip("fault modes are a feature of the lab's own BMC")
    m.bmc_faults_file.write_text(json.dumps({"mode": "busy", "count": 2}))
    try:
        result = power(lab, m, state="query").result
        assert result.get("failed") is not True and result["power_state"] == m.power_state()
    finally:
        m.bmc_faults_file.write_text(json.dumps({"mode": "none"}))


def power_playbook(lab, state, hosts, check=False, verbosity=0):
    extra = {"pm_power_state": state, "pm_power_hosts": hosts, "pm_power_timeout": 30}
    run = run_playbook(REPO_ROOT / "playbooks" / "power.yml", inventory=lab.inventory_path, extra_vars=extra, netns=lab.controller_netns,
                       check=check, verbosity=verbosity, timeout=300)
    task = next(t for t in run.tasks if t["action"].endswith(".pm_power"))
    return run, task["result"]


@pytest.mark.compat
def test_power_playbook_sets_only_the_named_hosts_in_one_task_and_hides_passwords(lab):
    """playbooks/power.yml: check mode, apply, idempotent apply, query; ipmitool is the witness."""
    for m in lab.machines:
        power(lab, m, state="off")
    named, other = lab.machines[:2], lab.machines[2]
    hosts = ":".join(m.name for m in named)

    run, fleet = power_playbook(lab, "on", hosts, check=True)
    assert run.rc == 0 and fleet["changed"] is True, run.stdout[-3000:]
    assert [ipmitool_power(lab, m) for m in lab.machines] == ["off", "off", "off"], "check mode must not change a machine"

    run, fleet = power_playbook(lab, "on", hosts, verbosity=3)
    assert run.rc == 0, run.stdout[-3000:]
    assert sorted(r["name"] for r in fleet["results"]) == sorted(m.name for m in named)  # one task for all, only those named
    assert fleet["summary"]["power_on"] == 2 and fleet["summary"]["changed"] == 2
    assert [ipmitool_power(lab, m) for m in named] == ["on", "on"] and ipmitool_power(lab, other) == "off"
    for m in lab.machines:
        assert m.bmc_password not in run.stdout + run.stderr

    run, fleet = power_playbook(lab, "on", hosts)
    assert run.rc == 0 and fleet["changed"] is False, run.stdout[-3000:]

    run, fleet = power_playbook(lab, "query", "all")
    assert run.rc == 0 and fleet["changed"] is False
    assert {r["name"]: r["power_state"] for r in fleet["results"]} == {m.name: ipmitool_power(lab, m) for m in lab.machines}
    report = next(t for t in run.tasks if t["task"] == "Report")
    assert report["result"]["msg"] == fleet["summary"] and fleet["summary"]["power_on"] == 2
    for m in named:
        power(lab, m, state="off")
