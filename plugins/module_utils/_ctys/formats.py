# Copyright: ctys.pm contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Readers and writers for the files ctys (UnifiedSessionsManager) keeps its machines in.

* ``pm.conf`` / ``vm.conf`` / ``*.ctys``: ``#@#KEY = "value"`` lines, first
  occurrence wins, the ``#@#MAGICID-<X>`` marker (``-IGNORE``/``-NOENUM``
  exclude a file), ``MAC<n>``/``IP<n>`` pairs whose IP value holds
  comma-separated ``ip%mask%relay%ifname%sshports%gateway`` tuples.
* ``enum.fdb``: one record per machine interface, 47 ``;``-separated fields.
* ``macmap.fdb``: ``name;MAC;IP;``.
* group files: members ``[user@]host['(options)']``, ``#include``, ``CONTEXT``.
* ``/etc/ethers``: ``MAC name``.

No Ansible imports: the inventory plugin (controller) and pm_info (target,
Python 3.8+) share this file.  Readers never raise on bad content: a bad line
is skipped and reported as an :class:`Issue` naming file and line; only a file
that cannot be read at all raises :class:`CtysFileError`.
"""

from __future__ import annotations

import functools
import ipaddress
import re
import socket
from dataclasses import dataclass, field, fields
from typing import Any, Callable, Dict, Iterable, List, Optional, Sequence, Tuple

from ansible_collections.ctys.pm.plugins.module_utils._ctys.fields import (
    CONF_FIELDS,
    E_HOST,
    E_LABEL,
    E_MAC,
    E_NETMASK,
    E_SSHPORT,
    E_TCP,
    ENUM_FIELD_NAMES,
    ENUM_FIELDS,
)
from ansible_collections.ctys.pm.plugins.module_utils._errors import PmInputError

# ----------------------------------------------------------------------------
# common


class CtysFileError(PmInputError):
    """A ctys file named explicitly is missing or unreadable."""


@dataclass(frozen=True)
class Issue:
    """A skipped line: where it is and why."""

    path: str
    line: int
    message: str

    def __str__(self) -> str:
        return f"{self.path}:{self.line}: {self.message}"


_CANONICAL_MAC = re.compile(r"^[0-9A-Fa-f]{2}(:[0-9A-Fa-f]{2}){5}$")
_MAC = re.compile(r"^[0-9A-Fa-f]{1,2}([:-])[0-9A-Fa-f]{1,2}(\1[0-9A-Fa-f]{1,2}){4}$")


def normalize_mac(text: str) -> Optional[str]:
    """``00-1a-2B-3:4d:5e`` style text as upper-case ``00:1A:2B:03:4D:5E`` (ctys stores upper case), else None."""
    text = text.strip()
    if _CANONICAL_MAC.match(text):
        return text.upper()  # the common case, without splitting
    if not _MAC.match(text):
        return None
    return ":".join(part.zfill(2) for part in re.split(r"[:-]", text)).upper()


def is_ip(text: str) -> bool:
    try:
        socket.inet_pton(socket.AF_INET, text)  # fast path: 10,000-machine databases are mostly IPv4
        return True
    except (OSError, ValueError):
        pass
    try:
        ipaddress.ip_address(text)
    except ValueError:
        return False
    return True


@functools.lru_cache(maxsize=256)  # a site has few distinct masks
def netmask_prefix(mask: str) -> Optional[int]:
    """``255.255.255.0`` or ``24`` as a prefix length, else None."""
    mask = mask.strip()
    if mask.isdigit():
        value = int(mask)
        return value if 0 <= value <= 128 else None
    try:
        return ipaddress.IPv4Network(f"0.0.0.0/{mask}").prefixlen
    except ValueError:
        return None


def directed_broadcast(ip: str, mask: str) -> Optional[str]:
    """The IPv4 directed broadcast of ``ip``/``mask`` (``pm_wol_broadcast``), else None."""
    prefix = netmask_prefix(mask)
    if prefix is None or prefix >= 31 or not ip:
        return None
    try:
        address = int.from_bytes(socket.inet_pton(socket.AF_INET, ip), "big")
    except (OSError, ValueError):
        return None  # IPv6 has no broadcast
    broadcast = address | ((1 << (32 - prefix)) - 1)
    return socket.inet_ntop(socket.AF_INET, broadcast.to_bytes(4, "big"))


def _lines(text: str) -> List[str]:
    return text.replace("\r\n", "\n").split("\n")


# ----------------------------------------------------------------------------
# pm.conf / vm.conf / .ctys

# ENUMERATE picks a PM config by ``#@#MAGICID-<OS>``; VM configs by the hypervisor.
PM_MAGICIDS = ("Linux", "FreeBSD", "OpenBSD", "SunOS")
VM_MAGICIDS = ("XEN", "QEMU", "VBOX", "VMW", "KVM")
EXCLUDING_MAGICIDS = ("IGNORE", "NOENUM")

# genmconf writes the first spelling, the ctys getters read the second.
KEY_ALIASES: Dict[str, Tuple[str, ...]] = {
    "VERSION": ("VERSION", "VERNO"),
    "VNCACCESSPORT": ("VNCACCESSPORT", "VNCPORT"),
    "VNCBASEPORT": ("VNCBASEPORT", "VNCBASE"),
    "VNCACCESSDISPLAY": ("VNCACCESSDISPLAY", "VNCDISPLAY"),
    "INST_HYPERREL": ("INST_HYPERREL", "HYPERREL"),
    "CTYSRELEASE": ("CTYSRELEASE", "CTYSREL"),
}
# Getters that turn spaces into '_' instead of keeping only the last word.
_UNDERSCORE_KEYS = frozenset(("DIST", "DISTREL", "OS", "OSREL"))
_KEY_LINE = re.compile(r'^ *#@#([A-Za-z0-9_]+) *= *"*([^"]*)"*')
_MAGIC = re.compile(r"#@#MAGICID-([A-Za-z0-9_]+)")
_IFACE_KEY = re.compile(r"^(MAC|IP)(\d*)$")


@dataclass
class Interface:
    """One interface address of a machine (one enum.fdb record)."""

    mac: str = ""
    ip: str = ""
    netmask: str = ""
    relay: str = ""
    ifname: str = ""
    ssh_ports: List[int] = field(default_factory=list)
    gateway: str = ""

    def as_dict(self) -> Dict[str, object]:
        return {
            "mac": self.mac,
            "ip": self.ip,
            "netmask": self.netmask,
            "relay": self.relay,
            "ifname": self.ifname,
            "ssh_ports": list(self.ssh_ports),
            "gateway": self.gateway,
        }


@dataclass
class ConfFile:
    """A parsed ``#@#`` file."""

    path: str
    magicids: List[str] = field(default_factory=list)
    values: Dict[str, str] = field(default_factory=dict)
    interfaces: List[Interface] = field(default_factory=list)
    issues: List[Issue] = field(default_factory=list)

    @property
    def magicid(self) -> Optional[str]:
        """The machine kind: the first MAGICID naming an OS or a hypervisor."""
        for magic in self.magicids:
            if magic in PM_MAGICIDS or magic in VM_MAGICIDS:
                return magic
        return None

    @property
    def enumerable(self) -> bool:
        """What ctys ENUMERATE would pick up: a known MAGICID and no IGNORE/NOENUM."""
        return self.magicid is not None and not any(m in EXCLUDING_MAGICIDS for m in self.magicids)

    def get(self, key: str, default: str = "") -> str:
        """The value of ``key`` accepting both the writer's and the reader's spelling."""
        for name in KEY_ALIASES.get(key, (key,)):
            if name in self.values:
                return self.values[name]
        return default

    @property
    def category(self) -> str:
        category = self.get("CATEGORY").upper()
        if category in ("PM", "VM"):
            return category
        return "VM" if self.magicid in VM_MAGICIDS else "PM"

    @property
    def session_type(self) -> str:
        """enum.fdb field 2: PM, VM (a guest's own vm.conf) or the hypervisor."""
        magic = self.magicid
        if magic in VM_MAGICIDS:
            return self.get("SESSIONTYPE") or magic
        return self.category


