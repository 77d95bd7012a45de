"""pm_console against the lab's BMCs, SOL attached to the machine's serial console."""

from __future__ import annotations

import json
import os
import pty
import threading
import time

import pytest

from pmtest.ansible_run import run_module

pytestmark = [pytest.mark.lab, pytest.mark.skipif(os.geteuid() != 0, reason="the lab's namespaces need root")]

MODULE = "ctys.pm.pm_console"


@pytest.fixture(scope="module", params=["lab", "ipmi_sim"])
def lab(request, tmp_path_factory):
    from pmlab_lib.lab import Lab

    with Lab.up(machines=2, state="on", bmc=request.param, boot_delay=0.5, lab_dir=tmp_path_factory.mktemp(f"console-{request.param}")) as lab:
        yield lab  # Lab.down() on leaving, also when a test failed


def console(lab, machine, check=False, **params):
    args = {"bmc": machine.bmc_host, "port": machine.bmc_port, "user": machine.bmc_user, "password": machine.bmc_password, "timeout": 40}
    args.update(params)
    return run_module(MODULE, args, netns=lab.controller_netns, check=check)


def login_steps(machine):
    return [
        {"send": "exit\r", "timeout": 2},
        {"send": "\r", "expect": "login: $", "timeout": 10},
        {"send": "root\r", "expect": "Password: $"},
        {"send": machine.console_password + "\r", "expect": "# $"},
        {"send": "echo hello-$(hostname)\r", "expect": "^hello-" + machine.name + "$"},
    ]


@pytest.mark.compat
def test_log_in_at_the_prompt_and_run_a_command(lab):
    m = lab.machines[0]
    result = console(lab, m, steps=login_steps(m)).result
    assert result.get("failed") is not True, result
    assert result["changed"] is True and result["steps"][-1]["matched"] == f"hello-{m.name}"
    assert f"{m.name} login: " in result["output"] and "\x1b" not in result["output"]


def test_check_mode_connects_and_sends_nothing(lab):
    m = lab.machines[0]
    result = console(lab, m, check=True, steps=[{"send": "reboot\r", "expect": "never"}]).result
    assert result.get("failed") is not True, result
    assert result["sent_bytes"] == 0 and result["would_send_bytes"] == 7
    assert m.power_state() == "on"


def test_capture_a_boot(lab):
    m = lab.machines[1]
    m.control.call("power", action="off")
    # late enough that Ansible has started and SOL is active, even on a loaded machine
    timer = threading.Timer(6.0, lambda: m.control.call("power", action="on"))
    timer.start()
    try:
        result = console(lab, m, capture=True, duration=30, until="login: $").result
    finally:
        timer.cancel()
    assert result.get("failed") is not True, result
    assert result["matched"] is True and result["changed"] is False
    assert "Linux version" in result["output"] and f"{m.name} login: " in result["output"]


def test_expect_that_never_comes_times_out_with_output_so_far(lab):
    m = lab.machines[0]
    result = console(lab, m, steps=[{"send": "\r"}, {"send": "echo partial-output\r", "expect": "never-printed", "timeout": 2}]).result
    assert result["failed"] is True
    assert result["msg"] == "expect 'never-printed' did not appear within 2 s"
    assert "partial-output" in result["output"]


def test_takeover_of_a_session_held_by_ipmitool(lab):
    m = lab.machines[0]
    argv = lab._prefix() + ["ipmitool", "-I", "lanplus", "-C", "3", "-H", m.bmc_host, "-p", str(m.bmc_port),
                            "-U", m.bmc_user, "-P", m.bmc_password, "sol", "activate"]
    pid, fd = pty.fork()
    if pid == 0:
        os.execvp(argv[0], argv)
    try:
        time.sleep(2)
        held = console(lab, m, takeover=False, steps=[{"send": "\r"}]).result
        assert held["failed"] is True and held["msg"].startswith(f"SOL on {m.bmc_host}:{m.bmc_port} is held by another client")
        taken = console(lab, m, steps=[{"send": "\r", "expect": "(login: |# )$"}]).result
        assert taken.get("failed") is not True, taken
    finally:
        os.kill(pid, 9)
        os.waitpid(pid, 0)
        os.close(fd)


def test_wrong_password_fails_clearly(lab):
    m = lab.machines[0]
    result = console(lab, m, password="wrong-password", connect_timeout=5, steps=[{"send": "\r"}]).result
    assert result["failed"] is True
    assert f"{m.bmc_host}:{m.bmc_port}" in result["msg"]
    assert "wrong-password" not in json.dumps(result)


def test_bmc_without_sol_fails_clearly(lab):
    m = lab.machines[1]
    if m.bmc_kind != "lab":
        pytest.skip("the no_sol fault mode is a feature of the lab's own BMC")
    m.bmc_faults_file.write_text(json.dumps({"mode": "no_sol"}))
    try:
        result = console(lab, m, connect_timeout=5, steps=[{"send": "\r"}]).result
        assert result["failed"] is True
        assert result["msg"].startswith(f"the BMC at {m.bmc_host}:{m.bmc_port} offers no Serial-over-LAN console")
    finally:
        m.bmc_faults_file.write_text(json.dumps({"mode": "none"}))
