"""A lab BMC speaking real IPMI 2.0 / RMCP+, built on pyghmi's server class.

Run as ``python -m pmlab_lib.bmc_server --config bmc.json`` (see lab.py for the
config). It drives its machine through the machine's control socket, so the
power state seen through the BMC, SSH and Wake-on-LAN is one state.

pyghmi's server defects handled here (see shared/reference/lab-facts.md):
it accepts every cipher-suite proposal but only does suite 3 with HMAC-SHA1
(we add suite 17, HMAC-SHA256, and answer other proposals with RMCP+ status
0x11 so clients fall back), ``listen(None)``
busy-loops (we pump with a finite timeout), a SOL client that disconnects
raises AttributeError out of the loop (guarded), ``send_device_id`` packs the
ids wrongly (fixed), and it ignores unknown users and privilege limits
(answered with the RAKP status codes a real BMC sends).
"""

from __future__ import annotations

import argparse
import hashlib
import hmac
import json
import os
import select
import signal
import socket
import struct
import sys
import threading
import time
import traceback
import uuid
from pathlib import Path
from typing import Any, Dict, Optional

import pyghmi.ipmi.bmc as pyghmi_bmc
import pyghmi.ipmi.private.session as ipmisession
from pyghmi.ipmi.private import serversession

from pmlab_lib import bmc_records, prompt_wait, sdr
from pmlab_lib.control import ControlClient

PRIVILEGES = {"callback": 1, "user": 2, "operator": 3, "administrator": 4}
# Boot device selector (boot flags byte 2, bits 5:2) <-> the machine's names.
BOOT_SELECTORS = {0x00: "default", 0x04: "network", 0x08: "hd", 0x0C: "safe", 0x14: "cdrom", 0x18: "bios", 0x3C: "floppy"}
BOOT_SELECTOR_OF = {name: code for code, name in BOOT_SELECTORS.items()}
# the server loop's tick: 50 ms while a SOL session needs its output pumped, else 1 s (its wait ends at once
# when a packet comes): a hundred idle lab BMCs ticking every 50 ms took a third of a CPU core
SOL_TICK = 0.05
IDLE_TICK = 1.0
OPERATOR_COMMANDS = {(0x00, 0x02), (0x00, 0x08)}  # chassis control, set boot options
# The cipher suites negotiated here, by the (authentication, integrity, confidentiality) algorithm numbers
# an open-session request proposes (IPMI 2.0 tables 13-17 to 13-19): the suite number, the hash of RAKP,
# SIK, K1 and K2, and the length of the integrity check values (RAKP4 and every session packet).
# Suite 3: RAKP-HMAC-SHA1, HMAC-SHA1-96, AES-CBC-128; suite 17: RAKP-HMAC-SHA256, HMAC-SHA256-128, AES-CBC-128.
CIPHER_SUITES = {(1, 1, 1): (3, hashlib.sha1, 12), (3, 4, 1): (17, hashlib.sha256, 16)}
# Their Get Channel Cipher Suites records (table 22-19): 0xC0, suite, authentication, 0x40|integrity, 0x80|confidentiality
CIPHER_SUITE_RECORDS = b"\xc0\x03\x01\x41\x81" + b"\xc0\x11\x03\x44\x81"


class Faults:
    """Fault injection, read from the faults file when it changes."""

    def __init__(self, path: str) -> None:
        self.path = Path(path)
        self.mtime = 0.0
        self.data: Dict[str, Any] = {"mode": "none"}
        self.used = 0

    def current(self) -> Dict[str, Any]:
        try:
            mtime = self.path.stat().st_mtime
        except OSError:
            return self.data
        if mtime != self.mtime:
            self.mtime = mtime
            try:
                self.data = json.loads(self.path.read_text() or "{}")
            except ValueError:
                self.data = {"mode": "none"}
            self.used = 0
        return self.data

    @property
    def mode(self) -> str:
        return str(self.current().get("mode", "none"))

    def take(self, mode: str) -> bool:
        """True if fault ``mode`` applies to this event (honours an optional count)."""
        data = self.current()
        if data.get("mode") != mode:
            return False
        count = data.get("count")
        if count is not None and self.used >= int(count):
            return False
        self.used += 1
        return True


