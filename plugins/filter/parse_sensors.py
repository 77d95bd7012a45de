# Copyright: ctys.pm contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
name: parse_sensors
short_description: Turn sensors, sensors -j or ipmitool sdr output into readings and one health verdict
version_added: 0.1.0
description:
  - Parses output collected from a machine, C(sensors -j) JSON or plain C(sensors) text (also C(-u) and C(-A)),
    or C(ipmitool sdr) / C(sdr elist) / C(sensor list) text, and judges it exactly as M(ctys.pm.pm_sensors) does.
  - For hosts reached without Python (M(ansible.builtin.raw)) and for output collected otherwise.
  - The format is detected unless O(format) says it.
  - Robust against what lm-sensors really prints, including C(ERROR) lines inside its JSON, trailing commas,
    two JSON objects back to back, C(N/A) values, C(ALARM) suffixes and limits wrapped onto a second line.
positional: format
options:
  _input:
    description:
      - The output text, a registered command result (its C(stdout) is used), a list of lines,
        or C(sensors -j) output already parsed with P(ansible.builtin.from_json#filter).
    type: raw
    required: true
  format:
    description: The kind of output. V(json) is C(sensors -j), V(text) plain C(sensors) or C(sensors -u), V(ipmitool) C(ipmitool sdr) text.
    type: str
    choices: [auto, json, text, ipmitool]
    default: auto
  thresholds:
    description:
      - Your limits, as the option O(ctys.pm.pm_sensors#module:thresholds) of the module, a list of rules with
        C(kind), C(chip), C(label), C(warning), C(critical), C(low_warning), C(low_critical).
    type: list
    elements: dict
  ignore:
    description: Readings to leave out, as the option O(ctys.pm.pm_sensors#module:ignore) of the module.
    type: list
    elements: str
seealso:
  - module: ctys.pm.pm_sensors
author:
  - ctys.pm maintainers (@ctys-pm)
"""

EXAMPLES = r"""
- name: Collect sensors output without Python on the host
  ansible.builtin.raw: sensors -j
  register: raw_sensors
  changed_when: false

- name: Judge it
  ansible.builtin.set_fact:
    health: "{{ raw_sensors.stdout | ctys.pm.parse_sensors }}"

- name: Fail when a temperature is at or above 90 °C
  ansible.builtin.assert:
    that: "(raw_sensors.stdout | ctys.pm.parse_sensors(thresholds=[{'kind': 'temperature', 'critical': 90}])).health != 'CRITICAL'"

- name: BMC sensors read with ipmitool on a relay
  ansible.builtin.debug:
    msg: "{{ (sdr.stdout | ctys.pm.parse_sensors('ipmitool')).alarms }}"
"""

RETURN = r"""
_value:
  description:
    - The same structure as the module returns, with C(health) (C(OK), C(WARNING), C(CRITICAL), C(UNKNOWN)),
      C(alarms), C(counts), C(kinds), C(readings), C(source) and C(messages); see M(ctys.pm.pm_sensors).
  type: dict
"""

from typing import Any, Dict

from ansible.errors import AnsibleFilterError

from ansible_collections.ctys.pm.plugins.module_utils._errors import PmError
from ansible_collections.ctys.pm.plugins.module_utils._sensors import parse_output


def parse_sensors(data: Any, format: str = "auto", thresholds: Any = None, ignore: Any = None) -> Dict[str, Any]:  # pylint: disable=redefined-builtin
    """The filter ``ctys.pm.parse_sensors``."""
    try:
        return parse_output(data, format, thresholds, ignore)
    except PmError as error:
        raise AnsibleFilterError(f"parse_sensors: {error.msg}") from None


class FilterModule:
    """ctys.pm filters for sensors output."""

    def filters(self) -> Dict[str, Any]:
        return {"parse_sensors": parse_sensors}
