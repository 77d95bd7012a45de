"""The benchmark's BMC farm: lab BMCs without machines, checked with ipmitool and the module."""

from __future__ import annotations

import os
import subprocess

import pytest

from pmlab_lib.bmc_farm import Farm
from pmtest.ansible_run import run_module

pytestmark = [
    pytest.mark.lab,
    pytest.mark.skipif(os.geteuid() != 0, reason="port 623 needs root"),
]


def ipmitool_power(bmc):
    argv = ["ipmitool", "-I", "lanplus", "-C", "3", "-H", bmc.host, "-p", str(bmc.port), "-U", bmc.user, "-P", bmc.password, "chassis", "power", "status"]
    result = subprocess.run(argv, capture_output=True, text=True, timeout=30, check=False)
    assert result.returncode == 0, result.stderr
    return result.stdout.strip()


def test_farm_bmcs_answer_ipmi_and_keep_their_power_state_and_stop_with_the_farm(tmp_path):
    with Farm.up(3, tmp_path / "farm") as farm:
        assert [ipmitool_power(b) for b in farm.bmcs] == ["Chassis Power is off"] * 3
        targets = [{"bmc": b.host, "port": b.port, "password": b.password} for b in farm.bmcs[:2]]
        result = run_module("ctys.pm.pm_ipmi_power", {"user": "admin", "targets": targets, "state": "on", "timeout": 30}).host()
        assert result["changed"] is True, result
        assert [ipmitool_power(b) for b in farm.bmcs] == ["Chassis Power is on", "Chassis Power is on", "Chassis Power is off"]
        pids = [p.pid for p in farm.processes]
    leftover = subprocess.run(["pgrep", "-f", f"bmc_farm --config {tmp_path}"], capture_output=True, text=True, check=False)
    assert leftover.stdout == "", f"farm processes left behind: {leftover.stdout} (started {pids})"