FAULTS: Optional[Faults] = None
_real_sendto = ipmisession._io_sendto


def _sendto(handle: Any, packet: Any, sockaddr: Any) -> Any:
    if FAULTS is not None and FAULTS.mode == "silent":
        # {"mode": "silent", "after": N}: answer N more packets, then stop (mid-session)
        after = FAULTS.current().get("after")
        if after is None or FAULTS.used >= int(after):
            return None
        FAULTS.used += 1
    return _real_sendto(handle, packet, sockaddr)


ipmisession._io_sendto = _sendto


def _rmcp_plus_reply(payload_type: int, payload: bytes) -> bytes:
    header = b"\x06\x00\xff\x07" + bytes([0x06, payload_type]) + b"\x00" * 8
    return header + struct.pack("<H", len(payload)) + payload


def _stall_step(bmc: Any) -> Optional[str]:
    faults = bmc.faults.current()
    return str(faults.get("step")) if faults.get("mode") == "stall_login" else None


class LabServerSession(serversession.ServerSession):
    """Adds users' privilege limits and RAKP error statuses to pyghmi's session."""

    def __init__(self, authdata, kg, clientaddr, netsocket, request, uuid, bmc):
        self.clientpriv = PRIVILEGES["user"]
        self.maxpriv = PRIVILEGES["user"]
        super().__init__(authdata, kg, clientaddr, netsocket, request, uuid, bmc)

    def send_payload(self, payload=(), payload_type=None, retry=True, needskeepalive=False, **kwargs):
        # A BMC never retransmits on its own: with retry=True pyghmi keeps the
        # packet as "in flight" and queues every later one (SOL output included)
        # until the client happens to send something.
        del retry
        return super().send_payload(payload, payload_type=payload_type, retry=False, needskeepalive=needskeepalive, **kwargs)

    def _rakp2_error(self, data: Any, status: int) -> None:
        payload = bytearray([data[0], status, 0, 0]) + self.clientsessionid
        self.send_payload(payload, 0x13, retry=False)  # RAKP message 2

    def _got_rakp1(self, data):
        rolem = data[24]
        requested = rolem & 0x0F
        namelen = data[27]
        username = bytes(data[28:28 + namelen]).decode("utf-8", errors="replace")
        user = self.bmc.users.get(username)
        if user is None:
            self.bmc.log(f"RAKP1 unknown user {username!r}")
            return self._rakp2_error(data, 0x0D)  # unauthorized name
        limit = PRIVILEGES[user["privilege"]]
        if requested > limit:
            self.bmc.log(f"RAKP1 user {username!r} asked privilege {requested} above {limit}")
            return self._rakp2_error(data, 0x0A)  # unauthorized role or privilege level
        self._send_rakp2(data, user["password"])
        self.maxpriv = requested or limit

    # ----- RAKP with the negotiated suite's hash (pyghmi's server hard-codes SHA-1) -----
    def create_open_session_response(self, request):
        algorithms = (request[12] & 0x3F, request[20] & 0x3F, request[28] & 0x3F) if len(request) >= 32 else None
        suite = CIPHER_SUITES.get(algorithms)
        if suite is None:  # a proposal re-sent from a client's address reaches its session, not sessionless_data
            self.bmc.log(f"open session refused with status 0x11 (algorithms {algorithms})")
            return bytearray([request[0], 0x11, 0, 0]) + bytes(request[4:8])
        self.suite, self.currhashlib, self.currhashlen = suite
        self.integrityalgo, self.confalgo, self.sessionid, self.k1 = 0, 0, 0, None  # a re-opened session starts afresh
        response = super().create_open_session_response(request)
        response[16], response[24], response[32] = algorithms  # table 13-10: the algorithms accepted
        return response

    def _send_rakp2(self, data, password: str) -> None:
        """RAKP message 2 (IPMI 2.0 section 13.21): the BMC's random number, GUID and key exchange code."""
        self.Rm = bytes(data[8:24])
        self.rolem = data[24]
        self.username = bytes(data[28:28 + data[27]])
        self.uuiddata = self.uuid.bytes
        self.Rc = os.urandom(16)
        self.kuid = password.encode("utf-8")
        if self.kg is None:
            self.kg = self.kuid
        hmacdata = (bytes(self.clientsessionid) + bytes(self.managedsessionid) + self.Rm + self.Rc + self.uuiddata
                    + bytes([self.rolem, len(self.username)]) + self.username)
        authcode = hmac.new(self.kuid, hmacdata, self.currhashlib).digest()
        payload = bytearray([data[0], 0, 0, 0]) + bytes(self.clientsessionid) + self.Rc + self.uuiddata + authcode
        self.send_payload(payload, 0x13, retry=False)

    def _got_rakp3(self, data):
        """RAKP message 3: check the console's key exchange code, derive SIK, K1 and K2, answer RAKP4."""
        if getattr(self, "Rc", None) is None:
            return
        role_name = bytes([self.rolem, len(self.username)]) + self.username
        expected = hmac.new(self.kuid, self.Rc + bytes(self.clientsessionid) + role_name, self.currhashlib).digest()
        if data[1] != 0 or not hmac.compare_digest(bytes(data[8:8 + len(expected)]), expected):
            return  # as pyghmi's server: a refused or wrong RAKP3 is dropped
        self.sik = hmac.new(self.kg, self.Rm + self.Rc + role_name, self.currhashlib).digest()
        self.k1 = hmac.new(self.sik, b"\x01" * 20, self.currhashlib).digest()
        self.k2 = hmac.new(self.sik, b"\x02" * 20, self.currhashlib).digest()
        self.aeskey = self.k2[:16]
        self.localsid = struct.unpack("<I", bytes(self.managedsessionid))[0]
        self.ipmicallback = self.handle_client_request
        self._send_rakp4(data[0], 0)

    def _send_rakp4(self, tagvalue, statuscode):
        """RAKP message 4: the integrity check value (HMAC-SHA1-96 or HMAC-SHA256-128), then the session is on."""
        hmacdata = self.Rm + bytes(self.managedsessionid) + self.uuiddata
        icv = hmac.new(self.sik, hmacdata, self.currhashlib).digest()[: self.currhashlen]
        payload = bytearray([tagvalue, statuscode, 0, 0]) + bytes(self.clientsessionid) + icv
        self.send_payload(payload, 0x15, retry=False)
        # pyghmi's packet code tests these for truth and signs/checks with k1, currhashlib and currhashlen
        self.confalgo = "aes"
        self.integrityalgo = "sha256" if self.suite == 17 else "sha1"
        self.sequencenumber = 1
        self.sessionid = struct.unpack("<I", bytes(self.clientsessionid))[0]

    def _handle_ipmi2_packet(self, data):
        # fault {"mode": "stall_login", "step": "rakp1" | "rakp3" | "privilege"}: the BMC takes the
        # login message and never answers it (RAKP1: no RAKP2; RAKP3: no RAKP4), as a hung BMC would
        stall = _stall_step(self.bmc)
        if stall and len(data) > 5 and (data[5] & 0x3F) == {"rakp1": 0x12, "rakp3": 0x14}.get(stall):
            self.bmc.log(f"login stalled after {stall} (fault stall_login)")
            return None
        return super()._handle_ipmi2_packet(data)

    def handle_client_request(self, request):
        if request["netfn"] == 6 and request["command"] == 0x3B and _stall_step(self.bmc) == "privilege":
            self.bmc.log("login stalled at the privilege-level request (fault stall_login)")
            return None
        if request["netfn"] == 6 and request["command"] == 0x3B:
            wanted = request["data"][0] & 0x0F
            if wanted == 0:
                code, level = 0, self.clientpriv
            elif wanted > self.maxpriv:
                code, level = 0x81, self.clientpriv
            else:
                code, level = 0, wanted
                self.clientpriv = wanted
            self.bmc.log(f"session privilege {level} (code {code:#x})")  # a login's last step: tests act on it
            return self._send_ipmi_net_payload(code=code, data=[level])
        if request["netfn"] == 6 and request["command"] == 0x3C:
            self.send_ipmi_response()
            if self.bmc.sol is not None and self.bmc.sol_session is self:
                self.bmc.release_sol()
            return None
        return self.bmc.handle_raw_request(request, self)


