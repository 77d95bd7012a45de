"""``_ipmi.session.harden``: pyghmi sessions that ignore replies meant for another session.

Real pyghmi sessions (pointed at a loopback port where nothing listens) are
handed RMCP+ login replies as pyghmi's event loop would hand them over.
"""

from __future__ import annotations

import socket
import struct

import pytest

pyghmi_session = pytest.importorskip("pyghmi.ipmi.private.session")

from ansible_collections.ctys.pm.plugins.module_utils._ipmi import session as _ipmi_session  # noqa: E402


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.fixture
def sessions():
    _ipmi_session.wake_promptly()
    made = []

    def make():
        reports = []
        session = pyghmi_session.Session(bmc="127.0.0.1", userid="admin", password="pw", port=free_port(), kg=None,
                                         privlevel=4, onlogon=reports.append, keepalive=False)
        made.append(session)
        return session, reports

    yield make
    for session in made:
        _ipmi_session._purge(type("C", (), {"ipmi_session": session})())


def test_every_session_has_its_own_console_session_id(sessions):
    ids = {sessions()[0].localsid for _session in range(5)}
    assert len(ids) == 5 and 2017673555 not in ids  # pyghmi: one fixed id for all


@pytest.mark.parametrize("handler,context", [("_got_rakp2", "EXPECTINGRAKP2"), ("_got_rakp4", "EXPECTINGRAKP4"), ("_got_rmcp_response", "OPENSESSION")])
def test_a_refusal_naming_another_session_is_ignored_and_one_naming_this_session_is_not(sessions, handler, context):
    session, reports = sessions()
    session.sessioncontext = context
    foreign = bytearray([session.rmcptag, 0x0D, 0, 0]) + struct.pack("<I", session.localsid ^ 0x5A5A)
    assert getattr(session, handler)(foreign) == -9
    assert reports == [] and not session.broken
    own = bytearray([session.rmcptag, 0x0D, 0, 0]) + struct.pack("<I", session.localsid)
    session.attemptedhash = 1  # no fall-back from suite 17 to 3 in the open-session case
    getattr(session, handler)(own)
    assert reports and "error" in reports[0], reports


def test_an_ipmi15_packet_of_another_session_leaves_the_sequence_number_alone(sessions):
    session, reports = sessions()
    session.remseqnumber = 5
    # IPMI 1.5 header: RMCP, auth type 0, sequence number 0xFFFFFF00, session id of another session
    foreign = bytearray(b"\x06\x00\xff\x07\x00") + struct.pack("<II", 0xFFFFFF00, session.sessionid + 7) + bytearray(b"\x07" + b"\x00" * 7)
    session._handle_ipmi_packet(foreign, sockaddr=session.sockaddr, qent=(foreign, session.sockaddr, session.socket, True))
    assert session.remseqnumber == 5 and reports == []  # pyghmi alone stores 0xFFFFFF00 and drops this session's replies
