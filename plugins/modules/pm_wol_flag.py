#!/usr/bin/python
# Copyright: ctys.pm contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
module: pm_wol_flag
short_description: Arm a NIC's Wake-on-LAN flag so the next magic packet wakes the machine
version_added: 0.1.0
description:
  - Sets the Wake-on-LAN register of a network card on the target, as ctys-PM C(CANCEL ...,WOL,IF:<if>) does with
    C(ethtool -s IF wol g) before the machine powers off.
  - Reads and sets the register through the kernel's ethtool interface (C(SIOCETHTOOL) ioctl, C(ETHTOOL_GWOL) and
    C(ETHTOOL_SWOL)), so no C(ethtool) binary is needed. Where the ioctl is not permitted the C(ethtool) command is
    tried instead. After setting, the register is read back; a driver that ignores the request is an error.
  - A bridge, bond or VLAN is resolved to its physical ports through sysfs and every port with Wake-on-LAN support
    is armed (ctys - bridged interfaces do not propagate the flag to the physical NIC). Virtual ports are skipped
    when the interface also has physical ones.
  - Without O(interface), the first physical interface with a carrier that supports Wake-on-LAN is chosen; virtual
    interfaces (veth, tun, bridges, bonds) are never chosen.
  - The register is volatile, as with ctys. O(persistent) also writes the operating system's own configuration so
    the flag survives reboots.
  - Runs on the target and needs root (CAP_NET_ADMIN) to set the flag; use C(become=true).
requirements:
  - ethtool (the command) on the target where the C(SIOCETHTOOL) ioctl is not permitted, and at boot for O(persistent=udev).
  - nmcli (NetworkManager) on the target, for O(persistent=networkmanager) (and O(persistent=auto) on a NetworkManager host).
extends_documentation_fragment:
  - ctys.pm.attributes
attributes:
  check_mode:
    support: full
    details: Reads the register and the configuration files and reports what would change; sets and writes nothing.
  diff_mode:
    support: full
    details: Shows the flags before and after, and each persistent configuration file (SecureOn passwords masked).
  platform:
    description: Target OS/families that can be operated against.
    support: full
    platforms: linux
options:
  interface:
    description:
      - The interface to arm, for example C(eno1), or a bridge, bond or VLAN whose physical ports are armed.
      - Omitted, the first physical interface with a carrier that supports Wake-on-LAN (ctys "first detected valid interface").
    type: str
  wol:
    description:
      - Wake-on-LAN modes in ethtool's letters - V(p) PHY activity, V(u) unicast, V(m) multicast, V(b) broadcast,
        V(a) ARP, V(g) magic packet, V(s) SecureOn password (with O(sopass)), V(f) filters; V(d) alone disables.
      - The register is set to exactly these modes. Defaults to V(g) with O(state=enabled).
    type: str
  state:
    description: V(enabled) arms the modes in O(wol); V(disabled) clears the register (the same as O(wol=d)).
    type: str
    choices: [enabled, disabled]
    default: enabled
  sopass:
    description: SecureOn password for mode V(s), six hex octets such as C(01:02:03:04:05:06). Never shown in results or diffs.
    type: str
  persistent:
    description:
      - V(none) sets only the volatile register (ctys). The others also make the flags survive reboots.
      - V(networkmanager) sets the C(802-3-ethernet.wake-on-lan) property (and C(wake-on-lan-password)) of the
        connection NetworkManager has active on the interface, with C(nmcli). Without mode V(s) the password is cleared.
      - V(systemd-networkd) writes C(/etc/systemd/network/70-ctys-pm-wol-IF.link) matching the NIC's MAC address,
        with C(WakeOnLan=). systemd-udevd applies .link files whether or not systemd-networkd manages the network.
      - V(udev) writes C(/etc/udev/rules.d/70-ctys-pm-wol-IF.rules), which runs C(ethtool -s IF wol ...) when the NIC appears.
      - V(auto) picks V(networkmanager) when it manages the interface, else V(systemd-networkd) when systemd's
        C(99-default.link) is installed, else V(udev).
    type: str
    choices: [none, auto, networkmanager, systemd-networkd, udev]
    default: none
  persistent_root:
    description:
      - Folder the configuration files are written under, for example a mounted image. V(networkmanager) ignores it.
    type: path
    default: /
  live:
    description:
      - Set the NIC's register now. V(false) only writes the persistent configuration (for example into an image
        under O(persistent_root)) and needs O(interface); the NIC is then neither read nor changed.
    type: bool
    default: true