def _conf_value(key: str, raw: str) -> str:
    value = raw.strip()
    if key in _UNDERSCORE_KEYS:
        return value.replace(" ", "_")
    return value.rsplit(" ", 1)[-1] if " " in value else value


def parse_ip_value(value: str) -> List[Tuple[str, str, str, str, str, str]]:
    """``ip%mask%relay%ifname%sshports%gateway[,...]`` as 6-tuples (missing parts empty)."""
    tuples = []
    for part in value.split(","):
        part = part.strip()
        if not part:
            continue
        items = part.split("%")[:6]
        items += [""] * (6 - len(items))
        tuples.append(tuple(items))
    return tuples  # type: ignore[return-value]


def parse_ssh_ports(text: str) -> Optional[List[int]]:
    """``22`` or ``22-2222`` as ports; None when a part is not a port."""
    ports = ssh_ports_tuple(text)
    return None if ports is None else list(ports)


@functools.lru_cache(maxsize=256)  # a site uses few distinct port lists; 10,000 records repeat them
def ssh_ports_tuple(text: str) -> Optional[Tuple[int, ...]]:
    """:func:`parse_ssh_ports` as a tuple (cached, so it must not be mutable)."""
    ports: List[int] = []
    for part in text.split("-"):
        part = part.strip()
        if not part:
            continue
        if not part.isdigit() or not 1 <= int(part) <= 65535:
            return None
        ports.append(int(part))
    return tuple(ports)


