"""The machine control protocol: how BMCs, lab commands and tests talk to a machine.

Each simulated machine runs one supervisor process that owns the machine's
"hardware" state (power, boot device, OS state, serial console, WoL NIC).
Everything else talks to it over a Unix stream socket, one JSON object per
line in each direction:

    request:  {"op": "<name>", ...arguments}
    response: {"ok": true, ...values} or {"ok": false, "error": "<sentence>"}

Operations (all answer within 100 ms; none blocks on a boot or shutdown):

    status                 -> {"power": "on"|"off", "os": "down"|"booting"|"up"|"stopping",
                               "boot_device": str, "boot_persistent": bool, "boot_uefi": bool,
                               "wol_packets": int, "power_changes": int, "name": str}
    power  action=on|off|soft|soft_reboot|reset|cycle
                           hardware action as a BMC does it.  "soft" is the ACPI
                           power button: the OS shuts down after shutdown_delay,
                           unless the machine is configured with acpi="ignore";
                           "soft_reboot" the same, then the machine starts again
                           (Redfish GracefulRestart).
    bootdev device=<pyghmi boot device name> persistent=bool uefi=bool
    os_shutdown method=poweroff|halt|reboot
                           what the OS's own poweroff/halt/reboot commands do
                           (the lab binds its command over them in the machine's
                           mount namespace).
    configure boot_delay=s shutdown_delay=s acpi=honour|ignore os_shutdown=honour|ignore
              wol_password=hex|null
                           change behaviour at run time (tests, fault injection);
                           os_shutdown=ignore makes the OS's poweroff/halt/reboot
                           commands do nothing (a hung shutdown, for BMC fallback tests).
    redfish_configure profile=generic|dell|boot_ignored|settings|multi
              fault={"mode": "none"|"503"|"silent"|"slow"|"task", ...} session_limit=int
                           switch the Redfish face's vendor profile, fault and session
                           limit at run time (see redfish_bmc.py); status then carries
                           them as "redfish" (with a "generation" that counts changes).
    wall message=str       what the OS's wall command does: the message goes to the
                           machine's console (never the host's terminals)
    os_log                 -> {"entries": [{"command": "wall"|"poweroff"|"halt"|"reboot",
                               "message": str (wall only), "t": float}]}
                           what was asked of the OS through its own commands
    wol_log                -> {"packets": [{"form": "udp"|"ether", "mac": str,
                               "password": hex|null, "accepted": bool, "t": float}]}
    shutdown_supervisor    stop the machine process (lab down).
"""

from __future__ import annotations

import json
import socket
import threading
import time
from typing import Any, Dict, List, Optional, Tuple

SERVE_IDLE = 60.0  # seconds the supervisor keeps an idle control connection open


class ControlError(RuntimeError):
    """The machine refused a request or could not be reached."""


class ControlClient:
    """A client of one machine's control socket.

    Short-lived by default: one connection per call. With ``keep_alive`` (the BMC
    faces, which ask for the machine's state on every request) connections are
    kept and reused, one per concurrent caller: a connection and a supervisor
    thread per call cost the lab more CPU than the answers themselves. A kept
    connection idle for longer than ``KEEP_IDLE`` is not reused (the supervisor
    drops it after ``SERVE_IDLE``); one that broke meanwhile is replaced once.
    """

    KEEP_IDLE = 20.0

    def __init__(self, socket_path: str, timeout: float = 5.0, keep_alive: bool = False) -> None:
        self.socket_path = str(socket_path)
        self.timeout = timeout
        self.keep_alive = keep_alive
        self._idle: List[Tuple[float, socket.socket]] = []  # (last used, connection), kept connections not in use
        self._lock = threading.Lock()

    def _kept(self) -> Optional[socket.socket]:
        with self._lock:
            while self._idle:
                used, conn = self._idle.pop()
                if time.monotonic() - used < self.KEEP_IDLE:
                    return conn
                conn.close()
        return None

    def _connect(self) -> socket.socket:
        conn = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        conn.settimeout(self.timeout)
        try:
            conn.connect(self.socket_path)
        except OSError:
            conn.close()
            raise
        return conn

    @staticmethod
    def _exchange(conn: socket.socket, line: bytes) -> bytes:
        conn.sendall(line)
        data = b""
        while not data.endswith(b"\n"):
            chunk = conn.recv(65536)
            if not chunk:
                break
            data += chunk
        return data

    def call(self, op: str, **arguments: Any) -> Dict[str, Any]:
        line = json.dumps(dict(arguments, op=op)).encode() + b"\n"
        data = b""
        conn = self._kept() if self.keep_alive else None
        if conn is not None:
            try:
                data = self._exchange(conn, line)
            except (BrokenPipeError, ConnectionResetError):
                data = b""
            except OSError as error:  # a timeout: the request may have been taken, never send it twice
                conn.close()
                raise ControlError(f"machine control socket {self.socket_path}: {error}") from error
            if not data:  # the supervisor dropped the kept connection before reading: once more on a new one
                conn.close()
                conn = None
        if conn is None:
            try:
                conn = self._connect()
                data = self._exchange(conn, line)
            except OSError as error:
                if conn is not None:
                    conn.close()
                raise ControlError(f"machine control socket {self.socket_path}: {error}") from error
        if self.keep_alive and data.endswith(b"\n"):
            with self._lock:
                self._idle.append((time.monotonic(), conn))
        else:
            conn.close()
        if not data:
            raise ControlError(f"machine control socket {self.socket_path} closed without an answer")
        response = json.loads(data)
        if not response.get("ok"):
            raise ControlError(response.get("error", "request refused"))
        return response

    def status(self) -> Dict[str, Any]:
        return self.call("status")
