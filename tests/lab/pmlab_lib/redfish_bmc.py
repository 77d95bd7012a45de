"""The Redfish face of a lab BMC: HTTPS (DMTF Redfish) on the same machine as its IPMI face.

Run as ``python -m pmlab_lib.redfish_bmc --config redfish.json`` (lab.py writes
the config: the IPMI BMC's config plus ``redfish_address``, ``redfish_port``,
``cert_file``, ``key_file``, ``redfish_ready_file``, ``redfish_log_file``).
Standard library only: ``http.server`` with one thread per connection, TLS
from the lab's CA (redfish_tls.py), HTTP/1.1 keep-alive.

One machine, several doors: power, boot override and the sensors are the
machine's (its control socket and the BMC's sensor file, as the IPMI face
uses them); users, passwords and privileges are the IPMI BMC's users
(administrator -> Administrator, operator -> Operator, user -> ReadOnly).

Run-time switches come through the machine's control channel
(``Machine.control.call("redfish_configure", ...)``, see control.py), read on
every request:

``profile``
    ``generic``: every ResetType (On, ForceOff, GracefulShutdown,
    GracefulRestart, ForceRestart, Nmi, ForceOn, PushPowerButton, PowerCycle),
    system ``1``, manager ``bmc``; a full session table answers 503 with
    ``Base.1.15.SessionLimitExceeded``.
    ``dell``: iDRAC9-like: no PowerCycle and no GracefulRestart, ids
    ``System.Embedded.1`` / ``iDRAC.Embedded.1``, On while on or ForceOff while
    off answers 409, a full session table answers 503 with ``IDRAC.2.8.RAC0218``.
    ``boot_ignored``: like generic, but a boot override PATCH is accepted
    (204) and changes nothing: it reads back as before (firmware that ignores it).
    ``settings``: like generic, but the ComputerSystem carries ``@Redfish.Settings``
    with a SettingsObject (``/redfish/v1/Systems/1/Settings``): a PATCH to the
    system itself answers 405 (as BMCs that want their settings object do), a
    PATCH of Boot to the settings object (If-Match honoured) is applied at once
    to the machine's boot override. Real BMCs apply it at the next reset
    (``SupportedApplyTimes: OnReset``); the lab has no reboot-to-apply and says
    ``Immediate``.
    ``multi``: like generic, and a second ComputerSystem ``2`` on the same BMC
    (a blade or partition): its power and boot override are a flag in the face's
    memory, not a machine; GET and ComputerSystem.Reset only (PATCH answers 405).
    System ``1`` still drives the machine, so ``resource_id`` matters.
``fault`` (``{"mode": ...}``)
    ``none``; ``503`` (``count``: how many requests, default all; ``Retry-After: 1``);
    ``silent`` (accepts TCP, never answers, not even the TLS handshake);
    ``slow`` (``delay``: seconds before every answer, default 2; ``power_delay``:
    power changes applied that much later while the action already answered
    204, PowerState reads PoweringOn/PoweringOff meanwhile);
    ``task`` (a reset answers 202 with a task monitor; the change happens
    ``delay`` s later, default 1; the monitor answers 202 until then, then 204).
``session_limit``
    sessions at once (default 4); basic auth needs no session.
"""

from __future__ import annotations

import argparse
import base64
import binascii
import datetime
import hashlib
import http.server
import json
import os
import re
import secrets
import signal
import socket
import socketserver
import ssl
import sys
import threading
import time
import traceback
import uuid as uuidlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Dict, List, Optional, TextIO, Tuple

from pmlab_lib import bmc_records, sdr
from pmlab_lib.control import ControlClient, ControlError

BASE = "Base.1.15"
ALL_RESET_TYPES = ["On", "ForceOff", "GracefulShutdown", "GracefulRestart", "ForceRestart", "Nmi", "ForceOn", "PushPowerButton", "PowerCycle"]
PROFILES: Dict[str, Dict[str, Any]] = {
    "generic": {
        "reset_types": ALL_RESET_TYPES,
        "system_id": "1", "chassis_id": "1", "manager_id": "bmc",
        "manufacturer": "pmlab", "model": "pmlab-machine", "firmware": bmc_records.FIRMWARE_VERSION,  # as the IPMI face
        "boot_honoured": True, "conflict_on_same_state": False, "vendor_busy": None,
    },
    "dell": {
        "reset_types": ["On", "ForceOff", "ForceRestart", "GracefulShutdown", "PushPowerButton", "Nmi"],
        "system_id": "System.Embedded.1", "chassis_id": "System.Embedded.1", "manager_id": "iDRAC.Embedded.1",
        "manufacturer": "Dell Inc.", "model": "PowerEdge R650 (pmlab)", "firmware": "7.00.00.00",
        "boot_honoured": True, "conflict_on_same_state": True, "vendor_busy": "IDRAC.2.8.RAC0218",
    },
    "boot_ignored": {
        "reset_types": ALL_RESET_TYPES,
        "system_id": "1", "chassis_id": "1", "manager_id": "bmc",
        "manufacturer": "pmlab", "model": "pmlab machine (ignores boot override)", "firmware": "pmlab-bmc 0.9",
        "boot_honoured": False, "conflict_on_same_state": False, "vendor_busy": None,
    },
    "settings": {
        "reset_types": ALL_RESET_TYPES,
        "system_id": "1", "chassis_id": "1", "manager_id": "bmc",
        "manufacturer": "pmlab", "model": "pmlab machine (boot via @Redfish.Settings)", "firmware": "pmlab-bmc 1.1",
        "boot_honoured": True, "conflict_on_same_state": False, "vendor_busy": None, "settings_object": True,
    },
    "multi": {
        "reset_types": ALL_RESET_TYPES,
        "system_id": "1", "chassis_id": "1", "manager_id": "bmc",
        "manufacturer": "pmlab", "model": "pmlab machine (two systems)", "firmware": "pmlab-bmc 1.1",
        "boot_honoured": True, "conflict_on_same_state": False, "vendor_busy": None, "second_system": "2",
    },
}
SECOND_POWER = {"On": "On", "ForceOn": "On", "ForceOff": "Off", "GracefulShutdown": "Off", "GracefulRestart": "On", "ForceRestart": "On",
                "PowerCycle": "On"}  # profile multi: what a reset leaves system 2 at (restarts need it on)
# Redfish BootSourceOverrideTarget <-> the machine's boot device (IPMI's names)
TARGETS = {"None": "default", "Pxe": "network", "Hdd": "hd", "Cd": "cdrom", "BiosSetup": "bios", "Floppy": "floppy"}
TARGET_OF = {device: target for target, device in TARGETS.items()}
TARGET_OF["safe"] = "Hdd"  # IPMI's "force boot from default hard drive, safe mode"
ROLES = {"administrator": "Administrator", "operator": "Operator", "user": "ReadOnly"}
PRIVILEGES = {
    "Administrator": {"Login", "ConfigureComponents", "ConfigureManager", "ConfigureUsers", "ConfigureSelf"},
    "Operator": {"Login", "ConfigureComponents", "ConfigureSelf"},
    "ReadOnly": {"Login", "ConfigureSelf"},
}
ACTIONS = {"On": "on", "ForceOn": "on", "ForceOff": "off", "GracefulShutdown": "soft", "GracefulRestart": "soft_reboot",
           "ForceRestart": "reset", "PowerCycle": "cycle"}
UNITS = {"temperature": ("Cel", "Temperature"), "fan": ("RPM", "Rotational"), "voltage": ("V", "Voltage"),
         "power": ("W", "Power"), "current": ("A", "Current")}
THRESHOLD_NAMES = {"upper_non_critical": "UpperCaution", "upper_critical": "UpperCritical", "upper_non_recoverable": "UpperFatal",
                   "lower_non_critical": "LowerCaution", "lower_critical": "LowerCritical", "lower_non_recoverable": "LowerFatal"}
