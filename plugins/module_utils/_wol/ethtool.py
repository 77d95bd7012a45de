# Copyright: ctys.pm contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""A NIC's Wake-on-LAN register: kernel ioctl, ``ethtool`` fallback, and which interface to arm.

ctys-PM ``CANCEL ...,WOL,IF:<if>`` runs ``ethtool -s IF wol g`` before power-off.
Here the register is read and set with the kernel's ``SIOCETHTOOL`` ioctl
(``ETHTOOL_GWOL``/``ETHTOOL_SWOL``), so no ``ethtool`` binary is needed; where the
ioctl is not permitted the ``ethtool`` command is tried, whose output is parsed.
Bridges, bonds and VLANs are resolved to their physical ports through sysfs,
because "bridged interfaces do not propagate the wol g flag properly" (ctys).
"""

from __future__ import annotations

import array
import errno
import fcntl
import os
import re
import socket
import struct
from dataclasses import dataclass
from typing import Callable, List, Optional, Sequence, Tuple

from ansible_collections.ctys.pm.plugins.module_utils._errors import (
    PmError,
    PmInputError,
    PmPermissionError,
    PmStateError,
    PmUnsupportedError,
)
from ansible_collections.ctys.pm.plugins.module_utils._netaddr import (
    check_interface_name,
)
from ansible_collections.ctys.pm.plugins.module_utils._wol import (
    persist as _wol_persist,
)
from ansible_collections.ctys.pm.plugins.module_utils._wol.bits import (
    WAKE_MAGICSECURE,
    WOL_LETTERS,
    letters,
    mask_of,
)

SIOCETHTOOL = 0x8946
SIOCGIFADDR = 0x8915
SIOCGIFBRDADDR = 0x8919
SIOCGIFNETMASK = 0x891B
ETHTOOL_GDRVINFO = 0x03
ETHTOOL_GWOL = 0x05
ETHTOOL_SWOL = 0x06
# struct ethtool_wolinfo {u32 cmd; u32 supported; u32 wolopts; u8 sopass[6];}: sizeof is 20
# (two bytes of tail padding), and the kernel copies all 20 back.
WOLINFO = struct.Struct("=III6s2x")
# struct ethtool_drvinfo: u32 cmd, then driver[32] ... 196 bytes in all.
DRVINFO_SIZE = 196
IFREQ_SIZE = 40  # sizeof(struct ifreq) on 64-bit; larger than on 32-bit, which is harmless

SYSFS_ROOT = "/sys"
IoctlFn = Callable[[str, bytes], bytes]
BroadcastFn = Callable[[str], Optional[str]]
RunFn = Callable[[List[str]], Tuple[int, str, str]]


def kernel_ioctl(ifname: str, request: bytes) -> bytes:
    """``SIOCETHTOOL`` on ``ifname`` with ``request`` as the ethtool struct; returns the struct the kernel wrote."""
    buffer = array.array("B", request)
    address, _length = buffer.buffer_info()
    ifreq = struct.pack("16sP", os.fsencode(ifname), address).ljust(IFREQ_SIZE, b"\0")
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        fcntl.ioctl(sock.fileno(), SIOCETHTOOL, ifreq)
    return buffer.tobytes()


def read_wol(ifname: str, ioctl: Optional[IoctlFn] = None, desc: str = "") -> Tuple[int, int, bytes]:
    """(supported, wolopts, sopass) of ``ifname`` through ETHTOOL_GWOL: the one read of the register.

    Raises OSError as the kernel does (EPERM without CAP_NET_ADMIN on old kernels, EOPNOTSUPP
    for a NIC without Wake-on-LAN, ENODEV for a missing one), PmError for a short answer.
    """
    answer = (ioctl or kernel_ioctl)(ifname, WOLINFO.pack(ETHTOOL_GWOL, 0, 0, b"\0" * 6))
    if len(answer) < WOLINFO.size - 2:  # the two bytes of tail padding may be cut by a caller
        raise PmError(f"the kernel answered ETHTOOL_GWOL for {desc or 'interface ' + ifname} with {len(answer)} bytes; expected {WOLINFO.size}")
    _cmd, supported, wolopts, sopass = WOLINFO.unpack(answer[:WOLINFO.size].ljust(WOLINFO.size, b"\0"))
    return supported, wolopts, sopass


def kernel_broadcast(ifname: str) -> Optional[str]:
    """The IPv4 broadcast address of ``ifname``, or None when it has no IPv4 address.

    SIOCGIFBRDADDR when one is set; else address | ~netmask (``ip addr add`` without ``brd +`` sets none).
    """
    ifreq = struct.pack("16s", os.fsencode(ifname)).ljust(IFREQ_SIZE, b"\0")

    def ask(request: int) -> Optional[bytes]:
        try:
            with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
                return fcntl.ioctl(sock.fileno(), request, ifreq)[20:24]
        except OSError:  # EADDRNOTAVAIL: no IPv4 address
            return None

    address = ask(SIOCGIFADDR)
    if not address or address == b"\0" * 4:
        return None
    directed = ask(SIOCGIFBRDADDR)
    if not directed or directed == b"\0" * 4:
        mask = ask(SIOCGIFNETMASK) or b"\xff" * 4
        directed = bytes(a | (~m & 0xFF) for a, m in zip(address, mask))
    return socket.inet_ntoa(directed)


# ---------------------------------------------------------------- flags and ethtool output

def parse_wol_option(value: Optional[str], state: str) -> int:
    """The ``wol``/``state`` options as a mask; raises on letters ethtool does not know."""
    if state == "disabled":
        if value not in (None, "", "d"):
            raise PmInputError(f"wol '{value}' contradicts state 'disabled'; leave wol out or use state 'enabled'")
        return 0
    text = "g" if value is None else str(value).strip()
    bad = sorted(set(text) - set(WOL_LETTERS + "d"))
    if not text or bad or ("d" in text and text != "d"):
        raise PmInputError(
            f"wol '{value}' is not valid; use ethtool's letters {' '.join(WOL_LETTERS)} (such as g), or d alone to disable"
        )
    return mask_of(text)


@dataclass
class EthtoolText:
    """What ``ethtool IF`` said about Wake-on-LAN; None where it printed nothing."""

    supported: Optional[int] = None
    wolopts: Optional[int] = None
    sopass: Optional[bytes] = None
    not_permitted: bool = False


_LINE = re.compile(r"^\s*(Supports Wake-on|Wake-on|SecureOn password)\s*:\s*(.*?)\s*$")
_SOPASS = re.compile(r"^([0-9a-fA-F]{1,2}):([0-9a-fA-F]{1,2}):([0-9a-fA-F]{1,2}):([0-9a-fA-F]{1,2}):([0-9a-fA-F]{1,2}):([0-9a-fA-F]{1,2})$")
_LETTERS = re.compile(r"^[a-z]+$")


def parse_ethtool(text: str) -> EthtoolText:
    """Read the Wake-on lines of ``ethtool IF`` (any indentation, lines in any order, rest ignored)."""
    found = EthtoolText()
    for line in str(text).splitlines():
        if "wake-on-lan settings" in line.lower() and "not permitted" in line.lower():
            found.not_permitted = True  # old ethtool (ioctl) run without root
            continue
        match = _LINE.match(line)
        if not match:
            continue
        key, value = match.group(1), match.group(2)
        if key == "SecureOn password":
            octets = _SOPASS.match(value)
            if octets:
                found.sopass = bytes(int(octet, 16) for octet in octets.groups())
        elif _LETTERS.match(value):
            if key == "Supports Wake-on":
                found.supported = mask_of(value)
            else:
                found.wolopts = mask_of(value)
    return found


def parse_driver(text: str) -> Optional[str]:
    """The ``driver:`` line of ``ethtool -i IF``."""
    for line in str(text).splitlines():
        key, _sep, value = line.partition(":")
        if key.strip() == "driver" and value.strip():
            return value.strip()
    return None


# ---------------------------------------------------------------- reading and setting, with fallback

@dataclass
class WolState:
    supported: int
    wolopts: int
    sopass: Optional[bytes]
    source: str  # "ioctl" or "ethtool"


def unsupported(desc: str) -> PmUnsupportedError:
    return PmUnsupportedError(
        f"{desc} does not support Wake-on-LAN; arm a physical NIC whose driver supports it (veth, virtio_net, tun and bridges never do)"
    )


def _not_permitted(what: str, desc: str) -> PmPermissionError:
    return PmPermissionError(f"{what} the Wake-on-LAN flags of {desc} needs root (CAP_NET_ADMIN); run the task with become: true")


def _missing(ifname: str) -> PmInputError:
    return PmInputError(f"interface '{ifname}' does not exist on this host; give an existing interface (see 'ip link')")


def _last_line(text: str) -> str:
    lines = [line.strip() for line in str(text).splitlines() if line.strip()]
    return lines[-1] if lines else "no message"


@dataclass
class Ethtool:
    """Reads and sets the register through ``ioctl``, falling back to the ``ethtool`` command on EPERM."""

    ioctl: Optional[IoctlFn] = None  # None: the kernel (looked up at call time, so tests can replace it)
    run_command: Optional[RunFn] = None
    ethtool_path: Optional[str] = None

    def _ioctl(self, ifname: str, request: bytes) -> bytes:
        return (self.ioctl or kernel_ioctl)(ifname, request)

    def driver(self, ifname: str, sysfs: "SysNet") -> str:
        name = sysfs.driver(ifname)
        if name:
            return name
        try:  # GDRVINFO needs no privilege and names virtual drivers (veth, bridge, tun)
            answer = self._ioctl(ifname, struct.pack("=I", ETHTOOL_GDRVINFO).ljust(DRVINFO_SIZE, b"\0"))
            name = answer[4:36].split(b"\0", 1)[0].decode("ascii", "replace").strip()
            if name:
                return name
        except (OSError, ValueError):
            pass
        if self.run_command and self.ethtool_path:
            _rc, out, _err = self.run_command([self.ethtool_path, "-i", ifname])
            name = parse_driver(out)
            if name:
                return name
        return "unknown"

    def get(self, ifname: str, desc: str) -> WolState:
        """The NIC's register; raises PmUnsupportedError when it has no Wake-on-LAN at all."""
        try:
            supported, wolopts, sopass = read_wol(ifname, self._ioctl, desc)
        except OSError as error:
            if error.errno in (errno.EPERM, errno.EACCES):
                return self._read_command(ifname, desc)
            raise self._error(error, ifname, desc, "reading") from None
        if not supported:
            raise unsupported(desc)
        return WolState(supported, wolopts, sopass, "ioctl")

    def set(self, ifname: str, desc: str, wolopts: int, sopass: Optional[bytes]) -> None:
        try:
            self._ioctl(ifname, WOLINFO.pack(ETHTOOL_SWOL, 0, wolopts, sopass or b"\0" * 6))
        except OSError as error:
            if error.errno in (errno.EPERM, errno.EACCES):
                self._set_command(ifname, desc, wolopts, sopass)
                return
            if error.errno == errno.EINVAL:
                raise PmUnsupportedError(
                    f"{desc} refused Wake-on-LAN mode '{letters(wolopts)}' (EINVAL); use letters it lists under 'Supports Wake-on'"
                ) from None
            raise self._error(error, ifname, desc, "setting") from None

    def _error(self, error: OSError, ifname: str, desc: str, what: str) -> PmError:
        if error.errno in (errno.EOPNOTSUPP, errno.ENOTSUP):
            return unsupported(desc)
        if error.errno == errno.ENODEV:
            return _missing(ifname)
        return PmError(f"{what} the Wake-on-LAN flags of {desc} failed ({error.strerror or error})")

    def _read_command(self, ifname: str, desc: str) -> WolState:
        if not (self.run_command and self.ethtool_path):
            raise _not_permitted("reading", desc)
        rc, out, err = self.run_command([self.ethtool_path, ifname])
        found = parse_ethtool(out + "\n" + err)
        if "No such device" in err:
            raise _missing(ifname)
        if found.supported is None and (found.not_permitted or "not permitted" in err):
            raise _not_permitted("reading", desc)
        if found.supported is None and rc != 0:
            raise PmError(f"ethtool {ifname} failed (exit {rc}: {_last_line(err)}) while reading the Wake-on-LAN flags of {desc}")
        if not found.supported:
            raise unsupported(desc)
        return WolState(found.supported, found.wolopts or 0, found.sopass, "ethtool")

    def _set_command(self, ifname: str, desc: str, wolopts: int, sopass: Optional[bytes]) -> None:
        if not (self.run_command and self.ethtool_path):
            raise _not_permitted("setting", desc)
        argv = [self.ethtool_path, "-s", ifname, "wol", letters(wolopts)]
        if sopass and wolopts & WAKE_MAGICSECURE:
            argv += ["sopass", ":".join(f"{octet:02x}" for octet in sopass)]
        rc, _out, err = self.run_command(argv)
        if rc == 0:
            return
        if "not permitted" in err:
            raise _not_permitted("setting", desc)
        if "not supported" in err.lower() or rc == 75:
            raise unsupported(desc)
        if "No such device" in err:
            raise _missing(ifname)
        raise PmError(f"ethtool -s {ifname} wol {letters(wolopts)} failed (exit {rc}: {_last_line(err)}) for {desc}")


