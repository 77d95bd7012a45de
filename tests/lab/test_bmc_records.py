"""The lab BMC's FRU, SEL, power reading and LAN settings, on both faces (issue 19).

The encoders are checked byte by byte and with pyghmi's own FRU decoder; the
lab test drives one machine through the doors an operator uses (IPMI, Redfish,
the OS's own poweroff, a sensor fault) and compares what ipmitool says with
what the Redfish face says, field by field.
"""

from __future__ import annotations

import datetime
import json
import os
import re
import struct
import time
from pathlib import Path
from typing import Any, Dict, List, Tuple

import pytest

from pmlab_lib import bmc_records
from pmlab_lib.lab import Lab

# ----- encoders (no lab) ------------------------------------------------------------------------


def _areas(image: bytes) -> Tuple[bytes, bytes]:
    board_at, product_at = image[3] * 8, image[4] * 8
    board = image[board_at:board_at + image[board_at + 1] * 8]
    product = image[product_at:product_at + image[product_at + 1] * 8]
    return board, product


def _fields(area: bytes, start: int) -> List[str]:
    """Walk type/length fields up to the end marker C1h."""
    found, at = [], start
    while area[at] != 0xC1:
        length = area[at] & 0x3F
        assert area[at] >> 6 == 3, "8-bit ASCII fields"
        found.append(area[at + 1:at + 1 + length].decode("latin-1"))
        at += 1 + length
    return found


def test_fru_image_checksums_and_fields():
    image = bmc_records.fru_image(bmc_records.FruIdentity("lab07"))
    assert image[0] == 0x01 and sum(image[:8]) % 256 == 0, "common header: format v1, zero checksum"
    board, product = _areas(image)
    assert len(board) % 8 == 0 and sum(board) % 256 == 0 and board[0] == 0x01
    assert len(product) % 8 == 0 and sum(product) % 256 == 0 and product[0] == 0x01
    assert image[3] == 1 and image[4] * 8 == 8 + len(board), "board right after the header, product after the board"
    # 2026-01-02 03:04 UTC is 10959 days, 3 h and 4 min (15781144 minutes) after 1996-01-01 00:00 UTC
    assert board[3:6] == struct.pack("<I", 15781144)[:3]
    assert _fields(board, 6) == ["pmlab", "pmlab-board", "B-lab07", "PMB-100", ""]
    assert _fields(product, 3) == ["pmlab", "pmlab-machine", "PM-1", "1.0", "S-lab07", "asset-lab07", ""]


def test_fru_image_decoded_by_pyghmi():
    from pyghmi.ipmi import fru

    info = fru.FRU(rawdata=bytearray(bmc_records.fru_image(bmc_records.FruIdentity("lab01")))).info
    assert info["Board manufacture date"] == "2026-01-02T03:04"
    assert (info["Board manufacturer"], info["Board product name"], info["Board serial number"], info["Board model"]) == (
        "pmlab", "pmlab-board", "B-lab01", "PMB-100")
    assert (info["Manufacturer"], info["Product name"], info["Model"], info["Hardware Version"], info["Serial Number"],
            info["Asset Number"]) == ("pmlab", "pmlab-machine", "PM-1", "1.0", "S-lab01", "asset-lab01")


def test_read_fru_data_in_chunks_and_refusals():
    identity = bmc_records.FruIdentity("lab01")
    image = bmc_records.fru_image(identity)
    assert bmc_records.handle_fru(identity, 0x10, [0]) == (0, [len(image), 0, 0])
    read, offset = b"", 0
    while offset < len(image):
        code, data = bmc_records.handle_fru(identity, 0x11, [0, offset & 0xFF, offset >> 8, 24])
        assert code == 0 and data[0] == len(data) - 1
        read += bytes(data[1:])
        offset += data[0]
    assert read == image
    assert bmc_records.handle_fru(identity, 0x10, [1])[0] == 0xCB, "FRU device 1 is not present"
    assert bmc_records.handle_fru(identity, 0x11, [0, len(image), 0, 8])[0] == 0xC9