TYPES = {
    "ServiceRoot": "#ServiceRoot.v1_15_0.ServiceRoot",
    "ComputerSystemCollection": "#ComputerSystemCollection.ComputerSystemCollection",
    "ComputerSystem": "#ComputerSystem.v1_20_0.ComputerSystem",
    "ChassisCollection": "#ChassisCollection.ChassisCollection",
    "Chassis": "#Chassis.v1_22_0.Chassis",
    "Thermal": "#Thermal.v1_7_1.Thermal",
    "Power": "#Power.v1_7_1.Power",
    "SensorCollection": "#SensorCollection.SensorCollection",
    "Sensor": "#Sensor.v1_6_0.Sensor",
    "ManagerCollection": "#ManagerCollection.ManagerCollection",
    "Manager": "#Manager.v1_17_0.Manager",
    "SessionService": "#SessionService.v1_1_8.SessionService",
    "SessionCollection": "#SessionCollection.SessionCollection",
    "Session": "#Session.v1_6_0.Session",
    "AccountService": "#AccountService.v1_12_0.AccountService",
    "ManagerAccountCollection": "#ManagerAccountCollection.ManagerAccountCollection",
    "ManagerAccount": "#ManagerAccount.v1_10_0.ManagerAccount",
    "RoleCollection": "#RoleCollection.RoleCollection",
    "Role": "#Role.v1_3_1.Role",
    "TaskService": "#TaskService.v1_2_0.TaskService",
    "TaskCollection": "#TaskCollection.TaskCollection",
    "Task": "#Task.v1_7_0.Task",
    "LogServiceCollection": "#LogServiceCollection.LogServiceCollection",
    "LogService": "#LogService.v1_5_0.LogService",
    "LogEntryCollection": "#LogEntryCollection.LogEntryCollection",
    "LogEntry": "#LogEntry.v1_15_0.LogEntry",
    "EthernetInterfaceCollection": "#EthernetInterfaceCollection.EthernetInterfaceCollection",
    "EthernetInterface": "#EthernetInterface.v1_9_0.EthernetInterface",
    "UpdateService": "#UpdateService.v1_11_0.UpdateService",
    "SoftwareInventoryCollection": "#SoftwareInventoryCollection.SoftwareInventoryCollection",
    "SoftwareInventory": "#SoftwareInventory.v1_9_0.SoftwareInventory",
}
SILENT_HOLD = 600.0  # a silent BMC keeps a connection at most this long (bounded: threads end)


def now_iso() -> str:
    return datetime.datetime.now(datetime.timezone.utc).replace(microsecond=0).isoformat()


def odata(kind: str, path: str, **values: Any) -> Dict[str, Any]:
    return dict({"@odata.id": path, "@odata.type": TYPES[kind]}, **values)


def collection(kind: str, path: str, name: str, members: List[str]) -> Dict[str, Any]:
    return odata(kind, path, Name=name, Members=[{"@odata.id": m} for m in members], **{"Members@odata.count": len(members)})


def message(message_id: str, text: str, resolution: str = "None.", severity: str = "Warning", args: Optional[List[str]] = None) -> Dict[str, Any]:
    return {"@odata.type": "#Message.v1_1_1.Message", "MessageId": message_id, "Message": text, "MessageArgs": args or [],
            "Severity": severity, "MessageSeverity": severity, "Resolution": resolution}


def error_body(code: str, text: str, extended: Optional[List[Dict[str, Any]]] = None) -> Dict[str, Any]:
    return {"error": {"code": code, "message": text, "@Message.ExtendedInfo": extended or [message(code, text)]}}


class HttpError(Exception):
    """An answer other than success, with a Redfish error body."""

    def __init__(self, status: int, message_id: str, text: str, headers: Optional[Dict[str, str]] = None,
                 body: Optional[Dict[str, Any]] = None) -> None:
        super().__init__(text)
        self.status = status
        self.headers = headers or {}
        self.body = body if body is not None else error_body(f"{BASE}.{message_id}" if "." not in message_id else message_id, text)


@dataclass
class Session:
    id: str
    token: str
    user: str
    created: str
    last_used: float = field(default_factory=time.monotonic)


@dataclass
class Caller:
    user: str
    role: str
    session: Optional[Session] = None

    def may(self, privilege: str) -> bool:
        return privilege in PRIVILEGES.get(self.role, set())


@dataclass
class Task:
    id: str
    reset_type: str
    start: str
    done_at: float
    state: str = "Running"
    end: Optional[str] = None


class RedfishFace:
    """The state of one Redfish face: sessions, tasks, pending power changes, fault counters."""

    def __init__(self, config: Dict[str, Any]) -> None:
        self.config = config
        self.users: Dict[str, Dict[str, str]] = config["users"]
        self.control = ControlClient(config["control_socket"], timeout=3, keep_alive=True)  # asked on every request
        self.sensors = sdr.SensorRepository(config["sensors_file"])
        # FRU, SEL, power and LAN: the same records as the IPMI face (bmc_records.py)
        self.fru = bmc_records.FruIdentity(config["name"])
        self.sel = bmc_records.SelStore(bmc_records.sel_folder(config), Path(config["sensors_file"]))
        self.lan = bmc_records.lan_settings(config["address"])
        self.uuid = config["uuid"]
        self.name = config["name"]
        self.lock = threading.RLock()
        self.sessions: Dict[str, Session] = {}
        self.session_counter = 0
        self.session_timeout = int(config.get("session_timeout", 1800))
        self.tasks: Dict[str, Task] = {}
        self.task_counter = 0
        self.pending: Optional[str] = None  # "On"/"Off" while a delayed power change is under way
        self.fault_generation = -1
        self.fault_used = 0
        self.log_path = Path(config.get("redfish_log_file") or "/dev/null")
        self.log_file: Optional[TextIO] = None
        self.log_lock = threading.Lock()
        self.settings: Dict[str, Any] = {}  # the machine's last "redfish" switches (profile, fault, session_limit)
        self.second: Dict[str, Any] = {"power": "Off", "resets": 0}  # profile multi: system 2, in memory only

    def log(self, text: str) -> None:
        with self.log_lock:  # opened once, line-buffered: one line per request
            if self.log_file is None:
                self.log_file = open(self.log_path, "a", encoding="utf-8", buffering=1)  # kept for the face's life
            self.log_file.write(f"{time.strftime('%H:%M:%S')} {text}\n")

    # ----- machine and switches --------------------------------------------
    def status(self) -> Dict[str, Any]:
        return self.control.status()

    def fault(self, status: Dict[str, Any]) -> Dict[str, Any]:
        settings = status.get("redfish") or {}
        with self.lock:
            if settings.get("generation", 0) != self.fault_generation:
                self.fault_generation = settings.get("generation", 0)
                self.fault_used = 0
        return dict(settings.get("fault") or {"mode": "none"})

    def take_503(self, fault: Dict[str, Any]) -> bool:
        if fault.get("mode") != "503":
            return False
        with self.lock:
            count = fault.get("count")
            if count is not None and self.fault_used >= int(count):
                return False
            self.fault_used += 1
            return True

    def is_silent(self) -> bool:
        try:
            return self.fault(self.status()).get("mode") == "silent"
        except (ControlError, ValueError):
            return False

    @staticmethod
    def profile(status: Dict[str, Any]) -> Dict[str, Any]:
        return PROFILES.get((status.get("redfish") or {}).get("profile", "generic"), PROFILES["generic"])

    # ----- authentication -----------------------------------------------------
    def expire_sessions(self) -> None:
        limit = time.monotonic() - self.session_timeout
        with self.lock:
            for key in [k for k, s in self.sessions.items() if s.last_used < limit]:
                self.log(f"session {key} of {self.sessions[key].user} expired")
                del self.sessions[key]

    def check_password(self, user: str, password: str) -> Optional[Caller]:
        entry = self.users.get(user)
        if entry is None or entry.get("privilege") not in ROLES:
            return None
        if not secrets.compare_digest(str(entry.get("password", "")).encode(), password.encode()):
            return None
        return Caller(user, ROLES[entry["privilege"]])

    def authenticate(self, headers: Any) -> Optional[Caller]:
        token = headers.get("X-Auth-Token")
        if token:
            self.expire_sessions()
            with self.lock:
                for session in self.sessions.values():
                    if secrets.compare_digest(session.token.encode(), token.encode()):
                        session.last_used = time.monotonic()
                        entry = self.users.get(session.user, {})
                        return Caller(session.user, ROLES.get(entry.get("privilege", ""), "ReadOnly"), session)
            return None
        authorization = headers.get("Authorization") or ""
        if authorization.lower().startswith("basic "):
            try:
                user, _sep, password = base64.b64decode(authorization[6:].strip(), validate=True).decode("utf-8").partition(":")
            except (binascii.Error, UnicodeDecodeError, ValueError):
                return None
            return self.check_password(user, password)
        return None

    def login(self, body: Dict[str, Any], profile: Dict[str, Any]) -> Tuple[Session, Dict[str, Any]]:
        user, password = body.get("UserName"), body.get("Password")
        if not isinstance(user, str) or not isinstance(password, str):
            missing = "UserName" if not isinstance(user, str) else "Password"
            raise HttpError(400, "PropertyMissing", f"The property {missing} is a required property and must be included in the request.")
        caller = self.check_password(user, password)
        if caller is None:
            self.log(f"session login refused for {user!r}")
            raise HttpError(401, "NoValidSession", "There is no valid session established with the implementation.",
                            headers={"WWW-Authenticate": 'Basic realm="pmlab"'})
        self.expire_sessions()
        with self.lock:
            limit = int(self.settings.get("session_limit", 4))
            if len(self.sessions) >= limit:
                self.log(f"session table full ({limit}); login of {user!r} refused")
                if profile["vendor_busy"]:
                    body_out = error_body(f"{BASE}.GeneralError", "A general error has occurred. See ExtendedInfo for more information", [
                        message(profile["vendor_busy"], "The maximum number of user sessions is reached.",
                                "Close one or more sessions before opening another session.", "Informational")])
                else:
                    body_out = error_body(f"{BASE}.SessionLimitExceeded", "The session establishment failed due to the number of "
                                          "simultaneous sessions exceeding the limit of the implementation.")
                raise HttpError(503, "SessionLimitExceeded", "session limit", body=body_out)
            self.session_counter += 1
            session = Session(str(self.session_counter), secrets.token_hex(16), user, now_iso())
            self.sessions[session.id] = session
        self.log(f"session {session.id} opened for {user!r}")
        return session, self.session_resource(session)

    @staticmethod
    def session_resource(session: Session) -> Dict[str, Any]:
        return odata("Session", f"/redfish/v1/SessionService/Sessions/{session.id}", Id=session.id, Name="User Session",
                     UserName=session.user, CreatedTime=session.created, Password=None)

    # ----- power ----------------------------------------------------------------
    def schedule_power(self, action: str, delay: float, target: str, task: Optional[Task] = None) -> None:
        with self.lock:
            self.pending = target

        def apply() -> None:
            try:
                self.control.call("power", action=action)
            except ControlError as error:
                self.log(f"delayed power {action} failed: {error}")
            with self.lock:
                self.pending = None
                if task is not None:
                    task.state, task.end = "Completed", now_iso()
            self.log(f"delayed power {action} applied")

        timer = threading.Timer(max(0.0, delay), apply)
        timer.daemon = True
        timer.start()

    def power_state(self, status: Dict[str, Any]) -> str:
        power = "On" if status["power"] == "on" else "Off"
        with self.lock:
            if self.pending == "On" and power == "Off":
                return "PoweringOn"
            if self.pending == "Off" and power == "On":
                return "PoweringOff"
        return power


