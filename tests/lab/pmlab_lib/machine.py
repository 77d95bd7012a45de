"""One simulated physical machine: the supervisor process that owns its "hardware".

Run as ``python -m pmlab_lib.machine --config FILE``. In namespace mode the lab
starts it inside the machine's network namespace and a private mount and UTS
namespace, so everything it starts (sshd, the console shell, whatever an SSH
session runs) lives in the machine. Power off kills every process in that
mount namespace, as losing power would.

State changes come from the control socket (see control.py), from magic
packets seen by the NIC, and from the OS's own poweroff commands (bound over
the real ones in this mount namespace).
"""

from __future__ import annotations

import argparse
import json
import os
import pty
import select
import signal
import socket
import struct
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Dict, List, Optional

from pmlab_lib import bmc_records
from pmlab_lib.control import SERVE_IDLE

ETH_P_ALL = 0x0003
PACKET_OUTGOING = 4
BOOT_DEVICES = ("default", "network", "hd", "safe", "cdrom", "bios", "floppy")
# The Redfish face's run-time switches (see redfish_bmc.py); the machine keeps them
# so the lab's control channel is the one place to change them.
REDFISH_PROFILES = ("generic", "dell", "boot_ignored", "settings", "multi")
REDFISH_FAULTS = ("none", "503", "silent", "slow", "task")
# How often idle threads look up: a hundred lab machines each waking eleven times a second took
# a tenth of a CPU core. The WoL and control threads only check for the stop (they are daemons);
# the console rebuilds its select list (a closed client drops out); the main thread looks at the
# sensor file for threshold crossings (readers of the SEL look themselves, so this sets no timing).
IDLE_POLL = 2.0
CONSOLE_POLL = 0.5
SENSOR_LOOK = 1.0
DANGEROUS_COMMANDS = (
    "/usr/bin/systemctl",
    "/usr/sbin/poweroff",
    "/usr/sbin/shutdown",
    "/usr/sbin/halt",
    "/usr/sbin/reboot",
    "/usr/sbin/init",
    "/usr/sbin/telinit",
    "/usr/bin/wall",  # the lab shares /dev/pts with the host: a real wall would write on the host's terminals
)


@dataclass
class MachineConfig:
    name: str
    hostname: str
    mac: str
    ip: str
    state_dir: str
    ssh_port: int
    wol_port: int
    serial_port: int
    interface: str = "eth0"
    namespaced: bool = True
    state: str = "off"
    boot_delay: float = 0.5
    shutdown_delay: float = 0.3
    acpi: str = "honour"
    os_shutdown: str = "honour"
    wol_password: Optional[str] = None
    console_password: str = "pmlab"

    @classmethod
    def load(cls, path: str) -> "MachineConfig":
        data = json.loads(Path(path).read_text())
        known = set(cls.__dataclass_fields__)
        return cls(**{k: v for k, v in data.items() if k in known})


@dataclass
class WolRecord:
    form: str
    mac: str
    password: Optional[str]
    accepted: bool
    t: float = field(default_factory=time.time)


def find_magic(payload: bytes, mac: bytes) -> int:
    """Offset of a magic packet for ``mac`` in ``payload``, or -1."""
    return payload.find(b"\xff" * 6 + mac * 16)


def frame_payloads(frame: bytes) -> List[tuple]:
    """(form, payload) candidates in an Ethernet frame: UDP (v4/v6) or raw 0x0842."""
    if len(frame) < 14:
        return []
    ethertype = struct.unpack("!H", frame[12:14])[0]
    if ethertype == 0x0842:
        return [("ether", frame[14:])]
    if ethertype == 0x0800 and len(frame) >= 34 and frame[23] == 17:
        ihl = (frame[14] & 0x0F) * 4
        start = 14 + ihl
        udp_len = struct.unpack("!H", frame[start + 4:start + 6])[0]
        return [("udp", frame[start + 8:start + udp_len])]
    if ethertype == 0x86DD and len(frame) >= 62 and frame[20] == 17:
        udp_len = struct.unpack("!H", frame[58:60])[0]
        return [("udp6", frame[62:54 + udp_len])]
    return []


