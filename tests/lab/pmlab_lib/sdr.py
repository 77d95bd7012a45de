"""SDR repository and threshold sensors for the lab BMC, from a JSON file.

Each sensor of the file becomes an IPMI full sensor record (type 01h) with a
linear conversion ``value = raw * 10**R`` chosen so the sensor's range fits a
byte; readings and threshold status are computed from the file on every
request, so tests change a reading by editing the file.
"""

from __future__ import annotations

import json
import os
import struct
from dataclasses import dataclass
from pathlib import Path
from typing import Dict, List, Optional, Tuple

# sensor type codes and base units (IPMI 2.0 tables 42-3 and 43-15)
TYPES = {"temperature": (0x01, 1), "voltage": (0x02, 4), "current": (0x03, 5), "fan": (0x04, 18), "power": (0x0B, 6)}
ENTITY = {"temperature": 0x03, "voltage": 0x07, "current": 0x0A, "fan": 0x1D, "power": 0x0A}
# threshold order in records and status bits: LNC, LC, LNR, UNC, UC, UNR
THRESHOLDS = ("lower_non_critical", "lower_critical", "lower_non_recoverable", "upper_non_critical", "upper_critical", "upper_non_recoverable")


@dataclass
class Sensor:
    number: int
    name: str
    kind: str
    value: float
    thresholds: Dict[str, Optional[float]]

    @property
    def exponent(self) -> int:
        """Smallest power of ten so that every value of this sensor fits 0..255."""
        largest = max([abs(self.value)] + [abs(v) for v in self.thresholds.values() if v is not None] + [1.0])
        for exponent in range(-2, 6):
            if largest / 10 ** exponent <= 255:
                return exponent
        return 5

    def raw(self, value: float) -> int:
        return max(0, min(255, int(round(value / 10 ** self.exponent))))

    def status_bits(self) -> int:
        bits = 0
        value = self.value
        for position, key in enumerate(THRESHOLDS):
            limit = self.thresholds.get(key)
            if limit is None:
                continue
            if position < 3 and value <= limit:
                bits |= 1 << position
            if position >= 3 and value >= limit:
                bits |= 1 << position
        return bits

    def readable_mask(self) -> int:
        return sum(1 << i for i, key in enumerate(THRESHOLDS) if self.thresholds.get(key) is not None)

    def record(self, record_id: int) -> bytes:
        sensor_type, unit = TYPES.get(self.kind, (0x0B, 0))
        exponent = self.exponent & 0x0F  # 4-bit two's complement R exponent
        name = self.name.encode("ascii", errors="replace")[:16]
        threshold_bytes = [self.raw(self.thresholds[key]) if self.thresholds.get(key) is not None else 0 for key in reversed(THRESHOLDS)]
        mask = self.readable_mask()
        body = bytes(
            [
                0x20, 0x00, self.number,  # owner: BMC, LUN 0, sensor number
                ENTITY.get(self.kind, 0x07), 0x01,  # entity id and instance
                0x7F, 0x68,  # initialisation; capabilities: thresholds readable and settable
                sensor_type, 0x01,  # event/reading type: threshold
                0x00, 0x00, 0x00, 0x00,  # assertion/deassertion masks
                mask, mask,  # readable and settable thresholds
                0x00, unit, 0x00,  # unsigned; base unit; no modifier
                0x00,  # linear
                0x01, 0x00,  # M = 1, tolerance 0
                0x00, 0x00,  # B = 0
                0x00,  # accuracy
                exponent << 4,  # R exponent, B exponent 0
                0x00,  # analog characteristics
                self.raw(self.value), 0xFF, 0x00,  # nominal, normal max, normal min
                0xFF, 0x00,  # sensor max and min reading
            ]
            + threshold_bytes  # UNR, UC, UNC, LNR, LC, LNC
            + [0x00, 0x00, 0x00, 0x00, 0x00, 0xC0 | len(name)]
        ) + name
        header = struct.pack("<HBBB", record_id, 0x51, 0x01, len(body))
        return header + body


class SensorRepository:
    """Answers the storage (0Ah) and sensor (04h) commands ipmitool and pyghmi use."""

    def __init__(self, path: str) -> None:
        self.path = Path(path)
        self.reservation = 1

    def sensors(self) -> List[Sensor]:
        try:
            items = json.loads(self.path.read_text())
        except (OSError, ValueError):
            return []
        result = []
        for index, item in enumerate(items, start=1):
            thresholds = {key: item.get(key) for key in THRESHOLDS}
            result.append(Sensor(index, str(item["name"]), str(item.get("type", "temperature")), float(item.get("value", 0)), thresholds))
        return result

    def _timestamp(self) -> int:
        try:
            return int(os.stat(self.path).st_mtime) & 0xFFFFFFFF
        except OSError:
            return 0

    def handle(self, netfn: int, command: int, data: List[int]) -> Optional[Tuple[int, List[int]]]:
        sensors = self.sensors()
        if netfn == 0x0A and command == 0x20:  # Get SDR Repository Info
            stamp = list(struct.pack("<I", self._timestamp()))
            return 0, [0x51] + list(struct.pack("<H", len(sensors))) + [0xFF, 0xFF] + stamp + stamp + [0x02]
        if netfn == 0x0A and command == 0x22:  # Reserve SDR Repository
            self.reservation = (self.reservation % 0xFFFF) + 1
            return 0, list(struct.pack("<H", self.reservation))
        if netfn == 0x0A and command == 0x23:  # Get SDR
            if len(data) < 6:
                return 0xC7, []
            record_id = data[2] | (data[3] << 8)
            offset, count = data[4], data[5]
            index = 0 if record_id == 0 else record_id - 1
            if not 0 <= index < len(sensors):
                return 0xCB, []  # requested record not present
            record = sensors[index].record(index + 1)
            next_id = index + 2 if index + 1 < len(sensors) else 0xFFFF
            chunk = record[offset:] if count == 0xFF else record[offset:offset + count]
            return 0, list(struct.pack("<H", next_id)) + list(chunk)
        if netfn == 0x04 and command == 0x2D:  # Get Sensor Reading
            sensor = self._find(sensors, data)
            if sensor is None:
                return 0xCB, []
            return 0, [sensor.raw(sensor.value), 0xC0, sensor.status_bits() | 0xC0, 0x80]
        if netfn == 0x04 and command == 0x27:  # Get Sensor Thresholds
            sensor = self._find(sensors, data)
            if sensor is None:
                return 0xCB, []
            values = [sensor.raw(sensor.thresholds[key]) if sensor.thresholds.get(key) is not None else 0 for key in THRESHOLDS]
            return 0, [sensor.readable_mask()] + values
        if netfn == 0x04 and command == 0x2F:  # Get Sensor Type
            sensor = self._find(sensors, data)
            if sensor is None:
                return 0xCB, []
            return 0, [TYPES.get(sensor.kind, (0x0B, 0))[0], 0x01]
        return None

    @staticmethod
    def _find(sensors: List[Sensor], data: List[int]) -> Optional[Sensor]:
        if not data:
            return None
        for sensor in sensors:
            if sensor.number == data[0]:
                return sensor
        return None
