"""The adjustments _ipmi.session makes to pyghmi itself (pinned 1.6.19)."""

from __future__ import annotations

import collections
import sys

import pytest

from ansible_collections.ctys.pm.plugins.module_utils._errors import PmUnsupportedError
from ansible_collections.ctys.pm.plugins.module_utils._ipmi import session as _ipmi_session

pyghmi_session = pytest.importorskip("pyghmi.ipmi.private.session")


class WakeSocket:
    """pyghmi's socket for waking its own I/O thread; records the wake-ups."""

    def __init__(self):
        self.sent = []

    def sendto(self, data, address):
        self.sent.append(data)

    def getsockname(self):
        return ("127.0.0.1", 40000)


class AnswerArrivesWhileRegistering(collections.deque):
    """pyghmi's ioqueue; the I/O thread queues an answer just as the waiter registers."""

    def append(self, x):
        super().append(x)
        pyghmi_session.sessionqueue.append("session with an answer")


@pytest.fixture
def io_thread_state(monkeypatch):
    monkeypatch.setattr(pyghmi_session, "_io_wait", pyghmi_session._io_wait)  # restored after the test
    monkeypatch.setattr(pyghmi_session, "sessionqueue", collections.deque())
    monkeypatch.setattr(pyghmi_session, "ioqueue", collections.deque())
    monkeypatch.setattr(pyghmi_session, "selectdeadline", pyghmi_session._monotonic_time() + 300)  # the I/O thread sleeps long
    monkeypatch.setattr(pyghmi_session, "iosockets", [WakeSocket()])
    monkeypatch.setattr(pyghmi_session, "myself", "127.0.0.1")
    _ipmi_session.wake_promptly()
    _ipmi_session.wake_promptly()  # a second call must not wrap twice
    return pyghmi_session


def test_a_wait_registers_with_the_io_thread_and_wakes_it(io_thread_state):
    events = []
    started = io_thread_state._monotonic_time()  # pyghmi's own clock
    io_thread_state._io_wait(0.8, ("198.18.1.11", 623), events)
    deadline, event, address = io_thread_state.ioqueue[0]
    assert address == ("198.18.1.11", 623) and events == [event]
    assert started + 0.7 < deadline < started + 0.9  # pyghmi's own timeout is kept for the I/O thread
    assert io_thread_state.iosockets[0].sent == [b"\x01"]


def test_no_wait_at_all_when_the_answer_is_already_queued(io_thread_state, monkeypatch):
    class QueuedSession:
        pktqueue = [b"answer"]

    monkeypatch.setitem(io_thread_state.Session.bmc_handlers, ("198.18.1.12", 623), {623: QueuedSession()})
    io_thread_state._io_wait(0.8, ("198.18.1.12", 623), None)
    io_thread_state.sessionqueue.append(QueuedSession())
    io_thread_state._io_wait(0.8)
    assert not io_thread_state.ioqueue and not io_thread_state.iosockets[0].sent


def test_an_answer_that_arrives_while_registering_is_not_waited_for(io_thread_state, monkeypatch):
    monkeypatch.setattr(io_thread_state, "ioqueue", AnswerArrivesWhileRegistering())
    io_thread_state._io_wait(0.8)
    assert len(io_thread_state.ioqueue) == 1 and not io_thread_state.iosockets[0].sent


def test_missing_pyghmi_is_named_with_the_fix(monkeypatch):
    monkeypatch.setattr(_ipmi_session, "command_factory", None)
    monkeypatch.setitem(sys.modules, "pyghmi.ipmi.private.session", None)
    with pytest.raises(PmUnsupportedError, match=r"needs the Python library pyghmi where the task runs .*pip install pyghmi"):
        _ipmi_session._factory(raw_only=True)
