# Copyright: ctys.pm contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Read sensors as lm-sensors and sysfs present them, into one raw shape.

Every reader returns :class:`RawFeature` objects (one per sensor feature, with
attributes named as in sysfs: ``input``, ``max``, ``crit``, ``crit_alarm``,
``max_hyst`` ...) and messages (lm-sensors' ``ERROR:`` lines and the like).
``_sensors`` turns them into readings and a verdict; ``_ipmi.sensors`` reads
the BMC's sensors (over pyghmi, or from ipmitool's text) into the same shape.

What lm-sensors really prints is messy, and all of it is handled here:
``ERROR:`` lines from stderr inside the JSON, trailing commas, two JSON
objects back to back, ``-A`` output without adapter lines, ``-u`` raw output,
``N/A`` values, ``ALARM`` suffixes, limits wrapped onto a second line, `` C``
instead of ``°C``, and values in mV, mA, mW, kJ ...
"""

from __future__ import annotations

import json
import os
import re
from dataclasses import dataclass, field
from typing import Any, Dict, List, Optional, Tuple

from ansible_collections.ctys.pm.plugins.module_utils._errors import PmError

# sysfs name prefix -> kind
PREFIX_KIND = {
    "temp": "temperature",
    "in": "voltage",
    "fan": "fan",
    "power": "power",
    "curr": "current",
    "energy": "energy",
    "humidity": "humidity",
    "intrusion": "intrusion",
    "cpu": "voltage",  # cpu0_vid, the CPU's requested core voltage
    "vid": "voltage",
}
# canonical unit per kind (what libsensors reports, after sysfs scaling)
KIND_UNIT = {
    "temperature": "°C",
    "voltage": "V",
    "fan": "RPM",
    "power": "W",
    "current": "A",
    "energy": "J",
    "humidity": "%RH",
    "intrusion": None,
    "other": None,
}
# a unit as printed -> (kind, factor to the canonical unit)
UNITS: Dict[str, Tuple[str, float]] = {
    "°C": ("temperature", 1.0), "C": ("temperature", 1.0), "°F": ("temperature", 1.0), "F": ("temperature", 1.0),
    "V": ("voltage", 1.0), "mV": ("voltage", 1e-3),
    "RPM": ("fan", 1.0),
    "W": ("power", 1.0), "mW": ("power", 1e-3), "uW": ("power", 1e-6), "µW": ("power", 1e-6),
    "kW": ("power", 1e3), "MW": ("power", 1e6),
    "A": ("current", 1.0), "mA": ("current", 1e-3), "uA": ("current", 1e-6),
    "J": ("energy", 1.0), "mJ": ("energy", 1e-3), "uJ": ("energy", 1e-6), "µJ": ("energy", 1e-6),
    "kJ": ("energy", 1e3), "MJ": ("energy", 1e6),
    "%RH": ("humidity", 1.0),
}
FAHRENHEIT = ("°F", "F")
MAX_TEXT = 4_000_000  # characters; real outputs are a few kB
MAX_DEPTH = 16  # lm-sensors JSON is three levels deep


@dataclass
class RawFeature:
    """One sensor feature as read, before judging."""

    chip: str
    adapter: Optional[str]
    label: str
    feature: Optional[str] = None  # sysfs feature name such as temp1, when known
    kind: Optional[str] = None
    attrs: Dict[str, float] = field(default_factory=dict)
    errors: List[str] = field(default_factory=list)  # why there is no value
    device_status: Optional[str] = None  # the BMC's own verdict: ok, warning, critical, unknown
    states: List[str] = field(default_factory=list)
    unit: Optional[str] = None  # unit when not the kind's canonical one (IPMI percent, feet ...)


def check_size(text: str, what: str) -> None:
    if len(text) > MAX_TEXT:
        raise PmError(f"the {what} is {len(text)} characters long, more than {MAX_TEXT}; pass the output of one machine")


# ---------------------------------------------------------------- sensors -j
_TOKEN = re.compile(
    r"""(?P<ws>\s+)
    |(?P<error>(?:ERROR|Error|WARNING|Warning):[^\n]*)
    |(?P<string>"(?:[^"\\\n]|\\.)*")
    |(?P<number>[-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?)
    |(?P<punct>[{}\[\]:,])
    |(?P<word>-?[A-Za-z_][A-Za-z0-9_.+-]*)""",
    re.X,
)
_WORDS = {"true": 1.0, "false": 0.0, "null": None, "nan": None, "inf": None, "-nan": None}


class _Obj(dict):
    """A JSON object that remembers the ERROR lines found inside it."""

    def __init__(self) -> None:
        super().__init__()
        self.errors: List[str] = []


class _Lenient:
    """A JSON reader that accepts lm-sensors' broken JSON and nothing much worse."""

    def __init__(self, text: str) -> None:
        self.text = text
        self.tokens: List[Tuple[str, str, int]] = []
        position = 0
        while position < len(text):
            match = _TOKEN.match(text, position)
            if match is None:
                raise self._error("an unexpected character", position)
            if match.lastgroup != "ws":
                self.tokens.append((match.lastgroup or "", match.group(), position))
            position = match.end()
        self.index = 0
        self.truncated = False

    def _error(self, what: str, position: int) -> PmError:
        line = self.text.count("\n", 0, position) + 1
        near = self.text[position:position + 20].split("\n")[0]
        return PmError(f"the sensors -j output is not JSON: {what} at line {line} near '{near}'; pass the output of 'sensors -j' unchanged")

    def _next(self) -> Optional[Tuple[str, str, int]]:
        if self.index >= len(self.tokens):
            return None
        token = self.tokens[self.index]
        self.index += 1
        return token

    def _peek(self) -> Optional[Tuple[str, str, int]]:
        return self.tokens[self.index] if self.index < len(self.tokens) else None

    def documents(self) -> Tuple[Dict[str, Any], List[str]]:
        merged: Dict[str, Any] = {}
        messages: List[str] = []
        while True:
            token = self._next()
            if token is None:
                return merged, messages
            kind, value, position = token
            if kind == "error":
                messages.append(value.strip())
            elif value == "{":
                document = self._object(1)
                messages.extend(document.errors)
                merged.update(document)  # `sensors -j a b` may print one object per chip (lm-sensors #372)
            elif value != ",":
                raise self._error(f"'{value}' where a JSON object should start", position)

    def _value(self, depth: int) -> Any:
        token = self._next()
        if token is None:
            self.truncated = True
            return None
        kind, value, position = token
        if value == "{":
            return self._object(depth + 1)
        if value == "[":
            return self._array(depth + 1)
        if kind == "string":
            return _string(value)
        if kind == "number":
            return float(value)
        if kind == "word" and value.lower() in _WORDS:
            return _WORDS[value.lower()]
        raise self._error(f"'{value}' where a value should be", position)

    def _object(self, depth: int) -> _Obj:
        if depth > MAX_DEPTH:
            raise PmError(f"the sensors -j output nests deeper than {MAX_DEPTH} levels; pass the output of 'sensors -j' unchanged")
        obj = _Obj()
        while True:
            token = self._next()
            if token is None:
                self.truncated = True
                return obj
            kind, value, position = token
            if value == "}":
                return obj
            if value == ",":
                continue  # trailing and doubled commas (lm-sensors prints one after "Adapter" of an empty chip)
            if kind == "error":
                obj.errors.append(value.strip())
                continue
            if kind != "string":
                raise self._error(f"'{value}' where a name should be", position)
            colon = self._next()
            if colon is None:
                self.truncated = True
                return obj
            if colon[1] != ":":
                raise self._error(f"'{colon[1]}' where ':' should be", colon[2])
            obj[_string(value)] = self._value(depth)

    def _array(self, depth: int) -> List[Any]:
        if depth > MAX_DEPTH:
            raise PmError(f"the sensors -j output nests deeper than {MAX_DEPTH} levels; pass the output of 'sensors -j' unchanged")
        items: List[Any] = []
        while True:
            token = self._peek()
            if token is None:
                self.truncated = True
                return items
            if token[1] == "]":
                self.index += 1
                return items
            if token[1] == "," or token[0] == "error":
                self.index += 1
                continue
            items.append(self._value(depth))


def _string(token: str) -> str:
    try:
        return str(json.loads(token))
    except ValueError:
        return token[1:-1]


def parse_json(text: str) -> Tuple[List[RawFeature], List[str]]:
    """``sensors -j`` output (with its known bugs) -> features and messages."""
    check_size(text, "sensors -j output")
    reader = _Lenient(text)
    chips, messages = reader.documents()
    if reader.truncated:
        messages.append("the sensors -j output ended early; readings after that point are missing")
    return features_from_tree(chips, messages), messages


def features_from_tree(chips: Dict[str, Any], messages: List[str]) -> List[RawFeature]:
    """A parsed ``sensors -j`` tree (chip -> label -> subfeature -> value) -> features."""
    features: List[RawFeature] = []
    for chip, body in chips.items():
        if not isinstance(body, dict):
            messages.append(f"chip {chip} has no features")
            continue
        adapter = body.get("Adapter") if isinstance(body.get("Adapter"), str) else None
        for label, subfeatures in body.items():
            if label == "Adapter":
                continue
            if not isinstance(subfeatures, dict):
                messages.append(f"{chip}/{label} is not a feature")
                continue
            errors = list(getattr(subfeatures, "errors", []))
            messages.extend(error for error in errors if error not in messages)
            values = {str(k): v for k, v in subfeatures.items() if isinstance(v, (int, float)) or v is None}
            feature = feature_from_subfeatures(str(chip), adapter, str(label), values, errors)
            if feature is None and not subfeatures:
                # an empty feature: the ERROR line that explains it went to stderr
                name = str(label) if re.match(r"^[a-z]+\d+$", str(label)) else None
                feature = RawFeature(str(chip), adapter, str(label), name, _kind_from_name(str(label)))
            if feature is not None:
                features.append(feature)
    return features


_SUBFEATURE = re.compile(r"^([a-z]+?)(\d*)_([a-z_]+)$")
_ATTR_ALIASES = {"average_interval": "interval", "vid": "input"}


def feature_from_subfeatures(
    chip: str, adapter: Optional[str], label: str, values: Dict[str, Optional[float]], errors: List[str]
) -> Optional[RawFeature]:
    """Subfeatures named as by libsensors (``temp1_input``...) -> one feature; None for non-sensors (beep_enable)."""
    prefix = number = None
    attrs: Dict[str, float] = {}
    for name, value in values.items():
        match = _SUBFEATURE.match(name)
        if match is None:
            continue
        if prefix is None:
            prefix, number = match.group(1), match.group(2)
        attr = _ATTR_ALIASES.get(match.group(3), match.group(3))
        if attr == "beep" or attr.endswith("_beep") or attr == "enable" and prefix == "beep":
            continue
        if value is not None:
            attrs[attr] = float(value)
        else:
            errors.append(f"{name} has no value")
    if prefix == "beep" or (prefix is None and not errors):
        return None
    kind = PREFIX_KIND.get(prefix or "", "other")
    if prefix is None:  # only ERROR lines: the feature is the one the error names
        match = re.search(r"subfeature ([a-z]+)(\d+)_", " ".join(errors))
        if match:
            prefix, number = match.group(1), match.group(2)
            kind = PREFIX_KIND.get(prefix, "other")
        else:
            kind = _kind_from_name(label)
    feature = f"{prefix}{number}" if prefix else None
    return RawFeature(chip, adapter, label, feature, kind, attrs, errors)


def _kind_from_name(name: str) -> str:
    match = re.match(r"^\s*([a-z]+)\d+\b", name)
    if match and match.group(1) in PREFIX_KIND:
        return PREFIX_KIND[match.group(1)]
    return "intrusion" if "intrusion" in name.lower() else "other"


# ---------------------------------------------------------------- sensors / sensors -u text
_BUSES = "isa|pci|i2c|spi|virtual|acpi|hid|mdio|scsi|sdio|platform|of|usb"
_CHIP = re.compile(rf"^\S+-(?:{_BUSES})-[0-9a-fA-F]+(?:-[0-9a-fA-F]+)?$")
_RAW_SUB = re.compile(r"^\s+([A-Za-z][A-Za-z0-9]*_[A-Za-z0-9_]+):\s*(\S*)\s*$")
_FEATURE = re.compile(r"^(?P<label>.*?):(?:\s+(?P<rest>.*))?$")
_UNIT = r"°C|°F|%RH|RPM|mV|uW|µW|mW|kW|MW|mA|uA|mJ|uJ|µJ|kJ|MJ|V|W|A|J|C|F"
_VALUE = re.compile(rf"^(?P<num>[-+]?(?:\d+(?:\.\d*)?|\.\d+))\s*(?P<unit>{_UNIT})?(?=\s|\(|$)")
_LIMIT_GROUP = re.compile(r"\(([^()]*=[^()]*)\)")
_LIMIT = re.compile(rf"^\s*(?P<name>[A-Za-z][A-Za-z ]*?)\s*=\s*(?P<num>N/A|[-+]?(?:\d+(?:\.\d*)?|\.\d+))\s*(?P<unit>{_UNIT})?\s*$")
_ALARM = re.compile(r"\bALARM\b(?:\s*\(([A-Z, ]+)\))?")
# names of limits in plain output (prog/sensors/chips.c) -> sysfs attribute
_LIMIT_NAMES = {
    "low": "min", "min": "min", "high": "max", "max": "max", "crit": "crit", "crit max": "crit", "crit high": "crit",
    "crit low": "lcrit", "crit min": "lcrit", "lcrit": "lcrit", "emerg": "emergency", "emergency": "emergency",
    "avg": "average", "average": "average", "lowest": "lowest", "highest": "highest", "cap": "cap",
    "interval": "interval", "div": "div", "input": "input",
}
_ALARM_NAMES = {"HIGH": "max_alarm", "MAX": "max_alarm", "LOW": "min_alarm", "MIN": "min_alarm", "CRIT": "crit_alarm",
                "LCRIT": "lcrit_alarm", "EMERGENCY": "emergency_alarm", "CAP": "cap_alarm"}
_NO_SENSORS = ("No sensors found!", "Make sure you loaded all the kernel drivers you need.", "Try sensors-detect to find out which these are.")


class _TextReader:
    def __init__(self) -> None:
        self.features: List[RawFeature] = []
        self.messages: List[str] = []
        self.unparsed: List[str] = []
        self.chip: Optional[str] = None
        self.adapter: Optional[str] = None
        self.raw_label: Optional[str] = None
        self.raw_values: Dict[str, Optional[float]] = {}
        self.last: Optional[RawFeature] = None
        self.pending_errors: List[str] = []

    def flush_raw(self) -> None:
        if self.raw_label is not None and self.chip is not None:
            feature = feature_from_subfeatures(self.chip, self.adapter, self.raw_label, self.raw_values, self._take_errors())
            if feature is not None:
                self.features.append(feature)
        self.raw_label = None
        self.raw_values = {}

    def _take_errors(self) -> List[str]:
        errors, self.pending_errors = self.pending_errors, []
        return errors

    def line(self, line: str) -> None:
        stripped = line.strip()
        if not stripped:
            self.last = None
            return
        if re.match(r"^(ERROR|Error|WARNING|Warning):", stripped):
            self.messages.append(stripped)
            self.pending_errors.append(stripped)
            return
        indented = line[0].isspace()
        if not indented and _CHIP.match(stripped):
            self.flush_raw()
            self.chip, self.adapter, self.last = stripped, None, None
            return
        if stripped.startswith("Adapter:") and self.chip is not None:
            self.adapter = stripped[len("Adapter:"):].strip() or None
            return
        raw = _RAW_SUB.match(line)
        if raw and self.raw_label is not None:
            self.raw_values[raw.group(1)] = to_number(raw.group(2))
            return
        if indented and stripped.startswith("(") and self.last is not None:
            _limits_into(self.last, stripped)  # a limit group wrapped onto its own line
            return
        match = _FEATURE.match(line)
        if match and self.chip is not None and not raw:
            self.flush_raw()
            label = match.group("label").strip()
            rest = (match.group("rest") or "").strip()
            if not rest:
                self.raw_label = label  # `sensors -u`: subfeature lines follow
                self.last = None
                return
            self.last = _plain_feature(self.chip, self.adapter, label, rest, self._take_errors())
            self.features.append(self.last)
            return
        if not indented and not any(c.isspace() for c in stripped) and ":" not in stripped:
            self.flush_raw()  # a chip of a bus this reader does not know
            self.chip, self.adapter, self.last = stripped, None, None
            return
        if stripped in _NO_SENSORS:
            self.messages.append(stripped)
            return
        self.unparsed.append(stripped)


def to_number(text: str) -> Optional[float]:
    try:
        return float(text)
    except ValueError:
        return None


def convert(value: float, unit: Optional[str]) -> float:
    if unit in FAHRENHEIT:
        return round((value - 32.0) * 5.0 / 9.0, 3)
    if unit in UNITS:
        factor = UNITS[unit][1]
        return value * factor if factor != 1.0 else value
    return value


def _plain_feature(chip: str, adapter: Optional[str], label: str, rest: str, errors: List[str]) -> RawFeature:
    feature_name = label if re.match(r"^[a-z]+\d+$", label) else None
    feature = RawFeature(chip, adapter, label, feature_name, None, {}, errors)
    value = _VALUE.match(rest)
    unit: Optional[str] = None
    if value:
        unit = value.group("unit")
        feature.attrs["input"] = convert(float(value.group("num")), unit)
        tail = rest[value.end():]
    elif rest.startswith("N/A"):
        feature.errors.append("N/A")
        tail = rest[3:]
    elif rest.split()[0] in ("ALARM", "OK"):
        tail = rest  # intrusion: ALARM or OK, no value
    else:
        feature.errors.append(f"unreadable value '{rest[:40]}'")
        tail = ""
    feature.kind = UNITS[unit][0] if unit in UNITS else _kind_from_name(label)
    _limits_into(feature, tail, unit)
    return feature


def _limits_into(feature: RawFeature, text: str, unit: Optional[str] = None) -> None:
    previous = None
    for group in _LIMIT_GROUP.findall(text):
        for item in group.split(","):
            match = _LIMIT.match(item)
            if match is None:
                continue
            name = " ".join(match.group("name").lower().split())
            attr = f"{previous or 'max'}_hyst" if name == "hyst" else _LIMIT_NAMES.get(name, name.replace(" ", "_"))
            previous = attr if name != "hyst" else previous
            number = to_number(match.group("num"))
            if number is not None:
                feature.attrs[attr] = convert(number, match.group("unit") or unit)
    outside = _LIMIT_GROUP.sub(" ", text)
    for alarm in _ALARM.finditer(outside):
        names = [n.strip() for n in (alarm.group(1) or "").split(",") if n.strip()]
        for name in names or ["ALARM"]:
            feature.attrs[_ALARM_NAMES.get(name, "alarm")] = 1.0
    if re.search(r"\bFAULT\b", outside):
        feature.attrs["fault"] = 1.0
    if feature.kind == "intrusion" and "alarm" not in feature.attrs and re.search(r"\bOK\b", outside):
        feature.attrs["alarm"] = 0.0


def parse_text(text: str) -> Tuple[List[RawFeature], List[str]]:
    """Plain ``sensors`` output, or ``sensors -u`` / ``-A`` raw output -> features and messages."""
    check_size(text, "sensors output")
    reader = _TextReader()
    for line in text.splitlines():
        reader.line(line.rstrip())
    reader.flush_raw()
    if reader.pending_errors:
        reader.messages.extend(e for e in reader.pending_errors if e not in reader.messages)
    if not reader.features and reader.unparsed:
        raise PmError(
            f"this does not look like the output of sensors: it begins with '{reader.unparsed[0][:60]}'; "
            "pass the output of 'sensors', 'sensors -u' or 'sensors -j' unchanged"
        )
    reader.messages.extend(f"line not understood: {line[:80]}" for line in reader.unparsed[:20])
    return reader.features, reader.messages


# ---------------------------------------------------------------- sysfs hwmon
_SYSFS_ATTR = re.compile(r"^(temp|in|fan|power|curr|energy|humidity|intrusion)(\d+)_([a-z_]+)$")
_SCALE = {"temp": 1e3, "in": 1e3, "curr": 1e3, "humidity": 1e3, "power": 1e6, "energy": 1e6, "fan": 1.0, "intrusion": 1.0}
_UNSCALED = ("alarm", "fault", "beep", "enable", "type", "pulses", "div", "label", "reset_history")


def read_sysfs(root: str = "/sys/class/hwmon") -> Tuple[List[RawFeature], List[str]]:
    """The kernel's hwmon devices under ``root``, read directly (when lm-sensors is not installed)."""
    features: List[RawFeature] = []
    messages: List[str] = []
    try:
        entries = sorted(os.listdir(root), key=_natural)
    except OSError as error:
        messages.append(f"no hwmon devices: cannot list {root} ({error.strerror or error})")
        return features, messages
    for entry in entries:
        path = os.path.join(root, entry)
        folder = path if _has_attrs(path) else os.path.join(path, "device")  # old kernels keep them on the device
        name = _read_text(os.path.join(path, "name")) or _read_text(os.path.join(folder, "name"))
        if not name:
            messages.append(f"{path} has no name; skipped")
            continue
        chip, adapter = _chip_name(name, path)
        try:
            files = sorted(os.listdir(folder), key=_natural)
        except OSError:
            continue
        groups: Dict[str, Dict[str, Optional[float]]] = {}
        errors: Dict[str, List[str]] = {}
        for filename in files:
            match = _SYSFS_ATTR.match(filename)
            if match is None or match.group(3) == "label":
                continue
            prefix, number, attr = match.groups()
            key = f"{prefix}{number}"
            groups.setdefault(key, {})
            try:
                text = _read_file(os.path.join(folder, filename))
            except OSError as error:
                if attr == "input":
                    errors.setdefault(key, []).append(f"cannot read {filename}: {error.strerror or error}")
                continue
            try:
                raw = float(text)
            except ValueError:
                continue
            scaled = attr.endswith(_UNSCALED) or attr in _UNSCALED
            if attr.endswith("interval"):
                raw /= 1e3  # ms
            elif not scaled:
                raw /= _SCALE[prefix]
            groups[key][f"{key}_{attr}"] = raw
        for key in sorted(groups, key=_natural):
            label = _read_text(os.path.join(folder, f"{key}_label")) or key
            feature = feature_from_subfeatures(chip, adapter, label, groups[key], errors.get(key, []))
            if feature is not None:
                features.append(feature)
    return features, messages


def _has_attrs(path: str) -> bool:
    try:
        return any(_SYSFS_ATTR.match(name) for name in os.listdir(path))
    except OSError:
        return False


def _natural(text: str) -> List[Any]:
    return [int(part) if part.isdigit() else part for part in re.split(r"(\d+)", text)]


def _read_file(path: str) -> str:
    with open(path, encoding="ascii", errors="replace") as handle:
        return handle.read(256).strip()


def _read_text(path: str) -> Optional[str]:
    try:
        return _read_file(path) or None
    except OSError:
        return None


def _chip_name(name: str, path: str) -> Tuple[str, str]:
    """The chip name lm-sensors would print (name-bus-address) and its adapter."""
    device = os.path.join(path, "device")
    if not os.path.exists(device):
        return f"{name}-virtual-0", "Virtual device"
    real = os.path.realpath(device)
    base = os.path.basename(real)
    subsystem = os.path.basename(os.path.realpath(os.path.join(real, "subsystem")))
    pci = re.match(r"^([0-9a-f]{4}):([0-9a-f]{2}):([0-9a-f]{2})\.([0-7])$", base)
    if pci:
        domain, bus, slot, function = (int(part, 16) for part in pci.groups())
        return f"{name}-pci-{(domain << 16) + (bus << 8) + (slot << 3) + function:04x}", "PCI adapter"
    i2c = re.match(r"^(\d+)-([0-9a-f]{4})$", base)
    if i2c:
        adapter = _read_text(os.path.join(os.path.dirname(real), "name")) or f"i2c-{i2c.group(1)}"
        return f"{name}-i2c-{int(i2c.group(1))}-{int(i2c.group(2), 16):02x}", adapter
    if subsystem == "acpi" or re.match(r"^[A-Z0-9_]+:\d+$", base):
        number = re.search(r":(\d+)$", base)
        return f"{name}-acpi-{int(number.group(1)) if number else 0:x}", "ACPI interface"
    scsi = re.match(r"^(\d+):(\d+):(\d+):(\d+)$", base)
    if scsi:
        return f"{name}-scsi-{int(scsi.group(1))}-{int(scsi.group(2)):x}", "SCSI adapter"
    if subsystem in ("platform", "isa"):
        number = re.search(r"\.(\d+)$", base)
        return f"{name}-isa-{int(number.group(1)) if number else 0:04x}", "ISA adapter"
    return f"{name}-virtual-0", "Virtual device"
