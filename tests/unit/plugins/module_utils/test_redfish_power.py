"""Power states, boot override, system choice, sensors and the fleet over Redfish, on recorded answers."""

from __future__ import annotations

import json

import pytest

from ansible_collections.ctys.pm.plugins.module_utils import _sensors
from ansible_collections.ctys.pm.plugins.module_utils._bmc.power_request import BootRequest
from ansible_collections.ctys.pm.plugins.module_utils._deadline import Deadline
from ansible_collections.ctys.pm.plugins.module_utils._errors import PmAuthError, PmInputError, PmStateError, PmTimeoutError, PmUnsupportedError
from ansible_collections.ctys.pm.plugins.module_utils._redfish import client, power, sensors
from pmtest.redfish_replay import ReplayBmc, recorded, reply_of

SESSION_PATH = "/redfish/v1/SessionService/Sessions/1"
SYSTEM = "/redfish/v1/Systems/1"
RESET = SYSTEM + "/Actions/ComputerSystem.Reset"
DELL_SYSTEM = "/redfish/v1/Systems/System.Embedded.1"
SUSHY_SYSTEM = recorded("sushy_system")["path"]


def allowed(name):
    return json.loads(recorded(name)["body"])["Actions"]["#ComputerSystem.Reset"]["ResetType@Redfish.AllowableValues"]


def target(**changes):
    values = dict(host="192.0.2.10", port=443, user="admin", password="pw", connect_timeout=2.0)
    values.update(changes)
    return client.RedfishTarget(**values)


class Clock:
    def __init__(self):
        self.now = 0.0

    def __call__(self):
        return self.now

    def sleep(self, seconds):
        self.now += seconds


@pytest.fixture
def bmc(monkeypatch):
    replay = ReplayBmc().install(monkeypatch)
    replay.serve("lab_session_created").serve("lab_session_deleted", path=SESSION_PATH)
    return replay


def run(state, boot=None, check_mode=False, wait=True, seconds=30.0, **changes):
    clock = Clock()
    return power.run_one(power.PowerRequest(target(**changes), state, "lab01", boot), Deadline(seconds, clock=clock),
                         wait=wait, check_mode=check_mode, sleeper=clock.sleep)


# ----- the ResetType table
@pytest.mark.parametrize("state, before, recording, expected", [
    ("on", "Off", "lab_system_off", ["On"]),
    ("off", "On", "lab_system_off", ["ForceOff"]),
    ("soft", "On", "lab_system_off", ["GracefulShutdown"]),
    ("soft", "On", "dell_system_off", ["GracefulShutdown"]),
    ("reset", "On", "lab_system_off", ["ForceRestart"]),
    ("cycle", "On", "lab_system_off", ["PowerCycle"]),
    ("cycle", "On", "dell_system_off", ["ForceOff", "On"]),
    ("cycle", "On", "sushy_system", ["ForceOff", "On"]),
    ("boot", "Off", "dell_system_off", ["On"]),
    ("boot", "On", "dell_system_off", ["ForceRestart"]),
    ("on", "On", "lab_system_off", []),
    ("off", "Off", "lab_system_off", []),
    ("soft", "PoweringOff", "lab_system_off", []),
])
def test_reset_type_is_chosen_from_the_allowed_values(state, before, recording, expected):
    steps = power.plan(state, before, allowed(recording), "192.0.2.10:443")
    assert [reset for reset, _wait in steps] == expected


def test_graceful_is_never_replaced_by_forced():
    with pytest.raises(PmUnsupportedError, match="offers no graceful shutdown .*use state: off"):
        power.plan("soft", "On", ["On", "ForceOff", "ForceRestart"], "192.0.2.10:443")


def test_reset_of_a_machine_that_is_off_is_refused():
    with pytest.raises(PmStateError, match="state: boot"):
        power.plan("reset", "Off", allowed("lab_system_off"), "192.0.2.10:443")


# ----- one BMC, end to end on recorded answers
def test_on_posts_on_waits_and_reports(bmc):
    bmc.serve("lab_systems").serve("lab_system_off", "lab_system_off", "lab_system_on").serve("lab_reset_on")
    outcome = run("on")
    assert outcome.error is None
    assert [r["json"] for r in bmc.requests("POST")][1:] == [{"ResetType": "On"}]
    result = outcome.result()
    assert {k: result[k] for k in ("changed", "power_state_before", "power_state", "protocol", "reset_type", "resource_id", "failed")} == {
        "changed": True, "power_state_before": "off", "power_state": "on", "protocol": "redfish", "reset_type": "On",
        "resource_id": "1", "failed": False}
    assert bmc.requests("DELETE")


