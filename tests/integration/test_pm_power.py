"""pm_power against the lab's Redfish face, an IPMI-only lab BMC and sushy-emulator, through ansible.

What the module did is read back by the machine itself (``m.control.status()``),
by an independent HTTP client (curl with the lab CA) and by ipmitool (boot
flags). The labs are namespaced (BMCs on 443 and 623, as real ones), so the
module runs in the lab's controller namespace; the ``protocol: auto`` tests
against a silent or closed TCP port use a loopback lab and a socket of their
own on 127.0.0.1, and sushy-emulator (``--fake``, TLS) listens on 127.0.0.1.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import socket
import subprocess
import threading
from pathlib import Path
from typing import Any, Dict, Iterator, List, Tuple

import pytest

from pmtest.ansible_run import REPO_ROOT, run_module, run_playbook
from pmtest.redfish_lab import Sushy, free_port, lab_curl, lab_fixture, lab_get, redfish_power, sessions, sushy_fixture

pytestmark = [pytest.mark.lab, pytest.mark.skipif(os.geteuid() != 0, reason="the lab's namespaces need root")]

MODULE = "ctys.pm.pm_power"

lab = lab_fixture("pm-power-rf", redfish=True, boot_delay=0.2)
ipmi_lab = lab_fixture("pm-power-ipmi", name="ipmi_lab", machines=1, boot_delay=0.2)  # its BMC speaks IPMI only (nothing on 443)
sushy = sushy_fixture()


def rf_args(lab, machine, **extra: Any) -> Dict[str, Any]:
    args: Dict[str, Any] = {"bmc": machine.bmc_host, "user": machine.bmc_user, "password": machine.bmc_password,
                            "ca_path": str(lab.redfish_ca), "connect_timeout": 3, "timeout": 30}
    args.update(extra)
    return args


def power(lab, args: Dict[str, Any], check: bool = False, **kw: Any) -> Dict[str, Any]:
    return run_module(MODULE, args, netns=lab.controller_netns if lab is not None else None, check=check, diff=True, **kw).result


def fingerprint(lab, machine) -> str:
    """The BMC's certificate's SHA-256 fingerprint, as openssl prints it."""
    shown = lab.run(["openssl", "s_client", "-connect", f"{machine.bmc_host}:{machine.redfish_port}", "-CAfile", str(lab.redfish_ca)],
                    input="", timeout=20)
    pem = shown.stdout[shown.stdout.index("-----BEGIN CERTIFICATE-----"):shown.stdout.index("-----END CERTIFICATE-----") + 25]
    out = subprocess.run(["openssl", "x509", "-noout", "-fingerprint", "-sha256"], input=pem, capture_output=True, text=True, check=True)
    return out.stdout.strip().split("=", 1)[1]


@pytest.mark.compat
def test_on_and_off_four_steps_read_back_by_the_machine_and_by_curl(lab):
    m = lab.machines[0]
    for state, word, redfish in (("on", "on", "On"), ("off", "off", "Off")):
        args = rf_args(lab, m, protocol="redfish", state=state)
        before = m.control.status()["power"]
        checked = power(lab, args, check=True)
        assert checked.get("failed") is not True, checked
        assert checked["changed"] is True and checked["protocol"] == "redfish" and checked["power_state_before"] == before
        assert m.control.status()["power"] == before, "check mode must not change the machine"
        applied = power(lab, args)
        assert applied.get("failed") is not True, applied
        assert applied["changed"] is True and applied["power_state"] == word and applied["protocol"] == "redfish"
        assert applied["reset_type"] == ("On" if state == "on" else "ForceOff")
        assert applied["diff"]["before"]["power_state"] == before and applied["diff"]["after"]["power_state"] == word
        assert m.control.status()["power"] == word and redfish_power(lab, m) == redfish
        again = power(lab, args, check=True)
        assert again["changed"] is False and again["power_state"] == word
        changes = m.control.status()["power_changes"]
        last = power(lab, args)
        assert last["changed"] is False and last["power_state"] == word and last["reset_type"] is None
        assert m.control.status()["power_changes"] == changes  # no request was sent
    assert sessions(lab, m) == [], "every session is deleted at the end of its task"


def test_boot_device_set_over_redfish_read_back_by_ipmitool(lab):
    m = lab.machines[1]
    result = power(lab, rf_args(lab, m, protocol="redfish", boot_device="network", boot_persistent=True, boot_mode="uefi"))
    assert result.get("failed") is not True, result
    assert result["changed"] is True and result["boot_device"] == {"device": "network", "persistent": True, "mode": "uefi"}
    shown = lab.ipmitool(m, "chassis", "bootparam", "get", "5")
    assert shown.returncode == 0, shown.stderr
    assert "Force PXE" in shown.stdout and "Options apply to all future boots" in shown.stdout and "BIOS EFI boot" in shown.stdout
    cleared = power(lab, rf_args(lab, m, protocol="redfish", boot_device="default"))
    assert cleared["changed"] is True and m.control.status()["boot_device"] == "default"


def test_protocol_auto_finds_redfish_and_falls_back_to_ipmi_on_an_ipmi_only_bmc(lab, ipmi_lab):
    m = lab.machines[0]
    found = power(lab, rf_args(lab, m))  # protocol unset: auto
    assert found.get("failed") is not True, found
    assert found["protocol"] == "redfish" and found["power_state"] == m.control.status()["power"]
    old = ipmi_lab.machines[0]
    fallen = power(ipmi_lab, {"bmc": old.bmc_host, "user": old.bmc_user, "password": old.bmc_password, "protocol": "auto",
                              "state": "on", "connect_timeout": 3, "timeout": 30})
    assert fallen.get("failed") is not True, fallen
    assert fallen["protocol"] == "ipmi" and fallen["changed"] is True and fallen["power_state"] == "on"
    assert old.control.status()["power"] == "on"
    assert ipmi_lab.ipmitool(old, "chassis", "power", "status").stdout.strip().endswith("on")


def test_certificate_refused_without_ca_path_accepted_with_it_or_the_fingerprint(lab):
    m = lab.machines[0]
    for protocol in ("redfish", "auto"):  # auto never falls back to IPMI on a refused certificate
        args = rf_args(lab, m, protocol=protocol)
        del args["ca_path"]
        refused = power(lab, args)
        assert refused["failed"] is True and refused["protocol"] == "redfish"
        assert f"the certificate of the BMC at {m.bmc_host}:443 was refused" in refused["msg"] and "ca_path" in refused["msg"]
    accepted = power(lab, rf_args(lab, m, protocol="redfish"))
    assert accepted.get("failed") is not True and accepted["protocol"] == "redfish"
    args = rf_args(lab, m, protocol="redfish", certificate_fingerprint=fingerprint(lab, m))
    del args["ca_path"]
    pinned = power(lab, args)
    assert pinned.get("failed") is not True, pinned
    wrong = power(lab, dict(args, certificate_fingerprint="00" * 32))
    assert wrong["failed"] is True and "not the pinned one" in wrong["msg"]


def test_wrong_password_fails_at_once_and_changes_nothing(lab):
    m = lab.machines[0]
    changes = m.control.status()["power_changes"]
    result = power(lab, rf_args(lab, m, protocol="redfish", password="not-the-password", state="on", timeout=60))
    assert result["failed"] is True
    assert result["msg"] == f"the BMC at {m.bmc_host}:443 refused the credentials of user '{m.bmc_user}' (HTTP 401); check user and password"
    assert m.control.status()["power_changes"] == changes
    assert sessions(lab, m) == []


def test_mixed_fleet_one_redfish_one_ipmi_target_in_one_task(lab):
    rf, ipmi = lab.machines
    power(lab, rf_args(lab, ipmi, protocol="redfish", state="off"))
    power(lab, rf_args(lab, rf, protocol="redfish", state="off"))
    args = {"user": rf.bmc_user, "ca_path": str(lab.redfish_ca), "state": "on", "timeout": 30,
            "targets": [{"bmc": rf.bmc_host, "name": "rf", "protocol": "redfish", "password": rf.bmc_password},
                        {"bmc": ipmi.bmc_host, "name": "ipmi", "protocol": "ipmi", "port": ipmi.bmc_port, "password": ipmi.bmc_password}]}
    result = power(lab, args)
    assert result.get("failed") is not True, result["msg"]
    by_name = {entry["name"]: entry for entry in result["results"]}
    assert by_name["rf"]["protocol"] == "redfish" and by_name["rf"]["bmc"] == f"{rf.bmc_host}:443"
    assert by_name["ipmi"]["protocol"] == "ipmi" and by_name["ipmi"]["bmc"] == f"{ipmi.bmc_host}:{ipmi.bmc_port}"
    assert all(entry["changed"] and entry["power_state"] == "on" and not entry["failed"] for entry in by_name.values())
    assert result["summary"] == {"targets": 2, "changed": 2, "failed": 0, "power_on": 2, "power_off": 0, "ipmi": 1, "redfish": 1}
    assert rf.control.status()["power"] == "on" and ipmi.control.status()["power"] == "on"
    assert lab.ipmitool(ipmi, "chassis", "power", "status").stdout.strip().endswith("on") and redfish_power(lab, rf) == "On"
    for machine in lab.machines:
        machine.control.call("power", action="off")


def mixed_inventory(lab, folder: Path) -> Path:
    """The lab's inventory with lab01 trusting its BMC by fingerprint (no CA) and lab02 asked over IPMI."""
    inventory = json.loads(lab.inventory_path.read_text().split("\n", 1)[1])  # a comment line, then JSON
    hosts = inventory["all"]["children"]["pm_lab"]["hosts"]
    rf, ipmi = lab.machines
    del hosts[rf.name]["pm_bmc_ca_path"]
    hosts[rf.name]["pm_bmc_certificate_fingerprint"] = fingerprint(lab, rf)
    hosts[ipmi.name].update(pm_bmc_protocol="ipmi", pm_bmc_port=hosts[ipmi.name]["pm_ipmi_port"])
    path = folder / "mixed.json"
    path.write_text(json.dumps(inventory))
    return path