def test_sel_record_bytes():
    record = bmc_records.SelRecord(id=0x0102, timestamp=0x6A0B0C0D, sensor_type=0x01, sensor_number=1, event_type=0x01,
                                   direction="deasserted", data=[0x59, 45, 95])
    # id, type 02h, timestamp (LE), generator 0020h, EvM rev 04h, sensor type, number, dir|type, event data 1-3
    assert record.encode() == bytes.fromhex(" ".join(["0201", "02", "0d0c0b6a", "2000", "04", "01", "01", "81", "592d5f"]))
    assert (record.message, record.severity) == ("Upper Critical going high", "OK")
    on = bmc_records.SelRecord(id=1, timestamp=0, sensor_type=0x22, sensor_number=0x80, event_type=0x6F, direction="asserted",
                               data=[0x00, 0xFF, 0xFF])
    assert on.encode() == bytes.fromhex(" ".join(["0100", "02", "00000000", "2000", "04", "22", "80", "6f", "00ffff"]))
    assert (on.message, on.sensor_type_name, on.redfish_sensor_type) == ("S0/G0: working", "System ACPI Power State", "System ACPI PowerState")


def _write_sensors(path: Path, cpu: float, when: float) -> None:
    from pmlab_lib import sensors_defaults

    sensors = json.loads(json.dumps(sensors_defaults.BMC_SENSORS))
    sensors[0]["value"] = cpu
    path.write_text(json.dumps(sensors))
    os.utime(path, (when, when))


def test_sel_store_records_threshold_crossings_in_order(tmp_path):
    sensors = tmp_path / "bmc-sensors.json"
    store = bmc_records.SelStore(tmp_path)
    _write_sensors(sensors, 45.0, 1_800_000_000)
    assert store.records() == [], "a sensor inside its thresholds records nothing"
    store.power_changed(True)
    _write_sensors(sensors, 97.0, 1_800_000_100)
    store.os_shutdown()  # the pending threshold events come first
    _write_sensors(sensors, 45.0, 1_800_000_200)
    seen = [(r.id, r.sensor_number, r.message, r.direction, r.severity) for r in store.records()]
    assert seen == [
        (1, bmc_records.ACPI_SENSOR, "S0/G0: working", "asserted", "OK"),
        (2, 1, "Upper Non-critical going high", "asserted", "Warning"),
        (3, 1, "Upper Critical going high", "asserted", "Critical"),
        (4, bmc_records.OS_SENSOR, "OS graceful shutdown", "asserted", "OK"),
        (5, 1, "Upper Critical going high", "deasserted", "OK"),
        (6, 1, "Upper Non-critical going high", "deasserted", "OK"),
    ]
    records = store.records()
    assert records[1].timestamp == 1_800_000_100 and records[4].timestamp == 1_800_000_200, "stamped when the reading moved"
    assert records[2].data == [0x59, 97, 95], "trigger reading and threshold in event data 2 and 3"
    store.clear()
    assert store.records() == [] and store.info().last_erase > 0
    _write_sensors(sensors, 45.0, 1_800_000_300)
    assert store.records() == [], "clearing keeps the sensors' state: no events again for the same readings"


def test_sel_commands_walk_and_clear(tmp_path):
    store = bmc_records.SelStore(tmp_path)
    commands = bmc_records.SelCommands(store)
    for on in (True, False, True):
        store.power_changed(on)
    code, info = commands.handle(0x40, [])
    assert code == 0 and info[0] == 0x51 and info[1] | info[2] << 8 == 3
    ids, record_id = [], 0
    while record_id != 0xFFFF:
        code, data = commands.handle(0x43, [0, 0, record_id & 0xFF, record_id >> 8, 0, 0xFF])
        assert code == 0 and len(data) == 18
        ids.append(data[2] | data[3] << 8)
        record_id = data[0] | data[1] << 8
    assert ids == [1, 2, 3]
    assert commands.handle(0x43, [0, 0, 9, 0, 0, 0xFF])[0] == 0xCB
    reservation = commands.handle(0x42, [])[1]
    assert commands.handle(0x47, [0x7F, 0x7F] + list(b"CLR") + [0xAA])[0] == 0xC5, "a stale reservation clears nothing"
    assert commands.handle(0x47, reservation + list(b"CLR") + [0xAA]) == (0, [0x01])
    assert commands.handle(0x40, [])[1][1:3] == [0, 0]


def test_power_model_and_dcmi_reading():
    on, off = bmc_records.power_reading(True, 1_800_000_000), bmc_records.power_reading(False)
    assert on.minimum <= on.watts <= on.maximum and (on.minimum, on.maximum, on.average) == (180, 220, 200)
    assert (off.watts, off.minimum, off.maximum, off.average) == (8, 8, 8, 8)
    code, data = bmc_records.handle_dcmi(False, 0x02, [0xDC, 0x01, 0, 0])
    assert code == 0 and data[0] == 0xDC and struct.unpack("<HHHH", bytes(data[1:9])) == (8, 8, 8, 8)
    assert data[-1] & 0x40, "power measurement active"
    assert bmc_records.handle_dcmi(True, 0x02, [0x00])[0] == 0xCC, "not a DCMI request"


