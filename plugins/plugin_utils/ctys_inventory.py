# Copyright: ctys.pm contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""From ctys files to hosts, host variables and groups (the work of the ``ctys.pm.ctys`` inventory plugin).

:func:`collect_sources` reads the files named by the plugin's options;
:func:`build_inventory` turns them into a JSON-serialisable dict
``{"hosts": {name: vars}, "groups": {name: {"hosts", "children", "vars"}}, "warnings": [...]}``
which the plugin caches and hands to Ansible.  No Ansible imports here, so the
benchmark and the unit tests call it directly.
"""

from __future__ import annotations

import gc
import glob
import hashlib
import os
import re
from dataclasses import dataclass, field
from operator import itemgetter
from typing import Any, Dict, List, Optional, Sequence, Tuple

from ansible_collections.ctys.pm.plugins.module_utils._ctys.fields import (
    E_CATEGORY,
    E_GATEWAY,
    E_HOST,
    E_IFNAME,
    E_MAC,
    E_NETMASK,
    E_RELAY,
    E_SESSION_TYPE,
    E_SSHPORT,
    E_TCP,
    ENUM_INDEX,
    HOST_VAR_FIELDS,
)
from ansible_collections.ctys.pm.plugins.module_utils._ctys.formats import (
    ConfFile,
    CtysFileError,
    Interface,
    Issue,
    ResolvedGroup,
    directed_broadcast,
    enum_rows,
    macmap_rows,
    parse_conf,
    parse_ethers,
    parse_hwcap,
    parse_stackcap,
    resolve_groups,
    ssh_ports_tuple,
    stackcap_wol,
)

DEFAULT_DB_PATH = "~/.ctys/db/default"
DEFAULT_GROUPS_PATH = "~/.ctys/groups"
HOST_KEYS = ("label", "netname", "host")


@dataclass
class SourceFile:
    path: str
    text: str
    containing: str = ""  # config files: the machine the VM configs live on


@dataclass
class Sources:
    """Everything read from disk; tests build this directly."""

    enum_files: List[SourceFile] = field(default_factory=list)
    macmap_files: List[SourceFile] = field(default_factory=list)
    config_files: List[SourceFile] = field(default_factory=list)
    ethers: Optional[SourceFile] = None
    groups: Dict[str, ResolvedGroup] = field(default_factory=dict)
    issues: List[Issue] = field(default_factory=list)
    fingerprint: str = ""


def _read(path: str) -> str:
    try:
        with open(path, encoding="utf-8", errors="replace") as stream:
            return stream.read()
    except FileNotFoundError:
        raise CtysFileError(f"'{path}' does not exist; create it or remove it from the inventory configuration") from None
    except OSError as error:
        raise CtysFileError(f"'{path}' cannot be read ({error.strerror}); check its permissions") from None


def _has_magic(pattern: str) -> bool:
    return any(char in pattern for char in "*?[")


def collect_sources(
    db_paths: Sequence[str] = (DEFAULT_DB_PATH,),
    config_files: Sequence[Any] = (),
    groups_paths: Sequence[str] = (DEFAULT_GROUPS_PATH,),
    ethers: Optional[str] = None,
    explicit_db: bool = True,
    explicit_groups: bool = True,
) -> Sources:
    """Read the files the options name.

    A file or folder named explicitly that does not exist raises
    :class:`CtysFileError`; the defaults (``~/.ctys/db/default``,
    ``~/.ctys/groups``) may be missing.  ``config_files`` items are globs or
    ``{"glob": ..., "host": ...}`` where ``host`` is the machine the VMs run on.
    """
    sources = Sources()
    stamp: List[str] = []

    def remember(path: str) -> None:
        try:
            info = os.stat(path)
            stamp.append(f"{path}:{info.st_mtime_ns}:{info.st_size}")
        except OSError:
            stamp.append(f"{path}:missing")

    for raw in db_paths:
        folder = os.path.expanduser(str(raw))
        if not os.path.isdir(folder):
            if explicit_db:
                raise CtysFileError(f"db_paths '{raw}' is not a folder; give folders that hold enum.fdb and macmap.fdb")
            continue
        enum_path, macmap_path = os.path.join(folder, "enum.fdb"), os.path.join(folder, "macmap.fdb")
        if explicit_db and not os.path.exists(enum_path) and not os.path.exists(macmap_path):
            raise CtysFileError(f"db_paths '{raw}' holds neither enum.fdb nor macmap.fdb; run playbooks/enumerate.yml or ctys-vdbgen to create them")
        if os.path.exists(enum_path):
            sources.enum_files.append(SourceFile(enum_path, _read(enum_path)))
            remember(enum_path)
        if os.path.exists(macmap_path):
            sources.macmap_files.append(SourceFile(macmap_path, _read(macmap_path)))
            remember(macmap_path)

    for item in config_files:
        if isinstance(item, dict):
            pattern, containing = str(item.get("glob") or item.get("path") or ""), str(item.get("host") or "")
        else:
            pattern, containing = str(item), ""
        expanded = os.path.expanduser(pattern)
        if _has_magic(expanded):
            matches = sorted(glob.glob(expanded, recursive=True))
        elif os.path.exists(expanded):
            matches = [expanded]
        else:
            raise CtysFileError(f"config_files '{pattern}' does not exist; give an existing pm.conf, vm.conf or .ctys file or a glob")
        for path in matches:
            if os.path.isfile(path):
                sources.config_files.append(SourceFile(path, _read(path), containing))
                remember(path)

    if ethers:
        path = os.path.expanduser(ethers)
        if not os.path.isfile(path):
            raise CtysFileError(f"ethers '{ethers}' does not exist; give an existing /etc/ethers style file or leave ethers unset")
        sources.ethers = SourceFile(path, _read(path))
        remember(path)

    search: List[str] = []
    names: List[str] = []
    for raw in groups_paths:
        folder = os.path.expanduser(str(raw))
        if not os.path.isdir(folder):
            if explicit_groups:
                raise CtysFileError(f"groups_paths '{raw}' is not a folder; give folders of ctys group files")
            continue
        search.append(folder)
        for root, dirs, files in os.walk(folder):
            dirs.sort()
            for name in sorted(files):
                if name.startswith(".") or name.endswith("~"):
                    continue
                relative = os.path.relpath(os.path.join(root, name), folder).replace(os.sep, "/")
                if relative not in names:
                    names.append(relative)
                remember(os.path.join(root, name))
    if names:
        sources.groups, issues = resolve_groups(names, search, _read, os.path.isfile)
        sources.issues.extend(issues)
    sources.fingerprint = hashlib.sha1("\n".join(stamp).encode()).hexdigest()
    return sources


# ----------------------------------------------------------------------------


class Machine:
    """One host being assembled; a plain slotted class, as 10,000 of them are made per parse."""

    __slots__ = ("name", "category", "session_type", "containing", "values", "interfaces", "ctys_groups", "ansible_user")

    def __init__(self, name: str, category: str = "", session_type: str = "", values: Optional[Dict[str, str]] = None) -> None:
        self.name = name
        self.category = category
        self.session_type = session_type
        self.containing: List[str] = []
        self.values: Dict[str, str] = {} if values is None else values  # taken over, not copied; "" means unknown
        self.interfaces: List[Interface] = []
        self.ctys_groups: Dict[str, Dict[str, str]] = {}
        self.ansible_user = ""

    def merge(self, values: Dict[str, str], interfaces: Sequence[Interface]) -> None:
        mine = self.values
        for key, value in values.items():
            if value and not mine.get(key):
                mine[key] = value
        if not interfaces:
            return
        if not self.interfaces and len(interfaces) == 1:
            self.interfaces.append(interfaces[0])  # nothing to compare with
            return
        known = {(i.mac, i.ip) for i in self.interfaces}
        for iface in interfaces:
            if (iface.mac, iface.ip) not in known:
                self.interfaces.append(iface)
                known.add((iface.mac, iface.ip))

    def primary(self) -> Optional[Interface]:
        """The first interface with an IP and SSH ports, else the first with an IP."""
        first: Optional[Interface] = None
        for iface in self.interfaces:
            if iface.ip:
                if iface.ssh_ports:
                    return iface
                if first is None:
                    first = iface
        return first

    def hostvars(self) -> Dict[str, Any]:
        out: Dict[str, Any] = {}
        interfaces = self.interfaces
        primary = self.primary()
        if primary is not None:
            out["ansible_host"] = primary.ip
            if primary.ssh_ports:
                out["ansible_port"] = primary.ssh_ports[0]
        if self.ansible_user:
            out["ansible_user"] = self.ansible_user
        mac_iface = primary if primary is not None and primary.mac else next((i for i in interfaces if i.mac), None)
        if mac_iface is not None:
            out["pm_mac"] = mac_iface.mac.lower()
            broadcast = directed_broadcast(mac_iface.ip, mac_iface.netmask)
            if broadcast:
                out["pm_wol_broadcast"] = broadcast
        out["pm_interfaces"] = [{**i.as_dict(), "mac": i.mac.lower()} for i in interfaces]
        if self.category:
            out["pm_category"] = self.category
        if self.session_type:
            out["pm_session_type"] = self.session_type
        if self.category == "VM" and self.containing:
            out["pm_containing_machine"] = self.containing[0]
        values = self.values
        for key, var, form in _HOST_VARS:
            value = values.get(key)
            if not value:
                continue
            if form == "text":
                out[var] = value
            elif form == "hwcap":
                out[var] = parse_hwcap(value)
            else:  # stackcap
                out[var] = parse_stackcap(value)
                wol = stackcap_wol(value)
                if wol is not None:
                    out["pm_wol_capable"] = wol
        if self.ctys_groups:
            out["pm_ctys_groups"] = self.ctys_groups
        return out


# (field, host variable, form) from fields.FIELDS; "host" is read too: it names the machine (HOST_KEYS).
_HOST_VARS = tuple((f.name, f.host_var or "", f.form) for f in HOST_VAR_FIELDS)
_VALUE_KEYS = ("host",) + tuple(f.name for f in HOST_VAR_FIELDS)
# enum.fdb fields of _VALUE_KEYS, taken from a split line in one C call
_ENUM_VALUES = itemgetter(*(ENUM_INDEX[key] for key in _VALUE_KEYS))
# host_key -> the values tried in turn for the host name
_NAME_ORDER = {"label": ("label", "host", "netname"), "netname": ("netname", "label", "host"), "host": ("host", "netname", "label")}
_UNSAFE_NAME = re.compile(r"[^A-Za-z0-9_]")


def safe_group_name(name: str) -> str:
    """Ansible's to_safe_group_name without importing Ansible: invalid characters become ``_``."""
    return _UNSAFE_NAME.sub("_", name)