def power_playbook(lab, inventory: Path, state: str, check: bool = False, verbosity: int = 0) -> Tuple[Any, Dict[str, Any]]:
    run = run_playbook(REPO_ROOT / "playbooks" / "power.yml", inventory=inventory, netns=lab.controller_netns, check=check,
                       verbosity=verbosity, extra_vars={"pm_power_state": state, "pm_power_timeout": 30}, timeout=300)
    assert run.rc == 0, run.stdout[-3000:] + run.stderr[-2000:]
    return run, next(t for t in run.tasks if t["action"].endswith(".pm_power"))["result"]


@pytest.mark.compat
def test_power_playbook_asks_each_host_over_its_pm_bmc_protocol(lab, tmp_path):
    """playbooks/power.yml on a mixed inventory, four steps; the machines, curl and ipmitool are the witnesses."""
    rf, ipmi = lab.machines
    for machine in lab.machines:
        machine.control.call("power", action="off")
    inventory = mixed_inventory(lab, tmp_path)

    _run, checked = power_playbook(lab, inventory, "on", check=True)
    assert checked["changed"] is True and checked["summary"]["changed"] == 2
    assert [m.control.status()["power"] for m in lab.machines] == ["off", "off"], "check mode must not change a machine"

    run, applied = power_playbook(lab, inventory, "on", verbosity=3)
    by_name = {entry["name"]: entry for entry in applied["results"]}
    assert by_name[rf.name]["protocol"] == "redfish" and by_name[rf.name]["bmc"] == f"{rf.bmc_host}:443"
    assert by_name[ipmi.name]["protocol"] == "ipmi" and by_name[ipmi.name]["bmc"] == f"{ipmi.bmc_host}:{ipmi.bmc_port}"
    assert applied["summary"] == {"targets": 2, "changed": 2, "failed": 0, "power_on": 2, "power_off": 0, "ipmi": 1, "redfish": 1}
    assert redfish_power(lab, rf) == "On" and lab.ipmitool(ipmi, "chassis", "power", "status").stdout.strip().endswith("on")
    for machine in lab.machines:
        assert machine.bmc_password not in run.stdout + run.stderr

    _run, checked = power_playbook(lab, inventory, "on", check=True)
    assert checked["changed"] is False
    changes = [m.control.status()["power_changes"] for m in lab.machines]
    _run, again = power_playbook(lab, inventory, "on")
    assert again["changed"] is False and {entry["power_state"] for entry in again["results"]} == {"on"}
    assert [m.control.status()["power_changes"] for m in lab.machines] == changes
    assert sessions(lab, rf) == [], "every session is deleted at the end of its task"
    for machine in lab.machines:
        machine.control.call("power", action="off")


