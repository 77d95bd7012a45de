# Copyright: ctys.pm contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Machine health from sensors: readings, thresholds, one verdict.

ctys-PM printed the raw ``sensors`` output and counted lines with ALARM. Here
every sensor becomes a reading with its kind, value, unit, limits, alarm
flags and a status; the worst status is the machine's health. Readers of the
outputs are in ``_sensors_parse`` (lm-sensors, sysfs, ipmitool) and
``_ipmi.sensors`` (the BMC over the network).
"""

from __future__ import annotations

import fnmatch
import math
import re
from dataclasses import dataclass, field
from typing import Any, Callable, Dict, List, Mapping, Optional, Sequence, Tuple

from ansible_collections.ctys.pm.plugins.module_utils import _sensors_parse as parse
from ansible_collections.ctys.pm.plugins.module_utils._errors import PmError, PmInputError, PmUnsupportedError, invalid_option
from ansible_collections.ctys.pm.plugins.module_utils._ipmi import sensors as _sensors_ipmi
from ansible_collections.ctys.pm.plugins.module_utils._sensors_parse import KIND_UNIT, RawFeature

KINDS = ("temperature", "fan", "voltage", "power", "current", "energy", "humidity", "intrusion", "other")
STATUSES = ("ok", "warning", "critical", "unknown")
SOURCES = ("auto", "lm_sensors", "sysfs", "ipmi", "redfish")
BMC_SOURCES = ("ipmi", "redfish")
FORMATS = ("auto", "json", "text", "ipmitool")
FAIL_ON = ("never", "warning", "critical")
LIMITS = ("min", "max", "lcrit", "crit", "emergency")
UPPER = ("max", "crit", "emergency")
RULE_KEYS = ("kind", "chip", "label", "warning", "critical", "low_warning", "low_critical")
RULE_LIMIT = {"warning": "max", "critical": "crit", "low_warning": "min", "low_critical": "lcrit"}
CRITICAL_FLAGS = ("crit_alarm", "lcrit_alarm", "emergency_alarm")
SEVERITY = {"critical": 0, "warning": 1, "unknown": 2, "ok": 3}
HWMON_ROOT = "/sys/class/hwmon"

Runner = Callable[[List[str]], Tuple[int, str, str]]


@dataclass
class Rule:
    """A threshold override from the ``thresholds`` option."""

    kind: Optional[str] = None
    chip: Optional[str] = None
    label: Optional[str] = None
    limits: Dict[str, float] = field(default_factory=dict)  # max/crit/min/lcrit


@dataclass
class Reading:
    """One sensor reading, normalised, with its verdict."""

    chip: str
    adapter: Optional[str]
    label: str
    feature: Optional[str]
    kind: str
    value: Optional[float]
    unit: Optional[str]
    limits: Dict[str, Optional[float]]
    hysteresis: Dict[str, float]
    alarm: List[str]
    extra: Dict[str, float]
    placeholders: Dict[str, float]
    states: List[str]
    device_status: Optional[str] = None
    errors: List[str] = field(default_factory=list)
    override: bool = False
    status: str = "unknown"
    reason: Optional[str] = None

    def names(self) -> List[str]:
        return [name for name in (self.label, self.feature) if name]

    def to_dict(self) -> Dict[str, Any]:
        data: Dict[str, Any] = {
            "chip": self.chip, "adapter": self.adapter, "label": self.label, "feature": self.feature,
            "kind": self.kind, "value": self.value, "unit": self.unit,
        }
        data.update(self.limits)
        data.update({
            "hysteresis": dict(self.hysteresis), "alarm": list(self.alarm), "status": self.status,
            "reason": self.reason, "extra": dict(self.extra), "placeholders": dict(self.placeholders),
            "override": self.override,
        })
        if self.states:
            data["states"] = list(self.states)
        return data

    def alarm_entry(self) -> Dict[str, Any]:
        return {key: getattr(self, key) for key in ("chip", "label", "kind", "value", "unit", "status", "reason")}


# ---------------------------------------------------------------- options
def check_rules(thresholds: Any, option: str = "thresholds") -> List[Rule]:
    """Validate the ``thresholds`` option (a list of rules) into :class:`Rule` objects."""
    if thresholds in (None, "", []):
        return []
    if isinstance(thresholds, Mapping):
        thresholds = [dict(rule, kind=kind) if isinstance(rule, Mapping) else rule for kind, rule in thresholds.items()]
    if not isinstance(thresholds, (list, tuple)):
        raise invalid_option(option, thresholds, "give a list of rules such as [{kind: temperature, warning: 75, critical: 90}]")
    rules = []
    for index, item in enumerate(thresholds):
        where = f"{option}[{index}]"
        if not isinstance(item, Mapping):
            raise invalid_option(where, item, "give a dictionary such as {kind: temperature, warning: 75, critical: 90}")
        unknown = sorted(str(key) for key in item if key not in RULE_KEYS)
        if unknown:
            raise invalid_option(f"{where}.{unknown[0]}", item[unknown[0]], f"use only the keys {', '.join(RULE_KEYS)}")
        rule = Rule()
        kind = item.get("kind")
        if kind is not None and kind not in KINDS:
            raise invalid_option(f"{where}.kind", kind, f"use one of {', '.join(KINDS)}")
        rule.kind = kind
        for key in ("chip", "label"):
            if item.get(key) is not None:
                if not isinstance(item[key], str) or not item[key].strip():
                    raise invalid_option(f"{where}.{key}", item[key], "give a name or a pattern such as 'Core *'")
                setattr(rule, key, item[key].strip())
        for key, limit in RULE_LIMIT.items():
            value = item.get(key)
            if value is None:
                continue
            number = _float(value)
            if number is None:
                raise invalid_option(f"{where}.{key}", value, "give a number in the sensor's unit (°C, V, RPM, W, A, J, %RH)")
            rule.limits[limit] = number
        if not rule.limits:
            raise invalid_option(where, dict(item), "give at least one of warning, critical, low_warning, low_critical")
        lim = rule.limits
        if "max" in lim and "crit" in lim and lim["max"] > lim["crit"]:
            raise invalid_option(f"{where}.warning", lim["max"], f"use a value at or below critical ({lim['crit']:g})")
        if "min" in lim and "lcrit" in lim and lim["min"] < lim["lcrit"]:
            raise invalid_option(f"{where}.low_warning", lim["min"], f"use a value at or above low_critical ({lim['lcrit']:g})")
        rules.append(rule)
    return rules


def check_ignore(ignore: Any) -> List[str]:
    if ignore in (None, "", []):
        return []
    if isinstance(ignore, str):
        ignore = [ignore]
    if not isinstance(ignore, (list, tuple)) or not all(isinstance(p, str) and p.strip() for p in ignore):
        raise invalid_option("ignore", ignore, "give a list of label patterns such as ['intrusion*', 'nct6798-isa-02a0/AUXTIN*']")
    return [pattern.strip() for pattern in ignore]


def _float(value: Any) -> Optional[float]:
    if isinstance(value, bool):
        return None
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    return number if math.isfinite(number) else None


# ---------------------------------------------------------------- normalising and judging
def _placeholder(kind: str, name: str, value: float) -> bool:
    """Limits and values drivers print for "none": they must not raise alarms."""
    if not math.isfinite(value) or abs(value) >= 4294967.0:  # 0xffffffff / 1000 (power_meter)
        return True
    if value <= -273.0:  # at or below absolute zero (NVMe and amdgpu "no limit")
        return True
    if kind == "temperature" and value >= 65000.0:  # NVMe 0xffff kelvin, 65261.85 °C
        return True
    if kind == "temperature" and name in ("min", "lcrit") and value >= 127.0:  # unset 8-bit low limit
        return True
    return name in UPPER and value == 0.0  # an upper limit of 0 is an unprogrammed register


def normalise(raw: RawFeature) -> Reading:
    kind = raw.kind if raw.kind in KINDS else "other"
    # 6 decimals: IPMI conversions give 12.100000000000001, unit scaling 0.5000000001
    attrs = {name: round(number, 6) if math.isfinite(number) else number for name, number in raw.attrs.items()}
    placeholders: Dict[str, float] = {}
    errors = list(raw.errors)
    value = attrs.pop("input", None)
    if value is None and kind == "power" and "average" in attrs:
        value = attrs["average"]  # power meters often only have an average
    if value is not None and (_placeholder(kind, "input", value) or (kind == "temperature" and value >= 65000.0)):
        placeholders["input"] = value
        errors.append(f"the driver reports {_fmt(value, None)}, which means no reading")
        value = None
    limits: Dict[str, Optional[float]] = {}
    for name in LIMITS:
        limit = attrs.pop(name, None)
        if limit is not None and _placeholder(kind, name, limit):
            placeholders[name] = limit
            limit = None
        limits[name] = limit
    hysteresis: Dict[str, float] = {}
    alarm: List[str] = []
    extra: Dict[str, float] = {}
    for name, number in sorted(attrs.items()):
        if name.endswith("_hyst"):
            if _placeholder(kind, "hyst", number):
                placeholders[name] = number
            else:
                hysteresis[name[: -len("_hyst")]] = number
        elif name == "alarm" or name.endswith("_alarm") or name == "fault":
            if number:
                alarm.append(name)
        elif _placeholder(kind, name, number) and name in ("average", "interval", "cap", "lowest", "highest"):
            placeholders[name] = number
        else:
            extra[name] = number
    unit = raw.unit if raw.unit else KIND_UNIT.get(kind)
    return Reading(raw.chip, raw.adapter, raw.label, raw.feature, kind, value, unit, limits, hysteresis, alarm, extra,
                   placeholders, list(raw.states), raw.device_status, errors)


def _fmt(number: float, unit: Optional[str]) -> str:
    text = f"{number:.3f}".rstrip("0").rstrip(".")
    return f"{text} {unit}" if unit else text


def judge(reading: Reading) -> None:
    """Set ``status`` and ``reason`` from value, limits, alarm flags and the BMC's own verdict."""
    critical: List[str] = []
    warning: List[str] = []
    value, unit, limits = reading.value, reading.unit, reading.limits
    if value is not None:
        for name in ("crit", "emergency"):
            limit = limits[name]
            if limit is not None and value >= limit:
                critical.append(f"{_fmt(value, unit)} >= {name} {_fmt(limit, unit)}")
        if limits["lcrit"] is not None and value <= limits["lcrit"]:
            critical.append(f"{_fmt(value, unit)} <= lcrit {_fmt(limits['lcrit'], unit)}")
        if not critical and limits["max"] is not None and value >= limits["max"]:
            warning.append(f"{_fmt(value, unit)} >= max {_fmt(limits['max'], unit)}")
        if not critical and limits["min"] is not None and value < limits["min"]:
            warning.append(f"{_fmt(value, unit)} < min {_fmt(limits['min'], unit)}")
    for flag in reading.alarm:
        if reading.kind == "intrusion":
            warning.append("chassis intrusion detected")
        elif flag == "fault":
            warning.append("the chip reports a sensor fault")
        elif flag in CRITICAL_FLAGS:
            critical.append(f"the chip raised {flag}")
        else:
            warning.append(f"the chip raised {flag}")
    if reading.device_status in ("critical", "warning"):
        said = ", ".join(reading.states) or reading.device_status
        (critical if reading.device_status == "critical" else warning).append(f"the BMC reports {said}")
    if critical:
        reading.status, reading.reason = "critical", "; ".join(critical)
    elif warning:
        reading.status, reading.reason = "warning", "; ".join(warning)
    elif value is None and reading.device_status != "ok" and not (reading.kind == "intrusion" and reading.device_status is None and not reading.errors):
        reading.status = "unknown"
        reading.reason = "; ".join(reading.errors) or "no value"
    else:
        reading.status, reading.reason = "ok", None