# ----- both faces of a lab BMC ---------------------------------------------------------------------

needs_root = pytest.mark.skipif(os.geteuid() != 0, reason="network namespaces need root")
# ipmitool's sensor type words (ipmi_sdr.c) -> Redfish LogEntry SensorType (DMTF LogEntry schema)
REDFISH_SENSOR_TYPE = {"Temperature": "Temperature", "System ACPI Power State": "System ACPI PowerState",
                       "OS Critical Stop": "OS Stop/Shutdown"}


@pytest.fixture(scope="module")
def lab(tmp_path_factory):
    lab = Lab.up(machines=2, state="off", bmc="lab", redfish=True, boot_delay=0.3, shutdown_delay=0.2,
                 lab_dir=tmp_path_factory.mktemp("records"))
    try:
        yield lab
    finally:
        lab.down()


def ipmi(lab: Lab, machine: Any, *args: str) -> str:
    result = lab.run(["env", "TZ=UTC"] + _ipmitool_argv(machine, args), timeout=30)  # ipmitool prints local time
    assert result.returncode == 0, (args, result.stdout, result.stderr)
    return result.stdout


def _ipmitool_argv(machine: Any, args: Tuple[str, ...]) -> List[str]:
    return ["ipmitool", "-I", "lanplus", "-C", "17", "-N", "1", "-R", "2", "-H", machine.bmc_host, "-p", str(machine.bmc_port),
            "-U", machine.bmc_user, "-P", machine.bmc_password] + list(args)


def rf(lab: Lab, machine: Any, path: str, method: str = "GET", body: Any = None) -> Tuple[int, Dict[str, Any]]:
    """One Redfish request with curl and the lab CA (an independent client): (status, JSON body or {})."""
    argv = ["curl", "-sS", "--max-time", "10", "--cacert", str(lab.redfish_ca), "-u", f"admin:{machine.bmc_password}",
            "-X", method, "-o", "-", "-w", "\n%{http_code}"]
    if body is not None:
        argv += ["-H", "Content-Type: application/json", "--data-binary", json.dumps(body)]
    result = lab.run(argv + [machine.redfish_url + path], timeout=20)
    assert result.returncode == 0, result.stderr
    text, _sep, status = result.stdout.rpartition("\n")
    return int(status), json.loads(text) if text.strip() else {}


def colon_fields(text: str) -> Dict[str, str]:
    return {k.strip(): v.strip() for k, _sep, v in (line.partition(":") for line in text.splitlines()) if _sep}


def wait_for(predicate, what: str, timeout: float = 15.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.1)
    raise AssertionError(f"{what}: not reached within {timeout} s")


def elist(lab: Lab, machine: Any) -> List[List[str]]:
    text = ipmi(lab, machine, "sel", "elist")
    return [[cell.strip() for cell in line.split("|")] for line in text.splitlines() if "|" in line]


def sel_entries(lab: Lab, machine: Any) -> List[Dict[str, Any]]:
    status, body = rf(lab, machine, "/redfish/v1/Managers/bmc/LogServices/SEL/Entries")
    assert status == 200 and body["Members@odata.count"] == len(body["Members"])
    return body["Members"]


def set_cpu(machine: Any, value: float) -> None:
    machine.set_bmc_sensor("CPU Temp", value)


