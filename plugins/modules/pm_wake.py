#!/usr/bin/python
# Copyright: ctys.pm contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
module: pm_wake
short_description: Wake machines with Wake-on-LAN and wait until they answer
version_added: 0.1.0
description:
  - Sends Wake-on-LAN magic packets (6 x C(0xff), then the MAC 16 times, exactly 102 bytes, plus a
    4- or 6-byte SecureOn password) by UDP to O(broadcast) and O(port), or as raw Ethernet frames
    (ethertype C(0x0842)) on O(interface). The two ways cannot be combined (ctys C(BROADCAST) or C(IF)).
  - With O(host) it first checks whether the machine already answers; a running machine gets no
    packet and the task reports C(changed=false) (ctys C(REUSE)), or fails with O(already_running=fail).
  - Then it waits (ctys C(WOLDELAY), C(PING), C(SSHPING)) until the machine answers a ping, a TCP port
    or SSH, polling every O(poll_interval) seconds up to O(wait_timeout).
  - Several MACs (with matching O(hosts)) are woken and waited for concurrently; O(stagger) wakes them
    in groups to protect power circuits.
  - Runs where the task runs. To reach a machine on another segment, delegate the task to a relay on
    that segment (ctys's execution host), for example C(delegate_to=relay01).
requirements:
  - paramiko >= 3.4 (Python library) on the host that runs the task, only for O(poll=ssh) with O(ssh_user).
extends_documentation_fragment:
  - ctys.pm.attributes
  - ctys.pm.attributes.NETWORK
attributes:
  check_mode:
    support: full
    details: Validates everything, checks whether the machines already run, and sends nothing.
  diff_mode:
    support: none
options:
  mac:
    description:
      - MAC address(es) to wake, in any common form (C(00:1a:2b:3c:4d:5e), C(00-1A-...), C(001a.2b3c.4d5e), C(001a2b3c4d5e)).
      - Conventionally the host variable C(pm_mac).
    type: list
    elements: str
  name:
    description: Look the MAC up by this name in O(ethers) or O(macmap) when O(mac) is not given.
    type: str
  ethers:
    description: An C(/etc/ethers) style file for O(name).
    type: path
    default: /etc/ethers
  macmap:
    description: A ctys C(macmap.fdb) (C(name;MAC;IP;)) for O(name); its IP is watched when O(wait=true) and O(host) is not given.
    type: path
  broadcast:
    description:
      - Where the UDP packet goes; an IPv4 or IPv6 address or a host name, for example a directed broadcast
        such as C(192.0.2.255) or a router that forwards. Defaults to C(255.255.255.255).
      - Conventionally the host variable C(pm_wol_broadcast).
    type: str
  port:
    description: UDP port (9, "discard", as ctys; some NICs listen on 7). Conventionally C(pm_wol_port).
    type: int
    default: 9
  interface:
    description:
      - Send raw Ethernet frames on this interface instead of UDP (ctys C(IF), as ether-wake does). Needs CAP_NET_RAW (root).
      - An interface of the host the task runs on (the controller, or a relay it is delegated to);
        conventionally the variable C(pm_wake_interface).
    type: str
  secureon_password:
    description:
      - SecureOn password sent after the 102 bytes of the magic packet, 4 bytes (C(192.0.2.1) or C(01020304))
        or 6 bytes (C(01:02:03:04:05:06)); for NICs armed with C(ethtool -s IF wol s sopass ...).
      - Named apart from the BMC's O(ctys.pm.pm_ipmi_power#module:password) on purpose, without an alias
        C(password), so that a BMC password set for a play can never travel as a SecureOn password.
    type: str
  repeat:
    description: How many times each packet is sent (lossy networks).
    type: int
    default: 3
  repeat_interval:
    description: Seconds between repeats.
    type: float
    default: 0.1
  host:
    description: Address of the machine to watch (one MAC).
    type: str
  hosts:
    description: Addresses to watch, one per O(mac), in the same order.
    type: list
    elements: str
  wait:
    description: Wait until the machines answer. Defaults to V(true) when O(host) or O(hosts) is given.
    type: bool
  wol_delay:
    description: Seconds to wait after sending before the first poll (ctys WOL:<delay>).
    type: float
    default: 0
  wait_timeout:
    description: Seconds to wait for the machines to answer.
    type: float
    default: 300
  poll:
    description:
      - How to tell a machine is up. V(ping) sends ICMP echo (TCP to O(poll_port) where ICMP is not permitted),
        V(tcp) connects to O(poll_port), V(ssh) reads the SSH banner, or logs in with O(ssh_user).
    type: str
    choices: [ping, tcp, ssh]
    default: ping
  poll_port:
    description: TCP port for O(poll=tcp) and O(poll=ssh).
    type: int
    default: 22
  poll_interval:
    description: Seconds between polls.
    type: float
    default: 0.5
  ssh_user:
    description: With O(poll=ssh), log in as this user (paramiko) instead of reading the banner.
    type: str
  ssh_key:
    description: Private key file for O(ssh_user).
    type: path
  ssh_password:
    description: Password for O(ssh_user).
    type: str
  ssh_host_key_checking:
    description: Check the SSH host key against O(ssh_known_hosts) and the user's known hosts.
    type: bool
    default: true
  ssh_known_hosts:
    description: Extra known_hosts file for O(ssh_host_key_checking).
    type: path
  already_running:
    description: V(reuse) accepts a machine that already answers (no packet, C(changed=false)); V(fail) makes it an error.
    type: str
    choices: [reuse, fail]
    default: reuse
  stagger:
    description: Wake at most this many machines per O(stagger_interval) (0 = all at once).
    type: int
    default: 0
  stagger_interval:
    description: Seconds between groups with O(stagger).
    type: float
    default: 1
notes:
  - Magic packets are plain UDP or Ethernet frames; a SecureOn password travels unencrypted.
seealso:
  - module: ctys.pm.pm_wol_flag
  - module: ctys.pm.pm_ipmi_power
author:
  - ctys.pm maintainers (@ctys-pm)
"""

EXAMPLES = r"""
- name: Wake a machine and wait until it answers ping
  ctys.pm.pm_wake:
    mac: "{{ pm_mac }}"
    broadcast: "{{ pm_wol_broadcast }}"
    host: "{{ ansible_host }}"
  delegate_to: localhost

- name: Wake through a relay on the machine's segment, wait for SSH
  ctys.pm.pm_wake:
    mac: "{{ pm_mac }}"
    interface: "{{ pm_wake_interface }}"  # relay01's NIC on the machine's segment
    host: "{{ ansible_host }}"
    poll: ssh
  delegate_to: relay01
  become: true

- name: Wake a NIC armed with a SecureOn password (ethtool -s eno1 wol s sopass ...)
  ctys.pm.pm_wake:
    mac: "{{ pm_mac }}"
    broadcast: "{{ pm_wol_broadcast }}"
    secureon_password: "{{ pm_wol_secureon_password }}"  # vault it; never the BMC password
    host: "{{ ansible_host }}"
  delegate_to: localhost

- name: Wake by name from a ctys macmap, fail if it already runs
  ctys.pm.pm_wake:
    name: lab02
    macmap: ~/.ctys/db/default/macmap.fdb
    wait: true
    already_running: fail
  delegate_to: localhost

- name: Wake a rack, five machines per 2 seconds, wait for all
  ctys.pm.pm_wake:
    mac: "{{ groups['rack1'] | map('extract', hostvars, 'pm_mac') | list }}"
    hosts: "{{ groups['rack1'] | map('extract', hostvars, 'ansible_host') | list }}"
    broadcast: 192.0.2.255
    stagger: 5
    stagger_interval: 2
    poll: tcp
  run_once: true
  delegate_to: localhost
"""

RETURN = r"""
macs:
  description: The MAC addresses the task handled, normalised.
  returned: always
  type: list
  elements: str
  sample: ["02:c7:5e:00:00:01"]
packets:
  description: What was sent, per MAC, with C(destination), C(bytes) per packet and C(count) (repeats).
  returned: always
  type: list
  elements: dict
  sample: [{"mac": "02:c7:5e:00:00:01", "destination": "198.18.255.255:9/udp", "bytes": 102, "count": 3}]
already_running:
  description: One machine, whether it already answered (no packet sent); several, the hosts that did.
  returned: always
  type: raw
  sample: false
reachable:
  description: Whether the watched machine answered (one machine with O(host)).
  returned: always
  type: bool
  sample: true
boot_seconds:
  description: Seconds from the first packet to the first successful poll (one machine).
  returned: always
  type: float
  sample: 41.2
results:
  description: Per MAC, C(mac), C(host), C(already_running), C(reachable), C(boot_seconds), C(last_poll_error).
  returned: always
  type: list
  elements: dict
elapsed:
  description: Seconds the task took.
  returned: always
  type: float
  sample: 42.0
would_send:
  description: In check mode, the packets that would be sent.
  returned: check mode
  type: list
  elements: dict
"""

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.ctys.pm.plugins.module_utils import _wake
from ansible_collections.ctys.pm.plugins.module_utils._module_runner import run_module


def main() -> None:
    module = AnsibleModule(
        argument_spec={
            "mac": {"type": "list", "elements": "str"},
            "name": {"type": "str"},
            "ethers": {"type": "path", "default": "/etc/ethers"},
            "macmap": {"type": "path"},
            "broadcast": {"type": "str"},
            "port": {"type": "int", "default": 9},
            "interface": {"type": "str"},
            "secureon_password": {"type": "str", "no_log": True},
            "repeat": {"type": "int", "default": 3},
            "repeat_interval": {"type": "float", "default": 0.1},
            "host": {"type": "str"},
            "hosts": {"type": "list", "elements": "str"},
            "wait": {"type": "bool"},
            "wol_delay": {"type": "float", "default": 0},
            "wait_timeout": {"type": "float", "default": 300},
            "poll": {"type": "str", "default": "ping", "choices": ["ping", "tcp", "ssh"]},
            "poll_port": {"type": "int", "default": 22},
            "poll_interval": {"type": "float", "default": 0.5},
            "ssh_user": {"type": "str"},
            "ssh_key": {"type": "path", "no_log": False},
            "ssh_password": {"type": "str", "no_log": True},
            "ssh_host_key_checking": {"type": "bool", "default": True},
            "ssh_known_hosts": {"type": "path"},
            "already_running": {"type": "str", "default": "reuse", "choices": ["reuse", "fail"]},
            "stagger": {"type": "int", "default": 0},
            "stagger_interval": {"type": "float", "default": 1},
        },
        supports_check_mode=True,
    )

    def backend():
        params = dict(module.params)
        params["broadcast_given"] = params.get("broadcast") is not None
        return _wake.run(params, check_mode=module.check_mode)

    run_module(module, backend)


if __name__ == "__main__":
    main()
