"""The Redfish benchmark's longer wire (pmlab_lib.tcp_delay): bytes intact, each round trip later, nothing left running."""

from __future__ import annotations

import socket
import socketserver
import struct
import threading
import time

import pytest

from pmtest.relays import start_relay, stop_relay

RTT = 0.1


class Echo(socketserver.StreamRequestHandler):
    ended = threading.Semaphore(0)  # released each time a connection ends at the server

    def handle(self) -> None:
        try:
            for line in self.rfile:
                self.wfile.write(line.upper())
        finally:
            Echo.ended.release()


@pytest.fixture
def echo_servers():
    Echo.ended = threading.Semaphore(0)  # this test's connections only
    servers = [socketserver.ThreadingTCPServer(("127.0.0.1", 0), Echo) for _server in range(2)]
    for server in servers:
        server.daemon_threads = True
        threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()
    yield servers
    for server in servers:
        server.shutdown()
        server.server_close()


@pytest.fixture
def relay(echo_servers):
    proc, ports = start_relay("tcp_delay", ["--rtt", str(RTT)], [f"127.0.0.1:{server.server_address[1]}" for server in echo_servers])
    try:
        yield proc, ports
    finally:
        stop_relay(proc)


def round_trips(port: int, lines: int) -> tuple[list[bytes], float]:
    with socket.create_connection(("127.0.0.1", port), timeout=10) as conn, conn.makefile("rwb") as stream:
        started = time.monotonic()
        answers = []
        for index in range(lines):
            stream.write(b"line %d\n" % index)
            stream.flush()
            answers.append(stream.readline())
        return answers, time.monotonic() - started


def test_each_port_reaches_its_own_server_with_the_bytes_intact_and_each_round_trip_pays_the_rtt(relay):
    proc, ports = relay
    assert len(ports) == 2
    answers, elapsed = round_trips(ports[1], 3)
    assert answers == [b"LINE 0\n", b"LINE 1\n", b"LINE 2\n"]
    # three request/answer exchanges over the longer wire cannot take less than three round trips
    assert elapsed >= 3 * RTT, elapsed
    # a payload larger than one chunk arrives whole and in order
    payload = b"".join(b"%07d\n" % n for n in range(20000))
    with socket.create_connection(("127.0.0.1", ports[0]), timeout=10) as conn:
        conn.sendall(payload)
        conn.shutdown(socket.SHUT_WR)
        received = b"".join(iter(lambda: conn.recv(65536), b""))
    assert received == payload.upper()
    counts = stop_relay(proc)
    assert proc.returncode == 0 and "'connections': 2" in counts, counts


def test_a_client_that_resets_its_connection_closes_the_server_side_too(relay):
    _proc, ports = relay
    conn = socket.create_connection(("127.0.0.1", ports[0]), timeout=10)
    conn.sendall(b"ping\n")
    assert conn.makefile("rb").readline() == b"PING\n"
    conn.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    conn.close()  # with linger 0: a reset, not a FIN
    # the relay passes the end on; left waiting, the server's connection would never end
    assert Echo.ended.acquire(timeout=10), "the server side of a reset connection was left open"


def test_a_closed_target_closes_the_client_connection(echo_servers):
    closed = socket.socket()
    closed.bind(("127.0.0.1", 0))
    port = closed.getsockname()[1]
    closed.close()  # nothing listens there now
    proc, (relay_port,) = start_relay("tcp_delay", ["--rtt", "0.01"], [f"127.0.0.1:{port}"])
    try:
        with socket.create_connection(("127.0.0.1", relay_port), timeout=10) as conn:
            conn.settimeout(10)
            assert conn.recv(10) == b""
    finally:
        counts = stop_relay(proc)
    assert proc.returncode == 0 and "'refused': 1" in counts, counts