# ---------------------------------------------------------------- interfaces from sysfs

@dataclass
class SysNet:
    """Interfaces as sysfs shows them under ``root`` (``/sys``; tests use a fake tree)."""

    root: str = ""  # "" means SYSFS_ROOT, looked up at call time

    def __post_init__(self) -> None:
        self.root = self.root or SYSFS_ROOT

    def path(self, *parts: str) -> str:
        return os.path.join(self.root, "class", "net", *parts)

    def exists(self, name: str) -> bool:
        return bool(name) and "/" not in name and os.path.isdir(self.path(name))

    def _read(self, name: str, attribute: str) -> str:
        try:
            with open(self.path(name, attribute), encoding="ascii", errors="replace") as stream:
                return stream.read().strip()
        except OSError:  # e.g. carrier of a down interface gives EINVAL
            return ""

    def names(self) -> List[str]:
        try:
            names = [name for name in os.listdir(self.path()) if self.exists(name)]
        except OSError:
            return []

        def order(name: str) -> Tuple[int, str]:
            index = self._read(name, "ifindex")
            return (int(index) if index.isdigit() else 1 << 30, name)

        return sorted(names, key=order)

    def is_virtual(self, name: str) -> bool:
        """No device behind it (veth, bridge, bond, tun), or it sits under devices/virtual."""
        if not os.path.exists(self.path(name, "device")):
            return True
        return "/devices/virtual/" in os.path.realpath(self.path(name)).replace(os.sep, "/") + "/"

    def driver(self, name: str) -> Optional[str]:
        link = self.path(name, "device", "driver")
        return os.path.basename(os.path.realpath(link)) if os.path.islink(link) else None

    def carrier(self, name: str) -> bool:
        return self._read(name, "carrier") == "1"

    def address(self, name: str) -> Optional[str]:
        return self._read(name, "address") or None

    def lowers(self, name: str) -> List[str]:
        """Ports of a bridge (brif), slaves of a bond, the parent of a VLAN or macvlan (lower_*)."""
        found: List[str] = []
        brif = self.path(name, "brif")
        if os.path.isdir(brif):
            found += sorted(os.listdir(brif))
        found += self._read(name, os.path.join("bonding", "slaves")).split()
        try:
            entries = sorted(os.listdir(self.path(name)))
        except OSError:
            entries = []
        found += [entry[len("lower_"):] for entry in entries if entry.startswith("lower_")]
        return list(dict.fromkeys(item for item in found if item))

    def uppers(self, name: str) -> List[str]:
        """The bridge or bond it is enslaved to, and VLANs on top of it."""
        found: List[str] = []
        master = self.path(name, "master")
        if os.path.islink(master):
            found.append(os.path.basename(os.path.realpath(master)))
        try:
            entries = sorted(os.listdir(self.path(name)))
        except OSError:
            entries = []
        found += [entry[len("upper_"):] for entry in entries if entry.startswith("upper_")]
        return list(dict.fromkeys(found))

    def leaves(self, name: str) -> List[str]:
        """The interfaces at the bottom of ``name`` (itself if it has no lower devices); bounded depth."""
        result: List[str] = []
        seen = set()

        def walk(current: str, depth: int) -> None:
            if current in seen or depth > 8:
                return
            seen.add(current)
            below = [lower for lower in self.lowers(current) if self.exists(lower)]
            if not below:
                result.append(current)
            for lower in below:
                walk(lower, depth + 1)

        walk(name, 0)
        return result

    def with_address_chain(self, name: str) -> List[str]:
        """``name`` then the interfaces above it, nearest first: where its IPv4 address may live."""
        order = [name]
        for current in order:
            if len(order) > 16:
                break
            order += [upper for upper in self.uppers(current) if upper not in order]
        return order