def parse_conf(text: str, path: str = "<string>") -> ConfFile:
    """Parse a ctys ``#@#`` config as ctys's getters read it."""
    conf = ConfFile(path=path)
    positions: Dict[str, int] = {}
    for number, line in enumerate(_lines(text), 1):
        if "#@#" not in line:
            continue
        line = line.replace("\t", "").replace("'", '"')
        for magic in _MAGIC.findall(line):
            if magic not in conf.magicids:
                conf.magicids.append(magic)
        match = _KEY_LINE.match(line)
        if not match:
            continue
        key = match.group(1)
        if key in conf.values:
            if _IFACE_KEY.match(key):
                conf.issues.append(Issue(path, number, f"{key} is defined again (first on line {positions[key]}); the first is kept"))
            continue  # first occurrence wins
        conf.values[key] = _conf_value(key, match.group(2))
        positions[key] = number
    _conf_interfaces(conf, positions)
    return conf


def _conf_interfaces(conf: ConfFile, positions: Dict[str, int]) -> None:
    indexes: List[str] = []
    for key in conf.values:
        match = _IFACE_KEY.match(key)
        if match and match.group(2) not in indexes:
            indexes.append(match.group(2))
    indexes.sort(key=lambda index: -1 if index == "" else int(index))
    for index in indexes:
        mac_key, ip_key = f"MAC{index}", f"IP{index}"
        mac = ""
        raw_mac = conf.values.get(mac_key, "")
        if raw_mac:
            mac = normalize_mac(raw_mac) or ""
            if not mac:
                conf.issues.append(Issue(conf.path, positions[mac_key], f"{mac_key} '{raw_mac}' is not a MAC address; interface skipped"))
                continue
        tuples = parse_ip_value(conf.values.get(ip_key, ""))
        made = 0
        for ip, mask, relay, ifname, sshports, gateway in tuples:
            problem = _tuple_problem(ip, mask, sshports, gateway)
            if not ip and not mac:
                problem = f"has no address and {mac_key} is not set"
            if problem:
                conf.issues.append(Issue(conf.path, positions[ip_key], f"{ip_key} {problem}; address skipped"))
                continue
            conf.interfaces.append(
                Interface(mac, ip, mask, relay, ifname or (index or "0"), parse_ssh_ports(sshports) or [], gateway)
            )
            made += 1
        if not made and mac:
            conf.interfaces.append(Interface(mac=mac, ifname=index or "0"))


def _tuple_problem(ip: str, mask: str, sshports: str, gateway: str) -> str:
    if ip and not is_ip(ip):
        return f"address '{ip}' is not an IP address"
    if mask and netmask_prefix(mask) is None:
        return f"netmask '{mask}' is not a netmask"
    if ssh_ports_tuple(sshports) is None:
        return f"ssh ports '{sshports}' are not port numbers joined by '-'"
    if gateway and not is_ip(gateway):
        return f"gateway '{gateway}' is not an IP address"
    return ""


# Layout of ctys-genmconf's output (PM and VM variants), verbatim keys and padding.
@dataclass
class PmConf:
    """What ctys-genmconf writes into /etc/ctys.d/pm.conf (or vm.conf)."""

    host: str
    label: str
    id: str = "/etc/ctys.d/pm.conf"
    uuid: str = ""
    uid: str = "root"
    gid: str = "root"
    dist: str = ""
    distrel: str = ""
    os: str = "Linux"
    osrel: str = ""
    serno: str = ""
    category: str = "PM"
    arch: str = ""
    platform: str = ""
    stackcap: str = ""
    hwcap: str = ""
    vcpu: str = ""
    vram: str = ""
    gateway: str = ""
    interfaces: List[Interface] = field(default_factory=list)
    created_by: str = "ctys.pm.pm_info"
    ctysrel: str = ""
    date: str = ""