# ----- resources -------------------------------------------------------------------
def sensor_id(sensor: sdr.Sensor) -> str:
    return re.sub(r"[^A-Za-z0-9]", "", sensor.name) or f"Sensor{sensor.number}"


def sensor_health(sensor: sdr.Sensor) -> str:
    t, v = sensor.thresholds, sensor.value
    for key in ("upper_critical", "upper_non_recoverable"):
        if t.get(key) is not None and v >= t[key]:
            return "Critical"
    for key in ("lower_critical", "lower_non_recoverable"):
        if t.get(key) is not None and v <= t[key]:
            return "Critical"
    if (t.get("upper_non_critical") is not None and v >= t["upper_non_critical"]) or (
        t.get("lower_non_critical") is not None and v <= t["lower_non_critical"]
    ):
        return "Warning"
    return "OK"


def rollup(sensors: List[sdr.Sensor]) -> str:
    healths = [sensor_health(s) for s in sensors]
    return "Critical" if "Critical" in healths else "Warning" if "Warning" in healths else "OK"


def _status(health: str = "OK") -> Dict[str, Any]:
    return {"State": "Enabled", "Health": health, "HealthRollup": health}


def _thresholds_flat(sensor: sdr.Sensor) -> Dict[str, Any]:
    t = sensor.thresholds
    return {
        "UpperThresholdNonCritical": t.get("upper_non_critical"), "UpperThresholdCritical": t.get("upper_critical"),
        "UpperThresholdFatal": t.get("upper_non_recoverable"), "LowerThresholdNonCritical": t.get("lower_non_critical"),
        "LowerThresholdCritical": t.get("lower_critical"), "LowerThresholdFatal": t.get("lower_non_recoverable"),
    }


