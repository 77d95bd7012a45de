# Copyright: ctys.pm contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Decode IPMI System Event Log records (IPMI 2.0 section 32) as ipmitool's ``sel elist`` shows them.

:func:`decode` turns one 16-byte record (the data of Get SEL Entry after the
next record id) into a pm_bmc_info ``events`` entry: id, time (ISO 8601 UTC,
None for pre-init timestamps), sensor name (from the SDR names the caller
gives), ipmitool's sensor type words and event text, severity and direction.
Severity: threshold events at a critical or non-recoverable threshold are
critical, at a non-critical one warning; discrete events that report a failure
(power supply failure or AC lost, fan/processor/memory failures, OS critical
stop, ...) are critical, predictive failures, degraded redundancy and similar
are warning; deassertions and everything else are ok. Any 16 bytes decode;
fewer raise :class:`SelDecodeError`.
"""

from __future__ import annotations

import datetime
from typing import Any, Dict, Mapping, Optional

RECORD_LENGTH = 16
# timestamps up to this are seconds since the BMC's initialisation, not wall-clock time (ipmitool's "Pre-Init")
PRE_INIT = 0x20000000
UNSPECIFIED_TIME = 0xFFFFFFFF

SENSOR_TYPES = {
    0x01: "Temperature", 0x02: "Voltage", 0x03: "Current", 0x04: "Fan", 0x05: "Physical Security",
    0x06: "Platform Security", 0x07: "Processor", 0x08: "Power Supply", 0x09: "Power Unit", 0x0A: "Cooling Device",
    0x0B: "Other", 0x0C: "Memory", 0x0D: "Drive Slot / Bay", 0x0E: "POST Memory Resize", 0x0F: "System Firmwares",
    0x10: "Event Logging Disabled", 0x11: "Watchdog1", 0x12: "System Event", 0x13: "Critical Interrupt", 0x14: "Button",
    0x15: "Module / Board", 0x16: "Microcontroller", 0x17: "Add-in Card", 0x18: "Chassis", 0x19: "Chip Set",
    0x1A: "Other FRU", 0x1B: "Cable / Interconnect", 0x1C: "Terminator", 0x1D: "System Boot Initiated", 0x1E: "Boot Error",
    0x1F: "OS Boot", 0x20: "OS Critical Stop", 0x21: "Slot / Connector", 0x22: "System ACPI Power State", 0x23: "Watchdog2",
    0x24: "Platform Alert", 0x25: "Entity Presence", 0x26: "Monitor ASIC", 0x27: "LAN", 0x28: "Management Subsys Health",
    0x29: "Battery", 0x2A: "Session Audit", 0x2B: "Version Change", 0x2C: "FRU State",
}

THRESHOLD = (
    "Lower Non-critical going low", "Lower Non-critical going high", "Lower Critical going low", "Lower Critical going high",
    "Lower Non-recoverable going low", "Lower Non-recoverable going high", "Upper Non-critical going low",
    "Upper Non-critical going high", "Upper Critical going low", "Upper Critical going high",
    "Upper Non-recoverable going low", "Upper Non-recoverable going high",
)

GENERIC = {
    0x02: ("Transition to Idle", "Transition to Active", "Transition to Busy"),
    0x03: ("State Deasserted", "State Asserted"),
    0x04: ("Predictive Failure Deasserted", "Predictive Failure Asserted"),
    0x05: ("Limit Not Exceeded", "Limit Exceeded"),
    0x06: ("Performance Met", "Performance Lags"),
    0x07: ("Transition to OK", "Transition to Non-critical from OK", "Transition to Critical from less severe",
           "Transition to Non-recoverable from less severe", "Transition to Non-critical from more severe",
           "Transition to Critical from Non-recoverable", "Transition to Non-recoverable", "Monitor", "Informational"),
    0x08: ("Device Absent", "Device Present"),
    0x09: ("Device Disabled", "Device Enabled"),
    0x0A: ("Transition to Running", "Transition to In Test", "Transition to Power Off", "Transition to On Line",
           "Transition to Off Line", "Transition to Off Duty", "Transition to Degraded", "Transition to Power Save", "Install Error"),
    0x0B: ("Fully Redundant", "Redundancy Lost", "Redundancy Degraded", "Non-Redundant: Sufficient from Redundant",
           "Non-Redundant: Sufficient from Insufficient", "Non-Redundant: Insufficient Resources",
           "Redundancy Degraded from Fully Redundant", "Redundancy Degraded from Non-Redundant"),
    0x0C: ("D0 Power State", "D1 Power State", "D2 Power State", "D3 Power State"),
}

# sensor-specific offsets (event type 0x6F), ipmitool's words
SPECIFIC: Dict[int, Dict[int, str]] = {
    0x05: dict(enumerate(("General Chassis intrusion", "Drive Bay intrusion", "I/O Card area intrusion", "Processor area intrusion",
                          "System unplugged from LAN", "Unauthorized dock", "FAN area intrusion"))),
    0x06: dict(enumerate(("Front Panel Lockout violation attempted", "Pre-boot password violation - user password",
                          "Pre-boot password violation - setup password", "Pre-boot password violation - network boot password",
                          "Other pre-boot password violation", "Out-of-band access password violation"))),
    0x07: dict(enumerate(("IERR", "Thermal Trip", "FRB1/BIST failure", "FRB2/Hang in POST failure", "FRB3/Processor startup/init failure",
                          "Configuration Error", "SM BIOS Uncorrectable CPU-complex Error", "Presence detected", "Disabled",
                          "Terminator presence detected", "Throttled", "Uncorrectable machine check exception",
                          "Correctable machine check error"))),
    0x08: dict(enumerate(("Presence detected", "Failure detected", "Predictive failure", "Power Supply AC lost", "AC lost or out-of-range",
                          "AC out-of-range, but present", "Config Error"))),
    0x09: dict(enumerate(("Power off/down", "Power cycle", "240VA power down", "Interlock power down", "AC lost",
                          "Soft-power control failure", "Failure detected", "Predictive failure"))),
    0x0C: dict(enumerate(("Correctable ECC", "Uncorrectable ECC", "Parity", "Memory Scrub Failed", "Memory Device Disabled",
                          "Correctable ECC logging limit reached", "Presence Detected", "Configuration Error", "Spare", "Throttled",
                          "Critical Overtemperature"))),
    0x0D: dict(enumerate(("Drive Present", "Drive Fault", "Predictive Failure", "Hot Spare", "Parity Check In Progress",
                          "In Critical Array", "In Failed Array", "Rebuild In Progress", "Rebuild Aborted"))),
    0x0F: {0: "Unknown Error", 1: "Unknown Hang", 2: "Unknown Progress"},
    0x10: dict(enumerate(("Correctable memory error logging disabled", "Event logging disabled", "Log area reset/cleared",
                          "All event logging disabled", "Log full", "Log almost full"))),
    0x11: dict(enumerate(("BIOS Reset", "OS Reset", "OS Shut Down", "OS Power Down", "OS Power Cycle", "OS NMI/Diag Interrupt",
                          "OS Expired", "OS pre-timeout Interrupt"))),
    0x12: dict(enumerate(("System Reconfigured", "OEM System boot event", "Undetermined system hardware failure",
                          "Entry added to auxiliary log", "PEF Action", "Timestamp Clock Sync"))),
    0x13: dict(enumerate(("NMI/Diag Interrupt", "Bus Timeout", "I/O Channel check NMI", "Software NMI", "PCI PERR", "PCI SERR",
                          "EISA failsafe timeout", "Bus Correctable error", "Bus Uncorrectable error", "Fatal NMI", "Bus Fatal Error",
                          "Bus Degraded"))),
    0x14: dict(enumerate(("Power Button pressed", "Sleep Button pressed", "Reset Button pressed", "FRU Latch", "FRU Service"))),
    0x19: {0: "Soft Power Control Failure", 1: "Thermal Trip"},
    0x1B: {0: "Connected", 1: "Config Error"},
    0x1D: dict(enumerate(("Initiated by power up", "Initiated by hard reset", "Initiated by warm reset", "User requested PXE boot",
                          "Automatic boot to diagnostic", "OS initiated hard reset", "OS initiated warm reset", "System Restart"))),
    0x1E: dict(enumerate(("No bootable media", "Non-bootable disk in drive", "PXE server not found", "Invalid boot sector",
                          "Timeout waiting for selection"))),
    0x1F: dict(enumerate(("A: boot completed", "C: boot completed", "PXE boot completed", "Diagnostic boot completed",
                          "CD-ROM boot completed", "ROM boot completed", "boot completed - device not specified",
                          "Installation started", "Installation completed", "Installation aborted", "Installation failed"))),
    0x20: dict(enumerate(("Error during system startup", "Run-time critical stop", "OS graceful stop", "OS graceful shutdown",
                          "PEF initiated soft shutdown", "Agent not responding"))),
    0x21: dict(enumerate(("Fault Status", "Identify Status", "Device Installed", "Ready for Device Installation",
                          "Ready for Device Removal", "Slot Power is Off", "Device Removal Request", "Interlock", "Slot is Disabled",
                          "Spare Device"))),
    0x22: dict(enumerate((
        "S0/G0: working", "S1: sleeping with system hw & processor context maintained",
        "S2: sleeping, processor context lost", "S3: sleeping, processor & hw context lost, memory retained",
        "S4: non-volatile sleep/suspend-to-disk", "S5/G2: soft-off", "S4/S5: soft-off", "G3: mechanical off",
        "Sleeping in S1/S2/S3 state", "G1: sleeping", "S5: entered by override", "Legacy ON state", "Legacy OFF state",
    ))),
    0x23: {0: "Timer expired", 1: "Hard reset", 2: "Power down", 3: "Power cycle", 8: "Timer interrupt"},
    0x24: dict(enumerate(("Platform generated page", "Platform generated LAN alert", "Platform Event Trap generated",
                          "Platform generated SNMP trap, OEM format"))),
    0x25: {0: "Present", 1: "Absent", 2: "Disabled"},
    0x27: {0: "Heartbeat Lost", 1: "Heartbeat"},
    0x28: dict(enumerate(("Sensor access degraded or unavailable", "Controller access degraded or unavailable",
                          "Management controller off-line", "Management controller unavailable", "Sensor failure", "FRU failure"))),
    0x29: {0: "Low", 1: "Failed", 2: "Presence Detected"},
    0x2B: dict(enumerate(("Hardware change detected", "Firmware or software change detected", "Hardware incompatibility detected",
                          "Firmware or software incompatibility detected", "Invalid or unsupported hardware version",
                          "Invalid or unsupported firmware or software version", "Hardware change success",
                          "Firmware or software change success"))),
    0x2C: dict(enumerate(("Not Installed", "Inactive", "Activation Requested", "Activation in Progress", "Active",
                          "Deactivation Requested", "Deactivation in Progress", "Communication lost"))),
}

SPECIFIC[0x22][0x0E] = "Unknown"
# data-2-specific texts ipmitool shows when event data 1 says byte 2 is given
SPECIFIC_DATA2: Dict[tuple, Dict[int, str]] = {
    (0x08, 0x06): {0: "Config Error: Vendor Mismatch", 1: "Config Error: Revision Mismatch", 2: "Config Error: Processor Missing",
                   3: "Config Error: Power Supply Rating Mismatch", 4: "Config Error: Voltage Rating Mismatch"},
}

# (sensor type, offset) of sensor-specific events: critical, warning
CRITICAL = {
    (0x07, 0x00), (0x07, 0x01), (0x07, 0x02), (0x07, 0x03), (0x07, 0x04), (0x07, 0x06), (0x07, 0x0B),
    (0x08, 0x01), (0x08, 0x03), (0x08, 0x04),
    (0x09, 0x04), (0x09, 0x05), (0x09, 0x06),
    (0x0C, 0x01), (0x0C, 0x02), (0x0C, 0x03), (0x0C, 0x0A),
    (0x0D, 0x01), (0x0D, 0x06),
    (0x0F, 0x00), (0x0F, 0x01),
    (0x12, 0x02),
    (0x13, 0x08), (0x13, 0x09), (0x13, 0x0A),
    (0x19, 0x00), (0x19, 0x01),
    (0x20, 0x00), (0x20, 0x01),
    (0x28, 0x02), (0x28, 0x03),
    (0x29, 0x01),
}
WARNING = {
    (0x07, 0x0A), (0x07, 0x0C), (0x07, 0x05),
    (0x08, 0x02), (0x08, 0x05), (0x08, 0x06),
    (0x09, 0x07),
    (0x0C, 0x00), (0x0C, 0x04), (0x0C, 0x05), (0x0C, 0x09),
    (0x0D, 0x02), (0x0D, 0x05), (0x0D, 0x08),
    (0x10, 0x04), (0x10, 0x05),
    (0x13, 0x01), (0x13, 0x0B),
    (0x1E, 0x00), (0x1E, 0x01), (0x1E, 0x02), (0x1E, 0x03),
    (0x23, 0x01), (0x23, 0x02), (0x23, 0x03),
    (0x28, 0x00), (0x28, 0x01), (0x28, 0x04), (0x28, 0x05),
    (0x29, 0x00),
    (0x2B, 0x02), (0x2B, 0x03), (0x2B, 0x04), (0x2B, 0x05),
}
# generic event types: (event type, offset) -> severity
GENERIC_SEVERITY = {
    (0x04, 0x01): "warning",
    (0x05, 0x01): "warning",
    (0x07, 0x01): "warning", (0x07, 0x04): "warning",
    (0x07, 0x02): "critical", (0x07, 0x03): "critical", (0x07, 0x05): "critical", (0x07, 0x06): "critical",
    (0x0A, 0x06): "warning", (0x0A, 0x08): "warning",
    (0x0B, 0x01): "critical",
    (0x0B, 0x02): "warning", (0x0B, 0x05): "warning", (0x0B, 0x06): "warning", (0x0B, 0x07): "warning",
}


class SelDecodeError(ValueError):
    """The bytes are not a SEL record (fewer than 16)."""


def timestamp(seconds: int) -> Optional[str]:
    """A SEL timestamp as ISO 8601 UTC; None for an unspecified or pre-init (relative) one."""
    if seconds == UNSPECIFIED_TIME or seconds <= PRE_INIT:
        return None
    return datetime.datetime.fromtimestamp(seconds, datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def sensor_type_name(code: int) -> str:
    if code in SENSOR_TYPES:
        return SENSOR_TYPES[code]
    return f"OEM sensor type {code:#04x}" if code >= 0xC0 else f"Unknown sensor type {code:#04x}"


def event_text(sensor_type: int, event_type: int, data: bytes) -> str:
    """ipmitool's description of an event (``sel elist``'s fifth column)."""
    offset = data[0] & 0x0F
    text: Optional[str] = None
    if event_type == 0x01:
        text = THRESHOLD[offset] if offset < len(THRESHOLD) else None
    elif event_type in GENERIC:
        names = GENERIC[event_type]
        text = names[offset] if offset < len(names) else None
    elif event_type == 0x6F:
        if data[0] & 0xC0:
            text = SPECIFIC_DATA2.get((sensor_type, offset), {}).get(data[1])
        if text is None:
            text = SPECIFIC.get(sensor_type, {}).get(offset)
    elif 0x70 <= event_type <= 0x7F:
        return f"OEM event type {event_type:#04x} offset {offset:#04x}"
    return text or f"Unknown event type {event_type:#04x} offset {offset:#04x}"


def severity(sensor_type: int, event_type: int, offset: int, deasserted: bool) -> str:
    """The severity rule of pm_bmc_info (module docstring)."""
    if deasserted:
        return "ok"
    if event_type == 0x01:
        if offset in (0x00, 0x01, 0x06, 0x07):
            return "warning"
        return "critical" if offset <= 0x0B else "ok"
    if event_type == 0x6F:
        if (sensor_type, offset) in CRITICAL:
            return "critical"
        return "warning" if (sensor_type, offset) in WARNING else "ok"
    return GENERIC_SEVERITY.get((event_type, offset), "ok")


def decode(record: bytes, sensor_names: Optional[Mapping[int, str]] = None) -> Dict[str, Any]:
    """One SEL record as a pm_bmc_info ``events`` entry (plus ``epoch``, the raw wall-clock seconds or None)."""
    record = bytes(record)
    if len(record) < RECORD_LENGTH:
        raise SelDecodeError(f"a SEL record has 16 bytes, this one {len(record)}")
    record_id = int.from_bytes(record[0:2], "little")
    kind = record[2]
    seconds = int.from_bytes(record[3:7], "little")
    entry: Dict[str, Any] = {"id": record_id, "time": None, "epoch": None, "sensor": None, "sensor_type": None,
                             "sensor_number": None, "message": "", "severity": "ok", "direction": "asserted"}
    if kind >= 0xE0:  # OEM non-timestamped: 13 bytes of OEM data
        entry["sensor_type"] = f"OEM record {kind:02x}"
        entry["message"] = record[3:16].hex()
        return entry
    entry["time"] = timestamp(seconds)
    entry["epoch"] = seconds if entry["time"] is not None else None
    if kind >= 0xC0:  # OEM timestamped: manufacturer id and 6 bytes of OEM data
        entry["sensor_type"] = f"OEM record {kind:02x}"
        entry["message"] = f"{record[7:10][::-1].hex()} | {record[10:16].hex()}"
        return entry
    sensor_type, number, direction = record[10], record[11], record[12]
    event_type = direction & 0x7F
    deasserted = bool(direction & 0x80)
    data = record[13:16]
    entry.update(
        sensor=(sensor_names or {}).get(number),
        sensor_type=sensor_type_name(sensor_type),
        sensor_number=number,
        message=event_text(sensor_type, event_type, data),
        severity=severity(sensor_type, event_type, data[0] & 0x0F, deasserted),
        direction="deasserted" if deasserted else "asserted",
    )
    if kind != 0x02:
        entry["sensor_type"] = f"Unknown record type {kind:02x}" if kind < 0xC0 else entry["sensor_type"]
    return entry
