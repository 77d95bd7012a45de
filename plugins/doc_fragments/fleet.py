# Copyright: ctys.pm contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations


class ModuleDocFragment:
    # Fleet mode of the BMC modules: ``targets`` (the connection options per BMC) and ``fail_on``. The matching
    # argument spec is plugins/module_utils/_bmc/options.py:fleet_argument_spec(); fleets are validated by
    # plugins/module_utils/_bmc/targets.py. POWER is the same plus a target's own ``state`` (pm_power,
    # pm_ipmi_power). Ansible merges fragments one level deep only and its sanity tests read fragments as
    # literals, so POWER repeats DOCUMENTATION; tests/unit/docs/test_fleet_fragment.py keeps the two in step.
    DOCUMENTATION = r"""
options:
  targets:
    description:
      - Fleet mode. A list of BMCs; for every key a target does not set, the top-level option is the default.
      - All targets are handled concurrently (IPMI and Redfish ones at the same time in the modules that speak both, with one
        TLS context for the task); one dead BMC never delays the others beyond its own O(connect_timeout).
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

  fail_on:
    description:
      - In fleet mode, when the task fails. V(any) if one target failed, V(all) only if every target failed,
        V(never) to report failures in RV(results) only.
    type: str
    choices: [any, all, never]
    default: any
"""

    POWER = r"""
options:
  targets:
    description:
      - Fleet mode. A list of BMCs; for every key a target does not set, the top-level option is the default.
      - All targets are handled concurrently (IPMI and Redfish ones at the same time in the modules that speak both, with one
        TLS context for the task); one dead BMC never delays the others beyond its own O(connect_timeout).
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
"""
