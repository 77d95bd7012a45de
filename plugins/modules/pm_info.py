#!/usr/bin/python
# Copyright: ctys.pm contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
module: pm_info
short_description: Describe a machine as ctys does (LIST, INFO, ENUMERATE) and optionally write its pm.conf
version_added: 0.1.0
description:
  - Runs on the machine and reports what the ctys PM plugin's LIST, INFO and ENUMERATE showed, read-only -
    interfaces with MAC, IP addresses, interface name, bridge membership and Wake-on-LAN support (read with the
    C(ETHTOOL_GWOL) ioctl, C(ethtool IF) as fall-back), OS, distribution, architecture, UUID, CPUs, memory,
    stack level (PM or VM), hypervisors present and the local ctys configuration (C(/etc/ctys.d)) if there is one.
  - Also returns the lines ctys would store for this machine in C(enum.fdb) (one 47-field record per interface
    address, as C(ctys-vdbgen)) and C(macmap.fdb) (C(name;MAC;IP;)); C(playbooks/enumerate.yml) collects them.
  - With O(write_config) it writes the C(pm.conf) C(ctys-genmconf -P) would write (same keys, order and layout),
    idempotently - a file that differs only in C(DATE), C(SERNO) or C(Created by) is left alone.
  - Never sends a packet and never resolves names over the network.
  - Needs only the Python standard library on the target (iproute2's C(ip) for addresses).
requirements:
  - ip (iproute2) on the machine, for the interfaces' addresses.
  - ethtool (the command) on the machine, only where the C(ETHTOOL_GWOL) ioctl is not permitted.
extends_documentation_fragment:
  - ctys.pm.attributes
attributes:
  check_mode:
    support: full
    details: Gathers everything and reports whether O(write_config) would change the file, without writing it.
  diff_mode:
    support: full
    details: Shows the old and the new C(pm.conf) when O(write_config) changes it.
  platform:
    description: Target operating systems.
    support: full
    platforms: posix
options:
  label:
    description:
      - The ctys LABEL of the machine, used in C(enum.fdb), C(macmap.fdb) and C(pm.conf).
      - Defaults to the short host name; C(playbooks/enumerate.yml) passes C(inventory_hostname) so the inventory
        built from the files has the same names.
    type: str
  category:
    description:
      - C(PM) or C(VM) as ctys writes it in C(CATEGORY). C(auto) takes C(vm.conf)/C(pm.conf) in O(config_dir) if one
        exists, else DMI and CPU flags (a machine running under a hypervisor is a C(VM)).
    type: str
    choices: [auto, PM, VM]
    default: auto
  record:
    description: Which interfaces go into C(pm.conf), as C(ctys-genmconf -r) - with an IP address, all with a MAC (no IPs), or both.
    type: str
    choices: [WITHIP, WITHMAC, ALL]
    default: WITHIP
  ssh_ports:
    description: SSH ports written into the IP tuples; default from C(/etc/ssh/sshd_config) C(Port) and C(ListenAddress) (22 when unset).
    type: list
    elements: int
  config_dir:
    description: The ctys configuration folder read for an existing C(pm.conf), C(vm.conf) and C(STACKLEVEL.assume).
    type: path
    default: /etc/ctys.d
  write_config:
    description:
      - Write a ctys-compatible C(pm.conf) (C(vm.conf) content for O(category=VM)) to this absolute path, for example
        C(/etc/ctys.d/pm.conf). Creates the folder when missing. Needs write permission there (C(become=true)).
    type: path
notes:
  - ctys-genmconf also writes C(STACKLEVEL.assume); this module does not.
  - The UUID comes from C(/sys/class/dmi/id/product_uuid) (root only), else from C(/etc/machine-id); RV(machine.uuid_source) says which.
seealso:
  - plugin: ctys.pm.ctys
    plugin_type: inventory
author:
  - ctys.pm maintainers (@ctys-pm)
"""

EXAMPLES = r"""
- name: Describe the machine
  ctys.pm.pm_info:
  register: info

- name: Write /etc/ctys.d/pm.conf like ctys-genmconf -P
  ctys.pm.pm_info:
    label: "{{ inventory_hostname }}"
    write_config: /etc/ctys.d/pm.conf
  become: true

- name: Show whether the machine can be woken over the network
  ansible.builtin.debug:
    msg: "{{ info.machine.interfaces | selectattr('wol.capable') | map(attribute='ifname') | list }}"
"""

RETURN = r"""
machine:
  description: What the machine is.
  returned: always
  type: dict
  contains:
    hostname:
      description: "The host name (not resolved over DNS)."
      type: str
      sample: lab02.soho
    label:
      description: "The ctys LABEL used."
      type: str
      sample: lab02
    category:
      description: "PM or VM."
      type: str
      sample: PM
    stack_level:
      description: "0 for a PM; for a VM C(STACKLEVEL.assume) or 1."
      type: int
      sample: 0
    virtualization:
      description: "The hypervisor vendor this OS runs under, empty on bare metal."
      type: str
      sample: QEMU
    os:
      description: "Kernel name (ctys OS)."
      type: str
      sample: Linux
    osrel:
      description: "Kernel release (ctys OSREL)."
      type: str
      sample: 6.1.0-13-amd64
    dist:
      description: "Distribution ID from os-release (ctys DIST)."
      type: str
      sample: debian
    distrel:
      description: "Distribution version (ctys DISTREL)."
      type: str
      sample: "12"
    arch:
      description: "Machine architecture."
      type: str
      sample: x86_64
    uuid:
      description: "Machine UUID without dashes (ctys UUID)."
      type: str
      sample: 44454c4c3900104e8052b3c04f4a4d31
    uuid_source:
      description: "dmi, machine-id or none."
      type: str
      sample: dmi
    cpus:
      description: "Number of CPUs."
      type: int
      sample: 8
    cpu:
      description: "Vendor, family, model, stepping, cache, MHz and C(VMX)/C(SVM)/C(PAE) flags."
      type: dict
    memory_mb:
      description: "RAM in MiB."
      type: int
      sample: 32019
    swap_mb:
      description: "Swap in MiB."
      type: int
      sample: 976
    gateway:
      description: "IPv4 default gateway."
      type: str
      sample: 192.168.1.1
    ssh_ports:
      description: "SSH ports written into C(pm.conf)."
      type: list
      elements: int
      sample: [22]
    hypervisors:
      description: "Hypervisors present (QEMU, KVM, XEN, VBOX, VMW, LIBVIRT)."
      type: list
      elements: str
      sample: [QEMU, KVM]
    wol_capable:
      description: "Whether any Ethernet interface supports magic-packet wake-up (C(g))."
      type: bool
      sample: true
    stackcap:
      description: "The ctys STACKCAP string."
      type: str
    hwcap:
      description: "The ctys HWCAP string."
      type: str
      sample: "CPU:8xGenuineIntel-6-158-10-12288KB-3700MHz-VMX,RAM:32019M,SWAP:976M"
    interfaces:
      description:
        - Every interface but loopback - C(ifname), C(mac), C(kind) (ether, bridge, other), C(operstate), C(addresses)
          (C(address), C(prefix), C(family), C(netmask) for IPv4, C(broadcast)), C(bridge) (the bridge it is a port of),
          C(bridge_ports) and C(wol) (C(supported) and C(enabled) in ethtool letters, C(capable), C(source)).
      type: list
      elements: dict
    ctys_config:
      description: The local ctys configuration (C(path), C(values), C(interfaces), C(stack_level), C(issues)), or null.
      type: dict
enum_records:
  description: The C(enum.fdb) lines for this machine (47 fields each, one per interface address).
  returned: always
  type: list
  elements: str
macmap_records:
  description: The C(macmap.fdb) lines for this machine (C(name;MAC;IP;)).
  returned: always
  type: list
  elements: str
  sample: ["lab02;00:1A:2B:3C:4D:5E;192.168.1.12;"]
pm_conf:
  description: The C(pm.conf) text (what ctys-genmconf would write).
  returned: always
  type: str
config_path:
  description: The path recorded as the config ID (O(write_config), else C(pm.conf) or C(vm.conf) in O(config_dir)).
  returned: always
  type: str
  sample: /etc/ctys.d/pm.conf
"""

import time

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.ctys.pm.plugins.module_utils import _host_facts
from ansible_collections.ctys.pm.plugins.module_utils._module_runner import run_module


def main() -> None:
    module = AnsibleModule(
        argument_spec={
            "label": {"type": "str"},
            "category": {"type": "str", "default": "auto", "choices": ["auto", "PM", "VM"]},
            "record": {"type": "str", "default": "WITHIP", "choices": ["WITHIP", "WITHMAC", "ALL"]},
            "ssh_ports": {"type": "list", "elements": "int"},
            "config_dir": {"type": "path", "default": "/etc/ctys.d"},
            "write_config": {"type": "path"},
        },
        supports_check_mode=True,
    )

    def run(argv):
        return module.run_command(argv, environ_update={"LC_ALL": "C"})

    run_module(
        module,
        lambda: _host_facts.backend(dict(module.params), run, module.check_mode, module._diff, lambda: time.strftime("%Y%m%d%H%M%S")),
    )


if __name__ == "__main__":
    main()
