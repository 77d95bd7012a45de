"""The Redfish client package (plugins/module_utils/_redfish) against the lab's Redfish face and sushy-emulator.

Driven directly from Python (the module pm_power comes later). What it did is
read back by the machine itself (``m.control.status()``), by an independent
HTTP client (curl), by ipmitool (boot flags) and by the face's own log.
The lab runs in loopback mode (127.0.0.1, a port per BMC) so the client runs
in this process; the IPMI-only case uses a namespaced lab and a subprocess
in its controller namespace.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import Any, Dict, Optional

import pytest

from ansible_collections.ctys.pm.plugins.module_utils._bmc.power_request import BootRequest
from ansible_collections.ctys.pm.plugins.module_utils._deadline import Deadline
from ansible_collections.ctys.pm.plugins.module_utils._errors import PmAuthError, PmUnsupportedError
from ansible_collections.ctys.pm.plugins.module_utils._redfish import client, errors, power, probe, sensors
from pmlab_lib.lab import Lab
from pmtest.redfish_lab import Sushy, fingerprint_of, free_port, lab_fixture, lab_get, machine_fixture, redfish_power, sessions, sushy_fixture

pytestmark = [pytest.mark.lab, pytest.mark.skipif(os.geteuid() != 0, reason="the lab needs root")]
ROOT = Path(__file__).resolve().parents[2]


# ----------------------------------------------------------------- fixtures
lab = lab_fixture("rfclient", redfish=True, loopback=True)
m = machine_fixture()  # machine 1: generic profile, no fault, powered off, no boot override, no sessions, after each test
sushy = sushy_fixture()  # sushy-emulator --fake over TLS (a self-signed certificate for 127.0.0.1), basic auth off (no sessions)


def lab_target(lab: Lab, machine, **changes: Any) -> client.RedfishTarget:
    values: Dict[str, Any] = dict(host=machine.bmc_host, port=machine.redfish_port, user=machine.bmc_user,
                                  password=machine.bmc_password, connect_timeout=3.0, ca_path=str(lab.redfish_ca))
    values.update(changes)
    return client.RedfishTarget(**values)


def sushy_target(sushy: Sushy, **changes: Any) -> client.RedfishTarget:
    values: Dict[str, Any] = dict(host="127.0.0.1", port=sushy.port, user="admin", password="unused", ca_path=str(sushy.cert))
    values.update(changes)
    return client.RedfishTarget(**values)


def act(target: client.RedfishTarget, state: str, boot: Optional[BootRequest] = None, check_mode: bool = False,
        timeout: float = 20.0) -> power.PowerOutcome:
    return power.run_one(power.PowerRequest(target, state, "t", boot), Deadline(timeout), check_mode=check_mode)


def face_log(machine) -> str:
    path = machine.state_dir / "redfish.log"
    return path.read_text() if path.exists() else ""


# ----------------------------------------------------------------- power states on the lab
def test_on_and_off_four_steps_read_back_by_the_machine_and_by_curl(lab, m):
    target = lab_target(lab, m)
    for state, word, redfish in (("on", "on", "On"), ("off", "off", "Off")):
        checked = act(target, state, check_mode=True)
        assert checked.error is None and checked.changed and m.control.status()["power"] != word
        done = act(target, state)
        assert done.error is None, done.error
        assert done.changed and done.after == word and done.result()["protocol"] == "redfish"
        assert m.control.status()["power"] == word and redfish_power(lab, m) == redfish
        again = act(target, state, check_mode=True)
        assert again.error is None and not again.changed
        changes = m.control.status()["power_changes"]
        last = act(target, state)
        assert last.error is None and not last.changed and last.reset_type is None
        assert m.control.status()["power_changes"] == changes  # no request was sent


@pytest.mark.parametrize("state, start, reset_type", [
    ("soft", "on", "GracefulShutdown"),
    ("reset", "on", "ForceRestart"),
    ("cycle", "on", "PowerCycle"),
    ("boot", "off", "On"),
    ("boot", "on", "ForceRestart"),
])
def test_every_state_uses_its_reset_type_and_the_machine_follows(lab, m, state, start, reset_type):
    m.control.call("power", action=start)
    changes = m.control.status()["power_changes"]
    mark = len(face_log(m))
    outcome = act(lab_target(lab, m), state)
    assert outcome.error is None, outcome.error
    assert outcome.reset_type == reset_type and outcome.changed
    wanted = "off" if state == "soft" else "on"
    assert outcome.after == wanted and m.control.status()["power"] == wanted
    assert redfish_power(lab, m) == wanted.capitalize()
    assert m.control.status()["power_changes"] > changes
    assert f"reset {reset_type} ->" in face_log(m)[mark:]


def test_query_reads_without_changing(lab, m):
    changes = m.control.status()["power_changes"]
    outcome = act(lab_target(lab, m), "query")
    assert outcome.error is None and outcome.after == "off" and not outcome.changed
    assert m.control.status()["power_changes"] == changes


# ----------------------------------------------------------------- boot override
def bootparam(lab: Lab, machine) -> str:
    result = lab.ipmitool(machine, "chassis", "bootparam", "get", "5")
    assert result.returncode == 0, result.stderr
    return result.stdout


def test_boot_once_and_persistent_read_back_by_ipmitool(lab, m):
    target = lab_target(lab, m)
    once = act(target, "query", BootRequest("network", False, None))
    assert once.error is None and once.changed and once.boot_after == {"device": "network", "persistent": False, "mode": "legacy"}
    text = bootparam(lab, m)
    assert "Force PXE" in text and "Options apply to only next boot" in text
    persistent = act(target, "query", BootRequest("cdrom", True, "uefi"))
    assert persistent.error is None and persistent.boot_after == {"device": "cdrom", "persistent": True, "mode": "uefi"}
    text = bootparam(lab, m)
    assert "CD/DVD" in text and "Options apply to all future boots" in text and "BIOS EFI boot" in text
    again = act(target, "query", BootRequest("cdrom", True, "uefi"))
    assert again.error is None and not again.changed
    cleared = act(target, "query", BootRequest("default", False, None))
    assert cleared.error is None and cleared.changed and m.control.status()["boot_device"] == "default"


def test_boot_ignored_profile_is_a_clear_error(lab, m):
    m.redfish_configure(profile="boot_ignored")
    outcome = act(lab_target(lab, m), "query", BootRequest("network", True, None))
    assert isinstance(outcome.error, PmUnsupportedError)
    assert "ignores the override" in outcome.error.msg and m.bmc_host in outcome.error.msg
    assert m.control.status()["boot_device"] == "default"


# ----------------------------------------------------------------- vendor profile
def test_dell_cycle_is_off_then_on_and_soft_is_graceful_shutdown(lab, m):
    m.redfish_configure(profile="dell")
    m.control.call("power", action="on")
    target = lab_target(lab, m)
    mark = len(face_log(m))
    cycled = act(target, "cycle")
    assert cycled.error is None, cycled.error
    assert cycled.reset_type == "ForceOff+On" and cycled.resource_id == "System.Embedded.1"
    assert m.control.status()["power"] == "on"
    log = face_log(m)[mark:]
    assert log.index("reset ForceOff ->") < log.rindex("reset On ->") and "reset PowerCycle" not in log
    soft = act(target, "soft")
    assert soft.error is None and soft.reset_type == "GracefulShutdown" and m.control.status()["power"] == "off"
    again = act(target, "off")  # the dell face answers 409 to ForceOff while off: none is sent
    assert again.error is None and not again.changed


# ----------------------------------------------------------------- faults
def test_silent_bmc_fails_within_its_bounds_naming_host_and_port(lab, m):
    m.redfish_configure(fault={"mode": "silent"})
    outcome = act(lab_target(lab, m, connect_timeout=0.5), "query", timeout=5)
    assert isinstance(outcome.error, errors.RedfishNoAnswerError)
    assert f"{m.bmc_host}:{m.redfish_port}" in outcome.error.msg


def test_503_is_retried(lab, m):
    m.redfish_configure(fault={"mode": "503", "count": 2})
    outcome = act(lab_target(lab, m), "on")
    assert outcome.error is None, outcome.error
    assert m.control.status()["power"] == "on"


def test_202_task_is_followed_until_the_machine_changed(lab, m):
    m.redfish_configure(fault={"mode": "task", "delay": 0.5})
    outcome = act(lab_target(lab, m), "on")
    assert outcome.error is None, outcome.error
    assert outcome.after == "on" and m.control.status()["power"] == "on"
    assert lab_get(lab, m, "/redfish/v1/TaskService/Tasks/1")["TaskState"] == "Completed"


def test_no_session_is_left_behind_after_many_tasks_failures_included(lab, m):
    target = lab_target(lab, m)
    mark = len(face_log(m))
    for _task in range(6):  # more tasks than the 4-session limit
        assert act(target, "query").error is None
    failed = act(target, "reset")  # refused: the machine is off
    assert failed.error is not None
    assert sessions(lab, m) == []
    assert face_log(m)[mark:].count("deleted by") == 7


def test_full_session_table_falls_back_to_basic_auth(lab, m):
    m.redfish_configure(session_limit=1)
    with client.Session(lab_target(lab, m), Deadline(10)) as held:
        outcome = act(lab_target(lab, m), "query")
        assert outcome.error is None and outcome.auth == "basic"
        assert held.auth.get("X-Auth-Token")


# ----------------------------------------------------------------- TLS and credentials
def test_tls_refused_without_ca_accepted_with_ca_path_or_fingerprint(lab, m):
    refused = act(lab_target(lab, m, ca_path=None), "query")
    assert isinstance(refused.error, errors.RedfishTlsError) and f"{m.bmc_host}:{m.redfish_port}" in refused.error.msg
    assert act(lab_target(lab, m), "query").error is None
    cert = m.state_dir / "redfish-tls" / "redfish.pem"  # the BMC's certificate (redfish_tls.make_server_cert)
    pinned = client.normalise_fingerprint(fingerprint_of(cert))
    assert act(lab_target(lab, m, ca_path=None, fingerprint=pinned), "query").error is None
    wrong = act(lab_target(lab, m, ca_path=None, fingerprint="0" * 64), "query")
    assert isinstance(wrong.error, errors.RedfishTlsError) and "fingerprint" in wrong.error.msg
    unchecked = act(lab_target(lab, m, ca_path=None, validate_certs=False), "query")
    assert unchecked.error is None


def test_wrong_password_fails_at_once(lab, m):
    mark = len(face_log(m))
    outcome = act(lab_target(lab, m, password="wrong-password"), "on")
    assert isinstance(outcome.error, PmAuthError) and f"{m.bmc_host}:{m.redfish_port}" in outcome.error.msg
    assert "wrong-password" not in outcome.error.msg
    assert face_log(m)[mark:].count("login refused") == 1
    assert m.control.status()["power"] == "off"


# ----------------------------------------------------------------- sensors
def test_sensors_match_the_bmc_sensor_file(lab, m):
    params = {"bmc": m.bmc_host, "port": m.redfish_port, "user": m.bmc_user, "password": m.bmc_password, "ca_path": str(lab.redfish_ca)}
    features, _messages, used, _extra = sensors.read(params)
    from ansible_collections.ctys.pm.plugins.module_utils import _sensors

    result = _sensors.verdict(features, source=used)
    names = {r["label"] for r in result["readings"]}
    on_file = json.loads(m.bmc_sensors_file.read_text())
    listed = on_file["sensors"] if isinstance(on_file, dict) and "sensors" in on_file else on_file
    assert {s["name"] for s in listed} <= names
    assert result["health"] in ("OK", "WARNING", "CRITICAL")


# ----------------------------------------------------------------- auto
def test_auto_probe_redfish_face_and_closed_port(lab, m):
    assert probe.probe(lab_target(lab, m)).protocol == "redfish"
    assert probe.probe(lab_target(lab, m, port=free_port())).protocol == "ipmi"
    with pytest.raises(errors.RedfishTlsError):
        probe.probe(lab_target(lab, m, ca_path=None))


def test_auto_probe_ipmi_only_bmc(lab_factory):
    """A BMC without Redfish (a namespaced lab without --redfish), probed from the controller namespace on port 443."""
    ipmi_lab = lab_factory(machines=1, state="off", bmc="lab", loopback=False)
    machine = ipmi_lab.machines[0]
    code = ("import json; from ansible_collections.ctys.pm.plugins.module_utils._redfish import client, probe; "
            f"print(json.dumps(probe.probe(client.RedfishTarget({machine.bmc_host!r}, 443, connect_timeout=2)).to_dict()))")
    env = dict(os.environ, PYTHONPATH=str(ROOT / ".build" / "collections"))
    result = ipmi_lab.run([sys.executable, "-c", code], env=env, timeout=30)
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["protocol"] == "ipmi"
    assert "Chassis Power is off" in ipmi_lab.ipmitool(machine, "chassis", "power", "status").stdout


# ----------------------------------------------------------------- sushy-emulator, an independent peer
def test_sushy_on_off_read_back_by_curl(sushy):
    target = sushy_target(sushy)
    for state, word in (("on", "On"), ("off", "Off")):
        outcome = act(target, state, timeout=30)
        assert outcome.error is None, outcome.error
        assert outcome.auth == "basic"  # sushy has no session service
        assert sushy.power_state() == word
        assert not act(target, state).changed


def test_sushy_boot_persistent_and_cycle_without_powercycle_plan(sushy):
    target = sushy_target(sushy)
    outcome = act(target, "query", BootRequest("cdrom", True, None))
    assert outcome.error is None and outcome.boot_after["device"] == "cdrom" and outcome.boot_after["persistent"]
    once = act(target, "query", BootRequest("network", False, None))
    assert once.error is None and once.boot_after["device"] == "network"
    assert any("Continuous" in warning for warning in once.warnings)  # its quirk: always reads back Continuous
    check = act(target, "cycle", check_mode=True) if sushy.power_state() == "On" else None
    if check is not None:
        assert check.reset_type == "ForceOff+On"


def test_sushy_tls_fingerprint_and_refusal(sushy):
    assert isinstance(act(sushy_target(sushy, ca_path=None), "query").error, errors.RedfishTlsError)
    pinned = client.normalise_fingerprint(fingerprint_of(sushy.cert))
    assert act(sushy_target(sushy, ca_path=None, fingerprint=pinned), "query").error is None
    assert probe.probe(sushy_target(sushy)).protocol == "redfish"


# ----------------------------------------------------------------- fleet
def test_mixed_fleet_one_dead_bmc_costs_only_itself(lab, m, sushy):
    other = lab.machines[1]
    requests = [
        power.PowerRequest(lab_target(lab, m), "on", "lab01"),
        power.PowerRequest(lab_target(lab, other), "query", "lab02"),
        power.PowerRequest(sushy_target(sushy), "query", "sushy"),
        power.PowerRequest(lab_target(lab, m, port=free_port(), connect_timeout=1.0), "query", "closed"),
    ]
    outcomes = power.run_fleet(requests, 20)
    by_label = {o.label: o for o in outcomes}
    assert by_label["lab01"].error is None and m.control.status()["power"] == "on"
    assert by_label["lab02"].error is None and by_label["lab02"].after == other.control.status()["power"]
    assert by_label["sushy"].error is None
    assert isinstance(by_label["closed"].error, errors.RedfishRefusedError)
    assert [o.label for o in outcomes] == ["lab01", "lab02", "sushy", "closed"]
