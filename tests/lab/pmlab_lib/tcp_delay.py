"""TCP with a longer wire: what ``tc qdisc add dev IF root netem delay`` would do, in user space.

The CI kernel has no sch_netem (see impair.py, its UDP sibling), so latency on a
TCP path to a BMC (its Redfish face) comes from this relay: one listening port
per ``--target``; every chunk a side sends reaches the other side ``--rtt / 2``
seconds later, in order, in both directions, so each round trip (TCP connect
included, TLS handshake and every HTTP request) costs ``--rtt`` more. Chunks are
queued, not serialised: the wire's bandwidth is not reduced, only its length.

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
import time
from typing import Dict, List, Optional, Tuple

Address = Tuple[str, int]
CHUNK = 65536


def parse_address(text: str) -> Address:
    host, _colon, port = text.rpartition(":")
    if not host or not port.isdigit():
        raise argparse.ArgumentTypeError(f"{text!r} is not HOST:PORT")
    return host.strip("[]"), int(port)


class DelayRelay:
    def __init__(self, targets: List[Address], rtt: float, listen_host: str) -> None:
        self.targets = targets
        self.one_way = rtt / 2
        self.listen_host = listen_host
        self.counts: Dict[str, int] = {"connections": 0, "bytes": 0, "refused": 0}

    async def _pipe(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        """Forward ``reader`` to ``writer``, each chunk ``one_way`` seconds after it arrived."""
        queue: asyncio.Queue[Tuple[float, bytes]] = asyncio.Queue()

        async def receive() -> None:
            data = b"-"
            try:
                while data:
                    data = await reader.read(CHUNK)
                    await queue.put((time.monotonic() + self.one_way, data))
            except (ConnectionError, OSError):
                # a reset: the other side is closed as on EOF, not left waiting
                await queue.put((time.monotonic() + self.one_way, b""))

        async def deliver() -> None:
            while True:
                due, data = await queue.get()
                wait = due - time.monotonic()
                if wait > 0:
                    await asyncio.sleep(wait)
                if not data:
                    if writer.can_write_eof():
                        writer.write_eof()
                    return
                self.counts["bytes"] += len(data)
                writer.write(data)
                await writer.drain()

        receiving = asyncio.ensure_future(receive())
        try:
            await deliver()
        finally:
            receiving.cancel()

    async def _connection(self, target: Address, client_reader: asyncio.StreamReader, client_writer: asyncio.StreamWriter) -> None:
        self.counts["connections"] += 1
        await asyncio.sleep(self.one_way)  # the client's SYN travels the wire
        try:
            server_reader, server_writer = await asyncio.open_connection(*target)
        except OSError:
            self.counts["refused"] += 1
            client_writer.close()
            return
        await asyncio.sleep(self.one_way)  # and the server's SYN-ACK comes back
        try:
            await asyncio.gather(self._pipe(client_reader, server_writer), self._pipe(server_reader, client_writer))
        except (ConnectionError, OSError):
            pass
        finally:
            for writer in (client_writer, server_writer):
                writer.close()

    async def serve(self, stop: asyncio.Event) -> None:
        servers = []
        for target in self.targets:
            def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, target: Address = target) -> "asyncio.Task[None]":
                return asyncio.ensure_future(self._connection(target, reader, writer))

            servers.append(await asyncio.start_server(handler, self.listen_host, 0, backlog=256))
        ports = [server.sockets[0].getsockname()[1] for server in servers]
        print("READY", self.listen_host, *ports, flush=True)
        await stop.wait()
        for server in servers:
            server.close()


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
