"""pm_sensors in the lab: the real `sensors` binary on a machine reads its fake hwmon tree over SSH;
the BMCs (the lab's and OpenIPMI's ipmi_sim) report their SDR sensors while the machine is off."""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

import pytest

from pmtest.ansible_run import REPO_ROOT, run_module, run_playbook

pytestmark = [pytest.mark.lab, pytest.mark.skipif(os.geteuid() != 0, reason="the lab's namespaces need root")]

MODULE = "ctys.pm.pm_sensors"


@pytest.fixture(scope="module")
def lab(tmp_path_factory):
    """lab01 runs, lab02 is off (only its BMC can tell); the lab's own BMCs."""
    from pmlab_lib.lab import Lab

    lab = Lab.up(machines=2, state="on", bmc="lab", boot_delay=0.2, shutdown_delay=0.2, lab_dir=tmp_path_factory.mktemp("sensors"))
    try:
        for machine in lab.machines:
            machine.wait_os("up")
        lab.machines[1].control.call("power", action="off")
        lab.machines[1].wait_os("down")
        yield lab
    finally:
        lab.down()


@pytest.fixture(scope="module")
def sim_lab(tmp_path_factory):
    """One machine, off, behind OpenIPMI's ipmi_sim."""
    from pmlab_lib.lab import Lab

    lab = Lab.up(machines=1, state="off", bmc="ipmi_sim", boot_delay=0.2, shutdown_delay=0.2, lab_dir=tmp_path_factory.mktemp("sensors-sim"))
    try:
        yield lab
    finally:
        lab.down()


def on_host(lab, machine, check=False, **params):
    params.setdefault("fail_on_health", "never")  # `-a '{}'` would be raw params
    return run_module(MODULE, params, hosts=machine.name, inventory=lab.inventory_path, netns=lab.controller_netns, check=check).host(machine.name)


def from_bmc(lab, machine, **params):
    args = {"source": "ipmi", "bmc": machine.bmc_host, "port": machine.bmc_port, "user": machine.bmc_user,
            "password": machine.bmc_password, "timeout": 30}
    args.update(params)
    return run_module(MODULE, args, netns=lab.controller_netns)


def by_label(result, label):
    return next(r for r in result["readings"] if r["label"] == label)


def set_hwmon(machine, chip, name, value):
    (machine.hwmon_dir / chip / name).write_text(f"{value}\n")


def set_bmc_sensor(lab, machine, name, value):
    machine.set_bmc_sensor(name, value)
    shown = f"{int(value)} degrees C" if "Temp" in name else str(int(value))
    deadline = time.monotonic() + 15  # ipmi_sim polls its value files; wait until the BMC shows the value
    while time.monotonic() < deadline:
        rows = lab.ipmitool(machine, "sdr", "list").stdout
        if any(line.startswith(name) and shown in line for line in rows.splitlines()):
            return
        time.sleep(0.3)
    raise AssertionError(f"{name} = {value} never showed on the BMC")


def test_real_sensors_binary_reads_the_machines_hwmon_tree(lab):
    m = lab.machines[0]
    checked = on_host(lab, m, check=True)
    result = on_host(lab, m)
    assert result.get("failed") is not True, result
    assert result["source"] == "lm_sensors_json" and result["health"] == "OK" and result["changed"] is False
    assert result["kinds"] == {"temperature": 3, "fan": 1, "voltage": 1}
    package = by_label(result, "Package id 0")
    assert (package["chip"], package["value"], package["max"], package["crit"], package["unit"]) == ("coretemp-virtual-0", 45.0, 80.0, 100.0, "°C")
    vcore = by_label(result, "Vcore")  # lm-sensors' own label for in0 of this chip (sensors3.conf)
    assert (vcore["feature"], vcore["value"], vcore["min"], vcore["max"]) == ("in0", 1.2, 1.0, 1.4)
    assert by_label(result, "fan1")["min"] == 300.0
    assert checked["readings"] == result["readings"] and checked["changed"] is False


def test_temperature_above_crit_is_critical_and_fail_on_critical_fails(lab):
    m = lab.machines[0]
    set_hwmon(m, "hwmon0", "temp1_input", 101000)
    try:
        result = on_host(lab, m)
        assert result["health"] == "CRITICAL" and result["counts"]["critical"] == 1
        assert result["alarms"] == [{"chip": "coretemp-virtual-0", "label": "Package id 0", "kind": "temperature", "value": 101.0,
                                     "unit": "°C", "status": "critical", "reason": "101 °C >= crit 100 °C"}]
        failed = on_host(lab, m, fail_on_health="critical")
        assert failed["failed"] is True and failed["health"] == "CRITICAL"
        assert failed["msg"] == ("health is CRITICAL (1 critical, 0 warning readings), which fail_on_health 'critical' does not accept: "
                                 "coretemp-virtual-0/Package id 0 critical: 101 °C >= crit 100 °C")
        assert on_host(lab, m, fail_on_health="warning", ignore=["Package id 0"])["health"] == "OK"
    finally:
        set_hwmon(m, "hwmon0", "temp1_input", 45000)
    assert on_host(lab, m, fail_on_health="critical")["health"] == "OK"


