"""pm_wake in the lab: packets checked on the wire by tshark, machines checked by SSH and their BMC."""

from __future__ import annotations

import os
import subprocess
import time
from pathlib import Path

import pytest

from pmtest.ansible_run import run_module

pytestmark = [pytest.mark.lab, pytest.mark.skipif(os.geteuid() != 0, reason="the lab's namespaces need root")]

MODULE = "ctys.pm.pm_wake"
BROADCAST = "198.18.255.255"


@pytest.fixture(scope="module")
def lab(tmp_path_factory):
    from pmlab_lib.lab import Lab

    with Lab.up(machines=3, state="off", bmc="lab", boot_delay=0.3, shutdown_delay=0.2, lab_dir=tmp_path_factory.mktemp("wake")) as lab:
        yield lab  # Lab.down() on leaving, also when a test failed


def wake(lab, check=False, env=None, **params):
    params.setdefault("wait_timeout", 20)
    return run_module(MODULE, params, netns=lab.controller_netns, check=check, env=env).result


def packets_seen(machine):
    return machine.control.call("wol_log")["packets"]


def power_off(lab, machine):
    machine.control.call("power", action="off")


class Capture:
    """tshark inside a machine's namespace, decoding magic packets."""

    def __init__(self, machine, capture_filter):
        self.proc = machine.popen(
            ["tshark", "-i", "eth0", "-a", "duration:8", "-c", "1", "-l", "-f", capture_filter, "-Y", "wol",
             "-T", "fields", "-e", "wol.mac", "-e", "wol.passwd", "-e", "frame.len", "-e", "eth.type", "-e", "udp.length"],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        )
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:  # tshark says "Capturing on" when it listens
            line = self.proc.stderr.readline()
            if "Capturing on" in line or not line:
                break

    def fields(self):
        out, _errors = self.proc.communicate(timeout=15)
        lines = [line for line in out.splitlines() if line.strip()]
        fields = lines[0].split("\t") if lines else []
        return fields + [""] * (5 - len(fields))


@pytest.mark.compat
def test_wake_by_directed_broadcast_and_wait_for_ping(lab):
    m = lab.machines[0]
    capture = Capture(m, "udp port 9")
    result = wake(lab, mac=[m.mac.upper().replace(":", "-")], broadcast=BROADCAST, host=m.ip, poll="ping")
    assert result.get("failed") is not True, result
    assert result["changed"] is True and result["already_running"] is False and result["reachable"] is True
    assert result["packets"] == [{"mac": m.mac, "destination": f"{BROADCAST}:9/udp", "bytes": 102, "count": 3}]
    assert result["boot_seconds"] > 0
    macs, password, frame_len, _ethertype, udp_len = capture.fields()
    assert set(macs.split(",")) == {m.mac} and password == "" and udp_len == "110"  # 8 + 102
    assert lab.ssh(m, "hostname").stdout.strip() == m.name
    assert lab.ipmitool(m, "chassis", "power", "status").stdout.strip() == "Chassis Power is on"


def test_running_machine_gets_no_packet(lab):
    m = lab.machines[0]
    if m.power_state() == "off":
        m.control.call("power", action="on")
        m.wait_os("up")
    seen = len(packets_seen(m))
    result = wake(lab, mac=[m.mac], broadcast=BROADCAST, host=m.ip, poll="tcp")
    assert result["changed"] is False and result["already_running"] is True and result["packets"] == []
    assert len(packets_seen(m)) == seen
    failed = wake(lab, mac=[m.mac], broadcast=BROADCAST, host=m.ip, poll="tcp", already_running="fail")
    assert failed["failed"] is True and failed["msg"].startswith(f"{m.ip} already running")
    power_off(lab, m)


@pytest.mark.compat
def test_check_mode_sends_nothing(lab):
    m = lab.machines[1]
    seen = len(packets_seen(m))
    result = wake(lab, check=True, mac=[m.mac], broadcast=BROADCAST, host=m.ip, poll="tcp")
    assert result["changed"] is True and result["would_send"][0]["bytes"] == 102
    time.sleep(0.3)
    assert len(packets_seen(m)) == seen and m.power_state() == "off"