def _kv(key: str, value: str, width: int = 16) -> str:
    return f'#@#{key.ljust(width)}= "{value}"'


def format_pm_conf(conf: PmConf) -> str:
    """The file ctys-genmconf writes, with the same keys, order and padding.

    Values must not contain spaces or double quotes (ctys's getters keep only
    the last word and end a value at a quote); they are replaced by ``%`` and
    ``'``-free text here so the file reads back unchanged.
    """

    def clean(value: object) -> str:
        return str(value).replace('"', "").replace("'", "").replace("\n", " ").replace("\t", " ").strip().replace(" ", "%")

    magic = clean(conf.os) or "Linux"
    lines = [
        "#@#-----------------------------------------------------------",
        f"#@#Created by      = {clean(conf.created_by)}",
        f"#@#CTYSREL         = {clean(conf.ctysrel)}",
        "#@#VERNO           = 01.01.001a01",
        f"#@#DATE            = {clean(conf.date)}",
        "#@#-----------------------------------------------------------",
        "",
        '#@#The next entry is required as literally "#@#MAGICID-<plugin>"',
        "#@#where <plugin> is the enumerating plugin name.",
        f"#@#MAGICID-{magic}",
        _kv("HOST", clean(conf.host)),
        _kv("LABEL", clean(conf.label)),
        _kv("ID", clean(conf.id)),
        _kv("UUID", clean(conf.uuid)),
        "#@#VNCPORT         = ",
        "#@#VNCBASE         = ",
        "#@#VNCDISPLAY      = ",
        "#@#SPORT           = ",
        _kv("UID", clean(conf.uid)),
        _kv("GID", clean(conf.gid)),
        _kv("DIST", clean(conf.dist)),
        _kv("DISTREL", clean(conf.distrel)),
        _kv("OS", clean(conf.os)),
        _kv("OSREL", clean(conf.osrel)),
        f"#@#SERNO           = {clean(conf.serno)}",
        _kv("CATEGORY", clean(conf.category)),
        _kv("ARCH", clean(conf.arch)),
        _kv("PLATFORM", clean(conf.platform)),
        _kv("VMSTATE", "ACTIVE"),
    ]
    if conf.category == "VM":
        lines += [_kv("HYPERREL", ""), _kv("EXECLOCATION", "LOCAL"), _kv("RELOCCAP", "PINNED")]
    else:
        lines += [_kv("EXECLOCATION", "LOCAL"), _kv("RELOCCAP", "FIXED")]
    lines += [
        _kv("STACKCAP", clean(conf.stackcap)),
        _kv("STACKREQ", ""),
        _kv("HWCAP", clean(conf.hwcap)),
        _kv("HWREQ", ""),
        _kv("VCPU", clean(conf.vcpu)),
        _kv("VRAM", clean(conf.vram)),
        "",
        "#@#This value represents the KVM - here Keyboard-Mouse-Video -  port",
        "#@#CONSOLE_KVM     = ",
        "",
        "#@#This value represents the serial port",
        "#@#CONSOLE_COM     = ",
        "",
        _kv("GATEWAY", clean(conf.gateway)),
        "",
        "#@#Network interface, following is supported:",
        "#@#- One IP-address for each Etherner",
        "#@#- Multiple IP-addresses for arbitrary Ethernets",
        "#@#- MAC-address only",
        "#@#",
        _kv("CSTRG", "Generated%by%genmconf."),
        _kv("USTRG", ""),
    ]
    by_index: Dict[str, List[Interface]] = {}
    order: List[str] = []
    for iface in conf.interfaces:
        key = iface.mac or f"ip:{iface.ifname}"
        if key not in by_index:
            by_index[key] = []
            order.append(key)
        by_index[key].append(iface)
    for number, key in enumerate(order):
        group = by_index[key]
        mac = group[0].mac
        tuples = [
            "%".join(
                [
                    clean(i.ip),
                    clean(i.netmask),
                    clean(i.relay),
                    clean(i.ifname),
                    "-".join(str(p) for p in i.ssh_ports),
                    clean(i.gateway),
                ]
            )
            for i in group
            if i.ip
        ]
        if mac:
            lines.append(_kv(f"MAC{number}", mac.upper(), width=17))
        if tuples:
            lines.append(_kv(f"IP{number}", ",".join(tuples), width=17))
    return "\n".join(lines) + "\n"


# Lines that change on every genmconf run without the machine changing.
_VOLATILE = re.compile(r"^#@#(DATE|SERNO|Created by|CTYSREL) *=")


