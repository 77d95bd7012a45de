# Copyright: ctys.pm contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The 47 fields of a ctys ``enum.fdb`` record: one table of name, configuration key and host variable.

:data:`FIELDS` is read by the writer (pm_info: a pm.conf/vm.conf becomes enum.fdb records,
``formats.enum_records_for``) and by the inventory builder (``plugin_utils/ctys_inventory``:
records and config files become host variables).  A field is

* ``name``: ctys's name for it, in ctys's canonical order (the position is the field index);
* ``conf_key``: the ``#@#KEY`` of a pm.conf / vm.conf / .ctys file whose value the field carries
  (the writer's spelling; ``formats.KEY_ALIASES`` adds the readers'), None when the value comes from
  elsewhere (an interface, the enumerating host, the file's path, a constant);
* ``host_var``: the inventory host variable set from it, None when it sets none;
* ``form``: how the value becomes that variable: ``text`` as it is, ``hwcap``/``stackcap`` parsed
  (``pm_stackcap`` also gives ``pm_wol_capable``).

No Ansible imports, Python 3.8+: both the controller and pm_info on a target use it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Dict, Optional, Tuple


@dataclass(frozen=True)
class Field:
    name: str
    conf_key: Optional[str] = None
    host_var: Optional[str] = None
    form: str = "text"


FIELDS: Tuple[Field, ...] = (
    Field("host"),  # the machine ENUMERATE ran on (a PM's own HOST; a VM's containing machine)
    Field("session_type"),  # PM, VM or the hypervisor: ConfFile.session_type
    Field("label", "LABEL", "pm_label"),
    Field("id", None, "pm_ctys_id"),  # the config file's path
    Field("uuid", "UUID", "pm_uuid"),
    Field("mac"),  # fields of one interface address: formats.Interface
    Field("tcp"),
    Field("display"),
    Field("cport", "VNCACCESSPORT"),
    Field("sport"),
    Field("vncbase"),
    Field("dist", "DIST", "pm_dist"),
    Field("distrel", "DISTREL", "pm_distrel"),
    Field("os", "OS", "pm_os"),
    Field("osrel", "OSREL", "pm_osrel"),
    Field("verno", "VERSION"),
    Field("serno", "SERNO"),
    Field("category"),  # PM or VM: ConfFile.category
    Field("vmstate", "VMSTATE", "pm_vmstate"),
    Field("hyperrel", "INST_HYPERREL"),
    Field("stackcap", "STACKCAP", "pm_stackcap", "stackcap"),
    Field("stackreq", "STACKREQ"),
    Field("hwcap", "HWCAP", "pm_hwcap", "hwcap"),
    Field("hwreq", "HWREQ"),
    Field("execlocation", "EXECLOCATION"),
    Field("reloccap", "RELOCCAP"),
    Field("sshport"),
    Field("netname", None, "pm_netname"),  # the DNS name of the address; a config file's HOST
    Field("hyperrelrun"),
    Field("accelerator"),  # VMX or SVN, from the CPU flags
    Field("exepath"),
    Field("index"),
    Field("ifname"),
    Field("ctysrelease", "CTYSRELEASE"),
    Field("netmask"),
    Field("gateway"),
    Field("relay"),
    Field("arch", "ARCH", "pm_arch"),
    Field("platform", "PLATFORM"),
    Field("vram", "VRAM", "pm_vram"),
    Field("vcpu", "VCPU", "pm_vcpu"),
    Field("contextstrg", "CSTRG"),
    Field("userstring", "USTRG"),
    Field("uid"),  # of the enumerating user
    Field("gid"),
    Field("defhosts"),
    Field("defconsole"),
)

ENUM_FIELD_NAMES: Tuple[str, ...] = tuple(f.name for f in FIELDS)
ENUM_FIELDS = len(FIELDS)  # 47
ENUM_INDEX: Dict[str, int] = {name: index for index, name in enumerate(ENUM_FIELD_NAMES)}

# Field indexes (0-based; ctys and the messages count from 1) of the fields read by position.
E_HOST = ENUM_INDEX["host"]
E_SESSION_TYPE = ENUM_INDEX["session_type"]
E_LABEL = ENUM_INDEX["label"]
E_MAC = ENUM_INDEX["mac"]
E_TCP = ENUM_INDEX["tcp"]
E_CATEGORY = ENUM_INDEX["category"]
E_SSHPORT = ENUM_INDEX["sshport"]
E_IFNAME = ENUM_INDEX["ifname"]
E_NETMASK = ENUM_INDEX["netmask"]
E_GATEWAY = ENUM_INDEX["gateway"]
E_RELAY = ENUM_INDEX["relay"]

# Fields copied from a config key, and the ones that become host variables.
CONF_FIELDS: Tuple[Field, ...] = tuple(f for f in FIELDS if f.conf_key)
HOST_VAR_FIELDS: Tuple[Field, ...] = tuple(f for f in FIELDS if f.host_var)

if len(set(ENUM_FIELD_NAMES)) != ENUM_FIELDS or ENUM_FIELDS != 47:  # pragma: no cover - guards edits
    raise AssertionError("enum.fdb has 47 distinct fields")
