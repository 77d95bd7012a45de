"""The filter ctys.pm.parse_sensors: collected output in every shape a playbook has it, the module's verdict out."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from ansible.errors import AnsibleFilterError

from ansible_collections.ctys.pm.plugins.filter.parse_sensors import FilterModule

FIXTURES = Path(__file__).resolve().parents[3] / "unit" / "fixtures"
parse_sensors = FilterModule().filters()["parse_sensors"]


def text(name):
    return (FIXTURES / name).read_text(encoding="utf-8")


def test_plain_text_is_detected_and_judged():
    result = parse_sensors(text("sensors-text/13.txt"))
    assert result["source"] == "lm_sensors_text" and result["health"] == "WARNING"
    assert [a["label"] for a in result["alarms"]] == ["in5", "in6", "intrusion0"]
    assert result["counts"]["alarms"] == 3


def test_registered_result_lines_and_parsed_json_give_the_same_verdict():
    raw = text("sensors-json/1.json")
    from_text = parse_sensors(raw)
    registered = {"rc": 0, "stdout": raw, "stdout_lines": raw.splitlines(), "stderr": "", "changed": False}
    assert parse_sensors(registered)["readings"] == from_text["readings"]
    assert parse_sensors(raw.splitlines())["readings"] == from_text["readings"]
    from_tree = parse_sensors(json.loads(raw))  # `| from_json` first
    assert from_tree["readings"] == from_text["readings"] and from_tree["health"] == "CRITICAL"


def test_format_thresholds_and_ignore_as_in_the_module():
    raw = text("sensors-json/7.json")
    assert parse_sensors(raw, "json")["health"] == "OK"
    hot = parse_sensors(raw, thresholds=[{"kind": "temperature", "label": "Tctl", "critical": 50}])
    assert hot["health"] == "CRITICAL" and hot["alarms"][0]["reason"] == "51.625 °C >= crit 50 °C"
    quiet = parse_sensors(raw, thresholds=[{"kind": "temperature", "critical": 40}], ignore=["nvme-pci-0100/*", "Tctl", "Tccd1"])
    assert quiet["health"] == "CRITICAL"
    assert [a["label"] for a in quiet["alarms"]] == ["Tccd2"] and quiet["counts"]["ignored"] == 5


def test_ipmitool_text_is_detected():
    result = parse_sensors(text("ipmitool-sdr/3.txt"))
    assert result["source"] == "ipmitool" and result["kinds"]["fan"] == 12


def test_errors_become_filter_errors_with_one_sentence():
    with pytest.raises(AnsibleFilterError) as caught:
        parse_sensors(text("ipmitool-sdr/5.txt"))
    assert str(caught.value).startswith("parse_sensors: ipmitool could not read the sensors: ")
    with pytest.raises(AnsibleFilterError, match="^parse_sensors: format 'yaml' is not valid; use one of auto, json, text, ipmitool"):
        parse_sensors("", "yaml")
    with pytest.raises(AnsibleFilterError, match="^parse_sensors: this does not look like the output of sensors: it begins with 'hello world'"):
        parse_sensors("hello world\n")
    with pytest.raises(AnsibleFilterError, match="^parse_sensors: sensors data of type int is not valid"):
        parse_sensors(42)


def test_empty_output_is_unknown():
    result = parse_sensors("")
    assert result["health"] == "UNKNOWN" and result["readings"] == []
    no_sensors = parse_sensors("No sensors found!\nMake sure you loaded all the kernel drivers you need.\n")
    assert no_sensors["health"] == "UNKNOWN" and "No sensors found!" in no_sensors["messages"]
