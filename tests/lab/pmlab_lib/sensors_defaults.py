"""Default sensors of a lab machine: a fake hwmon tree for lm-sensors, and BMC SDR sensors."""

from __future__ import annotations

from pathlib import Path
from typing import Dict

# hwmon files in sysfs units: temperatures in m°C, voltages in mV, fans in RPM.
HWMON_CHIPS: Dict[str, Dict[str, str]] = {
    "hwmon0": {
        "name": "coretemp",
        "temp1_label": "Package id 0",
        "temp1_input": "45000",
        "temp1_max": "80000",
        "temp1_crit": "100000",
        "temp1_crit_alarm": "0",
        "temp2_label": "Core 0",
        "temp2_input": "43000",
        "temp2_max": "80000",
        "temp2_crit": "100000",
        "temp2_crit_alarm": "0",
        "temp3_label": "Core 1",
        "temp3_input": "44000",
        "temp3_max": "80000",
        "temp3_crit": "100000",
        "temp3_crit_alarm": "0",
    },
    "hwmon1": {
        "name": "nct6775",
        "fan1_input": "1200",
        "fan1_min": "300",
        "fan1_alarm": "0",
        "in0_input": "1200",
        "in0_min": "1000",
        "in0_max": "1400",
        "in0_alarm": "0",
    },
}

BMC_SENSORS = [
    {"name": "CPU Temp", "type": "temperature", "value": 45.0, "lower_critical": None, "lower_non_critical": None,
     "upper_non_critical": 80.0, "upper_critical": 95.0, "upper_non_recoverable": 105.0},
    {"name": "Inlet Temp", "type": "temperature", "value": 24.0, "lower_critical": None, "lower_non_critical": None,
     "upper_non_critical": 40.0, "upper_critical": 45.0, "upper_non_recoverable": None},
    {"name": "System Fan 1", "type": "fan", "value": 4800.0, "lower_critical": 500.0, "lower_non_critical": 800.0,
     "upper_non_critical": None, "upper_critical": None, "upper_non_recoverable": None},
    {"name": "12V", "type": "voltage", "value": 12.1, "lower_critical": 10.8, "lower_non_critical": 11.4,
     "upper_non_critical": 12.6, "upper_critical": 13.2, "upper_non_recoverable": None},
    {"name": "PSU1 Power", "type": "power", "value": 140.0, "lower_critical": None, "lower_non_critical": None,
     "upper_non_critical": 450.0, "upper_critical": 500.0, "upper_non_recoverable": None},
]


def write_hwmon(root: Path) -> None:
    for chip, files in HWMON_CHIPS.items():
        folder = Path(root) / chip
        folder.mkdir(parents=True, exist_ok=True)
        for name, value in files.items():
            (folder / name).write_text(value + "\n")