def conf_semantic_lines(text: str) -> List[str]:
    """The lines of a pm.conf that describe the machine (for idempotent rewrites)."""
    return [line.rstrip() for line in _lines(text) if not _VOLATILE.match(line)]


# ----------------------------------------------------------------------------
# enum.fdb

# The field names, their order and what each carries: fields.FIELDS.


@dataclass
class EnumRecord:
    """One enum.fdb line (fields 1..47 in ctys's canonical order)."""

    host: str = ""
    session_type: str = ""
    label: str = ""
    id: str = ""
    uuid: str = ""
    mac: str = ""
    tcp: str = ""
    display: str = ""
    cport: str = ""
    sport: str = ""
    vncbase: str = ""
    dist: str = ""
    distrel: str = ""
    os: str = ""
    osrel: str = ""
    verno: str = ""
    serno: str = ""
    category: str = ""
    vmstate: str = ""
    hyperrel: str = ""
    stackcap: str = ""
    stackreq: str = ""
    hwcap: str = ""
    hwreq: str = ""
    execlocation: str = ""
    reloccap: str = ""
    sshport: str = ""
    netname: str = ""
    hyperrelrun: str = ""
    accelerator: str = ""
    exepath: str = ""
    index: str = ""
    ifname: str = ""
    ctysrelease: str = ""
    netmask: str = ""
    gateway: str = ""
    relay: str = ""
    arch: str = ""
    platform: str = ""
    vram: str = ""
    vcpu: str = ""
    contextstrg: str = ""
    userstring: str = ""
    uid: str = ""
    gid: str = ""
    defhosts: str = ""
    defconsole: str = ""
    line: int = 0

    def to_line(self) -> str:
        values = [getattr(self, name) for name in ENUM_FIELD_NAMES]
        return ";".join(str(v).replace(";", ",").replace("\n", " ") for v in values)


if [f.name for f in fields(EnumRecord)][:ENUM_FIELDS] != list(ENUM_FIELD_NAMES):  # pragma: no cover - guards edits
    raise AssertionError("EnumRecord fields must start with ENUM_FIELD_NAMES")


def enum_rows(text: str, path: str = "enum.fdb") -> Tuple[List[Tuple[int, List[str]]], List[Issue]]:
    """The records of an enum.fdb as (line number, 47 fields in :data:`ENUM_FIELD_NAMES` order), MAC normalised.

    Lines without 47 fields or with a bad MAC, IP, netmask or SSH port are reported and skipped.
    The inventory reads 10,000-line files through this: plain lists cost far less than 47-field records.
    """
    rows: List[Tuple[int, List[str]]] = []
    issues: List[Issue] = []
    for number, line in enumerate(_lines(text), 1):
        stripped = line.lstrip()
        if not stripped or stripped[0] == "#":
            continue
        parts = line.split(";")
        if len(parts) == ENUM_FIELDS + 1 and parts[-1] == "":
            parts.pop()  # tolerate a trailing ';'
        if len(parts) != ENUM_FIELDS:
            issues.append(Issue(path, number, f"has {len(parts)} fields instead of {ENUM_FIELDS}; line skipped"))
            continue
        problem = _fields_problem(parts)
        if problem:
            issues.append(Issue(path, number, f"{problem}; line skipped"))
            continue
        rows.append((number, parts))
    return rows, issues


def _fields_problem(parts: List[str]) -> str:
    """Why an enum.fdb line is skipped, else ""; normalises the MAC in ``parts``."""
    if not parts[E_HOST] and not parts[E_LABEL]:
        return "has neither host (field 1) nor label (field 3)"
    raw_mac = parts[E_MAC]
    if raw_mac:
        mac = normalize_mac(raw_mac)
        if not mac:
            return f"MAC '{raw_mac}' (field 6) is not a MAC address"
        parts[E_MAC] = mac
    tcp = parts[E_TCP]
    if tcp and not is_ip(tcp):
        return f"TCP '{tcp}' (field 7) is not an IP address"
    netmask = parts[E_NETMASK]
    if netmask and netmask_prefix(netmask) is None:
        return f"netmask '{netmask}' (field 35) is not a netmask"
    sshport = parts[E_SSHPORT]
    if sshport and ssh_ports_tuple(sshport) is None:
        return f"SSH port '{sshport}' (field 27) is not port numbers joined by '-'"
    return ""


