# Copyright: ctys.pm contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Inventory plugin ctys.pm.ctys: machines from ctys (UnifiedSessionsManager) files."""

from __future__ import annotations

DOCUMENTATION = r"""
name: ctys
short_description: Machines from ctys files (enum.fdb, macmap.fdb, pm.conf, vm.conf, .ctys, group files)
version_added: 0.1.0
description:
  - Reads the files ctys (UnifiedSessionsManager) keeps its machines in and turns every machine into an Ansible host.
  - C(enum.fdb) (one 47-field record per interface, as C(ctys-vdbgen) and C(playbooks/enumerate.yml) write it),
    C(macmap.fdb) (C(name;MAC;IP;)), C(/etc/ctys.d/pm.conf), C(vm.conf) and VM C(.ctys) files (C(#@#KEY = "value")),
    ctys group files and an optional C(/etc/ethers).
  - The formats are read as ctys reads them, quirks included; the first C(#@#KEY) wins, files marked
    C(#@#MAGICID-IGNORE) or C(#@#MAGICID-NOENUM) are left out, C(MAC<n>) and C(IP<n>) pair by index, an empty TCP
    field of C(enum.fdb) is filled from C(macmap.fdb) by MAC.
  - A malformed line is skipped with a warning that names file and line; the rest is still loaded.
    A file or folder named explicitly that does not exist is an error.
  - A value read from the files is never templated, so C({{ }}) in a file stays text (ansible-core 2.19 and later never template
    what a plugin reads; on older ones the values are marked unsafe).
  - The configuration file must be named C(*.ctys.yml) or C(*.ctys.yaml).
extends_documentation_fragment:
  - constructed
  - inventory_cache
options:
  plugin:
    description: Marks the file as a configuration of this plugin.
    type: str
    required: true
    choices: [ctys.pm.ctys]
  db_paths:
    description:
      - ctys cacheDB folders, each holding C(enum.fdb) and/or C(macmap.fdb).
      - A folder given here must exist; the default may be missing.
      - Relative paths in this and the other path options are relative to the inventory configuration file.
    type: list
    elements: path
    default: ['~/.ctys/db/default']
  config_files:
    description:
      - pm.conf, vm.conf and VM C(.ctys) files, as paths or globs (C(**) recurses).
      - An item may be a mapping with keys C(glob) (a pattern) and C(host) (a machine name); VMs found by that pattern get that
        host as their containing machine (C(pm_containing_machine), group C(ctys_guests_of_<host>)), as ctys ENUMERATE records the
        scanning machine.
      - A path without wildcards must exist.
    type: list
    elements: raw
    default: []
  groups_paths:
    description:
      - Folders of ctys group files (C(CTYS_GROUPS_PATH)); every file below them becomes a group named
        O(groups_prefix) plus its relative path with invalid characters replaced by C(_), for example
        C(desktops/tst/ctys-lab) becomes C(ctys_group_desktops_tst_ctys_lab).
      - C(#include) and members that name another group become child groups.
      - A folder given here must exist; the default may be missing.
    type: list
    elements: path
    default: ['~/.ctys/groups']
  groups_prefix:
    description: Prefix of the groups made from ctys group files.
    type: str
    default: ctys_group_
  group_users:
    description: Set C(ansible_user) from a group member written as C(user@host) (the first group that names a user wins).
    type: bool
    default: true
  ethers:
    description: An C(/etc/ethers) style file (C(MAC name)); gives C(pm_mac) to machines the ctys files name without a MAC.
    type: path
  host_key:
    description:
      - What names a host.
      - C(label) is the ctys LABEL (C(enum.fdb) field 3, C(#@#LABEL)).
      - C(netname) is the DNS name of the interface (field 28, trailing dot removed; C(#@#HOST) for config files).
      - C(host) is the machine's HOST (field 1 for PM records, C(#@#HOST) for config files).
      - When the chosen value is empty the others are tried.
    type: str
    choices: [label, netname, host]
    default: label
  macmap_hosts:
    description: Add C(macmap.fdb) entries whose MAC no other record has as hosts of group C(ctys_macmap), so they can be woken by name.
    type: bool
    default: true
notes:
  - Host variables are C(ansible_host), C(ansible_port) (first SSH port), C(pm_mac), C(pm_wol_broadcast) (directed broadcast
    derived from IP and netmask), C(pm_interfaces), C(pm_category), C(pm_session_type), C(pm_containing_machine), C(pm_os),
    C(pm_osrel), C(pm_dist), C(pm_distrel), C(pm_arch), C(pm_uuid), C(pm_vcpu), C(pm_vram), C(pm_hwcap), C(pm_stackcap),
    C(pm_wol_capable), C(pm_label), C(pm_netname), C(pm_ctys_id), C(pm_vmstate) and C(pm_ctys_groups).
  - Groups are C(ctys_pm), C(ctys_vm), C(ctys_<session type>) (C(ctys_qemu), C(ctys_xen), ...), C(ctys_guests_of_<host>),
    C(ctys_macmap) and one per group file.
  - With caching on, the cached inventory records the size and modification time of every file read, so a rewritten
    C(enum.fdb) is picked up at once and replaces it; the cache holds one entry per inventory source.
seealso:
  - name: ctys.pm inventory guide
    description: Options by task, the ctys mapping and examples (docs/inventory.md in the collection).
    link: https://github.com/ctys/pm/blob/main/docs/inventory.md
"""

