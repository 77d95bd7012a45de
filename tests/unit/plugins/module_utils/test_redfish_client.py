"""The Redfish transport, sessions, error classes and the auto probe, on recorded answers (fixtures/redfish/INDEX.md)."""

from __future__ import annotations

import socket
import threading

import pytest

from ansible_collections.ctys.pm.plugins.module_utils._deadline import Deadline
from ansible_collections.ctys.pm.plugins.module_utils._errors import PmAuthError, PmInputError, PmStateError, PmUnsupportedError
from ansible_collections.ctys.pm.plugins.module_utils._redfish import client, errors, probe
from pmtest.redfish_replay import ReplayBmc, recorded, reply_of

PASSWORD = "s3cret-Pa55"
SESSION_PATH = "/redfish/v1/SessionService/Sessions/1"


class Clock:
    """A monotonic clock that moves only when the code under test sleeps."""

    def __init__(self) -> None:
        self.now = 0.0
        self.pauses = []

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.pauses.append(seconds)
        self.now += seconds


def target(**changes):
    values = dict(host="192.0.2.10", port=443, user="admin", password=PASSWORD, connect_timeout=2.0)
    values.update(changes)
    return client.RedfishTarget(**values)


@pytest.fixture
def bmc(monkeypatch):
    return ReplayBmc().install(monkeypatch)


@pytest.fixture
def clock():
    return Clock()


def session(clock, seconds=30.0, **changes):
    return client.Session(target(**changes), Deadline(seconds, clock=clock), sleeper=clock.sleep)


def test_session_token_is_used_and_deleted_at_the_end(bmc, clock):
    bmc.serve("lab_session_created").serve("lab_systems").serve("lab_session_deleted", path=SESSION_PATH)
    with session(clock) as conn:
        assert conn.get("/redfish/v1/Systems")["Members"] == [{"@odata.id": "/redfish/v1/Systems/1"}]
    login, get, delete = bmc.sent
    assert login["json"] == {"UserName": "admin", "Password": PASSWORD} and "X-Auth-Token" not in login["headers"]
    assert get["headers"]["X-Auth-Token"] == "RECORDED-TOKEN" and "Authorization" not in get["headers"]
    assert (delete["method"], delete["path"]) == ("DELETE", SESSION_PATH)


def test_session_is_deleted_when_the_task_fails(bmc, clock):
    bmc.serve("lab_session_created").serve("lab_session_deleted", path=SESSION_PATH)
    with pytest.raises(errors.RedfishNotFoundError):
        with session(clock) as conn:
            conn.get("/redfish/v1/Systems/nonesuch")
    assert [(r["method"], r["path"]) for r in bmc.sent][-1] == ("DELETE", SESSION_PATH)


@pytest.mark.parametrize("recording", ["lab_session_limit", "dell_session_limit", "sushy_session_absent"])
def test_full_or_absent_session_service_falls_back_to_basic_auth(bmc, clock, recording):
    bmc.serve(recording, path=client.SESSIONS, method="POST").serve("lab_systems")
    login = session(clock)
    with login as conn:
        conn.get("/redfish/v1/Systems")
    assert login.mode == "basic" and login.why_basic
    assert len(bmc.requests("POST")) == 1  # a full table is not retried, it would stay full
    assert bmc.requests("GET")[0]["headers"]["Authorization"].startswith("Basic ")
    assert not bmc.requests("DELETE")


def test_wrong_password_fails_at_once_naming_host_port_and_user(bmc, clock):
    bmc.serve("lab_session_bad_password")
    with pytest.raises(PmAuthError) as caught:
        with session(clock):
            pass
    assert len(bmc.sent) == 1 and not caught.value.transient
    assert "192.0.2.10:443" in caught.value.msg and "'admin'" in caught.value.msg
    assert PASSWORD not in caught.value.msg


