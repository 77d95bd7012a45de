"""Many lab BMCs without their machines, for fleet benchmarks beyond the lab's 200 machines.

Each BMC is the lab's own (``LabBmc``: real IPMI 2.0 / RMCP+ on pyghmi's
server) bound to its own loopback address (127.1.x.y), port 623. The
machine behind it is a power flag in memory: no machine process and no sshd,
which is all a power-state benchmark reads. Each BMC is its own process,
forked after the imports so that a thousand of them fit in memory.

Run as ``python -m pmlab_lib.bmc_farm --config farm.json``; use :class:`Farm`
from Python (a context manager that stops every process it started).
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import threading
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Dict, List, Optional

LAB_ROOT = Path(__file__).resolve().parents[1]
PER_PROCESS = 250
READY_TIMEOUT = 120.0


@dataclass
class FarmBmc:
    host: str
    port: int
    user: str
    password: str
    faults_file: str = ""  # the lab BMC's fault modes (bmc_server.Faults), one file per BMC


def _address(index: int) -> str:
    return f"127.1.{index // 250}.{index % 250 + 1}"


class Farm:
    """``count`` BMCs, all off, served by processes of at most PER_PROCESS BMCs each."""

    def __init__(self, directory: Path, bmcs: List[FarmBmc], processes: List[subprocess.Popen]) -> None:
        self.directory = directory
        self.bmcs = bmcs
        self.processes = processes

    @classmethod
    def up(cls, count: int, directory: Path) -> "Farm":
        if not 1 <= count <= 10000:
            raise ValueError("count must be between 1 and 10000")
        directory.mkdir(parents=True, exist_ok=True)
        bmcs = [
            FarmBmc(_address(index), 623, "admin", "farm-" + uuid.uuid4().hex[:12], str(directory / f"faults-{index}.json"))
            for index in range(count)
        ]
        farm = cls(directory, bmcs, [])
        try:
            for first in range(0, count, PER_PROCESS):
                farm._start(first, bmcs[first:first + PER_PROCESS])
            farm._wait_ready()
        except BaseException:
            farm.down()
            raise
        return farm

    def _start(self, first: int, bmcs: List[FarmBmc]) -> None:
        config = self.directory / f"farm-{first}.json"
        config.write_text(json.dumps({"ready_file": str(self.directory / f"farm-{first}.ready"), "bmcs": [vars(b) for b in bmcs]}))
        config.with_suffix(".ready").unlink(missing_ok=True)
        env = dict(os.environ, PYTHONPATH=str(LAB_ROOT))
        with open(self.directory / f"farm-{first}.log", "ab") as log:
            # its own process group: down() stops the BMCs it forked with it, whatever state it is in
            argv = [sys.executable, "-m", "pmlab_lib.bmc_farm", "--config", str(config)]
            self.processes.append(subprocess.Popen(argv, env=env, stdout=log, stderr=log, stdin=subprocess.DEVNULL, start_new_session=True))

    def _wait_ready(self) -> None:
        deadline = time.monotonic() + READY_TIMEOUT
        pending = sorted(self.directory.glob("farm-*.json"))
        while pending:
            pending = [p for p in pending if not p.with_suffix(".ready").exists()]
            for process in self.processes:
                if process.poll() is not None:
                    raise RuntimeError(f"a BMC farm process ended early; see {self.directory}/farm-*.log")
            if time.monotonic() > deadline:
                raise RuntimeError(f"BMC farm not ready within {READY_TIMEOUT:g} s; see {self.directory}/farm-*.log")
            time.sleep(0.1)

    def down(self) -> None:
        for process in self.processes:
            _signal_group(process.pid, signal.SIGTERM)
        for process in self.processes:
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                pass
            _signal_group(process.pid, signal.SIGKILL)  # any BMC still left
            process.wait(timeout=10)
        self.processes = []

    def __enter__(self) -> "Farm":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.down()


def _signal_group(pgid: int, signum: int) -> None:
    try:
        os.killpg(pgid, signum)
    except ProcessLookupError:
        pass


def _serve_one(bmc: Dict[str, Any], scratch: Path, ready_pipe: int) -> None:
    """In a forked child: one BMC, served until SIGTERM."""
    import pyghmi.ipmi.private.session as ipmisession

    from pmlab_lib import prompt_wait
    from pmlab_lib.bmc_server import LabBmc

    prompt_wait.install()

    class MemoryBmc(LabBmc):
        """A LabBmc whose machine is a power flag in this process."""

        def __init__(self, bmc_config: Dict[str, Any]) -> None:
            super().__init__(bmc_config)
            self.power = "off"

        def get_power_state(self) -> str:
            return self.power

        def _power(self, action: str) -> int:
            self.power = "off" if action in ("off", "soft") else "on"
            return 0

        def log(self, text: str) -> None:
            pass  # a thousand BMCs: no log files

    signal.signal(signal.SIGTERM, lambda *args: os._exit(0))  # nothing to save; pyghmi's waits are not interruptible
    MemoryBmc(
        {
            "users": {bmc["user"]: {"password": bmc["password"], "privilege": "administrator"}},
            "port": bmc["port"],
            "address": bmc["host"],
            "uuid": str(uuid.uuid4()),
            "control_socket": str(scratch / "no-machine.sock"),
            "faults_file": bmc.get("faults_file") or str(scratch / "no-faults.json"),
            "sensors_file": str(scratch / "no-sensors.json"),
            "log_file": os.devnull,
        }
    )
    os.write(ready_pipe, b".")
    while True:
        try:
            ipmisession.Session.wait_for_rsp(1.0)
        except Exception as error:  # one client's broken session must not stop the BMC
            print(f"guarded error: {error!r}", flush=True)


def _serve(config: Dict[str, Any]) -> int:
    """Fork one process per BMC after the imports, so they share the libraries' memory.

    pyghmi's server mixes up sessions when one process serves several BMCs to the
    same client, and a thousand separately started Pythons would not fit in memory.
    """
    import pyghmi.ipmi.private.session  # noqa: F401  imported before fork: shared pages

    import pmlab_lib.bmc_server  # noqa: F401

    scratch = Path(config["ready_file"]).parent
    read_end, write_end = os.pipe()
    children = []
    for bmc in config["bmcs"]:
        pid = os.fork()
        if pid == 0:
            os.close(read_end)
            try:
                _serve_one(bmc, scratch, write_end)
            finally:
                os._exit(0)
        children.append(pid)
    os.close(write_end)
    stopping = threading.Event()
    signal.signal(signal.SIGTERM, lambda *args: stopping.set())
    ready = 0
    deadline = time.monotonic() + READY_TIMEOUT
    while ready < len(children) and time.monotonic() < deadline:
        chunk = os.read(read_end, 4096)
        if not chunk:
            break
        ready += len(chunk)
    if ready == len(children):
        marker = Path(config["ready_file"])
        marker.with_suffix(".tmp").write_text(str(os.getpid()))
        os.replace(marker.with_suffix(".tmp"), marker)
    while not stopping.wait(0.5):
        if any(os.waitpid(pid, os.WNOHANG)[0] for pid in children):
            break  # a BMC died: stop the farm so the bench notices
    for pid in children:
        try:
            os.kill(pid, signal.SIGTERM)
        except ProcessLookupError:
            pass
    for pid in children:
        try:
            os.waitpid(pid, 0)
        except ChildProcessError:
            pass
    return 0


def main(argv: Optional[List[str]] = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--config", required=True)
    args = parser.parse_args(argv)
    return _serve(json.loads(Path(args.config).read_text()))


if __name__ == "__main__":
    sys.exit(main())