def _match(pattern: str, *names: Optional[str]) -> bool:
    return any(fnmatch.fnmatchcase(name.lower(), pattern.lower()) for name in names if name)


def is_ignored(reading: Reading, patterns: Sequence[str]) -> bool:
    for pattern in patterns:
        if "/" in pattern:
            if _match(pattern, *(f"{reading.chip}/{name}" for name in reading.names())):
                return True
        elif _match(pattern, *reading.names()):
            return True
    return False


def apply_rules(reading: Reading, rules: Sequence[Rule]) -> None:
    """Later rules override earlier ones, limit by limit."""
    for rule in rules:
        if rule.kind is not None and rule.kind != reading.kind:
            continue
        if rule.chip is not None and not _match(rule.chip, reading.chip):
            continue
        if rule.label is not None and not _match(rule.label, *reading.names()):
            continue
        reading.limits.update(rule.limits)
        reading.override = True


def verdict(features: Sequence[RawFeature], rules: Sequence[Rule] = (), ignore: Sequence[str] = (),
            source: str = "", messages: Sequence[str] = ()) -> Dict[str, Any]:
    """Readings, alarms, counts and one health word for a set of features."""
    readings: List[Reading] = []
    ignored = 0
    for raw in features:
        reading = normalise(raw)
        if is_ignored(reading, ignore):
            ignored += 1
            continue
        apply_rules(reading, rules)
        judge(reading)
        readings.append(reading)
    counts = {status: sum(1 for r in readings if r.status == status) for status in STATUSES}
    alarms = sorted((r for r in readings if r.status in ("warning", "critical")), key=lambda r: SEVERITY[r.status])
    counts.update(total=len(readings), ignored=ignored, alarms=len(alarms))
    if counts["critical"]:
        health = "CRITICAL"
    elif counts["warning"]:
        health = "WARNING"
    elif counts["ok"]:
        health = "OK"
    else:
        health = "UNKNOWN"
    kinds: Dict[str, int] = {}
    for reading in readings:
        kinds[reading.kind] = kinds.get(reading.kind, 0) + 1
    return {
        "health": health,
        "alarms": [r.alarm_entry() for r in alarms],
        "counts": counts,
        "kinds": kinds,
        "readings": [r.to_dict() for r in readings],
        "source": source,
        "messages": list(dict.fromkeys(messages)),
    }


