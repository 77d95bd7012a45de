#!/usr/bin/python
# Copyright: ctys.pm contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
module: pm_ipmi_power
short_description: Power a physical machine on, off or through a reboot with its BMC, and set its boot device
version_added: 0.1.0
description:
  - Reads and changes the power state of a machine through its BMC over IPMI 2.0 / RMCP+ (pyghmi),
    and optionally its boot device first, so "PXE once, then power on" is one task.
  - Waits until the BMC reports the target state, polling fast at first (0.2 s) and backing off.
    O(timeout) bounds the whole task, login included; a dead BMC fails within it with a message naming host and port.
  - Retries transient faults (timeouts, "insufficient resources for session", node busy) with back-off;
    authentication and privilege errors fail at once and say what to check.
  - Fleet mode (O(targets)) handles many BMCs in one task, concurrently, with one result per target.
  - IPMI only (O(protocol) or O(targets[].protocol) other than V(ipmi) is refused; the Redfish options are ignored). M(ctys.pm.pm_power) does the same
    over IPMI and Redfish.
  - This is the IPMI half of ctys-PM's "boot and shutdown of local and remote machines"; ctys never implemented IPMI.
  - Runs where the task runs, normally the controller (C(delegate_to=localhost)); it needs C(pyghmi) there.
requirements:
  - pyghmi >= 1.6.19, < 1.7 (Python library) on the host that runs the task, normally the controller.
extends_documentation_fragment:
  - ctys.pm.bmc
  - ctys.pm.power
  - ctys.pm.fleet.POWER
  - ctys.pm.attributes
  - ctys.pm.attributes.ACTIONGROUP_BMC
  - ctys.pm.attributes.NETWORK
attributes:
  check_mode:
    support: full
    details: Logs in and reads the real power state and boot device, and reports what would change.
  diff_mode:
    support: full
    details: Shows power state and boot device before and after (single target).
seealso:
  - module: ctys.pm.pm_power
  - module: ctys.pm.pm_wake
  - module: ctys.pm.pm_console
author:
  - ctys.pm maintainers (@ctys-pm)
"""

EXAMPLES = r"""
- name: Power on and wait until the BMC reports on
  ctys.pm.pm_ipmi_power:
    bmc: "{{ pm_bmc_host }}"
    user: "{{ pm_bmc_user }}"
    password: "{{ pm_bmc_password }}"
    state: "on"
  delegate_to: localhost

- name: Credentials once for the whole play, with the action group
  hosts: servers
  gather_facts: false
  module_defaults:
    group/ctys.pm.bmc:
      user: "{{ pm_bmc_user }}"
      password: "{{ pm_bmc_password }}"
  tasks:
    - name: Ask the OS to shut down, give it 10 minutes
      ctys.pm.pm_ipmi_power:
        bmc: "{{ pm_bmc_host }}"
        state: soft
        timeout: 600
      delegate_to: localhost

- name: PXE once, then power on (reset if it runs)
  ctys.pm.pm_ipmi_power:
    bmc: "{{ pm_bmc_host }}"
    user: "{{ pm_bmc_user }}"
    password: "{{ pm_bmc_password }}"
    boot_device: network
    boot_mode: uefi
    state: boot
  delegate_to: localhost

- name: Power state of a whole inventory group in one task
  ctys.pm.pm_ipmi_power:
    user: "{{ pm_bmc_user }}"
    password: "{{ pm_bmc_password }}"
    state: query
    fail_on: never
    targets: >-
      {% set fleet = [] %}{% for host in groups['servers'] %}{% set _ = fleet.append(
      {'bmc': hostvars[host].pm_bmc_host, 'name': host}) %}{% endfor %}{{ fleet }}
  run_once: true
  delegate_to: localhost
  register: fleet

- name: Power on a rack, each BMC with its own password
  ctys.pm.pm_ipmi_power:
    user: admin
    state: "on"
    targets:
      - {bmc: 192.0.2.11, password: "{{ vault_bmc11 }}"}
      - {bmc: 192.0.2.12, password: "{{ vault_bmc12 }}"}
  delegate_to: localhost
"""

RETURN = r"""
power_state:
  description: Power state after the task (single target), V(on) or V(off). In check mode, the state it would reach.
  returned: success, single target
  type: str
  sample: "on"
power_state_before:
  description: Power state before the task (single target).
  returned: single target
  type: str
  sample: "off"
boot_device:
  description: Boot device setting after the task, with C(device), C(persistent) and C(mode) (V(legacy) or V(uefi)).
  returned: when O(boot_device) is given
  type: dict
  sample: {"device": "network", "persistent": false, "mode": "uefi"}
elapsed:
  description: Seconds the task took.
  returned: always
  type: float
  sample: 0.41
results:
  description: Fleet mode, one entry per target with C(name), C(bmc), C(state), C(changed), C(power_state_before),
    C(power_state), C(elapsed), C(failed), C(msg) and C(step) (on failure, the step it failed in or was cut off in by the task's deadline,
    V(login), V(command) or V(waiting for the state)) and C(boot_device).
  returned: fleet mode
  type: list
  elements: dict
  sample: [{"name": "lab01", "bmc": "198.18.1.11:623", "state": "on", "changed": true, "power_state_before": "off",
            "power_state": "on", "elapsed": 0.3, "failed": false}]
summary:
  description: Fleet mode counts of C(targets), C(changed), C(failed), C(power_on) and C(power_off).
  returned: fleet mode
  type: dict
  sample: {"targets": 100, "changed": 0, "failed": 1, "power_on": 97, "power_off": 2}
"""

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.ctys.pm.plugins.module_utils._bmc.options import bmc_argument_spec, power_argument_spec, require_ipmi
from ansible_collections.ctys.pm.plugins.module_utils._bmc.power_request import BOOT_DEVICES, BOOT_MODES, STATES
from ansible_collections.ctys.pm.plugins.module_utils._ipmi import power as _ipmi_power
from ansible_collections.ctys.pm.plugins.module_utils._module_runner import run_module


def main() -> None:
    argument_spec = bmc_argument_spec()
    argument_spec.update(power_argument_spec(STATES, BOOT_DEVICES, BOOT_MODES))
    module = AnsibleModule(
        argument_spec=argument_spec,
        mutually_exclusive=[("bmc", "targets")],
        required_one_of=[("bmc", "targets")],
        supports_check_mode=True,
    )

    def backend():
        require_ipmi(module.params, "ctys.pm.pm_ipmi_power")
        result = _ipmi_power.run(dict(module.params), check_mode=module.check_mode)
        if not module._diff:
            result.pop("diff", None)
        return result

    run_module(module, backend)


if __name__ == "__main__":
    main()
