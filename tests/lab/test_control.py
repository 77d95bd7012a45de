"""The machine control client's kept connections (pmlab_lib.control, keep_alive): reused, replaced once, never a request twice."""

from __future__ import annotations

import contextlib
import json
import socket
import socketserver
import threading
from pathlib import Path
from typing import Iterator, List

import pytest

from pmlab_lib.control import ControlClient, ControlError


class Supervisor(socketserver.ThreadingUnixStreamServer):
    """A stand-in for a machine's control socket: answers ``answers_per_connection`` requests on a connection,
    then closes it, or with ``hold`` keeps it open and answers nothing more (a supervisor that hangs)."""

    daemon_threads = True

    def __init__(self, path: str, answers_per_connection: int, hold: bool = False) -> None:
        self.answers_per_connection = answers_per_connection
        self.hold = hold
        self.connections = 0
        self.requests: List[str] = []
        super().__init__(path, SupervisorHandler)


class SupervisorHandler(socketserver.StreamRequestHandler):
    server: Supervisor

    def handle(self) -> None:
        self.server.connections += 1
        answered = 0
        for line in self.rfile:
            self.server.requests.append(json.loads(line)["op"])
            if answered == self.server.answers_per_connection:
                if self.server.hold:
                    continue  # read on, answer nothing
                return
            self.wfile.write(json.dumps({"ok": True, "power": "off"}).encode() + b"\n")
            answered += 1
            if answered == self.server.answers_per_connection and not self.server.hold:
                return


@contextlib.contextmanager
def serve(tmp_path: Path, answers_per_connection: int, hold: bool = False) -> Iterator[Supervisor]:
    server = Supervisor(str(tmp_path / "control.sock"), answers_per_connection, hold)
    threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()
    try:
        yield server
    finally:
        server.shutdown()
        server.server_close()


@pytest.fixture
def patient(tmp_path):
    with serve(tmp_path, answers_per_connection=100) as server:
        yield server


@pytest.fixture
def one_answer_each(tmp_path):
    with serve(tmp_path, answers_per_connection=1) as server:
        yield server


def test_a_kept_connection_carries_every_call(patient):
    client = ControlClient(patient.server_address, timeout=2, keep_alive=True)
    assert [client.status()["power"] for _call in range(5)] == ["off"] * 5
    assert patient.connections == 1 and patient.requests == ["status"] * 5


def test_without_keep_alive_each_call_has_its_own_connection(patient):
    client = ControlClient(patient.server_address, timeout=2)
    for _call in range(3):
        client.status()
    assert patient.connections == 3


def test_a_kept_connection_the_supervisor_closed_is_replaced_once(one_answer_each):
    client = ControlClient(one_answer_each.server_address, timeout=2, keep_alive=True)
    for _call in range(3):
        assert client.call("power", action="on")["ok"]
    # each request made once: the closed connection took none of them
    assert one_answer_each.requests == ["power"] * 3 and one_answer_each.connections == 3


def test_a_request_without_an_answer_on_a_kept_connection_is_not_sent_again(tmp_path):
    with serve(tmp_path, answers_per_connection=1, hold=True) as server:
        client = ControlClient(server.server_address, timeout=0.5, keep_alive=True)
        client.status()
        with pytest.raises(ControlError, match="timed out"):
            client.call("power", action="off")  # the supervisor may have taken it: one power request, not two
        assert server.requests == ["status", "power"] and server.connections == 1


def test_a_socket_nobody_listens_on_is_a_control_error(tmp_path):
    path = tmp_path / "gone.sock"
    with socket.socket(socket.AF_UNIX) as stale:
        stale.bind(str(path))  # a socket file with no listener behind it
    with pytest.raises(ControlError, match="gone.sock"):
        ControlClient(str(path), timeout=1, keep_alive=True).status()
