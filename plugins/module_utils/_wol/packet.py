# Copyright: ctys.pm contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Wake-on-LAN magic packets: build, address, send; MAC look-up in ethers and ctys macmap files."""

from __future__ import annotations

import errno
import os
import re
import socket
import time
from dataclasses import dataclass
from typing import Callable, Dict, List, Optional, Sequence

from ansible_collections.ctys.pm.plugins.module_utils._errors import (
    PmConnectionError,
    PmInputError,
    PmPermissionError,
)
from ansible_collections.ctys.pm.plugins.module_utils._netaddr import check_interface_name, check_port, mac_bytes, parse_mac

ETHERTYPE_WOL = 0x0842
SYSFS_NET = "/sys/class/net"


def parse_password(value: Optional[str]) -> Optional[bytes]:
    """SecureOn password: 4 bytes (dotted IPv4 form or hex) or 6 bytes (MAC form or hex)."""
    if value is None or value == "":
        return None
    text = str(value).strip()
    if re.match(r"^\d{1,3}(\.\d{1,3}){3}$", text) and all(0 <= int(p) <= 255 for p in text.split(".")):
        return bytes(int(p) for p in text.split("."))
    digits = re.sub(r"[:\-.]", "", text)
    if re.match(r"^[0-9a-fA-F]+$", digits) and len(digits) in (8, 12):
        return bytes.fromhex(digits)
    # never echo a secret back: name the option and the expected forms only
    raise PmInputError(
        "secureon_password is not a SecureOn password; use 4 bytes (such as 192.0.2.1 or 01020304) or 6 bytes (such as 01:02:03:04:05:06)"
    )


def magic_packet(mac: str, password: Optional[bytes] = None) -> bytes:
    """6 x 0xff, then the MAC 16 times (102 bytes), then the SecureOn password if any."""
    return b"\xff" * 6 + mac_bytes(mac) * 16 + (password or b"")


def read_ethers(text: str) -> Dict[str, str]:
    """name -> MAC from /etc/ethers text (first entry wins, comments and MAC-only lines skipped)."""
    table: Dict[str, str] = {}
    for line in text.splitlines():
        line = line.split("#", 1)[0].strip()
        if not line:
            continue
        fields = line.split()
        if len(fields) < 2:
            continue
        try:
            mac = parse_mac(fields[0])
        except PmInputError:
            continue
        table.setdefault(fields[1], mac)
    return table


def read_macmap(text: str) -> Dict[str, Dict[str, str]]:
    """name -> {mac, ip} from a ctys macmap.fdb (``name;MAC;IP;``, first entry wins)."""
    table: Dict[str, Dict[str, str]] = {}
    for line in text.splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        fields = line.split(";")
        if len(fields) < 2:
            continue
        try:
            mac = parse_mac(fields[1])
        except PmInputError:
            continue
        entry = {"mac": mac, "ip": fields[2].strip() if len(fields) > 2 else ""}
        table.setdefault(fields[0].strip(), entry)
        # ctys names are often FQDNs with a trailing dot; accept the short name too
        table.setdefault(fields[0].strip().rstrip(".").split(".")[0], entry)
    return table


def lookup_name(name: str, ethers: Optional[str], macmap: Optional[str], reader: Callable[[str], str]) -> Dict[str, str]:
    """The MAC (and IP, from macmap) of ``name``; the error names where it looked."""
    looked: List[str] = []
    for path, kind in ((ethers, "ethers"), (macmap, "macmap")):
        if not path:
            continue
        looked.append(path)
        try:
            text = reader(path)
        except FileNotFoundError:
            if kind == "ethers" and macmap:
                continue  # a host without /etc/ethers: the macmap decides
            raise PmInputError(f"{kind} '{path}' does not exist; give an existing file or set mac") from None
        except OSError as error:
            raise PmInputError(f"{kind} '{path}' cannot be read ({error.strerror}); give a readable file or set mac") from None
        if kind == "ethers":
            found = read_ethers(text).get(name)
            if found:
                return {"mac": found, "ip": ""}
        else:
            entry = read_macmap(text).get(name)
            if entry:
                return entry
    where = " and ".join(looked) if looked else "no file"
    raise PmInputError(f"name '{name}' was not found in {where}; add it there or give mac")


