"""Fuzzing the IPMI client's packet handling on a live session (issue 20).

A real RMCP+ session to a lab BMC (``pmlab_lib.bmc_farm``: pyghmi's server on
loopback) is handed packets as pyghmi's I/O thread hands over what arrives
from the BMC's address: random bytes, truncated and replayed real replies,
and real replies of another session with another BMC (foreign). Property:
afterwards the session goes on (a Get Chassis Status answers) or fails with
the collection's error (a :class:`PmError`), and either happens within its
bound; never another exception, never a hang. 300 examples.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Dict, List

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

pyghmi_session = pytest.importorskip("pyghmi.ipmi.private.session")

from ansible_collections.ctys.pm.plugins.module_utils._bmc import guard  # noqa: E402
from ansible_collections.ctys.pm.plugins.module_utils._bmc.options import BmcConnection  # noqa: E402
from ansible_collections.ctys.pm.plugins.module_utils._deadline import Deadline  # noqa: E402
from ansible_collections.ctys.pm.plugins.module_utils._errors import PmError  # noqa: E402
from ansible_collections.ctys.pm.plugins.module_utils._ipmi import session as _ipmi_session  # noqa: E402

pytestmark = [pytest.mark.lab]
BOUND = 5.0  # seconds a check of the session may take (its task timeout)
RECORDED: Dict[str, List[bytes]] = {"own": [], "foreign": []}
STATE: Dict[str, Any] = {}


def conn_of(bmc) -> BmcConnection:
    return BmcConnection.from_params({"bmc": bmc.host, "port": bmc.port, "user": bmc.user, "password": bmc.password,
                                      "connect_timeout": 3, "cipher_suite": "auto", "privilege": "administrator"})


def login(bmc) -> Any:
    found = _ipmi_session.open_sessions([conn_of(bmc)], Deadline(BOUND), raw_only=True)[0]
    assert found.error is None, found.error
    return found.command


def record(command: Any, kind: str) -> None:
    """Keep the packets pyghmi hands this session (the BMC's real replies)."""
    session = command.ipmi_session
    original = session.process_pktqueue

    def recording() -> None:
        RECORDED[kind].extend(bytes(entry[0]) for entry in list(session.pktqueue))
        original()

    session.process_pktqueue = recording
    for _read in range(4):
        _ipmi_session.raw(command, STATE["conns"][kind], 0x00, 0x01)
    session.process_pktqueue = original


@pytest.fixture(scope="module")
def live(tmp_path_factory):
    from pmlab_lib.bmc_farm import Farm

    with Farm.up(2, Path(tmp_path_factory.mktemp("fuzz-ipmi")) / "farm") as farm:
        STATE["bmc"] = farm.bmcs[0]
        STATE["conns"] = {"own": conn_of(farm.bmcs[0]), "foreign": conn_of(farm.bmcs[1])}
        STATE["command"] = login(farm.bmcs[0])
        foreign = login(farm.bmcs[1])
        record(STATE["command"], "own")
        record(foreign, "foreign")
        assert RECORDED["own"] and RECORDED["foreign"]
        yield STATE
        for command in (STATE["command"], foreign):
            _ipmi_session.logout(command)


def packets() -> st.SearchStrategy[bytes]:
    own = st.sampled_from(RECORDED["own"]) if RECORDED["own"] else st.just(b"\x06\x00\xff\x07")
    foreign = st.sampled_from(RECORDED["foreign"]) if RECORDED["foreign"] else st.just(b"\x06\x00\xff\x07")
    rmcp = st.binary(max_size=120).map(lambda tail: b"\x06\x00\xff\x07\x06" + tail)  # passes pyghmi's first checks
    return st.one_of(
        st.binary(max_size=200),  # random
        rmcp,
        st.tuples(own, st.integers(0, 200)).map(lambda p: p[0][: p[1]]),  # truncated
        own,  # replayed
        foreign,  # meant for another session
        st.tuples(foreign, st.integers(0, 400), st.integers(1, 255)).map(  # foreign, one byte flipped
            lambda p: p[0][: p[1] % len(p[0])] + bytes([p[0][p[1] % len(p[0])] ^ p[2]]) + p[0][p[1] % len(p[0]) + 1:]
        ),
    )


def inject(command: Any, data: List[bytes]) -> None:
    """As pyghmi's I/O thread queues what arrives from the BMC's address for this session."""
    session = command.ipmi_session
    for packet in data:
        if len(packet) < 4:
            continue  # pyghmi's I/O thread drops these (_io_graball)
        session.pktqueue.append((bytearray(packet), session.sockaddr, session.socket, True))
        pyghmi_session.sessionqueue.append(session)
    _ipmi_session.pump(0.01)  # the event loop processes them (what it raises is each session's own business)


def check(state: Dict[str, Any]) -> None:
    conn = state["conns"]["own"]

    def status() -> List[int]:
        return _ipmi_session.raw(state["command"], conn, 0x00, 0x01)

    outcome = guard.bounded(status, BOUND, grace=0.5)  # a PmError raised inside is raised here
    assert outcome.finished, "the session hung past its bound"
    assert outcome.value is not None and len(outcome.value) >= 3


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(data=st.data())
def test_a_live_session_goes_on_or_fails_clearly_whatever_arrives(live, data):
    thrown = data.draw(st.lists(packets(), min_size=1, max_size=5))
    inject(live["command"], thrown)
    try:
        check(live)
    except PmError as error:
        assert live["bmc"].host in error.msg, error.msg  # the collection's error, naming the BMC
        _ipmi_session._purge(live["command"])  # as open_sessions does before it logs in again
        live["command"] = login(live["bmc"])  # a fresh session for the next example
