"""The hard bound (``_bmc.guard``): a task returns by its timeout even when pyghmi never returns.

pyghmi is replaced at the outermost seam (``_ipmi.session.command_factory``, the
SOL console factory) by fakes that block for good in a login, a command or a
console read, as pyghmi did spinning in ``awaitresponse`` (issue 20). The
worker is released at the end of each test so no thread outlives it.
"""

from __future__ import annotations

import threading
import time

import pytest

from ansible_collections.ctys.pm.plugins.module_utils._bmc import guard
from ansible_collections.ctys.pm.plugins.module_utils._errors import PmError, PmTimeoutError
from ansible_collections.ctys.pm.plugins.module_utils._ipmi import console as _console
from ansible_collections.ctys.pm.plugins.module_utils._ipmi import power as _ipmi_power
from ansible_collections.ctys.pm.plugins.module_utils._ipmi import sensors as _sensors_ipmi
from ansible_collections.ctys.pm.plugins.module_utils._ipmi import session as _ipmi_session
from ansible_collections.ctys.pm.plugins.module_utils._ipmi import sol as _sol

RELEASE = threading.Event()


@pytest.fixture(autouse=True)
def release_blocked_workers(monkeypatch):
    RELEASE.clear()
    monkeypatch.setattr(_ipmi_session, "_pump", lambda seconds: time.sleep(min(seconds, 0.01)))
    monkeypatch.setattr(_ipmi_session, "logout", lambda command: None)
    yield
    RELEASE.set()  # the abandoned worker finishes now


def block() -> None:
    RELEASE.wait(600)


class HangingCommand:
    """pyghmi's Command towards one BMC: ``hang`` is where it never returns (login or command)."""

    hang = {}

    def __init__(self, bmc, userid, password, port, kg, privlevel, onlogon, keepalive):
        self.bmc = bmc
        if HangingCommand.hang.get(bmc) == "login":
            block()
        onlogon({"success": True}, self)

    def raw_command(self, netfn, command, data=()):
        if HangingCommand.hang.get(self.bmc) == "command":
            block()
        return {"code": 0, "data": bytes([0, 0, 0])}  # chassis status: off


def power(**params):
    base = {"user": "admin", "password": "pw", "port": 623, "privilege": "administrator", "cipher_suite": "auto",
            "connect_timeout": 1, "timeout": 1, "wait": True, "state": "query", "fail_on": "never"}
    base.update(params)
    return _ipmi_power.run(base)


def test_a_fleet_task_whose_last_bmc_never_answers_a_command_returns_with_every_result(monkeypatch):
    monkeypatch.setattr(_ipmi_session, "command_factory", HangingCommand)
    HangingCommand.hang = {"b3": "command"}
    result = power(targets=[{"bmc": "b1"}, {"bmc": "b2"}, {"bmc": "b3"}])
    by_bmc = {r["bmc"]: r for r in result["results"]}
    assert [by_bmc[f"b{i}:623"]["power_state"] for i in (1, 2)] == ["off", "off"]
    hung = by_bmc["b3:623"]
    assert hung["failed"] is True and hung["step"] == "command", hung
    assert "b3:623" in hung["msg"] and "cut off at the task's timeout of 1 s" in hung["msg"]
    assert result["summary"]["failed"] == 1


def test_a_single_task_whose_login_never_returns_fails_naming_bmc_and_step(monkeypatch):
    monkeypatch.setattr(_ipmi_session, "command_factory", HangingCommand)
    HangingCommand.hang = {"b9": "login"}
    with pytest.raises(PmTimeoutError) as caught:
        power(bmc="b9", state="on")
    assert "b9:623" in caught.value.msg and "'login'" in caught.value.msg
    assert caught.value.result["step"] == "login"


def test_sensors_read_that_never_returns_is_cut_off_at_the_timeout(monkeypatch):
    monkeypatch.setattr(_ipmi_session, "command_factory", HangingCommand)
    HangingCommand.hang = {"s1": "login"}
    with pytest.raises(PmTimeoutError) as caught:
        _sensors_ipmi.read({"bmc": "s1", "port": 623, "user": "admin", "password": "pw", "timeout": 1, "connect_timeout": 5})
    assert "s1:623" in caught.value.msg and caught.value.result["step"] == "login"


class HangingConsole:
    """pyghmi's SOL Console: ``hang_in`` 'login' never connects, 'command' never returns from a read."""

    hang_in = "login"

    def __init__(self, **kwargs):
        self.handler = kwargs["iohandler"]
        self.connected = False

    def wait_for_rsp(self, timeout):
        if HangingConsole.hang_in == "login" or self.connected:
            block()
        self.connected = True

    def send_data(self, data):
        pass

    def close(self):
        pass


@pytest.mark.parametrize("step", ["login", "command"])
def test_a_console_that_blocks_is_cut_off_at_the_timeout_naming_the_step(step):
    HangingConsole.hang_in = step

    def factory(conn, takeover):
        return _sol.SolTransport(conn, takeover, console_factory=HangingConsole)

    params = {"bmc": "c1", "port": 6230, "user": "admin", "password": "pw", "timeout": 1, "steps": [{"expect": "login:"}]}
    with pytest.raises(PmTimeoutError) as caught:
        _console.run_console_bounded(params, transport_factory=factory)
    assert "c1:6230" in caught.value.msg and caught.value.result["step"] == step, caught.value.msg


def test_the_work_s_own_error_reaches_the_caller():
    def work():
        raise PmError("the BMC at b:623 refused it; check it")

    with pytest.raises(PmError, match="refused it"):
        guard.bounded(work, 5)


def test_progress_is_frozen_once_the_deadline_read_it():
    progress = guard.Progress()
    progress.step("a", guard.COMMAND)
    assert progress.close() == {"a": "command"}
    progress.step("a", guard.DONE)  # the abandoned worker, later
    assert progress.get("a") == "command" and progress.closed


CUT_OFF_PROCESS = r"""
import socket, sys, threading
from ansible_collections.ctys.pm.plugins.module_utils._bmc import guard
from pyghmi.ipmi.private import session as pyghmi_session

with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:  # a loopback port where nothing listens
    probe.bind(("127.0.0.1", 0))
    port = probe.getsockname()[1]
pyghmi_session.Session(bmc="127.0.0.1", userid="u", password="p", port=port, kg=None, privlevel=4,
                       onlogon=lambda response: None, keepalive=False)  # starts pyghmi's I/O thread

def spin():  # as pyghmi's awaitresponse did in issue 20: busy, holding the GIL between switches
    while True:
        pass

outcome = guard.bounded(spin, 0.5, grace=0.2)
print("RESULT", outcome.finished, [t.daemon for t in threading.enumerate() if t is not threading.main_thread()])
sys.stdout.flush()
"""


def test_a_process_whose_work_was_cut_off_still_exits_with_its_result_written():
    import os
    import subprocess
    import sys

    env = dict(os.environ, PYTHONPATH=os.pathsep.join(p for p in sys.path if p))
    done = subprocess.run([sys.executable, "-c", CUT_OFF_PROCESS], capture_output=True, text=True, timeout=60, env=env, check=False)
    assert done.returncode == 0, done.stderr
    line = next(line for line in done.stdout.splitlines() if line.startswith("RESULT"))
    assert line.startswith("RESULT False ["), line
    assert "False" not in line.split("[", 1)[1], f"a non-daemon thread would keep the module alive: {line}"
