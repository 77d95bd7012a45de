"""Power logic with pyghmi's Command replaced at its factory (the outermost seam)."""

from __future__ import annotations

import time

import pytest
from pyghmi.ipmi.private import constants
from pyghmi.ipmi.private.util import get_ipmi_error

from ansible_collections.ctys.pm.plugins.module_utils._bmc.options import BmcConnection
from ansible_collections.ctys.pm.plugins.module_utils._errors import PmAuthError, PmConnectionError, PmError, PmInputError, PmTimeoutError
from ansible_collections.ctys.pm.plugins.module_utils._ipmi import errors
from ansible_collections.ctys.pm.plugins.module_utils._ipmi import power as _ipmi_power
from ansible_collections.ctys.pm.plugins.module_utils._ipmi import session as _ipmi_session
from ansible_collections.ctys.pm.plugins.module_utils._ipmi.retry import POLICY


class FakeBmc:
    """A BMC's behaviour as pyghmi's Command would relay it."""

    def __init__(self, power="off", login_error=None, busy=0, silent_login=False, lag=0, login_errors=(), refuse=None):
        self.power = power
        self.login_error = login_error
        self.login_errors = list(login_errors)  # one per login attempt, then login_error
        self.logins = 0
        self.busy = busy
        self.silent_login = silent_login
        self.lag = lag  # status reads before a power change shows
        self.pending = None
        self.commands = []
        self.refuse = refuse  # completion code for every command


class FakeCommand:
    bmcs = {}

    def __init__(self, bmc, userid, password, port, kg, privlevel, onlogon, keepalive):
        self.bmc = FakeCommand.bmcs[bmc]
        self.args = dict(bmc=bmc, userid=userid, port=port, privlevel=privlevel)
        self.bmc.logins += 1
        if self.bmc.silent_login:
            return
        if self.bmc.login_errors:
            onlogon({"error": self.bmc.login_errors.pop(0)})
        elif self.bmc.login_error:
            onlogon({"error": self.bmc.login_error})
        else:
            onlogon({"success": True}, self)

    def raw_command(self, netfn, command, data=()):
        bmc = self.bmc
        bmc.commands.append((netfn, command, tuple(data)))
        if bmc.refuse:
            return answer_with_code(bmc.refuse, netfn, command)
        if bmc.busy:
            bmc.busy -= 1
            return answer_with_code(0xC0, netfn, command)
        if (netfn, command) == (0, 1):
            if bmc.pending and bmc.lag <= 0:
                bmc.power, bmc.pending = bmc.pending, None
            bmc.lag -= 1
            return {"code": 0, "data": bytes([1 if bmc.power == "on" else 0, 0, 0])}
        if (netfn, command) == (0, 2):
            bmc.pending = {0: "off", 1: "on", 2: "on", 3: "on", 5: "off"}[data[0]]
            return {"code": 0, "data": b""}
        if (netfn, command) == (0, 9):
            return {"code": 0, "data": bytes([1, 5, 0, 0, 0, 0, 0])}
        if (netfn, command) == (0, 8):
            return {"code": 0, "data": b""}
        return answer_with_code(0xC1, netfn, command)


def answer_with_code(code, netfn, command):
    """An answer with a completion code, as pyghmi's session hands it over (its text from pyghmi's tables)."""
    return {"code": code, "error": get_ipmi_error({"code": code, "netfn": netfn, "command": command})}


@pytest.fixture(autouse=True)
def fake_pyghmi(monkeypatch):
    FakeCommand.bmcs = {}
    monkeypatch.setattr(_ipmi_session, "command_factory", FakeCommand)
    monkeypatch.setattr(_ipmi_session, "_pump", lambda seconds: time.sleep(min(seconds, 0.01)))
    monkeypatch.setattr(_ipmi_session, "logout", lambda command: None)
    yield


def run(bmcs, **params):
    FakeCommand.bmcs.update(bmcs)
    base = {"user": "admin", "password": "pw", "port": 623, "privilege": "administrator", "cipher_suite": "auto", "connect_timeout": 2,
            "timeout": 5, "wait": True, "state": "query", "fail_on": "any"}
    base.update(params)
    return _ipmi_power.run(base)


