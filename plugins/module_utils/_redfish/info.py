# Copyright: ctys.pm contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""What a BMC knows over Redfish: identity, firmware, event log, power draw, its own network settings.

The same sections and keys as ``_ipmi.info`` (pm_bmc_info's result). One session per BMC,
deleted at the end, failure included (``client.Session``). A section whose resources the
BMC does not have (HTTP 404, no link) goes into ``unsupported``; other failures fail the BMC.
"""

from __future__ import annotations

import re
from datetime import datetime, timezone
from typing import Any, Dict, List, Optional, Sequence, Tuple

from ansible_collections.ctys.pm.plugins.module_utils._bmc.info_request import select_events
from ansible_collections.ctys.pm.plugins.module_utils._deadline import Deadline
from ansible_collections.ctys.pm.plugins.module_utils._redfish.client import Connection, RedfishTarget, Session, TlsContexts, path_of
from ansible_collections.ctys.pm.plugins.module_utils._redfish.errors import RedfishNotFoundError
from ansible_collections.ctys.pm.plugins.module_utils._redfish.system import find_system

# LogEntry Severity -> the severities of pm_bmc_info
SEVERITY = {"ok": "ok", "warning": "warning", "critical": "critical"}
ENTRIES_MAX = 4096  # log entries read at most (paged with Members@odata.nextLink)
_UUID = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")


def _link(document: Dict[str, Any], *keys: str) -> Optional[str]:
    value: Any = document
    for key in keys:
        value = value.get(key) if isinstance(value, dict) else None
    if isinstance(value, list):
        value = value[0] if value else None
    if isinstance(value, dict) and value.get("@odata.id"):
        return path_of(str(value["@odata.id"]))
    return None


def _members(conn: Connection, uri: str, most: int = ENTRIES_MAX) -> List[Dict[str, Any]]:
    """The members of a collection, expanded where the BMC did not (bounded by ``most``)."""
    found: List[Dict[str, Any]] = []
    next_uri: Optional[str] = uri
    while next_uri and len(found) < most:
        page = conn.get(next_uri)
        for member in page.get("Members") or []:
            if not isinstance(member, dict):
                continue
            if set(member) <= {"@odata.id"} and member.get("@odata.id"):
                member = conn.get(path_of(str(member["@odata.id"])))
            found.append(member)
        link = page.get("Members@odata.nextLink")
        next_uri = path_of(str(link)) if link else None
    return found[:most]


def _text(value: Any) -> Optional[str]:
    return str(value).strip() if value not in (None, "") else None


def _uuid(value: Any) -> Optional[str]:
    text = (_text(value) or "").lower()
    return text if _UUID.match(text) else None


def identity_of(system: Dict[str, Any], chassis: Optional[Dict[str, Any]]) -> Dict[str, Any]:
    identity: Dict[str, Any] = {
        "manufacturer": _text(system.get("Manufacturer")),
        "product": _text(system.get("Model")),
        "model": _text(system.get("SKU")) or _text(system.get("Model")),
        "serial_number": _text(system.get("SerialNumber")),
        "part_number": _text(system.get("PartNumber")),
        "asset_tag": _text(system.get("AssetTag")),
        "uuid": _uuid(system.get("UUID")),
    }
    if chassis is not None:
        identity["board"] = {
            "manufacturer": _text(chassis.get("Manufacturer")),
            "product": _text(chassis.get("Model")),
            "serial_number": _text(chassis.get("SerialNumber")),
            "part_number": _text(chassis.get("PartNumber")),
            "manufactured": None,
        }
    return identity


def firmware_of(manager: Dict[str, Any], inventory: Sequence[Dict[str, Any]]) -> Dict[str, Any]:
    items = [{"name": _text(item.get("Name")) or _text(item.get("Id")), "version": _text(item.get("Version"))}
             for item in inventory if item.get("Version") not in (None, "")]
    if not items and manager.get("FirmwareVersion"):
        items = [{"name": "BMC", "version": _text(manager.get("FirmwareVersion"))}]
    return {"bmc_version": _text(manager.get("FirmwareVersion")), "ipmi_version": None, "manufacturer_id": None,
            "product_id": None, "items": items}


def _epoch(created: Any) -> Optional[float]:
    text = _text(created)
    if not text:
        return None
    try:
        moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=timezone.utc)
    return moment.timestamp()


def event_of(entry: Dict[str, Any]) -> Dict[str, Any]:
    epoch = _epoch(entry.get("Created"))
    number = entry.get("SensorNumber")
    return {
        "id": _text(entry.get("Id")),
        "time": datetime.fromtimestamp(epoch, timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ") if epoch is not None else None,
        "sensor": None,  # a LogEntry names no sensor (only its type and number)
        "sensor_type": _text(entry.get("SensorType")),
        "sensor_number": number if isinstance(number, int) else None,
        "message": _text(entry.get("Message")),
        "severity": SEVERITY.get(str(entry.get("Severity") or "OK").lower(), "ok"),
        "direction": "deasserted" if str(entry.get("EntryCode") or "") == "Deassert" else "asserted",
        "epoch": epoch,
    }


def power_of(power: Dict[str, Any]) -> Optional[Dict[str, Any]]:
    control = power.get("PowerControl") or []
    first = control[0] if isinstance(control, list) and control and isinstance(control[0], dict) else {}
    watts = first.get("PowerConsumedWatts")
    if not isinstance(watts, (int, float)):
        return None
    metrics: Dict[str, Any] = first["PowerMetrics"] if isinstance(first.get("PowerMetrics"), dict) else {}
    interval = metrics.get("IntervalInMin")
    return {
        "watts": watts,
        "minimum": metrics.get("MinConsumedWatts"),
        "maximum": metrics.get("MaxConsumedWatts"),
        "average": metrics.get("AverageConsumedWatts"),
        "period": interval * 60 if isinstance(interval, (int, float)) else None,
    }


def network_of(interface: Dict[str, Any]) -> Dict[str, Any]:
    addresses = interface.get("IPv4Addresses") or [{}]
    first = addresses[0] if isinstance(addresses[0], dict) else {}
    origin = str(first.get("AddressOrigin") or "").lower()
    vlan: Dict[str, Any] = interface["VLAN"] if isinstance(interface.get("VLAN"), dict) else {}
    return {
        "address": _text(first.get("Address")),
        "netmask": _text(first.get("SubnetMask")),
        "gateway": _text(first.get("Gateway")),
        "mac": (_text(interface.get("MACAddress")) or "").lower() or None,
        "vlan": vlan.get("VLANId") if vlan.get("VLANEnable") else None,
        "source": {"static": "static", "dhcp": "dhcp"}.get(origin, "other" if origin else None),
        "channel": None,
    }


def _firmware_inventory(conn: Connection) -> List[Dict[str, Any]]:
    """UpdateService's FirmwareInventory where the BMC has one (linked but missing, as on sushy-emulator: none)."""
    try:
        update = _link(conn.get("/redfish/v1"), "UpdateService")
        inventory_uri = _link(conn.get(update), "FirmwareInventory") if update else None
        return _members(conn, inventory_uri) if inventory_uri else []
    except RedfishNotFoundError:
        return []


def gather(target: RedfishTarget, sections: Sequence[str], events_since: Optional[float], events_max: Optional[int],
           deadline: Deadline, tls: Optional[TlsContexts] = None) -> Tuple[Dict[str, Any], List[str]]:
    """The sections asked for, and the ones this BMC does not offer."""
    data: Dict[str, Any] = {}
    unsupported: List[str] = []
    with Session(target, deadline, tls) as conn:
        system = find_system(conn, target.resource_id).document
        chassis_uri = _link(system, "Links", "Chassis")
        manager_uri = _link(system, "Links", "ManagedBy")
        if manager_uri is None:
            managers = _members(conn, "/redfish/v1/Managers", 1)
            manager_uri = path_of(str(managers[0]["@odata.id"])) if managers and managers[0].get("@odata.id") else None
        manager = conn.get(manager_uri) if manager_uri else {}
        chassis = conn.get(chassis_uri) if chassis_uri and ("identity" in sections or "power" in sections) else None
        for section in sections:
            try:
                found = _section(conn, section, system, chassis, manager, events_since, events_max)
            except RedfishNotFoundError:
                found = None
            if found is None:
                unsupported.append(section)
            else:
                data[section] = found
    return data, unsupported


def _section(conn: Connection, section: str, system: Dict[str, Any], chassis: Optional[Dict[str, Any]], manager: Dict[str, Any],
             events_since: Optional[float], events_max: Optional[int]) -> Optional[Dict[str, Any]]:
    if section == "identity":
        return identity_of(system, chassis)
    if section == "firmware":
        if not manager:
            return None
        return firmware_of(manager, _firmware_inventory(conn))
    if section == "events":
        services = [uri for uri in (_link(manager, "LogServices"), _link(system, "LogServices")) if uri]
        logs = [member for uri in services for member in _members(conn, uri, 16)]
        chosen = next((log for log in logs if str(log.get("Id")) == "SEL"), logs[0] if logs else None)
        entries_uri = _link(chosen, "Entries") if chosen else None
        if entries_uri is None:
            return None
        entries = [event_of(entry) for entry in _members(conn, entries_uri)]
        entries.sort(key=lambda entry: (entry["epoch"] is not None, entry["epoch"] or 0.0))  # oldest first, undated before
        return select_events(entries, events_since, events_max, len(entries))
    if section == "power":
        power_uri = _link(chassis, "Power") if chassis else None
        return power_of(conn.get(power_uri)) if power_uri else None
    if section == "network":
        interfaces_uri = _link(manager, "EthernetInterfaces")
        interfaces = _members(conn, interfaces_uri, 1) if interfaces_uri else []
        return network_of(interfaces[0]) if interfaces else None
    return None


__all__ = ["gather", "identity_of", "firmware_of", "event_of", "power_of", "network_of"]