def test_raw_frame_with_secureon_password_on_the_wire(lab):
    m = lab.machines[1]
    m.control.call("configure", wol_password="a1b2c3d4e5f6")
    try:
        capture = Capture(m, "ether proto 0x0842")
        result = wake(lab, mac=[m.mac], interface="lab0", secureon_password="a1:b2:c3:d4:e5:f6", host=m.ip, poll="ssh")
        assert result.get("failed") is not True, result
        assert result["packets"][0]["bytes"] == 108 and result["packets"][0]["destination"] == "lab0 (ethertype 0x0842)"
        macs, password, frame_len, ethertype, _udp = capture.fields()
        assert set(macs.split(",")) == {m.mac} and password  # tshark sees a SecureOn password
        assert ethertype == "0x0842" and frame_len == "122"  # 14 + 102 + 6
        last = packets_seen(m)[-1]  # the lab NIC parsed the frame's trailing 6 bytes
        assert (last["form"], last["password"], last["accepted"]) == ("ether", "a1b2c3d4e5f6", True)
        assert lab.ssh(m, "true").returncode == 0
    finally:
        m.control.call("configure", wol_password=None)
        power_off(lab, m)


def test_udp_over_ipv6_reaches_the_machine(lab):
    m = lab.machines[2]
    capture = Capture(m, "udp port 9")
    result = wake(lab, mac=[m.mac], broadcast=m.ip6, port=9, repeat=3, repeat_interval=0.3, wait=False)
    assert result["changed"] is True and result["packets"][0]["destination"] == f"[{m.ip6}]:9/udp"
    macs = capture.fields()[0]
    assert set(macs.split(",")) == {m.mac}
    deadline = time.monotonic() + 5
    while m.power_state() != "on" and time.monotonic() < deadline:
        time.sleep(0.05)
    assert m.power_state() == "on" and packets_seen(m)[-1]["form"] == "udp6"
    power_off(lab, m)


def test_fleet_woken_concurrently_in_staggered_groups(lab):
    for machine in lab.machines:
        power_off(lab, machine)
    result = wake(
        lab,
        mac=[m.mac for m in lab.machines],
        hosts=[m.ip for m in lab.machines],
        broadcast=BROADCAST,
        poll="tcp",
        stagger=2,
        stagger_interval=0.5,
    )
    assert result.get("failed") is not True, result
    assert [r["reachable"] for r in result["results"]] == [True, True, True]
    assert all(m.power_state() == "on" for m in lab.machines)
    for machine in lab.machines:
        power_off(lab, machine)


def test_machine_that_never_boots_fails_at_wait_timeout_with_last_poll_error(lab):
    m = lab.machines[2]
    m.control.call("configure", boot_delay=60)
    try:
        result = wake(lab, mac=[m.mac], broadcast=BROADCAST, host=m.ip, poll="tcp", wait_timeout=1.5)
        assert result["failed"] is True
        assert result["msg"].startswith(f"1 of 1 machines did not answer within wait_timeout 1.5 s: {m.ip} (tcp {m.ip}:22:")
        assert m.power_state() == "on", "the packet arrived; the OS just never came up"
    finally:
        m.control.call("configure", boot_delay=0.3)
        power_off(lab, m)


def test_wake_by_name_from_a_ctys_macmap(lab, tmp_path):
    m = lab.machines[0]
    macmap = tmp_path / "macmap.fdb"
    macmap.write_text(f"{m.name}.lab.;{m.mac.upper()};{m.ip};\n")
    result = wake(lab, name=m.name, macmap=str(macmap), ethers=str(tmp_path / "none"), broadcast=BROADCAST, wait=True, poll="tcp")
    assert result.get("failed") is not True, result
    assert result["macs"] == [m.mac] and result["reachable"] is True
    power_off(lab, m)


def test_default_limited_broadcast_and_a_real_ssh_login_with_host_key_checked(lab):
    """No broadcast given: 255.255.255.255 (sent only inside the lab's controller namespace)."""
    m = lab.machines[0]
    capture = Capture(m, "udp port 9")
    result = wake(lab, mac=[m.mac], host=m.ip, poll="ssh", poll_port=m.ssh_port, ssh_user="root",
                  ssh_key=str(lab.ssh_key), ssh_known_hosts=str(lab.known_hosts))
    assert result.get("failed") is not True, result
    assert result["packets"][0]["destination"] == "255.255.255.255:9/udp" and result["reachable"] is True
    macs, _password, _frame_len, _ethertype, udp_len = capture.fields()
    assert set(macs.split(",")) == {m.mac} and udp_len == "110"
    assert m.control.status()["power"] == "on"
    assert lab.ssh(m, "hostname").stdout.strip() == m.name
    # REUSE through the same login: the machine answers, nothing is sent
    seen = len(packets_seen(m))
    again = wake(lab, mac=[m.mac], host=m.ip, poll="ssh", poll_port=m.ssh_port, ssh_user="root",
                 ssh_key=str(lab.ssh_key), ssh_known_hosts=str(lab.known_hosts))
    assert again["changed"] is False and again["already_running"] is True and len(packets_seen(m)) == seen
    power_off(lab, m)


