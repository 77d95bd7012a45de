# Copyright: ctys.pm contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Which ComputerSystem of a BMC to act on, and what it allows."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Dict, List, Optional

from ansible_collections.ctys.pm.plugins.module_utils._errors import PmInputError, PmUnsupportedError
from ansible_collections.ctys.pm.plugins.module_utils._redfish.client import Connection, path_of
from ansible_collections.ctys.pm.plugins.module_utils._redfish.errors import RedfishNotFoundError

SYSTEMS = "/redfish/v1/Systems"
RESET_ACTION = "#ComputerSystem.Reset"


@dataclass
class System:
    """One ComputerSystem as last read."""

    uri: str
    id: str
    document: Dict[str, Any]
    etag: Optional[str] = None
    reset_target: Optional[str] = None
    reset_types: Optional[List[str]] = None  # None: the BMC does not say (every standard type is tried as asked)
    settings_uri: Optional[str] = None  # @Redfish.Settings: where the BMC wants PATCHes
    extra: Dict[str, Any] = field(default_factory=dict)

    @property
    def power_state(self) -> Optional[str]:
        value = self.document.get("PowerState")
        return str(value) if value is not None else None

    @property
    def boot(self) -> Dict[str, Any]:
        boot = self.document.get("Boot")
        return boot if isinstance(boot, dict) else {}


def _members(document: Dict[str, Any]) -> List[str]:
    return [path_of(str(m["@odata.id"])) for m in document.get("Members") or [] if isinstance(m, dict) and m.get("@odata.id")]


def _id_of(uri: str) -> str:
    return uri.rstrip("/").rsplit("/", 1)[-1]


def find_system(conn: Connection, resource_id: Optional[str] = None) -> System:
    """The system named by ``resource_id``, or the only one; an error naming the ids otherwise."""
    address = conn.target.address
    if resource_id:
        try:
            return read_system(conn, f"{SYSTEMS}/{resource_id}")
        except RedfishNotFoundError:
            ids = [_id_of(uri) for uri in _members(conn.get(SYSTEMS))]
            raise PmInputError(
                f"resource_id '{resource_id}' is not valid; the BMC at {address} has the system(s) {', '.join(ids) or 'none'}"
            ) from None
    members = _members(conn.get(SYSTEMS))
    if not members:
        raise PmUnsupportedError(f"the BMC at {address} lists no computer system under {SYSTEMS}")
    if len(members) > 1:
        named = ", ".join(_id_of(uri) for uri in members)
        raise PmInputError(f"resource_id is missing; the BMC at {address} manages several systems ({named}), set resource_id to one of them")
    return read_system(conn, members[0])


def read_system(conn: Connection, uri: str) -> System:
    document, etag = conn.get_with_etag(uri)
    uri = path_of(str(document.get("@odata.id") or uri))
    system = System(uri, str(document.get("Id") or _id_of(uri)), document, etag)
    action = (document.get("Actions") or {}).get(RESET_ACTION) or {}
    if isinstance(action, dict):
        if action.get("target"):
            system.reset_target = path_of(str(action["target"]))
        allowed = action.get("ResetType@Redfish.AllowableValues")
        if isinstance(allowed, list):
            system.reset_types = [str(v) for v in allowed]
        elif action.get("@Redfish.ActionInfo"):
            system.reset_types = _action_info(conn, path_of(str(action["@Redfish.ActionInfo"])))
    settings = document.get("@Redfish.Settings")
    if isinstance(settings, dict):
        settings_object = settings.get("SettingsObject") or {}
        if isinstance(settings_object, dict) and settings_object.get("@odata.id"):
            system.settings_uri = path_of(str(settings_object["@odata.id"]))
    return system


def _action_info(conn: Connection, uri: str) -> Optional[List[str]]:
    try:
        info = conn.get(uri)
    except RedfishNotFoundError:
        return None
    for parameter in info.get("Parameters") or []:
        if isinstance(parameter, dict) and parameter.get("Name") == "ResetType" and isinstance(parameter.get("AllowableValues"), list):
            return [str(v) for v in parameter["AllowableValues"]]
    return None


def refresh(conn: Connection, system: System) -> System:
    """Read the system again (power state, boot override, ETag), keeping what was learnt about its actions."""
    document, etag = conn.get_with_etag(system.uri)
    system.document, system.etag = document, etag
    return system