def set_redfish_sensor(lab, machine, name: str, value: float) -> None:
    """One sensor of the machine's BMC, seen through the Redfish face (curl) before the test goes on."""
    machine.set_bmc_sensor(name, value)
    chassis = lab_get(lab, machine, "/redfish/v1/Chassis")["Members"][0]["@odata.id"]
    shown = lab_get(lab, machine, f"{chassis}/Thermal")["Temperatures"]
    assert any(entry["Name"] == name and entry["ReadingCelsius"] == value for entry in shown), shown


@pytest.mark.parametrize("protocol", ["redfish", "auto"])
def test_health_playbook_reads_a_machine_that_is_off_from_its_redfish_bmc(lab, protocol):
    """playbooks/health.yml with pm_bmc_protocol redfish (the lab's inventory) or auto: both machines are off."""
    hot = lab.machines[1]
    set_redfish_sensor(lab, hot, "CPU Temp", 97.0)
    try:
        run = run_playbook(REPO_ROOT / "playbooks" / "health.yml", inventory=lab.inventory_path, netns=lab.controller_netns,
                           extra_vars={"pm_bmc_protocol": protocol, "pm_health_ssh_timeout": 3}, timeout=300)
        assert run.rc == 0, run.stdout[-3000:] + run.stderr[-2000:]
        read = [t for t in run.tasks if t["action"].endswith(".pm_sensors") and t["result"].get("source") in ("ipmi", "redfish")]
        assert sorted((t["host"], t["result"]["source"]) for t in read) == [(m.name, "redfish") for m in lab.machines]
        summary = next(t for t in run.tasks if t["task"] == "Summary")["result"]["msg"]
        cool = lab.machines[0]
        assert summary[cool.name]["side"] == "bmc" and summary[cool.name]["health"] == "OK"
        assert summary[hot.name]["side"] == "bmc" and summary[hot.name]["health"] == "CRITICAL"
        assert any(alarm.startswith("CPU Temp critical: 97 °C") for alarm in summary[hot.name]["alarms"]), summary[hot.name]
        assert summary[cool.name]["bmc_events"] is not None and summary[cool.name]["power_watts"] is not None
    finally:
        set_redfish_sensor(lab, hot, "CPU Temp", 45.0)
    assert all(sessions(lab, m) == [] for m in lab.machines)