@pytest.mark.lab
@pytest.mark.slow
@needs_root
def test_both_faces_show_one_event_log(lab):
    m, other = lab.machines
    assert elist(lab, m) == [] and sel_entries(lab, m) == [], "a lab that starts off has an empty log"
    ipmi(lab, m, "chassis", "power", "on")  # 1: S0 (IPMI)
    m.wait_os("up")
    set_cpu(m, 97.0)  # 2, 3: CPU Temp crosses upper non-critical and critical
    wait_for(lambda: len(sel_entries(lab, m)) == 3, "threshold events")
    set_cpu(m, 45.0)  # 4, 5: and back
    wait_for(lambda: len(sel_entries(lab, m)) == 5, "deassertions")
    assert lab.ssh(m, "poweroff").returncode in (0, 255)  # 6, 7: the OS shuts down, then soft-off
    wait_for(lambda: m.power_state() == "off", "OS poweroff")
    assert rf(lab, m, "/redfish/v1/Systems/1/Actions/ComputerSystem.Reset", "POST", {"ResetType": "On"})[0] == 204  # 8
    wait_for(lambda: m.power_state() == "on", "Redfish On")
    assert rf(lab, m, "/redfish/v1/Systems/1/Actions/ComputerSystem.Reset", "POST", {"ResetType": "ForceOff"})[0] == 204  # 9
    wait_for(lambda: m.power_state() == "off", "Redfish ForceOff")

    rows, entries = elist(lab, m), sel_entries(lab, m)
    expected = [
        ("System ACPI Power State", "S0/G0: working", "Asserted", "OK"),
        ("Temperature", "Upper Non-critical going high", "Asserted", "Warning"),
        ("Temperature", "Upper Critical going high", "Asserted", "Critical"),
        ("Temperature", "Upper Critical going high", "Deasserted", "OK"),
        ("Temperature", "Upper Non-critical going high", "Deasserted", "OK"),
        ("OS Critical Stop", "OS graceful shutdown", "Asserted", "OK"),
        ("System ACPI Power State", "S5/G2: soft-off", "Asserted", "OK"),
        ("System ACPI Power State", "S0/G0: working", "Asserted", "OK"),
        ("System ACPI Power State", "S5/G2: soft-off", "Asserted", "OK"),
    ]
    assert [(row[3].split(" #")[0].replace(" CPU Temp", ""), row[4], row[5]) for row in rows] == [e[:3] for e in expected]
    assert len(entries) == len(rows) == int(colon_fields(ipmi(lab, m, "sel", "info"))["Entries"])
    for row, entry, (kind, text, direction, severity) in zip(rows, entries, expected):
        assert int(row[0], 16) == int(entry["Id"]), "same records in the same order"
        assert entry["SensorType"] == REDFISH_SENSOR_TYPE[kind] and entry["Message"] == text and entry["Severity"] == severity
        assert entry["EntryCode"] == {"Asserted": "Assert", "Deasserted": "Deassert"}[direction] and entry["EntryType"] == "SEL"
        when = datetime.datetime.strptime(f"{row[1]} {row[2]}", "%m/%d/%y %H:%M:%S UTC").replace(tzinfo=datetime.timezone.utc)
        assert datetime.datetime.fromisoformat(entry["Created"]) == when, "same timestamp"
        if kind == "Temperature":
            assert entry["SensorNumber"] == 1 and "CPU Temp" in row[3], "the SDR's sensor number and name"
            assert ("Reading 97 > Threshold" if direction == "Asserted" else "Reading 45 < Threshold") in row[6]
    assert elist(lab, other) == [] and sel_entries(lab, other) == [], "each machine has its own log"

    # clearing from either face empties the one log
    status, _body = rf(lab, m, "/redfish/v1/Managers/bmc/LogServices/SEL/Actions/LogService.ClearLog", "POST", {})
    assert status == 204 and elist(lab, m) == [] and "Entries          : 0" in ipmi(lab, m, "sel", "info")
    ipmi(lab, m, "chassis", "power", "on")
    wait_for(lambda: len(sel_entries(lab, m)) == 1, "a new record after the clear")
    assert "Clearing SEL" in ipmi(lab, m, "sel", "clear")
    assert sel_entries(lab, m) == [] and elist(lab, m) == []
    ipmi(lab, m, "chassis", "power", "off")


