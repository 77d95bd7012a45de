"""pm_console's backend, with pyghmi's SOL Console replaced at its factory (the outermost seam)."""

from __future__ import annotations

import re

import pytest

from ansible_collections.ctys.pm.plugins.module_utils import _sol
from ansible_collections.ctys.pm.plugins.module_utils._bmc import BmcConnection
from ansible_collections.ctys.pm.plugins.module_utils._errors import (
    PmAuthError,
    PmInputError,
    PmStateError,
    PmTimeoutError,
    PmUnsupportedError,
)

CONN = {"bmc": "127.0.0.1", "port": 6230, "user": "admin", "password": "s3cret-pw"}


class FakeConsole:
    """Behaves like pyghmi.ipmi.console.Console towards its iohandler.

    ``script`` maps typed bytes to the console's answer; ``greeting`` is
    printed once the session is up; ``error`` is reported instead of
    connecting (as pyghmi does through the iohandler).
    """

    instances = []

    def __init__(self, bmc, userid, password, iohandler, port, force, kg, *, script=None, greeting="", error=None, connect_after=0):
        self.args = dict(bmc=bmc, userid=userid, password=password, port=port, force=force, kg=kg)
        self.handler = iohandler
        self.script = script or {}
        self.pending = [greeting] if greeting else []
        self.error = error
        self.polls_until_connected = connect_after
        self.connected = False
        self.sent = []
        self.closed = False
        FakeConsole.instances.append(self)

    def wait_for_rsp(self, timeout):
        if self.error:
            self.handler({"error": self.error})
            return
        if self.polls_until_connected > 0:
            self.polls_until_connected -= 1
            return
        self.connected = True
        while self.pending:
            self.handler(self.pending.pop(0).encode())

    def send_data(self, data):
        self.sent.append(data)
        for typed, answer in self.script.items():
            if data == typed:
                self.pending.append(answer)

    def close(self):
        self.closed = True


def factory(**behaviour):
    def make(**kwargs):
        return FakeConsole(**kwargs, **behaviour)

    return lambda conn, takeover: _sol.SolTransport(conn, takeover, console_factory=make)


def run(params, check_mode=False, **behaviour):
    FakeConsole.instances.clear()
    merged = dict(CONN, timeout=5, takeover=True)
    merged.update(params)
    return _sol.run_console(merged, check_mode=check_mode, transport_factory=factory(**behaviour))


LOGIN = {
    b"\r": "\r\n\x1b[1mlab01 login: \x1b[0m",
    b"root\r": "root\r\nPassword: ",
    b"pw\r": "\r\nroot@lab01:~# ",
    b"hostname\r": "hostname\r\nlab01\r\nroot@lab01:~# ",
}


def test_login_conversation_matches_each_step_and_strips_escapes():
    result = run(
        {
            "steps": [
                {"send": "\\r", "expect": "login: $", "timeout": 2},
                {"send": "root\\r", "expect": "Password: $"},
                {"send": "pw\\r", "expect": "# $"},
                {"send": "hostname\\r", "expect": "^lab01$"},
            ]
        },
        script=LOGIN,
    )
    assert result["changed"] is True
    assert [s["matched"] for s in result["steps"]] == ["login: ", "Password: ", "# ", "lab01"]
    assert "\x1b" not in result["output"] and "lab01 login: root\nPassword: " in result["output"]
    assert result["sent_bytes"] == len(b"\rroot\rpw\rhostname\r")
    console = FakeConsole.instances[0]
    assert console.args["force"] is True and console.args["port"] == 6230 and console.closed


def test_raw_output_keeps_escape_sequences():
    result = run({"steps": [{"send": "\\r", "expect": "login"}], "raw": True}, script=LOGIN)
    assert "\x1b[1m" in result["output"]


def test_expect_that_never_comes_fails_with_output_so_far():
    with pytest.raises(PmTimeoutError) as caught:
        run({"steps": [{"send": "\\r", "expect": "login: $"}, {"send": "root\\r", "expect": "never-printed", "timeout": 0.3}]}, script=LOGIN)
    assert caught.value.msg == "expect 'never-printed' did not appear within 0.3 s"
    assert "Password: " in caught.value.result["output"]
    assert caught.value.result["steps"] == [{"step": "login: $", "matched": "login: "}]


def test_whole_task_timeout_bounds_a_long_step():
    with pytest.raises(PmTimeoutError, match="did not appear within the task timeout"):
        run({"timeout": 0.3, "steps": [{"expect": "never", "timeout": 60}]})


def test_check_mode_connects_but_sends_nothing():
    result = run({"steps": [{"send": "root\\r", "expect": "Password"}]}, check_mode=True, script=LOGIN)
    assert FakeConsole.instances[0].sent == []
    assert result["sent_bytes"] == 0 and result["would_send_bytes"] == 5 and result["changed"] is True


def test_capture_stops_when_until_matches():
    result = run({"capture": True, "duration": 5, "until": "login: $"}, greeting="[    0.000000] Linux version 6.1\r\nlab01 login: ")
    assert result["matched"] is True and result["changed"] is False
    assert result["output"].startswith("[    0.000000] Linux version 6.1\n")