def test_503_is_retried_honouring_retry_after(bmc, clock):
    bmc.serve("lab_session_created").serve("lab_fault_503", "lab_system_off").serve("lab_session_deleted", path=SESSION_PATH)
    with session(clock) as conn:
        assert conn.get("/redfish/v1/Systems/1")["PowerState"] == "Off"
    assert clock.pauses == [1.0]  # Retry-After: 1 wins over the first back-off step (0.2 s)


def test_503_forever_fails_within_the_deadline_as_transient(bmc, clock):
    bmc.serve("lab_session_created").serve("lab_fault_503").serve("lab_session_deleted", path=SESSION_PATH)
    with pytest.raises(errors.RedfishBusyError) as caught:
        with session(clock, seconds=5.0) as conn:
            conn.get("/redfish/v1/Systems/1")
    assert caught.value.transient and caught.value.status == 503
    assert "192.0.2.10:443" in caught.value.msg
    assert sum(clock.pauses) < 5.0 and len(bmc.requests("GET")) == len(clock.pauses) + 1


def test_task_monitor_is_followed_until_done(bmc, clock):
    bmc.serve("lab_task_accepted").serve("lab_task_running", "lab_task_running", "lab_task_done")
    conn = client.Connection(target(), Deadline(30, clock=clock), sleeper=clock.sleep)
    reply = conn.request("POST", "/redfish/v1/Systems/1/Actions/ComputerSystem.Reset", {"ResetType": "ForceOff"})
    assert reply.status == 204
    assert [r["path"] for r in bmc.requests("GET")] == ["/redfish/v1/TaskService/TaskMonitors/1"] * 3


def test_task_that_never_ends_fails_within_the_deadline(bmc, clock):
    bmc.serve("lab_task_accepted").serve("lab_task_running")
    conn = client.Connection(target(), Deadline(4, clock=clock), sleeper=clock.sleep)
    with pytest.raises(errors.RedfishNoAnswerError) as caught:
        conn.request("POST", "/redfish/v1/Systems/1/Actions/ComputerSystem.Reset", {"ResetType": "ForceOff"})
    assert "192.0.2.10:443" in caught.value.msg and "TaskMonitors/1" in caught.value.msg


@pytest.mark.parametrize("recording, kind", [
    ("dell_forceoff_while_off", PmStateError),
    ("dell_powercycle_refused", PmUnsupportedError),
    ("sushy_powercycle_refused", PmUnsupportedError),
    ("lab_patch_boot_stale_etag", errors.RedfishPreconditionError),
    ("lab_session_bad_password", PmAuthError),
])
def test_answers_are_classified_by_status_and_message_id(bmc, clock, recording, kind):
    entry = recorded(recording)
    bmc.serve(recording)
    conn = client.Connection(target(), Deadline(10, clock=clock), sleeper=clock.sleep)
    with pytest.raises(kind) as caught:
        conn.request(entry["method"], entry["path"], {})
    assert "192.0.2.10:443" in caught.value.msg and not caught.value.transient
    assert caught.value.status == entry["status"]


def test_vendor_busy_message_ids_are_transient():
    body = b'{"error": {"code": "Base.1.8.GeneralError", "@Message.ExtendedInfo": [{"MessageId": "IDRAC.2.8.SYS518", "Message": "busy"}]}}'
    error = errors.reply_error("192.0.2.10:443", "admin", "POST", "/x", 400, body)
    assert isinstance(error, errors.RedfishBusyError) and error.transient
    ilo = b'{"error": {"code": "iLO.0.10.ExtendedInfo", "@Message.ExtendedInfo": [{"MessageId": "iLO.2.14.InvalidOperationForSystemState"}]}}'
    error = errors.reply_error("192.0.2.10:443", "admin", "POST", "/x", 400, ilo)
    assert isinstance(error, errors.RedfishBusyError)


def test_log_lines_hold_no_secret(bmc, clock):
    lines = []
    bmc.serve("lab_session_created").serve("lab_systems").serve("lab_session_deleted", path=SESSION_PATH)
    with client.Session(target(), Deadline(10, clock=clock), log=lines.append, sleeper=clock.sleep) as conn:
        conn.get("/redfish/v1/Systems")
    assert len(lines) == 3
    assert not any(PASSWORD in line or "RECORDED-TOKEN" in line for line in lines)