def enum_records_for(conf: ConfFile, host: str, uid: str = "", gid: str = "", netnames: Optional[Dict[str, str]] = None,
                     accelerator: str = "") -> List[EnumRecord]:
    """The records ctys's ENUMERATE emits for one config (one per interface address)."""
    copied: Dict[str, Any] = {f.name: conf.get(f.conf_key) for f in CONF_FIELDS if f.conf_key}
    base = EnumRecord(host=host, session_type=conf.session_type, id=conf.path, category=conf.category, accelerator=accelerator,
                      uid=uid, gid=gid, defhosts="VNC", defconsole="VNC", **copied)
    records = []
    for iface in conf.interfaces or [Interface()]:
        record = EnumRecord(**{f.name: getattr(base, f.name) for f in fields(EnumRecord)})
        record.mac = iface.mac
        record.tcp = iface.ip
        record.sshport = "-".join(str(p) for p in iface.ssh_ports)
        record.ifname = iface.ifname
        record.netmask = iface.netmask
        record.gateway = iface.gateway
        record.relay = iface.relay
        record.netname = (netnames or {}).get(iface.ip, "")
        records.append(record)
    return records


# ----------------------------------------------------------------------------
# macmap.fdb


@dataclass
class MacmapEntry:
    name: str
    mac: str
    ip: str = ""
    line: int = 0

    def to_line(self) -> str:
        return f"{self.name};{self.mac.upper()};{self.ip};"


def macmap_rows(text: str, path: str = "macmap.fdb") -> Tuple[List[Tuple[str, str, str, int]], List[Issue]]:
    """Entries of a macmap.fdb (``name;MAC;IP;``, the -n column order all ctys tools read) as (name, MAC, IP, line number)."""
    rows: List[Tuple[str, str, str, int]] = []
    issues: List[Issue] = []
    for number, line in enumerate(_lines(text), 1):
        stripped = line.strip()
        if not stripped or stripped.startswith("#"):
            continue
        parts = [part.strip() for part in stripped.split(";")]
        if parts and parts[-1] == "":
            parts.pop()
        if len(parts) < 2 or len(parts) > 3:
            issues.append(Issue(path, number, f"has {len(parts)} field(s) instead of 3 (name;MAC;IP;); line skipped"))
            continue
        name, raw_mac = parts[0], parts[1]
        ip = parts[2] if len(parts) > 2 else ""
        mac = normalize_mac(raw_mac)
        if not name:
            issues.append(Issue(path, number, "has an empty name; line skipped"))
        elif not mac:
            issues.append(Issue(path, number, f"MAC '{raw_mac}' is not a MAC address; line skipped"))
        elif ip and not is_ip(ip):
            issues.append(Issue(path, number, f"IP '{ip}' is not an IP address; line skipped"))
        else:
            rows.append((name, mac, ip, number))
    return rows, issues


def format_macmap(entries: Iterable[MacmapEntry]) -> str:
    """macmap.fdb text as ctys-extractMAClst writes it (sorted, MAC upper case, trailing ';')."""
    lines = sorted({entry.to_line() for entry in entries})
    return "".join(line + "\n" for line in lines)


# ----------------------------------------------------------------------------
# /etc/ethers


@dataclass
class EthersEntry:
    mac: str
    name: str
    line: int = 0


def parse_ethers(text: str, path: str = "/etc/ethers") -> Tuple[List[EthersEntry], List[Issue]]:
    entries: List[EthersEntry] = []
    issues: List[Issue] = []
    for number, line in enumerate(_lines(text), 1):
        stripped = line.split("#", 1)[0].strip()
        if not stripped:
            continue
        parts = stripped.split()
        if len(parts) != 2:
            issues.append(Issue(path, number, f"has {len(parts)} fields instead of 'MAC name'; line skipped"))
            continue
        mac = normalize_mac(parts[0])
        if not mac:
            issues.append(Issue(path, number, f"MAC '{parts[0]}' is not a MAC address; line skipped"))
            continue
        entries.append(EthersEntry(mac, parts[1], number))
    return entries, issues


def format_ethers(entries: Iterable[EthersEntry]) -> str:
    return "".join(f"{e.mac.lower()} {e.name}\n" for e in sorted(entries, key=lambda e: (e.name, e.mac)))


# ----------------------------------------------------------------------------
# group files


@dataclass
class GroupMember:
    """``[user@]name['(options)']``: a host, or another group when ``name`` resolves to one."""

    name: str
    user: str = ""
    options: str = ""
    line: int = 0


