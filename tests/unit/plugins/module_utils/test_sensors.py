"""pm_sensors' backend: sources and fallbacks (the `sensors` command's output is the seam), sysfs trees,
thresholds, ignore patterns, the verdict and fail_on_health."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from ansible_collections.ctys.pm.plugins.module_utils import _sensors, _sensors_parse
from ansible_collections.ctys.pm.plugins.module_utils._errors import PmError, PmInputError, PmUnsupportedError

FIXTURES = Path(__file__).resolve().parents[3] / "unit" / "fixtures"
NO_SENSORS = "No sensors found!\nMake sure you loaded all the kernel drivers you need.\nTry sensors-detect to find out which these are.\n"


def fixture(name):
    return (FIXTURES / name).read_text(encoding="utf-8")


class FakeSensors:
    """The `sensors` command as module.run_command would relay it: (rc, stdout, stderr) per argv."""

    def __init__(self, answers, installed=True):
        self.answers = answers
        self.installed = installed
        self.calls = []

    def which(self, name):
        return "/usr/bin/sensors" if self.installed and name == "sensors" else None

    def __call__(self, argv):
        self.calls.append(list(argv))
        return self.answers.get(argv[-1], (1, "", f"sensors: invalid option -- '{argv[-1][1:]}'\n"))


def run(fake=None, **params):
    base = {"source": "auto", "thresholds": None, "ignore": [], "fail_on_health": "never", "set_facts": False, "hwmon_path": "/nonexistent/hwmon"}
    base.update(params)
    fake = fake or FakeSensors({})
    return _sensors.run(base, fake, fake.which)


def by_label(result, label):
    return next(r for r in result["readings"] if r["label"] == label)


# ---------------------------------------------------------------- sources
def test_auto_prefers_sensors_json():
    fake = FakeSensors({"-j": (0, fixture("sensors-json/5.json"), "")})
    result = run(fake)
    assert fake.calls == [["/usr/bin/sensors", "-j"]]
    assert result["source"] == "lm_sensors_json" and result["health"] == "OK" and result["changed"] is False
    assert result["counts"]["total"] == 9 and "warnings" not in result


def test_old_lm_sensors_without_json_falls_back_to_raw_output():
    fake = FakeSensors({"-u": (0, fixture("sensors-text/23.txt"), "")})
    result = run(fake)
    assert [call[-1] for call in fake.calls] == ["-j", "-u"]
    assert result["source"] == "lm_sensors_text" and result["kinds"] == {"temperature": 3}
    assert "sensors -j failed (rc 1): sensors: invalid option -- 'j'" in result["messages"]


def test_stderr_error_lines_explain_the_reading_without_value():
    out = '{\n   "iwlwifi_1-virtual-0":{\n      "Adapter": "Virtual device",\n      "temp1":{\n      }\n   }\n}\n'
    err = "ERROR: Can't get value of subfeature temp1_input: Can't read\n"
    result = run(FakeSensors({"-j": (0, out, err)}))
    wifi = result["readings"][0]
    assert wifi["status"] == "unknown" and wifi["reason"] == "ERROR: Can't get value of subfeature temp1_input: Can't read"
    assert result["health"] == "UNKNOWN"


def test_no_lm_sensors_reads_sysfs(tmp_path):
    from pmlab_lib import sensors_defaults

    sensors_defaults.write_hwmon(tmp_path)  # the lab machines' hwmon tree
    fake = FakeSensors({}, installed=False)
    result = run(fake, hwmon_path=str(tmp_path))
    assert fake.calls == []
    assert result["source"] == "sysfs" and result["health"] == "OK"
    assert result["kinds"] == {"temperature": 3, "fan": 1, "voltage": 1}
    package = by_label(result, "Package id 0")
    assert (package["chip"], package["value"], package["max"], package["crit"]) == ("coretemp-virtual-0", 45.0, 80.0, 100.0)
    assert (by_label(result, "in0")["value"], by_label(result, "in0")["min"]) == (1.2, 1.0)  # mV -> V
    assert by_label(result, "fan1")["chip"] == "nct6775-virtual-0"


def test_no_sensors_anywhere_is_unknown_with_a_warning():
    fake = FakeSensors({"-j": (1, "{\n\n}\n", NO_SENSORS)})
    result = run(fake)
    assert fake.calls == [["/usr/bin/sensors", "-j"]], "nothing found: -u would find nothing either"
    assert result["health"] == "UNKNOWN" and result["readings"] == [] and result["source"] == "sysfs"
    assert result["warnings"] == ["no sensors found on this machine (sysfs); health is UNKNOWN"]
    assert "lm-sensors: No sensors found!" in result["messages"]


def test_source_lm_sensors_needs_the_command():
    with pytest.raises(PmUnsupportedError) as caught:
        run(FakeSensors({}, installed=False), source="lm_sensors")
    assert caught.value.msg == (
        "source 'lm_sensors' needs the sensors command, which is not installed here; install lm-sensors or use source: sysfs"
    )


def test_source_sysfs_does_not_run_sensors(tmp_path):
    fake = FakeSensors({"-j": (0, fixture("sensors-json/5.json"), "")})
    result = run(fake, source="sysfs", hwmon_path=str(tmp_path))
    assert fake.calls == [] and result["source"] == "sysfs" and result["health"] == "UNKNOWN"


def test_bmc_without_source_ipmi_is_refused():
    with pytest.raises(PmInputError) as caught:
        run(bmc="192.0.2.10")
    assert caught.value.msg == "bmc is only used with source 'ipmi' or 'redfish', not with source 'auto'; set source: ipmi or leave bmc out"


# ---------------------------------------------------------------- sysfs naming and errors
def make_chip(root, name, files, device=None, subsystem=None):
    folder = root / "class" / f"hwmon{len(list((root / 'class').iterdir())) if (root / 'class').exists() else 0}"
    folder.mkdir(parents=True)
    (folder / "name").write_text(name + "\n")
    for file, value in files.items():
        if value is None:
            (folder / file).mkdir()  # reading it fails like a sensor that answers EIO
        else:
            (folder / file).write_text(value + "\n")
    if device:
        target = root / "devices" / device
        target.mkdir(parents=True)
        bus = root / "bus" / subsystem
        bus.mkdir(parents=True, exist_ok=True)
        os.symlink(bus, target / "subsystem")
        os.symlink(target, folder / "device")
    return folder


def test_sysfs_names_chips_as_lm_sensors_does(tmp_path):
    make_chip(tmp_path, "coretemp", {"temp1_input": "53000", "temp1_crit": "100000", "temp1_crit_alarm": "1", "temp1_label": "Package id 0"},
              "platform/coretemp.0", "platform")
    make_chip(tmp_path, "nvme", {"temp1_input": "34850", "temp1_min": "-273150", "temp1_max": "65261850"}, "pci0000:00/0000:02:00.0", "pci")
    make_chip(tmp_path, "it87", {"in0_input": "1410", "in0_max": "4080", "intrusion0_alarm": "1", "fan1_input": "0", "fan1_min": "0"},
              "platform/it87.552", "platform")
    make_chip(tmp_path, "acpitz", {"temp1_input": "-12500"}, "LNXSYSTM:00/LNXTHERM:00", "acpi")
    make_chip(tmp_path, "iwlwifi_1", {"temp1_input": None})
    make_chip(tmp_path, "power_meter", {"power1_average": "4294967295000", "power1_average_interval": "4294967295"})  # acpi_power_meter: 0xffffffff mW
    features, messages = _sensors_parse.read_sysfs(str(tmp_path / "class"))
    result = _sensors.verdict(features, source="sysfs", messages=messages)
    chips = {r["chip"] for r in result["readings"]}
    assert chips == {"coretemp-isa-0000", "nvme-pci-0200", "it87-isa-0228", "acpitz-acpi-0", "iwlwifi_1-virtual-0", "power_meter-virtual-0"}
    package = by_label(result, "Package id 0")
    assert package["status"] == "critical" and package["reason"] == "the chip raised crit_alarm"
    nvme = next(r for r in result["readings"] if r["chip"] == "nvme-pci-0200")
    assert nvme["value"] == 34.85 and nvme["placeholders"] == {"min": -273.15, "max": 65261.85} and nvme["status"] == "ok"
    assert by_label(result, "intrusion0")["status"] == "warning" and by_label(result, "fan1")["status"] == "ok"
    cold = next(r for r in result["readings"] if r["chip"] == "acpitz-acpi-0")
    assert cold["value"] == -12.5 and cold["status"] == "ok"
    wifi = next(r for r in result["readings"] if r["chip"] == "iwlwifi_1-virtual-0")
    assert wifi["status"] == "unknown" and wifi["reason"].startswith("cannot read temp1_input: ")
    meter = next(r for r in result["readings"] if r["chip"] == "power_meter-virtual-0")
    assert meter["status"] == "unknown" and meter["placeholders"]["input"] == 4294967.295
    assert result["health"] == "CRITICAL"


# ---------------------------------------------------------------- thresholds and ignore
def test_thresholds_replace_device_limits_later_rules_win():
    fake = FakeSensors({"-j": (0, fixture("sensors-json/5.json"), "")})
    rules = [{"kind": "temperature", "warning": 50, "critical": 52}, {"kind": "temperature", "label": "Core 3", "critical": 60}]
    result = run(fake, thresholds=rules)
    assert by_label(result, "Package id 0")["status"] == "critical"  # 53 >= 52
    assert by_label(result, "Package id 0")["reason"] == "53 °C >= crit 52 °C" and by_label(result, "Package id 0")["override"] is True
    assert by_label(result, "Core 2")["status"] == "warning"  # 50 >= 50
    core3 = by_label(result, "Core 3")
    assert (core3["max"], core3["crit"], core3["status"]) == (50.0, 60.0, "warning")
    assert by_label(result, "fan1")["override"] is False and by_label(result, "fan1")["status"] == "ok"
    assert result["health"] == "CRITICAL"


def test_low_thresholds_for_fans_and_chip_patterns():
    fake = FakeSensors({"-j": (0, fixture("sensors-json/5.json"), "")})
    result = run(fake, thresholds=[{"kind": "fan", "chip": "thinkpad-*", "low_warning": 600}])
    fan = by_label(result, "fan1")
    assert fan["status"] == "warning" and fan["reason"] == "0 RPM < min 600 RPM"
    result = run(fake, thresholds=[{"kind": "fan", "chip": "nct*", "low_critical": 100}])
    assert by_label(result, "fan1")["status"] == "ok"


def test_ignore_by_label_and_by_chip():
    fake = FakeSensors({"-j": (0, fixture("sensors-json/1.json"), "")})
    result = run(fake, ignore=["AUXTIN*", "systin", "in*"])
    assert result["health"] == "OK" and result["counts"]["ignored"] == 23 and result["counts"]["total"] == 29
    result = run(fake, ignore=["nct6798-isa-02a0/*"])
    assert result["counts"]["ignored"] == 35 and result["health"] == "OK"
    assert {r["chip"] for r in result["readings"]} == {"nvme-pci-0200", "coretemp-isa-0000"}
    result = run(fake, ignore=["nct6798-isa-02a0/temp*"])  # by feature name
    assert result["counts"]["ignored"] == 12 and result["health"] == "WARNING"


@pytest.mark.parametrize(
    "thresholds, message",
    [
        ([{"kind": "temp", "warning": 70}],
         "thresholds[0].kind 'temp' is not valid; use one of temperature, fan, voltage, power, current, energy, humidity, intrusion, other"),
        ([{"kind": "temperature"}], "thresholds[0] '{'kind': 'temperature'}' is not valid; give at least one of warning, critical, low_warning, low_critical"),
        ([{"warning": 95, "critical": 90}], "thresholds[0].warning '95.0' is not valid; use a value at or below critical (90)"),
        ([{"low_warning": 100, "low_critical": 300}], "thresholds[0].low_warning '100.0' is not valid; use a value at or above low_critical (300)"),
        ([{"critical": "hot"}], "thresholds[0].critical 'hot' is not valid; give a number in the sensor's unit (°C, V, RPM, W, A, J, %RH)"),
        ([{"critical": 90, "max": 1}], "thresholds[0].max '1' is not valid; use only the keys kind, chip, label, warning, critical, low_warning, low_critical"),
        (["hot"], "thresholds[0] 'hot' is not valid; give a dictionary such as {kind: temperature, warning: 75, critical: 90}"),
        ([{"label": "", "critical": 1}], "thresholds[0].label '' is not valid; give a name or a pattern such as 'Core *'"),
    ],
)
def test_bad_thresholds_say_what_to_fix(thresholds, message):
    with pytest.raises(PmInputError) as caught:
        run(thresholds=thresholds)
    assert caught.value.msg == message


def test_thresholds_as_a_dictionary_per_kind():
    rules = _sensors.check_rules({"temperature": {"warning": 75, "critical": 90}})
    assert rules[0].kind == "temperature" and rules[0].limits == {"max": 75.0, "crit": 90.0}


def test_bad_ignore_and_fail_on():
    with pytest.raises(PmInputError) as caught:
        run(ignore=[""])
    assert caught.value.msg.startswith("ignore '['']' is not valid; give a list of label patterns")
    with pytest.raises(PmInputError) as caught:
        run(fail_on_health="always")
    assert caught.value.msg == "fail_on_health 'always' is not valid; use one of never, warning, critical"


# ---------------------------------------------------------------- verdict and fail_on_health
def test_fail_on_critical_fails_with_the_readings_in_the_result():
    fake = FakeSensors({"-j": (0, fixture("sensors-json/1.json"), "")})
    with pytest.raises(PmError) as caught:
        run(fake, fail_on_health="critical")
    error = caught.value
    assert error.msg.startswith(
        "health is CRITICAL (5 critical, 15 warning readings), which fail_on_health 'critical' does not accept: "
        "nct6798-isa-02a0/SYSTIN critical: 120 °C >= crit 100 °C; "
    )
    assert error.msg.endswith("; and 15 more")
    assert error.result["health"] == "CRITICAL" and len(error.result["readings"]) == 52


def test_fail_on_warning_and_never():
    fake = FakeSensors({"-j": (0, fixture("sensors-json/1.json"), "")})
    result = run(fake, ignore=["AUXTIN*", "SYSTIN"], fail_on_health="critical")
    assert result["health"] == "WARNING"
    with pytest.raises(PmError, match="^health is WARNING "):
        run(fake, ignore=["AUXTIN*", "SYSTIN"], fail_on_health="warning")
    assert run(fake, fail_on_health="never")["health"] == "CRITICAL"
    unknown = FakeSensors({"-j": (1, "{\n\n}\n", NO_SENSORS)})
    assert run(unknown, fail_on_health="warning")["health"] == "UNKNOWN", "UNKNOWN never fails the task"


def test_set_facts_carries_the_verdict():
    fake = FakeSensors({"-j": (0, fixture("sensors-json/9.json"), "")})
    result = run(fake, set_facts=True)
    facts = result["ansible_facts"]["pm_sensors"]
    assert facts["health"] == "OK" and facts["readings"][0]["value"] == 66.0 and "changed" not in facts
    assert "ansible_facts" not in run(fake)


def test_critical_flags_limits_and_hysteresis_of_a_feature():
    feature = _sensors_parse.RawFeature("c-isa-0000", None, "x", "temp1", "temperature",
                                        {"input": 90.0, "max": 80.0, "max_hyst": 75.0, "crit": 95.0, "max_alarm": 1.0})
    result = _sensors.verdict([feature])
    assert result["health"] == "WARNING"
    assert result["alarms"][0]["reason"] == "90 °C >= max 80 °C; the chip raised max_alarm"
    feature.attrs.update(input=-30.0, lcrit=-20.0, max_alarm=0.0)
    assert _sensors.verdict([feature])["alarms"][0]["reason"] == "-30 °C <= lcrit -20 °C"