# ---------------------------------------------------------------- outputs given as text (the filter)
def detect_format(text: str) -> str:
    for line in text.splitlines():
        stripped = line.strip()
        if not stripped or stripped.startswith(("ERROR:", "Error:")) and "|" not in stripped:
            continue
        if stripped.startswith("{"):
            return "json"
        break
    return "ipmitool" if _sensors_ipmi.looks_like_ipmitool(text) else "text"


def read_output(data: Any, fmt: str = "auto") -> Tuple[List[RawFeature], List[str], str]:
    """Features from collected output: ``sensors -j``, ``sensors [-u]``, ipmitool text, or a parsed JSON tree."""
    if fmt not in FORMATS:
        raise invalid_option("format", fmt, f"use one of {', '.join(FORMATS)}")
    if isinstance(data, Mapping) and "stdout" in data and not any(isinstance(v, Mapping) for v in data.values()):
        data = data.get("stdout")  # a registered command result
    if isinstance(data, Mapping):
        messages: List[str] = []
        return parse.features_from_tree(dict(data), messages), messages, "lm_sensors_json"
    if isinstance(data, (list, tuple)) and all(isinstance(line, str) for line in data):
        data = "\n".join(data)  # stdout_lines
    if data is None:
        data = ""
    if not isinstance(data, str):
        raise PmInputError(f"sensors data of type {type(data).__name__} is not valid; pass the output text of sensors, sensors -j or ipmitool sdr")
    chosen = detect_format(data) if fmt == "auto" else fmt
    if chosen == "json":
        features, messages = parse.parse_json(data)
        return features, messages, "lm_sensors_json"
    if chosen == "ipmitool":
        features, messages = _sensors_ipmi.parse_ipmitool(data)
        return features, messages, "ipmitool"
    features, messages = parse.parse_text(data)
    return features, messages, "lm_sensors_text"


