"""What the lab BMC knows about its machine: FRU data, the system event log, the power draw, its LAN settings.

Both faces of a lab BMC (the IPMI face, bmc_server.py, and the Redfish face,
redfish_bmc.py) answer from here, and the machine's supervisor (machine.py)
records its events here, so there is one truth per machine:

* FRU device 0 (IPMI Platform Management FRU Information Storage Definition
  v1.0): common header, board area and product area, 8-bit ASCII type/length
  fields, zero checksums; the values come from the machine's name.
* The SEL: one JSON file in the machine's state folder (``sel.json``), under an
  ``flock`` so the supervisor and both faces can write it. Records are the
  IPMI 16-byte "system event" records (type 02h); the JSON keeps their fields.
  Power on/off, the OS shutting down and threshold crossings of the BMC's
  sensor file are recorded as they happen (see docs/lab.md).
* The power reading (DCMI Get Power Reading, Redfish PowerControl) follows the
  machine's power.
* The LAN settings are the BMC address's real interface settings.
"""

from __future__ import annotations

import contextlib
import datetime
import fcntl
import ipaddress
import json
import os
import struct
import subprocess
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Dict, Iterator, List, Optional, Tuple

FIRMWARE_MAJOR, FIRMWARE_MINOR = 1, 0x23  # Get Device ID: firmware revision 1.23 (minor in BCD)
FIRMWARE_VERSION = "1.23"  # the same, as ipmitool's "mc info" and the Redfish Manager show it
BIOS_VERSION = "2.4.1"
LAN_CHANNEL = 1  # the BMC's LAN channel
FRU_EPOCH = datetime.datetime(1996, 1, 1, tzinfo=datetime.timezone.utc)  # FRU dates count minutes from here
BOARD_MANUFACTURED = datetime.datetime(2026, 1, 2, 3, 4, tzinfo=datetime.timezone.utc)

# ----- FRU -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class FruIdentity:
    """The fields of FRU device 0 of one lab machine (board and product areas)."""

    name: str
    board_manufacturer: str = "pmlab"
    board_product: str = "pmlab-board"
    board_part_number: str = "PMB-100"
    board_manufactured: datetime.datetime = BOARD_MANUFACTURED
    product_manufacturer: str = "pmlab"
    product_name: str = "pmlab-machine"
    product_part_number: str = "PM-1"
    product_version: str = "1.0"

    @property
    def board_serial(self) -> str:
        return f"B-{self.name}"

    @property
    def product_serial(self) -> str:
        return f"S-{self.name}"

    @property
    def asset_tag(self) -> str:
        return f"asset-{self.name}"


def _checksum(data: bytes) -> int:
    """The zero checksum of the FRU format: the byte that makes the sum of all bytes 0 modulo 256."""
    return (-sum(data)) & 0xFF


def _field(text: str) -> bytes:
    """A type/length byte (type 11b: 8-bit ASCII + Latin 1) and the text, at most 63 bytes."""
    data = text.encode("latin-1", errors="replace")[:63]
    return bytes([0xC0 | len(data)]) + data


def _area(head: bytes, fields: List[str]) -> bytes:
    """An area: its head, the fields, the end marker C1h, padding to 8 bytes, the checksum."""
    body = bytearray(head)
    for text in fields:
        body += _field(text)
    body += b"\xc0"  # FRU file id: empty
    body += b"\xc1"  # no more fields
    while (len(body) + 1) % 8:
        body += b"\x00"
    body[1] = (len(body) + 1) // 8  # area length in multiples of 8 bytes
    return bytes(body) + bytes([_checksum(bytes(body))])


