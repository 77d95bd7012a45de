"""pm_bmc_info's IPMI side (plugins/module_utils/_ipmi/info.py) against OpenIPMI's ipmi_sim and the lab's own BMC.

Driven directly from Python (``info.run_bounded``, in a child process as a module task) in loopback mode; every field is
compared with what the independent client ipmitool reads from the same BMC at the
same time: ``fru print 0``, ``sel elist``, ``mc info``, ``mc guid``, ``lan print``,
``dcmi power reading``.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import pytest

from pmlab_lib.lab import Lab
from pmtest.ipmi_recorded import colon_fields, fru_print, sel_elist, sensor_column

pytestmark = [pytest.mark.lab, pytest.mark.skipif(os.geteuid() != 0, reason="the lab needs root")]
ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module", params=["ipmi_sim", "lab"])
def lab(request, tmp_path_factory):
    lab = Lab.up(machines=1, state="off", bmc=request.param, loopback=True, boot_delay=0.2, shutdown_delay=0.2,
                 lab_dir=tmp_path_factory.mktemp(f"bmcinfo-{request.param}"))
    try:
        yield lab
    finally:
        lab.down()


# one process per gathering, as a module task has (pyghmi keeps its sessions per process)
GATHER = """
import json, sys
from ansible_collections.ctys.pm.plugins.module_utils._bmc.options import BmcConnection
from ansible_collections.ctys.pm.plugins.module_utils._ipmi import info
args = json.loads(sys.argv[1])
fields = args.pop("fields")
fields["sections"] = tuple(fields.get("sections", info.SECTIONS))
[job] = info.run_bounded([info.InfoJob(BmcConnection.from_params(args), "m", **fields)], 20)
print(json.dumps({"data": job.data, "unsupported": job.unsupported, "error": job.error and job.error.msg}))
"""


def gather(lab, **fields):
    machine = lab.machines[0]
    args = {"bmc": machine.bmc_host, "port": machine.bmc_port, "user": machine.bmc_user, "password": machine.bmc_password, "fields": fields}
    env = dict(os.environ, PYTHONPATH=str(ROOT / ".build" / "collections"))
    done = lab.run([sys.executable, "-c", GATHER, json.dumps(args)], env=env, timeout=60)
    assert done.returncode == 0, done.stderr
    job = json.loads(done.stdout)
    assert job["error"] is None, job["error"]
    return job


def ipmitool(lab, *args):
    result = lab.ipmitool(lab.machines[0], *args)
    assert result.returncode == 0, result.stderr
    return result.stdout


def test_identity_and_firmware_match_ipmitool(lab):
    job = gather(lab, sections=("identity", "firmware"))
    fru = fru_print(ipmitool(lab, "fru", "print", "0"))
    identity = job["data"]["identity"]
    name = lab.machines[0].name
    assert identity["serial_number"] == fru["serial_number"] == f"S-{name}"
    assert identity["asset_tag"] == fru["asset_tag"] == f"asset-{name}"
    assert (identity["manufacturer"], identity["product"], identity["model"], identity["part_number"]) == (
        fru["manufacturer"], fru["product"], fru["part_number"], fru["part_number"])
    assert identity["board"] == {"manufacturer": fru["board_manufacturer"], "product": fru["board_product"],
                                 "serial_number": fru["board_serial"], "part_number": fru["board_part_number"],
                                 "manufactured": fru["board_manufactured"]}
    shown_guid = colon_fields(ipmitool(lab, "mc", "guid"))["System GUID"]
    mc = colon_fields(ipmitool(lab, "mc", "info"))
    firmware = job["data"]["firmware"]
    assert (firmware["bmc_version"], firmware["ipmi_version"], firmware["manufacturer_id"], firmware["product_id"]) == (
        mc["Firmware Revision"], mc["IPMI Version"], int(mc["Manufacturer ID"]), int(mc["Product ID"].split()[0]))
    assert job["unsupported"] == []
    assert identity["uuid"] == shown_guid


def test_events_match_sel_elist_and_follow_power(lab):
    machine = lab.machines[0]
    machine.control.call("power", action="on")
    machine.control.call("power", action="off")
    job = gather(lab, sections=("events",))
    rows = sel_elist(ipmitool(lab, "sel", "elist"))
    events = job["data"]["events"]
    assert events["total"] == events["count"] == len(rows) >= 2
    assert [(e["id"], e["time"], sensor_column(e), e["message"], e["direction"]) for e in events["entries"]] == [
        (row["id"], row["time"], row["sensor"], row["message"], row["direction"]) for row in rows]
    messages = [e["message"] for e in events["entries"]]
    assert "S0/G0: working" in messages and "S5/G2: soft-off" in messages
    newest = gather(lab, sections=("events",), events_max=1)["data"]["events"]
    assert newest["count"] == 1 and newest["entries"][0] == events["entries"][-1]


def test_power_matches_dcmi_or_is_unsupported(lab):
    job = gather(lab, sections=("power",))
    result = lab.ipmitool(lab.machines[0], "dcmi", "power", "reading")
    if lab.machines[0].bmc_kind == "ipmi_sim":
        assert result.returncode != 0 and "Invalid command" in result.stdout + result.stderr
        assert job["unsupported"] == ["power"] and "power" not in job["data"]
        return
    dcmi = colon_fields(result.stdout)
    power = job["data"]["power"]
    assert power["minimum"] == int(dcmi["Minimum during sampling period"].split()[0])
    assert power["maximum"] == int(dcmi["Maximum during sampling period"].split()[0])
    assert power["minimum"] <= power["watts"] <= power["maximum"] or power["watts"] < 20  # off: standby draw


def test_network_matches_lan_print(lab):
    job = gather(lab, sections=("network",))
    lan = colon_fields(ipmitool(lab, "lan", "print", "1"))
    network = job["data"]["network"]
    assert (network["address"], network["netmask"], network["gateway"], network["mac"], network["channel"]) == (
        lan["IP Address"], lan["Subnet Mask"], lan["Default Gateway IP"], lan["MAC Address"], 1)
    assert (network["vlan"] is None) == (lan["802.1q VLAN ID"] == "Disabled")
    assert network["source"] == {"Static Address": "static", "DHCP Address": "dhcp", "BIOS Assigned Address": "bios"}.get(
        lan["IP Address Source"], "other")