@pytest.mark.lab
@needs_root
def test_fru_firmware_and_guid_match_the_redfish_face(lab):
    m = lab.machines[0]
    fru = colon_fields(ipmi(lab, m, "fru", "print", "0"))
    system = rf(lab, m, "/redfish/v1/Systems/1")[1]
    chassis = rf(lab, m, "/redfish/v1/Chassis/1")[1]
    assert (fru["Product Manufacturer"], fru["Product Name"], fru["Product Part Number"], fru["Product Serial"],
            fru["Product Asset Tag"]) == ("pmlab", "pmlab-machine", "PM-1", "S-lab01", "asset-lab01")
    assert (system["Manufacturer"], system["Model"], system["SKU"], system["SerialNumber"], system["AssetTag"]) == (
        fru["Product Manufacturer"], fru["Product Name"], fru["Product Part Number"], fru["Product Serial"], fru["Product Asset Tag"])
    assert system["PartNumber"] == fru["Product Part Number"] and fru["Product Version"] == "1.0"
    assert (fru["Board Mfg"], fru["Board Product"], fru["Board Serial"], fru["Board Part Number"]) == (
        "pmlab", "pmlab-board", "B-lab01", "PMB-100")
    assert (chassis["Manufacturer"], chassis["Model"], chassis["SerialNumber"], chassis["PartNumber"]) == (
        fru["Board Mfg"], fru["Board Product"], fru["Board Serial"], fru["Board Part Number"])
    assert fru["Board Mfg Date"] == "Fri Jan  2 03:04:00 2026 UTC"

    mc = colon_fields(ipmi(lab, m, "mc", "info"))
    manager = rf(lab, m, "/redfish/v1/Managers/bmc")[1]
    assert mc["Firmware Revision"] == manager["FirmwareVersion"] == "1.23" and mc["IPMI Version"] == "2.0"
    inventory = rf(lab, m, "/redfish/v1/UpdateService/FirmwareInventory")[1]
    versions = {rf(lab, m, member["@odata.id"])[1]["Id"]: rf(lab, m, member["@odata.id"])[1]["Version"] for member in inventory["Members"]}
    assert versions == {"BMC": "1.23", "BIOS": system["BiosVersion"]}

    guid = colon_fields(ipmi(lab, m, "mc", "guid"))
    configured = json.loads((m.state_dir / "bmc.json").read_text())["uuid"]
    assert guid["System GUID"] == system["UUID"] == configured and guid["GUID Encoding"] == "IPMI"


def _dcmi(lab: Lab, machine: Any) -> Dict[str, int]:
    text = ipmi(lab, machine, "dcmi", "power", "reading")
    found = {key: int(value) for key, value in re.findall(r"^\s*(\w[\w ]+?):\s+(\d+) Watts", text, re.M)}
    assert "activated" in text
    return found


@pytest.mark.lab
@needs_root
def test_power_reading_follows_the_machine_on_both_faces(lab):
    m = lab.machines[1]
    for state in ("on", "off"):
        ipmi(lab, m, "chassis", "power", state)
        wait_for(lambda wanted=state: m.power_state() == wanted, f"power {state}")
        dcmi = _dcmi(lab, m)
        control = rf(lab, m, "/redfish/v1/Chassis/1/Power")[1]["PowerControl"][0]
        metrics = control["PowerMetrics"]
        assert (dcmi["Minimum during sampling period"], dcmi["Maximum during sampling period"],
                dcmi["Average power reading over sample period"]) == (
            metrics["MinConsumedWatts"], metrics["MaxConsumedWatts"], metrics["AverageConsumedWatts"])
        assert metrics["IntervalInMin"] == 1
        if state == "on":
            assert (metrics["MinConsumedWatts"], metrics["MaxConsumedWatts"]) == (180, 220)
            assert 180 <= dcmi["Instantaneous power reading"] <= 220 and 180 <= control["PowerConsumedWatts"] <= 220
        else:
            assert dcmi["Instantaneous power reading"] == control["PowerConsumedWatts"] == 8, "standby power when off"


@pytest.mark.lab
@needs_root
def test_lan_settings_match_the_redfish_face(lab):
    m = lab.machines[0]
    lan = colon_fields(ipmi(lab, m, "lan", "print", "1"))
    nic = rf(lab, m, "/redfish/v1/Managers/bmc/EthernetInterfaces/1")[1]
    members = rf(lab, m, "/redfish/v1/Managers/bmc/EthernetInterfaces")[1]["Members"]
    assert members == [{"@odata.id": "/redfish/v1/Managers/bmc/EthernetInterfaces/1"}]
    v4 = nic["IPv4Addresses"][0]
    assert lan["IP Address"] == v4["Address"] == m.bmc_host
    assert lan["Subnet Mask"] == v4["SubnetMask"] == "255.255.0.0", "the BMC address's real prefix (/16 on the lab bridge)"
    assert lan["MAC Address"] == nic["MACAddress"] == m.mac, "the BMC shares the machine's NIC"
    assert lan["Default Gateway IP"] == v4["Gateway"]
    assert lan["IP Address Source"] == "Static Address" and v4["AddressOrigin"] == "Static"
    assert lan["802.1q VLAN ID"] == "Disabled" and nic["VLAN"]["VLANEnable"] is False