def test_target_options_are_validated(tmp_path):
    assert client.RedfishTarget.from_params({"bmc": "bmc1"}).port == 443
    with pytest.raises(PmInputError, match="ca_path '/nonexistent/ca.pem' is not valid"):
        client.RedfishTarget.from_params({"bmc": "bmc1", "ca_path": "/nonexistent/ca.pem"})
    with pytest.raises(PmInputError, match="certificate_fingerprint 'abc' is not valid"):
        client.RedfishTarget.from_params({"bmc": "bmc1", "certificate_fingerprint": "abc"})
    pinned = client.RedfishTarget.from_params({"bmc": "bmc1", "certificate_fingerprint": "AB:" * 31 + "AB"})
    assert pinned.fingerprint == "ab" * 32 and pinned.tls_key == ("pinned", None)
    assert "s3cret" not in repr(client.RedfishTarget.from_params({"bmc": "b", "password": "s3cret"}))


# ----- real sockets on loopback: a closed port and a BMC that accepts TCP but never answers
@pytest.fixture
def closed_port():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture
def silent_port():
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(8)
    held = []
    stop = threading.Event()

    def accept():
        server.settimeout(0.2)
        while not stop.is_set():
            try:
                held.append(server.accept()[0])
            except OSError:
                continue

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    yield server.getsockname()[1]
    stop.set()
    thread.join(2)
    for sock in held:
        sock.close()
    server.close()


def test_closed_port_is_refused_naming_host_and_port(closed_port):
    conn = client.Connection(target(host="127.0.0.1", port=closed_port), Deadline(5))
    with pytest.raises(errors.RedfishRefusedError) as caught:
        conn.get("/redfish/v1/")
    assert f"127.0.0.1:{closed_port}" in caught.value.msg


def test_silent_bmc_fails_on_connect_timeout_naming_host_and_port(silent_port):
    conn = client.Connection(target(host="127.0.0.1", port=silent_port, connect_timeout=0.3), Deadline(30))
    with pytest.raises(errors.RedfishNoAnswerError) as caught:
        conn.get("/redfish/v1/")
    assert f"127.0.0.1:{silent_port}" in caught.value.msg and "connect_timeout" in caught.value.msg
    assert caught.value.transient


# ----- protocol auto
def test_probe_redfish_roots(bmc):
    bmc.serve("lab_root")
    assert probe.probe(target()).protocol == "redfish"
    bmc.routes.clear()
    bmc.serve("sushy_root")
    result = probe.probe(target())
    assert (result.protocol, result.redfish_version) == ("redfish", "1.5.0")
    assert "Authorization" not in bmc.sent[-1]["headers"]


@pytest.mark.parametrize("reply, reason", [
    (reply_of("sushy_session_absent", status=404), "404"),
    (client.Reply(200, {"content-type": "text/html"}, b"<html>BMC login</html>"), "not JSON"),
])
def test_probe_not_redfish_means_ipmi(bmc, reply, reason):
    bmc.answer("GET", client.SERVICE_ROOT, reply)
    result = probe.probe(target())
    assert result.protocol == "ipmi" and reason in result.reason


def test_probe_401_is_an_error_not_a_fall_back(bmc):
    bmc.answer("GET", client.SERVICE_ROOT, reply_of("lab_session_bad_password"))
    with pytest.raises(PmAuthError, match="192.0.2.10:443"):
        probe.probe(target())


def test_probe_closed_port_and_silent_port_mean_ipmi(closed_port, silent_port):
    assert probe.probe(target(host="127.0.0.1", port=closed_port)).protocol == "ipmi"
    result = probe.probe(target(host="127.0.0.1", port=silent_port, connect_timeout=0.3))
    assert result.protocol == "ipmi" and "no answer" in result.reason