def test_capture_without_until_runs_for_duration_and_reports_no_match():
    result = run({"capture": True, "duration": 0.3, "until": "never"}, greeting="boot...")
    assert result["matched"] is False and result["output"] == "boot..."


@pytest.mark.parametrize(
    "error,kind,message",
    [
        ("SOL Session active for another client", PmStateError, "SOL on 127.0.0.1:6230 is held by another client; set takeover: true"),
        ("SOL is disabled", PmUnsupportedError, "the BMC at 127.0.0.1:6230 offers no Serial-over-LAN console"),
        ("Incorrect password provided", PmAuthError, "the BMC at 127.0.0.1:6230 refused user 'admin'"),
        ("timeout", PmTimeoutError, "the BMC at 127.0.0.1:6230 did not answer"),
    ],
)
def test_pyghmi_errors_become_clear_sentences(error, kind, message):
    with pytest.raises(kind) as caught:
        run({"steps": [{"send": "x"}], "takeover": False}, error=error)
    assert caught.value.msg.startswith(message)
    assert "s3cret-pw" not in caught.value.msg


def test_login_that_never_completes_is_bounded_by_connect_timeout():
    with pytest.raises(PmTimeoutError, match=r"did not open a SOL session within 0.3 s"):
        run({"connect_timeout": 0.3, "steps": [{"send": "x"}]}, connect_after=10**9)


def test_log_file_appends_output(tmp_path):
    log = tmp_path / "console.log"
    run({"capture": True, "duration": 1, "until": "login", "log_file": str(log)}, greeting="lab01 login: ")
    run({"capture": True, "duration": 1, "until": "login", "log_file": str(log)}, greeting="lab01 login: ")
    text = log.read_text()
    assert text.count("SOL 127.0.0.1:6230") == 2 and text.count("lab01 login: ") == 2


@pytest.mark.parametrize(
    "text,expected",
    [("root\\r", b"root\r"), ("^C", b"\x03"), ("^[", b"\x1b"), ("a^^b", b"a^b"), ("\\x41\\t", b"A\t"), ("^?", b"\x7f")],
)
def test_control_keys_and_escapes(text, expected):
    assert _sol.decode_keys(text) == expected


@pytest.mark.parametrize("text,fragment", [("\\q", "unknown escape '\\q'"), ("^1", "unknown control key '^1'")])
def test_bad_keys_are_named(text, fragment):
    with pytest.raises(PmInputError, match=re.escape(fragment)):
        _sol.decode_keys(text, "steps[0].send")


@pytest.mark.parametrize(
    "step,message",
    [
        ({}, "steps[0] '{}' does nothing; give it send, expect or both"),
        ({"expect": "("}, "steps[0].expect '(' is not a valid regular expression"),
        ({"send": "x", "timeout": 0}, "steps[0].timeout '0' is not valid"),
    ],
)
def test_bad_steps_fail_before_connecting(step, message):
    with pytest.raises(PmInputError) as caught:
        run({"steps": [step]})
    assert caught.value.msg.startswith(message)
    assert FakeConsole.instances == []


def test_sol_console_command_keeps_password_off_the_command_line():
    result = _sol.run_console(dict(CONN, console_command="sol", cipher_suite="3", privilege="operator"))
    assert result["argv"] == ["ipmitool", "-I", "lanplus", "-H", "127.0.0.1", "-p", "6230", "-U", "admin", "-E", "-C", "3", "-L", "OPERATOR", "sol", "activate"]
    assert "s3cret-pw" not in repr(result) and result["environment"] == ["IPMI_PASSWORD"] and result["changed"] is False


@pytest.mark.parametrize(
    "kind,expected",
    [
        ("ssh", "ssh -t root@lab01"),
        ("xterm", "xterm -T lab01 -e ssh -t root@lab01"),
        ("gnome-terminal", "gnome-terminal --title lab01 -- ssh -t root@lab01"),
        ("emacs", "ssh -t root@lab01 emacs -nw -f shell"),
        ("vnc", "vncviewer lab01:1"),
    ],
)
def test_ctys_console_types(kind, expected):
    result = _sol.run_console({"console_command": kind, "target_host": "lab01", "target_user": "root", "vnc_display": 1, "timeout": 10})
    assert result["command"] == expected


def test_console_command_needs_target_host():
    with pytest.raises(PmInputError, match="console_command 'ssh' needs target_host"):
        _sol.run_console({"console_command": "ssh", "timeout": 10})


def test_neither_steps_nor_capture_is_an_error():
    with pytest.raises(PmInputError, match="steps is empty and capture is false"):
        run({})


def test_transport_uses_connection_options():
    conn = BmcConnection.from_params(dict(CONN, kg="key"))
    FakeConsole.instances.clear()
    transport = factory()(conn, False)
    transport.open(_sol.Deadline(2))
    assert FakeConsole.instances[0].args == {"bmc": "127.0.0.1", "userid": "admin", "password": "s3cret-pw", "port": 6230, "force": False, "kg": "key"}