_CONF_VALUES = tuple((f.name, f.conf_key) for f in HOST_VAR_FIELDS if f.conf_key)


def _conf_values(conf: ConfFile) -> Dict[str, str]:
    """A config file's values under the enum.fdb field names (as its enum.fdb records would carry them)."""
    values = {name: conf.get(key) for name, key in _CONF_VALUES}
    host = conf.get("HOST")
    values["label"] = values["label"] or host.split(".")[0]
    values["netname"] = host.rstrip(".")
    values["host"] = host
    values["id"] = conf.path
    return values


def _name_for(values: Dict[str, str], host_key: str) -> str:
    for key in _NAME_ORDER[host_key]:
        if values.get(key):
            return values[key]
    return ""


def build_inventory(sources: Sources, host_key: str = "label", group_users: bool = True, groups_prefix: str = "ctys_group_",
                    macmap_hosts: bool = True) -> Dict[str, Any]:
    """Hosts, their variables and groups from the ctys files in ``sources``."""
    if host_key not in HOST_KEYS:
        raise CtysFileError(f"host_key '{host_key}' is not valid; use one of {', '.join(HOST_KEYS)}")
    # Some 20 containers per machine and no reference cycles: the cyclic collector would only walk the
    # growing heap (all of Ansible's too) again and again, about a fifth of the time here. Paused, not tuned.
    collecting = gc.isenabled()
    gc.disable()
    try:
        return _build(sources, host_key, group_users, groups_prefix, macmap_hosts)
    finally:
        if collecting:
            gc.enable()


