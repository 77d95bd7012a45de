#!/usr/bin/python
# Copyright: ctys.pm contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
module: pm_bmc_info
short_description: Ask a machine's BMC what it knows (identity, firmware, event log, power draw, network) over IPMI or Redfish
version_added: 0.2.0
description:
  - Reads, through the BMC and also while the machine is off or its OS is down, what the BMC knows about the machine,
    over IPMI 2.0 / RMCP+ (pyghmi) or DMTF Redfish (HTTPS, Python standard library).
  - V(identity) is maker, product, model, serial and part number, asset tag and UUID (IPMI FRU inventory and system GUID;
    Redfish ComputerSystem and Chassis); V(firmware) the BMC's firmware version and the others it reports (IPMI Get Device ID;
    Redfish Manager and FirmwareInventory); V(events) the system event log as structured entries with counts of critical
    and warning entries (IPMI SEL decoded as C(ipmitool sel elist) does; Redfish LogServices, SEL first); V(power) the
    power draw in watts (IPMI DCMI Get Power Reading; Redfish PowerControl); V(network) the BMC's own LAN settings.
  - A section the BMC does not offer is listed in RV(unsupported), never a failure; a dead BMC fails within O(timeout),
    naming host and port.
  - Read only; C(changed) is always false. Fleet mode (O(targets)) reads many BMCs in one task, IPMI and Redfish mixed,
    concurrently.
  - Runs where the task runs, normally the controller (C(delegate_to=localhost)).
requirements:
  - pyghmi >= 1.6.19, < 1.7 (Python library) on the host that runs the task, for IPMI targets (normally the controller).
  - Redfish needs only the Python standard library.
extends_documentation_fragment:
  - ctys.pm.bmc
  - ctys.pm.fleet
  - ctys.pm.attributes
  - ctys.pm.attributes.ACTIONGROUP_BMC
  - ctys.pm.attributes.NETWORK
attributes:
  check_mode:
    support: full
    details: Read only; check mode reads the same.
  diff_mode:
    support: none
