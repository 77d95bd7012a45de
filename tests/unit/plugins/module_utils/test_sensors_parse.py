"""Every recorded sensors output (tests/unit/fixtures/INDEX.md) read as an operator would read it.

For each file: how many readings of each kind, some values and limits, and exactly the alarms a
person looking at that output would see; placeholder limits (-273.15, 65261.85, 4294967.295) never alarm.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from ansible_collections.ctys.pm.plugins.module_utils import _sensors
from ansible_collections.ctys.pm.plugins.module_utils._errors import PmConnectionError

FIXTURES = Path(__file__).resolve().parents[3] / "unit" / "fixtures"


def parsed(name, **kwargs):
    return _sensors.parse_output((FIXTURES / name).read_text(encoding="utf-8"), **kwargs)


def reading(result, label, chip=None):
    found = [r for r in result["readings"] if r["label"] == label and (chip is None or r["chip"] == chip)]
    assert len(found) == 1, f"{label} on {chip}: {len(found)} readings"
    return found[0]


def alarms(result):
    return sorted((a["chip"], a["label"], a["status"]) for a in result["alarms"])


# file -> (source, health, readings per kind, statuses that are not ok, alarms as (chip, label, status))
EXPECTED = {
    "sensors-json/1.json": ("lm_sensors_json", "CRITICAL", {"voltage": 15, "fan": 6, "temperature": 29, "intrusion": 2}, {"warning": 15, "critical": 5},
                            [("nct6798-isa-02a0", label, "critical") for label in ("SYSTIN", "AUXTIN0", "AUXTIN1", "AUXTIN2", "AUXTIN4")]
                            + [("nct6798-isa-02a0", f"in{n}", "warning") for n in (1, 2, 3, 4, 6, 7, 8, 9, 10, 11, 12, 13, 14)]
                            + [("nct6798-isa-02a0", "intrusion0", "warning"), ("nct6798-isa-02a0", "intrusion1", "warning")]),
    "sensors-json/3.json": ("lm_sensors_json", "OK", {"temperature": 20}, {}, []),
    "sensors-json/5.json": ("lm_sensors_json", "OK", {"temperature": 8, "fan": 1}, {}, []),
    "sensors-json/7.json": ("lm_sensors_json", "OK", {"temperature": 6}, {}, []),
    "sensors-json/9.json": ("lm_sensors_json", "OK", {"temperature": 1}, {}, []),
    "sensors-json/11.json": ("lm_sensors_json", "OK", {"temperature": 3, "voltage": 2, "power": 1}, {}, []),
    "sensors-json/13.json": ("lm_sensors_json", "OK", {"temperature": 2}, {}, []),
    "sensors-json/15.json": ("lm_sensors_json", "OK", {"temperature": 6, "voltage": 2, "power": 1}, {"unknown": 1}, []),
    "sensors-text/1.txt": ("lm_sensors_text", "OK", {"temperature": 7, "power": 1, "voltage": 2}, {}, []),
    "sensors-text/3.txt": ("lm_sensors_text", "WARNING", {"fan": 3, "temperature": 9, "voltage": 5, "power": 2, "current": 1, "intrusion": 2},
                           {"warning": 2}, [("nct6779-isa-0290", "intrusion0", "warning"), ("nct6779-isa-0290", "intrusion1", "warning")]),
    "sensors-text/5.txt": ("lm_sensors_text", "OK", {"temperature": 10}, {}, []),
    "sensors-text/7.txt": ("lm_sensors_text", "OK", {"temperature": 8}, {}, []),
    "sensors-text/9.txt": ("lm_sensors_text", "OK", {"temperature": 1, "voltage": 1}, {"unknown": 1}, []),
    "sensors-text/11.txt": ("lm_sensors_text", "OK", {"temperature": 4}, {}, []),
    "sensors-text/13.txt": ("lm_sensors_text", "WARNING", {"temperature": 4, "voltage": 10, "fan": 4, "intrusion": 1}, {"warning": 3},
                            [("it8718-isa-0228", "in5", "warning"), ("it8718-isa-0228", "in6", "warning"), ("it8718-isa-0228", "intrusion0", "warning")]),
    "sensors-text/15.txt": ("lm_sensors_text", "OK", {"temperature": 6}, {"unknown": 1}, []),
    "sensors-text/17.txt": ("lm_sensors_text", "OK", {"fan": 2, "temperature": 7}, {}, []),
    "sensors-text/19.txt": ("lm_sensors_text", "UNKNOWN", {"voltage": 1}, {"unknown": 1}, []),
    "sensors-text/21.txt": ("lm_sensors_text", "OK", {"temperature": 8, "voltage": 1, "current": 1}, {}, []),
    "sensors-text/23.txt": ("lm_sensors_text", "OK", {"temperature": 3}, {}, []),
    "sensors-text/25.txt": ("lm_sensors_text", "OK", {"voltage": 4, "fan": 3, "temperature": 2}, {}, []),
    "sensors-text/27.txt": ("lm_sensors_text", "OK", {"power": 1, "temperature": 6}, {"unknown": 1}, []),
    "ipmitool-sdr/1.txt": ("ipmitool", "OK", {"temperature": 1, "other": 121, "power": 1, "voltage": 4, "fan": 6}, {"unknown": 2}, []),
    "ipmitool-sdr/3.txt": ("ipmitool", "OK", {"other": 9, "fan": 12, "temperature": 7, "power": 1}, {}, []),
}


def test_every_fixture_file_is_covered():
    files = {f"{p.parent.name}/{p.name}" for d in ("sensors-json", "sensors-text", "ipmitool-sdr") for p in (FIXTURES / d).iterdir()}
    assert files == set(EXPECTED) | {"ipmitool-sdr/5.txt"}


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_fixture_kinds_health_and_alarms(name):
    source, health, kinds, not_ok, expected_alarms = EXPECTED[name]
    result = parsed(name)
    assert result["source"] == source
    assert result["kinds"] == kinds
    assert result["health"] == health
    counts = result["counts"]
    assert {k: counts[k] for k in ("warning", "critical", "unknown") if counts[k]} == not_ok
    assert counts["total"] == sum(kinds.values()) and counts["alarms"] == len(expected_alarms)
    assert alarms(result) == sorted(expected_alarms)
    assert all(a["reason"] for a in result["alarms"])
    severities = [a["status"] for a in result["alarms"]]
    assert severities == sorted(severities), "critical alarms come first"


def test_json_1_values_limits_and_reasons():
    result = parsed("sensors-json/1.json")
    systin = reading(result, "SYSTIN")
    assert (systin["value"], systin["max"], systin["crit"], systin["hysteresis"]) == (120.0, 80.0, 100.0, {"max": 75.0})
    assert systin["reason"] == "120 °C >= crit 100 °C"
    in1 = reading(result, "in1")
    # min 0 / max 0 are unprogrammed limits: only the chip's own alarm flag counts
    assert in1["alarm"] == ["alarm"] and in1["max"] is None and in1["placeholders"] == {"max": 0.0}
    assert in1["reason"] == "the chip raised alarm"
    assert reading(result, "in5")["status"] == "ok"  # no alarm subfeature, unset limits
    assert reading(result, "AUXTIN3")["value"] == -1.0 and reading(result, "AUXTIN3")["status"] == "ok"
    assert reading(result, "fan1")["value"] == 1278.0 and reading(result, "fan3")["status"] == "ok"
    assert reading(result, "intrusion0")["reason"] == "chassis intrusion detected"
    sensor1 = reading(result, "Sensor 1", "nvme-pci-0200")
    assert sensor1["min"] is None and sensor1["max"] is None
    assert sensor1["placeholders"] == {"min": -273.15, "max": 65261.85} and sensor1["status"] == "ok"
    composite = reading(result, "Composite")
    assert (composite["value"], composite["min"], composite["max"], composite["crit"]) == (34.85, -0.15, 82.85, 84.85)
    assert reading(result, "Core 31")["feature"] == "temp33"
    assert not [r for r in result["readings"] if r["label"] == "beep_enable"], "beep_enable is not a sensor"


def test_json_5_7_9_11_values():
    assert reading(parsed("sensors-json/5.json"), "temp1", "acpitz-virtual-0")["crit"] == 128.0
    fan = reading(parsed("sensors-json/5.json"), "fan1")
    assert (fan["kind"], fan["value"], fan["unit"], fan["status"]) == ("fan", 0.0, "RPM", "ok")
    seven = parsed("sensors-json/7.json")
    assert reading(seven, "Tctl")["value"] == 51.625 and reading(seven, "Tccd2")["feature"] == "temp4"
    assert all(r["min"] is None for r in seven["readings"] if r["chip"] == "nvme-pci-0100")
    assert reading(parsed("sensors-json/9.json"), "Tctl")["value"] == 66.0
    eleven = parsed("sensors-json/11.json")
    ppt = reading(eleven, "PPT")
    assert (ppt["kind"], ppt["value"], ppt["unit"]) == ("power", 18.0, "W")
    assert reading(eleven, "vddgfx")["unit"] == "V" and reading(eleven, "Composite")["min"] == -5.15


def test_json_13_two_objects_back_to_back_are_both_read():
    result = parsed("sensors-json/13.json")
    assert reading(result, "Tctl", "k10temp-pci-00c3")["value"] == 25.5
    drive = reading(result, "temp1", "drivetemp-scsi-0-0")
    assert drive["value"] == 22.0 and drive["adapter"] is None  # `sensors -A`: no adapter lines


def test_json_15_error_line_inside_the_json():
    result = parsed("sensors-json/15.json")
    wifi = reading(result, "temp1", "iwlwifi_1-virtual-0")
    assert wifi["value"] is None and wifi["status"] == "unknown" and wifi["kind"] == "temperature"
    assert wifi["reason"] == "ERROR: Can't get value of subfeature temp1_input: Can't read"
    assert result["messages"] == ["ERROR: Can't get value of subfeature temp1_input: Can't read"]
    assert reading(result, "Sensor 2")["value"] == 61.85 and reading(result, "Sensor 2")["placeholders"]["max"] == 65261.85


def test_text_13_alarms_as_a_person_sees_them():
    result = parsed("sensors-text/13.txt")
    in5 = reading(result, "in5")
    assert (in5["value"], in5["min"], in5["max"], in5["alarm"]) == (4.08, 0.0, 4.08, ["alarm"])
    assert reading(result, "+5V")["value"] == 2.93 and reading(result, "+5V")["status"] == "ok"
    k10 = reading(result, "temp1", "k10temp-pci-00c3")
    # the limits wrapped onto a second line: crit and its hysteresis
    assert (k10["value"], k10["max"], k10["crit"], k10["hysteresis"]) == (0.0, 70.0, 69.0, {"crit": 67.0})
    it_temp = reading(result, "temp2", "it8718-isa-0228")
    # low = +127 °C is the chip's unset register, not a limit that 46 °C is below
    assert it_temp["min"] is None and it_temp["placeholders"] == {"min": 127.0} and it_temp["max"] == 60.0
    assert reading(result, "fan4")["value"] == 0.0 and reading(result, "fan4")["status"] == "ok"
    assert reading(result, "fan1")["min"] == 10.0
    assert reading(result, "cpu0_vid")["value"] == 1.55 and reading(result, "Vbat")["kind"] == "voltage"
    assert reading(result, "intrusion0")["value"] is None and reading(result, "intrusion0")["kind"] == "intrusion"


def test_text_5_and_7_wrapped_crit_and_placeholders():
    five = parsed("sensors-text/5.txt")
    composite = reading(five, "Composite")
    assert (composite["value"], composite["max"], composite["crit"], composite["min"]) == (45.9, 83.8, 84.8, None)
    assert composite["placeholders"] == {"min": -273.1}
    assert reading(five, "Sensor 1")["placeholders"] == {"min": -273.1, "max": 65261.8}
    assert reading(five, "Package id 0")["max"] == 105.0 and reading(five, "temp1", "iwlwifi_1-virtual-0")["value"] == 56.0
    seven = parsed("sensors-text/7.txt")
    nvme = reading(seven, "Composite")
    assert (nvme["min"], nvme["max"], nvme["crit"]) == (-0.1, 117.8, 149.8)
    assert reading(seven, "temp2", "acpitz-acpi-0")["crit"] == 119.0


def test_text_raw_formats():
    one = parsed("sensors-text/1.txt")
    voltage = reading(one, "+3.3 Voltage")  # ' +3.3 Voltage:' with its leading space
    assert (voltage["feature"], voltage["value"], voltage["min"], voltage["max"]) == ("in1", 3.36, 2.97, 3.63)
    assert reading(one, "Core 1", "coretemp-isa-0001")["value"] == 70.0
    meter = reading(one, "power1")
    assert meter["value"] == 0.0 and meter["extra"] == {"average": 0.0, "interval": 300.0}
    three = parsed("sensors-text/3.txt")  # no blank lines between chips, a chip name with a colon
    assert reading(three, "curr1", "ucsi_source_psy_USBC000:001-isa-0000")["status"] == "ok"
    junction = reading(three, "junction")
    assert (junction["crit"], junction["emergency"], junction["placeholders"]) == (100.0, 105.0, {"crit_hyst": -273.15})
    assert reading(three, "PPT", "amdgpu-pci-6700")["value"] == 8.144
    assert reading(three, "fan1", "amdgpu-pci-0300")["max"] == 4900.0
    twenty_three = parsed("sensors-text/23.txt")
    k10 = reading(twenty_three, "temp1", "k10temp-pci-00c3")
    assert (k10["value"], k10["max"], k10["crit"], k10["hysteresis"]) == (48.125, 70.0, 100.0, {"crit": 99.0})
    assert k10["adapter"] == "PCI adapter"


def test_text_27_sentinel_power_is_unknown_not_an_alarm():
    result = parsed("sensors-text/27.txt")
    meter = reading(result, "power1")
    assert meter["value"] is None and meter["status"] == "unknown"
    assert meter["reason"] == "the driver reports 4294967.295, which means no reading"
    assert meter["placeholders"] == {"input": 4294967.295, "average": 4294967.295, "interval": 4294967.295}
    assert reading(result, "Package id 0")["value"] == 36.0


def test_text_other_machines():
    nine = parsed("sensors-text/9.txt")
    assert reading(nine, "in0")["status"] == "unknown" and reading(nine, "in0")["reason"] == "N/A"
    assert reading(nine, "temp1")["value"] == 32.6
    fifteen = parsed("sensors-text/15.txt")
    wifi = reading(fifteen, "temp1", "iwlwifi-virtual-0")
    assert wifi["status"] == "unknown" and "I/O error" in wifi["reason"]
    assert reading(fifteen, "Physical id 0")["crit"] == 100.0
    seventeen = parsed("sensors-text/17.txt")
    assert [reading(seventeen, f"fan{n}")["value"] for n in (1, 2)] == [3189.0, 3163.0]
    nineteen = parsed("sensors-text/19.txt")
    assert nineteen["counts"]["ok"] == 0, "a Pi whose only sensor reads N/A: nothing can be judged"
    twenty_one = parsed("sensors-text/21.txt")
    battery = reading(twenty_one, "curr1")
    assert (battery["kind"], battery["value"], battery["unit"]) == ("current", 0.5, "A")  # 500.00 mA
    assert reading(twenty_one, "temp1", "iwlwifi_1-virtual-0")["adapter"] == "Virtual device"
    assert reading(twenty_one, "Composite")["crit"] == 84.8
    twenty_five = parsed("sensors-text/25.txt")
    assert reading(twenty_five, "+12 Voltage")["min"] == 10.2
    assert reading(twenty_five, "CPU FAN Speed")["value"] == 3229.0 and reading(twenty_five, "CPU FAN Speed")["min"] == 600.0
    assert reading(twenty_five, "MB Temperature")["max"] == 45.0


def test_ipmitool_outputs():
    one = parsed("ipmitool-sdr/1.txt")
    ambient = reading(one, "Ambient Temp")
    assert (ambient["kind"], ambient["value"], ambient["unit"]) == ("temperature", 20.0, "°C")
    assert reading(one, "Planar 12V")["value"] == 12.04 and reading(one, "Avg Power")["unit"] == "W"
    assert reading(one, "Altitude")["unit"] == "feet"
    backplane = reading(one, "DASD Backplane 3")
    assert backplane["status"] == "unknown" and backplane["reason"] == "Not Readable"
    assert reading(one, "CPU 1")["status"] == "ok"  # a discrete sensor in state 0x00, status ok
    three = parsed("ipmitool-sdr/3.txt")
    temp = reading(three, "Temp 1")
    assert (temp["value"], temp["max"], temp["crit"], temp["emergency"]) == (37.0, 67.0, 70.0, 75.0)
    fan = reading(three, "Fan 5")
    assert (fan["kind"], fan["value"], fan["unit"]) == ("fan", 41.944, "%")
    assert reading(three, "Power Meter")["value"] == 374.0


def test_ipmitool_error_output_is_an_error_not_a_healthy_machine():
    with pytest.raises(PmConnectionError) as caught:
        parsed("ipmitool-sdr/5.txt")
    assert caught.value.msg.startswith("ipmitool could not read the sensors: Authentication type NONE not supported; Error: Unable to establish LAN session")


# ---------------------------------------------------------------- known lm-sensors misprints, built from the real files
def test_trailing_comma_after_adapter_of_an_empty_chip():
    # lm-sensors prints `"Adapter": "...",` and then `}` for a chip whose features cannot be read
    text = '{\n   "coretemp-isa-0000":{\n      "Adapter": "ISA adapter",\n   },\n' + fixture_text("sensors-json/9.json").lstrip()[1:]
    result = _sensors.parse_output(text)
    assert result["kinds"] == {"temperature": 1} and reading(result, "Tctl")["value"] == 66.0


def test_one_line_json_with_six_decimals():
    text = '{"k10temp-pci-00c3":{"Adapter":"PCI adapter","Tctl":{"temp1_input":66.000000,"temp1_max":70.000000,"temp1_crit":69.500000}}}'
    tctl = reading(_sensors.parse_output(text), "Tctl")
    assert (tctl["value"], tctl["max"], tctl["crit"], tctl["status"]) == (66.0, 70.0, 69.5, "ok")


def test_json_garbage_is_refused_with_the_place():
    with pytest.raises(_sensors.PmError) as caught:
        _sensors.parse_output('{"chip": {"temp1": {"temp1_input": 4x}}}', fmt="json")
    assert caught.value.msg == "the sensors -j output is not JSON: 'x' where a name should be at line 1 near 'x}}}'; pass the output of 'sensors -j' unchanged"


def test_degree_sign_replaced_by_space_and_fahrenheit():
    plain = fixture_text("sensors-text/7.txt")
    ascii_only = _sensors.parse_output(plain.replace("°C", " C"))
    assert ascii_only["readings"] == parsed("sensors-text/7.txt")["readings"]
    fahrenheit = _sensors.parse_output("coretemp-isa-0000\nAdapter: ISA adapter\nCore 0:  +113.0°F  (high = +176.0°F, crit = +212.0°F)\n")
    core = reading(fahrenheit, "Core 0")
    assert (core["value"], core["max"], core["crit"], core["unit"]) == (45.0, 80.0, 100.0, "°C")


def test_negative_temperature_and_alarm_names_in_plain_output():
    text = ("w83627ehf-isa-0290\nAdapter: ISA adapter\n"
            "Outdoor:      -12.5°C  (low  = -10.0°C, high = +60.0°C)  ALARM (LOW)\n"
            "CPUTIN:       +95.0°C  (high = +80.0°C, hyst = +75.0°C)  ALARM (HIGH, CRIT)\n"
            "                       (crit = +90.0°C)\n"
            "fan2:           0 RPM  (min = 1500 RPM, div = 8)  FAULT\n")
    result = _sensors.parse_output(text)
    outdoor = reading(result, "Outdoor")
    assert (outdoor["value"], outdoor["min"], outdoor["alarm"], outdoor["status"]) == (-12.5, -10.0, ["min_alarm"], "warning")
    cpu = reading(result, "CPUTIN")
    assert cpu["alarm"] == ["crit_alarm", "max_alarm"] and cpu["hysteresis"] == {"max": 75.0} and cpu["crit"] == 90.0
    assert cpu["status"] == "critical" and cpu["reason"].startswith("95 °C >= crit 90 °C")
    fan = reading(result, "fan2")
    assert fan["alarm"] == ["fault"] and fan["extra"] == {"div": 8.0} and fan["status"] == "warning"


def fixture_text(name):
    return (FIXTURES / name).read_text(encoding="utf-8")
