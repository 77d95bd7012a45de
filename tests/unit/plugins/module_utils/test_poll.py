"""Reachability polls against real loopback listeners."""

from __future__ import annotations

import socket
import threading

from ansible_collections.ctys.pm.plugins.module_utils._poll import PollSpec, poll_once


def serve_once(payload: bytes):
    server = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    server.bind(("127.0.0.1", 0))
    server.listen(1)

    def answer():
        conn, _address = server.accept()
        with conn:
            conn.sendall(payload)
        server.close()

    threading.Thread(target=answer, daemon=True).start()
    return server.getsockname()[1]


def closed_port():
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def test_tcp_poll_up_and_refused():
    port = serve_once(b"")
    assert poll_once("127.0.0.1", PollSpec(kind="tcp", port=port), 1) == (True, "connected")
    up, seen = poll_once("127.0.0.1", PollSpec(kind="tcp", port=closed_port()), 1)
    assert up is False and "refused" in seen.lower()


def test_ssh_poll_needs_a_real_banner():
    port = serve_once(b"SSH-2.0-OpenSSH_9.2p1 Debian-2\r\n")
    assert poll_once("127.0.0.1", PollSpec(kind="ssh", port=port), 1) == (True, "SSH-2.0-OpenSSH_9.2p1 Debian-2")
    port = serve_once(b"HTTP/1.0 200 OK\r\n")
    up, seen = poll_once("127.0.0.1", PollSpec(kind="ssh", port=port), 1)
    assert up is False and seen.endswith("no SSH banner")


def test_ping_poll_answers_on_loopback_or_falls_back_to_tcp():
    port = serve_once(b"")
    up, seen = poll_once("127.0.0.1", PollSpec(kind="ping", port=port), 1)
    assert up is True and seen in ("icmp echo reply", "connected")
