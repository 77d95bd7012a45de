#!/usr/bin/python
# Copyright: ctys.pm contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
module: pm_stack
short_description: Stop, save, start or list the guests of every hypervisor on a host
version_added: 0.1.0
description:
  - Runs on a hypervisor host and finds the guests of every hypervisor present there, libvirt (KVM, QEMU, Xen;
    through libvirt-python when it imports, else C(virsh)), VirtualBox (C(VBoxManage)), VMware (C(vmrun)),
    Xen (C(xl)) and Proxmox VE (C(qm)). This is the VM stack of ctys-PM.
  - O(state=query) lists the guests with the state their hypervisor reports.
  - O(state=stopped) asks every selected running guest to shut down (ACPI power button), all at once, then polls
    each hypervisor until every guest is off or O(timeout) has passed (ctys C(CANCEL) with C(TIMEOUT)). Then, with
    O(force=true), it destroys the guests still running (ctys C(FORCE)); without it the task fails and names each
    guest still running and its state. A guest counts as stopped only when its hypervisor reports it off.
  - O(state=saved) saves each selected running guest to disk where the hypervisor can (ctys C(SUSPEND)/S4; libvirt
    managed save, VirtualBox savestate, VMware suspend, Proxmox suspend to disk). Xen through C(xl) cannot, so those
    guests are shut down instead, with a warning (as ctys maps S4 to S5).
  - O(state=started) starts (or resumes) the selected guests and waits until their hypervisor reports them running;
    the way back after maintenance.
  - Guests are chosen by O(names), O(include) and O(exclude); the same selection applies to every state.
requirements:
  - On the hypervisor host, the tool of each hypervisor to handle - libvirt-python or virsh (libvirt), VBoxManage (VirtualBox),
    vmrun (VMware), xl (Xen), qm (Proxmox VE). A hypervisor whose tool is missing is skipped unless O(hypervisors) names it.
extends_documentation_fragment:
  - ctys.pm.attributes
attributes:
  check_mode:
    support: full
    details: Lists the guests and reports which would be stopped, saved or started (RV(would_stop), RV(would_save), RV(would_start)); changes nothing.
  diff_mode:
    support: full
    details: Shows each selected guest's state before and after (predicted in check mode).
  platform:
    description: Target OS/families that can be operated against.
    support: full
    platforms: posix
    details: Runs on the hypervisor host itself (Linux with libvirt, VirtualBox, VMware Workstation, Xen or Proxmox VE).
