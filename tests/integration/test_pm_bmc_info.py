"""pm_bmc_info through ansible against a lab machine's two BMC faces, read back by ipmitool and curl.

The same machine answers over IPMI and over Redfish: both answers must agree with each
other and with the independent clients (``ipmitool fru print 0``, ``mc info``, ``mc guid``,
``sel elist``, ``dcmi power reading``, ``lan print 1``; curl with the lab CA).
"""

from __future__ import annotations

import os
import re
import time
from typing import Any, Dict

import pytest

from pmtest.ansible_run import run_module
from pmtest.redfish_lab import free_port, lab_fixture, lab_get, sushy_fixture

pytestmark = [pytest.mark.lab, pytest.mark.skipif(os.geteuid() != 0, reason="the lab's namespaces need root")]

MODULE = "ctys.pm.pm_bmc_info"

lab = lab_fixture("pm-bmc-info", redfish=True, machines=2, boot_delay=0.2)
sushy = sushy_fixture()


def args_for(lab, machine, protocol: str, **extra: Any) -> Dict[str, Any]:
    args: Dict[str, Any] = {"bmc": machine.bmc_host, "user": machine.bmc_user, "password": machine.bmc_password, "protocol": protocol,
                            "ca_path": str(lab.redfish_ca), "connect_timeout": 3, "timeout": 30}
    args.update(extra)
    return args


def info(lab, args: Dict[str, Any], **kw: Any) -> Dict[str, Any]:
    return run_module(MODULE, args, netns=lab.controller_netns, **kw).result


def ipmitool(lab, machine, *argv: str) -> Dict[str, str]:
    """``Key : value`` lines of an ipmitool command."""
    out = lab.ipmitool(machine, *argv)
    assert out.returncode == 0, out.stderr
    return {k.strip(): v.strip() for k, v in (line.split(":", 1) for line in out.stdout.splitlines() if ":" in line)}


def sel_lines(lab, machine):
    out = lab.ipmitool(machine, "sel", "elist")
    assert out.returncode == 0, out.stderr
    return [line for line in out.stdout.splitlines() if "|" in line]


@pytest.fixture(scope="module")
def machine_with_history(lab):
    """Machine 0 powered on and off through its BMC, so its SEL records both."""
    m = lab.machines[0]
    assert lab.ipmitool(m, "chassis", "power", "on").returncode == 0
    m.wait_os("up", timeout=20)
    assert lab.ipmitool(m, "chassis", "power", "off").returncode == 0
    deadline = time.monotonic() + 10
    while len(sel_lines(lab, m)) < 2 and time.monotonic() < deadline:
        time.sleep(0.2)
    return m


def test_ipmi_and_redfish_faces_agree_with_ipmitool_and_curl(lab, machine_with_history):
    m = machine_with_history
    over_ipmi = info(lab, args_for(lab, m, "ipmi"))
    over_redfish = info(lab, args_for(lab, m, "redfish"))
    for got, protocol in ((over_ipmi, "ipmi"), (over_redfish, "redfish")):
        assert got.get("failed") is not True, got
        assert got["changed"] is False and got["protocol"] == protocol and got["unsupported"] == []

    fru = ipmitool(lab, m, "fru", "print", "0")
    for result in (over_ipmi, over_redfish):
        identity = result["identity"]
        assert identity["manufacturer"] == fru["Product Manufacturer"]
        assert identity["serial_number"] == fru["Product Serial"]
        assert identity["asset_tag"] == fru["Product Asset Tag"]
        assert identity["board"]["serial_number"] == fru["Board Serial"]
    assert over_ipmi["identity"]["product"] == fru["Product Name"]
    assert over_ipmi["identity"]["uuid"] == ipmitool(lab, m, "mc", "guid")["System GUID"].lower()
    assert over_redfish["identity"]["uuid"] == over_ipmi["identity"]["uuid"] == lab_get(lab, m, "/redfish/v1/Systems/1")["UUID"].lower()

    firmware = ipmitool(lab, m, "mc", "info")["Firmware Revision"]
    assert over_ipmi["firmware"]["bmc_version"] == over_redfish["firmware"]["bmc_version"] == firmware

    lines = sel_lines(lab, m)
    assert len(lines) >= 2
    for result in (over_ipmi, over_redfish):
        events = result["events"]
        assert events["total"] == events["count"] == len(lines)
        assert [e["direction"] for e in events["entries"]] == [line.split("|")[-1].strip().lower() for line in lines]
    assert [e["message"] for e in over_ipmi["events"]["entries"]] == [line.split("|")[-2].strip() for line in lines]

    reading = lab.ipmitool(m, "dcmi", "power", "reading").stdout
    shown = {key: int(re.search(rf"{label}:\s+(\d+) Watts", reading).group(1))
             for key, label in (("watts", "Instantaneous power reading"), ("minimum", "Minimum during sampling period"),
                                ("maximum", "Maximum during sampling period"), ("average", "Average power reading over sample period"))}
    for result in (over_ipmi, over_redfish):  # the machine is off: its standby draw, the same on every face
        assert {key: result["power"][key] for key in shown} == shown and shown["watts"] > 0
    lan = ipmitool(lab, m, "lan", "print", "1")
    for result in (over_ipmi, over_redfish):
        assert result["network"]["address"] == lan["IP Address"] == m.bmc_host
        assert result["network"]["mac"] == lan["MAC Address"].lower()