def fru_image(identity: FruIdentity) -> bytes:
    """FRU device 0: common header, board area, product area (FRU spec v1.0 sections 8, 11, 12)."""
    minutes = int((identity.board_manufactured - FRU_EPOCH).total_seconds() // 60)
    board = _area(
        bytes([0x01, 0x00, 0x00]) + struct.pack("<I", minutes)[:3],  # version, length (set later), English, date
        [identity.board_manufacturer, identity.board_product, identity.board_serial, identity.board_part_number],
    )
    product = _area(
        bytes([0x01, 0x00, 0x00]),  # version, length (set later), English
        [identity.product_manufacturer, identity.product_name, identity.product_part_number, identity.product_version,
         identity.product_serial, identity.asset_tag],
    )
    board_offset = 1  # in 8-byte multiples: right after the 8-byte header
    product_offset = board_offset + len(board) // 8
    header = bytes([0x01, 0x00, 0x00, board_offset, product_offset, 0x00, 0x00])
    return header + bytes([_checksum(header)]) + board + product


def handle_fru(identity: FruIdentity, command: int, data: List[int]) -> Optional[Tuple[int, List[int]]]:
    """Storage commands 10h (Get FRU Inventory Area Info) and 11h (Read FRU Data) for FRU device 0."""
    if command not in (0x10, 0x11):
        return None
    if not data:
        return 0xC7, []  # request data length invalid
    if data[0] != 0:
        return 0xCB, []  # requested FRU device not present
    image = fru_image(identity)
    if command == 0x10:
        return 0, list(struct.pack("<H", len(image))) + [0x00]  # size, accessed by bytes
    if len(data) < 4:
        return 0xC7, []
    offset, count = data[1] | (data[2] << 8), data[3]
    if offset >= len(image):
        return 0xC9, []  # parameter out of range
    chunk = image[offset:offset + count]
    return 0, [len(chunk)] + list(chunk)


# ----- SEL ----------------------------------------------------------------------------------------

SEL_FILE = "sel.json"
SEL_CAPACITY = 512  # records; the free space Get SEL Info reports
GENERATOR_BMC = 0x0020  # slave address 20h (the BMC), channel 0, LUN 0
ACPI_SENSOR, OS_SENSOR = 0x80, 0x81  # sensor numbers of the discrete sensors (not in the SDR)
SENSOR_TYPE_NAMES = {  # ipmitool's words (ipmi_sel.c), and Redfish's LogEntry SensorType values
    0x01: ("Temperature", "Temperature"), 0x02: ("Voltage", "Voltage"), 0x03: ("Current", "Current"),
    0x04: ("Fan", "Fan"), 0x0B: ("Other", "Other Units-based Sensor"), 0x20: ("OS Critical Stop", "OS Stop/Shutdown"),
    0x22: ("System ACPI Power State", "System ACPI PowerState"),
}
THRESHOLD_TEXT = [
    "Lower Non-critical going low", "Lower Non-critical going high", "Lower Critical going low", "Lower Critical going high",
    "Lower Non-recoverable going low", "Lower Non-recoverable going high", "Upper Non-critical going low",
    "Upper Non-critical going high", "Upper Critical going low", "Upper Critical going high",
    "Upper Non-recoverable going low", "Upper Non-recoverable going high",
]
DISCRETE_TEXT = {(0x22, 0x00): "S0/G0: working", (0x22, 0x05): "S5/G2: soft-off", (0x20, 0x03): "OS graceful shutdown"}
# sdr.THRESHOLDS order (status bit positions): LNC, LC, LNR, UNC, UC, UNR -> the event offset of crossing it
THRESHOLD_OFFSETS = (0x00, 0x02, 0x04, 0x07, 0x09, 0x0B)


@dataclass
class SelRecord:
    """One SEL record: the fields of the IPMI 2.0 system event record (section 32.1)."""

    id: int
    timestamp: int
    sensor_type: int
    sensor_number: int
    event_type: int  # event/reading type code: 01h threshold, 6Fh sensor-specific
    direction: str  # "asserted" / "deasserted"
    data: List[int]  # event data 1-3
    generator: int = GENERATOR_BMC
    sensor: Optional[str] = None  # the sensor's name where the SDR has it

    def encode(self) -> bytes:
        """The 16 bytes Get SEL Entry returns (record type 02h: system event record)."""
        direction = 0x80 if self.direction == "deasserted" else 0x00
        return struct.pack("<HBIH", self.id, 0x02, self.timestamp & 0xFFFFFFFF, self.generator) + bytes(
            [0x04, self.sensor_type, self.sensor_number, direction | (self.event_type & 0x7F)] + list(self.data[:3])
        )

    @property
    def offset(self) -> int:
        return self.data[0] & 0x0F

    @property
    def message(self) -> str:
        """The event text of ipmitool's ``sel elist``."""
        if self.event_type == 0x01:
            return THRESHOLD_TEXT[self.offset] if self.offset < len(THRESHOLD_TEXT) else f"Threshold offset {self.offset:#x}"
        return DISCRETE_TEXT.get((self.sensor_type, self.offset), f"Sensor-specific offset {self.offset:#x}")

    @property
    def severity(self) -> str:
        """The contract's rule: non-critical -> Warning, critical/non-recoverable -> Critical, deasserted/else -> OK."""
        if self.direction == "deasserted" or self.event_type != 0x01:
            return "OK"
        return "Warning" if self.offset in (0x00, 0x01, 0x06, 0x07) else "Critical"

    @property
    def sensor_type_name(self) -> str:
        return SENSOR_TYPE_NAMES.get(self.sensor_type, (f"Sensor type {self.sensor_type:#x}", "OEM"))[0]

    @property
    def redfish_sensor_type(self) -> str:
        return SENSOR_TYPE_NAMES.get(self.sensor_type, ("", "OEM"))[1]

    @property
    def created(self) -> str:
        return datetime.datetime.fromtimestamp(self.timestamp, datetime.timezone.utc).isoformat()


@dataclass
class SelState:
    records: List[SelRecord] = field(default_factory=list)
    next_id: int = 1
    last_add: int = 0
    last_erase: int = 0
    sensor_bits: Dict[str, int] = field(default_factory=dict)  # sensor number -> threshold status bits last seen
    sensors_mtime: float = 0.0


class SelStore:
    """The machine's SEL: a JSON file under an flock, written by the supervisor and both BMC faces."""

    def __init__(self, folder: Path, sensors_file: Optional[Path] = None) -> None:
        self.path = Path(folder) / SEL_FILE
        self.lock_path = Path(folder) / (SEL_FILE + ".lock")
        self.sensors_file = Path(sensors_file) if sensors_file else Path(folder) / "bmc-sensors.json"
        self._synced_mtime: Optional[float] = None  # the sensor file's mtime at this process's last sync()

    @contextlib.contextmanager
    def _locked(self) -> Iterator[SelState]:
        with open(self.lock_path, "a") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            try:
                state = self._load()
                before = json.dumps(self._dump(state), sort_keys=True)
                yield state
                if json.dumps(self._dump(state), sort_keys=True) != before:
                    temporary = self.path.with_suffix(".tmp")
                    temporary.write_text(json.dumps(self._dump(state), indent=1))
                    os.replace(temporary, self.path)
            finally:
                fcntl.flock(lock, fcntl.LOCK_UN)

    def _load(self) -> SelState:
        try:
            raw = json.loads(self.path.read_text())
        except (OSError, ValueError):
            return SelState()
        records = [SelRecord(**item) for item in raw.get("records", [])]
        return SelState(records, int(raw.get("next_id", 1)), int(raw.get("last_add", 0)), int(raw.get("last_erase", 0)),
                        dict(raw.get("sensor_bits", {})), float(raw.get("sensors_mtime", 0.0)))

    @staticmethod
    def _dump(state: SelState) -> Dict[str, Any]:
        return {"records": [asdict(r) for r in state.records], "next_id": state.next_id, "last_add": state.last_add,
                "last_erase": state.last_erase, "sensor_bits": state.sensor_bits, "sensors_mtime": state.sensors_mtime}

    @staticmethod
    def _append(state: SelState, timestamp: int, **fields: Any) -> SelRecord:
        record = SelRecord(id=state.next_id, timestamp=timestamp, **fields)
        state.records.append(record)
        state.next_id = state.next_id % 0xFFFE + 1  # ids 1..FFFEh: 0000h and FFFFh mean first and last
        state.last_add = timestamp
        del state.records[:-SEL_CAPACITY]  # full: the oldest records go (WrapsWhenFull)
        return record

    def _sensors_mtime(self) -> Optional[float]:
        try:
            return self.sensors_file.stat().st_mtime
        except OSError:
            return None

    def _sync_sensors(self, state: SelState) -> None:
        """Threshold events for what the sensor file says now, against what was seen last (timestamp: its mtime)."""
        from pmlab_lib import sdr

        mtime = self._sensors_mtime()
        if mtime is None or mtime == state.sensors_mtime:
            return
        state.sensors_mtime = mtime
        stamp = int(mtime)
        for sensor in sdr.SensorRepository(str(self.sensors_file)).sensors():
            old = int(state.sensor_bits.get(str(sensor.number), 0))
            new = sensor.status_bits()
            if old == new:
                continue
            state.sensor_bits[str(sensor.number)] = new
            sensor_type = sdr.TYPES.get(sensor.kind, (0x0B, 0))[0]
            changes = [(p, "asserted") for p in (0, 1, 2, 3, 4, 5) if new & (1 << p) and not old & (1 << p)]
            changes += [(p, "deasserted") for p in (5, 4, 3, 2, 1, 0) if old & (1 << p) and not new & (1 << p)]
            for position, direction in changes:
                limit = sensor.thresholds[sdr.THRESHOLDS[position]]
                threshold = sensor.raw(limit) if limit is not None else 0xFF
                self._append(state, stamp, sensor_type=sensor_type, sensor_number=sensor.number, event_type=0x01,
                             direction=direction, data=[0x50 | THRESHOLD_OFFSETS[position], sensor.raw(sensor.value), threshold],
                             sensor=sensor.name)

    # ----- the public side ------------------------------------------------------------------
    def sync(self) -> None:
        """Record threshold crossings the sensor file shows since the last look.

        The machine calls this once a second: an unchanged sensor file since its last call costs
        one stat, not the lock and the SEL file (every reader syncs under the lock anyway).
        """
        mtime = self._sensors_mtime()
        if mtime is None or mtime == self._synced_mtime:
            return
        with self._locked() as state:
            self._sync_sensors(state)
        self._synced_mtime = mtime

    def add(self, sensor_type: int, sensor_number: int, offset: int, direction: str = "asserted",
            sensor: Optional[str] = None, when: Optional[float] = None) -> SelRecord:
        """A sensor-specific (discrete) event, after any pending threshold events."""
        with self._locked() as state:
            self._sync_sensors(state)
            return self._append(state, int(time.time() if when is None else when), sensor_type=sensor_type,
                                sensor_number=sensor_number, event_type=0x6F, direction=direction,
                                data=[offset & 0x0F, 0xFF, 0xFF], sensor=sensor)

    def power_changed(self, on: bool) -> SelRecord:
        """System ACPI Power State: S0/G0 working on power on, S5/G2 soft-off on power off."""
        return self.add(0x22, ACPI_SENSOR, 0x00 if on else 0x05, sensor="ACPI State")

    def os_shutdown(self) -> SelRecord:
        """OS Stop/Shutdown, offset 03h: OS graceful shutdown."""
        return self.add(0x20, OS_SENSOR, 0x03, sensor="OS Status")

    def records(self) -> List[SelRecord]:
        with self._locked() as state:
            self._sync_sensors(state)
            return list(state.records)

    def info(self) -> SelState:
        with self._locked() as state:
            self._sync_sensors(state)
            return SelState(list(state.records), state.next_id, state.last_add, state.last_erase)

    def clear(self) -> None:
        with self._locked() as state:
            self._sync_sensors(state)
            state.records = []
            state.last_erase = int(time.time())


class SelCommands:
    """The storage (0Ah) SEL commands of the IPMI face, as ipmitool's ``sel info/elist/clear`` use them."""

    def __init__(self, store: SelStore) -> None:
        self.store = store
        self.reservation = 0

    def handle(self, command: int, data: List[int]) -> Optional[Tuple[int, List[int]]]:
        if command == 0x40:  # Get SEL Info
            info = self.store.info()
            count = len(info.records)
            free = (SEL_CAPACITY - count) * 16
            return 0, ([0x51] + list(struct.pack("<HH", count, free)) + list(struct.pack("<II", info.last_add, info.last_erase))
                       + [0x02])  # operations: Reserve SEL supported
        if command == 0x42:  # Reserve SEL
            self.reservation = self.reservation % 0xFFFF + 1
            return 0, list(struct.pack("<H", self.reservation))
        if command == 0x43:  # Get SEL Entry
            if len(data) < 6:
                return 0xC7, []
            reservation, record_id, offset, count = data[0] | data[1] << 8, data[2] | data[3] << 8, data[4], data[5]
            if offset and reservation != self.reservation:
                return 0xC5, []  # a partial read needs the current reservation
            records = self.store.records()
            if not records:
                return 0xCB, []
            if record_id == 0x0000:
                index = 0
            elif record_id == 0xFFFF:
                index = len(records) - 1
            else:
                index = next((i for i, r in enumerate(records) if r.id == record_id), -1)
                if index < 0:
                    return 0xCB, []
            next_id = records[index + 1].id if index + 1 < len(records) else 0xFFFF
            raw = records[index].encode()
            chunk = raw[offset:] if count == 0xFF else raw[offset:offset + count]
            return 0, list(struct.pack("<H", next_id)) + list(chunk)
        if command == 0x47:  # Clear SEL
            if len(data) < 6 or bytes(data[2:5]) != b"CLR":
                return 0xCC, []
            if (data[0] | data[1] << 8) != self.reservation:
                return 0xC5, []  # reservation cancelled or invalid
            if data[5] == 0xAA:
                self.store.clear()
            return 0, [0x01]  # erasure completed
        if command == 0x48:  # Get SEL Time
            return 0, list(struct.pack("<I", int(time.time()) & 0xFFFFFFFF))
        return None


def sel_folder(config: Dict[str, Any]) -> Path:
    """The machine's state folder, where its SEL lives, from a BMC face's config."""
    return Path(config["sensors_file"]).parent


# ----- power ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class PowerReading:
    watts: int
    minimum: int
    maximum: int
    average: int
    period: int  # seconds the statistics cover


POWER_PERIOD = 60


def power_reading(on: bool, now: Optional[float] = None) -> PowerReading:
    """The model: on, 195-205 W now (moving every 5 s), 180/220/200 W min/max/average; off, 8 W standby."""
    if not on:
        return PowerReading(8, 8, 8, 8, POWER_PERIOD)
    step = int(time.time() if now is None else now) // 5
    return PowerReading(195 + step % 11, 180, 220, 200, POWER_PERIOD)


def dcmi_capabilities(parameter: int) -> Optional[List[int]]:
    """Get DCMI Capabilities Info data after the group id, per parameter (DCMI 1.5 table 6-3)."""
    head = [0xDC, 0x01, 0x05, 0x02]  # group extension, DCMI 1.5, parameter revision 2
    values = {  # the layout ipmitool reads (struct capabilities in ipmi_dcmi.h)
        1: [0x07, 0x01, 0x18],  # mandatory: identification, SEL, chassis power; optional: power management; primary LAN, SOL
        2: [SEL_CAPACITY & 0xFF, (SEL_CAPACITY >> 8) & 0x0F, 0x00, 0x00, 0x00],  # SEL entries, no rollover; no sampling
        3: [0x20, 0x00],  # power management device: slave address 20h, channel 0
        4: [LAN_CHANNEL, 0xFF, 0xFF],  # primary LAN channel 1; no secondary LAN, no serial
        5: [0x00],  # no rolling average periods
    }
    data = values.get(parameter)
    return None if data is None else head + data


def handle_dcmi(on: bool, command: int, data: List[int]) -> Optional[Tuple[int, List[int]]]:
    """DCMI (netfn 2Ch): Get DCMI Capabilities Info (01h) and Get Power Reading (02h)."""
    if command not in (0x01, 0x02):
        return None
    if not data or data[0] != 0xDC:
        return 0xCC, []
    if command == 0x01:
        answer = dcmi_capabilities(data[1] if len(data) > 1 else 0)
        return (0xCC, []) if answer is None else (0, answer)
    if len(data) < 2 or data[1] != 0x01:
        return 0xCC, []  # only system power statistics (mode 01h)
    reading = power_reading(on)
    now = int(time.time()) & 0xFFFFFFFF
    return 0, ([0xDC] + list(struct.pack("<HHHH", reading.watts, reading.minimum, reading.maximum, reading.average))
               + list(struct.pack("<II", now, reading.period * 1000)) + [0x40])  # power measurement active


# ----- LAN -----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class LanSettings:
    address: str
    netmask: str
    gateway: str
    mac: str
    gateway_mac: str = "00:00:00:00:00:00"
    vlan: Optional[int] = None
    source: str = "static"


def lan_settings(address: str) -> LanSettings:
    """The settings of the interface holding ``address`` in this network namespace (iproute2's JSON)."""
    netmask, mac, gateway = "255.255.255.255", "00:00:00:00:00:00", "0.0.0.0"
    try:
        links = json.loads(subprocess.run(["ip", "-j", "addr", "show"], capture_output=True, text=True, timeout=5, check=False).stdout or "[]")
        routes = json.loads(subprocess.run(["ip", "-j", "-4", "route", "show", "default"], capture_output=True, text=True,
                                           timeout=5, check=False).stdout or "[]")
    except (OSError, ValueError, subprocess.TimeoutExpired):
        links, routes = [], []
    for link in links:
        for item in link.get("addr_info", []):
            if item.get("family") == "inet" and item.get("local") == address:
                netmask = str(ipaddress.IPv4Network(f"0.0.0.0/{item.get('prefixlen', 32)}").netmask)
                mac = str(link.get("address") or mac).lower()
    for route in routes:
        if route.get("gateway"):
            gateway = route["gateway"]
            break
    return LanSettings(address=address, netmask=netmask, gateway=gateway, mac=mac)


def _ip(text: str) -> List[int]:
    return list(ipaddress.IPv4Address(text).packed)


def _mac(text: str) -> List[int]:
    return list(bytes.fromhex(text.replace(":", "")))


def handle_channel_info(data: List[int]) -> Tuple[int, List[int]]:
    """Get Channel Info (App 42h; IPMI 2.0 table 22-28): channel 1 is the 802.3 LAN channel, multi-session."""
    channel = (data[0] & 0x0F) if data else 0x0E
    if channel == 0x0E:
        channel = LAN_CHANNEL
    if channel != LAN_CHANNEL:
        return 0xCC, []
    # number, medium 802.3 LAN, protocol IPMB-1.0, multi-session, IANA 7154 (the IPMI forum), no aux info
    return 0, [LAN_CHANNEL, 0x04, 0x01, 0x80, 0xF2, 0x1B, 0x00, 0x00, 0x00]


def guid_bytes(text: str) -> List[int]:
    """A GUID as Get Device GUID / Get System GUID send it: the IPMI encoding, least significant byte first."""
    import uuid

    return list(uuid.UUID(text).bytes[::-1])


def handle_lan(settings: LanSettings, data: List[int]) -> Tuple[int, List[int]]:
    """Get LAN Configuration Parameters (transport netfn 0Ch, command 02h; IPMI 2.0 table 23-4)."""
    if len(data) < 4:
        return 0xC7, []
    channel, parameter = data[0] & 0x0F, data[1]
    if channel not in (LAN_CHANNEL, 0x0E):
        return 0xCC, []  # not a LAN channel
    if data[0] & 0x80:
        return 0, [0x11]  # parameter revision only
    vlan = settings.vlan or 0
    values = {
        0: [0x00],  # set complete
        1: [0x00],  # authentication types (IPMI 1.5): none offered, RMCP+ only
        2: [0x00] * 5,  # authentication type enables per privilege level
        3: _ip(settings.address),
        4: [{"static": 0x01, "dhcp": 0x02, "bios": 0x03}.get(settings.source, 0x04)],
        5: _mac(settings.mac),
        6: _ip(settings.netmask),
        12: _ip(settings.gateway),
        13: _mac(settings.gateway_mac),
        20: [vlan & 0xFF, ((vlan >> 8) & 0x0F) | (0x80 if settings.vlan else 0)],
        22: [2],  # cipher suite entries
        23: [0x00, 3, 17],  # the suites: 3 and 17
    }
    value = values.get(parameter)
    if value is None:
        return 0x80, []  # parameter not supported
    return 0, [0x11] + value