def test_ssh_login_refuses_an_unknown_host_key(lab, tmp_path):
    m = lab.machines[1]
    empty = tmp_path / "known_hosts"
    empty.write_text("")
    result = wake(lab, mac=[m.mac], broadcast=BROADCAST, host=m.ip, poll="ssh", poll_port=m.ssh_port, ssh_user="root",
                  ssh_key=str(lab.ssh_key), ssh_known_hosts=str(empty), wait_timeout=3)
    assert result["failed"] is True and "did not answer within wait_timeout 3 s" in result["msg"]
    assert "not found in known_hosts" in result["msg"]
    assert lab.ssh(m, "true").returncode == 0, "the machine is up; only its unknown host key was refused"
    power_off(lab, m)


def test_ssh_login_refuses_a_changed_host_key_unless_allowed(lab, tmp_path):
    """known_hosts holds another key for the machine (re-installed, or someone in the middle)."""
    m = lab.machines[1]
    other = tmp_path / "other_key"
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(other)], check=True)
    known = tmp_path / "known_hosts"
    host = m.ip if m.ssh_port == 22 else f"[{m.ip}]:{m.ssh_port}"  # as OpenSSH and paramiko name it
    known.write_text(f"{host} {' '.join(Path(f'{other}.pub').read_text().split()[:2])}\n")
    args = dict(mac=[m.mac], broadcast=BROADCAST, host=m.ip, poll="ssh", poll_port=m.ssh_port, ssh_user="root",
                ssh_key=str(lab.ssh_key), ssh_known_hosts=str(known), wait_timeout=3)
    refused = wake(lab, **args)
    assert refused["failed"] is True and "the host key changed" in refused["msg"], refused["msg"]
    assert lab.ssh(m, "true").returncode == 0, "the machine is up; only its changed host key was refused"
    allowed = wake(lab, **dict(args, ssh_host_key_checking=False))
    assert allowed.get("failed") is not True and allowed["already_running"] is True, allowed
    power_off(lab, m)


@pytest.mark.parametrize(
    "params,message",
    [
        ({"mac": ["zz:11"]}, "mac 'zz:11' is not a MAC address; use six hex octets such as 00:1a:2b:3c:4d:5e"),
        ({"mac": ["02:00:00:00:00:01"], "port": 70000}, "port '70000' is outside 1..65535; use a port number such as 9"),
        ({"mac": ["02:00:00:00:00:01"], "port": 0}, "port '0' is outside 1..65535; use a port number such as 9"),
        ({"mac": ["02:00:00:00:00:01"], "broadcast": BROADCAST, "interface": "lab0"}, "broadcast and interface cannot be combined"),
        ({"mac": ["02:00:00:00:00:01"], "interface": "nope0"}, "interface 'nope0' does not exist on this host; use one of"),
        ({"mac": ["02:00:00:00:00:01"], "wait": True}, "wait is true but no host to watch was given"),
        ({"name": "ghost", "ethers": "/dev/null"}, "name 'ghost' was not found in /dev/null; add it there or give mac"),
        ({"mac": ["02:00:00:00:00:01"], "secureon_password": "secret"}, "secureon_password is not a SecureOn password; use 4 bytes"),
        ({"mac": ["02:00:00:00:00:01"], "password": "secret"}, "Unsupported parameters for (ctys.pm.pm_wake) module: password"),
    ],
)
def test_bad_input_one_clear_sentence(lab, params, message):
    result = wake(lab, **params)
    assert result["failed"] is True and result["msg"].startswith(message)
    assert "secret" not in result["msg"]


def test_raw_socket_without_permission_says_so(lab):
    m = lab.machines[0]
    env = {"PMTEST_WRAP": "1"}
    argv_prefix = ["setpriv", "--inh-caps=-all", "--bounding-set=-net_raw"]
    from pmtest import ansible_run

    original = ansible_run._netns_prefix
    ansible_run._netns_prefix = lambda netns: original(netns) + argv_prefix
    try:
        result = wake(lab, env=env, mac=[m.mac], interface="lab0")
    finally:
        ansible_run._netns_prefix = original
    assert result["failed"] is True
    assert result["msg"] == "sending a raw frame on lab0 needs CAP_NET_RAW; run the task as root (become: true) or use broadcast instead"
    assert m.power_state() == "off"
