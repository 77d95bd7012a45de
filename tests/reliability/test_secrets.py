"""Secrets never leak: every module runs with -vvv and known secrets, and nothing shows them."""

from __future__ import annotations

import json
import os
import socket

import pytest

from pmtest.ansible_run import run_module

KNOWN_KEY = "Kg-Known-Key-7f3a"
KNOWN_SECUREON = "a1:b2:c3:d4:e5:f6"
KNOWN_SSH_PASSWORD = "Ssh-Known-Pass-91c2"


def closed_udp_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def assert_nowhere(result, secrets, log_file):
    haystacks = {
        "stdout": result.stdout,
        "stderr": result.stderr,
        "results": json.dumps(result.tasks),
        "log file": log_file.read_text(errors="replace") if log_file.exists() else "",
    }
    for secret in secrets:
        for where, text in haystacks.items():
            assert secret not in text, f"secret found in {where}"
    assert result.tasks, "the module must have run and reported"


def run(module, args, tmp_path, env=None, **kw):
    log_file = tmp_path / "ansible.log"
    result = run_module(module, args, verbosity=3, env=dict(env or {}, ANSIBLE_LOG_PATH=str(log_file)), **kw)
    return result, log_file


@pytest.fixture(scope="module")
def lab(tmp_path_factory):
    if os.geteuid() != 0:
        pytest.skip("the lab's namespaces need root")
    from pmlab_lib.lab import Lab

    with Lab.up(machines=1, state="on", bmc="lab", redfish=True, lab_dir=tmp_path_factory.mktemp("secrets")) as lab:
        yield lab  # Lab.down() on leaving, also when a test failed


def bmc_args(machine, **extra):
    args = {"bmc": machine.bmc_host, "port": machine.bmc_port, "user": machine.bmc_user, "password": machine.bmc_password}
    args.update(extra)
    return args


def test_pm_ipmi_power_success_and_failure_paths(lab, tmp_path):
    m = lab.machines[0]
    ok, log = run("ctys.pm.pm_ipmi_power", bmc_args(m, state="query"), tmp_path, netns=lab.controller_netns)
    assert ok.result.get("failed") is not True
    assert_nowhere(ok, [m.bmc_password], log)
    bad, log = run("ctys.pm.pm_ipmi_power", bmc_args(m, kg=KNOWN_KEY, connect_timeout=2, state="on"), tmp_path, netns=lab.controller_netns)
    assert bad.result["failed"] is True
    assert_nowhere(bad, [m.bmc_password, KNOWN_KEY], log)
    targets = [
        {"bmc": m.bmc_host, "password": m.bmc_password},
        {"bmc": "127.0.0.1", "port": closed_udp_port(), "password": m.bmc_password, "kg": KNOWN_KEY, "connect_timeout": 1},
    ]
    fleet, log = run("ctys.pm.pm_ipmi_power", {"user": "admin", "targets": targets, "fail_on": "never"}, tmp_path, netns=lab.controller_netns)
    assert_nowhere(fleet, [m.bmc_password, KNOWN_KEY], log)


def test_pm_power_over_redfish_and_ipmi(lab, tmp_path):
    m = lab.machines[0]
    redfish = {"bmc": m.bmc_host, "user": m.bmc_user, "password": m.bmc_password, "protocol": "redfish",
               "ca_path": str(lab.redfish_ca), "state": "query"}
    ok, log = run("ctys.pm.pm_power", redfish, tmp_path, netns=lab.controller_netns, diff=True)
    assert ok.result.get("failed") is not True and ok.result["protocol"] == "redfish", ok.result
    assert_nowhere(ok, [m.bmc_password], log)
    # failing ad-hoc tasks: ansible-core 2.19 itself shows the task's -a arguments on failure ("Origin: <adhoc ...>"),
    # so the password comes from the environment (IPMI_PASSWORD, as ipmitool -E) as it would in a real playbook's vault
    from_env = {k: v for k, v in redfish.items() if k != "password"}
    refused, log = run("ctys.pm.pm_power", dict(from_env, ca_path=None, state="on"), tmp_path, netns=lab.controller_netns,
                       env={"IPMI_PASSWORD": m.bmc_password})
    assert refused.result["failed"] is True and "certificate" in refused.result["msg"]
    assert_nowhere(refused, [m.bmc_password], log)
    wrong, log = run("ctys.pm.pm_power", from_env, tmp_path, netns=lab.controller_netns, env={"IPMI_PASSWORD": KNOWN_SSH_PASSWORD})
    assert wrong.result["failed"] is True
    assert_nowhere(wrong, [m.bmc_password, KNOWN_SSH_PASSWORD], log)
    targets = [
        {"bmc": m.bmc_host, "protocol": "redfish", "password": m.bmc_password},
        {"bmc": m.bmc_host, "protocol": "ipmi", "port": m.bmc_port, "password": m.bmc_password, "kg": KNOWN_KEY, "connect_timeout": 1},
    ]
    fleet, log = run("ctys.pm.pm_power", {"user": m.bmc_user, "ca_path": str(lab.redfish_ca), "targets": targets, "fail_on": "never"},
                     tmp_path, netns=lab.controller_netns)
    assert [r["protocol"] for r in fleet.result["results"]] == ["redfish", "ipmi"], fleet.result
    assert_nowhere(fleet, [m.bmc_password, KNOWN_KEY], log)