def test_power_on_waits_until_the_bmc_reports_on():
    bmc = FakeBmc("off", lag=3)
    result = run({"b1": bmc}, bmc="b1", state="on")
    assert result["changed"] is True and result["power_state"] == "on" and result["power_state_before"] == "off"
    assert (0, 2, (1,)) in bmc.commands
    assert sum(1 for c in bmc.commands if c[:2] == (0, 1)) >= 4, "polled until the change showed"


def test_already_on_sends_no_control_command():
    bmc = FakeBmc("on")
    result = run({"b1": bmc}, bmc="b1", state="on")
    assert result["changed"] is False and not [c for c in bmc.commands if c[:2] == (0, 2)]


def test_busy_bmc_is_retried_with_backoff():
    bmc = FakeBmc("on", busy=2)
    result = run({"b1": bmc}, bmc="b1")
    assert result["power_state"] == "on"
    assert len([c for c in bmc.commands if c[:2] == (0, 1)]) >= 3


def test_busy_until_the_timeout_fails_naming_the_bmc():
    bmc = FakeBmc("on", busy=10**6)
    with pytest.raises(PmError) as caught:
        run({"b1": bmc}, bmc="b1", timeout=0.5)
    assert "b1:623" in caught.value.msg and "node busy" in caught.value.msg.lower()


def test_wrong_password_is_not_retried():
    bmc = FakeBmc(login_error="Incorrect password provided")
    with pytest.raises(PmAuthError) as caught:
        run({"b1": bmc}, bmc="b1")
    assert caught.value.msg.startswith("the BMC at b1:623 refused the password of user 'admin'")
    assert bmc.commands == [] and bmc.logins == 1


def test_silent_bmc_fails_within_connect_timeout():
    started = time.monotonic()
    with pytest.raises(PmTimeoutError) as caught:
        run({"b1": FakeBmc(silent_login=True)}, bmc="b1", connect_timeout=0.3)
    assert time.monotonic() - started < 2
    assert caught.value.msg.startswith("the BMC at b1:623 did not complete login within 0.3 s")


def test_fleet_dead_bmc_does_not_hold_up_the_others():
    bmcs = {f"b{i}": FakeBmc("off") for i in range(5)}
    bmcs["dead"] = FakeBmc(silent_login=True)
    targets = [{"bmc": name, "connect_timeout": 0.3 if name == "dead" else 2} for name in bmcs]
    result = run(bmcs, targets=targets, state="on", fail_on="never")
    by_name = {r["name"]: r for r in result["results"]}
    assert all(by_name[f"b{i}"]["power_state"] == "on" for i in range(5))
    assert by_name["dead"]["failed"] is True and result["summary"] == {"targets": 6, "changed": 5, "failed": 1, "power_on": 5, "power_off": 0}


def test_fleet_fail_on_any_and_all():
    bmcs = {"ok": FakeBmc("on"), "bad": FakeBmc(login_error="Unauthorized name")}
    targets = [{"bmc": "ok"}, {"bmc": "bad"}]
    with pytest.raises(PmError) as caught:
        run(bmcs, targets=targets, fail_on="any")
    assert caught.value.msg.startswith("1 of 2 targets failed: bad (the BMC at bad:623 does not know user 'admin'")
    assert run(bmcs, targets=targets, fail_on="all")["summary"]["failed"] == 1


def test_per_target_state_and_credentials_override_defaults():
    bmcs = {"a": FakeBmc("off"), "b": FakeBmc("on")}
    result = run(bmcs, targets=[{"bmc": "a", "state": "on", "port": 6230}, {"bmc": "b", "state": "off", "user": "ops"}])
    assert [r["power_state"] for r in result["results"]] == ["on", "off"]


@pytest.mark.parametrize(
    "params,message",
    [
        ({"bmc": "a", "targets": [{"bmc": "b"}]}, "bmc and targets were both given"),
        ({"targets": [{"bmc": "a"}, {"bmc": "a"}]}, "targets[1] repeats BMC a:623 (already a); list every BMC once"),
        ({"targets": [{"bmc": "a", "colour": 1}]}, "targets[0] has unknown key 'colour'"),
        ({"targets": [{"name": "x"}]}, "targets[0] has no bmc"),
        ({"targets": [{"bmc": "a", "state": "dim"}]}, "targets[0].state 'dim' is not valid"),
        ({"bmc": "a", "boot_mode": "uefi"}, "boot_persistent and boot_mode need boot_device"),
        ({"bmc": "a", "timeout": 0}, "timeout '0' is not valid"),
    ],
)
def test_bad_parameters(params, message):
    with pytest.raises(PmInputError) as caught:
        run({"a": FakeBmc()}, **params)
    assert caught.value.msg.startswith(message)


