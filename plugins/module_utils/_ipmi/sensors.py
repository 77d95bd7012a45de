# Copyright: ctys.pm contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The BMC's SDR sensors: health while the OS is down or the machine is off.

Read over IPMI with pyghmi, or from ``ipmitool sdr`` / ``sensor list`` text collected otherwise.

pyghmi decodes the sensor data records and readings; its readings carry no
thresholds, so they are read here with Get Sensor Thresholds (04h/27h) and
decoded with the record's own conversion formula.
"""

from __future__ import annotations

import re
from typing import Any, Dict, List, Optional, Tuple

from ansible_collections.ctys.pm.plugins.module_utils import _sensors_parse as parse
from ansible_collections.ctys.pm.plugins.module_utils._bmc import guard
from ansible_collections.ctys.pm.plugins.module_utils._bmc.options import BmcConnection
from ansible_collections.ctys.pm.plugins.module_utils._deadline import Deadline, check_seconds
from ansible_collections.ctys.pm.plugins.module_utils._errors import PmConnectionError, PmError, PmTimeoutError
from ansible_collections.ctys.pm.plugins.module_utils._ipmi import errors
from ansible_collections.ctys.pm.plugins.module_utils._ipmi import session as _ipmi_session
from ansible_collections.ctys.pm.plugins.module_utils._ipmi.retry import attempt
from ansible_collections.ctys.pm.plugins.module_utils._sensors_parse import RawFeature

# IPMI sensor type codes (table 42-3) -> kind
SENSOR_TYPES = {0x01: "temperature", 0x02: "voltage", 0x03: "current", 0x04: "fan", 0x05: "intrusion"}
UNIT_KINDS = {"°C": "temperature", "°F": "temperature", "V": "voltage", "A": "current", "RPM": "fan", "W": "power", "J": "energy"}
# Get Sensor Thresholds answer: mask, then LNC, LC, LNR, UNC, UC, UNR
THRESHOLD_ATTRS = ("min", "lcrit", "lower_non_recoverable", "max", "crit", "emergency")
HEALTH_WARNING, HEALTH_CRITICAL, HEALTH_FAILED = 1, 2, 4  # pyghmi.constants.Health


def read(params: Dict[str, Any]) -> Tuple[List[RawFeature], List[str], str, Dict[str, Any]]:
    """Log in to the BMC of ``params`` and read every SDR sensor with its thresholds."""
    conn = BmcConnection.from_params(params)
    timeout = check_seconds("timeout", params.get("timeout", 60), 3600, "60")
    progress = guard.Progress()

    def work() -> List[RawFeature]:
        deadline = Deadline(timeout)
        with _ipmi_session.ipmi_session(conn, deadline) as command:
            progress.step(conn.address, guard.COMMAND)
            return attempt(lambda: read_sdr(command, conn), conn, deadline, what="reading the sensors", wait=_ipmi_session.wait)

    # the hard bound (_bmc.guard): back by timeout plus guard.GRACE, whatever pyghmi does
    outcome = guard.bounded(work, timeout, name="ctys-pm-sensors-ipmi")
    if not outcome.finished:
        step = progress.close().get(conn.address, guard.LOGIN)
        raise PmTimeoutError(guard.cut_off_message(conn.address, step, timeout), step=step, bmc=conn.address)
    return outcome.value or [], [], "ipmi", {"bmc": conn.address}


def read_sdr(command: Any, conn: BmcConnection) -> List[RawFeature]:
    try:
        repository = command.init_sdr()
        numbers = list(repository.get_sensor_numbers())
    except PmError:
        raise
    except Exception as error:  # pyghmi raises IpmiException and plain errors while fetching the SDR
        if (getattr(error, "ipmicode", 0) or errors.completion_code_of(str(error))) == errors.CC_NOT_PRESENT:
            return []  # an empty repository: record 0 "not present"
        raise errors.exception_error(error, conn, "reading the sensor data repository") from None
    features: List[RawFeature] = []
    for number in numbers:
        sensor = repository.sensors[number]
        response = _raw(command, conn, sensor, 0x2D)
        if response.get("error"):
            code = response.get("code") or errors.completion_code_of(str(response["error"])) or 0xFF
            if code == errors.CC_NOT_PRESENT:
                continue  # an optional device that is not fitted
            failure = errors.completion_error(code, str(response["error"]), conn)
            if failure.transient:
                raise failure  # the whole read is tried again (retry policy)
            features.append(_unreadable(sensor, str(response["error"])))
            continue
        try:
            reading = sensor.decode_sensor_reading(command, bytearray(response.get("data", b"")))
        except Exception as error:  # a record pyghmi cannot decode must not hide every other sensor
            features.append(_unreadable(sensor, f"cannot decode the reading: {error}"))
            continue
        feature = _feature(sensor, reading)
        if getattr(sensor, "has_thresholds", False) and reading.value is not None:
            _thresholds(command, conn, sensor, feature)
        features.append(feature)
    return features


def _raw(command: Any, conn: BmcConnection, sensor: Any, cmd: int) -> Dict[str, Any]:
    try:
        response = command.raw_command(netfn=0x04, command=cmd, rslun=getattr(sensor, "sensor_lun", 0), data=(sensor.sensor_number,))
    except Exception as error:  # broken sessions come as IpmiException
        raise errors.exception_error(error, conn) from None
    if not response:
        raise errors.no_response(conn)
    return response


def _kind(sensor: Any, unit: str) -> str:
    kind = SENSOR_TYPES.get(int(getattr(sensor, "sensor_type_number", -1) or -1))
    return kind or UNIT_KINDS.get(unit.strip(), "other")


def _feature(sensor: Any, reading: Any) -> RawFeature:
    unit = str(getattr(reading, "units", "") or "").strip()
    kind = _kind(sensor, unit)
    feature = RawFeature("bmc", "IPMI SDR", str(reading.name), None, kind)
    feature.states = [str(state) for state in (reading.states or [])]
    health = int(getattr(reading, "health", 0) or 0)
    if health & (HEALTH_CRITICAL | HEALTH_FAILED):
        feature.device_status = "critical"
    elif health & HEALTH_WARNING:
        feature.device_status = "warning"
    else:
        feature.device_status = "ok"
    if getattr(reading, "unavailable", 0):
        feature.device_status = "unknown"
        feature.errors.append("the BMC has no reading for this sensor (not present, or not readable while the host is off)")
        return feature
    if reading.value is not None:
        feature.attrs["input"] = _to_unit(float(reading.value), unit)
    if kind not in ("temperature", "voltage", "current", "fan", "power", "energy") and unit:
        feature.unit = unit
    return feature


def _unreadable(sensor: Any, why: str) -> RawFeature:
    feature = RawFeature("bmc", "IPMI SDR", str(getattr(sensor, "name", sensor.sensor_number)), None, _kind(sensor, ""))
    feature.device_status = "unknown"
    feature.errors.append(why)
    return feature


def _to_unit(value: float, unit: str) -> float:
    if unit == "°F":
        return round((value - 32.0) * 5.0 / 9.0, 3)
    return value


def _thresholds(command: Any, conn: BmcConnection, sensor: Any, feature: RawFeature) -> None:
    response = _raw(command, conn, sensor, 0x27)
    data = bytearray(response.get("data", b"")) if not response.get("error") else bytearray()
    if len(data) < 7:
        return  # no thresholds readable: the BMC's own status still counts
    mask = data[0]
    unit = str(getattr(sensor, "unit_suffix", "") or "").strip()
    for bit, attr in enumerate(THRESHOLD_ATTRS):
        if not mask & (1 << bit):
            continue
        raw = data[1 + bit]
        fmt = getattr(sensor, "numeric_format", 0)
        if fmt == 2 and raw & 0x80:
            raw -= 256
        elif fmt == 1 and raw & 0x80:
            raw = -(~raw & 0xFF)
        try:
            value = _to_unit(float(sensor.decode_value(command, raw)), unit)
        except Exception:  # a formula pyghmi cannot apply: leave this limit out
            continue
        if attr == "lower_non_recoverable":
            if "lcrit" in feature.attrs:
                continue
            attr = "lcrit"
        feature.attrs.setdefault(attr, value)


# ---------------------------------------------------------------- ipmitool sdr / sensor list
_IPMI_STATUS = {"ok": "ok", "nc": "warning", "lnc": "warning", "unc": "warning", "cr": "critical", "lcr": "critical",
                "ucr": "critical", "nr": "critical", "lnr": "critical", "unr": "critical", "ns": "unknown"}
_IPMI_UNITS: Dict[str, Tuple[str, Optional[str]]] = {
    "degrees c": ("temperature", "°C"), "degrees f": ("temperature", "°F"), "volts": ("voltage", "V"),
    "amps": ("current", "A"), "watts": ("power", "W"), "rpm": ("fan", "RPM"), "joules": ("energy", "J"),
}
_IPMI_LIMITS = (None, "lcrit", "min", "max", "crit", "emergency")  # lnr, lcr, lnc, unc, ucr, unr
_IPMI_ERRORS = ("Unable to establish", "Error:", "Get Device ID command failed", "Unable to open SDR", "Authentication type",
                "Invalid user name", "Activate Session")


def looks_like_ipmitool(text: str) -> bool:
    lines = [line for line in text.splitlines() if line.strip()]
    rows = [line for line in lines if line.count("|") >= 2]
    if rows:
        return len(rows) * 2 >= len(lines)
    return bool(lines) and any(line.strip().startswith(_IPMI_ERRORS) for line in lines)


def parse_ipmitool(text: str) -> Tuple[List[RawFeature], List[str]]:
    """``ipmitool sdr``, ``sdr elist`` or ``sensor list`` output -> features and messages."""
    parse.check_size(text, "ipmitool output")
    features: List[RawFeature] = []
    messages: List[str] = []
    for line in text.splitlines():
        limits: List[str]
        columns = [column.strip() for column in line.split("|")]
        if len(columns) == 3:
            name, reading, status, limits = columns[0], columns[1], columns[2], []
        elif len(columns) == 5:
            name, status, reading, limits = columns[0], columns[2], columns[4], []
        elif len(columns) >= 10:
            name, reading, status, limits = columns[0], f"{columns[1]} {columns[2]}", columns[3], columns[4:10]
        else:
            if line.strip():
                messages.append(line.strip())
            continue
        features.append(_ipmitool_row(name, reading, status.lower(), limits))
    if not features:
        errors = [m for m in messages if m.startswith(_IPMI_ERRORS)]
        if errors:
            raise PmConnectionError(f"ipmitool could not read the sensors: {'; '.join(dict.fromkeys(errors))}")
    return features, messages


def _ipmitool_row(name: str, reading: str, status: str, limits: List[str]) -> RawFeature:
    feature = RawFeature("bmc", "IPMI SDR", name, None, "other")
    feature.device_status = _IPMI_STATUS.get(status, "ok" if status.startswith("0x") else "unknown")
    match = re.match(r"^([-+]?(?:\d+(?:\.\d*)?|\.\d+))\s*(.*)$", reading)
    unit_text = ""
    if match and not reading.lower().startswith("0x"):
        value = float(match.group(1))
        unit_text = match.group(2).strip().lower()
        kind, unit = _IPMI_UNITS.get(unit_text, ("fan" if "fan" in name.lower() else "other", None))
        feature.kind = kind
        feature.unit = None if unit_text in _IPMI_UNITS else {"percent": "%"}.get(unit_text, unit_text or None)
        feature.attrs["input"] = parse.convert(value, unit)
        for limit, attr in zip(limits, _IPMI_LIMITS):
            number = parse.to_number(limit)
            if number is not None and attr is not None:
                feature.attrs[attr] = parse.convert(number, unit)
    else:
        feature.kind = "intrusion" if "intrusion" in name.lower() else "other"
        if reading.lower().startswith("0x"):
            feature.states.append(f"state {reading}")
        elif reading:
            feature.errors.append(reading)
    return feature