class LabSol:
    """The BMC side of a Serial-over-LAN payload (IPMI 2.0 section 15).

    pyghmi's ServerConsole blocks the server loop while it waits for acks and
    lets output lag one exchange behind; this keeps one packet in flight,
    acknowledges every client packet at once and retransmits after 0.5 s.
    """

    CHUNK = 200

    def __init__(self, session: Any, on_input: Any) -> None:
        self.session = session
        self.on_input = on_input
        self.myseq = 0
        self.remseq = 0
        self.pending = bytearray()
        self.inflight: Optional[tuple] = None
        self.sent_at = 0.0
        self.retries = 0
        session.sol_handler = self.got

    def _send(self, payload: bytes) -> None:
        self.session.send_payload(bytearray(payload), payload_type=1, retry=False)

    def got(self, payload: Any) -> None:
        if isinstance(payload, dict):
            return
        newseq, ackseq, ackcount, status = payload[0] & 0x0F, payload[1] & 0x0F, payload[2], payload[3]
        if newseq:
            data = bytes(payload[4:])
            if newseq != self.remseq:  # a retransmission is acknowledged again but not re-typed
                self.remseq = newseq
                if data:
                    self.on_input(data)
            self._send(bytes((0, newseq, len(data), 0)))
        if ackseq and self.inflight and ackseq == self.inflight[0]:
            chunk = self.inflight[1]
            self.inflight = None
            if status & 0x40 and ackcount < len(chunk):  # NACK: resend what was not accepted
                self.pending[:0] = chunk[ackcount:]
            self.flush()

    def send_data(self, data: bytes) -> None:
        self.pending += data
        self.flush()

    def flush(self) -> None:
        if self.inflight or not self.pending:
            return
        chunk = bytes(self.pending[: self.CHUNK])
        del self.pending[: self.CHUNK]
        self.myseq = self.myseq % 15 + 1
        self.inflight = (self.myseq, chunk)
        self.sent_at = time.monotonic()
        self.retries = 0
        self._send(bytes((self.myseq, 0, 0, 0)) + chunk)

    def tick(self) -> None:
        # Some clients (pyghmi among them) queue their ack behind other traffic
        # and drop a retransmission with the same sequence number as a
        # duplicate; after a short grace the packet counts as delivered.
        if self.inflight and time.monotonic() - self.sent_at > 0.3:
            self.inflight = None
            self.flush()

    def close(self) -> None:
        self.pending.clear()
        self.inflight = None