def test_pm_sensors_source_redfish_reads_the_lab_face(lab):
    m = lab.machines[0]
    args = {"source": "redfish", "bmc": m.bmc_host, "user": m.bmc_user, "password": m.bmc_password, "ca_path": str(lab.redfish_ca)}
    result = run_module("ctys.pm.pm_sensors", args, netns=lab.controller_netns).result
    assert result.get("failed") is not True, result
    assert result["source"] == "redfish" and result["protocol"] == "redfish" and result["bmc"] == f"{m.bmc_host}:443"
    assert result["readings"] and result["health"] in ("OK", "WARNING", "CRITICAL")
    assert {"temperature", "fan"} <= {reading["kind"] for reading in result["readings"]}
    refused = run_module("ctys.pm.pm_sensors", dict(args, protocol="ipmi"), netns=lab.controller_netns).result
    assert refused["failed"] is True
    assert refused["msg"] == "protocol 'ipmi' does not match source 'redfish'; set source: ipmi to read the BMC over ipmi, or leave protocol out"


def test_ipmi_only_modules_refuse_redfish_naming_pm_power(lab):
    m = lab.machines[0]
    result = run_module("ctys.pm.pm_ipmi_power", rf_args(lab, m, protocol="redfish"), netns=lab.controller_netns).result
    assert result["failed"] is True
    assert result["msg"] == ("protocol 'redfish' is not valid for ctys.pm.pm_ipmi_power, which speaks IPMI only; "
                             "use ctys.pm.pm_power for Redfish or auto, or set protocol: ipmi")