EXAMPLES = r"""
# inventory.ctys.yml: what ctys-vdbgen and ctys-extractMAClst wrote (one YAML document per file;
# ansible-test's yamllint on 2.16 reads EXAMPLES as one document, so this first file is a comment):
#   plugin: ctys.pm.ctys
#   db_paths:
#     - ~/.ctys/db/default

# lab.ctys.yml: per-machine configs, VM configs on a hypervisor, group files
plugin: ctys.pm.ctys
db_paths: []
config_files:
  - /srv/ctys/pm/*.conf
  - glob: /mntn/vmpool/**/*.ctys
    host: lab02
groups_paths:
  - ~/.ctys/groups
ethers: /etc/ethers
keyed_groups:
  - key: pm_dist
    prefix: dist
compose:
  pm_wol_interface: "'eth0'"
cache: true
cache_plugin: ansible.builtin.jsonfile
cache_connection: ~/.cache/ctys-inventory
"""

import json
import os

from ansible.errors import AnsibleParserError
from ansible.plugins.inventory import BaseInventoryPlugin, Cacheable, Constructable

try:
    # ansible-core 2.19+ (data tagging): a string a plugin makes is never templated unless
    # something marks it trusted, so file values are safe as they are, and wrapping them would
    # only cost time (and the {"__ansible_unsafe": ...} markers in every --list output).
    from ansible.module_utils._internal import _datatag  # noqa: F401  pylint: disable=unused-import

    def wrap_var(value):
        return value
except ImportError:  # ansible-core 2.16 to 2.18: mark file values unsafe
    from ansible.utils.unsafe_proxy import wrap_var  # type: ignore[no-redef]  # the other branch's definition

from ansible_collections.ctys.pm.plugins.module_utils._ctys.formats import CtysFileError
from ansible_collections.ctys.pm.plugins.plugin_utils.ctys_inventory import (
    DEFAULT_DB_PATH,
    DEFAULT_GROUPS_PATH,
    build_inventory,
    collect_sources,
)