def _build(sources: Sources, host_key: str, group_users: bool, groups_prefix: str, macmap_hosts: bool) -> Dict[str, Any]:
    issues: List[Issue] = list(sources.issues)
    machines: Dict[str, Machine] = {}

    def machine(name: str, category: str, session_type: str, values: Dict[str, str]) -> Machine:
        """The machine called ``name``, made with ``values`` (taken over) or with them merged in."""
        found = machines.get(name)
        if found is None:
            found = machines[name] = Machine(name, category.upper(), session_type.upper(), values)
        else:
            found.category = found.category or category.upper()
            found.session_type = found.session_type or session_type.upper()
            found.merge(values, ())
        return found

    # macmap: MAC -> IP, to fill the TCP of enum records (ctys-vhost statcache)
    macmap_entries: List[Tuple[str, str, str, int]] = []
    for source in sources.macmap_files:
        rows, found = macmap_rows(source.text, source.path)
        issues.extend(found)
        macmap_entries.extend(rows)
    ip_by_mac: Dict[str, str] = {}
    for _name, mac, ip, _number in macmap_entries:
        if ip:
            ip_by_mac.setdefault(mac, ip)

    # The hot loop (one pass per enum.fdb line): fields by index, no per-record objects but the Interface.
    for source in sources.enum_files:
        enum_lines, found = enum_rows(source.text, source.path)
        issues.extend(found)
        for number, parts in enum_lines:
            values = dict(zip(_VALUE_KEYS, _ENUM_VALUES(parts)))
            record_host, session_type = parts[E_HOST], parts[E_SESSION_TYPE]
            upper_type = session_type.upper()
            values["netname"] = values["netname"].rstrip(".")
            if upper_type != "PM" and parts[E_CATEGORY].upper() != "PM":
                values["host"] = ""  # only a PM record's HOST names the machine itself
            category = parts[E_CATEGORY] or ("PM" if upper_type == "PM" else "VM")
            if not values["label"] and category.upper() == "PM":
                values["label"] = record_host
            name = _name_for(values, host_key)
            if not name:
                issues.append(Issue(source.path, number, "gives no name for the machine; line skipped"))
                continue
            mac, ip = parts[E_MAC], parts[E_TCP]
            if not ip and mac:
                ip = ip_by_mac.get(mac, "")
            target = machine(name, category, upper_type, values)
            if mac or ip:
                ports = ssh_ports_tuple(parts[E_SSHPORT])
                target.merge({}, (Interface(mac=mac, ip=ip, netmask=parts[E_NETMASK], relay=parts[E_RELAY], ifname=parts[E_IFNAME],
                                            ssh_ports=list(ports) if ports else [], gateway=parts[E_GATEWAY]),))
            if target.category == "VM" and record_host and record_host != name and record_host not in target.containing:
                target.containing.append(record_host)

    for source in sources.config_files:
        conf = parse_conf(source.text, source.path)
        if not conf.enumerable:
            continue  # a template (#@#MAGICID-IGNORE), a -NOENUM file or no ctys config at all
        issues.extend(conf.issues)
        values = _conf_values(conf)
        name = _name_for(values, host_key)
        if not name:
            issues.append(Issue(source.path, 1, "has neither LABEL nor HOST; file skipped"))
            continue
        interfaces = []
        for iface in conf.interfaces:
            if not iface.ip and iface.mac:
                iface.ip = ip_by_mac.get(iface.mac, "")
            interfaces.append(iface)
        target = machine(name, conf.category, conf.session_type, values)
        target.merge({}, interfaces)
        if target.category == "VM" and source.containing and source.containing not in target.containing:
            target.containing.append(source.containing)

    # macmap entries nobody claimed: still wakeable by name
    macmap_only: List[str] = []
    if macmap_hosts:
        claimed = {i.mac for m in machines.values() for i in m.interfaces if i.mac}
        for entry_name, mac, ip, _number in macmap_entries:
            if mac in claimed:
                continue  # the common case: checked before the name is worked out
            name = entry_name.rstrip(".")
            if host_key == "label":
                name = name.split(".")[0]
            if not name:
                continue
            if name not in machines:
                machines[name] = Machine(name)
                macmap_only.append(name)
            machines[name].merge({}, [Interface(mac=mac, ip=ip)])
            claimed.add(mac)

    if sources.ethers is not None:
        entries, found = parse_ethers(sources.ethers.text, sources.ethers.path)
        issues.extend(found)
        by_name: Dict[str, str] = {}
        for entry in entries:
            by_name.setdefault(entry.name, entry.mac)
            by_name.setdefault(entry.name.rstrip(".").split(".")[0], entry.mac)
        for target in machines.values():
            if any(i.mac for i in target.interfaces):
                continue
            ethers_mac = by_name.get(target.name) or by_name.get(target.values.get("netname", "")) or by_name.get(target.values.get("label", ""))
            if ethers_mac:
                if target.interfaces:
                    target.interfaces[0].mac = ethers_mac
                else:
                    target.interfaces.append(Interface(mac=ethers_mac))

    groups: Dict[str, Dict[str, Any]] = {}

    def group(name: str) -> Dict[str, Any]:
        found = groups.get(name)
        if found is None:  # not setdefault: that would build a new empty group on every call
            found = groups[name] = {"hosts": [], "children": [], "vars": {}}
        return found

    pm_hosts = group("ctys_pm")["hosts"]
    vm_hosts = group("ctys_vm")["hosts"]
    type_groups: Dict[str, str] = {}  # session type -> group name (few types, many machines)
    for target in machines.values():
        if target.category == "PM":
            pm_hosts.append(target.name)
        elif target.category == "VM":
            vm_hosts.append(target.name)
        if target.session_type:
            type_group = type_groups.get(target.session_type)
            if type_group is None:
                type_group = type_groups[target.session_type] = "ctys_" + safe_group_name(target.session_type.lower())
            if type_group not in ("ctys_pm", "ctys_vm"):
                group(type_group)["hosts"].append(target.name)
        for host in target.containing:
            group("ctys_guests_of_" + safe_group_name(host))["hosts"].append(target.name)
    if macmap_only:
        group("ctys_macmap")["hosts"].extend(macmap_only)

    _apply_groups(sources.groups, machines, groups, group, groups_prefix, group_users)

    hosts = {name: target.hostvars() for name, target in machines.items()}
    for data in groups.values():
        data["hosts"] = sorted(set(data["hosts"]))
    return {"hosts": hosts, "groups": groups, "warnings": [str(issue) for issue in issues]}


