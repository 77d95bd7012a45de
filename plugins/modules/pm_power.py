#!/usr/bin/python
# Copyright: ctys.pm contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
module: pm_power
short_description: Power a physical machine on, off or through a reboot with its BMC over IPMI or Redfish, and set its boot device
version_added: 0.1.0
description:
  - Reads and changes the power state of a machine through its BMC, over IPMI 2.0 / RMCP+ (pyghmi) or DMTF Redfish
    (HTTPS, Python standard library), and optionally its boot device first, so "PXE once, then power on" is one task.
  - Takes every option and returns every value of M(ctys.pm.pm_ipmi_power), for both protocols; IPMI targets run on
    the same code as M(ctys.pm.pm_ipmi_power). Every result says which RV(protocol) was used.
  - O(protocol=auto) (the default) asks the BMC's Redfish service root first (bounded by min(O(connect_timeout), 3 s))
    and uses IPMI when no Redfish service answers; a refused certificate or HTTP 401 fails, it never falls back to IPMI.
  - Over Redfish the C(ResetType) is chosen from the values the BMC allows (V(on) On, ForceOn or PushPowerButton;
    V(off) ForceOff; V(soft) GracefulShutdown or PushPowerButton, never a forced off; V(reset) ForceRestart;
    V(cycle) PowerCycle, else ForceOff, wait for off, then On) and reported as RV(reset_type).
    Sessions are deleted at the end of every task, failure included.
  - Waits until the BMC reports the target state, polling fast at first (0.2 s) and backing off.
    O(timeout) bounds the whole task, login included, as a hard bound (the task returns by O(timeout) plus about a second,
    whatever a BMC sends); a dead BMC fails within it with a message naming host and port.
  - Fleet mode (O(targets)) handles many BMCs in one task, IPMI and Redfish mixed, concurrently, with one result per target.
  - Runs where the task runs, normally the controller (C(delegate_to=localhost)).
requirements:
  - pyghmi >= 1.6.19, < 1.7 (Python library) on the host that runs the task, for IPMI targets (normally the controller).
  - Redfish needs only the Python standard library.
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
notes:
  - Over Redfish, O(kg), O(privilege) and O(cipher_suite) are not used (the BMC account's role decides what it may do);
    over IPMI, O(validate_certs), O(ca_path), O(certificate_fingerprint) and O(resource_id) are not used.
seealso:
  - module: ctys.pm.pm_ipmi_power
  - module: ctys.pm.pm_wake
  - module: ctys.pm.pm_sensors
author:
  - ctys.pm maintainers (@ctys-pm)
"""

EXAMPLES = r"""
- name: Power on over whatever the BMC speaks (Redfish first), and wait until it reports on
  ctys.pm.pm_power:
    bmc: "{{ pm_bmc_host }}"
    user: "{{ pm_bmc_user }}"
    password: "{{ pm_bmc_password }}"
    ca_path: "{{ pm_bmc_ca_path }}"
    state: "on"
  delegate_to: localhost
  register: powered

- name: Say which protocol was used
  ansible.builtin.debug:
    msg: "{{ pm_bmc_host }} is {{ powered.power_state }} (over {{ powered.protocol }})"

- name: A self-signed Redfish BMC, trusted by its certificate's fingerprint
  ctys.pm.pm_power:
    bmc: "{{ pm_bmc_host }}"
    protocol: redfish
    certificate_fingerprint: "{{ pm_bmc_fingerprint }}"
    user: "{{ pm_bmc_user }}"
    password: "{{ pm_bmc_password }}"
    state: soft
    timeout: 600
  delegate_to: localhost

- name: Credentials and the CA once for the whole play, with the action group
  hosts: servers
  gather_facts: false
  module_defaults:
    group/ctys.pm.bmc:
      user: "{{ pm_bmc_user }}"
      password: "{{ pm_bmc_password }}"
      ca_path: /etc/pki/bmc-ca.pem
  tasks:
    - name: PXE once, then power on (reset if it runs)
      ctys.pm.pm_power:
        bmc: "{{ pm_bmc_host }}"
        protocol: "{{ pm_bmc_protocol | default('auto') }}"
        boot_device: network
        boot_mode: uefi
        state: boot
      delegate_to: localhost

- name: Power state of a rack with old (IPMI) and new (Redfish) BMCs in one task
  ctys.pm.pm_power:
    user: admin
    password: "{{ vault_bmc_password }}"
    ca_path: /etc/pki/bmc-ca.pem
    state: query
    fail_on: never
    targets:
      - {bmc: 192.0.2.11, protocol: ipmi}
      - {bmc: 192.0.2.12, protocol: redfish}
      - {bmc: 192.0.2.13, protocol: redfish, resource_id: System.Embedded.1}
  delegate_to: localhost
  register: rack
"""

RETURN = r"""
protocol:
  description: The protocol used with the BMC (single target), V(ipmi) or V(redfish).
  returned: single target
  type: str
  sample: redfish
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
reset_type:
  description:
    - Redfish only. The C(ResetType) sent (or that would be sent in check mode), V(null) when nothing was to do;
      a cycle without PowerCycle reads C(ForceOff+On).
  returned: success, single target over Redfish
  type: str
  sample: ForceRestart
resource_id:
  description: Redfish only. The Id of the computer system acted on.
  returned: success, single target over Redfish
  type: str
  sample: System.Embedded.1
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
  description:
    - Fleet mode, one entry per target with C(name), C(bmc), C(protocol), C(state), C(changed), C(power_state_before),
      C(power_state), C(elapsed), C(failed), C(msg) (on failure) and C(boot_device); Redfish targets also C(reset_type),
      C(resource_id) and C(warnings) (when there are any).
  returned: fleet mode
  type: list
  elements: dict
  sample: [{"name": "lab01", "bmc": "198.18.1.11:443", "protocol": "redfish", "state": "on", "changed": true,
            "power_state_before": "off", "power_state": "on", "reset_type": "On", "resource_id": "1", "elapsed": 0.3,
            "failed": false}]
summary:
  description: Fleet mode counts of C(targets), C(changed), C(failed), C(power_on), C(power_off), C(ipmi) and C(redfish).
  returned: fleet mode
  type: dict
  sample: {"targets": 100, "changed": 0, "failed": 1, "power_on": 97, "power_off": 2, "ipmi": 40, "redfish": 60}
"""

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.ctys.pm.plugins.module_utils._bmc import power as _bmc_power
from ansible_collections.ctys.pm.plugins.module_utils._bmc.options import bmc_argument_spec, power_argument_spec
from ansible_collections.ctys.pm.plugins.module_utils._bmc.power_request import BOOT_DEVICES, BOOT_MODES, STATES
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
        result = _bmc_power.run(dict(module.params), check_mode=module.check_mode)
        for warning in result.pop("warnings", []):
            module.warn(warning)
        if not module._diff:
            result.pop("diff", None)
        return result

    run_module(module, backend)


if __name__ == "__main__":
    main()
