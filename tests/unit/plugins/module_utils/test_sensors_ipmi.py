"""BMC sensors over IPMI with pyghmi's Command replaced at its factory (the outermost seam).

The fake Command answers raw IPMI commands byte for byte from the lab's SDR model
(tests/lab/pmlab_lib/sdr.py), so pyghmi's real SDR and reading decoders run.
"""

from __future__ import annotations

import json
import time

import pytest
from pyghmi.ipmi.private.util import get_ipmi_error

from ansible_collections.ctys.pm.plugins.module_utils import _sensors
from ansible_collections.ctys.pm.plugins.module_utils._errors import PmAuthError, PmError, PmInputError
from ansible_collections.ctys.pm.plugins.module_utils._ipmi import session as _ipmi_session
from pmlab_lib import sdr, sensors_defaults

# Get Device ID: device 0x20, no device SDRs, IPMI 2.0, SDR repository supported
DEVICE_ID = bytes([0x20, 0x01, 0x01, 0x00, 0x02, 0x02, 0x00, 0x00, 0x00, 0x00, 0x00])


class FakeBmc:
    def __init__(self, path, login_error=None, unavailable=(), absent=()):
        self.repository = sdr.SensorRepository(str(path))
        self.login_error = login_error
        self.unavailable = set(unavailable)  # sensor numbers whose reading is flagged unavailable
        self.absent = set(absent)  # sensor numbers that answer "not present"
        self.commands = []


class FakeCommand:
    bmcs = {}

    def __init__(self, bmc, userid, password, port, kg, privlevel, onlogon, keepalive):
        self.bmc = FakeCommand.bmcs[bmc]
        if self.bmc.login_error:
            onlogon({"error": self.bmc.login_error})
        else:
            onlogon({"success": True}, self)

    def raw_command(self, netfn, command, data=(), rslun=0, **_kwargs):
        self.bmc.commands.append((netfn, command, tuple(data)))
        if (netfn, command) == (0x06, 0x01):
            return {"code": 0, "data": DEVICE_ID}
        if netfn == 0x04 and data and data[0] in self.bmc.absent:
            return {"code": 0xCB, "error": "Requested sensor, data, or record not present"}
        handled = self.bmc.repository.handle(netfn, command, list(data))
        if handled is None:
            return {"code": 0xC1, "error": "Invalid command"}
        code, payload = handled
        if code:  # the text pyghmi's session puts in an answer with a completion code
            return {"code": code, "error": get_ipmi_error({"code": code, "netfn": netfn, "command": command})}
        if (netfn, command) == (0x04, 0x2D) and data[0] in self.bmc.unavailable:
            payload = [payload[0], 0x20] + payload[2:]
        return {"code": 0, "data": bytes(payload)}

    def xraw_command(self, netfn, command, data=(), **kwargs):
        from pyghmi import exceptions

        response = self.raw_command(netfn, command, data, **kwargs)
        if response.get("error"):
            raise exceptions.IpmiException(response["error"], response["code"])
        return response

    def get_event_constants(self):
        from pyghmi.ipmi.oem import generic

        return generic.OEMHandler.get_oem_event_const(None)  # the generic (non-vendor) tables

    def init_sdr(self):
        from pyghmi.ipmi import sdr as pyghmi_sdr

        return pyghmi_sdr.SDR(self)


@pytest.fixture(autouse=True)
def fake_pyghmi(monkeypatch):
    from pyghmi.ipmi import sdr as pyghmi_sdr

    FakeCommand.bmcs = {}
    pyghmi_sdr.shared_sdrs.clear()  # pyghmi caches decoded records per BMC identity for the process
    monkeypatch.setattr(_ipmi_session, "command_factory", FakeCommand)
    monkeypatch.setattr(_ipmi_session, "_pump", lambda seconds: time.sleep(min(seconds, 0.01)))
    monkeypatch.setattr(_ipmi_session, "logout", lambda command: None)
    yield


@pytest.fixture
def sensors_file(tmp_path):
    path = tmp_path / "bmc-sensors.json"
    path.write_text(json.dumps(sensors_defaults.BMC_SENSORS))
    return path


def set_value(path, name, value):
    sensors = json.loads(path.read_text())
    next(s for s in sensors if s["name"] == name)["value"] = value
    path.write_text(json.dumps(sensors))