def test_reset_of_a_machine_that_is_off_explains_boot():
    with pytest.raises(PmError) as caught:
        run({"b1": FakeBmc("off")}, bmc="b1", state="reset")
    assert caught.value.msg == "state 'reset' needs a running machine and this one is off; use state: boot to power on or reset"


def test_boot_device_set_before_power_on():
    bmc = FakeBmc("off")
    result = run({"b1": bmc}, bmc="b1", state="on", boot_device="network", boot_mode="uefi")
    control = [c for c in bmc.commands if c[:2] in ((0, 8), (0, 2))]
    assert control[0] == (0, 8, (5, 0xA0, 0x04, 0, 0, 0)) and control[1] == (0, 2, (1,))
    assert result["boot_device"] == {"device": "network", "persistent": False, "mode": "uefi"}


CONN = BmcConnection.from_params({"bmc": "busy-rack-bmc", "user": "u"})


@pytest.mark.parametrize(
    "text,kind,transient",
    [
        (constants.rmcp_codes[0x01], errors.BmcOutOfSessionsError, True),
        (constants.rmcp_codes[0x0B] + " in RAKP2", errors.BmcOutOfSessionsError, True),
        (constants.rmcp_codes[0x11], errors.BmcCipherMismatchError, True),
        ("timeout", errors.BmcNoAnswerError, True),
        ("timeout while trying to get channel authentication capabalities", errors.BmcNoAnswerError, True),
        ("Node Busy while trying to get channel authentication capabalities", errors.BmcBusyError, True),
        ("Incorrect password provided", PmAuthError, False),
        (constants.rmcp_codes[0x0D] + " in RAKP2", PmAuthError, False),
        (constants.rmcp_codes[0x0A] + " reported in RAKP4", PmAuthError, False),
        ("Invalid RAKP4 integrity code (wrong Kg?)", PmAuthError, False),
        (constants.rmcp_codes[0x0E], PmConnectionError, False),
        ("Unrecognized RMCP code 99", PmConnectionError, False),
    ],
)
def test_login_refusals_are_classified_by_pyghmis_code_not_by_words(text, kind, transient):
    error = errors.login_error(text, CONN)
    assert error.__class__ is kind and error.transient is transient
    assert "busy-rack-bmc:623" in error.msg  # the BMC is named; its name never decides the class


@pytest.mark.parametrize(
    "code,kind,transient",
    [(0xC0, errors.BmcBusyError, True), (0xC3, errors.BmcBusyError, True), (0xFFFF, errors.BmcNoAnswerError, True),
     (0xD4, PmAuthError, False), (0xC1, PmConnectionError, False), (0xCB, PmConnectionError, False)],
)
def test_completion_codes_are_classified_by_code(code, kind, transient):
    error = errors.completion_error(code, get_ipmi_error({"code": code, "netfn": 0, "command": 1}) if code != 0xFFFF else "timeout", CONN)
    assert error.__class__ is kind and error.transient is transient


def test_exceptions_are_classified_by_type_and_pyghmis_code():
    from pyghmi.exceptions import IpmiException

    assert errors.exception_error(IpmiException("Session no longer connected"), CONN).__class__ is errors.BmcSessionLostError
    assert errors.exception_error(IpmiException("Node Busy", 0xC0), CONN).__class__ is errors.BmcBusyError
    assert errors.exception_error(IpmiException("busy busy busy"), CONN).transient is False
    assert errors.exception_error(TimeoutError("timed out"), CONN).__class__ is errors.BmcNoAnswerError
    assert errors.exception_error(ConnectionRefusedError("refused"), CONN).transient is False


def test_a_permanent_login_refusal_from_a_bmc_named_busy_fails_at_the_first_try():
    bmc = FakeBmc("on", login_error=constants.rmcp_codes[0x0E])  # Unauthorized GUID: permanent
    with pytest.raises(PmConnectionError) as caught:
        run({"busy-rack-bmc": bmc}, bmc="busy-rack-bmc", timeout=20)
    assert bmc.logins == 1 and caught.value.msg == "IPMI with the BMC at busy-rack-bmc:623 failed: Unauthorized GUID"


