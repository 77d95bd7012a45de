"""The lab itself, checked with independent clients: one power state through every door."""

from __future__ import annotations

import json
import os
import subprocess
import time

import pytest

from pmlab_lib.lab import Lab
from pmtest.redfish_lab import ipmi_power as bmc_power
from pmtest.redfish_lab import lab_fixture, wait_for

pytestmark = [
    pytest.mark.lab,
    pytest.mark.skipif(os.geteuid() != 0, reason="network namespaces need root"),
]

lab = lab_fixture("doors")


def ssh_ok(lab, machine):
    return lab.ssh(machine, "true", timeout=10).returncode == 0


def test_ipmitool_power_on_boots_the_machine_and_ssh_answers(lab):
    m = lab.machines[0]
    assert bmc_power(lab, m) == "Chassis Power is off"
    assert not ssh_ok(lab, m)
    result = lab.ipmitool(m, "chassis", "power", "on")
    assert result.returncode == 0 and "Up/On" in result.stdout
    wait_for(lambda: ssh_ok(lab, m), what="ssh up")
    assert lab.ssh(m, "hostname").stdout.strip() == m.name
    assert bmc_power(lab, m) == "Chassis Power is on"


def test_ipmitool_power_off_makes_ssh_refused(lab):
    m = lab.machines[0]
    if m.power_state() == "off":
        lab.ipmitool(m, "chassis", "power", "on")
        m.wait_os("up")
    assert lab.ipmitool(m, "chassis", "power", "off").returncode == 0
    assert m.power_state() == "off"
    result = lab.ssh(m, "true")
    assert result.returncode == 255 and "Connection refused" in result.stderr


def test_ping_fails_while_off_and_answers_while_on(lab):
    m = lab.machines[1]
    assert m.power_state() == "off"
    assert lab.run(["ping", "-c", "1", "-W", "1", m.ip]).returncode != 0
    lab.ipmitool(m, "chassis", "power", "on")
    m.wait_os("up")
    assert lab.run(["ping", "-c", "1", "-W", "2", m.ip]).returncode == 0
    lab.ipmitool(m, "chassis", "power", "off")


def test_wakeonlan_directed_broadcast_wakes_the_machine(lab):
    m = lab.machines[0]
    assert m.power_state() == "off"
    result = lab.run(["wakeonlan", "-i", "198.18.255.255", "-p", "9", m.mac])
    assert result.returncode == 0, result.stderr
    wait_for(lambda: ssh_ok(lab, m), what="ssh after wakeonlan")
    assert bmc_power(lab, m) == "Chassis Power is on"
    packets = m.control.call("wol_log")["packets"]
    assert packets[-1]["form"] == "udp" and packets[-1]["accepted"] is True


def test_poweroff_over_ssh_stops_only_that_machine(lab):
    m, other = lab.machines
    if m.power_state() == "off":
        lab.ipmitool(m, "chassis", "power", "on")
        m.wait_os("up")
    lab.ipmitool(other, "chassis", "power", "on")
    other.wait_os("up")
    result = lab.ssh(m, "poweroff")
    assert "pmlab: poweroff requested" in result.stdout
    wait_for(lambda: m.power_state() == "off", what="machine off after poweroff")
    assert bmc_power(lab, m) == "Chassis Power is off"
    assert other.power_state() == "on" and ssh_ok(lab, other)
    # the real computer is still here and its own systemctl untouched
    assert subprocess.run(["systemctl", "--version"], capture_output=True, check=False).returncode == 0
    lab.ipmitool(other, "chassis", "power", "off")


def test_wall_reaches_that_machine_not_the_hosts_terminals(lab):
    """wall is replaced like poweroff: the lab shares /dev/pts with the host, so a real wall would write there."""
    m, other = lab.machines
    if m.power_state() == "off":
        lab.ipmitool(m, "chassis", "power", "on")
        m.wait_os("up")
    seen, seen_other = len(m.control.call("os_log")["entries"]), len(other.control.call("os_log")["entries"])
    assert lab.ssh(m, "wall -n -t 5 going down soon; echo from stdin | wall").returncode == 0
    assert [e["message"] for e in m.control.call("os_log")["entries"][seen:]] == ["going down soon", "from stdin\n"]
    assert len(other.control.call("os_log")["entries"]) == seen_other


def test_etherwake_raw_frame_wakes_the_machine(lab):
    m = lab.machines[1]
    assert m.power_state() == "off"
    result = lab.run(["etherwake", "-i", "lab0", m.mac])
    assert result.returncode == 0, result.stderr
    wait_for(lambda: ssh_ok(lab, m), what="ssh after etherwake")
    assert m.control.call("wol_log")["packets"][-1]["form"] == "ether"
    lab.ipmitool(m, "chassis", "power", "off")


