"""TCP with a longer wire: what ``tc qdisc add dev IF root netem delay`` would do, in user space.

The CI kernel has no sch_netem (see impair.py, its UDP sibling), so latency on a
TCP path to a BMC (its Redfish face) comes from this relay: one listening port
per ``--target``; every chunk a side sends reaches the other side ``--rtt / 2``
seconds later, in order, in both directions, so each round trip (TCP connect
included, TLS handshake and every HTTP request) costs ``--rtt`` more. Chunks are
queued, not serialised: the wire's bandwidth is not reduced, only its length.
Protocols and timers, no tasks per chunk: the relay carries a whole benchmark
fleet on the same CPU as the client it measures.

Run it where the client runs (the lab's controller namespace)::

    python -m pmlab_lib.tcp_delay --rtt 0.02 --target 198.18.1.11:443 --target 198.18.1.12:443

It prints ``READY host port [port ...]`` (one port per target, in order) once
bound, and stops when stdin closes or on SIGTERM; then it prints the number of
connections and bytes relayed on stderr.
"""

from __future__ import annotations

import argparse
import asyncio
import signal
import sys
from typing import Dict, List, Optional, Set, Tuple

Address = Tuple[str, int]


def parse_address(text: str) -> Address:
    host, _colon, port = text.rpartition(":")
    if not host or not port.isdigit():
        raise argparse.ArgumentTypeError(f"{text!r} is not HOST:PORT")
    return host.strip("[]"), int(port)


class _End(asyncio.Protocol):
    """One end of a relayed connection (the client's or the server's): what it receives, the other end sends later."""

    def __init__(self, link: "_Link") -> None:
        self.link = link
        self.transport: Optional[asyncio.Transport] = None
        self.last_due = 0.0  # deliveries to this end, strictly in order
        self.peer: Optional["_End"] = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport
        self.link.made(self)

    def data_received(self, data: bytes) -> None:
        if self.peer is not None:
            self.peer.deliver_later(data)

    def eof_received(self) -> bool:
        if self.peer is not None:
            self.peer.deliver_later(b"")
        return True  # half-closed: the other direction goes on

    def connection_lost(self, exc: Optional[Exception]) -> None:
        if self.peer is not None and exc is not None:  # a reset: the other side is ended as on EOF, not left waiting
            self.peer.deliver_later(b"")
        self.link.lost(self)

    # flow control: a full send buffer here holds the reading at the other end
    def pause_writing(self) -> None:
        if self.peer is not None and self.peer.transport is not None:
            self.peer.transport.pause_reading()

    def resume_writing(self) -> None:
        if self.peer is not None and self.peer.transport is not None and not self.peer.transport.is_closing():
            self.peer.transport.resume_reading()

    def deliver_later(self, data: bytes) -> None:
        """Send ``data`` (b"": the end of the stream) one way's time from now, after what is already on the wire."""
        loop = asyncio.get_running_loop()
        due = max(loop.time() + self.link.relay.one_way, self.last_due + 1e-6)
        self.last_due = due
        loop.call_at(due, self._deliver, data)

    def _deliver(self, data: bytes) -> None:
        transport = self.transport
        if transport is None or transport.is_closing():
            return
        if not data:
            self.link.ended(self)
            return
        self.link.relay.counts["bytes"] += len(data)
        transport.write(data)