def test_already_on_sends_no_reset(bmc):
    bmc.serve("lab_systems").serve("lab_system_on")
    outcome = run("on")
    assert outcome.error is None and not outcome.changed and outcome.after == "on"
    assert [r["path"] for r in bmc.requests("POST")] == [client.SESSIONS]


def test_check_mode_reads_only(bmc):
    bmc.serve("lab_systems").serve("lab_system_on")
    outcome = run("off", check_mode=True)
    assert outcome.changed and outcome.after == "off" and outcome.reset_type == "ForceOff"
    assert not any(r["path"] == RESET for r in bmc.sent)


def test_dell_cycle_is_force_off_wait_off_then_on(bmc):
    dell_on = reply_of("dell_system_off", json=dict(json.loads(recorded("dell_system_off")["body"]), PowerState="On"))
    bmc.serve("dell_systems")
    bmc.answer("GET", DELL_SYSTEM, dell_on, dell_on, reply_of("dell_system_off"), dell_on)
    bmc.answer("POST", DELL_SYSTEM + "/Actions/ComputerSystem.Reset", reply_of("lab_reset_on"))
    outcome = run("cycle")
    assert outcome.error is None and outcome.reset_type == "ForceOff+On" and outcome.after == "on"
    assert [r["json"]["ResetType"] for r in bmc.requests("POST")[1:]] == ["ForceOff", "On"]


def test_powering_on_is_not_yet_and_the_timeout_says_so(bmc):
    powering = reply_of("lab_system_off", json=dict(json.loads(recorded("lab_system_off")["body"]), PowerState="PoweringOn"))
    bmc.serve("lab_systems").answer("GET", SYSTEM, reply_of("lab_system_off"), powering).serve("lab_reset_on")
    outcome = run("on", seconds=5.0)
    assert isinstance(outcome.error, PmTimeoutError)
    assert "PoweringOn" in outcome.error.msg and "192.0.2.10:443" in outcome.error.msg
    assert bmc.requests("DELETE")  # the session is deleted on failure too


def test_several_systems_need_resource_id_named_in_the_error(bmc):
    two = json.loads(recorded("lab_systems")["body"])
    two["Members"].append({"@odata.id": "/redfish/v1/Systems/2"})
    bmc.answer("GET", "/redfish/v1/Systems", reply_of("lab_systems", json=two))
    outcome = run("query")
    assert isinstance(outcome.error, PmInputError)
    assert "resource_id" in outcome.error.msg and "1, 2" in outcome.error.msg


def test_unknown_resource_id_names_the_ids(bmc):
    bmc.serve("lab_systems")
    outcome = run("query", resource_id="7")
    assert isinstance(outcome.error, PmInputError) and "resource_id '7'" in outcome.error.msg and "system(s) 1" in outcome.error.msg


def test_wrong_password_is_an_auth_error_per_target(monkeypatch):
    ReplayBmc().install(monkeypatch).serve("lab_session_bad_password")
    outcome = run("on")
    assert isinstance(outcome.error, PmAuthError) and outcome.result()["failed"]


# ----- boot override
def test_boot_once_patches_with_the_etag_and_reads_back(bmc):
    bmc.serve("lab_systems").serve("lab_system_on_etag", "lab_system_on_pxe_once").serve("lab_patch_boot_pxe_once")
    outcome = run("query", BootRequest("network", False, None))
    assert outcome.error is None and outcome.changed
    patch = bmc.requests("PATCH")[0]
    assert patch["json"] == {"Boot": {"BootSourceOverrideTarget": "Pxe", "BootSourceOverrideEnabled": "Once"}}
    assert patch["headers"]["If-Match"] == recorded("lab_system_on_etag")["headers"]["ETag"]
    assert outcome.boot_before["device"] == "default"
    assert outcome.boot_after == {"device": "network", "persistent": False, "mode": "legacy"}


def test_boot_already_set_is_not_patched(bmc):
    bmc.serve("lab_systems").serve("lab_system_on_pxe_once")
    outcome = run("query", BootRequest("network", False, None))
    assert outcome.error is None and not outcome.changed and not bmc.requests("PATCH")


def test_boot_override_ignored_is_an_error_that_says_so(bmc):
    bmc.serve("lab_systems").serve("ignored_system_after_patch").serve("ignored_patch_boot")
    outcome = run("query", BootRequest("cdrom", True, None))
    assert isinstance(outcome.error, PmUnsupportedError)
    assert "ignores the override" in outcome.error.msg and "Cd/Continuous" in outcome.error.msg