options:
  gather:
    description: The sections to read; all when unset (an empty list is refused).
    type: list
    elements: str
    choices: [identity, firmware, events, power, network]
  events_since:
    description:
      - Only event log entries at or after this time, an ISO 8601 time (UTC when it names no zone) or epoch seconds.
      - Entries without a real time stamp (logged before the BMC's clock was set) are left out when this is set.
    type: str
  events_max:
    description: At most this many event log entries, the newest ones (1 to 10000).
    type: int
    default: 100
  timeout:
    description: Seconds the whole task may take, protocol probe, logins and reads included; a hard bound.
    type: float
    default: 60
notes:
  - Event severity. IPMI threshold events are V(critical) for critical and non-recoverable thresholds and V(warning) for
    non-critical ones; discrete events are V(critical) for failures (power supply failure or input lost, fan, processor,
    memory and drive faults, uncorrectable errors, lost redundancy, OS critical stop) and V(warning) for predictive
    failures and degraded redundancy; deassertions and everything else are V(ok). Redfish entries keep the BMC's
    C(Severity) (OK, Warning, Critical) in lower case.
  - Redfish sensor types are named as the BMC names them (DMTF's words, for example C(System ACPI PowerState));
    IPMI ones as ipmitool names them (C(System ACPI Power State)).
seealso:
  - module: ctys.pm.pm_sensors
  - module: ctys.pm.pm_power
author:
  - ctys.pm maintainers (@ctys-pm)
"""

EXAMPLES = r"""
- name: What is this box, which firmware does its BMC run, what happened, how much does it draw
  ctys.pm.pm_bmc_info:
    bmc: "{{ pm_bmc_host }}"
    user: "{{ pm_bmc_user }}"
    password: "{{ pm_bmc_password }}"
  delegate_to: localhost
  register: bmc

- name: Fail when the event log of the last day has a critical entry
  ctys.pm.pm_bmc_info:
    bmc: "{{ pm_bmc_host }}"
    user: "{{ pm_bmc_user }}"
    password: "{{ pm_bmc_password }}"
    gather: [events]
    events_since: "{{ now(utc=true).timestamp() - 86400 }}"
  delegate_to: localhost
  register: log
  failed_when: log.events.critical > 0

- name: Serial numbers and firmware of a rack, old (IPMI) and new (Redfish) BMCs in one task
  ctys.pm.pm_bmc_info:
    user: admin
    password: "{{ vault_bmc_password }}"
    ca_path: /etc/pki/bmc-ca.pem
    gather: [identity, firmware]
    fail_on: never
    targets:
      - {bmc: 192.0.2.11, protocol: ipmi}
      - {bmc: 192.0.2.12, protocol: redfish}
  delegate_to: localhost
  register: rack
"""

RETURN = r"""
protocol:
  description: The protocol used with the BMC (single target), V(ipmi) or V(redfish).
  returned: single target
  type: str
  sample: ipmi
bmc:
  description: The BMC's C(host:port) (single target).
  returned: single target
  type: str
  sample: 198.18.1.11:623
unsupported:
  description: The sections asked for that this BMC does not offer (single target).
  returned: single target
  type: list
  elements: str
  sample: [power]
identity:
  description:
    - C(manufacturer), C(product), C(model), C(serial_number), C(part_number), C(asset_tag), C(uuid) (lower case), and
      C(board) (C(manufacturer), C(product), C(serial_number), C(part_number), C(manufactured)) where the BMC has a board
      area or chassis. A field the BMC does not give is null.
  returned: when gathered and supported (single target)
  type: dict
  sample: {"manufacturer": "pmlab", "product": "pmlab-machine", "model": "PM-1", "serial_number": "S-lab01", "part_number": "PM-1",
           "asset_tag": "asset-lab01", "uuid": "6f1c2b9e-0d1a-4c55-9d1e-2a8f3c4b5d6e",
           "board": {"manufacturer": "pmlab", "product": "pmlab-board", "serial_number": "B-lab01", "part_number": "PMB-100",
                     "manufactured": "2026-01-02T03:04:00Z"}}
firmware:
  description:
    - C(bmc_version) (as C(ipmitool mc info) prints the firmware revision), C(ipmi_version), C(manufacturer_id) and
      C(product_id) (IPMI only, else null), and C(items), a list of C(name) and C(version).
  returned: when gathered and supported (single target)
  type: dict
  sample: {"bmc_version": "1.23", "ipmi_version": "2.0", "manufacturer_id": 0, "product_id": 0, "items": [{"name": "BMC", "version": "1.23"}]}
events:
  description:
    - C(entries) oldest first (after O(events_since), the newest O(events_max)), each with C(id), C(time) (ISO 8601 UTC, null
      when the BMC had no clock yet), C(sensor), C(sensor_type), C(sensor_number), C(message), C(severity) (V(ok), V(warning),
      V(critical)) and C(direction) (V(asserted), V(deasserted)); C(count) (entries returned), C(total) (entries in the log),
      C(critical) and C(warning) (among the returned entries).
  returned: when gathered and supported (single target)
  type: dict
  sample: {"entries": [{"id": 3, "time": "2026-12-05T03:24:52Z", "sensor": "CPU Temp", "sensor_type": "Temperature", "sensor_number": 1,
                        "message": "Upper Critical going high", "severity": "critical", "direction": "asserted"}],
           "count": 1, "total": 7, "critical": 1, "warning": 0}
power:
  description:
    - C(watts), and C(minimum), C(maximum), C(average) and C(period) (seconds) where the BMC gives them.
    - Absent, not zero, where the BMC has no reading.
  returned: when gathered and supported (single target)
  type: dict
  sample: {"watts": 196, "minimum": 180, "maximum": 221, "average": 199, "period": 60.0}
network:
  description:
    - The BMC's own LAN settings, C(address), C(netmask), C(gateway), C(mac), C(vlan) (null when none),
      C(source) (V(static), V(dhcp), V(bios), V(other)) and C(channel) (IPMI LAN channel).
  returned: when gathered and supported (single target)
  type: dict
  sample: {"address": "198.18.1.11", "netmask": "255.255.0.0", "gateway": "0.0.0.0", "mac": "02:00:c6:12:01:0b", "vlan": null, "source": "static", "channel": 1}
elapsed:
  description: Seconds the task took.
  returned: always
  type: float
  sample: 0.31
results:
  description:
    - Fleet mode, one entry per target with C(name), C(bmc), C(protocol), C(changed), C(elapsed), C(failed),
      C(msg) (on failure), C(unsupported) and the sections read.
  returned: fleet mode
  type: list
  elements: dict
  sample: [{"name": "lab01", "bmc": "198.18.1.11:623", "protocol": "ipmi", "changed": false, "elapsed": 0.2, "failed": false, "unsupported": [],
            "firmware": {"bmc_version": "1.23", "ipmi_version": "2.0", "manufacturer_id": 0, "product_id": 0, "items": []}}]
summary:
  description: Fleet mode counts of C(targets), C(failed), C(critical) and C(warning) event log entries, C(ipmi) and C(redfish).
  returned: fleet mode
  type: dict
  sample: {"targets": 100, "failed": 0, "critical": 2, "warning": 5, "ipmi": 60, "redfish": 40}
"""

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.ctys.pm.plugins.module_utils._bmc import info as _bmc_info
from ansible_collections.ctys.pm.plugins.module_utils._bmc.options import bmc_argument_spec, fleet_argument_spec
from ansible_collections.ctys.pm.plugins.module_utils._module_runner import run_module


def main() -> None:
    argument_spec = bmc_argument_spec()
    argument_spec.update(
        gather={"type": "list", "elements": "str", "choices": list(_bmc_info.SECTIONS)},
        events_since={"type": "str"},
        events_max={"type": "int", "default": 100},
        timeout={"type": "float", "default": 60},
    )
    argument_spec.update(fleet_argument_spec())
    module = AnsibleModule(
        argument_spec=argument_spec,
        mutually_exclusive=[("bmc", "targets")],
        required_one_of=[("bmc", "targets")],
        supports_check_mode=True,
    )
    run_module(module, lambda: _bmc_info.run(dict(module.params)))


if __name__ == "__main__":
    main()