class LabBmc(pyghmi_bmc.Bmc):
    def __init__(self, config: Dict[str, Any]) -> None:
        self.config = config
        self.users = config["users"]
        authdata = {name: user["password"] for name, user in self.users.items()}
        super().__init__(authdata, port=int(config["port"]), bmcuuid=uuid.UUID(config["uuid"]), address=config["address"])
        self.control = ControlClient(config["control_socket"], timeout=2, keep_alive=True)
        self.faults = Faults(config["faults_file"])
        self.sensors = sdr.SensorRepository(config["sensors_file"])
        self.fru = bmc_records.FruIdentity(config.get("name") or f"bmc-{config['port']}")  # the farm's BMCs have no machine name
        self.sel = bmc_records.SelCommands(bmc_records.SelStore(bmc_records.sel_folder(config), Path(config["sensors_file"])))
        self._lan: Optional[bmc_records.LanSettings] = None
        self.serial: Optional[socket.socket] = None
        self.sol_session: Any = None
        self.sol_running = threading.Event()  # wakes the poker thread (_wake_event_loop)
        self.iohandler = self._from_sol_client
        self.log_path = Path(config["log_file"])

    def log(self, text: str) -> None:
        with open(self.log_path, "a", encoding="utf-8") as log:
            log.write(f"{time.strftime('%H:%M:%S')} {text}\n")

    # ----- session set-up -------------------------------------------------
    def sessionless_data(self, data, sockaddr):
        faults = self.faults.current()
        if faults.get("mode") == "silent" and faults.get("after") is None:
            return
        raw = bytearray(data)
        if len(raw) >= 22 and raw[0] == 6 and raw[4] == 6 and raw[5] == 0x10:
            payload = raw[16:]
            tag, console_sid = payload[0], bytes(payload[4:8])
            algorithms = (payload[12] & 0x3F, payload[20] & 0x3F, payload[28] & 0x3F) if len(payload) >= 32 else None
            status = 0
            if self.faults.take("insufficient_resources"):
                status = 0x01
            elif algorithms not in CIPHER_SUITES:
                status = 0x11  # no matching cipher suite: only suites 3 and 17 here
            if status:
                self.log(f"open session refused with status {status:#x} (algorithms {algorithms})")
                reply = bytes([tag, status, 0, 0]) + console_sid
                ipmisession._io_sendto(self.serversocket, _rmcp_plus_reply(0x11, reply), sockaddr)
                return
            LabServerSession(self.authdata, self.kg, sockaddr, self.serversocket, raw[16:], self.uuid, bmc=self)
            return
        return super().sessionless_data(data, sockaddr)

    def send_cipher_suites(self, myaddr, mylun, clientaddr, clientlun, clientseq, data, sockaddr):
        """Get Channel Cipher Suites (IPMI 2.0 section 22.15, table 22-19): suites 3 and 17 (pyghmi's lists 3)."""
        index = data[22] & 0x3F if len(data) > 22 else 0
        records = CIPHER_SUITE_RECORDS if index == 0 else b""
        head = bytes([clientaddr, clientlun | (7 << 2)])
        body = bytes([myaddr, mylun | clientseq << 2, 0x54, 0x00, 0x01]) + records
        message = head + bytes([ipmisession._checksum(*head)]) + body + bytes([ipmisession._checksum(*body)])
        header = b"\x06\x00\xff\x07\x06\x00" + b"\x00" * 8 + struct.pack("<H", len(message))
        ipmisession._io_sendto(self.serversocket, header + message, sockaddr)

    def send_device_id(self, session):
        # manufacturer id 3 bytes, product id 2 bytes (IPMI 2.0 table 20-2)
        # firmware revision 1.23 (bmc_records: the Redfish face's FirmwareVersion too)
        data = [0x20, 0x01, bmc_records.FIRMWARE_MAJOR, bmc_records.FIRMWARE_MINOR, 0x02, 0x23]
        data += list(struct.pack("<I", 0x00C75E)[:3]) + list(struct.pack("<H", 0x0001))
        session.send_ipmi_response(data=data)

    # ----- the machine --------------------------------------------------------
    def get_power_state(self):
        return self.control.status()["power"]

    def _power(self, action: str) -> int:
        data = self.faults.current()
        if data.get("mode") == "slow_power":
            delay = float(data.get("power_delay", 3))
            threading.Timer(delay, lambda: self.control.call("power", action=action)).start()
        else:
            self.control.call("power", action=action)
        self.log(f"chassis {action}")
        return 0

    def power_on(self):
        return self._power("on")

    def power_off(self):
        return self._power("off")

    def power_cycle(self):
        if self.get_power_state() == "off":
            return 0xD5  # not supported in present state (ipmitool: "Command not supported in present state")
        return self._power("cycle")

    def power_reset(self):
        if self.get_power_state() == "off":
            return 0xD5
        return self._power("reset")

    def power_shutdown(self):
        return self._power("soft")

    def pulse_diag(self):
        return 0

    def get_system_guid(self):
        return self.uuid

    def is_active(self):
        return self.faults.mode != "no_sol" and self.config.get("serial") is not None

    def cold_reset(self):
        return 0

    # ----- commands -------------------------------------------------------------
    def handle_raw_request(self, request, session):
        netfn, command = request["netfn"], request["command"]
        try:
            if self.faults.take("busy"):
                return session.send_ipmi_response(code=0xC0)
            if (netfn, command) in OPERATOR_COMMANDS and getattr(session, "clientpriv", 2) < PRIVILEGES["operator"]:
                self.log(f"command {netfn:#x}/{command:#x} refused: insufficient privilege")
                return session.send_ipmi_response(code=0xD4)
            if netfn == 0 and command == 1:
                return self._chassis_status(session)
            if netfn == 0 and command == 8:
                return self._set_boot_options(request, session)
            if netfn == 0 and command == 9:
                return self._get_boot_options(request, session)
            if netfn == 6 and command == 0x48:
                return self._activate_sol(request, session)
            if netfn == 6 and command == 0x49:
                return self._deactivate_sol(request, session)
            if netfn == 6 and command == 0x54:  # get channel cipher suites, inside a session
                index = request["data"][2] & 0x3F if len(request["data"]) > 2 else 0
                return session.send_ipmi_response(data=[0x01] + list(CIPHER_SUITE_RECORDS if index == 0 else b""))
            if netfn == 6 and command == 0x4A:  # get payload activation status
                active = 1 if self.sol is not None else 0
                return session.send_ipmi_response(data=[1, active, 0])
            if netfn == 6 and command == 0x4B:  # get payload instance info: owner session id
                owner = list(bytearray(self.sol_session.managedsessionid)) if self.sol_session is not None else [0, 0, 0, 0]
                return session.send_ipmi_response(data=owner + [0] * 8)
            handled = self.sensors.handle(netfn, command, list(request["data"]))
            if handled is None:
                handled = self._records(netfn, command, list(request["data"]))
            if handled is not None:
                code, data = handled
                return session.send_ipmi_response(code=code, data=data)
            return super().handle_raw_request(request, session)
        except Exception:
            self.log("error handling request:\n" + traceback.format_exc())
            return session.send_ipmi_response(code=0xFF)

    def _records(self, netfn: int, command: int, data: list) -> Optional[tuple]:
        """FRU, SEL, Device GUID, DCMI power and LAN parameters (bmc_records.py, shared with the Redfish face)."""
        if netfn == 0x0A:
            return bmc_records.handle_fru(self.fru, command, data) or self.sel.handle(command, data)
        if netfn == 0x06 and command in (0x08, 0x37):  # Get Device GUID, Get System GUID (pyghmi's sent SMBIOS order)
            return 0, bmc_records.guid_bytes(str(self.uuid))
        if netfn == 0x06 and command == 0x42:
            return bmc_records.handle_channel_info(data)
        if netfn == 0x2C:
            return bmc_records.handle_dcmi(self.get_power_state() == "on", command, data)
        if netfn == 0x0C and command == 0x02:
            if self._lan is None:  # read once, when first asked (a farm of BMCs starts no "ip" commands)
                self._lan = bmc_records.lan_settings(self.config["address"])
            return bmc_records.handle_lan(self._lan, data)
        return None

    def _chassis_status(self, session):
        power = 1 if self.get_power_state() == "on" else 0
        # byte1: power on, restore policy "previous" (0b01 << 5); byte2: last event; byte3: misc
        session.send_ipmi_response(data=[power | 0x20, 0, 0x40, 0])

    def _set_boot_options(self, request, session):
        data = request["data"]
        parameter = data[0] & 0x7F
        if parameter != 5:
            return session.send_ipmi_response()  # set-in-progress and info acks: accept
        flags, selector = data[1], data[2] & 0x3C
        device = BOOT_SELECTORS.get(selector)
        if device is None:
            return session.send_ipmi_response(code=0xCC)
        if not flags & 0x80:
            device = "default"
        self.control.call("bootdev", device=device, persistent=bool(flags & 0x40), uefi=bool(flags & 0x20))
        self.log(f"boot device {device} persistent={bool(flags & 0x40)} uefi={bool(flags & 0x20)}")
        return session.send_ipmi_response()

    def _get_boot_options(self, request, session):
        parameter = request["data"][0] & 0x7F
        if parameter != 5:
            return session.send_ipmi_response(data=[1, parameter, 0])
        status = self.control.status()
        flags = 0x80 if status["boot_device"] != "default" else 0
        if status["boot_persistent"]:
            flags |= 0x40
        if status["boot_uefi"]:
            flags |= 0x20
        selector = BOOT_SELECTOR_OF.get(status["boot_device"], 0)
        return session.send_ipmi_response(data=[1, 5, flags, selector, 0, 0, 0])

    # ----- Serial-over-LAN ----------------------------------------------------------
    def _activate_sol(self, request, session):
        if not self.is_active():
            return session.send_ipmi_response(code=0x81)
        if self.sol is not None:
            return session.send_ipmi_response(code=0x80)  # payload already active
        serial = self.config["serial"]
        try:
            self.serial = socket.create_connection((serial["host"], int(serial["port"])), timeout=1)
            self.serial.setblocking(False)
        except OSError as error:
            self.log(f"serial console unreachable: {error}")
            return session.send_ipmi_response(code=0x81)
        solport = list(struct.unpack("BB", struct.pack("!H", self.port)))
        session.send_ipmi_response(data=[0, 0, 0, 0, 1, 0, 1, 0] + solport + [0xFF, 0xFF])
        self.sol = LabSol(session, self._from_sol_client)
        self.sol_session = session
        self.activated = True
        self.sol_running.set()
        self.log("SOL activated")
        return None

    def _deactivate_sol(self, request, session):
        if self.sol is None:
            return session.send_ipmi_response(code=0x80)
        session.send_ipmi_response()
        self.release_sol()
        return None

    def release_sol(self) -> None:
        if self.sol is not None:
            try:
                self.sol.close()
            except Exception:
                pass
        self.sol = None
        self.sol_session = None
        self.activated = False
        self.sol_running.clear()
        if self.serial is not None:
            self.serial.close()
            self.serial = None
        self.log("SOL deactivated")

    def _from_sol_client(self, data: Any) -> None:
        if isinstance(data, dict):
            return
        if self.serial is not None:
            try:
                self.serial.sendall(data if isinstance(data, bytes) else str(data).encode())
            except OSError:
                pass

    def pump_serial(self) -> None:
        if self.serial is None or self.sol is None:
            return
        self.sol.tick()
        ready, _writable, _failed = select.select([self.serial], [], [], 0)
        if not ready:
            return
        try:
            data = self.serial.recv(4096)
        except OSError:
            data = b""
        if data:
            self.sol.send_data(data)


