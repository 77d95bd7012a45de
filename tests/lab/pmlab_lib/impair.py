"""A lossy, slow UDP path to a BMC: what tc netem would do, in user space.

The CI kernel has no sch_netem (``tc qdisc add ... netem`` says "Specified
qdisc kind is unknown") and no nf_tables, so the lab impairs the BMC path
with this relay instead: clients talk to ``relay.address``; every datagram,
from the client to the BMC is dropped with probability ``loss`` or forwarded
after ``delay`` seconds, as ``tc qdisc add dev IF root netem loss 30% delay 200ms``
on the client's interface would do; with ``--both-ways`` the answers suffer
the same. The BMC and the client are real; only the wire between them is bad.

Session mixing: with several ``--target`` BMCs (one listening port each, in the
order given) and ``--mix SHARE``, that share of the BMCs' replies is delivered
to another client of the relay, from the other BMC's port, as a BMC server that
mixes up its sessions would (pyghmi's own server does, docs/notes.md).

Run it where the client runs (the lab's controller namespace)::

    python -m pmlab_lib.impair --listen 127.0.0.1:0 --target 198.18.1.11:623 --loss 0.3 --delay 0.2 --seed 7

It prints ``READY host port [port ...]`` (one port per target) once bound, and stops on SIGTERM or when stdin closes.
"""

from __future__ import annotations

import argparse
import heapq
import os
import random
import select
import socket
import sys
import time
from typing import Dict, List, Sequence, Tuple

Address = Tuple[str, int]


class ImpairedRelay:
    def __init__(self, listen: Address, target: Address, loss: float, delay: float, seed: int, both_ways: bool = False,
                 more_targets: Sequence[Address] = (), mix: float = 0.0) -> None:
        self.targets = [target, *more_targets]
        self.fronts: List[socket.socket] = []
        for _target in self.targets:
            front = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
            front.bind(listen)
            self.fronts.append(front)
        self.front = self.fronts[0]
        self.target = target
        self.loss = loss
        self.delay = delay
        self.mix = mix
        self.random = random.Random(seed)
        self.both_ways = both_ways
        # one socket per (front, client), so replies find their way back
        self.upstream: Dict[Tuple[int, Address], socket.socket] = {}
        self.client_of: Dict[socket.socket, Tuple[int, Address]] = {}
        self.queue: List[Tuple[float, int, socket.socket, bytes, Address]] = []
        self.sequence = 0
        self.counts = {"forwarded": 0, "dropped": 0, "misdelivered": 0}

    @property
    def address(self) -> Address:
        return self.front.getsockname()

    @property
    def ports(self) -> List[int]:
        return [front.getsockname()[1] for front in self.fronts]

    def _schedule(self, sock: socket.socket, data: bytes, destination: Address, impaired: bool = True) -> None:
        if not impaired:
            sock.sendto(data, destination)
            self.counts["forwarded"] += 1
            return
        if self.random.random() < self.loss:
            self.counts["dropped"] += 1
            return
        self.sequence += 1
        heapq.heappush(self.queue, (time.monotonic() + self.delay, self.sequence, sock, data, destination))

    def _flush(self) -> None:
        now = time.monotonic()
        while self.queue and self.queue[0][0] <= now:
            _due, _seq, sock, data, destination = heapq.heappop(self.queue)
            try:
                sock.sendto(data, destination)
                self.counts["forwarded"] += 1
            except OSError:
                pass

    def _reply_path(self, index: int, client: Address) -> Tuple[socket.socket, Address]:
        """Where a reply of BMC ``index`` for ``client`` goes: to it, or (share ``mix``) to another client."""
        if self.mix and self.random.random() < self.mix:
            others = [key for key in self.upstream if key != (index, client)]
            if others:
                self.counts["misdelivered"] += 1
                other_index, other_client = others[self.random.randrange(len(others))]
                return self.fronts[other_index], other_client
        return self.fronts[index], client

    def serve(self, stop_fd: int) -> None:
        front_index = {front: index for index, front in enumerate(self.fronts)}
        while True:
            timeout = max(0.0, self.queue[0][0] - time.monotonic()) if self.queue else 0.5
            readable, _w, _x = select.select([*self.fronts, stop_fd, *self.client_of], [], [], timeout)
            for sock in readable:
                if sock == stop_fd:
                    if not os.read(stop_fd, 4096):
                        return  # stdin closed: the test that started the relay is done
                    continue
                data, source = sock.recvfrom(65536)
                if sock in front_index:
                    index = front_index[sock]
                    upstream = self.upstream.get((index, source))
                    if upstream is None:
                        upstream = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
                        upstream.bind(("0.0.0.0", 0))
                        self.upstream[(index, source)] = upstream
                        self.client_of[upstream] = (index, source)
                    self._schedule(upstream, data, self.targets[index])
                else:
                    front, client = self._reply_path(*self.client_of[sock])
                    self._schedule(front, data, client, impaired=self.both_ways)
            self._flush()


def _address(text: str) -> Address:
    host, _sep, port = text.rpartition(":")
    return host, int(port)


def main(argv: List[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--listen", type=_address, default=("127.0.0.1", 0))
    parser.add_argument("--target", type=_address, required=True, action="append", help="a BMC; repeat for several (one port each)")
    parser.add_argument("--loss", type=float, default=0.0, help="probability that a datagram is dropped, each way")
    parser.add_argument("--delay", type=float, default=0.0, help="seconds added to each datagram, each way")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--both-ways", action="store_true", help="impair the answers too")
    parser.add_argument("--mix", type=float, default=0.0, help="share of replies delivered to another client of the relay")
    args = parser.parse_args(argv)
    relay = ImpairedRelay(args.listen, args.target[0], args.loss, args.delay, args.seed, args.both_ways, args.target[1:], args.mix)
    host, _port = relay.address
    sys.stdout.write(f"READY {host} {' '.join(map(str, relay.ports))}\n")
    sys.stdout.flush()
    relay.serve(sys.stdin.fileno())
    sys.stderr.write(f"impair: {relay.counts}\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