@dataclass
class Sender:
    """Sends magic packets by UDP or as raw Ethernet frames; records what it sent."""

    broadcast: Optional[str]
    port: int
    interface: Optional[str]
    repeat: int
    repeat_interval: float
    sysfs: str = SYSFS_NET

    def __post_init__(self) -> None:
        check_port(self.port, "port")
        if self.interface is not None:
            check_interface_name(self.interface)
            if not os.path.isdir(os.path.join(self.sysfs, self.interface)):
                names = sorted(os.listdir(self.sysfs)) if os.path.isdir(self.sysfs) else []
                raise PmInputError(
                    f"interface '{self.interface}' does not exist on this host; use one of {', '.join(names) or 'none found'}"
                )
        if not 1 <= self.repeat <= 100:
            raise PmInputError(f"repeat '{self.repeat}' is not valid; use a count from 1 to 100 such as 3")
        if not 0 <= self.repeat_interval <= 10:
            raise PmInputError(f"repeat_interval '{self.repeat_interval}' is not valid; use seconds from 0 to 10 such as 0.1")

    def destination(self) -> str:
        if self.interface:
            return f"{self.interface} (ethertype 0x0842)"
        host = f"[{self.broadcast}]" if self.broadcast and ":" in self.broadcast else self.broadcast
        return f"{host}:{self.port}/udp"

    def send(self, packets: Sequence[bytes]) -> None:
        """Send every packet ``repeat`` times, ``repeat_interval`` apart (bounded: at most 100 rounds)."""
        if self.interface:
            self._send_raw(self.interface, packets)
        else:
            self._send_udp(packets)

    def _send_udp(self, packets: Sequence[bytes]) -> None:
        try:
            infos = socket.getaddrinfo(self.broadcast, self.port, type=socket.SOCK_DGRAM)
        except socket.gaierror as error:
            raise PmInputError(f"broadcast '{self.broadcast}' cannot be resolved ({error}); use an IP address or a resolvable name") from None
        family, _kind, _proto, _canon, address = infos[0]
        with socket.socket(family, socket.SOCK_DGRAM) as sock:
            if family == socket.AF_INET:
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_BROADCAST, 1)
            for round_number in range(self.repeat):
                for packet in packets:
                    try:
                        sock.sendto(packet, address)
                    except OSError as error:
                        raise PmConnectionError(
                            f"sending to {self.destination()} failed ({error.strerror}); check broadcast and the routes of this host"
                        ) from None
                if round_number + 1 < self.repeat:
                    time.sleep(self.repeat_interval)

    def _send_raw(self, interface: str, packets: Sequence[bytes]) -> None:
        try:
            with open(os.path.join(self.sysfs, interface, "address"), encoding="ascii") as stream:
                source = mac_bytes(stream.read().strip())
        except (OSError, PmInputError):
            source = b"\x00" * 6
        try:
            sock = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(ETHERTYPE_WOL))
        except PermissionError:
            raise PmPermissionError(
                f"sending a raw frame on {interface} needs CAP_NET_RAW; run the task as root (become: true) or use broadcast instead"
            ) from None
        with sock:
            try:
                sock.bind((interface, ETHERTYPE_WOL))
            except OSError as error:
                raise PmConnectionError(f"cannot use interface '{interface}' ({error.strerror}); check that it is up") from None
            header = b"\xff" * 6 + source + ETHERTYPE_WOL.to_bytes(2, "big")
            for round_number in range(self.repeat):
                for packet in packets:
                    try:
                        sock.send(header + packet)
                    except OSError as error:
                        if error.errno == errno.EPERM:
                            raise PmPermissionError(
                                f"sending a raw frame on {interface} needs CAP_NET_RAW; run the task as root (become: true)"
                            ) from None
                        raise PmConnectionError(f"sending on {interface} failed ({error.strerror})") from None
                if round_number + 1 < self.repeat:
                    time.sleep(self.repeat_interval)
