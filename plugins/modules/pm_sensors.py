#!/usr/bin/python
# Copyright: ctys.pm contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
module: pm_sensors
short_description: Machine health from lm-sensors, sysfs hwmon or the BMC, as readings and one verdict
version_added: 0.1.0
description:
  - Reads the hardware sensors of a machine (temperatures, fans, voltages, power, current, energy, humidity,
    chassis intrusion) and judges them against their limits, the chips' alarm flags and your own thresholds.
  - Every reading is normalised to C(chip), C(adapter), C(label), C(kind), C(value), C(unit), its limits,
    alarm flags and a C(status) (V(ok), V(warning), V(critical), V(unknown)); the worst status is the machine's
    RV(health) (C(OK), C(WARNING), C(CRITICAL), C(UNKNOWN)).
  - This is ctys-PM's "remote check of the Health-Status of the physical machines", which printed the raw
    C(sensors) output and counted the lines with C(ALARM).
  - With O(source=ipmi) the BMC's sensors are read over the network, so health is known even while the
    operating system is down or the machine is powered off. Run that on the controller (C(delegate_to=localhost)); it needs C(pyghmi) there.
  - With O(source=redfish) the same is read from a Redfish BMC over HTTPS (the system's health rollup, the chassis
    C(Sensors) collection, or C(Thermal) and C(Power) where that is all the BMC has), with the Python standard library only.
  - Placeholder limits that drivers print for "no limit" (C(-273.15), C(65261.85), C(4294967.295), an upper limit
    of C(0)) never raise an alarm; they are listed under C(placeholders) of the reading.
  - The filter P(ctys.pm.parse_sensors#filter) gives the same result for output collected otherwise, for example with M(ansible.builtin.raw).
requirements:
  - pyghmi >= 1.6.19, < 1.7 (Python library) on the host that runs the task, for O(source=ipmi) (normally the controller).
  - lm-sensors (the C(sensors) command) on the machine, for O(source=lm_sensors); O(source=auto) reads sysfs hwmon without it.
extends_documentation_fragment:
  - ctys.pm.bmc
  - ctys.pm.attributes
  - ctys.pm.attributes.ACTIONGROUP_BMC
attributes:
  check_mode:
    support: full
    details: The module only reads; check mode reads and judges the same way.
  diff_mode:
    support: none
  platform:
    description: Target OS/families that can be operated against.
    support: full
    platforms: posix
options:
  source:
    description:
      - Where the readings come from.
      - V(auto) runs C(sensors -j), then C(sensors -u) when the JSON cannot be had (lm-sensors older than 3.5),
        then reads C(/sys/class/hwmon) directly when lm-sensors is not installed or finds nothing.
      - V(lm_sensors) uses only the C(sensors) command; V(sysfs) only reads O(hwmon_path).
      - V(ipmi) reads the sensor data repository (SDR) of the BMC given by O(bmc), with the BMC's thresholds and its own verdict.
      - V(redfish) reads the BMC given by O(bmc) over Redfish, with its thresholds and health; the readings have the same format.
      - O(protocol) is not needed here; when set with V(ipmi) or V(redfish) it must name the same protocol.
    type: str
    choices: [auto, lm_sensors, sysfs, ipmi, redfish]
    default: auto
  thresholds:
    description:
      - Your limits, replacing the device's for the readings they match. Later rules override earlier ones,
        limit by limit, so put general rules first and specific ones after.
      - Values are in the reading's unit (C(°C), C(V), C(RPM), C(W), C(A), C(J), C(%RH)).
    type: list
    elements: dict
    suboptions:
      kind:
        description: Only readings of this kind.
        type: str
        choices: [temperature, fan, voltage, power, current, energy, humidity, intrusion, other]
      chip:
        description: Only readings of chips matching this shell pattern (case-insensitive), for example C(coretemp-*).
        type: str
      label:
        description: Only readings whose label or feature name (C(temp1)) matches this shell pattern (case-insensitive), for example C(Core *).
        type: str
      warning:
        description: The value at or above which the reading is V(warning) (replaces the device's C(max)).
        type: float
      critical:
        description: The value at or above which the reading is V(critical) (replaces C(crit)).
        type: float
      low_warning:
        description: The value below which the reading is V(warning) (replaces C(min)), for example a fan's minimum speed.
        type: float
      low_critical:
        description: The value at or below which the reading is V(critical) (replaces C(lcrit)).
        type: float
  ignore:
    description:
      - Readings to leave out, as shell patterns (case-insensitive) on the label or feature name (C(intrusion*)),
        or on C(chip/label) (C(nct6798-isa-02a0/AUXTIN*)). Ignored readings are only counted.
    type: list
    elements: str
    default: []
  fail_on_health:
    description:
      - When the task fails. V(never) reports the health only; V(warning) fails on C(WARNING) and C(CRITICAL);
        V(critical) only on C(CRITICAL). C(UNKNOWN) never fails the task.
      - Named apart from the fleet policy O(ctys.pm.pm_ipmi_power#module:fail_on), so that no option of
        the action group C(group/ctys.pm.bmc) means two things.
    type: str
    choices: [never, warning, critical]
    default: never
  set_facts:
    description: Also return the result as the fact C(pm_sensors) (RV(ansible_facts.pm_sensors)).
    type: bool
    default: false
  hwmon_path:
    description: Where the kernel's hwmon devices are, for O(source=sysfs) and the last step of O(source=auto).
    type: path
    default: /sys/class/hwmon
  timeout:
    description: With O(source=ipmi) or O(source=redfish), seconds the whole task may take, login and retries included.
    type: float
    default: 60
notes:
  - lm-sensors names a chip C(name-bus-address), for example C(coretemp-isa-0000); O(source=sysfs) builds the same names.
  - A reading is V(critical) at or above C(crit) or C(emergency), at or below C(lcrit), or when the chip raised a
    critical alarm flag or the BMC reports a critical or non-recoverable threshold; V(warning) at or above C(max), below C(min),
    on other alarm flags, a sensor fault or a chassis intrusion; V(unknown) when it has no value (C(N/A), read errors).
  - RV(health) is C(UNKNOWN) only when no reading could be judged.
seealso:
  - module: ctys.pm.pm_ipmi_power
  - plugin: ctys.pm.parse_sensors
    plugin_type: filter
author:
  - ctys.pm maintainers (@ctys-pm)
"""

EXAMPLES = r"""
- name: Health of the machine from lm-sensors (or sysfs), fail when anything is critical
  ctys.pm.pm_sensors:
    fail_on_health: critical
  register: sensors

- name: Own limits for CPU temperatures and a minimum fan speed, ignore the intrusion switch
  ctys.pm.pm_sensors:
    thresholds:
      - kind: temperature
        warning: 75
        critical: 90
      - kind: fan
        label: "CPU*"
        low_warning: 600
    ignore:
      - "intrusion*"
    set_facts: true

- name: Health through the BMC while the machine is off
  ctys.pm.pm_sensors:
    source: ipmi
    bmc: "{{ pm_bmc_host }}"
    port: "{{ pm_bmc_port | default(623) }}"
    user: "{{ pm_bmc_user }}"
    password: "{{ pm_bmc_password }}"
  delegate_to: localhost
  register: bmc_sensors

- name: Health of a Redfish BMC, its certificate checked against the lab CA
  ctys.pm.pm_sensors:
    source: redfish
    bmc: "{{ pm_bmc_host }}"
    user: "{{ pm_bmc_user }}"
    password: "{{ pm_bmc_password }}"
    ca_path: "{{ pm_bmc_ca_path }}"
  delegate_to: localhost

- name: Show what is wrong
  ansible.builtin.debug:
    msg: "{{ item.chip }}/{{ item.label }}: {{ item.status }} ({{ item.reason }})"
  loop: "{{ sensors.alarms }}"
"""

RETURN = r"""
health:
  description: The worst status of all readings, C(OK), C(WARNING), C(CRITICAL), or C(UNKNOWN) when no reading could be judged.
  returned: always
  type: str
  sample: WARNING
alarms:
  description: The readings in V(warning) or V(critical), critical first, with C(chip), C(label), C(kind), C(value), C(unit), C(status) and C(reason).
  returned: always
  type: list
  elements: dict
  sample: [{"chip": "it8718-isa-0228", "label": "in5", "kind": "voltage", "value": 4.08, "unit": "V", "status": "warning",
            "reason": "4.08 V >= max 4.08 V; the chip raised alarm"}]
counts:
  description:
    - Readings per status (C(ok), C(warning), C(critical), C(unknown)), C(total), C(ignored) and C(alarms)
      (ctys's "Total ALARMs").
  returned: always
  type: dict
  sample: {"ok": 16, "warning": 3, "critical": 0, "unknown": 0, "total": 19, "ignored": 0, "alarms": 3}
kinds:
  description: Readings per kind.
  returned: always
  type: dict
  sample: {"temperature": 4, "voltage": 10, "fan": 4, "intrusion": 1}
readings:
  description:
    - Every reading, with C(chip), C(adapter), C(label), C(feature) (sysfs name such as C(temp1), when known), C(kind)
      (V(temperature), V(fan), V(voltage), V(power), V(current), V(energy), V(humidity), V(intrusion), V(other)),
      C(value) (V(null) when there is none), C(unit), the limits C(min), C(max), C(lcrit), C(crit), C(emergency) (plain
      C(sensors) calls C(max) of a temperature C(high) and C(min) C(low)), C(hysteresis) (per limit), C(alarm)
      (the alarm flags that are raised, such as C(alarm), C(crit_alarm), C(fault)), C(status), C(reason), C(extra)
      (average, interval, cap, ...), C(placeholders) (limits and values that mean "none"), C(override) (a rule of
      O(thresholds) applied) and, from a BMC, C(states).
  returned: always
  type: list
  elements: dict
  sample: [{"chip": "coretemp-isa-0000", "adapter": "ISA adapter", "label": "Package id 0", "feature": "temp1",
            "kind": "temperature", "value": 56.0, "unit": "°C", "min": null, "max": 105.0, "lcrit": null, "crit": 105.0,
            "emergency": null, "hysteresis": {}, "alarm": [], "status": "ok", "reason": null, "extra": {},
            "placeholders": {}, "override": false}]
source:
  description: What was read, V(lm_sensors_json), V(lm_sensors_text), V(sysfs), V(ipmi) or V(redfish).
  returned: always
  type: str
  sample: lm_sensors_json
messages:
  description: What lm-sensors or the readers reported besides readings, such as C(ERROR) lines.
  returned: always
  type: list
  elements: str
  sample: ["ERROR: Can't get value of subfeature temp1_input: Can't read"]
bmc:
  description: The BMC that was read (O(source=ipmi) or O(source=redfish)).
  returned: when O(source=ipmi) or O(source=redfish)
  type: str
  sample: "192.0.2.10:623"
protocol:
  description: The protocol the BMC was read with, V(ipmi) or V(redfish).
  returned: when O(source=ipmi) or O(source=redfish)
  type: str
  sample: redfish
ansible_facts:
  description: The same result as the fact C(pm_sensors).
  returned: when O(set_facts=true)
  type: dict
  contains:
    pm_sensors:
      description: RV(health), RV(alarms), RV(counts), RV(kinds), RV(readings), RV(source), RV(messages).
      type: dict
      returned: when O(set_facts=true)
"""

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.ctys.pm.plugins.module_utils import _sensors
from ansible_collections.ctys.pm.plugins.module_utils._bmc.options import bmc_argument_spec
from ansible_collections.ctys.pm.plugins.module_utils._module_runner import run_module


def main() -> None:
    argument_spec = bmc_argument_spec()
    argument_spec.update(
        source={"type": "str", "default": "auto", "choices": list(_sensors.SOURCES)},
        thresholds={
            "type": "list",
            "elements": "dict",
            "options": {
                "kind": {"type": "str", "choices": list(_sensors.KINDS)},
                "chip": {"type": "str"},
                "label": {"type": "str"},
                "warning": {"type": "float"},
                "critical": {"type": "float"},
                "low_warning": {"type": "float"},
                "low_critical": {"type": "float"},
            },
        },
        ignore={"type": "list", "elements": "str", "default": []},
        fail_on_health={"type": "str", "default": "never", "choices": list(_sensors.FAIL_ON)},
        set_facts={"type": "bool", "default": False},
        hwmon_path={"type": "path", "default": _sensors.HWMON_ROOT},
        timeout={"type": "float", "default": 60},
    )
    module = AnsibleModule(
        argument_spec=argument_spec,
        required_if=[("source", "ipmi", ("bmc",)), ("source", "redfish", ("bmc",))],
        supports_check_mode=True,
    )

    def runner(argv):
        # C locale: decimal points, not commas, whatever the machine's language
        return module.run_command(argv, environ_update={"LC_ALL": "C"})

    def backend():
        result = _sensors.run(dict(module.params), runner, module.get_bin_path)
        for warning in result.pop("warnings", []):
            module.warn(warning)
        return result

    run_module(module, backend)


if __name__ == "__main__":
    main()
