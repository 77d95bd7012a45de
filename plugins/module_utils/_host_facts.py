# Copyright: ctys.pm contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""What pm_info gathers on a machine (ctys LIST/INFO/ENUMERATE and ctys-genmconf), read-only.

Sources are files under ``/sys``, ``/proc`` and ``/etc`` plus two read-only
queries: ``ip -j addr`` (iproute2) and the ETHTOOL_GWOL ioctl (``ethtool IF``
when the ioctl is refused).  Every path is relative to ``root`` so tests can
point the gatherer at a prepared tree; commands go through ``run`` (argv
lists, never a shell).  Standard library only; Python 3.8+.
"""

from __future__ import annotations

import errno
import json
import os
import platform
import re
import shutil
import socket
import struct
from dataclasses import dataclass, field
from typing import Any, Callable, Dict, List, Optional, Sequence, Tuple

from ansible_collections.ctys.pm.plugins.module_utils._ctys.formats import (
    Interface,
    MacmapEntry,
    PmConf,
    conf_semantic_lines,
    enum_records_for,
    format_macmap,
    format_pm_conf,
    parse_conf,
)
from ansible_collections.ctys.pm.plugins.module_utils._errors import (
    PmError,
    PmInputError,
    PmPermissionError,
)
from ansible_collections.ctys.pm.plugins.module_utils._wol.bits import letters
from ansible_collections.ctys.pm.plugins.module_utils._wol.ethtool import (
    IoctlFn,
    parse_ethtool,
    read_wol,
)

Runner = Callable[[List[str]], Tuple[int, str, str]]

PM_VERSION = "01.11.018"  # the ctys PM plugin release whose behaviour this collection ports
VMSTACK_VERSION = "01.11.007"
ARPHRD_ETHER = 1
HYPERVISOR_COMMANDS = (
    ("QEMU", ("qemu-system-x86_64", "qemu-system-i386", "qemu-system-aarch64", "qemu-kvm", "qemu")),
    ("KVM", ("kvm",)),
    ("XEN", ("xl", "xm")),
    ("VBOX", ("VBoxManage",)),
    ("VMW", ("vmrun", "vmware", "vmplayer")),
    ("LIBVIRT", ("virsh",)),
)
VIRTUAL_VENDORS = ("QEMU", "KVM", "VMware", "VirtualBox", "innotek", "Xen", "Microsoft Corporation", "Bochs", "Parallels", "BHYVE")


@dataclass
class WolInfo:
    supported: str = ""  # ethtool letters, e.g. "pumbg"; "d" or "" = none
    enabled: str = ""
    source: str = ""  # ioctl | ethtool | none

    @property
    def capable(self) -> bool:
        return "g" in self.supported

    def as_dict(self) -> Dict[str, Any]:
        return {"supported": self.supported, "enabled": self.enabled, "capable": self.capable, "source": self.source}


@dataclass
class NetInterface:
    ifname: str
    mac: str = ""
    kind: str = ""  # ether, bridge, loopback, other
    operstate: str = ""
    addresses: List[Dict[str, Any]] = field(default_factory=list)
    bridge: str = ""
    bridge_ports: List[str] = field(default_factory=list)
    wol: WolInfo = field(default_factory=WolInfo)

    def as_dict(self) -> Dict[str, Any]:
        return {
            "ifname": self.ifname,
            "mac": self.mac,
            "kind": self.kind,
            "operstate": self.operstate,
            "addresses": list(self.addresses),
            "bridge": self.bridge,
            "bridge_ports": list(self.bridge_ports),
            "wol": self.wol.as_dict(),
        }


def _read(path: str) -> Optional[str]:
    try:
        with open(path, encoding="utf-8", errors="replace") as stream:
            return stream.read()
    except OSError:
        return None


def parse_ethtool_wol(text: str) -> WolInfo:
    """The Wake-on lines of ``ethtool IF`` output (the shared parser); no lines means no WoL support."""
    found = parse_ethtool(text)
    return WolInfo(
        supported="" if found.supported is None else letters(found.supported),
        enabled="" if found.wolopts is None else letters(found.wolopts),
        source="ethtool",
    )


def _parse_ip_json(text: str) -> Dict[str, List[Dict[str, Any]]]:
    result: Dict[str, List[Dict[str, Any]]] = {}
    try:
        links = json.loads(text or "[]")
    except ValueError:
        return result
    for link in links if isinstance(links, list) else []:
        name = link.get("ifname")
        if not name:
            continue
        for info in link.get("addr_info", []) or []:
            if info.get("family") not in ("inet", "inet6") or info.get("scope") in ("link", "host"):
                continue
            entry = {"address": info.get("local", ""), "prefix": int(info.get("prefixlen", 0)), "family": "ipv4" if info["family"] == "inet" else "ipv6"}
            if info.get("broadcast"):
                entry["broadcast"] = info["broadcast"]
            result.setdefault(name, []).append(entry)
    return result


def _netmask(prefix: int) -> str:
    return socket.inet_ntoa(struct.pack("!I", (0xFFFFFFFF << (32 - prefix)) & 0xFFFFFFFF)) if 0 <= prefix <= 32 else str(prefix)


@dataclass
class Gatherer:
    """Reads the machine; ``root`` prefixes every file path, ``run`` runs read-only commands."""

    run: Runner
    root: str = "/"
    ioctl: Optional[IoctlFn] = None  # SIOCETHTOOL; None: the kernel's
    which: Callable[[str], Optional[str]] = shutil.which

    def path(self, *parts: str) -> str:
        return os.path.join(self.root, *[p.lstrip("/") for p in parts])

    # --- network -----------------------------------------------------------------
    def interfaces(self) -> List[NetInterface]:
        base = self.path("/sys/class/net")
        try:
            names = sorted(os.listdir(base))
        except OSError:
            names = []
        addresses: Dict[str, List[Dict[str, Any]]] = {}
        rc, out, _err = self.run(["ip", "-j", "addr", "show"])
        if rc == 0:
            addresses = _parse_ip_json(out)
        result = []
        for name in names:
            folder = os.path.join(base, name)
            iface = NetInterface(ifname=name)
            iface.mac = (_read(os.path.join(folder, "address")) or "").strip().upper()
            link_type = (_read(os.path.join(folder, "type")) or "").strip()
            if os.path.isdir(os.path.join(folder, "bridge")):
                iface.kind = "bridge"
                try:
                    iface.bridge_ports = sorted(os.listdir(os.path.join(folder, "brif")))
                except OSError:
                    pass
            elif name == "lo" or link_type == "772":
                iface.kind = "loopback"
            elif link_type == str(ARPHRD_ETHER):
                iface.kind = "ether"
            else:
                iface.kind = "other"
            master = os.path.join(folder, "brport", "bridge")
            if os.path.islink(master):
                iface.bridge = os.path.basename(os.readlink(master))
            iface.operstate = (_read(os.path.join(folder, "operstate")) or "").strip()
            for entry in addresses.get(name, []):
                entry = dict(entry)
                if entry["family"] == "ipv4":
                    entry["netmask"] = _netmask(entry["prefix"])
                iface.addresses.append(entry)
            if iface.kind == "ether":
                iface.wol = self.wol(name)
            result.append(iface)
        return result

    def wol(self, ifname: str) -> WolInfo:
        try:
            supported, enabled, _sopass = read_wol(ifname, self.ioctl)
            return WolInfo(letters(supported), letters(enabled), "ioctl")
        except OSError as error:
            if error.errno in (errno.EOPNOTSUPP, errno.ENODEV, errno.EINVAL):
                return WolInfo("", "", "ioctl")  # veth, virtio and friends: no WoL at all
        if self.which("ethtool"):
            rc, out, _err = self.run(["ethtool", ifname])
            if rc == 0:
                return parse_ethtool_wol(out)
        return WolInfo("", "", "none")

    def gateway(self) -> str:
        text = _read(self.path("/proc/net/route")) or ""
        for line in text.splitlines()[1:]:
            parts = line.split()
            if len(parts) > 3 and parts[1] == "00000000" and int(parts[3], 16) & 2:
                return socket.inet_ntoa(struct.pack("<I", int(parts[2], 16)))
        return ""

    def ssh_ports(self) -> List[int]:
        """sshd_config ``Port`` and ``ListenAddress host:port`` lines, as ctys-genmconf reads them."""
        text = _read(self.path("/etc/ssh/sshd_config")) or ""
        ports: List[int] = []
        for line in text.splitlines():
            words = line.split("#", 1)[0].split()
            if len(words) < 2:
                continue
            value = None
            if words[0].lower() == "port" and words[1].isdigit():
                value = int(words[1])
            elif words[0].lower() == "listenaddress":
                match = re.match(r"^(\[[^\]]+\]|[^:\[\]]+):(\d+)$", words[1])
                value = int(match.group(2)) if match else None
            if value and value not in ports:
                ports.append(value)
        return ports or [22]

    # --- system ------------------------------------------------------------------
    def os_release(self) -> Dict[str, str]:
        text = _read(self.path("/etc/os-release")) or _read(self.path("/usr/lib/os-release")) or ""
        values: Dict[str, str] = {}
        for line in text.splitlines():
            key, sep, value = line.partition("=")
            if sep:
                values[key.strip()] = value.strip().strip('"').strip("'")
        return values

    def uuid(self) -> Tuple[str, str]:
        for path, source in (("/sys/class/dmi/id/product_uuid", "dmi"), ("/etc/machine-id", "machine-id")):
            text = (_read(self.path(path)) or "").strip()
            if text:
                return text.replace("-", "").lower(), source
        return "", "none"

    def cpu(self) -> Dict[str, Any]:
        text = _read(self.path("/proc/cpuinfo")) or ""
        first: Dict[str, str] = {}
        count = 0
        for line in text.splitlines():
            key, sep, value = line.partition(":")
            if not sep:
                continue
            key = key.strip()
            if key == "processor":
                count += 1
            elif count == 1:
                first.setdefault(key, value.strip())
        flags = first.get("flags", "").split()
        marks = [mark for flag, mark in (("vmx", "VMX"), ("svm", "SVM"), ("pae", "PAE")) if flag in flags]
        mhz = first.get("cpu MHz", "")
        return {
            "count": count or os.cpu_count() or 1,
            "vendor": first.get("vendor_id", ""),
            "family": first.get("cpu family", ""),
            "model": first.get("model", ""),
            "stepping": first.get("stepping", ""),
            "cache": first.get("cache size", "").replace(" ", ""),
            "mhz": int(float(mhz)) if re.match(r"^\d+(\.\d+)?$", mhz) else 0,
            "flags": marks,
            "hypervisor_flag": "hypervisor" in flags,
        }

    def memory(self) -> Tuple[int, int]:
        text = _read(self.path("/proc/meminfo")) or ""
        values = {}
        for line in text.splitlines():
            match = re.match(r"^(\w+):\s+(\d+)\s*kB", line)
            if match:
                values[match.group(1)] = int(match.group(2)) // 1024
        return values.get("MemTotal", 0), values.get("SwapTotal", 0)

    def virtualization(self, cpu: Dict[str, Any]) -> str:
        """The hypervisor vendor if this OS runs in a VM, else ''."""
        for name in ("sys_vendor", "product_name", "bios_vendor"):
            text = (_read(self.path("/sys/class/dmi/id", name)) or "").strip()
            for vendor in VIRTUAL_VENDORS:
                if vendor.lower() in text.lower():
                    return vendor
        if os.path.exists(self.path("/proc/xen/capabilities")) and "control_d" not in (_read(self.path("/proc/xen/capabilities")) or ""):
            return "Xen"
        return "hypervisor" if cpu.get("hypervisor_flag") else ""

    def hypervisors(self) -> List[str]:
        found = []
        for name, commands in HYPERVISOR_COMMANDS:
            if any(self.which(command) for command in commands):
                found.append(name)
        if os.path.exists(self.path("/dev/kvm")) and "KVM" not in found:
            found.append("KVM")
        if "control_d" in (_read(self.path("/proc/xen/capabilities")) or "") and "XEN" not in found:
            found.append("XEN")
        return found

    def ctys_config(self, config_dir: str) -> Dict[str, Any]:
        """The local /etc/ctys.d: pm.conf or vm.conf (never both) and STACKLEVEL.assume."""
        result: Dict[str, Any] = {"dir": config_dir, "path": None, "values": {}, "interfaces": [], "stack_level": None, "issues": []}
        present = []
        for name in ("pm.conf", "vm.conf"):
            path = os.path.join(config_dir, name)
            text = _read(self.path(path))
            if text is not None:
                present.append((path, text))
        if len(present) == 2:
            result["issues"].append("both pm.conf and vm.conf exist (ctys: 'Ambiguous definition, only one could be active'); pm.conf is used")
        if present:
            path, text = present[0]
            conf = parse_conf(text, path)
            result.update(path=path, values=dict(conf.values), interfaces=[i.as_dict() for i in conf.interfaces], magicid=conf.magicid,
                          enumerable=conf.enumerable)
            result["issues"].extend(str(issue) for issue in conf.issues)
        assume = parse_conf(_read(self.path(os.path.join(config_dir, "STACKLEVEL.assume"))) or "")
        level = assume.values.get("STACKLEVEL", "")
        if level.isdigit():
            result["stack_level"] = int(level)
        return result


@dataclass
class Options:
    label: Optional[str] = None
    category: str = "auto"
    record: str = "WITHIP"
    ssh_ports: Optional[List[int]] = None
    config_dir: str = "/etc/ctys.d"
    write_config: Optional[str] = None


def check_options(params: Dict[str, Any]) -> Options:
    options = Options(
        label=params.get("label") or None,
        category=str(params.get("category") or "auto"),
        record=str(params.get("record") or "WITHIP"),
        ssh_ports=params.get("ssh_ports") or None,
        config_dir=str(params.get("config_dir") or "/etc/ctys.d"),
        write_config=params.get("write_config") or None,
    )
    if options.label is not None and not re.match(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,252}$", options.label):
        raise PmInputError(f"label '{options.label}' is not valid; use a host name of letters, digits, '.', '_' and '-' such as lab01")
    if options.category not in ("auto", "PM", "VM"):
        raise PmInputError(f"category '{options.category}' is not valid; use auto, PM or VM")
    if options.record not in ("WITHIP", "WITHMAC", "ALL"):
        raise PmInputError(f"record '{options.record}' is not valid; use WITHIP, WITHMAC or ALL (as ctys-genmconf -r)")
    for port in options.ssh_ports or []:
        if not isinstance(port, int) or not 1 <= port <= 65535:
            raise PmInputError(f"ssh_ports '{port}' is outside 1..65535; use port numbers such as 22")
    if options.write_config is not None and (not os.path.isabs(options.write_config) or options.write_config.endswith("/")):
        raise PmInputError(f"write_config '{options.write_config}' is not an absolute file path; use a path such as /etc/ctys.d/pm.conf")
    return options


def conf_interfaces(interfaces: Sequence[NetInterface], record: str, ssh_ports: Sequence[int], gateway: str) -> List[Interface]:
    """The MAC<n>/IP<n> entries ctys-genmconf writes: one per Ethernet, IPs of its bridge (relay) when it is a bridge port."""
    by_name = {i.ifname: i for i in interfaces}
    result: List[Interface] = []
    for iface in interfaces:
        if iface.kind != "ether" or not iface.mac or iface.mac == "00:00:00:00:00:00":
            continue
        addresses = list(iface.addresses)
        relay = ""
        if iface.bridge and iface.bridge in by_name:
            relay = iface.bridge
            addresses = addresses or list(by_name[iface.bridge].addresses)
        if not addresses:
            if record in ("WITHMAC", "ALL"):
                result.append(Interface(mac=iface.mac, relay=relay, ifname=iface.ifname))
            continue
        if record == "WITHMAC":
            result.append(Interface(mac=iface.mac, relay=relay, ifname=iface.ifname))
            continue
        for address in addresses:
            mask = address.get("netmask") or str(address.get("prefix", ""))
            result.append(Interface(iface.mac, address["address"], mask, relay, iface.ifname, list(ssh_ports),
                                    gateway if address["family"] == "ipv4" else ""))
    return result


def gather(gatherer: Gatherer, options: Options) -> Dict[str, Any]:
    """Everything pm_info reports, plus the pm.conf, enum.fdb and macmap.fdb lines ctys would write."""
    hostname = socket.gethostname()
    label = options.label or hostname.split(".")[0]
    interfaces = gatherer.interfaces()
    release = gatherer.os_release()
    uuid, uuid_source = gatherer.uuid()
    cpu = gatherer.cpu()
    ram, swap = gatherer.memory()
    virt = gatherer.virtualization(cpu)
    hypervisors = gatherer.hypervisors()
    ctys = gatherer.ctys_config(options.config_dir)
    gateway = gatherer.gateway()
    ssh_ports = list(options.ssh_ports or gatherer.ssh_ports())
    if options.category != "auto":
        category = options.category
    elif ctys["path"] and ctys["path"].endswith("vm.conf"):
        category = "VM"
    elif ctys["path"]:
        category = "PM"
    else:
        category = "VM" if virt else "PM"
    stack_level = 0 if category == "PM" else (ctys["stack_level"] if ctys["stack_level"] is not None else 1)
    system, osrel, arch = platform.system(), platform.release(), platform.machine()
    dist = release.get("ID", "") or release.get("NAME", "")
    distrel = release.get("VERSION_ID", "")
    wol_target = any(i.wol.capable for i in interfaces)
    wol_tokens = (["WoLTarget"] if wol_target else []) + (["WoLRemote"] if any(gatherer.which(c) for c in ("ether-wake", "etherwake", "wakeonlan")) else [])
    wol_tokens += ["WoLLocal"] if system == "Linux" else []
    stackcap = "-".join(["PM", PM_VERSION, arch] + wol_tokens) + f"%VMStack-{VMSTACK_VERSION}%{dist}-{distrel}%{system}-{osrel}-{arch}"
    stackcap = ",".join([stackcap] + [f"{name}-{PM_VERSION}" for name in hypervisors if name in ("QEMU", "XEN", "VBOX", "VMW")])
    cpu_text = f"CPU:{cpu['count']}x{cpu['vendor']}-{cpu['family']}-{cpu['model']}-{cpu['stepping']}-{cpu['cache']}-{cpu['mhz']}MHz"
    hwcap = ",".join([cpu_text + "".join("-" + flag for flag in cpu["flags"]), f"RAM:{ram}M", f"SWAP:{swap}M"])
    config_path = options.write_config or os.path.join(options.config_dir, "vm.conf" if category == "VM" else "pm.conf")
    pm_conf = PmConf(
        host=hostname, label=label, id=config_path, uuid=uuid, uid="root" if os.geteuid() == 0 else str(os.geteuid()),
        gid="root" if os.getegid() == 0 else str(os.getegid()), dist=dist, distrel=distrel, os=system, osrel=osrel, category=category,
        arch=arch, platform=arch, stackcap=stackcap, hwcap=hwcap, vcpu=str(cpu["count"]), vram=f"{ram}M", gateway=gateway,
        interfaces=conf_interfaces(interfaces, options.record, ssh_ports, gateway),
    )
    parsed = parse_conf(format_pm_conf(pm_conf), config_path)
    accelerator = "VMX" if "VMX" in cpu["flags"] else ("SVN" if "SVM" in cpu["flags"] else "")
    records = enum_records_for(parsed, label, uid=pm_conf.uid, gid=pm_conf.gid, accelerator=accelerator)
    first_ip: Dict[str, str] = {}
    for iface in parsed.interfaces:
        if iface.mac and (iface.mac not in first_ip or (not first_ip[iface.mac] and ":" not in iface.ip)):
            first_ip[iface.mac] = iface.ip if ":" not in iface.ip else ""
    macmap = format_macmap(MacmapEntry(label, mac, ip) for mac, ip in first_ip.items())
    machine = {
        "hostname": hostname,
        "label": label,
        "category": category,
        "stack_level": stack_level,
        "virtualization": virt,
        "os": system,
        "osrel": osrel,
        "dist": dist,
        "distrel": distrel,
        "dist_name": release.get("PRETTY_NAME", ""),
        "arch": arch,
        "uuid": uuid,
        "uuid_source": uuid_source,
        "cpus": cpu["count"],
        "cpu": {k: v for k, v in cpu.items() if k != "hypervisor_flag"},
        "memory_mb": ram,
        "swap_mb": swap,
        "gateway": gateway,
        "ssh_ports": ssh_ports,
        "hypervisors": hypervisors,
        "wol_capable": wol_target,
        "stackcap": stackcap,
        "hwcap": hwcap,
        "interfaces": [i.as_dict() for i in interfaces if i.kind != "loopback"],
        "ctys_config": ctys if ctys["path"] or ctys["stack_level"] is not None else None,
    }
    return {
        "machine": machine,
        "pm_conf": pm_conf,
        "config_path": config_path,
        "enum_records": [r.to_line() for r in records],
        "macmap_records": [line for line in macmap.splitlines() if line],
    }


def write_config(path: str, text: str, check_mode: bool) -> Tuple[bool, str]:
    """Write ``text`` to ``path`` unless the file already describes the same machine (DATE/SERNO aside)."""
    try:
        with open(path, encoding="utf-8", errors="replace") as stream:
            before = stream.read()
    except FileNotFoundError:
        before = ""
    except OSError as error:
        raise PmPermissionError(f"write_config '{path}' cannot be read ({error.strerror}); run as root (become: true) or choose another path") from None
    if before and conf_semantic_lines(before) == conf_semantic_lines(text):
        return False, before
    if check_mode:
        return True, before
    folder = os.path.dirname(path)
    try:
        os.makedirs(folder, mode=0o755, exist_ok=True)
        temp = os.path.join(folder, f".{os.path.basename(path)}.{os.getpid()}.tmp")
        with open(temp, "w", encoding="utf-8") as stream:
            stream.write(text)
        os.chmod(temp, 0o644)
        os.replace(temp, path)
    except OSError as error:
        raise PmPermissionError(f"write_config '{path}' cannot be written ({error.strerror}); run as root (become: true) or choose another path") from None
    return True, before


def backend(params: Dict[str, Any], run: Runner, check_mode: bool, diff: bool, now: Callable[[], str],
            gatherer: Optional[Gatherer] = None) -> Dict[str, Any]:
    options = check_options(params)
    facts = gather(gatherer or Gatherer(run=run), options)
    result: Dict[str, Any] = {
        "changed": False,
        "machine": facts["machine"],
        "enum_records": facts["enum_records"],
        "macmap_records": facts["macmap_records"],
        "config_path": facts["config_path"],
    }
    conf: PmConf = facts["pm_conf"]
    conf.date = conf.serno = now()
    text = format_pm_conf(conf)
    result["pm_conf"] = text
    if options.write_config:
        changed, before = write_config(options.write_config, text, check_mode)
        result["changed"] = changed
        if diff:
            result["diff"] = {"before": before, "after": text if changed else before, "before_header": options.write_config,
                              "after_header": options.write_config}
    return result


__all__ = ["Gatherer", "Options", "PmError", "backend", "check_options", "gather", "parse_ethtool_wol", "write_config"]