def test_a_silent_redfish_bmc_is_cut_off_at_the_timeout_the_other_target_answers(lab):
    """The hard bound (issue 20): a BMC that accepts TCP and never answers fails naming host, port and
    step; the IPMI target of the same task reports its state; the task ends (no timing asserted)."""
    silent, ipmi = lab.machines
    silent.redfish_configure(fault={"mode": "silent"})
    try:
        args = {"user": silent.bmc_user, "ca_path": str(lab.redfish_ca), "state": "query", "timeout": 4, "connect_timeout": 2,
                "fail_on": "never",
                "targets": [{"bmc": silent.bmc_host, "name": "silent", "protocol": "redfish", "password": silent.bmc_password},
                            {"bmc": ipmi.bmc_host, "name": "ipmi", "protocol": "ipmi", "port": ipmi.bmc_port, "password": ipmi.bmc_password}]}
        result = power(lab, args)
    finally:
        silent.redfish_configure(fault={"mode": "none"})
    by_name = {entry["name"]: entry for entry in result["results"]}
    assert by_name["ipmi"]["failed"] is False and by_name["ipmi"]["power_state"] == ipmi.control.status()["power"]
    assert by_name["silent"]["failed"] is True and f"{silent.bmc_host}:443" in by_name["silent"]["msg"], by_name["silent"]
    assert result["summary"]["failed"] == 1


# ----------------------------------------------------------------- several systems on one BMC (lab profile multi)
def test_resource_id_names_the_system_when_a_bmc_has_several(lab):
    """No resource_id: the error names both ids; resource_id 2 changes only system 2 (curl), never the machine of system 1."""
    m = lab.machines[0]
    m.control.call("power", action="off")
    m.redfish_configure(profile="multi")
    try:
        changes = m.control.status()["power_changes"]
        missing = power(lab, rf_args(lab, m, protocol="redfish", state="on"))
        assert missing["failed"] is True
        assert missing["msg"] == (f"resource_id is missing; the BMC at {m.bmc_host}:443 manages several systems (1, 2), "
                                  "set resource_id to one of them")
        assert redfish_power(lab, m, "/redfish/v1/Systems/2") == "Off" and m.control.status()["power_changes"] == changes

        checked = power(lab, rf_args(lab, m, protocol="redfish", state="on", resource_id="2"), check=True)
        assert checked.get("failed") is not True, checked
        assert checked["changed"] is True and checked["resource_id"] == "2" and redfish_power(lab, m, "/redfish/v1/Systems/2") == "Off"
        applied = power(lab, rf_args(lab, m, protocol="redfish", state="on", resource_id="2"))
        assert applied.get("failed") is not True, applied
        assert applied["changed"] is True and applied["resource_id"] == "2" and applied["reset_type"] == "On" and applied["power_state"] == "on"
        assert redfish_power(lab, m, "/redfish/v1/Systems/2") == "On"  # curl: system 2 is on ...
        assert redfish_power(lab, m, "/redfish/v1/Systems/1") == "Off"  # ... system 1 is not
        status = m.control.status()  # and the machine behind system 1 was never touched
        assert status["power"] == "off" and status["power_changes"] == changes
        again = power(lab, rf_args(lab, m, protocol="redfish", state="on", resource_id="2"))
        assert again["changed"] is False and again["reset_type"] is None

        first = power(lab, rf_args(lab, m, protocol="redfish", state="query", resource_id="1"))
        assert first.get("failed") is not True and first["resource_id"] == "1" and first["power_state"] == "off"
        wrong = power(lab, rf_args(lab, m, protocol="redfish", state="on", resource_id="3"))
        assert wrong["failed"] is True
        assert wrong["msg"] == f"resource_id '3' is not valid; the BMC at {m.bmc_host}:443 has the system(s) 1, 2"
        assert m.control.status()["power_changes"] == changes
    finally:
        lab_curl(lab, m, "POST", "/redfish/v1/Systems/2/Actions/ComputerSystem.Reset", {"ResetType": "ForceOff"})
        m.redfish_configure(profile="generic")