class _Link:
    """A client connection and the relay's own connection to the target, one way apart."""

    def __init__(self, relay: "DelayRelay", target: Address) -> None:
        self.relay = relay
        self.target = target
        self.client = _End(self)
        self.server: Optional[_End] = None
        self.eofs = 0

    def made(self, end: _End) -> None:
        if end is self.client and end.transport is not None:
            self.relay.counts["connections"] += 1
            self.relay.links.add(self)
            end.transport.pause_reading()  # until the server's SYN-ACK is back
            asyncio.get_running_loop().call_later(self.relay.one_way, self._connect)  # the client's SYN travels the wire

    def _connect(self) -> None:
        task = asyncio.ensure_future(self._open())
        self.relay.opening.add(task)
        task.add_done_callback(self.relay.opening.discard)

    async def _open(self) -> None:
        loop = asyncio.get_running_loop()
        server = _End(self)
        server.peer = self.client  # a server that speaks first reaches the client (whose reading waits)
        try:
            await loop.create_connection(lambda: server, *self.target)
        except OSError:
            self.relay.counts["refused"] += 1
            self.close()
            return
        self.server, self.client.peer = server, server
        if self.client.transport is None or self.client.transport.is_closing():  # the client left meanwhile
            self.close()
            return
        loop.call_later(self.relay.one_way, self._open_reading)  # and the server's SYN-ACK comes back

    def _open_reading(self) -> None:
        if self.client.transport is not None and not self.client.transport.is_closing():
            self.client.transport.resume_reading()

    def ended(self, end: _End) -> None:
        """The other end's stream ended: pass the end on; both ended, the link closes."""
        self.eofs += 1
        if end.transport is not None and end.transport.can_write_eof() and self.eofs < 2:
            end.transport.write_eof()
        else:
            self.close()

    def lost(self, end: _End) -> None:
        """One end is gone: the link closes once no end is left open (a client gone before its server: at once)."""
        ends = [self.client] if self.server is None else [self.client, self.server]
        if all(other.transport is None or other.transport.is_closing() for other in ends):
            self.close()

    def close(self) -> None:
        for end in (self.client, self.server):
            if end is not None and end.transport is not None and not end.transport.is_closing():
                end.transport.close()
        self.relay.links.discard(self)


class DelayRelay:
    def __init__(self, targets: List[Address], rtt: float, listen_host: str) -> None:
        self.targets = targets
        self.one_way = rtt / 2
        self.listen_host = listen_host
        self.counts: Dict[str, int] = {"connections": 0, "bytes": 0, "refused": 0}
        self.links: Set[_Link] = set()  # open connections, closed on stop
        self.opening: Set["asyncio.Task[None]"] = set()

    async def serve(self, stop: asyncio.Event) -> None:
        loop = asyncio.get_running_loop()
        servers = []
        for target in self.targets:
            def accept(target: Address = target) -> _End:
                return _Link(self, target).client

            servers.append(await loop.create_server(accept, self.listen_host, 0, backlog=256))
        ports = [server.sockets[0].getsockname()[1] for server in servers]
        print("READY", self.listen_host, *ports, flush=True)
        await stop.wait()
        for server in servers:
            server.close()
        for task in list(self.opening):
            task.cancel()
        await asyncio.gather(*self.opening, return_exceptions=True)
        for link in list(self.links):  # connections still open: closed now, not left at exit
            link.close()


def main(argv: Optional[List[str]] = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--target", type=parse_address, action="append", required=True, help="HOST:PORT, once per relayed server")
    parser.add_argument("--rtt", type=float, default=0.02, help="added round-trip time in seconds (default 0.02)")
    parser.add_argument("--listen", default="127.0.0.1", help="address of the listening ports (default 127.0.0.1)")
    args = parser.parse_args(argv)
    if not 0 <= args.rtt <= 10:
        parser.error(f"--rtt {args.rtt} is outside 0..10 seconds")
    relay = DelayRelay(args.target, args.rtt, args.listen)

    async def run() -> None:
        loop = asyncio.get_running_loop()
        stop = asyncio.Event()
        loop.add_signal_handler(signal.SIGTERM, stop.set)
        # stdin closing (the parent went away) stops the relay too
        loop.add_reader(sys.stdin.fileno(), lambda: stop.set() if not sys.stdin.buffer.read1(1) else None)
        await relay.serve(stop)

    asyncio.run(run())
    print(f"relayed {relay.counts}", file=sys.stderr, flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