def parse_output(data: Any, fmt: str = "auto", thresholds: Any = None, ignore: Any = None) -> Dict[str, Any]:
    """The filter ``parse_sensors``: collected output -> the same structure as the module returns."""
    rules = check_rules(thresholds)
    patterns = check_ignore(ignore)
    features, messages, source = read_output(data, fmt)
    return verdict(features, rules, patterns, source, messages)


# ---------------------------------------------------------------- the module backend
def attach_errors(features: Sequence[RawFeature], lines: Sequence[str]) -> None:
    """Put lm-sensors' stderr ``ERROR: Can't get value of subfeature temp1_input`` on the valueless feature."""
    for line in lines:
        match = re.search(r"subfeature ([a-z]+\d+)_", line)
        if not match:
            continue
        for feature in features:
            if match.group(1) in (feature.feature, feature.label) and "input" not in feature.attrs and line not in feature.errors:
                feature.errors.append(line)


def read_local(source: str, runner: Runner, which: Callable[[str], Optional[str]], hwmon_path: str) -> Tuple[List[RawFeature], List[str], str]:
    """The machine's own sensors: ``sensors -j``, then ``sensors -u``, then sysfs hwmon."""
    messages: List[str] = []
    sensors = which("sensors") if source in ("auto", "lm_sensors") else None
    if source == "lm_sensors" and not sensors:
        raise PmUnsupportedError(
            "source 'lm_sensors' needs the sensors command, which is not installed here; install lm-sensors or use source: sysfs"
        )
    if sensors:
        found_none = False
        for argv, reader, used in (([sensors, "-j"], parse.parse_json, "lm_sensors_json"), ([sensors, "-u"], parse.parse_text, "lm_sensors_text")):
            rc, out, err = runner(argv)
            err_lines = [line.strip() for line in (err or "").splitlines() if line.strip()]
            if "No sensors found!" in (out or "") + (err or ""):
                found_none = True
                messages.append("lm-sensors: No sensors found!")
                break
            try:
                features, parsed = reader(out or "")
            except PmError as error:
                messages.append(f"{' '.join(argv[1:])}: {error.msg}")
                continue
            if features:
                attach_errors(features, err_lines)
                return features, messages + parsed + err_lines, used
            if rc != 0:
                messages.append(f"sensors {' '.join(argv[1:])} failed (rc {rc}): {' '.join(err_lines)[:200]}")
        if source == "lm_sensors":
            return [], messages, "lm_sensors_json" if found_none else "lm_sensors_text"
    features, parsed = parse.read_sysfs(hwmon_path)
    return features, messages + parsed, "sysfs"