# ----------------------------------------------------------------- @Redfish.Settings (lab profile settings)
def test_settings_profile_boot_device_goes_through_the_settings_object(lab):
    """The system refuses a PATCH of its own; pm_power PATCHes its SettingsObject; curl and ipmitool read the override back."""
    m = lab.machines[1]
    m.control.call("bootdev", device="default", persistent=False, uefi=False)  # whatever the tests before left
    m.redfish_configure(profile="settings")
    try:
        system = lab_get(lab, m, "/redfish/v1/Systems/1")
        settings_uri = system["@Redfish.Settings"]["SettingsObject"]["@odata.id"]
        assert settings_uri == "/redfish/v1/Systems/1/Settings"
        refused = lab_curl(lab, m, "PATCH", "/redfish/v1/Systems/1", {"Boot": {"BootSourceOverrideTarget": "Pxe"}})
        assert refused[0] == 405 and m.control.status()["boot_device"] == "default"
        log = m.state_dir / "redfish.log"
        mark = len(log.read_text())

        args = rf_args(lab, m, protocol="redfish", boot_device="cdrom", boot_persistent=True)
        checked = power(lab, args, check=True)
        assert checked.get("failed") is not True and checked["changed"] is True, checked
        assert m.control.status()["boot_device"] == "default"
        applied = power(lab, args)
        assert applied.get("failed") is not True, applied
        assert applied["changed"] is True and applied["boot_device"] == {"device": "cdrom", "persistent": True, "mode": "legacy"}
        for uri in ("/redfish/v1/Systems/1", settings_uri):  # curl: the system and its settings object agree
            boot = lab_get(lab, m, uri)["Boot"]
            assert (boot["BootSourceOverrideTarget"], boot["BootSourceOverrideEnabled"]) == ("Cd", "Continuous"), uri
        shown = lab.ipmitool(m, "chassis", "bootparam", "get", "5").stdout
        assert "CD/DVD" in shown and "Options apply to all future boots" in shown
        written = log.read_text()[mark:]
        assert "Cd/Continuous/Legacy -> cdrom persistent=True (settings object)" in written
        assert '"PATCH /redfish/v1/Systems/1/Settings HTTP/1.1" 200' in written
        assert '"PATCH /redfish/v1/Systems/1 HTTP/1.1"' not in written  # never the system itself
        assert power(lab, args)["changed"] is False

        once = power(lab, rf_args(lab, m, protocol="redfish", boot_device="network", boot_persistent=False, boot_mode="uefi"))
        assert once.get("failed") is not True and once["boot_device"] == {"device": "network", "persistent": False, "mode": "uefi"}, once
        shown = lab.ipmitool(m, "chassis", "bootparam", "get", "5").stdout
        assert "Force PXE" in shown and "Options apply to only next boot" in shown and "BIOS EFI boot" in shown
    finally:
        m.redfish_configure(profile="generic")
        m.control.call("bootdev", device="default", persistent=False, uefi=False)


# ----------------------------------------------------------------- protocol auto: a silent port, a closed port
class SilentPort:
    """A TCP socket on 127.0.0.1 that accepts connections and never sends a byte (the test's own, closed on leaving)."""

    def __init__(self, port: int = 0) -> None:
        self.sock = socket.socket()
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind(("127.0.0.1", port))
        self.sock.listen(8)
        self.sock.settimeout(0.2)
        self.port = self.sock.getsockname()[1]
        self.accepted: List[socket.socket] = []
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._accept, daemon=True)
        self.thread.start()

    def _accept(self) -> None:
        while not self.stop.is_set():
            try:
                conn, _peer = self.sock.accept()
            except (socket.timeout, OSError):
                continue
            self.accepted.append(conn)  # held open, never answered

    def __enter__(self) -> "SilentPort":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.stop.set()
        self.thread.join(5)
        for conn in self.accepted:
            conn.close()
        self.sock.close()


@pytest.fixture
def loop_lab(lab_factory) -> Iterator[Any]:
    """A loopback lab whose BMC speaks IPMI only (UDP on 127.0.0.1), so the test's TCP socket can share its port number."""
    yield lab_factory(machines=1, state="off", bmc="lab", loopback=True, boot_delay=0.2, shutdown_delay=0.2)