def test_sushy_boot_once_reads_back_continuous_as_a_warning(monkeypatch):
    replay = ReplayBmc().install(monkeypatch)
    replay.serve("sushy_session_absent", method="POST", path=client.SESSIONS).serve("sushy_systems")
    system = json.loads(recorded("sushy_system")["body"])
    replay.answer("GET", SUSHY_SYSTEM, reply_of("sushy_system", json=system), reply_of("sushy_system_after_patch"))
    replay.serve("sushy_patch_boot")
    outcome = run("query", BootRequest("network", False, None))
    assert outcome.error is None and outcome.auth == "basic"
    assert outcome.boot_after["device"] == "network"
    assert any("Continuous" in warning for warning in outcome.warnings)
    assert "If-Match" not in replay.requests("PATCH")[0]["headers"]  # sushy gives no ETag


def test_boot_device_not_offered_is_refused_before_any_patch(monkeypatch):
    replay = ReplayBmc().install(monkeypatch)
    replay.serve("sushy_session_absent", method="POST", path=client.SESSIONS).serve("sushy_systems").serve("sushy_system")
    outcome = run("query", BootRequest("floppy", False, None))
    assert isinstance(outcome.error, PmUnsupportedError) and "Pxe, Cd, Hdd, UefiHttp" in outcome.error.msg
    assert not replay.requests("PATCH")


def test_boot_default_disables_the_override():
    patch = power.boot_patch(json.loads(recorded("lab_system_on_pxe_once")["body"])["Boot"], BootRequest("default"), "x:443")
    assert patch == {"BootSourceOverrideEnabled": "Disabled", "BootSourceOverrideTarget": "None"}


# ----- sensors
def test_sensors_from_the_sensors_collection(monkeypatch):
    replay = ReplayBmc().install(monkeypatch)
    replay.serve("lab_session_created").serve("lab_session_deleted", path=SESSION_PATH)
    replay.serve("lab_systems").serve("lab_system_on").serve("lab_chassis").serve("lab_sensors")
    for index in range(5):
        replay.serve(f"lab_sensor_{index}")
    features, messages, used, extra = sensors.read({"bmc": "192.0.2.10", "user": "admin", "password": "pw"})
    result = _sensors.verdict(features, source=used, messages=messages)
    assert used == "redfish" and extra == {"bmc": "192.0.2.10:443", "protocol": "redfish"}
    assert result["health"] == "OK" and result["counts"]["total"] == 6
    cpu = next(r for r in result["readings"] if r["label"] == "CPU Temp")
    assert (cpu["kind"], cpu["value"], cpu["unit"], cpu["max"], cpu["crit"]) == ("temperature", 45.0, "°C", 80.0, 95.0)
    assert not replay.requests("GET")[-1]["path"].endswith("Thermal")  # Sensors found: Thermal/Power not needed


def test_sensors_from_thermal_when_that_is_all(monkeypatch):
    replay = ReplayBmc().install(monkeypatch)
    replay.serve("sushy_session_absent", method="POST", path=client.SESSIONS)
    replay.serve("sushy_systems").serve("sushy_system").serve("sushy_chassis").serve("sushy_thermal")
    features, _messages, _used, _extra = sensors.read({"bmc": "192.0.2.10", "user": "admin", "password": "pw"})
    result = _sensors.verdict(features)
    kinds = {r["kind"] for r in result["readings"]}
    assert {"temperature", "fan", "other"} <= kinds
    cpu = next(r for r in result["readings"] if r["label"] == "CPU Temp")
    assert (cpu["value"], cpu["max"], cpu["crit"], cpu["emergency"]) == (41.0, 42.0, 45.0, 48.0)


def test_sensor_health_from_the_bmc_is_kept():
    document = json.loads(recorded("lab_sensor_0")["body"])
    document["Status"]["Health"] = "Critical"
    result = _sensors.verdict([sensors.from_sensor(document)])
    assert result["health"] == "CRITICAL" and "the BMC reports" in result["alarms"][0]["reason"]


# ----- fleet
def test_fleet_keeps_failures_per_target(monkeypatch):
    good, bad = ReplayBmc(), ReplayBmc()
    good.serve("lab_session_created").serve("lab_session_deleted", path=SESSION_PATH).serve("lab_systems").serve("lab_system_on")
    bad.serve("lab_session_bad_password")
    by_host = {"192.0.2.10": good, "192.0.2.11": bad}
    monkeypatch.setattr(client.Connection, "_exchange", lambda conn, *args: by_host[conn.target.host].exchange(conn, *args))
    outcomes = power.run_fleet([power.PowerRequest(target(), "on", "a"), power.PowerRequest(target(host="192.0.2.11"), "on", "b")], 10)
    assert [o.label for o in outcomes] == ["a", "b"]
    assert outcomes[0].error is None and outcomes[0].after == "on"
    assert isinstance(outcomes[1].error, PmAuthError) and "192.0.2.11:443" in outcomes[1].result()["msg"]