def run(params: Dict[str, Any], runner: Optional[Runner] = None, which: Optional[Callable[[str], Optional[str]]] = None) -> Dict[str, Any]:
    """The pm_sensors backend. Reads only; ``changed`` is always false."""
    source = params.get("source") or "auto"
    if source not in SOURCES:
        raise invalid_option("source", source, f"use one of {', '.join(SOURCES)}")
    fail_on_health = params.get("fail_on_health") or "never"
    if fail_on_health not in FAIL_ON:
        raise invalid_option("fail_on_health", fail_on_health, f"use one of {', '.join(FAIL_ON)}")
    rules = check_rules(params.get("thresholds"))
    patterns = check_ignore(params.get("ignore"))
    extra: Dict[str, Any] = {}
    protocol = params.get("protocol")
    if source in BMC_SOURCES and protocol not in (None, "auto", source):
        raise PmInputError(
            f"protocol '{protocol}' does not match source '{source}'; set source: {protocol} to read the BMC over {protocol}, or leave protocol out"
        )
    if source == "ipmi":
        features, messages, used, extra = _sensors_ipmi.read(params)
        extra = dict(extra, protocol="ipmi")
    elif source == "redfish":
        from ansible_collections.ctys.pm.plugins.module_utils._redfish import sensors as _sensors_redfish  # only when asked

        features, messages, used, extra = _sensors_redfish.read(params)
    else:
        if params.get("bmc"):
            raise PmInputError(f"bmc is only used with source 'ipmi' or 'redfish', not with source '{source}'; set source: ipmi or leave bmc out")
        if runner is None or which is None:
            raise PmError("internal: read_local needs a command runner")
        features, messages, used = read_local(source, runner, which, params.get("hwmon_path") or HWMON_ROOT)
    result = verdict(features, rules, patterns, used, messages)
    result.update(extra)
    result["changed"] = False
    if not result["readings"] and not result["counts"]["ignored"]:
        where = f"the BMC at {extra['bmc']}" if "bmc" in extra else "this machine"
        result["warnings"] = [f"no sensors found on {where} ({used}); health is UNKNOWN"]
    if params.get("set_facts"):
        result["ansible_facts"] = {"pm_sensors": {k: v for k, v in result.items() if k not in ("changed", "warnings")}}
    if _fails(result["health"], fail_on_health):
        raise PmError(failure_message(result, fail_on_health), **{k: v for k, v in result.items() if k != "ansible_facts"})
    return result


def _fails(health: str, fail_on_health: str) -> bool:
    return (fail_on_health == "critical" and health == "CRITICAL") or (fail_on_health == "warning" and health in ("WARNING", "CRITICAL"))


def failure_message(result: Mapping[str, Any], fail_on_health: str) -> str:
    counts = result["counts"]
    shown = "; ".join(f"{a['chip']}/{a['label']} {a['status']}: {a['reason']}" for a in result["alarms"][:5])
    more = f"; and {len(result['alarms']) - 5} more" if len(result["alarms"]) > 5 else ""
    return (
        f"health is {result['health']} ({counts['critical']} critical, {counts['warning']} warning readings), "
        f"which fail_on_health '{fail_on_health}' does not accept: {shown}{more}"
    )