notes:
  - A magic packet must carry the MAC address of the physical NIC (returned as RV(mac)); behind a bond that is the
    address the bond gave its ports.
  - Drivers do not always report a SecureOn password back, so with V(s) the task may report a change every time.
  - veth, virtio_net, tun and bridges have no Wake-on-LAN; the error names the interface's driver.
  - Role C(ctys.pm.pm_wol_prepare) runs this module, reads the flags back and sets the facts C(pm_wol_mac),
    C(pm_wol_interface) and C(pm_wol_broadcast).
seealso:
  - module: ctys.pm.pm_wake
author:
  - ctys.pm maintainers (@ctys-pm)
"""

EXAMPLES = r"""
- name: Arm magic-packet wake on the first NIC that can (ctys CANCEL ...,WOL)
  ctys.pm.pm_wol_flag:
  become: true

- name: Arm the physical ports of the Xen/KVM bridge, and keep it over reboots
  ctys.pm.pm_wol_flag:
    interface: br0
    wol: g
    persistent: auto
  become: true

- name: SecureOn wake on eno1
  ctys.pm.pm_wol_flag:
    interface: eno1
    wol: gs
    sopass: "{{ vault_wol_sopass }}"
  become: true

- name: Write a .link file into an image without touching this machine's NIC
  ctys.pm.pm_wol_flag:
    interface: eno1
    persistent: systemd-networkd
    persistent_root: /mnt/image
    live: false
  become: true

- name: Disarm
  ctys.pm.pm_wol_flag:
    interface: eno1
    state: disabled
  become: true
"""

RETURN = r"""
interface:
  description: The interface asked for, or the one chosen when O(interface) was omitted.
  returned: success
  type: str
  sample: br0
physical_interfaces:
  description: The physical ports that were armed.
  returned: success
  type: list
  elements: str
  sample: [eno1]
supported:
  description: Modes the (first) NIC supports, in ethtool's letters; null with O(live=false).
  returned: success
  type: str
  sample: pumbg
before:
  description: The (first) NIC's modes before the task; V(d) means none.
  returned: success
  type: str
  sample: d
after:
  description: The modes read back after setting (in check mode, the modes that would be set).
  returned: success
  type: str
  sample: g
mac:
  description: MAC address of the (first) armed NIC, the one a magic packet must carry.
  returned: success
  type: str
  sample: "00:1a:2b:3c:4d:5e"
driver:
  description: Kernel driver of the (first) armed NIC.
  returned: success
  type: str
  sample: e1000e
broadcast:
  description: IPv4 broadcast address of the interface carrying the address (the bridge for a bridged NIC), or null.
  returned: success
  type: str
  sample: 192.0.2.255
persistent:
  description: The persistence method used (V(auto) resolved), or V(none).
  returned: success
  type: str
  sample: systemd-networkd
persistent_path:
  description: The file (or NetworkManager connection) written for the first NIC, or null.
  returned: success
  type: str
  sample: /etc/systemd/network/70-ctys-pm-wol-eno1.link
persistent_paths:
  description: The files (or connections) written, one per armed NIC.
  returned: success
  type: list
  elements: str
ports:
  description: Per armed NIC - C(interface), C(driver), C(mac), C(supported), C(before), C(after), C(changed), C(persistent_path).
  returned: success
  type: list
  elements: dict
unsupported_ports:
  description: Ports of a bridge or bond without Wake-on-LAN, with C(interface) and C(reason); the others were armed.
  returned: success
  type: list
  elements: dict
"""

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.ctys.pm.plugins.module_utils._module_runner import run_module
from ansible_collections.ctys.pm.plugins.module_utils._wol import ethtool as _ethtool


def main() -> None:
    module = AnsibleModule(
        argument_spec={
            "interface": {"type": "str"},
            "wol": {"type": "str"},
            "state": {"type": "str", "default": "enabled", "choices": ["enabled", "disabled"]},
            "sopass": {"type": "str", "no_log": True},
            "persistent": {
                "type": "str",
                "default": "none",
                "choices": ["none", "auto", "networkmanager", "systemd-networkd", "udev"],
            },
            "persistent_root": {"type": "path", "default": "/"},
            "live": {"type": "bool", "default": True},
        },
        supports_check_mode=True,
    )

    def run_command(argv):
        return module.run_command(argv, environ_update={"LC_ALL": "C"})

    def backend():
        ethtool = _ethtool.Ethtool(run_command=run_command, ethtool_path=module.get_bin_path("ethtool"))
        return _ethtool.run(
            module.params,
            check_mode=module.check_mode,
            ethtool=ethtool,
            run_command=run_command,
            nmcli=module.get_bin_path("nmcli"),
        )

    run_module(module, backend)


if __name__ == "__main__":
    main()