def test_a_permanent_command_error_from_a_bmc_named_busy_fails_at_the_first_try():
    bmc = FakeBmc("on", refuse=0xC1)  # Invalid command
    with pytest.raises(PmConnectionError) as caught:
        run({"busy-rack-bmc": bmc}, bmc="busy-rack-bmc", timeout=20)
    assert len(bmc.commands) == 1 and "kept failing" not in caught.value.msg
    assert caught.value.msg.startswith("IPMI with the BMC at busy-rack-bmc:623 failed: Invalid command")


def test_a_wrong_password_at_a_bmc_named_busy_fails_at_the_first_try():
    bmc = FakeBmc("on", login_error="Incorrect password provided")
    with pytest.raises(PmAuthError):
        run({"busy-rack-bmc": bmc}, bmc="busy-rack-bmc", timeout=20)
    assert bmc.logins == 1


def test_the_policy_is_one_frozen_value():
    import dataclasses

    with pytest.raises(dataclasses.FrozenInstanceError):
        POLICY.cipher_tries = 99  # type: ignore[misc]
    assert [round(pause, 3) for pause, _index in zip(POLICY.pauses(), range(7))] == [0.2, 0.3, 0.45, 0.675, 1.013, 1.519, 2.0]


# Texts as pyghmi reports them (constants.rmcp_codes, session timeouts)
OUT_OF_SESSIONS = "Insufficient resources to create new session (wait for existing sessions to timeout)"
NO_CIPHER = "No Cipher suite match with proposed security algorithms"


def test_bmc_out_of_sessions_at_login_is_retried_until_it_has_one():
    bmc = FakeBmc("on", login_errors=[OUT_OF_SESSIONS, OUT_OF_SESSIONS])
    result = run({"b1": bmc}, bmc="b1")
    assert result["power_state"] == "on" and bmc.logins == 3


def test_bmc_out_of_sessions_until_the_timeout_says_so():
    bmc = FakeBmc("on", login_error=OUT_OF_SESSIONS)
    with pytest.raises(PmError) as caught:
        run({"b1": bmc}, bmc="b1", timeout=1.5)
    assert caught.value.msg.startswith("login to the BMC at b1:623 kept being refused until the timeout")
    assert "no free session" in caught.value.msg and bmc.logins >= 2


def test_login_timeouts_on_a_lossy_path_are_retried_within_connect_timeout_only():
    bmc = FakeBmc("on", login_error="timeout")
    started = time.monotonic()
    with pytest.raises(PmError) as caught:
        run({"b1": bmc}, bmc="b1", connect_timeout=1, timeout=30)
    assert time.monotonic() - started < 10, "a BMC that only times out must not use the whole task timeout"
    assert "b1:623" in caught.value.msg and bmc.logins >= 2


def test_one_lost_login_answer_is_recovered():
    bmc = FakeBmc("off", login_errors=["timeout"])
    assert run({"b1": bmc}, bmc="b1")["power_state"] == "off" and bmc.logins == 2


def test_a_spurious_cipher_mismatch_is_retried_a_few_times_only():
    flaky = FakeBmc("on", login_errors=[NO_CIPHER])
    assert run({"f": flaky}, bmc="f", cipher_suite="3")["power_state"] == "on" and flaky.logins == 2
    never = FakeBmc("on", login_error=NO_CIPHER)
    with pytest.raises(PmError) as caught:
        run({"n": never}, bmc="n", cipher_suite="3", timeout=20)
    assert "cipher suite" in caught.value.msg and never.logins == POLICY.cipher_tries


def test_explicit_suite_17_mismatch_and_wrong_password_are_not_retried():
    strict = FakeBmc("on", login_error=NO_CIPHER)
    with pytest.raises(PmError):
        run({"s": strict}, bmc="s", cipher_suite="17")
    wrong = FakeBmc("on", login_error="Incorrect password provided")
    with pytest.raises(PmAuthError):
        run({"w": wrong}, bmc="w")
    assert strict.logins == 1 and wrong.logins == 1