def test_check_mode_reads_the_same_and_events_filters_apply(lab, machine_with_history):
    m = machine_with_history
    full = info(lab, args_for(lab, m, "ipmi", gather=["events"]))
    checked = info(lab, args_for(lab, m, "ipmi", gather=["events"], events_max=1), check=True)
    assert checked.get("failed") is not True, checked
    assert checked["changed"] is False and set(checked) >= {"events"} and "identity" not in checked
    assert checked["events"]["entries"] == full["events"]["entries"][-1:]
    future = info(lab, args_for(lab, m, "redfish", gather=["events"], events_since="2099-01-01T00:00:00Z"))
    assert future["events"]["count"] == 0 and future["events"]["total"] == full["events"]["total"]


def test_power_reading_follows_the_machine(lab):
    m = lab.machines[1]
    off = info(lab, args_for(lab, m, "redfish", gather=["power"]))["power"]["watts"]
    assert lab.ipmitool(m, "chassis", "power", "on").returncode == 0
    try:
        on = info(lab, args_for(lab, m, "ipmi", gather=["power"]))["power"]["watts"]
    finally:
        lab.ipmitool(m, "chassis", "power", "off")
    assert on > off


def test_fleet_mixes_protocols_and_a_dead_bmc_fails_alone_naming_it(lab):
    first, second = lab.machines
    dead_port = free_port()
    fleet = {"user": first.bmc_user, "password": first.bmc_password, "ca_path": str(lab.redfish_ca), "connect_timeout": 2,
             "timeout": 8, "gather": ["firmware"], "fail_on": "never",
             "targets": [{"bmc": first.bmc_host, "protocol": "ipmi"},
                         {"bmc": second.bmc_host, "protocol": "redfish", "user": second.bmc_user, "password": second.bmc_password},
                         {"bmc": "127.0.0.1", "port": dead_port, "protocol": "ipmi", "name": "dead"}]}
    result = info(lab, fleet, verbosity=3)
    assert result["summary"] == {"targets": 3, "failed": 1, "critical": 0, "warning": 0, "ipmi": 2, "redfish": 1}
    by_name = {r["name"]: r for r in result["results"]}
    assert by_name[first.bmc_host]["firmware"]["bmc_version"] == by_name[second.bmc_host]["firmware"]["bmc_version"]
    assert by_name["dead"]["failed"] is True and f"127.0.0.1:{dead_port}" in by_name["dead"]["msg"]


def test_bad_input_is_one_sentence_naming_option_and_fix(lab):
    m = lab.machines[0]
    for extra, words in (({"events_since": "yesterday"}, "events_since 'yesterday' is not valid; give an ISO 8601 time"),
                         ({"events_max": 0}, "events_max '0' is not valid; use a number of entries from 1 to 10000")):
        failed = info(lab, args_for(lab, m, "ipmi", **extra))
        assert failed["failed"] is True and words in failed["msg"]


def test_password_never_shown_at_vvv(lab):
    m = lab.machines[0]
    out = run_module(MODULE, args_for(lab, m, "redfish", gather=["firmware"]), netns=lab.controller_netns, verbosity=3)
    assert out.result.get("failed") is not True, out.result
    assert m.bmc_password not in out.stdout + out.stderr


def test_sushy_emulator_identity_and_firmware_the_rest_unsupported_not_failed(sushy):
    """An independent Redfish peer: what it has is read as curl reads it, what it lacks is listed, not failed.

    sushy-emulator --fake has a ComputerSystem, a Chassis and a Manager with a FirmwareVersion, but no
    LogServices, no EthernetInterfaces, no Chassis Power, and an UpdateService it links but does not serve.
    """
    args = {"bmc": "127.0.0.1", "port": sushy.port, "protocol": "redfish", "user": "admin", "password": "unused",
            "ca_path": str(sushy.cert), "timeout": 30}
    result = run_module(MODULE, args).result
    assert result.get("failed") is not True, result
    system = sushy.system()
    manager = sushy.get(system["Links"]["ManagedBy"][0]["@odata.id"])
    chassis = sushy.get(system["Links"]["Chassis"][0]["@odata.id"])
    assert result["identity"]["uuid"] == system["UUID"].lower() and result["identity"]["manufacturer"] == system["Manufacturer"]
    assert result["identity"]["board"]["serial_number"] == chassis["SerialNumber"]
    assert result["firmware"]["bmc_version"] == manager["FirmwareVersion"]
    assert result["firmware"]["items"] == [{"name": "BMC", "version": manager["FirmwareVersion"]}]
    assert result["unsupported"] == ["events", "power", "network"]