class Resources:
    """Builds the JSON documents of one face from the machine's current state."""

    def __init__(self, face: RedfishFace, status: Dict[str, Any]) -> None:
        self.face = face
        self.status = status
        self.profile = RedfishFace.profile(status)
        self.system = f"/redfish/v1/Systems/{self.profile['system_id']}"
        self.chassis = f"/redfish/v1/Chassis/{self.profile['chassis_id']}"
        self.manager = f"/redfish/v1/Managers/{self.profile['manager_id']}"
        self.settings = f"{self.system}/Settings" if self.profile.get("settings_object") else None
        self.second = f"/redfish/v1/Systems/{self.profile['second_system']}" if self.profile.get("second_system") else None
        self._sensors: Optional[List[sdr.Sensor]] = None

    @property
    def sensors(self) -> List[sdr.Sensor]:
        if self._sensors is None:
            self._sensors = self.face.sensors.sensors()
        return self._sensors

    def service_root(self) -> Dict[str, Any]:
        return odata(
            "ServiceRoot", "/redfish/v1", Id="RootService", Name="pmlab Redfish service", RedfishVersion="1.15.0", UUID=self.face.uuid,
            Vendor=self.profile["manufacturer"], Product=self.profile["model"],
            Systems={"@odata.id": "/redfish/v1/Systems"}, Chassis={"@odata.id": "/redfish/v1/Chassis"},
            Managers={"@odata.id": "/redfish/v1/Managers"}, SessionService={"@odata.id": "/redfish/v1/SessionService"},
            AccountService={"@odata.id": "/redfish/v1/AccountService"}, Tasks={"@odata.id": "/redfish/v1/TaskService"},
            UpdateService={"@odata.id": "/redfish/v1/UpdateService"},
            Links={"Sessions": {"@odata.id": "/redfish/v1/SessionService/Sessions"}},
            ProtocolFeaturesSupported={"ExpandQuery": {"ExpandAll": False, "Levels": False, "Links": False, "NoLinks": False},
                                       "FilterQuery": False, "SelectQuery": False, "OnlyMemberQuery": False, "ExcerptQuery": False},
        )

    def computer_system(self) -> Dict[str, Any]:
        st = self.status
        device = st["boot_device"]
        enabled = "Disabled" if device == "default" else ("Continuous" if st["boot_persistent"] else "Once")
        return odata(
            "ComputerSystem", self.system, Id=self.profile["system_id"], Name=self.face.name, HostName=self.face.name,
            SystemType="Physical", Manufacturer=self.profile["manufacturer"], Model=self.profile["model"],
            SerialNumber=self.face.fru.product_serial, SKU=self.face.fru.product_part_number,
            PartNumber=self.face.fru.product_part_number, AssetTag=self.face.fru.asset_tag, BiosVersion=bmc_records.BIOS_VERSION,
            UUID=self.face.uuid, PowerState=self.face.power_state(st),
            Status=_status(rollup(self.sensors)),
            Boot={
                "BootSourceOverrideEnabled": enabled,
                "BootSourceOverrideEnabled@Redfish.AllowableValues": ["Disabled", "Once", "Continuous"],
                "BootSourceOverrideTarget": TARGET_OF.get(device, "None"),
                "BootSourceOverrideTarget@Redfish.AllowableValues": list(TARGETS),
                "BootSourceOverrideMode": "UEFI" if st["boot_uefi"] else "Legacy",
                "BootSourceOverrideMode@Redfish.AllowableValues": ["Legacy", "UEFI"],
            },
            Actions={"#ComputerSystem.Reset": {"target": f"{self.system}/Actions/ComputerSystem.Reset",
                                               "ResetType@Redfish.AllowableValues": list(self.profile["reset_types"])}},
            Links={"Chassis": [{"@odata.id": self.chassis}], "ManagedBy": [{"@odata.id": self.manager}]},
            **({"@Redfish.Settings": {"@odata.type": "#Settings.v1_3_5.Settings", "SettingsObject": {"@odata.id": self.settings},
                                      "SupportedApplyTimes": ["Immediate"]}} if self.settings else {}),
        )

    def settings_object(self) -> Dict[str, Any]:
        """Profile settings: the pending settings of system 1 (applied at once, so the same Boot as the system)."""
        return odata("ComputerSystem", str(self.settings), Id="Settings", Name=f"{self.face.name} pending settings",
                     Boot=self.computer_system()["Boot"])

    def second_system(self) -> Dict[str, Any]:
        """Profile multi: system 2, a second ComputerSystem whose power is a flag in the face's memory."""
        with self.face.lock:
            power = self.face.second["power"]
        return odata(
            "ComputerSystem", str(self.second), Id=self.profile["second_system"], Name=f"{self.face.name}-2", SystemType="Physical",
            Manufacturer=self.profile["manufacturer"], Model=self.profile["model"], PowerState=power, Status=_status(),
            Boot={"BootSourceOverrideEnabled": "Disabled", "BootSourceOverrideTarget": "None", "BootSourceOverrideMode": "Legacy"},
            Actions={"#ComputerSystem.Reset": {"target": f"{self.second}/Actions/ComputerSystem.Reset",
                                               "ResetType@Redfish.AllowableValues": list(self.profile["reset_types"])}},
            Links={"ManagedBy": [{"@odata.id": self.manager}]},
        )

    def chassis_resource(self) -> Dict[str, Any]:
        return odata(
            "Chassis", self.chassis, Id=self.profile["chassis_id"], Name=f"{self.face.name} chassis", ChassisType="RackMount",
            Manufacturer=self.profile["manufacturer"], Model=self.face.fru.board_product, SerialNumber=self.face.fru.board_serial,
            PartNumber=self.face.fru.board_part_number, PowerState=self.face.power_state(self.status),
            Status=_status(rollup(self.sensors)), Thermal={"@odata.id": f"{self.chassis}/Thermal"},
            Power={"@odata.id": f"{self.chassis}/Power"}, Sensors={"@odata.id": f"{self.chassis}/Sensors"},
            Links={"ComputerSystems": [{"@odata.id": self.system}], "ManagedBy": [{"@odata.id": self.manager}]},
        )

    def thermal(self) -> Dict[str, Any]:
        temperatures, fans = [], []
        for sensor in self.sensors:
            if sensor.kind == "temperature":
                member = str(len(temperatures))
                temperatures.append(dict({"@odata.id": f"{self.chassis}/Thermal#/Temperatures/{member}", "MemberId": member,
                                          "Name": sensor.name, "SensorNumber": sensor.number, "ReadingCelsius": sensor.value,
                                          "Status": {"State": "Enabled", "Health": sensor_health(sensor)}}, **_thresholds_flat(sensor)))
            elif sensor.kind == "fan":
                member = str(len(fans))
                # the Thermal schema types fan readings and thresholds as integers
                limits = {k: (None if v is None else int(round(v))) for k, v in _thresholds_flat(sensor).items()}
                fans.append(dict({"@odata.id": f"{self.chassis}/Thermal#/Fans/{member}", "MemberId": member, "Name": sensor.name,
                                  "SensorNumber": sensor.number, "Reading": int(round(sensor.value)), "ReadingUnits": "RPM",
                                  "Status": {"State": "Enabled", "Health": sensor_health(sensor)}}, **limits))
        return odata("Thermal", f"{self.chassis}/Thermal", Id="Thermal", Name="Thermal", Temperatures=temperatures, Fans=fans)

    def power(self) -> Dict[str, Any]:
        reading = bmc_records.power_reading(self.status["power"] == "on")  # DCMI Get Power Reading's model
        voltages: List[Dict[str, Any]] = []
        controls: List[Dict[str, Any]] = [{
            "@odata.id": f"{self.chassis}/Power#/PowerControl/0", "MemberId": "0", "Name": "System Power Control",
            "PowerConsumedWatts": reading.watts, "Status": {"State": "Enabled", "Health": "OK"},
            "PowerMetrics": {"MinConsumedWatts": reading.minimum, "MaxConsumedWatts": reading.maximum,
                             "AverageConsumedWatts": reading.average, "IntervalInMin": reading.period // 60}}]
        for sensor in self.sensors:
            if sensor.kind == "voltage":
                member = str(len(voltages))
                voltages.append(dict({"@odata.id": f"{self.chassis}/Power#/Voltages/{member}", "MemberId": member, "Name": sensor.name,
                                      "SensorNumber": sensor.number, "ReadingVolts": sensor.value,
                                      "Status": {"State": "Enabled", "Health": sensor_health(sensor)}}, **_thresholds_flat(sensor)))
            elif sensor.kind == "power":
                member = str(len(controls))
                controls.append({"@odata.id": f"{self.chassis}/Power#/PowerControl/{member}", "MemberId": member, "Name": sensor.name,
                                 "PowerConsumedWatts": sensor.value, "Status": {"State": "Enabled", "Health": sensor_health(sensor)}})
        return odata("Power", f"{self.chassis}/Power", Id="Power", Name="Power", Voltages=voltages, PowerControl=controls)

    def sensor_collection(self) -> Dict[str, Any]:
        return collection("SensorCollection", f"{self.chassis}/Sensors", "Sensors",
                          [f"{self.chassis}/Sensors/{sensor_id(s)}" for s in self.sensors])

    def sensor(self, wanted: str) -> Optional[Dict[str, Any]]:
        for sensor in self.sensors:
            if sensor_id(sensor) != wanted:
                continue
            units, reading_type = UNITS.get(sensor.kind, ("", "Power"))
            thresholds = {name: {"Reading": sensor.thresholds[key]} for key, name in THRESHOLD_NAMES.items()
                          if sensor.thresholds.get(key) is not None}
            return odata("Sensor", f"{self.chassis}/Sensors/{wanted}", Id=wanted, Name=sensor.name, Reading=sensor.value,
                         ReadingUnits=units, ReadingType=reading_type, Thresholds=thresholds,
                         Status={"State": "Enabled", "Health": sensor_health(sensor)})
        return None

    def manager_resource(self) -> Dict[str, Any]:
        return odata(
            "Manager", self.manager, Id=self.profile["manager_id"], Name="pmlab BMC", ManagerType="BMC", UUID=self.face.uuid,
            FirmwareVersion=self.profile["firmware"], Manufacturer=self.profile["manufacturer"], Status=_status(),
            SerialConsole={"ServiceEnabled": True, "MaxConcurrentSessions": 1, "ConnectTypesSupported": ["IPMI"]},
            LogServices={"@odata.id": f"{self.manager}/LogServices"},
            EthernetInterfaces={"@odata.id": f"{self.manager}/EthernetInterfaces"},
            Links={"ManagerForServers": [{"@odata.id": self.system}], "ManagerForChassis": [{"@odata.id": self.chassis}]},
        )

    # ----- FRU/SEL/LAN/firmware: the IPMI face's records (bmc_records.py) -----
    def sel_service(self) -> Dict[str, Any]:
        path = f"{self.manager}/LogServices/SEL"
        return odata("LogService", path, Id="SEL", Name="System Event Log", Description="IPMI System Event Log",
                     MaxNumberOfRecords=bmc_records.SEL_CAPACITY, OverWritePolicy="WrapsWhenFull", DateTime=now_iso(),
                     DateTimeLocalOffset="+00:00", ServiceEnabled=True, LogEntryType="SEL", Status=_status(),
                     Entries={"@odata.id": f"{path}/Entries"},
                     Actions={"#LogService.ClearLog": {"target": f"{path}/Actions/LogService.ClearLog"}})

    def log_entry(self, record: bmc_records.SelRecord) -> Dict[str, Any]:
        return odata("LogEntry", f"{self.manager}/LogServices/SEL/Entries/{record.id}", Id=str(record.id),
                     Name=f"SEL entry {record.id}", EntryType="SEL", Created=record.created, Severity=record.severity,
                     Message=record.message, SensorType=record.redfish_sensor_type, SensorNumber=record.sensor_number,
                     EntryCode="Deassert" if record.direction == "deasserted" else "Assert", GeneratorId=f"{record.generator:#06x}")

    def sel_entries(self) -> Dict[str, Any]:
        path = f"{self.manager}/LogServices/SEL/Entries"
        members = [self.log_entry(record) for record in self.face.sel.records()]  # Members auto-expand (LogEntryCollection)
        return odata("LogEntryCollection", path, Name="System Event Log Entries", Members=members, **{"Members@odata.count": len(members)})

    def sel_entry(self, wanted: str) -> Optional[Dict[str, Any]]:
        return next((self.log_entry(r) for r in self.face.sel.records() if str(r.id) == wanted), None)

    def ethernet_interface(self) -> Dict[str, Any]:
        lan = self.face.lan
        return odata("EthernetInterface", f"{self.manager}/EthernetInterfaces/1", Id="1", Name="BMC LAN (IPMI channel 1)",
                     InterfaceEnabled=True, LinkStatus="LinkUp", Status=_status(), MACAddress=lan.mac, PermanentMACAddress=lan.mac,
                     IPv4Addresses=[{"Address": lan.address, "SubnetMask": lan.netmask, "Gateway": lan.gateway,
                                     "AddressOrigin": {"static": "Static", "dhcp": "DHCP"}.get(lan.source, "Static")}],
                     VLAN={"VLANEnable": lan.vlan is not None, "VLANId": lan.vlan or 0})

    def update_service(self) -> Dict[str, Any]:
        return odata("UpdateService", "/redfish/v1/UpdateService", Id="UpdateService", Name="Update Service", ServiceEnabled=False,
                     Status=_status(), FirmwareInventory={"@odata.id": "/redfish/v1/UpdateService/FirmwareInventory"})

    def firmware_items(self) -> Dict[str, Tuple[str, str]]:
        return {"BMC": ("BMC firmware", self.profile["firmware"]), "BIOS": ("System BIOS", bmc_records.BIOS_VERSION)}

    def firmware_item(self, wanted: str) -> Optional[Dict[str, Any]]:
        item = self.firmware_items().get(wanted)
        if item is None:
            return None
        return odata("SoftwareInventory", f"/redfish/v1/UpdateService/FirmwareInventory/{wanted}", Id=wanted, Name=item[0],
                     Version=item[1], Updateable=False, Status=_status())

    def session_service(self) -> Dict[str, Any]:
        return odata("SessionService", "/redfish/v1/SessionService", Id="SessionService", Name="Session Service", ServiceEnabled=True,
                     SessionTimeout=self.face.session_timeout, Status={"State": "Enabled", "Health": "OK"},
                     Sessions={"@odata.id": "/redfish/v1/SessionService/Sessions"})

    def account_service(self) -> Dict[str, Any]:
        return odata("AccountService", "/redfish/v1/AccountService", Id="AccountService", Name="Account Service", ServiceEnabled=True,
                     Accounts={"@odata.id": "/redfish/v1/AccountService/Accounts"}, Roles={"@odata.id": "/redfish/v1/AccountService/Roles"})

    def account(self, name: str) -> Optional[Dict[str, Any]]:
        entry = self.face.users.get(name)
        if entry is None or entry.get("privilege") not in ROLES:
            return None
        role = ROLES[entry["privilege"]]
        return odata("ManagerAccount", f"/redfish/v1/AccountService/Accounts/{name}", Id=name, Name=f"User {name}", UserName=name,
                     RoleId=role, Enabled=True, Locked=False, Password=None, AccountTypes=["Redfish", "IPMI"],
                     Links={"Role": {"@odata.id": f"/redfish/v1/AccountService/Roles/{role}"}})

    @staticmethod
    def role(name: str) -> Optional[Dict[str, Any]]:
        if name not in PRIVILEGES:
            return None
        return odata("Role", f"/redfish/v1/AccountService/Roles/{name}", Id=name, Name=name, RoleId=name, IsPredefined=True,
                     AssignedPrivileges=sorted(PRIVILEGES[name]))

    def task_service(self) -> Dict[str, Any]:
        return odata("TaskService", "/redfish/v1/TaskService", Id="TaskService", Name="Task Service", ServiceEnabled=True,
                     Status={"State": "Enabled", "Health": "OK"}, Tasks={"@odata.id": "/redfish/v1/TaskService/Tasks"})

    @staticmethod
    def task(task: Task) -> Dict[str, Any]:
        return odata("Task", f"/redfish/v1/TaskService/Tasks/{task.id}", Id=task.id, Name=f"ComputerSystem.Reset {task.reset_type}",
                     TaskState=task.state, TaskStatus="OK", StartTime=task.start, PercentComplete=100 if task.state == "Completed" else 50,
                     TaskMonitor=f"/redfish/v1/TaskService/TaskMonitors/{task.id}", Messages=[],
                     **({"EndTime": task.end} if task.end else {}))

    def metadata(self) -> str:
        refs = []
        for full in TYPES.values():
            namespace, _sep, _name = full[1:].rpartition(".")
            base = namespace.split(".")[0]
            includes = f'<edmx:Include Namespace="{base}"/>' + (f'<edmx:Include Namespace="{namespace}"/>' if namespace != base else "")
            refs.append(f'  <edmx:Reference Uri="http://redfish.dmtf.org/schemas/v1/{base}_v1.xml">{includes}</edmx:Reference>')
        return (
            '<?xml version="1.0" encoding="UTF-8"?>\n'
            '<edmx:Edmx xmlns:edmx="http://docs.oasis-open.org/odata/ns/edmx" Version="4.0">\n' + "\n".join(refs) + "\n"
            '  <edmx:DataServices><Schema xmlns="http://docs.oasis-open.org/odata/ns/edm" Namespace="Service">'
            '<EntityContainer Name="Service" Extends="ServiceRoot.v1_15_0.ServiceContainer"/></Schema></edmx:DataServices>\n'
            "</edmx:Edmx>\n"
        )

    @staticmethod
    def odata_document() -> Dict[str, Any]:
        names = ["Systems", "Chassis", "Managers", "SessionService", "AccountService", "TaskService"]
        return {"@odata.context": "/redfish/v1/$metadata", "value": [{"name": "Service", "kind": "Singleton", "url": "/redfish/v1/"}]
                + [{"name": n, "kind": "Singleton", "url": f"/redfish/v1/{n}"} for n in names]}


def etag(document: Dict[str, Any]) -> str:
    return 'W/"' + hashlib.sha256(json.dumps(document, sort_keys=True).encode()).hexdigest()[:16] + '"'


PUBLIC = {"/redfish", "/redfish/v1", "/redfish/v1/odata", "/redfish/v1/$metadata"}


class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "pmlab-redfish/1.0"
    sys_version = ""
    timeout = 60  # an idle keep-alive connection ends after this
    # buffered: a response's status line, headers and body leave in one write (one TLS record), as a BMC's
    # web server sends them; handle_one_request flushes after each request, finish() at the end
    wbufsize = 1 << 16
    server: "RedfishServer"

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - http.server's name
        self.server.face.log(f"{self.address_string()} {format % args}")

    # every method ends up in dispatch
    def do_GET(self) -> None:
        self.dispatch("GET")

    def do_HEAD(self) -> None:
        self.dispatch("HEAD")

    def do_POST(self) -> None:
        self.dispatch("POST")

    def do_PATCH(self) -> None:
        self.dispatch("PATCH")

    def do_PUT(self) -> None:
        self.dispatch("PUT")

    def do_DELETE(self) -> None:
        self.dispatch("DELETE")

    # ----- answering ----------------------------------------------------------------
    def answer(self, status: int, body: Any = None, headers: Optional[Dict[str, str]] = None, method: str = "GET") -> None:
        data = b""
        content_type = "application/json; charset=utf-8"
        if isinstance(body, str):
            data, content_type = body.encode(), "application/xml"
        elif body is not None:
            data = json.dumps(body).encode()  # no indent: the C encoder (pretty-printing was a fifth of the face's CPU)
        self.send_response(status)
        self.send_header("OData-Version", "4.0")
        self.send_header("Cache-Control", "no-cache")
        if status != 204 and status != 304:
            self.send_header("Content-Type", content_type)
        for key, value in (headers or {}).items():
            self.send_header(key, value)
        self.send_header("Content-Length", str(len(data) if status not in (204, 304) else 0))
        self.end_headers()
        if method != "HEAD" and status not in (204, 304):
            self.wfile.write(data)

    def read_body(self) -> Any:
        raw = self.body
        if not raw:
            return {}
        try:
            return json.loads(raw)
        except ValueError:
            raise HttpError(400, "MalformedJSON", "The request body submitted was malformed JSON and could not be parsed by the receiving service.") from None

    def hold_silent(self) -> None:
        """The BMC went silent: keep the connection, answer nothing, until the client gives up."""
        self.close_connection = True
        deadline = time.monotonic() + SILENT_HOLD
        self.connection.settimeout(0.5)
        while time.monotonic() < deadline and self.server.face.is_silent():
            try:
                if not self.connection.recv(4096):
                    return
            except (socket.timeout, ssl.SSLWantReadError):
                continue
            except OSError:
                return

    def dispatch(self, method: str) -> None:
        face = self.server.face
        try:
            length = int(self.headers.get("Content-Length") or 0)
        except ValueError:
            length = 0
        self.body = self.rfile.read(min(length, 1 << 20)) if length > 0 else b""  # read at once: keep-alive stays in step
        try:
            status = face.status()
        except ControlError as error:
            face.log(f"machine unreachable: {error}")
            self.answer(500, error_body(f"{BASE}.InternalError", "The request failed due to an internal service error."), method=method)
            return
        fault = face.fault(status)
        if fault.get("mode") == "silent":
            self.hold_silent()
            return
        if face.take_503(fault):
            self.answer(503, error_body(f"{BASE}.ServiceTemporarilyUnavailable", "The service is temporarily unavailable. Retry in 1 seconds.",
                                        [message(f"{BASE}.ServiceTemporarilyUnavailable", "The service is temporarily unavailable. Retry in 1 seconds.",
                                                 "Wait for the indicated retry duration and retry the operation.", "Critical", ["1"])]),
                        {"Retry-After": "1"}, method)
            return
        if fault.get("mode") == "slow":
            time.sleep(float(fault.get("delay", 2)))
        face.settings = status.get("redfish") or {}
        path = self.path.split("?", 1)[0].split("#", 1)[0]
        path = re.sub("/+", "/", path)
        if len(path) > 1 and path.endswith("/"):
            path = path[:-1]
        try:
            if self.headers.get("OData-Version", "4.0").strip() != "4.0":
                raise HttpError(412, "HeaderInvalid", f"The header OData-Version: {self.headers.get('OData-Version')} is not supported; use 4.0.")
            query = self.path.split("?", 1)[1].split("#", 1)[0] if "?" in self.path else ""
            dollar = [item.split("=", 1)[0] for item in query.split("&") if item.startswith("$")]
            if dollar:  # ProtocolFeaturesSupported says: no $expand, $select, $filter, ...
                raise HttpError(501, "QueryNotSupported", f"Querying with {dollar[0]} is not supported by the implementation.")
            caller = None
            if path == "/redfish/v1/SessionService/Sessions/Members" and method == "POST":
                path = "/redfish/v1/SessionService/Sessions"  # POST to a collection's Members creates a member too
            if path not in PUBLIC and not (method == "POST" and path == "/redfish/v1/SessionService/Sessions"):
                caller = face.authenticate(self.headers)
                if caller is None:
                    raise HttpError(401, "NoValidSession", "There is no valid session established with the implementation.",
                                    headers={"WWW-Authenticate": 'Basic realm="pmlab"'})
            self.route(method, path, status, caller)
        except HttpError as error:
            self.answer(error.status, error.body, error.headers, method)
        except Exception:
            face.log("error:\n" + traceback.format_exc())
            self.answer(500, error_body(f"{BASE}.InternalError", "The request failed due to an internal service error."), method=method)

    def get_only(self, method: str, document: Optional[Dict[str, Any]], allow: str = "GET, HEAD") -> None:
        if document is None:
            raise HttpError(404, "ResourceMissingAtURI", f"The resource at the URI {self.path} was not found.")
        if method not in ("GET", "HEAD"):
            raise HttpError(405, "OperationNotAllowed", f"The {method} operation is not allowed on {self.path}.", headers={"Allow": allow})
        tag = etag(document)
        if self.headers.get("If-None-Match") == tag:
            self.answer(304, None, {"ETag": tag}, method)
            return
        headers = {"ETag": tag, "Allow": allow}
        kind = str(document.get("@odata.type", "")).lstrip("#").rsplit(".", 1)[0]
        if kind:  # the schema of the resource (named, not served: no client here fetches it)
            headers["Link"] = f"<http://redfish.dmtf.org/schemas/v1/{kind}.json>; rel=describedby"
        self.answer(200, document, headers, method)

    def route(self, method: str, path: str, status: Dict[str, Any], caller: Optional[Caller]) -> None:
        face = self.server.face
        res = Resources(face, status)
        if path == "/redfish":
            return self.get_only(method, {"v1": "/redfish/v1/"})
        if path == "/redfish/v1":
            return self.get_only(method, res.service_root())
        if path == "/redfish/v1/odata":
            return self.get_only(method, res.odata_document())
        if path == "/redfish/v1/$metadata":
            if method not in ("GET", "HEAD"):
                raise HttpError(405, "OperationNotAllowed", "Only GET is allowed here.", headers={"Allow": "GET, HEAD"})
            return self.answer(200, res.metadata(), method=method)
        if path == "/redfish/v1/Systems":
            members = [res.system] + ([res.second] if res.second else [])
            return self.get_only(method, collection("ComputerSystemCollection", path, "Computer System Collection", members))
        if path == res.system:
            if method == "PATCH":
                return self.patch_system(res, caller)
            return self.get_only(method, res.computer_system(), "GET, HEAD" if res.settings else "GET, HEAD, PATCH")
        if res.settings and path == res.settings:
            if method == "PATCH":
                return self.patch_system(res, caller, settings=True)
            return self.get_only(method, res.settings_object(), "GET, HEAD, PATCH")
        if res.second and path == res.second:
            return self.get_only(method, res.second_system())
        if res.second and path == f"{res.second}/Actions/ComputerSystem.Reset":
            if method != "POST":
                raise HttpError(405, "OperationNotAllowed", "Only POST is allowed on an action.", headers={"Allow": "POST"})
            return self.reset_second(res, caller)
        if path == f"{res.system}/Actions/ComputerSystem.Reset":
            if method != "POST":
                raise HttpError(405, "OperationNotAllowed", "Only POST is allowed on an action.", headers={"Allow": "POST"})
            return self.reset(res, caller)
        if path == "/redfish/v1/Chassis":
            return self.get_only(method, collection("ChassisCollection", path, "Chassis Collection", [res.chassis]))
        if path == res.chassis:
            return self.get_only(method, res.chassis_resource())
        if path == f"{res.chassis}/Thermal":
            return self.get_only(method, res.thermal())
        if path == f"{res.chassis}/Power":
            return self.get_only(method, res.power())
        if path == f"{res.chassis}/Sensors":
            return self.get_only(method, res.sensor_collection())
        if path.startswith(f"{res.chassis}/Sensors/"):
            return self.get_only(method, res.sensor(path.rsplit("/", 1)[1]))
        if path == "/redfish/v1/Managers":
            return self.get_only(method, collection("ManagerCollection", path, "Manager Collection", [res.manager]))
        if path == res.manager:
            return self.get_only(method, res.manager_resource())
        if path == f"{res.manager}/LogServices":
            return self.get_only(method, collection("LogServiceCollection", path, "Log Services", [f"{path}/SEL"]))
        if path == f"{res.manager}/LogServices/SEL":
            return self.get_only(method, res.sel_service())
        if path == f"{res.manager}/LogServices/SEL/Entries":
            return self.get_only(method, res.sel_entries())
        if path.startswith(f"{res.manager}/LogServices/SEL/Entries/"):
            return self.get_only(method, res.sel_entry(path.rsplit("/", 1)[1]))
        if path == f"{res.manager}/LogServices/SEL/Actions/LogService.ClearLog":
            if method != "POST":
                raise HttpError(405, "OperationNotAllowed", "Only POST is allowed on an action.", headers={"Allow": "POST"})
            self.need(caller, "ConfigureManager")
            face.sel.clear()
            face.log("SEL cleared")
            return self.answer(204, None, None, "POST")
        if path == f"{res.manager}/EthernetInterfaces":
            return self.get_only(method, collection("EthernetInterfaceCollection", path, "Ethernet Interfaces", [f"{path}/1"]))
        if path == f"{res.manager}/EthernetInterfaces/1":
            return self.get_only(method, res.ethernet_interface())
        if path == "/redfish/v1/UpdateService":
            return self.get_only(method, res.update_service())
        if path == "/redfish/v1/UpdateService/FirmwareInventory":
            return self.get_only(method, collection("SoftwareInventoryCollection", path, "Firmware Inventory",
                                                    [f"{path}/{key}" for key in res.firmware_items()]))
        if path.startswith("/redfish/v1/UpdateService/FirmwareInventory/"):
            return self.get_only(method, res.firmware_item(path.rsplit("/", 1)[1]))
        if path == "/redfish/v1/SessionService":
            return self.get_only(method, res.session_service())
        if path == "/redfish/v1/SessionService/Sessions":
            if method == "POST":
                return self.login(res)
            with face.lock:
                visible = [s for s in face.sessions.values() if caller and (caller.may("ConfigureManager") or s.user == caller.user)]
            members = [f"{path}/{s.id}" for s in visible]
            return self.get_only(method, collection("SessionCollection", path, "Session Collection", members), "GET, HEAD, POST")
        if path.startswith("/redfish/v1/SessionService/Sessions/"):
            return self.session(method, path.rsplit("/", 1)[1], caller)
        if path == "/redfish/v1/AccountService":
            return self.get_only(method, res.account_service())
        if path == "/redfish/v1/AccountService/Accounts":
            names = [n for n, e in face.users.items() if e.get("privilege") in ROLES]
            return self.get_only(method, collection("ManagerAccountCollection", path, "Accounts", [f"{path}/{n}" for n in names]))
        if path.startswith("/redfish/v1/AccountService/Accounts/"):
            return self.get_only(method, res.account(path.rsplit("/", 1)[1]))
        if path == "/redfish/v1/AccountService/Roles":
            return self.get_only(method, collection("RoleCollection", path, "Roles", [f"{path}/{r}" for r in PRIVILEGES]))
        if path.startswith("/redfish/v1/AccountService/Roles/"):
            return self.get_only(method, res.role(path.rsplit("/", 1)[1]))
        if path == "/redfish/v1/TaskService":
            return self.get_only(method, res.task_service())
        if path == "/redfish/v1/TaskService/Tasks":
            with face.lock:
                ids = list(face.tasks)
            return self.get_only(method, collection("TaskCollection", path, "Tasks", [f"{path}/{i}" for i in ids]))
        if path.startswith("/redfish/v1/TaskService/Tasks/"):
            task = face.tasks.get(path.rsplit("/", 1)[1])
            return self.get_only(method, res.task(task) if task else None)
        if path.startswith("/redfish/v1/TaskService/TaskMonitors/"):
            task = face.tasks.get(path.rsplit("/", 1)[1])
            if task is None:
                raise HttpError(404, "ResourceMissingAtURI", f"The resource at the URI {path} was not found.")
            if task.state == "Running":
                return self.answer(202, res.task(task), {"Location": path, "Retry-After": "1"}, method)
            return self.answer(204, None, None, method)
        raise HttpError(404, "ResourceMissingAtURI", f"The resource at the URI {path} was not found.")

    # ----- writes ------------------------------------------------------------------------
    def need(self, caller: Optional[Caller], privilege: str) -> None:
        if caller is None or not caller.may(privilege):
            raise HttpError(403, "InsufficientPrivilege", "There are insufficient privileges for the account or credentials "
                            "associated with the current session to perform the requested operation.")

    def login(self, res: Resources) -> None:
        body = self.read_body()
        if not isinstance(body, dict):
            raise HttpError(400, "MalformedJSON", "The request body must be a JSON object.")
        session, document = self.server.face.login(body, res.profile)
        location = f"/redfish/v1/SessionService/Sessions/{session.id}"
        self.answer(201, document, {"X-Auth-Token": session.token, "Location": location}, "POST")

    def session(self, method: str, session_id: str, caller: Optional[Caller]) -> None:
        face = self.server.face
        with face.lock:
            session = face.sessions.get(session_id)
        if session is None or caller is None or not (caller.may("ConfigureManager") or session.user == caller.user):
            raise HttpError(404, "ResourceMissingAtURI", f"The resource at the URI {self.path} was not found.")
        if method == "DELETE":
            with face.lock:
                face.sessions.pop(session_id, None)
            face.log(f"session {session_id} of {session.user!r} deleted by {caller.user!r}")
            return self.answer(204, None, None, method)
        return self.get_only(method, face.session_resource(session), "GET, HEAD, DELETE")

    def patch_system(self, res: Resources, caller: Optional[Caller], settings: bool = False) -> None:
        face = self.server.face
        body = self.read_body()
        self.need(caller, "ConfigureComponents")
        if res.settings and not settings:
            raise HttpError(405, "OperationNotAllowed", f"The PATCH operation is not allowed on {res.system}; PATCH its settings object "
                            f"{res.settings} (@Redfish.Settings).", headers={"Allow": "GET, HEAD"})
        current = res.settings_object() if settings else res.computer_system()
        match = (self.headers.get("If-Match") or "").strip()
        if match and match != "*" and etag(current) not in [m.strip() for m in match.split(",")]:
            raise HttpError(412, "PreconditionFailed", "The ETag supplied did not match the ETag required to change this resource.")
        if not isinstance(body, dict) or not body:
            raise HttpError(400, "MalformedJSON", "The request body must be a JSON object with Boot.")
        unknown = [key for key in body if key != "Boot"]
        if unknown:
            raise HttpError(400, "PropertyNotWritable", f"The property {unknown[0]} is a read only property and cannot be assigned a value.")
        boot = body["Boot"]
        if not isinstance(boot, dict):
            raise HttpError(400, "PropertyValueTypeError", "The value for the property Boot is of a different type than the property can accept.")
        old = current["Boot"]
        allowed = {"BootSourceOverrideTarget": list(TARGETS), "BootSourceOverrideEnabled": ["Disabled", "Once", "Continuous"],
                   "BootSourceOverrideMode": ["Legacy", "UEFI"]}
        for key, value in boot.items():
            if key not in allowed:
                raise HttpError(400, "PropertyUnknown", f"The property Boot/{key} is not in the list of valid properties for the resource.")
            if value not in allowed[key]:
                raise HttpError(400, "PropertyValueNotInList", f"The value {value} for the property Boot/{key} is not in the list of acceptable values.")
        target = boot.get("BootSourceOverrideTarget", old["BootSourceOverrideTarget"])
        if "BootSourceOverrideEnabled" in boot:
            enabled = boot["BootSourceOverrideEnabled"]
        else:
            enabled = old["BootSourceOverrideEnabled"] if old["BootSourceOverrideEnabled"] != "Disabled" else "Once"
        mode = boot.get("BootSourceOverrideMode", old["BootSourceOverrideMode"])
        if enabled == "Disabled" or target == "None":
            device, persistent = "default", False
        else:
            device, persistent = TARGETS[target], enabled == "Continuous"
        if not res.profile["boot_honoured"]:
            face.log(f"boot override {target}/{enabled}/{mode} accepted and ignored (profile boot_ignored)")
            return self.answer(204, None, None, "PATCH")
        face.control.call("bootdev", device=device, persistent=persistent, uefi=mode == "UEFI")
        face.log(f"boot override {target}/{enabled}/{mode} -> {device} persistent={persistent}" + (" (settings object)" if settings else ""))
        now = Resources(face, face.status())
        updated = now.settings_object() if settings else now.computer_system()
        self.answer(200, updated, {"ETag": etag(updated)}, "PATCH")

    def reset_second(self, res: Resources, caller: Optional[Caller]) -> None:
        """Profile multi: ComputerSystem.Reset of system 2 changes its flag in memory, never the machine."""
        face = self.server.face
        body = self.read_body()
        self.need(caller, "ConfigureComponents")
        reset_type = body.get("ResetType") if isinstance(body, dict) else None
        if reset_type not in res.profile["reset_types"]:
            raise HttpError(400, "ActionParameterNotSupported", "The parameter ResetType for the action ComputerSystem.Reset is not "
                            f"supported on the target resource (value {reset_type}; allowed: {', '.join(res.profile['reset_types'])}).")
        with face.lock:
            before = face.second["power"]
            if reset_type in ("GracefulRestart", "ForceRestart", "PowerCycle") and before == "Off":
                raise HttpError(409, "ResourceInUse", "The system is powered off; a restart needs it on.")
            after = SECOND_POWER.get(reset_type, before)
            if reset_type == "PushPowerButton":
                after = "Off" if before == "On" else "On"
            face.second["power"] = after
            face.second["resets"] += 1
        face.log(f"system {res.profile['second_system']} reset {reset_type} -> power {after} (in memory)")
        self.answer(204, None, None, "POST")

    def reset(self, res: Resources, caller: Optional[Caller]) -> None:
        face = self.server.face
        body = self.read_body()
        self.need(caller, "ConfigureComponents")
        if not isinstance(body, dict) or "ResetType" not in body:
            raise HttpError(400, "ActionParameterMissing",
                            "The action ComputerSystem.Reset requires the parameter ResetType to be present in the request body.")
        reset_type = body["ResetType"]
        allowed = res.profile["reset_types"]
        if reset_type not in allowed:
            raise HttpError(400, "ActionParameterNotSupported",
                            "The parameter ResetType for the action ComputerSystem.Reset is not supported on the target resource "
                            f"(value {reset_type}; allowed: {', '.join(allowed)}).")
        power = res.status["power"]
        if res.profile["conflict_on_same_state"]:
            if reset_type in ("On", "ForceOn") and power == "on":
                raise HttpError(409, "IDRAC.2.8.RAC0516" if res.profile["vendor_busy"] else "ResourceInUse", "Server is already powered ON.")
            if reset_type in ("ForceOff", "GracefulShutdown") and power == "off":
                raise HttpError(409, "IDRAC.2.8.RAC0517" if res.profile["vendor_busy"] else "ResourceInUse", "Server is already powered OFF.")
        if reset_type == "Nmi":
            face.log("reset Nmi (diagnostic interrupt) accepted")
            return self.answer(204, None, None, "POST")
        action = ACTIONS.get(reset_type) or ("on" if power == "off" else "soft")  # PushPowerButton
        target = "Off" if action in ("off", "soft") else "On"
        fault = face.fault(res.status)
        face.log(f"reset {reset_type} -> machine power {action} (fault {fault.get('mode')})")
        if fault.get("mode") == "task":
            delay = float(fault.get("delay", 1))
            with face.lock:
                face.task_counter += 1
                task = Task(str(face.task_counter), reset_type, now_iso(), time.monotonic() + delay)
                face.tasks[task.id] = task
            face.schedule_power(action, delay, target, task)
            monitor = f"/redfish/v1/TaskService/TaskMonitors/{task.id}"
            return self.answer(202, res.task(task), {"Location": monitor, "Retry-After": "1"}, "POST")
        if fault.get("mode") == "slow" and float(fault.get("power_delay", 0)) > 0:
            face.schedule_power(action, float(fault["power_delay"]), target)
            return self.answer(204, None, None, "POST")
        face.control.call("power", action=action)
        self.answer(204, None, None, "POST")


class RedfishServer(socketserver.ThreadingMixIn, http.server.HTTPServer):
    """One thread per connection; the TLS handshake happens in that thread, never in the accept loop."""

    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 64

    def __init__(self, face: RedfishFace, address: Tuple[str, int], context: ssl.SSLContext) -> None:
        self.face = face
        self.context = context
        super().__init__(address, Handler)

    def server_bind(self) -> None:
        socketserver.TCPServer.server_bind(self)  # no getfqdn(): no name lookups in a lab namespace
        self.server_name, self.server_port = self.server_address[:2]

    def finish_request(self, request: Any, client_address: Any) -> None:
        if self.face.is_silent():
            self._hold_raw(request)
            return
        request.settimeout(10)
        # some answers still leave in two writes (TLS 1.3's session tickets, a body larger than the
        # handler's buffer): without NODELAY, Nagle holds the second until the client's delayed ACK (40 ms)
        request.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        try:
            tls = self.context.wrap_socket(request, server_side=True)
        except (ssl.SSLError, OSError) as error:
            self.face.log(f"{client_address[0]} TLS handshake failed: {error}")
            return
        try:
            self.RequestHandlerClass(tls, client_address, self)
        finally:
            try:
                tls.close()
            except OSError:
                pass

    def _hold_raw(self, request: socket.socket) -> None:
        deadline = time.monotonic() + SILENT_HOLD
        request.settimeout(0.5)
        while time.monotonic() < deadline and self.face.is_silent():
            try:
                if not request.recv(4096):
                    return
            except socket.timeout:
                continue
            except OSError:
                return

    def handle_error(self, request: Any, client_address: Any) -> None:
        self.face.log(f"{client_address} connection error:\n{traceback.format_exc()}")


def tls_context(cert_file: str, key_file: str) -> ssl.SSLContext:
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    context.load_cert_chain(cert_file, key_file)
    return context


def main(argv: Optional[List[str]] = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--config", required=True)
    args = parser.parse_args(argv)
    config = json.loads(Path(args.config).read_text())
    config.setdefault("uuid", str(uuidlib.uuid4()))
    face = RedfishFace(config)
    server = RedfishServer(face, (config["redfish_address"], int(config["redfish_port"])), tls_context(config["cert_file"], config["key_file"]))
    stopping = threading.Event()

    def stop(*_args: Any) -> None:
        stopping.set()
        threading.Thread(target=server.shutdown, daemon=True).start()

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    face.log(f"listening on https://{config['redfish_address']}:{config['redfish_port']}")
    if config.get("redfish_ready_file"):
        ready = Path(config["redfish_ready_file"])
        ready.with_suffix(".tmp").write_text(str(os.getpid()))
        os.replace(ready.with_suffix(".tmp"), ready)
    server.serve_forever(poll_interval=0.5)
    server.server_close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