def test_without_lm_sensors_the_same_readings_come_from_sysfs(lab):
    m = lab.machines[0]
    with_lm = on_host(lab, m)
    # hide the sensors binary in this machine's own mount namespace only (as if lm-sensors were not installed)
    stand_in = m.state_dir / "no-sensors"
    stand_in.write_text("not a program\n")
    stand_in.chmod(0o644)
    hidden = m.run(["mount", "--bind", str(stand_in), "/usr/bin/sensors"])
    assert hidden.returncode == 0, hidden.stderr
    try:
        assert m.run(["test", "-x", "/usr/bin/sensors"]).returncode != 0
        result = on_host(lab, m)
    finally:
        m.run(["umount", "/usr/bin/sensors"])
    assert os.access("/usr/bin/sensors", os.X_OK), "the host's own sensors binary is untouched"
    assert result["source"] == "sysfs"
    assert without_labels(result) == without_labels(with_lm)
    # sysfs has only the kernel's labels; lm-sensors adds its configured ones (Vcore for in0)
    assert {r["label"] for r in result["readings"]} == {"Package id 0", "Core 0", "Core 1", "in0", "fan1"}
    assert without_labels(on_host(lab, m, source="sysfs")) == without_labels(with_lm)


def without_labels(result):
    return sorted((r["chip"], r["feature"], json.dumps({k: v for k, v in r.items() if k != "label"}, sort_keys=True)) for r in result["readings"])


@pytest.mark.parametrize("kind", ["lab", "ipmi_sim"])
def test_bmc_sensor_above_critical_while_the_machine_is_off(kind, request):
    lab = request.getfixturevalue("lab" if kind == "lab" else "sim_lab")
    m = lab.machines[-1]
    assert m.bmc_kind == kind
    assert m.power_state() == "off"
    healthy = from_bmc(lab, m).result
    assert healthy["source"] == "ipmi" and healthy["health"] == "OK" and healthy["bmc"] == f"{m.bmc_host}:{m.bmc_port}"
    assert healthy["kinds"] == {"temperature": 2, "fan": 1, "voltage": 1, "power": 1}
    assert (by_label(healthy, "CPU Temp")["value"], by_label(healthy, "CPU Temp")["crit"]) == (45.0, 95.0)
    set_bmc_sensor(lab, m, "CPU Temp", 97.0)
    try:
        result = from_bmc(lab, m).result
        assert result["health"] == "CRITICAL" and m.power_state() == "off"
        alarm = result["alarms"][0]
        assert (alarm["label"], alarm["value"], alarm["status"]) == ("CPU Temp", 97.0, "critical")
        assert alarm["reason"].startswith("97 °C >= crit 95 °C; the BMC reports ") and "upper critical threshold" in alarm["reason"]
        run = from_bmc(lab, m, fail_on_health="critical")
        assert run.result["failed"] is True and run.result["msg"].startswith("health is CRITICAL (1 critical")
        assert m.bmc_password not in run.stdout + run.stderr
    finally:
        set_bmc_sensor(lab, m, "CPU Temp", 45.0)


@pytest.mark.compat
def test_health_playbook_os_side_when_up_bmc_side_when_off(lab):
    set_bmc_sensor(lab, lab.machines[1], "CPU Temp", 97.0)
    try:
        run = run_playbook(REPO_ROOT / "playbooks" / "health.yml", inventory=lab.inventory_path, netns=lab.controller_netns)
        assert run.rc == 0, run.stdout[-3000:] + run.stderr[-2000:]
        summary = next(t for t in run.tasks if t["task"] == "Summary")["result"]["msg"]
        assert summary["lab01"]["side"] == "os" and summary["lab01"]["health"] == "OK" and summary["lab01"]["alarms"] == []
        assert summary["lab02"]["side"] == "bmc" and summary["lab02"]["health"] == "CRITICAL"
        assert summary["lab02"]["alarms"][0].startswith("CPU Temp critical: 97 °C >= crit 95 °C")
        # beside the verdict, the BMC's event log (the crossed threshold is logged there, critical) and the power draw
        assert summary["lab02"]["bmc_events"]["critical"] >= 1 and summary["lab01"]["bmc_events"]["critical"] == 0
        assert summary["lab01"]["power_watts"] > summary["lab02"]["power_watts"] > 0  # lab01 runs, lab02 is off
        refused = run_playbook(REPO_ROOT / "playbooks" / "health.yml", inventory=lab.inventory_path, netns=lab.controller_netns,
                               extra_vars={"pm_health_fail_on": "critical"})
        assert refused.rc != 0 and "health not accepted by pm_health_fail_on=critical: lab02 CRITICAL" in refused.stdout
    finally:
        set_bmc_sensor(lab, lab.machines[1], "CPU Temp", 45.0)


def test_ansible_test_target_on_a_running_machine(lab, tmp_path):
    play = tmp_path / "target.yml"
    play.write_text("- hosts: lab01\n  gather_facts: false\n  roles:\n    - pm_sensors\n")
    run = run_playbook(play, inventory=lab.inventory_path, netns=lab.controller_netns,
                       env={"ANSIBLE_ROLES_PATH": str(Path(REPO_ROOT) / "tests" / "integration" / "targets")})
    assert run.rc == 0 and "failed=0" in run.stdout, run.stdout[-3000:] + run.stderr[-2000:]
    skipped = {t["task"] for t in run.tasks if t["status"] == "skipped"}
    assert not skipped & {"The failure names the health and the readings", "The filter judges the raw output as the module does",
                          "The BMC's sensors were read"}, skipped