class Machine:
    def __init__(self, config: MachineConfig) -> None:
        self.config = config
        self.state_dir = Path(config.state_dir)
        self.lock = threading.RLock()
        self.power = "off"
        self.os = "down"
        self.boot_device = "default"
        self.boot_persistent = False
        self.boot_uefi = False
        self.generation = 0
        self.power_changes = 0
        self.wol_log: List[WolRecord] = []
        self.os_log: List[Dict[str, Any]] = []  # what the OS was asked through its own commands (wall, poweroff, ...)
        self.sshd: Optional[subprocess.Popen] = None
        self.console_clients: List[socket.socket] = []
        self.console_shell: Optional[tuple] = None  # (pid, fd)
        self.console_stage = "silent"  # silent, login, password, shell
        self.console_user = ""
        self._line = ""
        self.stopping = threading.Event()
        self.mac_bytes = bytes.fromhex(config.mac.replace(":", ""))
        self.my_mnt_ns = os.readlink("/proc/self/ns/mnt")
        self.redfish: Dict[str, Any] = {"profile": "generic", "fault": {"mode": "none"}, "session_limit": 4, "generation": 0}
        self.sel = bmc_records.SelStore(self.state_dir)  # the BMC's event log, shared with both BMC faces

    def _record(self, event: str) -> None:
        """The BMC's SEL sees what happens to the machine: every power change passes here (bmc_records.py)."""
        try:
            if event == "sensors":
                self.sel.sync()
            elif event == "os_shutdown":
                self.sel.os_shutdown()
            else:
                self.sel.power_changed(event == "on")
        except Exception as error:  # a broken log never stops the machine
            self._log(f"SEL record {event} failed: {error}")

    # ----- power model -------------------------------------------------
    def _log(self, text: str) -> None:
        with open(self.state_dir / "machine.log", "a", encoding="utf-8") as log:
            log.write(f"{time.strftime('%H:%M:%S')} {text}\n")

    def _later(self, delay: float, action, *args) -> None:
        generation = self.generation

        def run() -> None:
            with self.lock:
                if generation == self.generation:
                    action(*args)

        timer = threading.Timer(max(0.0, delay), run)
        timer.daemon = True
        timer.start()

    def power_on(self, reason: str) -> None:
        with self.lock:
            if self.power == "on":
                return
            self.generation += 1
            self.power_changes += 1
            self.power = "on"
            self.os = "booting"
            self._log(f"power on ({reason})")
            self._record("on")
            self._set_icmp(ignore=True)
            self.console_write(
                f"\r\n[    0.000000] Linux version 6.1.0-pmlab ({self.config.hostname}) #1 SMP\r\n"
                f"[    0.000000] Command line: BOOT_IMAGE=/vmlinuz root=/dev/pmlab console=ttyS0\r\n"
                f"[    0.120000] pmlab: boot device {self.boot_device}\r\n"
            )
            if not self.boot_persistent:
                self.boot_device = "default"
            self._later(self.config.boot_delay, self._booted)

    def _booted(self) -> None:
        self._start_sshd()
        self._set_icmp(ignore=False)
        self.os = "up"
        self._log("os up")
        self.console_write(f"\r\nDebian GNU/Linux 12 {self.config.hostname} ttyS0\r\n\r\n{self.config.hostname} login: ")
        self.console_stage = "login"

    def power_off(self, reason: str) -> None:
        with self.lock:
            if self.power == "off":
                return
            self.generation += 1
            self.power_changes += 1
            self.power = "off"
            self.os = "down"
            self._log(f"power off ({reason})")
            self._record("off")
            self._stop_console_shell()
            self.console_stage = "silent"
            self._kill_machine_processes()
            self._set_icmp(ignore=True)

    def os_stop(self, then: str, reason: str) -> None:
        """The OS shuts down (ACPI button or its own poweroff), then the power goes."""
        with self.lock:
            if self.power == "off" or self.os == "stopping":
                return
            self.os = "stopping"
            self._log(f"os stopping ({reason}), then {then}")
            self._record("os_shutdown")
            self.console_write(f"\r\n[  OK  ] Reached target System Power Off ({reason}).\r\n")

            def finish() -> None:
                self.power_off(reason)
                if then == "reboot":
                    self.power_on("reboot")

            self._later(self.config.shutdown_delay, finish)

    def power_action(self, action: str) -> None:
        if action == "on":
            self.power_on("bmc")
        elif action == "off":
            self.power_off("bmc")
        elif action == "soft":
            if self.power == "on" and self.config.acpi == "honour":
                self.os_stop("off", "acpi power button")
            else:
                self._log("acpi power button ignored")
        elif action == "soft_reboot":
            # ACPI reboot request (Redfish GracefulRestart): the OS shuts down, then the machine starts again
            if self.power == "on" and self.config.acpi == "honour":
                self.os_stop("reboot", "acpi reboot request")
            else:
                self._log("acpi reboot request ignored")
        elif action in ("reset", "cycle"):
            with self.lock:
                if self.power == "on":
                    self.power_off(f"bmc {action}")
                self.power_on(f"bmc {action}")
        else:
            raise ValueError(f"unknown power action {action}")

    # ----- OS parts ------------------------------------------------------
    def _set_icmp(self, ignore: bool) -> None:
        if not self.config.namespaced:
            return
        value = "1" if ignore else "0"
        for path in ("/proc/sys/net/ipv4/icmp_echo_ignore_all", "/proc/sys/net/ipv6/icmp/echo_ignore_all"):
            try:
                Path(path).write_text(value)
            except OSError:
                pass

    def _start_sshd(self) -> None:
        if self.sshd and self.sshd.poll() is None:
            return
        Path("/run/sshd").mkdir(exist_ok=True)
        log = open(self.state_dir / "sshd.log", "ab")
        self.sshd = subprocess.Popen(
            ["/usr/sbin/sshd", "-D", "-e", "-f", str(self.state_dir / "sshd_config")],
            stdout=log,
            stderr=log,
            stdin=subprocess.DEVNULL,
        )
        log.close()
        # sshd is ready when its port accepts; bounded so a broken sshd cannot hang the machine
        host = self.config.ip
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline:
            with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
                probe.settimeout(0.2)
                if probe.connect_ex((host, self.config.ssh_port)) == 0:
                    return
            if self.sshd.poll() is not None:
                self._log(f"sshd exited with {self.sshd.returncode}")
                return
            time.sleep(0.02)

    def _kill_machine_processes(self) -> None:
        """Everything running in this machine dies with the power (not the supervisor)."""
        me = os.getpid()
        victims = []
        if self.sshd and self.sshd.poll() is None:
            victims.append(self.sshd.pid)
        if self.config.namespaced:
            for entry in os.listdir("/proc"):
                if not entry.isdigit() or int(entry) == me:
                    continue
                try:
                    if os.readlink(f"/proc/{entry}/ns/mnt") == self.my_mnt_ns:
                        victims.append(int(entry))
                except OSError:
                    continue
        for pid in set(victims):
            try:
                os.kill(pid, signal.SIGKILL)
            except OSError:
                pass
        if self.sshd:
            try:
                self.sshd.wait(timeout=2)
            except subprocess.TimeoutExpired:
                pass
            self.sshd = None

    # ----- serial console ----------------------------------------------
    def console_write(self, text: str) -> None:
        data = text.encode("utf-8", errors="replace")
        for client in list(self.console_clients):
            try:
                client.sendall(data)
            except OSError:
                self._drop_console_client(client)

    def _drop_console_client(self, client: socket.socket) -> None:
        if client in self.console_clients:
            self.console_clients.remove(client)
        try:
            client.close()
        except OSError:
            pass

    def _console_input(self, data: bytes) -> None:
        with self.lock:
            if self.power == "off" or self.os != "up":
                return
            if self.console_stage == "shell" and self.console_shell:
                os.write(self.console_shell[1], data)
                return
            text = data.decode("utf-8", errors="replace")
            for char in text:
                self._console_char(char)

    def _console_char(self, char: str) -> None:
        buffer = self._line
        if char in "\r\n":
            line, self._line = buffer, ""
            if self.console_stage == "login":
                if not line:
                    self.console_write(f"\r\n{self.config.hostname} login: ")
                    return
                self.console_user = line
                self.console_stage = "password"
                self.console_write("\r\nPassword: ")
            elif self.console_stage == "password":
                if self.console_user == "root" and line == self.config.console_password:
                    self.console_write("\r\n")
                    self._start_console_shell()
                else:
                    time.sleep(0.05)
                    self.console_stage = "login"
                    self.console_write(f"\r\nLogin incorrect\r\n{self.config.hostname} login: ")
            return
        if char in ("\x7f", "\b"):
            self._line = buffer[:-1]
            return
        self._line = buffer + char
        if self.console_stage == "login":
            self.console_write(char)

    def _start_console_shell(self) -> None:
        pid, fd = pty.fork()
        if pid == 0:  # child: a login shell of this machine
            os.environ.update({"HOME": "/root", "TERM": "vt100", "PS1": r"root@\h:\w# ", "PATH": "/usr/sbin:/usr/bin:/sbin:/bin"})
            os.chdir("/root") if os.path.isdir("/root") else None
            os.execv("/bin/bash", ["-bash", "--norc", "--noprofile", "-i"])
        self.console_shell = (pid, fd)
        self.console_stage = "shell"

    def _stop_console_shell(self) -> None:
        if self.console_shell:
            pid, fd = self.console_shell
            try:
                os.kill(pid, signal.SIGKILL)
            except OSError:
                pass
            try:
                os.close(fd)
            except OSError:
                pass
            try:
                os.waitpid(pid, os.WNOHANG)
            except OSError:
                pass
            self.console_shell = None

    def console_loop(self) -> None:
        server = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        server.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        server.bind(("127.0.0.1", self.config.serial_port))
        server.listen(4)
        while not self.stopping.is_set():
            readers = [server] + list(self.console_clients)
            shell = self.console_shell
            if shell:
                readers.append(shell[1])
            try:
                ready, _writable, _failed = select.select(readers, [], [], CONSOLE_POLL)
            except (OSError, ValueError):
                continue
            for source in ready:
                if source is server:
                    client, _address = server.accept()
                    self.console_clients.append(client)
                    continue
                if shell and source == shell[1]:
                    try:
                        data = os.read(shell[1], 4096)
                    except OSError:
                        data = b""
                    if not data:
                        with self.lock:
                            self._stop_console_shell()
                            if self.power == "on" and self.os == "up":
                                self.console_stage = "login"
                                self.console_write(f"\r\n{self.config.hostname} login: ")
                    else:
                        self.console_write(data.decode("utf-8", errors="replace"))
                    continue
                try:
                    data = source.recv(4096)
                except OSError:
                    data = b""
                if not data:
                    self._drop_console_client(source)
                else:
                    self._console_input(data)

    # ----- Wake-on-LAN NIC -----------------------------------------------
    def _consider_magic(self, form: str, payload: bytes) -> None:
        offset = find_magic(payload, self.mac_bytes)
        if offset < 0:
            return
        rest = payload[offset + 102:]
        password = rest.hex() if len(rest) in (4, 6) else None
        expected = (self.config.wol_password or "").replace(":", "").lower() or None
        accepted = expected is None or password == expected
        with self.lock:
            self.wol_log.append(WolRecord(form, self.config.mac, password, accepted))
            self._log(f"magic packet {form} password={'set' if password else 'none'} accepted={accepted}")
            if accepted:
                self.power_on(f"wake-on-lan {form}")

    def wol_loop(self) -> None:
        if self.config.namespaced:
            sock = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(ETH_P_ALL))
            sock.bind((self.config.interface, 0))
        else:
            sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
            sock.bind(("127.0.0.1", self.config.wol_port))
        sock.settimeout(IDLE_POLL)
        while not self.stopping.is_set():
            try:
                data, address = sock.recvfrom(65535)
            except socket.timeout:
                continue
            except OSError:
                if self.stopping.is_set():
                    return
                raise
            if self.config.namespaced:
                if address[2] == PACKET_OUTGOING:
                    continue
                for form, payload in frame_payloads(data):
                    self._consider_magic(form, payload)
            else:
                self._consider_magic("udp", data)

    # ----- control socket ------------------------------------------------
    def status(self) -> Dict[str, Any]:
        return {
            "name": self.config.name,
            "power": self.power,
            "os": self.os,
            "boot_device": self.boot_device,
            "boot_persistent": self.boot_persistent,
            "boot_uefi": self.boot_uefi,
            "wol_packets": len(self.wol_log),
            "power_changes": self.power_changes,
            "redfish": dict(self.redfish),
        }

    def redfish_configure(self, request: Dict[str, Any]) -> None:
        """Validate and apply the Redfish face's profile, fault and session limit."""
        profile = request.get("profile")
        if profile is not None and profile not in REDFISH_PROFILES:
            raise ValueError(f"redfish profile {profile!r} is unknown; use one of {', '.join(REDFISH_PROFILES)}")
        fault = request.get("fault")
        if fault is not None:
            if isinstance(fault, str):
                fault = {"mode": fault}
            if not isinstance(fault, dict) or fault.get("mode") not in REDFISH_FAULTS:
                raise ValueError(f"redfish fault {fault!r} is unknown; use a mode of {', '.join(REDFISH_FAULTS)}")
        limit = request.get("session_limit")
        if limit is not None and (not isinstance(limit, int) or isinstance(limit, bool) or limit < 1):
            raise ValueError(f"redfish session_limit {limit!r} is not a positive integer")
        with self.lock:
            if profile is not None:
                self.redfish["profile"] = profile
            if fault is not None:
                self.redfish["fault"] = dict(fault)
            if limit is not None:
                self.redfish["session_limit"] = limit
            self.redfish["generation"] += 1  # fault counts start again
            self._log(f"redfish face: {self.redfish}")

    def handle(self, request: Dict[str, Any]) -> Dict[str, Any]:
        op = request.get("op")
        if op == "status":
            return self.status()
        if op == "power":
            self.power_action(str(request.get("action")))
            return self.status()
        if op == "bootdev":
            device = str(request.get("device", "default"))
            if device not in BOOT_DEVICES:
                raise ValueError(f"unknown boot device {device}")
            with self.lock:
                self.boot_device = device
                self.boot_persistent = bool(request.get("persistent"))
                self.boot_uefi = bool(request.get("uefi"))
            return self.status()
        if op == "os_shutdown":
            method = str(request.get("method", "poweroff"))
            self.os_log.append({"command": method, "t": time.time()})
            if self.config.os_shutdown != "honour":
                self._log(f"os {method} ignored (os_shutdown=ignore)")
                return self.status()
            self.os_stop("reboot" if method == "reboot" else "off", f"os {method}")
            return self.status()
        if op == "configure":
            for key in ("boot_delay", "shutdown_delay", "acpi", "os_shutdown", "wol_password", "console_password"):
                if key in request:
                    setattr(self.config, key, request[key])
            return self.status()
        if op == "redfish_configure":
            self.redfish_configure(request)
            return self.status()
        if op == "wall":
            message = str(request.get("message", ""))
            self.os_log.append({"command": "wall", "message": message, "t": time.time()})
            self._log(f"wall: {message}")
            self.console_write(f"\r\nBroadcast message from root@{self.config.hostname} (somewhere):\r\n\r\n{message}\r\n")
            return self.status()
        if op == "os_log":
            return {"entries": list(self.os_log)}
        if op == "wol_log":
            return {"packets": [record.__dict__ for record in self.wol_log]}
        if op == "shutdown_supervisor":
            self.stopping.set()
            return {"stopping": True}
        raise ValueError(f"unknown op {op}")

    def control_loop(self) -> None:
        path = self.state_dir / "control.sock"
        if path.exists():
            path.unlink()
        server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        server.bind(str(path))
        server.listen(16)
        server.settimeout(IDLE_POLL)
        while not self.stopping.is_set():
            try:
                conn, _address = server.accept()
            except socket.timeout:
                continue
            threading.Thread(target=self._serve, args=(conn,), daemon=True).start()
        server.close()

    def _serve(self, conn: socket.socket) -> None:
        """One JSON request per line, each answered by one line, until the client closes (or idles SERVE_IDLE)."""
        with conn:
            conn.settimeout(SERVE_IDLE)
            pending = b""
            while True:
                try:
                    while b"\n" not in pending:
                        chunk = conn.recv(65536)
                        if not chunk:
                            break
                        pending += chunk
                except OSError:
                    return
                if not pending:
                    return
                line, newline, pending = pending.partition(b"\n")
                try:
                    request = json.loads(line or b"{}")
                    response = dict(self.handle(request), ok=True)
                except Exception as error:  # every refusal is reported to the caller
                    response = {"ok": False, "error": str(error)}
                try:
                    conn.sendall(json.dumps(response).encode() + b"\n")
                except OSError:
                    return
                if not newline:  # the client sent its last request without a newline and closed
                    return