def test_auto_on_a_silent_port_falls_back_to_ipmi_there(loop_lab):
    """The Redfish probe meets a TCP port that never answers: IPMI on the same port number (UDP), which is a BMC."""
    m = loop_lab.machines[0]
    args = {"bmc": m.bmc_host, "port": m.bmc_port, "user": m.bmc_user, "password": m.bmc_password, "protocol": "auto",
            "connect_timeout": 2, "timeout": 20}
    with SilentPort(m.bmc_port) as silent:
        result = power(None, dict(args, state="on"))
        probed = len(silent.accepted)
    assert probed >= 1, "the probe never reached the silent port"
    assert result.get("failed") is not True, result
    assert result["protocol"] == "ipmi" and result["changed"] is True and result["power_state"] == "on"
    assert m.control.status()["power"] == "on"
    assert loop_lab.ipmitool(m, "chassis", "power", "status").stdout.strip() == "Chassis Power is on"
    # the same port closed for TCP: refused, so IPMI at once
    closed = power(None, dict(args, state="off"))
    assert closed.get("failed") is not True, closed
    assert closed["protocol"] == "ipmi" and closed["power_state"] == "off" and m.control.status()["power"] == "off"


@pytest.mark.parametrize("kind", ["silent", "closed"])
def test_auto_on_a_port_without_any_bmc_fails_naming_host_and_port(kind):
    """Nothing but a silent (or closed) TCP port: the probe gives up, IPMI gets no answer, the task fails naming 127.0.0.1:port."""
    with contextlib.ExitStack() as stack:
        silent = stack.enter_context(SilentPort()) if kind == "silent" else None
        port = silent.port if silent is not None else free_port()
        result = power(None, {"bmc": "127.0.0.1", "port": port, "user": "admin", "password": "unused-password", "protocol": "auto",
                              "state": "on", "connect_timeout": 2, "timeout": 10})
        assert silent is None or silent.accepted, "the probe never reached the silent port"
    assert result["failed"] is True and result["protocol"] == "ipmi", result
    assert f"127.0.0.1:{port}" in result["msg"], result["msg"]
    assert "unused-password" not in json.dumps(result)


# ----------------------------------------------------------------- sushy-emulator, an independent Redfish peer
# sushy-emulator --fake applies a power change 1 to 11 s after the request, so every apply waits (wait: true) and
# curl reads the state back afterwards; a cycle (no PowerCycle there: ForceOff, wait for Off, On) waits twice.
SUSHY_STEPS: List[Tuple[str, Dict[str, Any]]] = [
    ("on", {"state": "on"}),
    ("soft", {"state": "soft"}),
    ("boot", {"state": "boot"}),  # from off: On; the second time, from on: ForceRestart
    ("reset", {"state": "reset"}),
    ("cycle", {"state": "cycle", "timeout": 30}),
    ("off", {"state": "off"}),
    ("query", {"state": "query"}),
    ("boot persistent", {"state": "query", "boot_device": "cdrom", "boot_persistent": True}),
    ("boot once", {"state": "query", "boot_device": "network", "boot_persistent": False}),
]


def sushy_playbook(sushy: Sushy, folder: Path) -> Path:
    """One play: for each step check mode, apply, curl, check mode again, apply again, curl."""
    system = sushy.system()["@odata.id"]
    read_back = f"curl -sS --max-time 10 --cacert {sushy.cert} {sushy.url}{system}"
    tasks: List[Dict[str, Any]] = []
    for label, args in SUSHY_STEPS:
        for step in ("check", "apply", "check again", "apply again"):
            task: Dict[str, Any] = {"name": f"{label}: {step}", MODULE: args}
            if step.startswith("check"):
                task["check_mode"] = True
            tasks.append(task)
            if step.startswith("apply"):
                tasks.append({"name": f"{label}: curl after {step}", "ansible.builtin.command": read_back, "changed_when": False})
    defaults = {"bmc": "127.0.0.1", "port": sushy.port, "user": "admin", "password": "unused", "ca_path": str(sushy.cert),
                "protocol": "redfish", "wait": True, "timeout": 20, "connect_timeout": 5}
    play = [{"name": "pm_power against sushy-emulator", "hosts": "localhost", "gather_facts": False,
             "module_defaults": {MODULE: defaults}, "tasks": tasks}]
    path = folder / "sushy.yml"
    path.write_text(json.dumps(play, indent=1))  # JSON is YAML
    return path