def _apply_groups(resolved: Dict[str, ResolvedGroup], machines: Dict[str, Machine], groups: Dict[str, Dict[str, Any]], group: Any,
                  prefix: str, group_users: bool) -> None:
    if not resolved:
        return  # no group files: skip the alias table (a pass over every machine)
    aliases: Dict[str, str] = {}
    for target in machines.values():
        for alias in (target.values.get("label", ""), target.values.get("netname", ""), target.values.get("host", "")):
            if alias:
                aliases.setdefault(alias, target.name)
                aliases.setdefault(alias.split(".")[0], target.name)
        for iface in target.interfaces:
            if iface.ip:
                aliases.setdefault(iface.ip, target.name)
    for name in machines:
        aliases[name] = name
    for ctys_name in sorted(resolved):
        rgroup = resolved[ctys_name]
        gname = prefix + safe_group_name(ctys_name)
        data = group(gname)
        if rgroup.context:
            data["vars"]["pm_ctys_context"] = rgroup.context
        for child in rgroup.children:
            child_name = prefix + safe_group_name(child)
            if child_name not in data["children"] and child_name != gname:
                data["children"].append(child_name)
        for member in rgroup.hosts:
            host = aliases.get(member.name) or aliases.get(member.name.split(".")[0]) or member.name
            if host not in machines:
                machines[host] = Machine(host)
                aliases[host] = host
            member_machine = machines[host]
            data["hosts"].append(host)
            info = {"user": member.user, "options": member.options}
            if rgroup.context:
                info["context"] = rgroup.context
            member_machine.ctys_groups.setdefault(gname, info)
            if group_users and member.user and not member_machine.ansible_user:
                member_machine.ansible_user = member.user