def prepare_namespace(config: MachineConfig) -> None:
    """Hostname, OS commands and hwmon inside this machine's private namespaces."""
    state = Path(config.state_dir)
    socket.sethostname(config.hostname)
    labcmd = state / "labcmd"
    for target in DANGEROUS_COMMANDS:
        if not os.path.lexists(target):
            continue
        real = os.path.realpath(target)
        subprocess.run(["mount", "--bind", str(labcmd), real], check=False, capture_output=True)
    hwmon = state / "hwmon"
    if hwmon.is_dir():
        sysroot = state / "sysroot"
        sysroot.mkdir(exist_ok=True)
        subprocess.run(["mount", "--bind", "/sys", str(sysroot)], check=True)
        subprocess.run(["mount", "-t", "tmpfs", "-o", "mode=755", "pmlab-sysclass", "/sys/class"], check=True)
        for entry in os.listdir(sysroot / "class"):
            if entry != "hwmon":
                os.symlink(sysroot / "class" / entry, f"/sys/class/{entry}")
        os.mkdir("/sys/class/hwmon")
        for chip in sorted(os.listdir(hwmon)):
            os.symlink(hwmon / chip, f"/sys/class/hwmon/{chip}")


def main(argv: Optional[List[str]] = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--config", required=True)
    args = parser.parse_args(argv)
    config = MachineConfig.load(args.config)
    if config.namespaced:
        prepare_namespace(config)
    machine = Machine(config)
    signal.signal(signal.SIGTERM, lambda *args: machine.stopping.set())
    threads = [
        threading.Thread(target=machine.control_loop, daemon=True),
        threading.Thread(target=machine.wol_loop, daemon=True),
        threading.Thread(target=machine.console_loop, daemon=True),
    ]
    for thread in threads:
        thread.start()
    if config.state == "on":
        machine.power_on("lab up")
    else:
        machine._set_icmp(ignore=True)  # an unpowered machine answers nothing
    ready = Path(config.state_dir) / "ready"
    ready.with_suffix(".tmp").write_text(str(os.getpid()))
    os.replace(ready.with_suffix(".tmp"), ready)  # atomic: the lab reads the pid from it
    while not machine.stopping.is_set():
        machine.stopping.wait(SENSOR_LOOK)
        machine._record("sensors")  # threshold crossings of the BMC sensor file (the faces also look when asked)
    machine.power_off("supervisor stop")
    return 0


if __name__ == "__main__":
    sys.exit(main())
