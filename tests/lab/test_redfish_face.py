"""The lab BMC's Redfish face, checked with independent clients (curl, ipmitool, DMTF's validator).

One machine, several doors: what Redfish changes, the machine itself and the
IPMI face (ipmitool) read back, and the other way round.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from pmlab_lib.lab import LAB_ROOT, Lab
from pmtest.redfish_lab import ipmi_power, lab_fixture, machine_fixture, wait_for
from pmtest.redfish_lab import lab_curl as curl

pytestmark = [
    pytest.mark.lab,
    pytest.mark.skipif(os.geteuid() != 0, reason="network namespaces need root"),
]

SYSTEM = "/redfish/v1/Systems/1"
RESET = SYSTEM + "/Actions/ComputerSystem.Reset"

lab = lab_fixture("redfish", redfish=True)
m = machine_fixture()  # machine 1, back to the generic profile, no fault, no sessions, powered off, after each test


def test_inventory_names_protocol_port_and_ca(lab):
    hosts = json.loads(lab.inventory_path.read_text().split("\n", 1)[1])["all"]["children"]["pm_lab"]["hosts"]
    for machine in lab.machines:
        host = hosts[machine.name]
        assert host["pm_bmc_protocol"] == "redfish"
        assert host["pm_bmc_port"] == host["pm_redfish_port"] == 443
        assert host["pm_ipmi_port"] == 623
        assert Path(host["pm_bmc_ca_path"]).read_text().startswith("-----BEGIN CERTIFICATE-----")


def test_service_root_is_open_everything_else_needs_credentials(lab, m):
    status, _headers, root = curl(lab, m, "GET", "/redfish/v1/", user=None)
    assert status == 200 and root["Systems"] == {"@odata.id": "/redfish/v1/Systems"}
    status, headers, body = curl(lab, m, "GET", "/redfish/v1/Systems", user=None)
    assert status == 401 and headers["www-authenticate"].startswith("Basic")
    assert body["error"]["code"].endswith("NoValidSession")
    assert curl(lab, m, "GET", "/redfish/v1/Systems", password="wrong")[0] == 401
    assert curl(lab, m, "GET", "/redfish/v1/Systems", user="nobody")[0] == 401
    status, _headers, systems = curl(lab, m, "GET", "/redfish/v1/Systems")
    assert status == 200 and systems["Members"] == [{"@odata.id": SYSTEM}]


def test_tls_is_verified_against_the_lab_ca_and_refused_without_it(lab, m):
    status, headers, _body = curl(lab, m, "GET", "/redfish/v1/", ca=False)
    assert status == -60, headers  # curl: "SSL certificate problem: unable to get local issuer certificate"
    assert "certificate" in headers["stderr"]
    # Python's ssl with the lab CA and host name (IP SAN) checking, in the controller namespace
    script = (
        "import http.client, json, ssl, sys\n"
        "ctx = ssl.create_default_context(cafile=sys.argv[1])\n"
        "conn = http.client.HTTPSConnection(sys.argv[2], int(sys.argv[3]), context=ctx, timeout=10)\n"
        "conn.request('GET', '/redfish/v1/')\n"
        "r = conn.getresponse(); print(r.status, json.loads(r.read())['RedfishVersion'])\n"
    )
    result = lab.run([sys.executable, "-c", script, str(lab.redfish_ca), m.bmc_host, str(m.redfish_port)], timeout=20)
    assert result.returncode == 0 and result.stdout.split() == ["200", "1.15.0"], result.stderr
    result = lab.run([sys.executable, "-c", script.replace("cafile=sys.argv[1]", ""), str(lab.redfish_ca), m.bmc_host, str(m.redfish_port)], timeout=20)
    assert result.returncode != 0 and "CERTIFICATE_VERIFY_FAILED" in result.stderr


def test_an_answer_leaves_in_one_tls_record(lab, m):
    # a BMC's web server sends status line, headers and body in one write; one SSL read returns one
    # record, whole (it waits for all of it), never more
    script = (
        "import socket, ssl, sys\n"
        "ctx = ssl.create_default_context(cafile=sys.argv[1])\n"
        "raw = socket.create_connection((sys.argv[2], int(sys.argv[3])), timeout=10)\n"
        "tls = ctx.wrap_socket(raw, server_hostname=sys.argv[2])\n"
        "tls.sendall(b'GET /redfish/v1/ HTTP/1.1\\r\\nHost: bmc\\r\\n\\r\\n')\n"
        "print(tls.recv(1 << 16).hex())\n"
    )
    result = lab.run([sys.executable, "-c", script, str(lab.redfish_ca), m.bmc_host, str(m.redfish_port)], timeout=20)
    assert result.returncode == 0, result.stderr
    head, _blank, body = bytes.fromhex(result.stdout.strip()).partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 200"), head
    length = next(int(line.split(b":", 1)[1]) for line in head.split(b"\r\n") if line.lower().startswith(b"content-length:"))
    assert len(body) == length and json.loads(body)["RedfishVersion"] == "1.15.0"


def test_power_through_redfish_is_the_machine_and_the_ipmi_face(lab, m):
    assert curl(lab, m, "GET", SYSTEM)[2]["PowerState"] == "Off"
    status, _headers, _body = curl(lab, m, "POST", RESET, {"ResetType": "On"})
    assert status == 204
    assert m.control.status()["power"] == "on"
    assert ipmi_power(lab, m) == "Chassis Power is on"
    assert curl(lab, m, "GET", SYSTEM)[2]["PowerState"] == "On"
    m.wait_os("up")
    assert curl(lab, m, "POST", RESET, {"ResetType": "ForceOff"})[0] == 204
    assert m.control.status()["power"] == "off" and ipmi_power(lab, m) == "Chassis Power is off"
    # and the other way round: IPMI powers on, Redfish reads it
    assert lab.ipmitool(m, "chassis", "power", "on").returncode == 0
    assert curl(lab, m, "GET", SYSTEM)[2]["PowerState"] == "On"


def test_graceful_shutdown_and_restart_go_through_the_os(lab, m):
    m.control.call("power", action="on")
    m.wait_os("up")
    before = m.control.status()["power_changes"]
    assert curl(lab, m, "POST", RESET, {"ResetType": "GracefulRestart"})[0] == 204
    wait_for(lambda: m.control.status()["power_changes"] >= before + 2, what="off and on again")
    m.wait_os("up")
    assert curl(lab, m, "POST", RESET, {"ResetType": "GracefulShutdown"})[0] == 204
    wait_for(lambda: m.power_state() == "off", what="graceful shutdown")
    assert ipmi_power(lab, m) == "Chassis Power is off"
    status, _headers, body = curl(lab, m, "POST", RESET, {"ResetType": "Explode"})
    assert status == 400 and body["error"]["code"].endswith("ActionParameterNotSupported")
    assert curl(lab, m, "POST", RESET, {})[0] == 400


def test_boot_override_from_redfish_reads_back_through_ipmi(lab, m):
    status, headers, system = curl(lab, m, "GET", SYSTEM)
    tag = headers["etag"]
    patch = {"Boot": {"BootSourceOverrideTarget": "Pxe", "BootSourceOverrideEnabled": "Continuous", "BootSourceOverrideMode": "UEFI"}}
    assert curl(lab, m, "PATCH", SYSTEM, patch, headers={"If-Match": 'W/"0000000000000000"'})[0] == 412
    assert m.control.status()["boot_device"] == "default"
    status, headers, system = curl(lab, m, "PATCH", SYSTEM, patch, headers={"If-Match": tag})
    assert status == 200 and system["Boot"]["BootSourceOverrideTarget"] == "Pxe" and headers["etag"] != tag
    out = lab.ipmitool(m, "chassis", "bootparam", "get", "5").stdout
    assert "Force PXE" in out and "Options apply to all future boots" in out and "BIOS EFI boot" in out
    status, _headers, body = curl(lab, m, "PATCH", SYSTEM, {"Boot": {"BootSourceOverrideTarget": "Usb"}})
    assert status == 400 and body["error"]["code"].endswith("PropertyValueNotInList")


def test_boot_override_from_ipmi_reads_back_through_redfish(lab, m):
    assert lab.ipmitool(m, "chassis", "bootdev", "cdrom").returncode == 0
    boot = curl(lab, m, "GET", SYSTEM)[2]["Boot"]
    assert (boot["BootSourceOverrideTarget"], boot["BootSourceOverrideEnabled"], boot["BootSourceOverrideMode"]) == ("Cd", "Once", "Legacy")
    # a one-time override is used up by the next boot, for both faces
    assert curl(lab, m, "POST", RESET, {"ResetType": "On"})[0] == 204
    boot = curl(lab, m, "GET", SYSTEM)[2]["Boot"]
    assert (boot["BootSourceOverrideTarget"], boot["BootSourceOverrideEnabled"]) == ("None", "Disabled")
    assert "Boot Flag Invalid" in lab.ipmitool(m, "chassis", "bootparam", "get", "5").stdout


def test_session_limit_refuses_the_fifth_login_and_logout_frees_a_slot(lab, m):
    credentials = {"UserName": "operator", "Password": m.bmc_password}
    sessions = []
    for _login in range(4):
        status, headers, body = curl(lab, m, "POST", "/redfish/v1/SessionService/Sessions", credentials, user=None)
        assert status == 201 and headers["location"] == body["@odata.id"] and body["UserName"] == "operator"
        assert "Password" not in body or body["Password"] is None
        sessions.append((headers["x-auth-token"], headers["location"]))
    status, _headers, body = curl(lab, m, "POST", "/redfish/v1/SessionService/Sessions", credentials, user=None)
    assert status == 503 and body["error"]["code"].endswith("SessionLimitExceeded")
    assert curl(lab, m, "GET", SYSTEM, token=sessions[0][0])[0] == 200
    assert curl(lab, m, "GET", SYSTEM)[0] == 200  # basic auth needs no session
    token, location = sessions.pop()
    assert curl(lab, m, "DELETE", location, token=token)[0] == 204
    assert curl(lab, m, "GET", SYSTEM, token=token)[0] == 401
    status, headers, _body = curl(lab, m, "POST", "/redfish/v1/SessionService/Sessions", credentials, user=None)
    assert status == 201
    wrong = dict(credentials, Password="wrong")
    assert curl(lab, m, "POST", "/redfish/v1/SessionService/Sessions", wrong, user=None)[0] == 401


def test_viewer_reads_but_may_not_reset(lab, m):
    assert curl(lab, m, "GET", SYSTEM, user="viewer")[0] == 200
    status, _headers, body = curl(lab, m, "POST", RESET, {"ResetType": "On"}, user="viewer")
    assert status == 403 and body["error"]["code"].endswith("InsufficientPrivilege")
    assert m.power_state() == "off"
    assert curl(lab, m, "POST", RESET, {"ResetType": "On"}, user="operator")[0] == 204
    assert m.power_state() == "on"


def test_dell_profile_lacks_powercycle_and_gracefulrestart(lab, m):
    m.redfish_configure(profile="dell", session_limit=1)
    system_path = "/redfish/v1/Systems/System.Embedded.1"
    assert curl(lab, m, "GET", "/redfish/v1/Systems")[2]["Members"] == [{"@odata.id": system_path}]
    system = curl(lab, m, "GET", system_path)[2]
    allowed = system["Actions"]["#ComputerSystem.Reset"]["ResetType@Redfish.AllowableValues"]
    assert "PowerCycle" not in allowed and "GracefulRestart" not in allowed and "On" in allowed
    changes = m.control.status()["power_changes"]
    assert curl(lab, m, "POST", system_path + "/Actions/ComputerSystem.Reset", {"ResetType": "PowerCycle"})[0] == 400
    assert m.control.status()["power_changes"] == changes and m.power_state() == "off"
    assert curl(lab, m, "POST", system_path + "/Actions/ComputerSystem.Reset", {"ResetType": "On"})[0] == 204
    assert curl(lab, m, "POST", system_path + "/Actions/ComputerSystem.Reset", {"ResetType": "On"})[0] == 409
    credentials = {"UserName": "admin", "Password": m.bmc_password}
    assert curl(lab, m, "POST", "/redfish/v1/SessionService/Sessions", credentials, user=None)[0] == 201
    status, _headers, body = curl(lab, m, "POST", "/redfish/v1/SessionService/Sessions", credentials, user=None)
    assert status == 503 and "RAC0218" in body["error"]["@Message.ExtendedInfo"][0]["MessageId"]


def test_boot_ignored_profile_accepts_and_ignores_the_override(lab, m):
    m.redfish_configure(profile="boot_ignored")
    status, _headers, _body = curl(lab, m, "PATCH", SYSTEM, {"Boot": {"BootSourceOverrideTarget": "Pxe", "BootSourceOverrideEnabled": "Once"}})
    assert status == 204
    assert curl(lab, m, "GET", SYSTEM)[2]["Boot"]["BootSourceOverrideTarget"] == "None"
    assert m.control.status()["boot_device"] == "default"
    assert "Boot Flag Invalid" in lab.ipmitool(m, "chassis", "bootparam", "get", "5").stdout


def test_settings_profile_wants_patches_at_its_settings_object(lab, m):
    m.redfish_configure(profile="settings")
    status, headers, system = curl(lab, m, "GET", SYSTEM)
    settings = system["@Redfish.Settings"]["SettingsObject"]["@odata.id"]
    assert status == 200 and settings == SYSTEM + "/Settings" and headers["allow"] == "GET, HEAD"
    patch = {"Boot": {"BootSourceOverrideTarget": "Pxe", "BootSourceOverrideEnabled": "Once"}}
    status, headers, body = curl(lab, m, "PATCH", SYSTEM, patch)
    assert status == 405 and headers["allow"] == "GET, HEAD" and settings in body["error"]["message"]
    status, headers, pending = curl(lab, m, "GET", settings)
    assert status == 200 and pending["Boot"]["BootSourceOverrideTarget"] == "None" and "PATCH" in headers["allow"]
    assert curl(lab, m, "PATCH", settings, patch, headers={"If-Match": 'W/"0000000000000000"'})[0] == 412
    assert m.control.status()["boot_device"] == "default"
    status, _headers, pending = curl(lab, m, "PATCH", settings, patch, headers={"If-Match": headers["etag"]})
    assert status == 200 and pending["Boot"]["BootSourceOverrideTarget"] == "Pxe"
    assert curl(lab, m, "GET", SYSTEM)[2]["Boot"]["BootSourceOverrideTarget"] == "Pxe"  # applied at once (no reboot-to-apply here)
    assert "Force PXE" in lab.ipmitool(m, "chassis", "bootparam", "get", "5").stdout


def test_multi_profile_second_system_is_not_the_machine(lab, m):
    m.redfish_configure(profile="multi")
    second = "/redfish/v1/Systems/2"
    assert curl(lab, m, "GET", "/redfish/v1/Systems")[2]["Members"] == [{"@odata.id": SYSTEM}, {"@odata.id": second}]
    assert curl(lab, m, "GET", second)[2]["PowerState"] == "Off"
    assert curl(lab, m, "POST", second + "/Actions/ComputerSystem.Reset", {"ResetType": "ForceRestart"})[0] == 409
    assert curl(lab, m, "POST", second + "/Actions/ComputerSystem.Reset", {"ResetType": "On"}, user="viewer")[0] == 403
    changes = m.control.status()["power_changes"]
    assert curl(lab, m, "POST", second + "/Actions/ComputerSystem.Reset", {"ResetType": "On"})[0] == 204
    assert curl(lab, m, "GET", second)[2]["PowerState"] == "On" and curl(lab, m, "GET", SYSTEM)[2]["PowerState"] == "Off"
    assert m.control.status()["power_changes"] == changes and ipmi_power(lab, m) == "Chassis Power is off"
    assert curl(lab, m, "PATCH", second, {"Boot": {"BootSourceOverrideTarget": "Pxe"}})[0] == 405
    assert curl(lab, m, "POST", second + "/Actions/ComputerSystem.Reset", {"ResetType": "ForceOff"})[0] == 204
    assert curl(lab, m, "GET", second)[2]["PowerState"] == "Off"


def test_unknown_profile_or_fault_is_refused_with_the_choices(lab, m):
    from pmlab_lib.control import ControlError

    with pytest.raises(ControlError, match="generic, dell, boot_ignored, settings, multi"):
        m.redfish_configure(profile="hpe")
    with pytest.raises(ControlError, match="503, silent, slow, task"):
        m.redfish_configure(fault={"mode": "explode"})


def test_fault_503_answers_busy_then_recovers(lab, m):
    m.redfish_configure(fault={"mode": "503", "count": 2})
    for _answer in range(2):
        status, headers, body = curl(lab, m, "GET", SYSTEM)
        assert status == 503 and headers["retry-after"] == "1" and body["error"]["code"].endswith("ServiceTemporarilyUnavailable")
    assert curl(lab, m, "GET", SYSTEM)[0] == 200


def test_fault_silent_accepts_tcp_and_never_answers(lab, m):
    m.redfish_configure(fault="silent")
    result = lab.run(["curl", "-sS", "-v", "--max-time", "2", "--cacert", str(lab.redfish_ca), m.redfish_url + "/redfish/v1/"], timeout=20)
    assert result.returncode == 28  # operation timed out ...
    assert "Connected to" in result.stderr  # ... after the TCP connection was accepted
    m.redfish_configure(fault="none")
    assert curl(lab, m, "GET", "/redfish/v1/", user=None)[0] == 200


def test_fault_slow_delays_answers_and_power(lab, m):
    m.redfish_configure(fault={"mode": "slow", "delay": 3})
    assert curl(lab, m, "GET", "/redfish/v1/", user=None, max_time=1)[0] == -28
    m.redfish_configure(fault={"mode": "slow", "delay": 0, "power_delay": 3})
    assert curl(lab, m, "POST", RESET, {"ResetType": "On"})[0] == 204
    assert curl(lab, m, "GET", SYSTEM)[2]["PowerState"] == "PoweringOn"  # success reported before the machine changed
    assert m.power_state() == "off"
    wait_for(lambda: m.power_state() == "on", what="delayed power on")
    assert curl(lab, m, "GET", SYSTEM)[2]["PowerState"] == "On"


def test_fault_task_answers_202_with_a_task_monitor(lab, m):
    m.redfish_configure(fault={"mode": "task", "delay": 2})
    status, headers, task = curl(lab, m, "POST", RESET, {"ResetType": "On"})
    assert status == 202 and task["TaskState"] == "Running"
    monitor = headers["location"]
    assert curl(lab, m, "GET", monitor)[0] == 202 and m.power_state() == "off"
    wait_for(lambda: curl(lab, m, "GET", monitor)[0] == 204, what="task monitor done")
    assert m.power_state() == "on" and ipmi_power(lab, m) == "Chassis Power is on"
    assert curl(lab, m, "GET", task["@odata.id"])[2]["TaskState"] == "Completed"


def test_sensors_follow_the_bmc_sensor_file(lab, m):
    chassis = "/redfish/v1/Chassis/1"
    thermal = curl(lab, m, "GET", chassis + "/Thermal")[2]
    cpu = [t for t in thermal["Temperatures"] if t["Name"] == "CPU Temp"][0]
    assert cpu["ReadingCelsius"] == 45.0 and cpu["UpperThresholdCritical"] == 95.0 and cpu["Status"]["Health"] == "OK"
    sensors = json.loads(m.bmc_sensors_file.read_text())
    original = json.dumps(sensors)
    try:
        sensors[0]["value"] = 97.0
        m.bmc_sensors_file.write_text(json.dumps(sensors))
        sensor = curl(lab, m, "GET", chassis + "/Sensors/CPUTemp")[2]
        assert sensor["Reading"] == 97.0 and sensor["ReadingUnits"] == "Cel" and sensor["Status"]["Health"] == "Critical"
        assert curl(lab, m, "GET", SYSTEM)[2]["Status"]["Health"] == "Critical"
        rows = {line.split("|")[0].strip(): line for line in lab.ipmitool(m, "sdr", "list").stdout.splitlines()}
        assert "97 degrees C" in rows["CPU Temp"]  # the IPMI face reads the same file
        power = curl(lab, m, "GET", chassis + "/Power")[2]
        assert [v["ReadingVolts"] for v in power["Voltages"]] == [12.1]
    finally:
        m.bmc_sensors_file.write_text(original)


@pytest.mark.skipif(not shutil.which("rf_protocol_validator", path=str(Path(sys.executable).parent)), reason="redfish-protocol-validator not installed")
def test_dmtf_protocol_validator_finds_no_failure(lab, m, tmp_path):
    validator = str(Path(sys.executable).parent / "rf_protocol_validator")
    result = lab.run(
        ["env", f"REQUESTS_CA_BUNDLE={lab.redfish_ca}", validator, "-r", m.redfish_url, "-u", "admin", "-p", m.bmc_password,
         "--ca-bundle", str(lab.redfish_ca), "--avoid-http-redirect", "--report-dir", str(tmp_path), "--report-type", "tsv"],
        timeout=300,
    )
    summary = json.loads((tmp_path / "results.json").read_text())["TestResults"]["Protocol Validations"]
    failures = [line for report in tmp_path.glob("*.tsv") for line in report.read_text().splitlines() if "\tFAIL\t" in line]
    assert summary["fail"] == 0 and summary["pass"] > 250, (summary, failures, result.stdout[-2000:])


def test_pmlab_cli_loopback_redfish_and_down_leaves_nothing(tmp_path):
    folder = tmp_path / "cli"
    pmlab = [sys.executable, str(LAB_ROOT / "pmlab"), "--lab-dir", str(folder)]
    up = subprocess.run(pmlab + ["up", "--machines", "1", "--redfish", "--loopback"], capture_output=True, text=True, timeout=120, check=False)
    try:
        assert up.returncode == 0, up.stderr
        lab = Lab.attach(folder)
        m = lab.machines[0]
        host = json.loads(lab.inventory_path.read_text().split("\n", 1)[1])["all"]["children"]["pm_lab"]["hosts"]["lab01"]
        assert host["pm_bmc_host"] == "127.0.0.1" and host["pm_bmc_port"] == m.redfish_port != m.bmc_port == host["pm_ipmi_port"]
        assert host["pm_bmc_ca_path"] == str(lab.redfish_ca)
        assert curl(lab, m, "POST", RESET, {"ResetType": "On"})[0] == 204 and m.power_state() == "on"
        switched = subprocess.run(pmlab + ["redfish", "lab01", "--profile", "dell", "--fault", '{"mode": "503", "count": 1}'],
                                  capture_output=True, text=True, timeout=30, check=False)
        assert switched.returncode == 0 and json.loads(switched.stdout)["profile"] == "dell"
        assert curl(lab, m, "GET", "/redfish/v1/Systems")[0] == 503
        assert curl(lab, m, "GET", "/redfish/v1/Systems")[2]["Members"][0]["@odata.id"].endswith("System.Embedded.1")
        pids = list(lab.pids)
        assert m.redfish_pid in pids
    finally:
        down = subprocess.run(pmlab + ["down"], capture_output=True, text=True, timeout=60, check=False)
    assert down.returncode == 0, down.stderr
    for pid in pids:
        assert not os.path.exists(f"/proc/{pid}") or open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()[0] == "Z"
    assert not (folder / "redfish-ca").exists() and not (folder / "lab.json").exists()
    probe = subprocess.run(["curl", "-sS", "--max-time", "3", "-k", f"https://127.0.0.1:{m.redfish_port}/redfish/v1/"],
                           capture_output=True, text=True, check=False)
    assert probe.returncode == 7  # connection refused: nobody listens any more


def test_down_stops_every_redfish_face_and_namespace(tmp_path):
    lab = Lab.up(machines=2, state="off", bmc="lab", redfish=True, boot_delay=0.1, lab_dir=tmp_path / "lab")
    namespaces = list(lab.namespaces)
    pids = [m.redfish_pid for m in lab.machines] + [m.bmc_pid for m in lab.machines]
    assert all(pid in lab.pids for pid in pids)
    lab.down()
    listing = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True, check=False).stdout
    assert not [n for n in namespaces if n in listing]
    for pid in pids:
        assert not os.path.exists(f"/proc/{pid}") or open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()[0] == "Z"
    assert not (tmp_path / "lab" / "redfish-ca").exists()
