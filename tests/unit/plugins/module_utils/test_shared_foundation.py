"""Shared foundation pieces: MAC parsing, BMC options, deadlines, result plumbing."""

from __future__ import annotations

import pytest

from ansible_collections.ctys.pm.plugins.module_utils._bmc.options import BmcConnection, bmc_argument_spec
from ansible_collections.ctys.pm.plugins.module_utils._deadline import Deadline, backoff, sleep_within
from ansible_collections.ctys.pm.plugins.module_utils._errors import PmAuthError, PmError, PmInputError, invalid_option
from ansible_collections.ctys.pm.plugins.module_utils._module_runner import run_module
from ansible_collections.ctys.pm.plugins.module_utils._netaddr import (
    check_interface_name,
    check_port,
    mac_bytes,
    parse_mac,
)


@pytest.mark.parametrize(
    "text",
    ["00:1a:2b:3c:4d:5e", "00-1A-2B-3C-4D-5E", "001a.2b3c.4d5e", "001A2B3C4D5E", " 00:1A:2b:3c:4d:5e ", "0:1a:2b:3c:4d:5e"],
)
def test_parse_mac_accepts_every_documented_form(text):
    assert parse_mac(text) == "00:1a:2b:3c:4d:5e"


@pytest.mark.parametrize("text", ["zz:11", "00:1a:2b:3c:4d", "00:1a-2b:3c:4d:5e", "001a2b3c4d5", "", "00:1a:2b:3c:4d:5e:6f"])
def test_parse_mac_rejects_with_one_sentence_naming_value_and_fix(text):
    with pytest.raises(PmInputError) as caught:
        parse_mac(text, option="mac")
    assert caught.value.msg == f"mac '{text}' is not a MAC address; use six hex octets such as 00:1a:2b:3c:4d:5e"


def test_mac_bytes_are_the_six_octets():
    assert mac_bytes("00-1A-2B-3C-4D-5E") == bytes([0x00, 0x1A, 0x2B, 0x3C, 0x4D, 0x5E])


@pytest.mark.parametrize("name", ["eth0", "enp0s31f6", "br-lan", "bond0.100", "wlp2s0"])
def test_interface_names_accepted(name):
    assert check_interface_name(name) == name


@pytest.mark.parametrize("name", ["", "eth0; reboot", "../etc", "a" * 16, "eth 0", ".."])
def test_interface_names_that_could_be_abused_are_refused(name):
    with pytest.raises(PmInputError, match=r"^interface '.*' is not a valid interface name; use"):
        check_interface_name(name)


@pytest.mark.parametrize("value,expected", [(9, 9), ("7", 7), (65535, 65535)])
def test_ports_in_range(value, expected):
    assert check_port(value) == expected


@pytest.mark.parametrize("value", [0, 65536, -1, "nine"])
def test_ports_out_of_range(value):
    with pytest.raises(PmInputError, match=rf"^port '{value}' is outside 1\.\.65535; use a port number"):
        check_port(value)


def test_bmc_connection_from_params_with_defaults_overlay():
    defaults = {"user": "admin", "password": "secret", "port": 623, "privilege": "operator"}
    conn = BmcConnection.from_params({"bmc": "192.0.2.7", "port": 6230, "user": None}, defaults)
    assert (conn.host, conn.port, conn.user, conn.privilege, conn.cipher_suite) == ("192.0.2.7", 6230, "admin", "operator", "auto")
    assert conn.address == "192.0.2.7:6230"
    assert "secret" not in repr(conn)


def test_bmc_connection_ipv6_address_is_bracketed():
    assert BmcConnection.from_params({"bmc": "fd00::7"}).address == "[fd00::7]:623"


@pytest.mark.parametrize(
    "params,message",
    [
        ({}, "bmc is missing; set bmc to"),
        ({"bmc": "h", "port": 70000}, "port '70000' is outside 1..65535"),
        ({"bmc": "h", "privilege": "root"}, "privilege 'root' is not valid; use one of user, operator, administrator"),
        ({"bmc": "h", "cipher_suite": "99"}, "cipher_suite '99' is not valid; use auto, 3 or 17, the suites pyghmi negotiates"),
        # pyghmi proposes only suites 17 and 3: 0 (no authentication), 1, 2, 15 and 16 would be silently replaced
        ({"bmc": "h", "cipher_suite": "0"}, "cipher_suite '0' is not valid; use auto, 3 or 17, the suites pyghmi negotiates"),
        ({"bmc": "h", "cipher_suite": "1"}, "cipher_suite '1' is not valid; use auto, 3 or 17"),
        ({"bmc": "h", "cipher_suite": "16"}, "cipher_suite '16' is not valid; use auto, 3 or 17"),
        ({"bmc": "h", "connect_timeout": 0}, "connect_timeout '0' is not valid; use seconds above 0 and at most 3600"),
    ],
)
def test_bmc_connection_rejects_bad_values(params, message):
    with pytest.raises(PmInputError) as caught:
        BmcConnection.from_params(params)
    assert caught.value.msg.startswith(message)


