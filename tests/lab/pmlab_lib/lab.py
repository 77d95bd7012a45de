"""The simulated machine room: start, describe and remove a lab of physical machines.

With root, every machine lives in its own network namespace on a bridge (in a
namespace of its own), with its own MAC, IPv4/IPv6 addresses and a separate
BMC address; tests act from a controller namespace. Nothing is added to the
host's own network namespace. Without root (or with ``loopback=True``) every
service listens on 127.0.0.1 with its own port.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import uuid
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Dict, List, Optional

from pmlab_lib import sensors_defaults
from pmlab_lib.control import ControlClient

LAB_ROOT = Path(__file__).resolve().parent.parent
SUBNET_PREFIX = "198.18"
SUBNET6 = "fd00:198:18::"
CONTROLLER_IP = "198.18.0.1"
BROADCAST = "198.18.255.255"
CONTROLLER_IF = "lab0"


def _run(argv: List[str], **kwargs: Any) -> subprocess.CompletedProcess:
    check = kwargs.pop("check", True)
    kwargs.setdefault("capture_output", True)
    kwargs.setdefault("text", True)
    return subprocess.run(argv, check=check, **kwargs)


def _free_port(kind: int) -> int:
    with socket.socket(socket.AF_INET, kind) as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def namespace_prefix(lab_dir: Path) -> str:
    """The prefix of a lab's namespace names: several labs (make test runs two pytest streams) never share one."""
    return "pl" + hashlib.sha1(str(lab_dir).encode()).hexdigest()[:6]


def _alive(pid: int) -> bool:
    """True while ``pid`` runs; a zombie counts as dead (the reaper here is slow)."""
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii") as stat:
            return stat.read().rsplit(")", 1)[1].split()[0] != "Z"
    except (OSError, IndexError):
        return False


