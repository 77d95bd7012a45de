"""Property-based tests of the sensors readers: a verdict or the collection's own error, never anything else.

Inputs are random text and the recorded real outputs (tests/unit/fixtures) with random damage:
cut, doubled and inserted pieces made of the characters lm-sensors and ipmitool print.
"""

from __future__ import annotations

import math
import os
import tempfile
from pathlib import Path

from hypothesis import given, settings
from hypothesis import strategies as st

from ansible_collections.ctys.pm.plugins.module_utils import _sensors, _sensors_parse
from ansible_collections.ctys.pm.plugins.module_utils._errors import PmError

CASES = settings(max_examples=10_000, deadline=None)
FIXTURES = Path(__file__).resolve().parents[1] / "unit" / "fixtures"
SAMPLES = [p.read_text(encoding="utf-8") for d in ("sensors-json", "sensors-text", "ipmitool-sdr") for p in sorted((FIXTURES / d).iterdir())]
PIECES = st.sampled_from(
    ['{', '}', '[', ']', ':', ',', '"', '\n', ' ', '-', '+', '.', '0', '9', 'e5', 'ERROR: x\n', '°C', ' C', ' V', ' mA', ' RPM',
     'ALARM', 'ALARM (CRIT)', '(', ')', ' = ', 'N/A', 'nan', '-nan', 'inf', '|', 'ok', 'cr', 'temp1_input', 'in0_alarm', 'Adapter: ',
     '-isa-0000', 'intrusion0', '65261.850', '-273.150', '4294967.295', '1e400', '\t', '\\', '"\\u00b0"']
)


@st.composite
def damaged(draw):
    text = draw(st.sampled_from(SAMPLES))
    for _edit in range(draw(st.integers(0, 6))):
        start = draw(st.integers(0, len(text)))
        end = draw(st.integers(start, min(len(text), start + 40)))
        text = text[:start] + draw(st.lists(PIECES, max_size=4).map("".join)) + text[end:]
    return text


def check(result):
    assert result["health"] in ("OK", "WARNING", "CRITICAL", "UNKNOWN")
    counts = result["counts"]
    assert counts["total"] == len(result["readings"]) == sum(result["kinds"].values())
    assert counts["alarms"] == len(result["alarms"]) == counts["warning"] + counts["critical"]
    for reading in result["readings"]:
        assert reading["value"] is None or math.isfinite(reading["value"])
        assert reading["status"] in ("ok", "warning", "critical", "unknown")
        assert reading["status"] == "ok" or reading["reason"]
    for alarm in result["alarms"]:
        assert alarm["status"] in ("warning", "critical")


def verdict_or_error(data, fmt="auto"):
    try:
        result = _sensors.parse_output(data, fmt)
    except PmError as error:
        assert error.msg and isinstance(error.msg, str)
        return None
    check(result)
    return result


@CASES
@given(st.one_of(st.text(max_size=400), st.lists(PIECES, max_size=60).map("".join)))
def test_json_reader_on_random_text(text):
    verdict_or_error(text, "json")


@CASES
@given(st.one_of(st.text(max_size=400), st.lists(PIECES, max_size=60).map("".join)))
def test_text_reader_on_random_text(text):
    verdict_or_error(text, "text")


@CASES
@given(st.one_of(st.text(max_size=400), st.lists(PIECES, max_size=60).map("".join)))
def test_ipmitool_reader_on_random_text(text):
    verdict_or_error(text, "ipmitool")


@CASES
@given(damaged())
def test_damaged_real_outputs_with_detection(text):
    verdict_or_error(text)


@CASES
@given(st.recursive(st.one_of(st.none(), st.booleans(), st.floats(), st.integers(), st.text(max_size=8)),
                    lambda inner: st.one_of(st.lists(inner, max_size=4), st.dictionaries(st.text(max_size=8), inner, max_size=4)), max_leaves=20))
def test_parsed_trees_thresholds_and_ignore(value):
    try:
        tree = value if isinstance(value, dict) else {"chip-isa-0000": {"x": value}}
        as_list = value if isinstance(value, list) else None
        result = _sensors.parse_output(tree, thresholds=as_list, ignore=as_list)
    except PmError as error:
        assert error.msg
        return
    check(result)


FILE_NAMES = ["temp1_input", "temp1_max", "temp1_crit", "temp1_label", "in0_input", "in0_min", "fan1_input", "fan1_alarm",
              "power1_average", "intrusion0_alarm", "name", "humidity1_input", "curr1_max_hyst"]
HWMON = tempfile.mkdtemp(prefix="fuzz-hwmon-")


@CASES
@given(st.dictionaries(st.sampled_from(FILE_NAMES), st.one_of(st.text(max_size=12), st.integers(-10**13, 10**13).map(str)), max_size=5))
def test_sysfs_reader_on_random_file_contents(files):
    chip = Path(HWMON) / "hwmon0"
    chip.mkdir(exist_ok=True)
    for old in os.listdir(chip):
        os.unlink(chip / old)
    for name, content in files.items():
        (chip / name).write_text(content, encoding="utf-8", errors="replace")
    features, messages = _sensors_parse.read_sysfs(HWMON)
    check(_sensors.verdict(features, source="sysfs", messages=messages))