def test_pm_console_with_a_script_and_credentials(lab, tmp_path):
    m = lab.machines[0]
    result, log = run("ctys.pm.pm_console", bmc_args(m, kg=KNOWN_KEY, connect_timeout=2, steps=[{"send": "\r"}]), tmp_path, netns=lab.controller_netns)
    assert result.result["failed"] is True
    assert_nowhere(result, [m.bmc_password, KNOWN_KEY], log)
    command, log = run("ctys.pm.pm_console", bmc_args(m, console_command="sol"), tmp_path, netns=lab.controller_netns)
    assert command.result["command"].endswith("sol activate")
    assert_nowhere(command, [m.bmc_password], log)


def test_pm_sensors_over_ipmi(lab, tmp_path):
    m = lab.machines[0]
    ok, log = run("ctys.pm.pm_sensors", bmc_args(m, source="ipmi"), tmp_path, netns=lab.controller_netns)
    assert ok.result.get("failed") is not True and ok.result["readings"], ok.result
    assert_nowhere(ok, [m.bmc_password], log)
    bad, log = run("ctys.pm.pm_sensors", bmc_args(m, source="ipmi", kg=KNOWN_KEY, connect_timeout=2), tmp_path, netns=lab.controller_netns)
    assert bad.result["failed"] is True
    assert_nowhere(bad, [m.bmc_password, KNOWN_KEY], log)


def test_pm_wake_secureon_and_ssh_password(tmp_path):
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as receiver:
        receiver.bind(("127.0.0.1", 0))
        receiver.settimeout(3)
        port = receiver.getsockname()[1]
        result, log = run(
            "ctys.pm.pm_wake",
            {"mac": ["02:00:00:00:00:01"], "broadcast": "127.0.0.1", "port": port, "secureon_password": KNOWN_SECUREON, "repeat": 1,
             "host": "127.0.0.1", "poll": "ssh", "ssh_user": "root", "ssh_password": KNOWN_SSH_PASSWORD, "poll_port": port,
             "wait_timeout": 1},
            tmp_path,
        )
        packet = receiver.recv(2048)
    assert packet[-6:] == bytes.fromhex(KNOWN_SECUREON.replace(":", ""))  # the password did go on the wire
    assert_nowhere(result, [KNOWN_SECUREON, KNOWN_SECUREON.replace(":", ""), KNOWN_SSH_PASSWORD], log)


def test_pm_wol_flag_secureon_password(tmp_path):
    """SecureOn written into a systemd .link file under a scratch root, with --diff and -vvv."""
    root = tmp_path / "root"
    result, log = run(
        "ctys.pm.pm_wol_flag",
        {"interface": "lo", "wol": "gs", "sopass": KNOWN_SECUREON, "live": False, "persistent": "systemd-networkd",
         "persistent_root": str(root)},
        tmp_path, diff=True,
    )
    assert result.host().get("failed") is not True, result.host()
    written = [path.read_text() for path in root.rglob("*.link")]
    assert any(KNOWN_SECUREON in text.lower() for text in written), written  # it reached the file that needs it
    assert_nowhere(result, [KNOWN_SECUREON, KNOWN_SECUREON.replace(":", "")], log)