def poke(address: str, port: int) -> None:
    """One 1-byte datagram to the BMC's own socket: it ends the server loop's wait (ignored as non-IPMI)."""
    family = socket.AF_INET6 if ":" in address else socket.AF_INET
    try:
        with socket.socket(family, socket.SOCK_DGRAM) as poker:
            poker.sendto(b"\x00", (address, port))
    except OSError:
        pass


def _wake_event_loop(address: str, port: int, stopping: threading.Event, bmc: "LabBmc") -> None:
    """Poke our own socket every 50 ms while a SOL session is active.

    pyghmi's event loop sleeps in its I/O thread and is woken by a datagram to
    localhost on its socket's port; a BMC bound to one address never receives
    it, so without this the loop (and SOL output) waits for the next client
    packet. Only SOL output needs the loop to act unprompted; without a SOL
    session this thread sleeps on ``sol_running``. The 1-byte datagrams are
    ignored as non-IPMI.
    """
    while not stopping.is_set():
        if not bmc.sol_running.wait(IDLE_TICK):
            continue
        poke(address, port)
        stopping.wait(SOL_TICK)


def main(argv: Optional[list] = None) -> int:
    global FAULTS
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--config", required=True)
    args = parser.parse_args(argv)
    config = json.loads(Path(args.config).read_text())
    prompt_wait.install()
    bmc = LabBmc(config)
    FAULTS = bmc.faults
    stopping = threading.Event()
    address, port = config["address"], int(config["port"])

    def stop(*_args: Any) -> None:
        stopping.set()
        poke(address, port)  # the server loop may be waiting for a packet

    signal.signal(signal.SIGTERM, stop)
    if config.get("ready_file"):
        ready = Path(config["ready_file"])
        ready.with_suffix(".tmp").write_text(str(os.getpid()))
        os.replace(ready.with_suffix(".tmp"), ready)
    bmc.log(f"listening on {config['address']}:{config['port']}")
    threading.Thread(target=_wake_event_loop, args=(address, port, stopping, bmc), daemon=True).start()
    while not stopping.is_set():
        try:
            ipmisession.Session.wait_for_rsp(SOL_TICK if bmc.sol is not None else IDLE_TICK)
            bmc.pump_serial()
        except AttributeError as error:  # pyghmi: a SOL client vanished mid-session
            bmc.log(f"guarded pyghmi error: {error}")
            bmc.release_sol()
        except Exception:
            bmc.log("guarded error:\n" + traceback.format_exc())
    return 0


if __name__ == "__main__":
    sys.exit(main())