@pytest.mark.parametrize("value,suite", [("auto", "auto"), ("3", "3"), (" 17 ", "17"), (None, "auto")])
def test_cipher_suite_takes_what_pyghmi_negotiates(value, suite):
    assert BmcConnection.from_params({"bmc": "h", "cipher_suite": value}).cipher_suite == suite


def test_the_argument_spec_offers_the_suites_the_doc_fragment_documents():
    import yaml

    from ansible_collections.ctys.pm.plugins.doc_fragments.bmc import ModuleDocFragment

    documented = yaml.safe_load(ModuleDocFragment.DOCUMENTATION)["options"]
    spec = bmc_argument_spec()
    assert spec["cipher_suite"]["choices"] == documented["cipher_suite"]["choices"] == ["auto", "3", "17"]
    assert "allow_unauthenticated" not in spec and "allow_unauthenticated" not in documented


def test_argument_spec_marks_secrets_no_log_and_is_a_fresh_copy():
    spec = bmc_argument_spec()
    assert spec["password"]["no_log"] is True and spec["kg"]["no_log"] is True
    spec["port"]["default"] = 1
    assert "default" not in bmc_argument_spec()["port"], "port's default depends on the protocol (623 IPMI, 443 Redfish)"


class FakeClock:
    def __init__(self):
        self.now = 100.0

    def __call__(self):
        return self.now


def test_deadline_counts_down_and_caps_waits():
    clock = FakeClock()
    deadline = Deadline(5, clock=clock)
    clock.now += 2
    assert deadline.remaining() == pytest.approx(3)
    assert deadline.cap(10) == pytest.approx(3)
    assert deadline.cap(1) == pytest.approx(1)
    slept = []
    sleep_within(deadline, 10, sleeper=slept.append)
    assert slept == [pytest.approx(3)]
    clock.now += 4
    assert deadline.expired and deadline.remaining() == 0


def test_backoff_starts_fast_and_grows_to_ceiling():
    schedule = backoff(0.2, 2.0, 1.0)
    assert [round(next(schedule), 3) for step in range(5)] == [0.2, 0.4, 0.8, 1.0, 1.0]


class RecordingModule:
    """Stands in for AnsibleModule's two exits (the Ansible API seam)."""

    def __init__(self):
        self.exited = None
        self.failed = None

    def exit_json(self, **result):
        self.exited = result

    def fail_json(self, **result):
        self.failed = result


def test_run_module_reports_result():
    module = RecordingModule()
    run_module(module, lambda: {"changed": True, "power_state": "on"})
    assert module.exited == {"changed": True, "power_state": "on"} and module.failed is None


def test_run_module_turns_pm_errors_into_fail_json_with_extra_results():
    def backend():
        raise PmAuthError("user 'admin' was refused by 192.0.2.7:623; check user and password", output="so far")

    module = RecordingModule()
    run_module(module, backend)
    assert module.failed == {"msg": "user 'admin' was refused by 192.0.2.7:623; check user and password", "output": "so far"}
    assert module.exited is None


def test_run_module_does_not_hide_bugs():
    module = RecordingModule()
    with pytest.raises(ZeroDivisionError):
        run_module(module, lambda: {"x": 1 / 0})


def test_invalid_option_message_shape():
    error = invalid_option("repeat", -1, "use a count from 1 to 100")
    assert isinstance(error, PmError) and error.msg == "repeat '-1' is not valid; use a count from 1 to 100"


@pytest.mark.parametrize("name", ["eth0\n", "eth0\r", "\teth0"])
def test_interface_names_with_control_characters_are_refused(name):
    # found by the property-based test: "$" in a regex also matches before a final newline
    with pytest.raises(PmInputError):
        check_interface_name(name)