def test_secureon_password_must_match(lab):
    m = lab.machines[1]
    m.control.call("configure", wol_password="a1b2c3d4e5f6")
    try:
        lab.run(["etherwake", "-i", "lab0", "-p", "00:00:00:00:00:01", m.mac])
        time.sleep(0.5)
        assert m.power_state() == "off"
        assert m.control.call("wol_log")["packets"][-1]["accepted"] is False
        lab.run(["etherwake", "-i", "lab0", "-b", "-p", "a1:b2:c3:d4:e5:f6", m.mac])
        wait_for(lambda: m.power_state() == "on", what="power on with the right password")
    finally:
        m.control.call("configure", wol_password=None)
        lab.ipmitool(m, "chassis", "power", "off")


def test_tshark_in_the_machine_decodes_the_magic_packet(lab, tmp_path):
    m = lab.machines[1]
    capture = m.popen(["tshark", "-i", "eth0", "-a", "duration:6", "-c", "1", "-f", "udp port 9", "-Y", "wol", "-T", "fields", "-e", "wol.mac", "-l"],
                      stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    try:
        time.sleep(2)
        lab.run(["wakeonlan", "-i", "198.18.255.255", m.mac])
        out, _errors = capture.communicate(timeout=10)
    finally:
        capture.kill()
    macs = out.strip().split(",")
    assert len(macs) == 16 and set(macs) == {m.mac}
    lab.ipmitool(m, "chassis", "power", "off")


def test_sensors_in_the_machine_read_the_fake_hwmon_tree(lab):
    m = lab.machines[0]
    if m.power_state() == "off":
        lab.ipmitool(m, "chassis", "power", "on")
        m.wait_os("up")
    data = json.loads(lab.ssh(m, "sensors -j").stdout)
    assert data["coretemp-virtual-0"]["Package id 0"]["temp1_input"] == 45.0
    (m.hwmon_dir / "hwmon0" / "temp1_input").write_text("101000\n")
    data = json.loads(lab.ssh(m, "sensors -j").stdout)
    assert data["coretemp-virtual-0"]["Package id 0"]["temp1_input"] == 101.0
    (m.hwmon_dir / "hwmon0" / "temp1_input").write_text("45000\n")


def test_bmc_sensors_follow_the_file(lab):
    m = lab.machines[0]
    rows = {line.split("|")[0].strip(): [c.strip() for c in line.split("|")] for line in lab.ipmitool(m, "sdr", "list").stdout.splitlines()}
    assert rows["CPU Temp"][1:] == ["45 degrees C", "ok"]
    assert rows["System Fan 1"][1] == "4800 RPM"
    m.set_bmc_sensor("CPU Temp", 97.0)
    rows = {line.split("|")[0].strip(): [c.strip() for c in line.split("|")] for line in lab.ipmitool(m, "sdr", "list").stdout.splitlines()}
    assert rows["CPU Temp"][1:] == ["97 degrees C", "cr"]


def test_privileges_and_credentials(lab):
    m = lab.machines[1]
    result = lab.ipmitool(m, "-L", "USER", "chassis", "power", "status", user="viewer")
    assert result.stdout.strip() == "Chassis Power is off"
    result = lab.ipmitool(m, "-L", "USER", "chassis", "power", "on", user="viewer")
    assert result.returncode != 0 and "insufficient privilege" in result.stderr.lower()
    assert m.power_state() == "off"
    result = lab.ipmitool(m, "chassis", "power", "status", user="viewer")  # asks ADMINISTRATOR
    assert result.returncode != 0
    result = lab.ipmitool(m, "chassis", "power", "status", password="wrong-password")
    assert result.returncode != 0
    result = lab.ipmitool(m, "chassis", "power", "status", user="nobody")
    assert result.returncode != 0
    assert "RAKP1 unknown user 'nobody'" in (m.state_dir / "bmc.log").read_text()


def test_ipmitool_cipher_suite_17_drives_the_machine(lab):
    """ipmitool -C 17 (RAKP-HMAC-SHA256, HMAC-SHA256-128, AES-CBC-128) logs in, reads and changes the power."""
    m = lab.machines[1]
    assert m.power_state() == "off"
    result = lab.ipmitool(m, "chassis", "power", "status", cipher_suite=17)
    assert result.returncode == 0 and result.stdout.strip() == "Chassis Power is off", result.stderr
    try:
        result = lab.ipmitool(m, "chassis", "power", "on", cipher_suite=17)
        assert result.returncode == 0 and "Up/On" in result.stdout, result.stderr
        assert m.power_state() == "on"
        assert bmc_power(lab, m) == "Chassis Power is on"  # suite 3 sees the same state
    finally:
        lab.ipmitool(m, "chassis", "power", "off", cipher_suite=17)
    assert m.power_state() == "off"
    result = lab.ipmitool(m, "chassis", "power", "status", password="wrong-password", cipher_suite=17)
    assert result.returncode != 0
    listed = lab.ipmitool(m, "channel", "getciphers", "ipmi", "1", cipher_suite=17)
    suites = [line.split()[0] for line in listed.stdout.splitlines()[1:] if line.strip()]
    assert listed.returncode == 0 and suites == ["3", "17"], listed.stdout + listed.stderr


def test_boot_device_round_trip(lab):
    m = lab.machines[1]
    assert lab.ipmitool(m, "chassis", "bootdev", "pxe", "options=persistent,efiboot").returncode == 0
    status = m.control.status()
    assert (status["boot_device"], status["boot_persistent"], status["boot_uefi"]) == ("network", True, True)
    out = lab.ipmitool(m, "chassis", "bootparam", "get", "5").stdout
    assert "Force PXE" in out and "Options apply to all future boots" in out and "BIOS EFI boot" in out


def test_console_shows_a_login_prompt_and_accepts_root(lab):
    m = lab.machines[0]
    if m.power_state() == "off":
        lab.ipmitool(m, "chassis", "power", "on")
        m.wait_os("up")
    script = (
        "import socket,time\n"
        f"s=socket.create_connection(('127.0.0.1',{m.serial_port})); s.settimeout(0.3)\n"
        "def rd():\n"
        "    out=b''\n"
        "    end=time.time()+1.5\n"
        "    while time.time()<end:\n"
        "        try:\n"
        "            out+=s.recv(4096)\n"
        "        except socket.timeout:\n"
        "            pass\n"
        "    return out.decode(errors='replace')\n"
        "for line in [b'exit\\r', b'\\r', b'root\\r', b'" + m.console_password + "\\r', b'hostname\\r']:\n"
        "    s.sendall(line); print(repr(rd()))\n"
    )
    out = m.run(["python3", "-c", script], timeout=20).stdout
    assert f"{m.name} login: " in out and "Password: " in out
    assert f"root@{m.name}" in out
    assert f"{m.name}\\r\\n" in out.split("hostname")[-1]  # the command ran in the machine


def test_down_leaves_nothing(tmp_path):
    lab = Lab.up(machines=3, state="on", bmc="lab", boot_delay=0.1, lab_dir=tmp_path / "lab")
    namespaces = list(lab.namespaces)
    pids = list(lab.pids) + [m.pid for m in lab.machines]
    lab.down()
    listing = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True, check=False).stdout
    assert not [n for n in namespaces if n in listing]
    for pid in pids:
        assert not os.path.exists(f"/proc/{pid}") or open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()[0] == "Z"
    assert "pmlab" not in subprocess.run(["findmnt", "-rn"], capture_output=True, text=True, check=False).stdout
    assert not (tmp_path / "lab" / "lab.json").exists()


