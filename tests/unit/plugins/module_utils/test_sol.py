"""pm_console's backend, with pyghmi's SOL Console replaced at its factory (the outermost seam)."""

from __future__ import annotations

import re

import pytest

from ansible_collections.ctys.pm.plugins.module_utils._bmc.options import BmcConnection
from ansible_collections.ctys.pm.plugins.module_utils._errors import (
    PmAuthError,
    PmConnectionError,
    PmInputError,
    PmStateError,
    PmTimeoutError,
    PmUnsupportedError,
)
from ansible_collections.ctys.pm.plugins.module_utils._ipmi import sol as _sol

CONN = {"bmc": "127.0.0.1", "port": 6230, "user": "admin", "password": "s3cret-pw"}


class FakeConsole:
    """Behaves like pyghmi.ipmi.console.Console towards its iohandler.

    ``script`` maps typed bytes to the console's answer; ``greeting`` is
    printed once the session is up; ``error`` (a report as ``_sol.reporting_console``
    hands it on: pyghmi's text, the phase and the completion code) is reported
    instead of connecting (as pyghmi does through the iohandler).
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
            self.handler(dict(self.error))
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


def report(text, phase, code=None):
    return {"error": text, "phase": phase, "code": code}


@pytest.mark.parametrize(
    "error,kind,message",
    [
        # pyghmi's texts as its Console prints them, with the phase and code reporting_console adds
        (report("SOL Session active for another client", "activate", 0x80), PmStateError,
         "SOL on 127.0.0.1:6230 is held by another client; set takeover: true"),
        (report("SOL is disabled", "activate", 0x81), PmUnsupportedError, "the BMC at 127.0.0.1:6230 offers no Serial-over-LAN console"),
        (report("Invalid command", "activate", 0xC1), PmUnsupportedError, "the BMC at 127.0.0.1:6230 offers no Serial-over-LAN console"),
        (report("Maximum SOL session count reached", "activate", 0x82), PmStateError, "the BMC at 127.0.0.1:6230 has no free SOL session"),
        (report("Insufficient privilege level or firmware firewall", "activate", 0xD4), PmAuthError,
         "the BMC at 127.0.0.1:6230 refused privilege 'administrator' for user 'admin'"),
        (report("timeout", "activate"), PmTimeoutError, "the BMC at 127.0.0.1:6230 did not answer"),
        (report("Incorrect password provided", "login"), PmAuthError, "the BMC at 127.0.0.1:6230 refused the password of user 'admin'"),
        (report("Unauthorized name in RAKP2", "login"), PmAuthError, "the BMC at 127.0.0.1:6230 does not know user 'admin'"),
        (report("Invalid RAKP4 integrity code (wrong Kg?)", "login"), PmAuthError, "the BMC at 127.0.0.1:6230 refused the key"),
        (report("timeout", "login"), PmTimeoutError, "the BMC at 127.0.0.1:6230 did not answer"),
        (report("Session Disconnected", "session"), PmConnectionError, "the SOL session with the BMC at 127.0.0.1:6230 ended"),
    ],
)
def test_pyghmi_errors_become_clear_sentences(error, kind, message):
    with pytest.raises(kind) as caught:
        run({"steps": [{"send": "x"}], "takeover": False}, error=error)
    assert caught.value.msg.startswith(message), caught.value.msg
    assert "s3cret-pw" not in caught.value.msg


@pytest.mark.parametrize(
    "error",
    [
        # words the old classifier searched for, in texts that mean something else
        report("Unrecognized RMCP code 23 in RAKP2", "login"),  # was "offers no Serial-over-LAN console"
        report("SOL encountered Unrecognized error code 144", "activate", 0x90),  # ditto
        report("Remote IPMI console disconnected: user logged out, timed out", "session"),  # was an auth error
    ],
)
def test_classification_never_reads_words(error):
    with pytest.raises(PmConnectionError) as caught:
        run({"steps": [{"send": "x"}], "takeover": False}, error=error)
    assert not isinstance(caught.value, (PmAuthError, PmTimeoutError)), caught.value.msg
    assert caught.value.msg.startswith(("IPMI with the BMC at 127.0.0.1:6230 failed", "the SOL session with the BMC at 127.0.0.1:6230 ended")), caught.value.msg


class FakeSession:
    """The pyghmi Session under a real Console: answers Activate / Deactivate Payload with ``codes`` in turn."""

    def __init__(self, *codes):
        self.codes = list(codes)
        self.commands = []
        self.sol_handler = None
        self.sessionid = 7

    def raw_command(self, netfn, command, data=()):
        self.commands.append((netfn, command))
        code = self.codes.pop(0)
        if code is None:
            return {"error": "timeout", "code": 0xFFFF}
        port = [0x6F, 0x02]  # 623, little-endian as pyghmi expects
        return {"code": code, "data": [0, 0, 0, 0, 0xFF, 0, 0xFF, 0] + port + [0xFF, 0xFF]}

    def register_keepalive(self, cmd, callback):
        return 1

    def unregister_keepalive(self, keepaliveid):
        pass


def real_console(session, force=False):
    """pyghmi's own Console code (reporting_console's subclass), its login already done by ``session``."""
    pytest.importorskip("pyghmi")
    import threading

    cls = _sol.reporting_console()
    console = cls.__new__(cls)
    reports = []
    console.__dict__.update(
        out_handler=reports.append, ipmi_session=session, force_session=force, retriedpayload=0, keepaliveid=None,
        connected=False, broken=False, port=623, outputlock=threading.RLock(), pendingoutput=[], awaitingack=False,
        activated=False, callgotsession=None,
    )
    return console, reports


@pytest.mark.parametrize(
    "codes,force,phase,code,kind",
    [
        ((0x80,), False, "activate", 0x80, PmStateError),  # held by another client, no take-over
        ((0x80, 0x00, 0x80), True, "activate", 0x80, PmStateError),  # take-over tried once, still held
        ((0x81,), False, "activate", 0x81, PmUnsupportedError),
        ((0xC1,), False, "activate", 0xC1, PmUnsupportedError),
        ((None,), False, "activate", 0xFFFF, PmTimeoutError),
    ],
)
def test_pyghmi_console_reports_carry_phase_and_code(codes, force, phase, code, kind):
    """Drives pyghmi's real Console._got_session: fails when pyghmi changes how activation reports."""
    session = FakeSession(*codes)
    console, reports = real_console(session, force)
    console._got_session({})
    assert len(reports) == 1 and (reports[0]["phase"], reports[0]["code"]) == (phase, code), reports
    assert [command for _netfn, command in session.commands] == ([0x48, 0x49, 0x48] if force else [0x48])
    assert vars(session).get("raw_command") is None  # the recording wrapper is gone again
    assert isinstance(_sol.classify(reports[0], BmcConnection.from_params(CONN)), kind)


def test_pyghmi_console_reports_a_failed_login_and_a_lost_session():
    console, reports = real_console(FakeSession())
    console._got_session({"error": "Incorrect password provided"})
    assert reports == [{"error": "Incorrect password provided", "phase": "login", "code": None}]
    console, reports = real_console(FakeSession(0x00))
    console._got_session({})
    assert console.connected and reports == []
    console._print_error("Connection lost")  # as pyghmi's _sendoutput does after five unanswered tries
    assert reports == [{"error": "Connection lost", "phase": "session", "code": None}]


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
