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
options:
  state:
    description:
      - V(on) powers on; V(off) is a hard power off; V(soft) asks the OS to shut down (ACPI power button) and waits for off.
      - V(reset) and V(cycle) need a running machine (they fail on a machine that is off).
      - V(boot) powers on a machine that is off and resets one that is on (ctys "when the PM is running it is rebooted, else booted").
      - V(query) changes nothing.
      - V(on), V(off), V(soft) and V(query) change nothing when the machine is already so.
    type: str
    choices: ['on', 'off', soft, reset, cycle, boot, query]
    default: query
  wait:
    description: Wait until the BMC reports the target power state.
    type: bool
    default: true
  timeout:
    description: Seconds the whole task may take, protocol probe, logins, retries and waiting included.
    type: float
    default: 300
  boot_device:
    description:
      - Boot device to set before the power action. V(bios) enters the firmware setup; V(default) clears the override.
      - Over Redfish V(network), V(hd), V(cdrom), V(bios) and V(floppy) are C(Pxe), C(Hdd), C(Cd), C(BiosSetup) and C(Floppy),
        checked against the values the BMC allows; V(safe) exists on IPMI only. The setting is read back, and a BMC that
        ignores it fails the task saying so.
      - Changes nothing when the BMC already has this setting.
    type: str
    choices: [network, hd, cdrom, bios, floppy, safe, default]
  boot_persistent:
    description: Keep O(boot_device) for all future boots instead of the next one only (Redfish C(Continuous) instead of C(Once)).
    type: bool
    default: false
  boot_mode:
    description: Firmware boot mode to request with O(boot_device). Unset keeps what the BMC has.
    type: str
    choices: [legacy, uefi]
  targets:
    description:
      - Fleet mode. A list of BMCs; for every key a target does not set, the top-level option is the default.
      - All targets are handled concurrently, IPMI and Redfish ones at the same time, with one TLS context for the task;
        one dead BMC never delays the others beyond its own O(connect_timeout).
      - Mutually exclusive with O(bmc).
    type: list
    elements: dict
    suboptions:
      bmc:
        description: Host name or address of the BMC.
        type: str
        aliases: [host]
      name:
        description: Name for this target in the results (default O(targets[].bmc)).
        type: str
      protocol:
        description: Protocol for this target, as O(protocol).
        type: str
        choices: [ipmi, redfish, auto]
      port:
        description: Port, as O(port).
        type: int
      user:
        description: BMC user.
        type: str
      password:
        description: Password of the user.
        type: str
      kg:
        description: BMC key (K_g), IPMI only.
        type: str
      privilege:
        description: Session privilege, IPMI only.
        type: str
        choices: [user, operator, administrator]
      cipher_suite:
        description: Cipher suite, as O(cipher_suite), IPMI only.
        type: str
      connect_timeout:
        description: Login timeout in seconds.
        type: float
      validate_certs:
        description: As O(validate_certs), Redfish only.
        type: bool
      ca_path:
        description: As O(ca_path), Redfish only.
        type: path
      certificate_fingerprint:
        description: As O(certificate_fingerprint), Redfish only.
        type: str
      resource_id:
        description: As O(resource_id), Redfish only.
        type: str
      state:
        description: Power state for this target.
        type: str
        choices: ['on', 'off', soft, reset, cycle, boot, query]
  fail_on:
    description:
      - In fleet mode, when the task fails. V(any) if one target failed, V(all) only if every target failed,
        V(never) to report failures in RV(results) only.
    type: str
    choices: [any, all, never]
    default: any
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
from ansible_collections.ctys.pm.plugins.module_utils._bmc.options import PROTOCOLS, bmc_argument_spec
from ansible_collections.ctys.pm.plugins.module_utils._module_runner import run_module


def main() -> None:
    argument_spec = bmc_argument_spec()
    argument_spec.update(
        state={"type": "str", "default": "query", "choices": list(_bmc_power.STATES)},
        wait={"type": "bool", "default": True},
        timeout={"type": "float", "default": 300},
        boot_device={"type": "str", "choices": list(_bmc_power.BOOT_DEVICES)},
        boot_persistent={"type": "bool", "default": False},
        boot_mode={"type": "str", "choices": list(_bmc_power.BOOT_MODES)},
        targets={
            "type": "list",
            "elements": "dict",
            "options": {
                "bmc": {"type": "str", "aliases": ["host"]},
                "name": {"type": "str"},
                "protocol": {"type": "str", "choices": list(PROTOCOLS)},
                "port": {"type": "int"},
                "user": {"type": "str"},
                "password": {"type": "str", "no_log": True},
                "kg": {"type": "str", "no_log": True},
                "privilege": {"type": "str", "choices": ["user", "operator", "administrator"]},
                "cipher_suite": {"type": "str"},
                "connect_timeout": {"type": "float"},
                "validate_certs": {"type": "bool"},
                "ca_path": {"type": "path"},
                "certificate_fingerprint": {"type": "str"},
                "resource_id": {"type": "str"},
                "state": {"type": "str", "choices": list(_bmc_power.STATES)},
            },
        },
        fail_on={"type": "str", "default": "any", "choices": ["any", "all", "never"]},
    )
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
