"""The SEL decoder against records recorded from ipmi_sim and the lab BMC, compared with ipmitool's `sel elist`."""

from __future__ import annotations

import pytest

from ansible_collections.ctys.pm.plugins.module_utils._ipmi import sel
from pmtest.ipmi_recorded import NAMES, load, sdr_names, sel_elist, sensor_column


@pytest.mark.parametrize("name", NAMES)
def test_recorded_records_decode_as_ipmitool_lists_them(name):
    recorded = load(name)
    names = sdr_names(recorded["ipmitool"]["sdr elist"])
    rows = sel_elist(recorded["ipmitool"]["sel elist"])
    entries = [sel.decode(bytes(record), names) for record in recorded["sel_records"]]
    assert len(rows) == len(entries) >= 3
    for row, entry in zip(rows, entries):
        assert entry["id"] == row["id"]
        assert entry["time"] == row["time"]
        assert sensor_column(entry) == row["sensor"]
        assert entry["message"] == row["message"]
        assert entry["direction"] == row["direction"]


def test_ipmi_sim_log_severities():
    """Power on, a temperature above its upper critical threshold and back, OS shutdown, soft-off (ipmisim.sel_events)."""
    entries = [sel.decode(bytes(record)) for record in load("ipmi_sim")["sel_records"]]
    assert [(entry["message"], entry["direction"], entry["severity"]) for entry in entries] == [
        ("S0/G0: working", "asserted", "ok"),
        ("Upper Critical going high", "asserted", "critical"),
        ("Upper Critical going high", "deasserted", "ok"),
        ("OS graceful shutdown", "asserted", "ok"),
        ("S5/G2: soft-off", "asserted", "ok"),
    ]
    assert entries[1]["sensor_type"] == "Temperature" and entries[1]["sensor_number"] == 1 and entries[1]["sensor"] is None


def record(sensor_type, number, direction, data1, data2=0xFF, data3=0xFF, kind=0x02, stamp=0x6B138404, rid=7):
    return bytes([rid, 0, kind]) + stamp.to_bytes(4, "little") + bytes([0x20, 0, 4, sensor_type, number, direction, data1, data2, data3])


@pytest.mark.parametrize("raw, sensor_type, message, severity", [
    (record(0x08, 0x30, 0x6F, 0x01), "Power Supply", "Failure detected", "critical"),
    (record(0x08, 0x30, 0x6F, 0x03), "Power Supply", "Power Supply AC lost", "critical"),
    (record(0x08, 0x30, 0x6F, 0x02), "Power Supply", "Predictive failure", "warning"),
    (record(0x08, 0x30, 0x6F, 0xC6, 0x03), "Power Supply", "Config Error: Power Supply Rating Mismatch", "warning"),
    (record(0x04, 0x40, 0x01, 0x52), "Fan", "Lower Critical going low", "critical"),
    (record(0x04, 0x40, 0x01, 0x50), "Fan", "Lower Non-critical going low", "warning"),
    (record(0x04, 0x40, 0x04, 0x01), "Fan", "Predictive Failure Asserted", "warning"),
    (record(0x04, 0x40, 0x07, 0x02), "Fan", "Transition to Critical from less severe", "critical"),
    (record(0x07, 0x50, 0x6F, 0x00), "Processor", "IERR", "critical"),
    (record(0x07, 0x50, 0x6F, 0x0A), "Processor", "Throttled", "warning"),
    (record(0x0C, 0x60, 0x6F, 0x01), "Memory", "Uncorrectable ECC", "critical"),
    (record(0x0C, 0x60, 0x6F, 0x00), "Memory", "Correctable ECC", "warning"),
    (record(0x09, 0x61, 0x6F, 0x04), "Power Unit", "AC lost", "critical"),
    (record(0x09, 0x61, 0x6F, 0x00), "Power Unit", "Power off/down", "ok"),
    (record(0x10, 0x62, 0x6F, 0x02), "Event Logging Disabled", "Log area reset/cleared", "ok"),
    (record(0x12, 0x63, 0x6F, 0x05), "System Event", "Timestamp Clock Sync", "ok"),
    (record(0x20, 0x64, 0x6F, 0x01), "OS Critical Stop", "Run-time critical stop", "critical"),
    (record(0x1F, 0x65, 0x6F, 0x01), "OS Boot", "C: boot completed", "ok"),
    (record(0x2B, 0x66, 0x6F, 0x01), "Version Change", "Firmware or software change detected", "ok"),
    (record(0x0B, 0x67, 0x0B, 0x02), "Other", "Redundancy Degraded", "warning"),
    (record(0x08, 0x30, 0xEF, 0x01), "Power Supply", "Failure detected", "ok"),  # deasserted
    (record(0xD0, 0x68, 0x75, 0x01), "OEM sensor type 0xd0", "OEM event type 0x75 offset 0x01", "ok"),
])
def test_event_texts_and_the_severity_rule(raw, sensor_type, message, severity):
    entry = sel.decode(raw)
    assert (entry["sensor_type"], entry["message"], entry["severity"]) == (sensor_type, message, severity)
    assert entry["time"] == "2026-12-05T03:24:52Z"


def test_oem_records_and_times():
    timestamped = sel.decode(bytes([9, 0, 0xC1]) + (0x6B138404).to_bytes(4, "little") + bytes([0x57, 0x01, 0x00, 1, 2, 3, 4, 5, 6]))
    assert timestamped["sensor_type"] == "OEM record c1" and timestamped["message"] == "000157 | 010203040506"
    assert timestamped["time"] == "2026-12-05T03:24:52Z" and timestamped["severity"] == "ok"
    plain = sel.decode(bytes([10, 0, 0xE0]) + bytes(range(13)))
    assert plain["time"] is None and plain["message"] == bytes(range(13)).hex()
    assert sel.decode(record(0x01, 1, 0x01, 0x59, stamp=0x00001000))["time"] is None  # pre-init
    assert sel.decode(record(0x01, 1, 0x01, 0x59, stamp=0xFFFFFFFF))["time"] is None  # unspecified


def test_short_record_raises_the_typed_error():
    with pytest.raises(sel.SelDecodeError, match="16 bytes"):
        sel.decode(b"\x01\x00\x02")