def broadcast_for(names: Sequence[str], broadcast: BroadcastFn) -> Optional[str]:
    for name in names:
        address = broadcast(name)
        if address:
            return address
    return None


# ---------------------------------------------------------------- pm_wol_flag's backend

def parse_sopass(value: Optional[str]) -> Optional[bytes]:
    """A SecureOn password as six bytes; the message never repeats the value (it is a secret)."""
    if value is None or value == "":
        return None
    text = str(value).strip().lower().replace("-", ":")
    parts = text.split(":") if ":" in text else [text[i:i + 2] for i in range(0, len(text), 2)]
    if len(parts) == 6 and all(re.fullmatch(r"[0-9a-f]{1,2}", part) for part in parts):
        return bytes(int(part, 16) for part in parts)
    raise PmInputError("sopass is not a SecureOn password; use six hex octets such as 01:02:03:04:05:06")


Target = Tuple[str, str, str]  # interface, driver, description for messages


def _auto_select(sysfs: SysNet, eth: Ethtool, wanted: int) -> Target:
    """ctys: "first detected valid interface" - the first physical one with a carrier and Wake-on-LAN."""
    notes: List[str] = []
    physical = [name for name in sysfs.names() if not sysfs.is_virtual(name)]
    for name in physical:
        if not sysfs.carrier(name):
            notes.append(f"{name} has no carrier")
            continue
        driver = eth.driver(name, sysfs)
        desc = f"interface {name} (driver {driver})"
        try:
            state = eth.get(name, desc)
        except PmUnsupportedError:
            notes.append(f"{desc} has no Wake-on-LAN")
            continue
        if wanted & ~state.supported:
            notes.append(f"{desc} supports only '{letters(state.supported)}'")
            continue
        return name, driver, desc
    raise PmUnsupportedError(
        f"no physical interface with a carrier supports Wake-on-LAN ({'; '.join(notes) or 'no physical interface found'}); give interface"
    )


