"""pm_power against the lab's Redfish face and an IPMI-only lab BMC, through ansible.

What the module did is read back by the machine itself (``m.control.status()``),
by an independent HTTP client (curl with the lab CA) and by ipmitool (boot
flags). The labs are namespaced (BMCs on 443 and 623, as real ones), so the
module runs in the lab's controller namespace.
"""

from __future__ import annotations

import json
import os
import subprocess
from typing import Any, Dict, Tuple

import pytest

from pmtest.ansible_run import run_module

pytestmark = [pytest.mark.lab, pytest.mark.skipif(os.geteuid() != 0, reason="the lab's namespaces need root")]

MODULE = "ctys.pm.pm_power"


@pytest.fixture(scope="module")
def lab(tmp_path_factory):
    from pmlab_lib.lab import Lab

    with Lab.up(machines=2, state="off", bmc="lab", redfish=True, boot_delay=0.2, shutdown_delay=0.2,
                lab_dir=tmp_path_factory.mktemp("pm-power-rf")) as lab:
        yield lab  # Lab.down() on leaving, also when a test failed


@pytest.fixture(scope="module")
def ipmi_lab(tmp_path_factory):
    """A lab whose BMC speaks IPMI only (nothing listens on 443)."""
    from pmlab_lib.lab import Lab

    with Lab.up(machines=1, state="off", bmc="lab", boot_delay=0.2, shutdown_delay=0.2,
                lab_dir=tmp_path_factory.mktemp("pm-power-ipmi")) as lab:
        yield lab


def rf_args(lab, machine, **extra: Any) -> Dict[str, Any]:
    args: Dict[str, Any] = {"bmc": machine.bmc_host, "user": machine.bmc_user, "password": machine.bmc_password,
                            "ca_path": str(lab.redfish_ca), "connect_timeout": 3, "timeout": 30}
    args.update(extra)
    return args


def power(lab, args: Dict[str, Any], check: bool = False, **kw: Any) -> Dict[str, Any]:
    return run_module(MODULE, args, netns=lab.controller_netns, check=check, diff=True, **kw).result


def curl(lab, machine, path: str) -> Tuple[int, Dict[str, Any]]:
    """The independent HTTP client: curl with the lab CA and basic auth, in the controller namespace."""
    result = lab.run(["curl", "-sS", "--max-time", "10", "--cacert", str(lab.redfish_ca), "-u", f"{machine.bmc_user}:{machine.bmc_password}",
                      "-w", "\n%{http_code}", machine.redfish_url + path], timeout=20)
    assert result.returncode == 0, result.stderr
    text, _sep, code = result.stdout.rpartition("\n")
    return int(code), json.loads(text) if text.strip().startswith("{") else {}


def redfish_power(lab, machine) -> str:
    system = curl(lab, machine, "/redfish/v1/Systems")[1]["Members"][0]["@odata.id"]
    return curl(lab, machine, system)[1]["PowerState"]


def sessions(lab, machine) -> list:
    return curl(lab, machine, "/redfish/v1/SessionService/Sessions")[1].get("Members", [])


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
