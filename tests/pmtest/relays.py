"""The lab's relays (pmlab_lib.impair for UDP, pmlab_lib.tcp_delay for TCP), started and stopped one way."""

from __future__ import annotations

import os
import subprocess
import sys
from typing import Callable, List, Sequence, Tuple

from pmtest.ansible_run import REPO_ROOT

Popen = Callable[..., "subprocess.Popen[str]"]


def start_relay(module: str, options: Sequence[str], targets: Sequence[str],
                popen: Popen = subprocess.Popen) -> Tuple["subprocess.Popen[str]", List[int]]:
    """Start ``python -m pmlab_lib.MODULE`` with one ``--target`` per HOST:PORT; its listening ports, in order.

    ``popen`` is ``Lab.popen`` to run it in the lab's controller namespace (where the client runs).
    """
    argv = [sys.executable, "-m", f"pmlab_lib.{module}", *options]
    for target in targets:
        argv += ["--target", target]
    env = dict(os.environ, PYTHONPATH=str(REPO_ROOT / "tests" / "lab"))
    proc = popen(argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    ready = proc.stdout.readline().split()
    if ready[:1] != ["READY"] or len(ready) != 2 + len(targets):
        raise RuntimeError(f"pmlab_lib.{module} did not start: {ready} {stop_relay(proc)}")
    return proc, [int(port) for port in ready[2:]]


def stop_relay(proc: "subprocess.Popen[str]") -> str:
    """Close the relay's stdin (its signal to stop), kill it after 10 s; what it printed on stderr (its counts)."""
    proc.stdin.close()
    try:
        proc.wait(timeout=10)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()
    return proc.stderr.read().strip()