def _targets(params: dict, sysfs: SysNet, eth: Ethtool, wanted: int, live: bool) -> Tuple[str, List[Target]]:
    """The interface asked for (or chosen) and the leaves below it to arm."""
    requested = params.get("interface")
    if not requested:
        if not live:
            raise PmInputError("interface is missing but live is false; give interface when only the persistent configuration is written")
        target = _auto_select(sysfs, eth, wanted)
        return target[0], [target]
    name = check_interface_name(requested)
    if not sysfs.exists(name):
        raise PmInputError(
            f"interface '{name}' does not exist on this host; use one of {', '.join(sysfs.names()) or 'none found'}"
        )
    leaves = sysfs.leaves(name)
    physical = [leaf for leaf in leaves if not sysfs.is_virtual(leaf)]
    chosen = physical or leaves  # only virtual ones: try them, so the kernel's own verdict is reported
    targets = []
    for leaf in chosen:
        driver = eth.driver(leaf, sysfs)
        under = "" if leaf == name else f", under {name}"
        targets.append((leaf, driver, f"interface {leaf} (driver {driver}{under})"))
    return name, targets


def run(
    params: dict,
    check_mode: bool = False,
    ethtool: Optional[Ethtool] = None,
    sysfs: Optional[SysNet] = None,
    broadcast: Optional[BroadcastFn] = None,
    run_command: Optional[RunFn] = None,
    nmcli: Optional[str] = None,
) -> dict:
    eth = ethtool or Ethtool()
    net = sysfs or SysNet()
    wanted = parse_wol_option(params.get("wol"), params.get("state") or "enabled")
    sopass = parse_sopass(params.get("sopass"))
    if wanted & WAKE_MAGICSECURE and not sopass:
        raise PmInputError("wol contains s (SecureOn) but sopass is missing; give sopass or drop s from wol")
    if sopass and not wanted & WAKE_MAGICSECURE:
        raise PmInputError(f"sopass was given but wol '{letters(wanted)}' has no s; add s to wol (SecureOn) or leave sopass out")
    method = params.get("persistent") or "none"
    live = params.get("live") is not False
    name, targets = _targets(params, net, eth, wanted, live)

    ports: List[dict] = []
    unsupported_ports: List[dict] = []
    diffs: List[dict] = []
    warnings: List[str] = []
    errors: List[PmError] = []
    for leaf, driver, desc in targets:
        port = {"interface": leaf, "driver": driver,
                "mac": net.address(leaf), "supported": None, "before": None, "after": None, "changed": False,
                "persistent_path": None}
        if live:
            try:
                state = eth.get(leaf, desc)
            except PmUnsupportedError as error:
                errors.append(error)
                unsupported_ports.append({"interface": leaf, "reason": error.msg})
                continue
            if wanted & ~state.supported:
                raise PmUnsupportedError(
                    f"{desc} does not support Wake-on-LAN mode '{letters(wanted & ~state.supported)}'; "
                    f"it supports '{letters(state.supported)}', so use wol with those letters"
                )
            secret_differs = bool(wanted & WAKE_MAGICSECURE) and state.sopass != sopass
            port.update(supported=letters(state.supported), before=letters(state.wolopts), after=letters(wanted))
            port["changed"] = state.wolopts != wanted or secret_differs
            if port["changed"] and not check_mode:
                eth.set(leaf, desc, wanted, sopass)
                readback = eth.get(leaf, desc)  # verify: some drivers accept a mode and keep the old one
                port["after"] = letters(readback.wolopts)
                if readback.wolopts != wanted:
                    raise PmUnsupportedError(
                        f"{desc} still reports Wake-on-LAN '{port['after']}' after setting '{letters(wanted)}'; the driver ignored it"
                    )
            diffs.append({"before_header": f"{leaf} (Wake-on-LAN, volatile)", "after_header": f"{leaf} (Wake-on-LAN, volatile)",
                          "before": f"wol: {port['before']}\n", "after": f"wol: {port['after']}\n"})
        if method != "none":
            if not port["mac"]:
                raise PmStateError(f"{desc} has no MAC address in sysfs; persistence matches the NIC by its MAC")
            outcome = _wol_persist.persist(
                _wol_persist.Request(method, leaf, str(port["mac"]), wanted, sopass, params.get("persistent_root") or "/"),
                check_mode, run_command, nmcli,
            )
            port["persistent_path"] = outcome.path
            port["persistent"] = outcome.method
            port["changed"] = port["changed"] or outcome.changed
            diffs.append(outcome.diff)
            warnings += outcome.warnings
        ports.append(port)
    if not ports:
        if len(errors) == 1:
            raise errors[0]
        raise PmUnsupportedError(
            f"interface {name} resolves to {', '.join(t[2] for t in targets)}, none of which supports Wake-on-LAN; give a physical NIC that does"
        )
    first = ports[0]
    result = {
        "changed": any(p["changed"] for p in ports),
        "interface": name,
        "physical_interfaces": [p["interface"] for p in ports],
        "ports": ports,
        "unsupported_ports": unsupported_ports,
        "supported": first["supported"],
        "before": first["before"],
        "after": first["after"],
        "mac": first["mac"],
        "driver": first["driver"],
        "broadcast": broadcast_for(net.with_address_chain(name), broadcast or kernel_broadcast),
        "persistent": first.get("persistent", "none"),
        "persistent_path": first["persistent_path"],
        "persistent_paths": [p["persistent_path"] for p in ports if p["persistent_path"]],
        "diff": diffs,
    }
    if warnings:
        result["warnings"] = warnings
    return result
