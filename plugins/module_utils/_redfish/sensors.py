# Copyright: ctys.pm contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Health through Redfish for pm_sensors ``source: redfish``.

Readings come from the chassis ``Sensors`` collection, or from the older
``Thermal`` and ``Power`` resources where that is all the BMC has, plus the
system's own health rollup (one reading, kind ``other``). They become
:class:`_sensors_parse.RawFeature` objects, so ``_sensors.verdict`` judges
them exactly like lm-sensors' or IPMI's readings.
"""

from __future__ import annotations

from typing import Any, Dict, List, Optional, Tuple

from ansible_collections.ctys.pm.plugins.module_utils._deadline import Deadline, check_seconds
from ansible_collections.ctys.pm.plugins.module_utils._redfish.client import Connection, Logger, RedfishTarget, Session, TlsContexts, path_of
from ansible_collections.ctys.pm.plugins.module_utils._redfish.errors import RedfishNotFoundError
from ansible_collections.ctys.pm.plugins.module_utils._redfish.system import find_system
from ansible_collections.ctys.pm.plugins.module_utils._sensors_parse import RawFeature

CHIP = "bmc"
ADAPTER = "Redfish"
# Sensor.ReadingType -> kind
READING_KINDS = {"Temperature": "temperature", "Rotational": "fan", "Voltage": "voltage", "Power": "power",
                 "Current": "current", "EnergyJoules": "energy", "EnergykWh": "energy", "Humidity": "humidity"}
UNIT_KINDS = {"Cel": "temperature", "RPM": "fan", "V": "voltage", "W": "power", "A": "current", "J": "energy", "kW.h": "energy",
              "%": None}
ENERGY_FACTOR = {"kW.h": 3.6e6, "kWh": 3.6e6}
# Sensor.Thresholds -> the attribute names of _sensors (sysfs' names)
THRESHOLDS = {"UpperCaution": "max", "UpperCritical": "crit", "UpperFatal": "emergency",
              "LowerCaution": "min", "LowerCritical": "lcrit", "LowerFatal": "lower_non_recoverable"}
# Thermal/Power's flat thresholds
FLAT = {"UpperThresholdNonCritical": "max", "UpperThresholdCritical": "crit", "UpperThresholdFatal": "emergency",
        "LowerThresholdNonCritical": "min", "LowerThresholdCritical": "lcrit", "LowerThresholdFatal": "lower_non_recoverable"}
HEALTH = {"OK": "ok", "Warning": "warning", "Critical": "critical"}


def _number(value: Any) -> Optional[float]:
    if isinstance(value, bool) or value is None:
        return None
    try:
        return float(value)
    except (TypeError, ValueError):
        return None


def _status(feature: RawFeature, status: Any) -> bool:
    """Apply a Redfish Status object; False when the sensor is absent (no reading at all)."""
    if not isinstance(status, dict):
        return True
    state = status.get("State")
    if state in ("Absent",):
        return False
    health = status.get("Health")
    if state in ("Disabled", "StandbyOffline", "UnavailableOffline"):
        feature.device_status = "unknown"
        feature.errors.append(f"the BMC reports the sensor {state}")
    elif health in HEALTH:
        feature.device_status = HEALTH[health]
        if health != "OK":
            feature.states.append(f"Health {health}")
    return True


def from_sensor(document: Dict[str, Any]) -> Optional[RawFeature]:
    """A Sensor resource (the Sensors collection's members)."""
    units = str(document.get("ReadingUnits") or "")
    kind = READING_KINDS.get(str(document.get("ReadingType") or "")) or UNIT_KINDS.get(units) or "other"
    feature = RawFeature(CHIP, ADAPTER, str(document.get("Name") or document.get("Id") or "sensor"), str(document.get("Id") or "") or None, kind)
    if not _status(feature, document.get("Status")):
        return None
    factor = ENERGY_FACTOR.get(units, 1.0)
    value = _number(document.get("Reading"))
    if value is not None:
        feature.attrs["input"] = value * factor
    elif feature.device_status != "unknown":
        feature.errors.append("the BMC gives no reading for this sensor")
    found = document.get("Thresholds")
    thresholds: Dict[str, Any] = found if isinstance(found, dict) else {}
    for name, attr in THRESHOLDS.items():
        limit = thresholds.get(name)
        number = _number(limit.get("Reading")) if isinstance(limit, dict) else None
        if number is not None:
            feature.attrs[attr] = number * factor
    if kind == "fan" and units == "%":
        feature.unit = "%"
    elif kind == "other" and units:
        feature.unit = units
    return feature


def _flat(name: str, kind: str, value: Any, member: Dict[str, Any], unit: Optional[str] = None) -> Optional[RawFeature]:
    feature = RawFeature(CHIP, ADAPTER, name, str(member.get("MemberId") or "") or None, kind)
    if not _status(feature, member.get("Status")):
        return None
    number = _number(value)
    if number is not None:
        feature.attrs["input"] = number
    elif feature.device_status != "unknown":
        feature.errors.append("the BMC gives no reading for this sensor")
    for key, attr in FLAT.items():
        limit = _number(member.get(key))
        if limit is not None:
            feature.attrs[attr] = limit
    if unit:
        feature.unit = unit
    return feature


def from_thermal(document: Dict[str, Any]) -> List[RawFeature]:
    features: List[Optional[RawFeature]] = []
    for member in document.get("Temperatures") or []:
        if isinstance(member, dict):
            features.append(_flat(str(member.get("Name") or "temperature"), "temperature", member.get("ReadingCelsius"), member))
    for member in document.get("Fans") or []:
        if isinstance(member, dict):
            unit = "%" if member.get("ReadingUnits") == "Percent" else None
            features.append(_flat(str(member.get("Name") or member.get("FanName") or "fan"), "fan", member.get("Reading"), member, unit))
    return [f for f in features if f is not None]


def from_power(document: Dict[str, Any]) -> List[RawFeature]:
    features: List[Optional[RawFeature]] = []
    for member in document.get("Voltages") or []:
        if isinstance(member, dict):
            features.append(_flat(str(member.get("Name") or "voltage"), "voltage", member.get("ReadingVolts"), member))
    for member in document.get("PowerControl") or []:
        if isinstance(member, dict):
            features.append(_flat(str(member.get("Name") or "power"), "power", member.get("PowerConsumedWatts"), member))
    return [f for f in features if f is not None]


def rollup(name: str, document: Dict[str, Any]) -> Optional[RawFeature]:
    """The resource's own verdict (Status.HealthRollup, else Health) as one reading."""
    status = document.get("Status")
    if not isinstance(status, dict):
        return None
    health = status.get("HealthRollup") or status.get("HealthRollUp") or status.get("Health")
    if health not in HEALTH:
        return None
    feature = RawFeature(CHIP, ADAPTER, name, None, "other")
    feature.device_status = HEALTH[health]
    feature.states.append(f"HealthRollup {health}")
    return feature


def _link(document: Dict[str, Any], key: str) -> Optional[str]:
    value = document.get(key)
    return path_of(str(value["@odata.id"])) if isinstance(value, dict) and value.get("@odata.id") else None


def read_health(conn: Connection, resource_id: Optional[str] = None) -> Tuple[List[RawFeature], List[str]]:
    """Every reading of the system's chassis, and the system's health rollup."""
    messages: List[str] = []
    system = find_system(conn, resource_id)
    features: List[RawFeature] = []
    own = rollup(f"system {system.id} health rollup", system.document)
    if own is not None:
        features.append(own)
    found_links = system.document.get("Links")
    links: Dict[str, Any] = found_links if isinstance(found_links, dict) else {}
    chassis = [path_of(str(c["@odata.id"])) for c in links.get("Chassis") or [] if isinstance(c, dict) and c.get("@odata.id")]
    if not chassis:
        chassis = [path_of(str(m["@odata.id"])) for m in conn.get("/redfish/v1/Chassis").get("Members") or []
                   if isinstance(m, dict) and m.get("@odata.id")]
    for uri in chassis:
        document = conn.get(uri)
        sensors = _link(document, "Sensors")
        found: List[RawFeature] = []
        if sensors:
            try:
                for member in conn.get(sensors).get("Members") or []:
                    if isinstance(member, dict) and member.get("@odata.id"):
                        feature = from_sensor(conn.get(path_of(str(member["@odata.id"]))))
                        if feature is not None:
                            found.append(feature)
            except RedfishNotFoundError:
                messages.append(f"{uri}: the Sensors collection is linked but missing")
        if not found:
            for key, reader in (("Thermal", from_thermal), ("Power", from_power)):
                link = _link(document, key)
                if link:
                    try:
                        found.extend(reader(conn.get(link)))
                    except RedfishNotFoundError:
                        messages.append(f"{uri}: {key} is linked but missing")
        features.extend(found)
    return features, messages


def read(params: Dict[str, Any], tls: Optional[TlsContexts] = None, log: Optional[Logger] = None) -> Tuple[List[RawFeature], List[str], str, Dict[str, Any]]:
    """pm_sensors' ``source: redfish``: the same return shape as ``_ipmi.sensors.read``."""
    target = RedfishTarget.from_params(params)
    timeout = check_seconds("timeout", params.get("timeout", 60), 3600, "60")
    deadline = Deadline(timeout)
    session = Session(target, deadline, tls, log)
    with session as conn:
        features, messages = read_health(conn, target.resource_id)
    if session.why_basic:
        messages.append(f"{session.why_basic}; basic authentication was used")
    return features, messages, "redfish", {"bmc": target.address, "protocol": "redfish"}


__all__ = ["read", "read_health", "from_sensor", "from_thermal", "from_power", "rollup"]