def run(fake, **params):
    FakeCommand.bmcs["b1"] = fake
    base = {"source": "ipmi", "bmc": "b1", "user": "admin", "password": "pw", "port": 623, "privilege": "administrator",
            "cipher_suite": "auto", "connect_timeout": 2, "timeout": 5, "thresholds": None, "ignore": [], "fail_on_health": "never"}
    base.update(params)
    return _sensors.run(base)


def by_label(result, label):
    return next(r for r in result["readings"] if r["label"] == label)


def test_every_sdr_sensor_with_its_thresholds(sensors_file):
    result = run(FakeBmc(sensors_file))
    assert result["source"] == "ipmi" and result["bmc"] == "b1:623" and result["health"] == "OK"
    assert result["kinds"] == {"temperature": 2, "fan": 1, "voltage": 1, "power": 1}
    volts = by_label(result, "12V")
    assert (volts["value"], volts["unit"], volts["lcrit"], volts["min"], volts["max"], volts["crit"]) == (12.1, "V", 10.8, 11.4, 12.6, 13.2)
    cpu = by_label(result, "CPU Temp")
    assert (cpu["value"], cpu["unit"], cpu["max"], cpu["crit"], cpu["emergency"], cpu["chip"]) == (45.0, "°C", 80.0, 95.0, 105.0, "bmc")
    fan = by_label(result, "System Fan 1")
    assert (fan["kind"], fan["value"], fan["unit"], fan["min"], fan["lcrit"]) == ("fan", 4800.0, "RPM", 800.0, 500.0)


def test_a_temperature_above_critical_is_critical_with_the_bmcs_word(sensors_file):
    set_value(sensors_file, "CPU Temp", 97.0)
    result = run(FakeBmc(sensors_file))
    assert result["health"] == "CRITICAL"
    assert result["alarms"] == [{"chip": "bmc", "label": "CPU Temp", "kind": "temperature", "value": 97.0, "unit": "°C", "status": "critical",
                                 "reason": "97 °C >= crit 95 °C; the BMC reports upper non-critical threshold, upper critical threshold"}]
    with pytest.raises(PmError, match=r"^health is CRITICAL \(1 critical, 0 warning readings\)"):
        run(FakeBmc(sensors_file), fail_on_health="critical")


def test_warning_and_low_fan(sensors_file):
    set_value(sensors_file, "Inlet Temp", 41.0)
    set_value(sensors_file, "System Fan 1", 400.0)
    result = run(FakeBmc(sensors_file))
    assert by_label(result, "Inlet Temp")["status"] == "warning"
    fan = by_label(result, "System Fan 1")
    assert fan["status"] == "critical" and fan["reason"].startswith("400 RPM <= lcrit 500 RPM")
    assert result["counts"]["alarms"] == 2 and result["alarms"][0]["label"] == "System Fan 1"


def test_your_thresholds_apply_to_bmc_sensors(sensors_file):
    result = run(FakeBmc(sensors_file), thresholds=[{"kind": "temperature", "label": "cpu*", "critical": 40}])
    assert by_label(result, "CPU Temp")["status"] == "critical" and by_label(result, "Inlet Temp")["status"] == "ok"


def test_unavailable_and_absent_sensors(sensors_file):
    result = run(FakeBmc(sensors_file, unavailable={1}, absent={5}))
    cpu = by_label(result, "CPU Temp")
    assert cpu["status"] == "unknown" and cpu["value"] is None and "no reading for this sensor" in cpu["reason"]
    assert "PSU1 Power" not in [r["label"] for r in result["readings"]], "a sensor that is not fitted is left out"
    assert result["health"] == "OK" and result["counts"]["unknown"] == 1


def test_wrong_password_fails_clearly(sensors_file):
    with pytest.raises(PmAuthError) as caught:
        run(FakeBmc(sensors_file, login_error="Incorrect password provided"))
    assert caught.value.msg.startswith("the BMC at b1:623 refused the password of user 'admin'")


def test_source_ipmi_needs_a_bmc(sensors_file):
    with pytest.raises(PmInputError) as caught:
        run(FakeBmc(sensors_file), bmc=None)
    assert caught.value.msg.startswith("bmc is missing; set bmc to the BMC's host name or address")


def test_a_bmc_without_sensors_is_unknown(tmp_path):
    empty = tmp_path / "none.json"
    empty.write_text("[]")
    result = run(FakeBmc(empty))
    assert result["health"] == "UNKNOWN" and result["warnings"] == ["no sensors found on the BMC at b1:623 (ipmi); health is UNKNOWN"]
