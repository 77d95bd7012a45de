"""_redfish/info.py and _bmc/info.py's checks, on the recorded exchanges of a lab Redfish BMC (fixtures/redfish/INDEX.md)."""

from __future__ import annotations

import json

import pytest

from ansible_collections.ctys.pm.plugins.module_utils._bmc import info as bmc_info
from ansible_collections.ctys.pm.plugins.module_utils._deadline import Deadline
from ansible_collections.ctys.pm.plugins.module_utils._errors import PmInputError
from ansible_collections.ctys.pm.plugins.module_utils._redfish import client, info
from pmtest.redfish_replay import FIXTURES, ReplayBmc

RECORDED = json.loads((FIXTURES / "lab_info_exchanges.json").read_text())
TARGET = client.RedfishTarget("198.18.1.11", 443, "admin", "secret", validate_certs=False)


def replay(monkeypatch, skip=()):
    bmc = ReplayBmc()
    for item in RECORDED["exchanges"]:
        if item["path"] in skip:
            continue
        headers = {k.lower(): v for k, v in item["headers"].items()}
        bmc.answer(item["method"], item["path"], client.Reply(item["status"], headers, item["body"].encode()))
    return bmc.install(monkeypatch)


def test_every_section_from_the_recorded_bmc(monkeypatch):
    bmc = replay(monkeypatch)
    data, unsupported = info.gather(TARGET, bmc_info.SECTIONS, None, None, Deadline(10))
    assert (data, unsupported) == (RECORDED["gathered"], [])
    assert data["identity"]["serial_number"] == "S-lab01" and data["firmware"]["bmc_version"] == "1.23"
    assert [e["message"] for e in data["events"]["entries"]] == ["S0/G0: working", "S5/G2: soft-off"]
    assert bmc.requests("DELETE"), "the session is deleted at the end"
    assert not any(r["method"] in ("PATCH", "PUT") or r["path"].endswith("Reset") for r in bmc.sent), "read only"


def test_a_bmc_without_a_log_service_or_power_reports_them_unsupported(monkeypatch):
    replay(monkeypatch, skip=("/redfish/v1/Managers/bmc/LogServices", "/redfish/v1/Chassis/1/Power"))
    data, unsupported = info.gather(TARGET, ("events", "power", "firmware"), None, None, Deadline(10))
    assert unsupported == ["events", "power"] and set(data) == {"firmware"}


def test_events_since_and_max_keep_the_newest(monkeypatch):
    replay(monkeypatch)
    data = info.gather(TARGET, ("events",), None, 1, Deadline(10))[0]
    assert data["events"]["count"] == 1 and data["events"]["total"] == 2
    assert data["events"]["entries"][0]["message"] == "S5/G2: soft-off"
    data = info.gather(TARGET, ("events",), 4_102_444_800.0, None, Deadline(10))[0]  # 2100-01-01
    assert data["events"]["count"] == 0


def test_severity_and_direction_of_a_log_entry():
    entry = info.event_of({"Id": "9", "Created": "2026-12-05T03:24:52+00:00", "Severity": "Critical", "EntryCode": "Deassert",
                           "SensorType": "Temperature", "SensorNumber": 1, "Message": "Upper Critical going high"})
    assert (entry["severity"], entry["direction"], entry["time"], entry["sensor_number"]) == ("critical", "deasserted", "2026-12-05T03:24:52Z", 1)
    assert info.event_of({"Created": "not a time"})["time"] is None


@pytest.mark.parametrize("params,message", [
    ({"gather": ["identity", "colour"]}, "gather[1] 'colour' is not valid; use one or more of identity, firmware, events, power, network"),
    ({"gather": ["power", "power"]}, "gather[1] 'power' is given twice; name each section once"),
    ({"gather": []}, "gather '[]' names no section; name at least one of identity, firmware, events, power, network"),
    ({"events_max": 0}, "events_max '0' is not valid; use a number of entries from 1 to 10000"),
    ({"events_since": "last tuesday"}, "events_since 'last tuesday' is not valid; give an ISO 8601 time"),
])
def test_bad_input_names_the_option_the_value_and_the_fix(params, message):
    with pytest.raises(PmInputError) as error:
        bmc_info.check_request(params)
    assert error.value.msg.startswith(message)


def test_events_since_takes_iso_or_epoch():
    assert bmc_info.parse_since("2026-12-05T00:00:00Z") == bmc_info.parse_since("2026-12-05T00:00:00") == 1796428800.0
    assert bmc_info.parse_since("1796428800") == 1796428800.0 and bmc_info.parse_since(None) is None


def test_firmware_without_an_update_service_is_the_managers_version(monkeypatch):
    """An UpdateService linked but not served (sushy-emulator does so): the Manager's version, not "unsupported"."""
    replay(monkeypatch, skip=("/redfish/v1/UpdateService",))
    data, unsupported = info.gather(TARGET, ("firmware",), None, None, Deadline(10))
    assert unsupported == [] and data["firmware"]["items"] == [{"name": "BMC", "version": "1.23"}]
