"""The adjustments _ipmi_session makes to pyghmi itself (pinned 1.6.19)."""

from __future__ import annotations

import sys

import pytest

from ansible_collections.ctys.pm.plugins.module_utils import _ipmi_session
from ansible_collections.ctys.pm.plugins.module_utils._errors import PmUnsupportedError

pyghmi_session = pytest.importorskip("pyghmi.ipmi.private.session")


def test_pyghmi_waits_are_cut_into_slices_so_a_missed_wakeup_costs_little(monkeypatch):
    waits = []
    monkeypatch.setattr(pyghmi_session, "_io_wait", lambda timeout, myaddr=None, evq=None: waits.append((timeout, myaddr, evq)))
    _ipmi_session._wake_promptly()
    _ipmi_session._wake_promptly()  # a second call must not wrap twice
    pyghmi_session._io_wait(0.8, ("198.18.1.11", 623), None)
    pyghmi_session._io_wait(0.004)
    assert waits == [(_ipmi_session.WAIT_SLICE, ("198.18.1.11", 623), None), (0.004, None, None)]
    assert _ipmi_session.WAIT_SLICE <= 0.02


def test_no_wait_at_all_when_the_answer_is_already_queued(monkeypatch):
    waits = []
    monkeypatch.setattr(pyghmi_session, "_io_wait", lambda timeout, myaddr=None, evq=None: waits.append(timeout))
    _ipmi_session._wake_promptly()

    class QueuedSession:
        pktqueue = [b"answer"]

    monkeypatch.setitem(pyghmi_session.Session.bmc_handlers, ("198.18.1.12", 623), {623: QueuedSession()})
    pyghmi_session._io_wait(0.8, ("198.18.1.12", 623), None)
    monkeypatch.setattr(pyghmi_session, "sessionqueue", [QueuedSession()])
    pyghmi_session._io_wait(0.8)
    assert waits == []


def test_missing_pyghmi_is_named_with_the_fix(monkeypatch):
    monkeypatch.setattr(_ipmi_session, "command_factory", None)
    monkeypatch.setitem(sys.modules, "pyghmi.ipmi.private.session", None)
    with pytest.raises(PmUnsupportedError, match=r"needs the Python library pyghmi where the task runs .*pip install pyghmi"):
        _ipmi_session._factory(raw_only=True)


def test_power_control_logs_in_without_pyghmi_command(monkeypatch):
    monkeypatch.setattr(_ipmi_session, "command_factory", None)
    assert _ipmi_session._factory(raw_only=True) is _ipmi_session.RawCommand
    assert _ipmi_session._factory(raw_only=False).__module__ == "pyghmi.ipmi.command"
