# Copyright: ctys.pm contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Is the machine up? ICMP ping (TCP when ICMP is not permitted), a TCP port, or SSH."""

from __future__ import annotations

import os
import socket
import struct
from dataclasses import dataclass
from typing import Optional, Tuple

from ansible_collections.ctys.pm.plugins.module_utils._errors import PmInputError

POLL_KINDS = ("ping", "tcp", "ssh")


@dataclass
class PollSpec:
    kind: str = "tcp"
    port: int = 22
    ssh_user: Optional[str] = None
    ssh_key: Optional[str] = None
    ssh_password: Optional[str] = None
    host_key_checking: bool = True
    known_hosts: Optional[str] = None

    def __post_init__(self) -> None:
        if self.kind not in POLL_KINDS:
            raise PmInputError(f"poll '{self.kind}' is not valid; use ping, tcp or ssh")


def _checksum(data: bytes) -> int:
    if len(data) % 2:
        data += b"\x00"
    total = sum(struct.unpack(f"!{len(data) // 2}H", data))
    total = (total >> 16) + (total & 0xFFFF)
    total += total >> 16
    return ~total & 0xFFFF


def ping_once(host: str, timeout: float) -> Optional[bool]:
    """True if an ICMP echo is answered, False if not, None if ICMP is not permitted here."""
    try:
        infos = socket.getaddrinfo(host, None, socket.AF_INET)
    except socket.gaierror:
        return False
    address = infos[0][4][0]
    for kind in (socket.SOCK_DGRAM, socket.SOCK_RAW):
        try:
            sock = socket.socket(socket.AF_INET, kind, socket.IPPROTO_ICMP)
        except (PermissionError, OSError):
            continue
        with sock:
            ident = os.getpid() & 0xFFFF
            header = struct.pack("!BBHHH", 8, 0, 0, ident, 1)
            payload = b"ctys.pm-ping"
            packet = struct.pack("!BBHHH", 8, 0, _checksum(header + payload), ident, 1) + payload
            sock.settimeout(max(0.05, timeout))
            try:
                sock.sendto(packet, (address, 0))
                while True:
                    data, source = sock.recvfrom(1024)
                    if source[0] != address:
                        continue
                    reply = data[20:] if kind == socket.SOCK_RAW else data
                    if reply[:1] == b"\x00":
                        return True
            except socket.timeout:
                return False
            except PermissionError:
                continue
            except OSError:
                return False
    return None


def tcp_once(host: str, port: int, timeout: float) -> Tuple[bool, str]:
    try:
        with socket.create_connection((host, port), timeout=max(0.05, timeout)):
            return True, "connected"
    except OSError as error:
        return False, f"tcp {host}:{port}: {error.strerror or error}"


def ssh_banner_once(host: str, port: int, timeout: float) -> Tuple[bool, str]:
    try:
        with socket.create_connection((host, port), timeout=max(0.05, timeout)) as conn:
            conn.settimeout(max(0.05, timeout))
            banner = conn.recv(256)
    except OSError as error:
        return False, f"ssh {host}:{port}: {error.strerror or error}"
    if banner.startswith(b"SSH-"):
        return True, banner.split(b"\r")[0].decode("ascii", "replace")
    return False, f"ssh {host}:{port}: no SSH banner"


def ssh_login_once(host: str, spec: PollSpec, timeout: float) -> Tuple[bool, str]:
    """A real SSH login with paramiko; the host key is checked unless host_key_checking is false."""
    try:
        import paramiko  # controller-side dependency, imported when used
    except ImportError:
        return False, "ssh login needs the Python library paramiko on the host that runs the task"
    client = paramiko.SSHClient()
    if spec.host_key_checking:
        client.load_system_host_keys()
        if spec.known_hosts:
            client.load_host_keys(spec.known_hosts)
        client.set_missing_host_key_policy(paramiko.RejectPolicy())
    else:
        client.set_missing_host_key_policy(paramiko.AutoAddPolicy())
    try:
        client.connect(
            host,
            port=spec.port,
            username=spec.ssh_user,
            password=spec.ssh_password,
            key_filename=spec.ssh_key,
            timeout=max(0.1, timeout),
            banner_timeout=max(0.1, timeout),
            auth_timeout=max(0.1, timeout),
            look_for_keys=spec.ssh_key is None and spec.ssh_password is None,
            allow_agent=False,
        )
        return True, f"ssh login as {spec.ssh_user}"
    except paramiko.BadHostKeyException:
        return False, f"ssh {host}: the host key changed; fix known_hosts or set ssh_host_key_checking: false"
    except paramiko.SSHException as error:
        return False, f"ssh {host}: {error}"
    except OSError as error:
        return False, f"ssh {host}:{spec.port}: {error.strerror or error}"
    finally:
        client.close()


def poll_once(host: str, spec: PollSpec, timeout: float) -> Tuple[bool, str]:
    """One reachability check, bounded by ``timeout``; returns (up, what was seen)."""
    if spec.kind == "ping":
        answered = ping_once(host, timeout)
        if answered is None:  # ICMP not permitted: TCP instead
            return tcp_once(host, spec.port, timeout)
        return answered, "icmp echo reply" if answered else f"ping {host}: no reply"
    if spec.kind == "tcp":
        return tcp_once(host, spec.port, timeout)
    if spec.ssh_user:
        return ssh_login_once(host, spec, timeout)
    return ssh_banner_once(host, spec.port, timeout)