options:
  state:
    description:
      - V(query) lists, V(stopped) shuts down (ctys CANCEL), V(saved) suspends to disk (ctys SUSPEND),
        V(started) starts or resumes.
    type: str
    choices: [query, stopped, saved, started]
    default: query
  uri:
    description:
      - libvirt connection URI, for example V(qemu:///system) or a session daemon's
        V(qemu+unix:///session?socket=/run/user/1000/libvirt/libvirt-sock).
      - Defaults to libvirt's own default (C(LIBVIRT_DEFAULT_URI), else V(qemu:///system) for root). When given,
        failing to reach libvirt is an error; when left out, a host without a libvirt daemon simply has no libvirt guests.
      - Conventionally the host variable C(pm_stack_uri).
    type: str
  hypervisors:
    description:
      - Only these hypervisors; each one named must be present. Default is every hypervisor found on the host.
    type: list
    elements: str
    choices: [libvirt, virtualbox, vmware, xen, proxmox]
  names:
    description:
      - Only guests with exactly these names. With O(state=started) every name must exist; otherwise names not
        found are listed in RV(not_found) (a stopped VMware or Xen guest leaves its hypervisor's listing).
    type: list
    elements: str
  include:
    description: Only guests whose names match one of these shell patterns (fnmatch, case-sensitive). Empty means all.
    type: list
    elements: str
    default: []
  exclude:
    description: Leave out guests whose names match one of these shell patterns.
    type: list
    elements: str
    default: []
  timeout:
    description:
      - Seconds each guest gets to shut down, save or start (ctys C(TIMEOUT)). All guests are asked at once, so this is
        also about the longest the task waits before O(force) applies.
    type: float
    default: 300
  force:
    description:
      - After O(timeout), destroy the guests still running (ctys C(FORCE); libvirt destroy, VirtualBox poweroff,
        vmrun stop hard, xl destroy, qm stop). Their unsaved work is lost.
      - Without it, guests still running make the task fail and they are left running.
    type: bool
    default: false
notes:
  - Stopping a guest whose name matches several hypervisors acts on each. Xen guests reached through a libvirt
    O(uri) starting with C(xen) are not listed a second time through C(xl).
  - C(vmrun) and C(xl) list only running guests, so their stopped guests do not appear in RV(guests).
  - A paused guest cannot react to the power button; it stays paused until O(force) destroys it.
seealso:
  - module: ctys.pm.pm_ipmi_power
  - module: ctys.pm.pm_wol_flag
author:
  - ctys.pm maintainers (@ctys-pm)
"""

EXAMPLES = r"""
- name: List the guests of this host
  ctys.pm.pm_stack:
    state: query
  register: stack

- name: Empty the host for maintenance; guests get 2 minutes, then are destroyed
  ctys.pm.pm_stack:
    state: stopped
    timeout: 120
    force: true
  become: true

- name: Stop the web guests of a session libvirt daemon, fail if one does not stop
  ctys.pm.pm_stack:
    state: stopped
    uri: "{{ pm_stack_uri }}"
    include: ["web*"]
    exclude: ["web-canary"]
    timeout: 60

- name: Save the guests to disk before a host firmware update
  ctys.pm.pm_stack:
    state: saved
    hypervisors: [libvirt, virtualbox]

- name: Start again the guests that ran before
  ctys.pm.pm_stack:
    state: started
    names: "{{ stack.guests_before | selectattr('running') | map(attribute='name') | list }}"
"""

RETURN = r"""
hypervisors:
  description: The hypervisors found on the host and used.
  returned: always
  type: list
  elements: str
  sample: ["libvirt"]
guests_before:
  description:
    - The selected guests as their hypervisors reported them when the task began, each with C(name), C(hypervisor),
      C(id) (running domain id or VMID, else null), C(state), C(raw_state) (the hypervisor's own word) and C(running).
    - C(state) is one of V(running), V(idle), V(paused), V(shutting down), V(suspended), V(starting), V(saving),
      V(stuck), V(dying), V(no state), V(unknown) (all C(running=true)) or V(shut off), V(saved), V(crashed),
      V(inaccessible) (C(running=false)).
  returned: always
  type: list
  elements: dict
  sample: [{"name": "web 1", "hypervisor": "libvirt", "id": "3", "state": "running", "raw_state": "running", "running": true}]
guests:
  description: The selected guests as their hypervisors report them at the end (same form as RV(guests_before)).
  returned: always
  type: list
  elements: dict
stopped:
  description: Names of the guests that shut down by themselves and that their hypervisor reports off.
  returned: always
  type: list
  elements: str
  sample: ["web 1", "db"]
saved:
  description: Names of the guests saved to disk (O(state=saved)).
  returned: always
  type: list
  elements: str
forced:
  description: Names of the guests destroyed after O(timeout) (O(force=true)).
  returned: always
  type: list
  elements: str
started:
  description: Names of the guests started or resumed (O(state=started)).
  returned: always
  type: list
  elements: str
remaining:
  description: Guests still running when the task gave up, each with C(name), C(hypervisor) and C(state); the task then failed.
  returned: always
  type: list
  elements: dict
  sample: [{"name": "legacy", "hypervisor": "libvirt", "state": "running"}]
would_stop:
  description: In check mode with O(state=stopped), the names of the guests that would be asked to shut down.
  returned: check mode
  type: list
  elements: str
would_save:
  description: In check mode with O(state=saved), the names of the guests that would be saved.
  returned: check mode
  type: list
  elements: str
would_start:
  description: In check mode with O(state=started), the names of the guests that would be started.
  returned: check mode
  type: list
  elements: str
not_found:
  description: Names given in O(names) that no hypervisor lists.
  returned: when O(names) is given
  type: list
  elements: str
request_errors:
  description: Requests a hypervisor refused, each with C(name), C(hypervisor) and C(error).
  returned: when a request failed
  type: list
  elements: dict
notes:
  description: Hypervisors looked for but skipped, and why.
  returned: when one was skipped
  type: list
  elements: str
  sample: ["libvirt skipped: virsh list failed (rc=1): error: failed to connect to the hypervisor"]
elapsed:
  description: Seconds the task took.
  returned: always
  type: float
  sample: 2.41
"""

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.ctys.pm.plugins.module_utils import _stack
from ansible_collections.ctys.pm.plugins.module_utils._hypervisors import HYPERVISORS, Commands
from ansible_collections.ctys.pm.plugins.module_utils._module_runner import run_module


def main() -> None:
    module = AnsibleModule(
        argument_spec={
            "state": {"type": "str", "default": "query", "choices": list(_stack.STATES)},
            "uri": {"type": "str"},
            "hypervisors": {"type": "list", "elements": "str", "choices": list(HYPERVISORS)},
            "names": {"type": "list", "elements": "str"},
            "include": {"type": "list", "elements": "str", "default": []},
            "exclude": {"type": "list", "elements": "str", "default": []},
            "timeout": {"type": "float", "default": 300},
            "force": {"type": "bool", "default": False},
        },
        supports_check_mode=True,
    )
    run_module(module, lambda: _stack.run(dict(module.params), Commands.from_module(module), check_mode=module.check_mode, diff=module._diff))


if __name__ == "__main__":
    main()