class InventoryModule(BaseInventoryPlugin, Constructable, Cacheable):
    """Hosts from ctys files; ``parse()`` reads, ``_populate()`` adds (tests call it with prepared data)."""

    NAME = "ctys.pm.ctys"

    def verify_file(self, path):
        if super().verify_file(path):
            return path.endswith((".ctys.yml", ".ctys.yaml"))
        return False

    def parse(self, inventory, loader, path, cache=True):
        super().parse(inventory, loader, path, cache)
        self._read_config_data(path)
        base = os.path.dirname(os.path.abspath(path))

        def here(value):
            """Relative paths are relative to the inventory configuration file."""
            if value is None:
                return None
            value = os.path.expanduser(str(value))
            return value if os.path.isabs(value) else os.path.join(base, value)

        config_files = []
        for item in self.get_option("config_files") or []:
            if isinstance(item, dict):
                item = dict(item, glob=here(item.get("glob") or item.get("path") or ""))
            else:
                item = here(item)
            config_files.append(item)
        db_paths = [here(p) for p in self.get_option("db_paths") or []]
        groups_paths = [here(p) for p in self.get_option("groups_paths") or []]
        try:
            sources = collect_sources(
                db_paths=db_paths,
                config_files=config_files,
                groups_paths=groups_paths,
                ethers=here(self.get_option("ethers")),
                explicit_db=db_paths != [os.path.expanduser(DEFAULT_DB_PATH)],
                explicit_groups=groups_paths != [os.path.expanduser(DEFAULT_GROUPS_PATH)],
            )
        except CtysFileError as error:
            raise AnsibleParserError(f"{path}: {error.msg}") from None

        # One entry per inventory source, holding the fingerprint of the files it was built from: a rewritten file
        # replaces the entry rather than adding one (a key per fingerprint left every old entry on disk).
        cache_key = self.get_cache_key(path)
        use_cache = self.get_option("cache") and cache
        update_cache = self.get_option("cache") and not cache
        data = None
        if use_cache:
            entry = self._cache.get(cache_key)
            if isinstance(entry, dict) and entry.get("fingerprint") == sources.fingerprint:
                data = json.loads(entry["inventory"])
            else:
                update_cache = True
        if data is None:
            try:
                data = build_inventory(
                    sources,
                    host_key=self.get_option("host_key"),
                    group_users=self.get_option("group_users"),
                    groups_prefix=self.get_option("groups_prefix"),
                    macmap_hosts=self.get_option("macmap_hosts"),
                )
            except CtysFileError as error:
                raise AnsibleParserError(f"{path}: {error.msg}") from None
        if update_cache:
            # Cached as one JSON string: Ansible deep-copies what a plugin caches and encodes it node by node in
            # Python (about 1 s for 10,000 hosts, so a cold run was slower than a JSON inventory script); a string
            # goes through both at once, and json.loads reads it back faster than the cache's own decoder.
            self._cache[cache_key] = {"fingerprint": sources.fingerprint, "inventory": json.dumps(data, separators=(",", ":"))}
        self._populate(data)

    def _populate(self, data):
        """Add hosts, variables and groups from :func:`build_inventory`'s result."""
        for warning in data.get("warnings", ()):
            self.display.warning(f"ctys inventory: {warning}")
        inventory = self.inventory
        groups = data["groups"]
        for name in groups:
            inventory.add_group(name)
        for name, group in groups.items():
            for child in group.get("children", ()):
                inventory.add_group(child)
                inventory.add_child(name, child)
            for key, value in group.get("vars", {}).items():
                inventory.set_variable(name, key, wrap_var(value))
        for name, hostvars in data["hosts"].items():
            inventory.add_host(name)
            # Host.set_variable, not inventory.set_variable: on ansible-core 2.19 the latter runs every value
            # through a visitor that deep-copies it and tags each string with an origin, some 3 s of a 10,000-host
            # --list, which made the plugin slower than a JSON inventory script. Our values are fresh objects
            # that nothing else holds, and untagged strings stay untrusted (never templated), so neither is needed;
            # Host.set_variable keeps the variable name check and the merging with values another source set.
            host = inventory.get_host(name)
            for key, value in hostvars.items():
                host.set_variable(key, wrap_var(value))
        for name, group in groups.items():
            for host_name in group.get("hosts", ()):
                inventory.add_child(name, host_name)
        compose, composed, keyed = self.get_option("compose"), self.get_option("groups"), self.get_option("keyed_groups")
        if not (compose or composed or keyed):
            return  # Constructable options not configured: no per-host templating pass
        strict = self.get_option("strict")
        for name in data["hosts"]:
            host = inventory.get_host(name)
            hostvars = host.get_vars()
            if compose:
                self._set_composite_vars(compose, hostvars, name, strict=strict)
                hostvars = host.get_vars()
            if composed:
                self._add_host_to_composed_groups(composed, hostvars, name, strict=strict)
            if keyed:
                self._add_host_to_keyed_groups(keyed, hostvars, name, strict=strict)