def test_sushy_four_steps_for_every_state_and_boot_device_read_back_by_curl(sushy, tmp_path):
    assert sushy.power_state() == "Off"
    log = sushy.folder / "emulator.log"
    mark = len(log.read_text())
    run = run_playbook(sushy_playbook(sushy, tmp_path), diff=True, timeout=600)
    results = {task["task"]: task["result"] for task in run.tasks}
    failed = {name: result.get("msg") for name, result in results.items() if result.get("failed")}
    assert run.rc == 0 and not failed, (failed, run.stdout[-3000:])

    def power_read(label: str, step: str) -> str:
        return json.loads(results[f"{label}: curl after {step}"]["stdout"])["PowerState"]

    # (label, changed and reset_type for: check, apply, check again, apply again; power state after)
    expected = [
        ("on", [(True, "On"), (True, "On"), (False, None), (False, None)], "on"),
        ("soft", [(True, "GracefulShutdown"), (True, "GracefulShutdown"), (False, None), (False, None)], "off"),
        ("boot", [(True, "On"), (True, "On"), (True, "ForceRestart"), (True, "ForceRestart")], "on"),
        ("reset", [(True, "ForceRestart")] * 4, "on"),
        ("cycle", [(True, "ForceOff+On")] * 4, "on"),  # sushy offers no PowerCycle: off, wait for Off, on
        ("off", [(True, "ForceOff"), (True, "ForceOff"), (False, None), (False, None)], "off"),
        ("query", [(False, None)] * 4, "off"),
    ]
    for label, steps, after in expected:
        for step, (changed, reset_type) in zip(("check", "apply", "check again", "apply again"), steps):
            result = results[f"{label}: {step}"]
            assert (result["changed"], result["reset_type"], result["protocol"]) == (changed, reset_type, "redfish"), (label, step, result)
            assert result["power_state"] == after, (label, step, result)
        assert power_read(label, "apply") == power_read(label, "apply again") == after.capitalize(), label
    # what reached the emulator, in order (its own log): exactly the reset types reported, none for check mode
    sent = re.findall(r'power state set to "(\w+)"', log.read_text()[mark:])
    assert sent == ["On", "GracefulShutdown", "On", "ForceRestart", "ForceRestart", "ForceRestart",
                    "ForceOff", "On", "ForceOff", "On", "ForceOff"], sent

    persistent = [results[f"boot persistent: {step}"] for step in ("check", "apply", "check again", "apply again")]
    assert [r["changed"] for r in persistent] == [True, True, False, False], persistent
    assert persistent[1]["boot_device"] == {"device": "cdrom", "persistent": True, "mode": "uefi"}
    for step in ("apply", "apply again"):
        boot = json.loads(results[f"boot persistent: curl after {step}"]["stdout"])["Boot"]
        assert (boot["BootSourceOverrideTarget"], boot["BootSourceOverrideEnabled"]) == ("Cd", "Continuous")
    # once: sushy sets the device and ignores BootSourceOverrideEnabled (it always reads back Continuous):
    # pm_power applies it, warns, and so finds it different again every time (never idempotent there)
    once = [results[f"boot once: {step}"] for step in ("check", "apply", "check again", "apply again")]
    assert [r["changed"] for r in once] == [True, True, True, True], once
    for result in (once[1], once[3]):
        assert result["boot_device"]["device"] == "network" and result["boot_device"]["persistent"] is True
        assert any("reads the boot override back as Pxe/Continuous although Pxe/Once was asked" in w for w in result["warnings"]), result
    boot = json.loads(results["boot once: curl after apply again"]["stdout"])["Boot"]
    assert (boot["BootSourceOverrideTarget"], boot["BootSourceOverrideEnabled"]) == ("Pxe", "Continuous")
    assert sushy.power_state() == "Off"