@dataclass
class GroupFile:
    path: str
    members: List[GroupMember] = field(default_factory=list)
    includes: List[Tuple[str, int]] = field(default_factory=list)
    context: str = ""
    issues: List[Issue] = field(default_factory=list)


_MEMBER = re.compile(r"^(?:([A-Za-z0-9_.+-]+)@)?([A-Za-z0-9_.:/+\[\]-]+)$")
_INCLUDE = re.compile(r"^#include(?:\s+(.*))?$")


def _split_members(text: str) -> Optional[List[Tuple[str, str]]]:
    """Split ``a,b c'(x, y)' d(z)`` into (address, options); None when a parenthesis is unbalanced."""
    out: List[Tuple[str, str]] = []
    word: List[str] = []
    options: List[str] = []
    depth = 0
    has_options = False

    def flush() -> None:
        nonlocal has_options
        name = "".join(word).strip()
        if name or has_options:
            out.append((name, "".join(options).strip()))
        word.clear()
        options.clear()
        has_options = False

    for char in text:
        if depth:
            if char == "(":
                depth += 1
            elif char == ")":
                depth -= 1
                if depth == 0:
                    continue
            options.append(char)
        elif char == "(":
            depth = 1
            has_options = True
        elif char == ")":
            return None
        elif char in " ,\t":
            flush()
        else:
            word.append(char)
    if depth:
        return None
    flush()
    return out


def parse_group(text: str, path: str = "<group>") -> GroupFile:
    """A ctys group file: members, ``#include`` targets, ``CONTEXT'(...)'`` options."""
    group = GroupFile(path=path)
    for number, raw in enumerate(_lines(text), 1):
        line = raw.replace('"', "").replace("'", "").strip()
        if not line:
            continue
        include = _INCLUDE.match(line)
        if include:
            names = [n for n in re.split(r"[\s,]+", include.group(1) or "") if n]
            if not names:
                group.issues.append(Issue(path, number, "#include names no group; line skipped"))
            group.includes.extend((name, number) for name in names)
            continue
        if line.startswith("#"):
            continue
        members = _split_members(line)
        if members is None:
            group.issues.append(Issue(path, number, "has unbalanced parentheses; line skipped"))
            continue
        for address, options in members:
            if address == "CONTEXT":
                if not group.context:
                    group.context = options
                continue
            match = _MEMBER.match(address)
            if not match:
                group.issues.append(Issue(path, number, f"member '{address}' is not [user@]host; member skipped"))
                continue
            group.members.append(GroupMember(match.group(2), match.group(1) or "", options, number))
    return group


@dataclass
class ResolvedGroup:
    """A group with its members and nested groups resolved against the groups path."""

    name: str
    path: str
    hosts: List[GroupMember] = field(default_factory=list)
    children: List[str] = field(default_factory=list)
    context: str = ""


def find_group(name: str, search_paths: Sequence[str], exists: Callable[[str], bool]) -> Optional[str]:
    """First ``<dir>/<name>`` in the groups path (ctys: CTYS_GROUPS_PATH, first match)."""
    if not name or name.startswith("/") or ".." in name.split("/"):
        return None
    for base in search_paths:
        candidate = base.rstrip("/") + "/" + name
        if exists(candidate):
            return candidate
    return None


def resolve_groups(
    names: Sequence[str],
    search_paths: Sequence[str],
    read: Callable[[str], str],
    exists: Callable[[str], bool],
    max_depth: int = 10,
) -> Tuple[Dict[str, ResolvedGroup], List[Issue]]:
    """Resolve the groups ``names`` (relative names such as ``tst/ctys-lab``) and every group they include.

    A member that names another group becomes a child group; ``#include`` does
    the same.  Cycles and nesting deeper than ``max_depth`` (CTYS_MAXRECURSE)
    are reported, not followed.
    """
    groups: Dict[str, ResolvedGroup] = {}
    issues: List[Issue] = []

    def visit(name: str, depth: int, stack: Tuple[str, ...]) -> None:
        if name in groups:
            return
        path = find_group(name, search_paths, exists)
        if path is None:
            return
        text = read(path)
        parsed = parse_group(text, path)
        issues.extend(parsed.issues)
        resolved = ResolvedGroup(name, path, context=parsed.context)
        groups[name] = resolved
        nested = list(parsed.includes)
        for member in parsed.members:
            if not member.user and not member.options and find_group(member.name, search_paths, exists) and member.name != name:
                nested.append((member.name, member.line))
            else:
                resolved.hosts.append(member)
        for child, line in nested:
            if child in stack or child == name:
                issues.append(Issue(path, line, f"group '{child}' includes itself; not followed"))
                continue
            if find_group(child, search_paths, exists) is None:
                issues.append(Issue(path, line, f"group '{child}' was not found in {':'.join(search_paths)}; skipped"))
                continue
            if depth + 1 > max_depth:
                issues.append(Issue(path, line, f"group '{child}' is nested deeper than {max_depth}; not followed"))
                continue
            if child not in resolved.children:
                resolved.children.append(child)
            visit(child, depth + 1, stack + (name,))

    for name in names:
        visit(name, 0, ())
    return groups, issues