def test_loopback_mode_power_ssh_and_wol(tmp_path):
    lab = Lab.up(machines=1, state="off", bmc="lab", boot_delay=0.1, lab_dir=tmp_path / "loop", loopback=True)
    try:
        m = lab.machines[0]
        assert m.bmc_host == "127.0.0.1" and lab.controller_netns is None
        assert bmc_power(lab, m) == "Chassis Power is off"
        lab.run(["wakeonlan", "-i", "127.0.0.1", "-p", str(m.wol_port), m.mac])
        wait_for(lambda: ssh_ok(lab, m), what="ssh in loopback mode")
        assert bmc_power(lab, m) == "Chassis Power is on"
    finally:
        lab.down()


@pytest.mark.slow
def test_fifty_machines_come_up_and_answer(tmp_path):
    lab = Lab.up(machines=50, state="off", bmc="lab", lab_dir=tmp_path / "fifty")
    try:
        assert len({m.mac for m in lab.machines}) == 50
        assert bmc_power(lab, lab.machines[-1]) == "Chassis Power is off"
        assert all(m.power_state() == "off" for m in lab.machines)
    finally:
        lab.down()


def test_ipmi_sim_drives_the_same_machine(tmp_path):
    """OpenIPMI's ipmi_sim as the BMC: the same power state through every door."""
    lab = Lab.up(machines=1, state="off", bmc="ipmi_sim", boot_delay=0.2, shutdown_delay=0.2, lab_dir=tmp_path / "sim")
    try:
        m = lab.machines[0]
        assert bmc_power(lab, m) == "Chassis Power is off"
        assert lab.ipmitool(m, "chassis", "power", "on").returncode == 0
        wait_for(lambda: ssh_ok(lab, m), what="ssh after ipmi_sim power on")
        assert lab.ipmitool(m, "chassis", "power", "off").returncode == 0
        assert m.power_state() == "off" and "refused" in lab.ssh(m, "true").stderr
        lab.run(["wakeonlan", "-i", "198.18.255.255", m.mac])
        wait_for(lambda: ssh_ok(lab, m), what="ssh after wakeonlan")
        assert bmc_power(lab, m) == "Chassis Power is on"
        lab.ssh(m, "poweroff")
        wait_for(lambda: bmc_power(lab, m) == "Chassis Power is off", what="ipmi_sim sees the OS poweroff")
        m.set_bmc_sensor("CPU Temp", 99.0)
        wait_for(lambda: "99 degrees C      | cr" in lab.ipmitool(m, "sdr", "list").stdout, what="critical reading via ipmi_sim")
        viewer = lab.ipmitool(m, "-L", "USER", "chassis", "power", "on", user="viewer")
        assert viewer.returncode != 0 and m.power_state() == "off"
    finally:
        lab.down()