@dataclass
class Machine:
    """One simulated physical machine, as tests and the inventory see it."""

    name: str
    index: int
    ip: str
    ip6: Optional[str]
    mac: str
    netns: Optional[str]
    interface: str
    bmc_host: str
    bmc_port: int
    bmc_user: str
    bmc_password: str
    bmc_kind: Optional[str]
    ssh_port: int
    wol_port: int
    serial_port: int
    state_dir: Path
    console_password: str = "pmlab"
    pid: int = 0
    bmc_pid: int = 0
    extra_pids: List[int] = field(default_factory=list)
    redfish_port: int = 0  # the BMC's Redfish face (HTTPS on bmc_host), 0 without --redfish
    redfish_pid: int = 0

    @property
    def hwmon_dir(self) -> Path:
        return self.state_dir / "hwmon"

    @property
    def bmc_sensors_file(self) -> Path:
        return self.state_dir / "bmc-sensors.json"

    def set_bmc_sensor(self, name: str, value: float) -> None:
        """Set one reading of the BMC's sensor file, which both faces (and ipmi_sim) read."""
        sensors = json.loads(self.bmc_sensors_file.read_text())
        next(sensor for sensor in sensors if sensor["name"] == name)["value"] = value
        self.bmc_sensors_file.write_text(json.dumps(sensors))

    @property
    def bmc_faults_file(self) -> Path:
        return self.state_dir / "bmc-faults.json"

    @property
    def control(self) -> ControlClient:
        return ControlClient(str(self.state_dir / "control.sock"))

    def power_state(self) -> str:
        return self.control.status()["power"]

    @property
    def redfish_url(self) -> str:
        host = f"[{self.bmc_host}]" if ":" in self.bmc_host else self.bmc_host
        return f"https://{host}:{self.redfish_port}"

    def redfish_configure(self, **switches: Any) -> Dict[str, Any]:
        """Switch the Redfish face at run time: profile=, fault=, session_limit= (see redfish_bmc.py)."""
        return self.control.call("redfish_configure", **switches)

    def os_state(self) -> str:
        return self.control.status()["os"]

    def wait_os(self, wanted: str, timeout: float = 10.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.os_state() == wanted:
                return
            time.sleep(0.05)
        raise TimeoutError(f"{self.name}: OS not {wanted} within {timeout} s (is {self.os_state()})")

    def _prefix(self) -> List[str]:
        if not self.pid or os.geteuid() != 0:
            return []
        return ["nsenter", "-t", str(self.pid), "-n", "-m", "-u"]

    def run(self, argv: List[str], **kwargs: Any) -> subprocess.CompletedProcess:
        """Run a command inside this machine's network, mount and UTS namespaces."""
        check = kwargs.pop("check", False)
        kwargs.setdefault("capture_output", True)
        kwargs.setdefault("text", True)
        return subprocess.run(self._prefix() + list(argv), check=check, **kwargs)

    def popen(self, argv: List[str], **kwargs: Any) -> subprocess.Popen:
        kwargs.setdefault("start_new_session", True)
        return subprocess.Popen(self._prefix() + list(argv), **kwargs)

    def to_json(self) -> Dict[str, Any]:
        data = asdict(self)
        data["state_dir"] = str(self.state_dir)
        return data


class Lab:
    """A running lab; see docs/lab.md."""

    def __init__(
        self, lab_dir: Path, prefix: str, loopback: bool, machines: List[Machine], pids: List[int], namespaces: List[str], hypervisor: Any = None,
        redfish: bool = False,
    ) -> None:
        self.lab_dir = Path(lab_dir)
        self.prefix = prefix
        self.loopback = loopback
        self.machines = machines
        self.pids = pids
        self.namespaces = namespaces
        self.hypervisor = hypervisor
        self.redfish = redfish

    # ----- description ---------------------------------------------------
    @property
    def controller_netns(self) -> Optional[str]:
        return None if self.loopback else f"{self.prefix}-ctl"

    @property
    def inventory_path(self) -> Path:
        return self.lab_dir / "inventory.yml"

    @property
    def redfish_ca(self) -> Path:
        """The lab CA's certificate: what Redfish clients verify the BMCs' certificates with."""
        return self.lab_dir / "redfish-ca" / "ca.pem"

    @property
    def ssh_key(self) -> Path:
        return self.lab_dir / "id_ed25519"

    @property
    def known_hosts(self) -> Path:
        return self.lab_dir / "known_hosts"

    def machine(self, name: str) -> Machine:
        for machine in self.machines:
            if machine.name == name:
                return machine
        raise KeyError(name)

    def _prefix(self) -> List[str]:
        return ["ip", "netns", "exec", self.controller_netns] if self.controller_netns else []

    def run(self, argv: List[str], **kwargs: Any) -> subprocess.CompletedProcess:
        """Run a command in the controller namespace (plainly in loopback mode)."""
        check = kwargs.pop("check", False)
        kwargs.setdefault("capture_output", True)
        kwargs.setdefault("text", True)
        return subprocess.run(self._prefix() + list(argv), check=check, **kwargs)

    def popen(self, argv: List[str], **kwargs: Any) -> subprocess.Popen:
        kwargs.setdefault("start_new_session", True)
        return subprocess.Popen(self._prefix() + list(argv), **kwargs)

    def ipmitool(
        self, machine: Machine, *args: str, user: Optional[str] = None, password: Optional[str] = None, timeout: float = 30,
        cipher_suite: int = 3,
    ) -> subprocess.CompletedProcess:
        """Run the independent client ipmitool against a machine's BMC."""
        argv = [
            "ipmitool", "-I", "lanplus", "-C", str(cipher_suite), "-N", "1", "-R", "2",
            "-H", machine.bmc_host, "-p", str(machine.bmc_port),
            "-U", user or machine.bmc_user, "-P", password or machine.bmc_password,
        ] + list(args)
        return self.run(argv, timeout=timeout)

    def ssh(self, machine: Machine, command: str, timeout: float = 20) -> subprocess.CompletedProcess:
        """Run a command on a machine with the real OpenSSH client."""
        argv = [
            "ssh", "-i", str(self.ssh_key), "-o", f"UserKnownHostsFile={self.known_hosts}",
            "-o", "StrictHostKeyChecking=yes", "-o", "BatchMode=yes", "-o", "ConnectTimeout=3",
            "-p", str(machine.ssh_port), f"root@{machine.ip}", command,
        ]
        return self.run(argv, timeout=timeout)

    def __enter__(self) -> "Lab":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.down()

    # ----- persistence ---------------------------------------------------
    def save(self) -> None:
        data = {
            "prefix": self.prefix,
            "loopback": self.loopback,
            "pids": self.pids,
            "namespaces": self.namespaces,
            "machines": [m.to_json() for m in self.machines],
            "hypervisor": self.hypervisor,
            "redfish": self.redfish,
        }
        (self.lab_dir / "lab.json").write_text(json.dumps(data, indent=2))

    @classmethod
    def attach(cls, lab_dir: Path) -> "Lab":
        data = json.loads((Path(lab_dir) / "lab.json").read_text())
        machines = []
        for item in data["machines"]:
            item["state_dir"] = Path(item["state_dir"])
            machines.append(Machine(**item))
        return cls(
            Path(lab_dir), data["prefix"], data["loopback"], machines, data["pids"], data["namespaces"], data.get("hypervisor"), data.get("redfish", False)
        )

    # ----- start -----------------------------------------------------------
    @classmethod
    def up(
        cls,
        machines: int = 3,
        state: str = "off",
        bmc: Optional[str] = "lab",
        boot_delay: float = 0.5,
        shutdown_delay: float = 0.3,
        lab_dir: Optional[Path] = None,
        loopback: Optional[bool] = None,
        hypervisor: Any = None,
        inventory: Optional[Path] = None,
        wol_password: Optional[str] = None,
        redfish: bool = False,
    ) -> "Lab":
        if state not in ("on", "off"):
            raise ValueError("state must be on or off")
        if bmc not in ("lab", "ipmi_sim", None):
            raise ValueError("bmc must be lab, ipmi_sim or None")
        if redfish and bmc is None:
            raise ValueError("redfish needs a BMC: use bmc='lab' or bmc='ipmi_sim' with redfish=True")
        if not 1 <= machines <= 200:
            raise ValueError("machines must be between 1 and 200")
        lab_dir = Path(lab_dir or os.environ.get("PMLAB_DIR") or "/tmp/pmlab").resolve()
        if (lab_dir / "lab.json").exists():
            cls.attach(lab_dir).down()
        lab_dir.mkdir(parents=True, exist_ok=True)
        if loopback is None:
            loopback = os.geteuid() != 0
        lab = cls(lab_dir, namespace_prefix(lab_dir), loopback, [], [], [], hypervisor, redfish)
        try:
            lab._build(machines, state, bmc, boot_delay, shutdown_delay, wol_password)
            if hypervisor:
                from pmlab_lib import hypervisor as lab_hypervisor

                lab_hypervisor.provision(lab, hypervisor)
                lab.save()
                lab._write_inventory()  # now with pm_stack_uri and pm_containing_machine
            if inventory and Path(inventory).resolve() != lab.inventory_path.resolve():
                shutil.copy(lab.inventory_path, inventory)
        except BaseException:
            lab.down()
            raise
        return lab

    def _build(self, count: int, state: str, bmc: Optional[str], boot_delay: float, shutdown_delay: float, wol_password: Optional[str]) -> None:
        _run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "pmlab", "-f", str(self.ssh_key)])
        prefix_byte = int(self.prefix[2:4], 16)
        for index in range(1, count + 1):
            name = f"lab{index:02d}"
            state_dir = self.lab_dir / name
            if state_dir.exists():
                shutil.rmtree(state_dir)
            state_dir.mkdir(parents=True)
            if self.loopback:
                ip, ip6, netns = "127.0.0.1", None, None
                bmc_host, bmc_port = "127.0.0.1", _free_port(socket.SOCK_DGRAM)
                redfish_port = _free_port(socket.SOCK_STREAM) if self.redfish else 0
                ssh_port, wol_port = _free_port(socket.SOCK_STREAM), _free_port(socket.SOCK_DGRAM)
            else:
                ip, ip6, netns = f"{SUBNET_PREFIX}.0.{10 + index}", f"{SUBNET6}{10 + index:x}", f"{self.prefix}-m{index:02d}"
                bmc_host, bmc_port = f"{SUBNET_PREFIX}.1.{10 + index}", 623
                redfish_port = 443 if self.redfish else 0
                ssh_port, wol_port = 22, 9
            self.machines.append(
                Machine(
                    name=name,
                    index=index,
                    ip=ip,
                    ip6=ip6,
                    mac=f"02:c7:5e:{prefix_byte:02x}:00:{index:02x}",
                    netns=netns,
                    interface="eth0",
                    bmc_host=bmc_host,
                    bmc_port=bmc_port,
                    bmc_user="admin",
                    bmc_password="pmlab-" + uuid.uuid4().hex[:12],
                    bmc_kind=bmc,
                    ssh_port=ssh_port,
                    wol_port=wol_port,
                    serial_port=_free_port(socket.SOCK_STREAM) if self.loopback else 2300,
                    state_dir=state_dir,
                    redfish_port=redfish_port,
                )
            )
        self.save()
        if not self.loopback:
            self._build_network()
            self.save()
        for machine in self.machines:
            self._write_machine_files(machine, state, boot_delay, shutdown_delay, wol_password)
        for machine in self.machines:
            self._start_machine(machine)
        self.save()
        self._wait_ready([m.state_dir / "ready" for m in self.machines], "machine")
        for machine in self.machines:
            if bmc:
                self._start_bmc(machine, bmc)
        self.save()
        if bmc:
            self._wait_ready([m.state_dir / "bmc-ready" for m in self.machines], "BMC")
        if self.redfish:
            self._start_redfish()
        self._write_known_hosts()
        self._write_inventory()
        if state == "on":
            for machine in self.machines:
                machine.wait_os("up", timeout=10 + boot_delay)

    def _build_network(self) -> None:
        net, ctl = f"{self.prefix}-net", f"{self.prefix}-ctl"
        names = [net, ctl] + [m.netns for m in self.machines]
        for name in names:
            _run(["ip", "netns", "add", name])
            self.namespaces.append(name)
            self.save()
        lines = ["link set lo up", "link add br0 type bridge", "link set br0 up"]
        lines.append(f"link add c0 type veth peer name {CONTROLLER_IF} netns {ctl}")
        lines.append("link set c0 master br0 up")
        for machine in self.machines:
            port = f"v{machine.index:02d}"
            lines.append(f"link add {port} type veth peer name eth0 netns {machine.netns}")
            lines.append(f"link set {port} master br0 up")
        _run(["ip", "-n", net, "-batch", "-"], input="\n".join(lines) + "\n")
        _run(
            ["ip", "-n", ctl, "-batch", "-"],
            input="\n".join(
                [
                    "link set lo up",
                    f"addr add {CONTROLLER_IP}/16 broadcast {BROADCAST} dev {CONTROLLER_IF}",
                    f"addr add {SUBNET6}1/64 dev {CONTROLLER_IF} nodad",
                    f"link set {CONTROLLER_IF} up",
                    f"route add 255.255.255.255/32 dev {CONTROLLER_IF}",
                ]
            )
            + "\n",
        )
        for machine in self.machines:
            _run(
                ["ip", "-n", machine.netns, "-batch", "-"],
                input="\n".join(
                    [
                        "link set lo up",
                        f"link set eth0 address {machine.mac}",
                        f"addr add {machine.ip}/16 broadcast {BROADCAST} dev eth0",
                        f"addr add {machine.bmc_host}/16 broadcast {BROADCAST} dev eth0",
                        f"addr add {machine.ip6}/64 dev eth0 nodad",
                        "link set eth0 up",
                    ]
                )
                + "\n",
            )

    def _write_machine_files(self, machine: Machine, state: str, boot_delay: float, shutdown_delay: float, wol_password: Optional[str]) -> None:
        sd = machine.state_dir
        _run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", machine.name, "-f", str(sd / "ssh_host_ed25519_key")])
        shutil.copy(f"{self.ssh_key}.pub", sd / "authorized_keys")
        (sd / "sshd_config").write_text(
            "\n".join(
                [
                    f"ListenAddress {machine.ip}:{machine.ssh_port}",
                    f"HostKey {sd / 'ssh_host_ed25519_key'}",
                    f"PidFile {sd / 'sshd.pid'}",
                    f"AuthorizedKeysFile {sd / 'authorized_keys'}",
                    "PermitRootLogin prohibit-password",
                    "PasswordAuthentication no",
                    "KbdInteractiveAuthentication no",
                    "UsePAM no",
                    "StrictModes no",
                    "PrintMotd no",
                    "UseDNS no",
                    "LogLevel ERROR",
                    "Subsystem sftp internal-sftp",
                    "",
                ]
            )
        )
        labcmd = (LAB_ROOT / "pmlab_lib" / "labcmd.py").read_text()
        script = sd / "labcmd"
        script.write_text("#!/usr/bin/python3\n" + labcmd.replace("@CONTROL_SOCKET@", str(sd / "control.sock")))
        script.chmod(0o755)
        sensors_defaults.write_hwmon(machine.hwmon_dir)
        machine.bmc_sensors_file.write_text(json.dumps(sensors_defaults.BMC_SENSORS, indent=2))
        machine.bmc_faults_file.write_text(json.dumps({"mode": "none"}))
        config = {
            "name": machine.name,
            "hostname": machine.name,
            "mac": machine.mac,
            "ip": machine.ip,
            "state_dir": str(sd),
            "ssh_port": machine.ssh_port,
            "wol_port": machine.wol_port,
            "serial_port": machine.serial_port,
            "interface": machine.interface,
            "namespaced": not self.loopback,
            "state": state,
            "boot_delay": boot_delay,
            "shutdown_delay": shutdown_delay,
            "wol_password": wol_password,
            "console_password": machine.console_password,
        }
        (sd / "machine.json").write_text(json.dumps(config, indent=2))

    def _env(self) -> Dict[str, str]:
        env = dict(os.environ)
        env["PYTHONPATH"] = str(LAB_ROOT) + (":" + env["PYTHONPATH"] if env.get("PYTHONPATH") else "")
        return env

    def _start_machine(self, machine: Machine) -> None:
        sd = machine.state_dir
        argv = [sys.executable, "-m", "pmlab_lib.machine", "--config", str(sd / "machine.json")]
        if not self.loopback:
            argv = ["ip", "netns", "exec", machine.netns, "unshare", "--mount", "--uts", "--propagation", "private"] + argv
        elif os.geteuid() == 0:
            # loopback as root: still keep poweroff & co. away from the real computer
            argv = ["unshare", "--mount", "--uts", "--propagation", "private"] + argv
        log = open(sd / "supervisor.log", "ab")
        proc = subprocess.Popen(argv, stdout=log, stderr=log, stdin=subprocess.DEVNULL, start_new_session=True, env=self._env())
        log.close()
        self.pids.append(proc.pid)
        machine.extra_pids.append(proc.pid)

    def _bmc_config(self, machine: Machine) -> Dict[str, Any]:
        sd = machine.state_dir
        return {
            "name": machine.name,
            "address": machine.bmc_host,
            "port": machine.bmc_port,
            "users": {
                "admin": {"password": machine.bmc_password, "privilege": "administrator"},
                "operator": {"password": machine.bmc_password, "privilege": "operator"},
                "viewer": {"password": machine.bmc_password, "privilege": "user"},
            },
            "control_socket": str(sd / "control.sock"),
            "sensors_file": str(machine.bmc_sensors_file),
            "faults_file": str(machine.bmc_faults_file),
            "serial": {"host": "127.0.0.1", "port": machine.serial_port},
            "uuid": str(uuid.uuid5(uuid.NAMESPACE_DNS, f"{self.prefix}.{machine.name}")),
            "state_dir": str(sd / "bmc"),
            "log_file": str(sd / "bmc.log"),
            "ready_file": str(sd / "bmc-ready"),
        }

    def _start_bmc(self, machine: Machine, kind: str) -> None:
        config = self._bmc_config(machine)
        Path(config["state_dir"]).mkdir(exist_ok=True)
        (machine.state_dir / "bmc.json").write_text(json.dumps(config, indent=2))
        if kind == "lab":
            argv = [sys.executable, "-m", "pmlab_lib.bmc_server", "--config", str(machine.state_dir / "bmc.json")]
        else:
            from pmlab_lib import ipmisim

            argv = ipmisim.prepare(config)
        if not self.loopback:
            # the BMC stays in the network namespace but outside the machine's
            # mount namespace: power off kills the machine, not its BMC
            argv = ["ip", "netns", "exec", machine.netns] + argv
        log = open(machine.state_dir / "bmc-process.log", "ab")
        proc = subprocess.Popen(argv, stdout=log, stderr=log, stdin=subprocess.DEVNULL, start_new_session=True, env=self._env())
        log.close()
        machine.bmc_pid = proc.pid
        self.pids.append(proc.pid)
        if kind == "ipmi_sim":
            from pmlab_lib import ipmisim

            ipmisim.wait_ready(config, proc)

    def _start_redfish(self) -> None:
        """The Redfish face of every BMC: a lab CA, a certificate per BMC, one HTTPS server per BMC."""
        from pmlab_lib import redfish_tls

        ca_folder = self.redfish_ca.parent
        redfish_tls.make_ca(ca_folder, self.prefix)
        for machine in self.machines:
            addresses = [machine.bmc_host] if machine.bmc_host == "127.0.0.1" else [machine.bmc_host, "127.0.0.1"]
            cert, key = redfish_tls.make_server_cert(ca_folder, machine.state_dir / "redfish-tls", machine.name, addresses)
            config = dict(self._bmc_config(machine))
            config.update(
                {
                    "redfish_address": machine.bmc_host,
                    "redfish_port": machine.redfish_port,
                    "cert_file": str(cert),
                    "key_file": str(key),
                    "redfish_log_file": str(machine.state_dir / "redfish.log"),
                    "redfish_ready_file": str(machine.state_dir / "redfish-ready"),
                }
            )
            (machine.state_dir / "redfish.json").write_text(json.dumps(config, indent=2))
            argv = [sys.executable, "-m", "pmlab_lib.redfish_bmc", "--config", str(machine.state_dir / "redfish.json")]
            if not self.loopback:
                # beside the IPMI face: the machine's network namespace, not its mount namespace
                argv = ["ip", "netns", "exec", machine.netns] + argv
            log = open(machine.state_dir / "redfish-process.log", "ab")
            proc = subprocess.Popen(argv, stdout=log, stderr=log, stdin=subprocess.DEVNULL, start_new_session=True, env=self._env())
            log.close()
            machine.redfish_pid = proc.pid
            self.pids.append(proc.pid)
        self.save()
        self._wait_ready([m.state_dir / "redfish-ready" for m in self.machines], "Redfish BMC")

    def _wait_ready(self, files: List[Path], what: str, timeout: float = 30.0) -> None:
        deadline = time.monotonic() + timeout
        pending = list(files)
        while pending and time.monotonic() < deadline:
            pending = [f for f in pending if not f.exists()]
            if pending:
                dead = [pid for pid in self.pids if not _alive(pid)]
                if dead:
                    logs = "\n".join(
                        (m.state_dir / name).read_text(errors="replace")[-2000:]
                        for m in self.machines
                        for name in ("supervisor.log", "bmc-process.log", "redfish-process.log")
                        if (m.state_dir / name).exists()
                    )
                    raise RuntimeError(f"a lab {what} process died while starting:\n{logs}")
                time.sleep(0.02)
        if pending:
            raise RuntimeError(f"lab {what}s not ready within {timeout} s: {[str(p) for p in pending]}")
        for machine in self.machines:
            ready = machine.state_dir / "ready"
            if what == "machine" and ready.exists():
                machine.pid = int(ready.read_text())

    def _write_known_hosts(self) -> None:
        lines = []
        for machine in self.machines:
            key = (machine.state_dir / "ssh_host_ed25519_key.pub").read_text().split()[:2]
            host = machine.ip if machine.ssh_port == 22 else f"[{machine.ip}]:{machine.ssh_port}"
            lines.append(f"{host} {' '.join(key)}")
        self.known_hosts.write_text("\n".join(lines) + "\n")

    def _write_inventory(self) -> None:
        hosts: Dict[str, Any] = {}
        hypervisor_vars: Dict[str, Dict[str, Any]] = {}
        if self.hypervisor:
            from pmlab_lib import hypervisor as lab_hypervisor

            hypervisor_vars = lab_hypervisor.inventory_vars(self)
        for machine in self.machines:
            hosts[machine.name] = {
                "ansible_host": machine.ip,
                "ansible_port": machine.ssh_port,
                "ansible_user": "root",
                "ansible_ssh_private_key_file": str(self.ssh_key),
                "ansible_ssh_common_args": f"-o UserKnownHostsFile={self.known_hosts} -o StrictHostKeyChecking=yes",
                "ansible_python_interpreter": "/usr/bin/python3",
                "pm_bmc_host": machine.bmc_host,
                "pm_bmc_port": machine.bmc_port,
                "pm_bmc_user": machine.bmc_user,
                "pm_bmc_password": machine.bmc_password,
                "pm_mac": machine.mac,
                "pm_wol_broadcast": "127.0.0.1" if self.loopback else BROADCAST,
                "pm_wol_port": machine.wol_port,
                "pm_lab_console_password": machine.console_password,
            }
            if self.redfish:
                # pm_bmc_port is the port of pm_bmc_protocol; the IPMI face stays reachable at pm_ipmi_port
                hosts[machine.name].update(
                    {
                        "pm_bmc_protocol": "redfish",
                        "pm_bmc_port": machine.redfish_port,
                        "pm_redfish_port": machine.redfish_port,
                        "pm_ipmi_port": machine.bmc_port,
                        "pm_bmc_ca_path": str(self.redfish_ca),
                    }
                )
            if not self.loopback:
                hosts[machine.name]["pm_wake_interface"] = CONTROLLER_IF  # the controller's side of the lab bridge
                hosts[machine.name]["pm_ip6"] = machine.ip6
            hosts[machine.name].update(hypervisor_vars.get(machine.name, {}))
        inventory = {"all": {"children": {"pm_lab": {"hosts": hosts}}}}
        # JSON is YAML; keeps the lab free of a YAML dependency
        self.inventory_path.write_text("# pmlab inventory (generated)\n" + json.dumps(inventory, indent=2) + "\n")

    # ----- stop --------------------------------------------------------------
    def down(self) -> None:
        """Stop everything this lab started; safe to call twice and after a crash."""
        if self.hypervisor:
            try:
                from pmlab_lib import hypervisor as lab_hypervisor

                lab_hypervisor.teardown(self)
            except Exception as error:  # teardown must go on
                sys.stderr.write(f"pmlab: hypervisor teardown: {error}\n")
        for machine in self.machines:
            if (machine.state_dir / "control.sock").exists():
                try:
                    ControlClient(str(machine.state_dir / "control.sock"), timeout=1).call("shutdown_supervisor")
                except Exception:
                    pass
        pids = list(self.pids)
        for pid in pids:
            try:
                os.killpg(pid, signal.SIGTERM)
            except OSError:
                pass
        deadline = time.monotonic() + 3
        while any(_alive(p) for p in pids) and time.monotonic() < deadline:
            time.sleep(0.05)
        for pid in pids:
            if _alive(pid):
                try:
                    os.killpg(pid, signal.SIGKILL)
                except OSError:
                    pass
        self._kill_namespace_processes()
        for name in self.namespaces + self._leftover_namespaces():
            subprocess.run(["ip", "netns", "delete", name], capture_output=True, check=False)
        self.namespaces = []
        self.pids = []
        lab_json = self.lab_dir / "lab.json"
        if lab_json.exists():
            lab_json.unlink()
        for machine in self.machines:
            shutil.rmtree(machine.state_dir, ignore_errors=True)
        shutil.rmtree(self.redfish_ca.parent, ignore_errors=True)
        for name in ("inventory.yml", "known_hosts", "id_ed25519", "id_ed25519.pub"):
            path = self.lab_dir / name
            if path.exists():
                path.unlink()

    def _leftover_namespaces(self) -> List[str]:
        if os.geteuid() != 0:
            return []
        listing = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True, check=False).stdout
        return [line.split()[0] for line in listing.splitlines() if line.startswith(self.prefix + "-")]

    def _kill_namespace_processes(self) -> None:
        """Anything still running in the lab's namespaces (sshd sessions, shells) dies too."""
        if os.geteuid() != 0:
            return
        for name in set(self.namespaces + self._leftover_namespaces()):
            pids = subprocess.run(["ip", "netns", "pids", name], capture_output=True, text=True, check=False).stdout.split()
            for pid in pids:
                try:
                    os.kill(int(pid), signal.SIGKILL)
                except (OSError, ValueError):
                    pass
        deadline = time.monotonic() + 2
        while time.monotonic() < deadline:
            remaining = []
            for name in set(self.namespaces + self._leftover_namespaces()):
                remaining += subprocess.run(["ip", "netns", "pids", name], capture_output=True, text=True, check=False).stdout.split()
            if not [p for p in remaining if _alive(int(p))]:
                return
            time.sleep(0.05)