# ----------------------------------------------------------------------------
# HWCAP / STACKCAP


def parse_hwcap(text: str) -> Dict[str, object]:
    """``CPU:2xIntel-6-15-11-4096KB-2400MHz-VMX-PAE,RAM:4018M,SWAP:8191M,...`` as a dict (unknown parts kept raw)."""
    # A fleet has few distinct machine types: parse each HWCAP once, hand out copies (callers may change them).
    return _copy_tree(_parse_hwcap_cached(text))


@functools.lru_cache(maxsize=1024)
def _parse_hwcap_cached(text: str) -> Dict[str, object]:
    return _parse_hwcap(text)  # shared: only ever handed out through _copy_tree


def _copy_tree(value: Dict[str, object]) -> Dict[str, object]:
    """A copy of nested dicts and lists; recursion only for containers (strings and ints are immutable)."""
    return {key: _copy_node(item) if type(item) in (dict, list) else item for key, item in value.items()}  # pylint: disable=unidiomatic-typecheck


def _copy_node(value: object) -> object:
    if type(value) is dict:  # pylint: disable=unidiomatic-typecheck
        return _copy_tree(value)
    return [_copy_node(item) if type(item) in (dict, list) else item for item in value]  # type: ignore[attr-defined]  # pylint: disable=unidiomatic-typecheck


def _parse_hwcap(text: str) -> Dict[str, object]:
    result: Dict[str, object] = {}
    extra: List[str] = []
    for part in text.split(","):
        part = part.strip()
        if not part:
            continue
        key, sep, value = part.partition(":")
        key = key.upper()
        if not sep:
            extra.append(part)
        elif key == "CPU":
            result["cpu"] = _parse_cpu(value)
        elif key in ("RAM", "SWAP", "HDD"):
            size = _megabytes(value)
            result[key.lower() + "_mb"] = size if size is not None else value
        elif key == "FS":
            filesystems = []
            for item in value.split("%"):
                mount, _sep, size_text = item.rpartition("-")
                megabytes = _megabytes(size_text)
                filesystems.append({"mount": mount, "size_mb": megabytes} if mount and megabytes is not None else {"raw": item})
            result["fs"] = filesystems
        else:
            extra.append(part)
    if extra:
        result["other"] = extra
    return result


_MEGABYTES = re.compile(r"^(\d+)M?$")


def _megabytes(text: str) -> Optional[int]:
    match = _MEGABYTES.match(text.strip())
    return int(match.group(1)) if match else None


def _parse_cpu(value: str) -> Dict[str, object]:
    cpu: Dict[str, object] = {"raw": value}
    count, sep, rest = value.partition("x")
    if not sep or not count.isdigit():
        return cpu
    cpu["count"] = int(count)
    parts = rest.split("-")
    names = ("vendor", "family", "model", "stepping", "cache")
    flags: List[str] = []
    for position, item in enumerate(parts):
        if position < len(names):
            cpu[names[position]] = item
        elif item.endswith("MHz") and item[:-3].isdigit():
            cpu["mhz"] = int(item[:-3])
        elif item:
            flags.append(item)
    cpu["flags"] = flags
    return cpu


def parse_stackcap(text: str) -> List[str]:
    """STACKCAP: one capability per comma-separated entry."""
    return list(_stackcap(text)[0])


def stackcap_wol(text: str) -> Optional[bool]:
    """True when the PM capability carries ``WoLTarget`` (ethtool may set WoL), None without a PM capability."""
    return _stackcap(text)[1]


@functools.lru_cache(maxsize=1024)  # machines of one kind share a STACKCAP
def _stackcap(text: str) -> Tuple[Tuple[str, ...], Optional[bool]]:
    entries = tuple(part.strip() for part in text.split(",") if part.strip())
    for entry in entries:
        head = entry.split("%", 1)[0]
        if head.startswith("PM-"):
            return entries, "WoLTarget" in head.split("-")
    return entries, None
