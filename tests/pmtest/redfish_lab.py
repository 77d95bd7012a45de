"""Shared helpers of the lab and Redfish tests: the lab fixture, curl with the lab CA, sushy-emulator.

* :func:`lab_fixture` builds a module-scoped pytest fixture that starts a lab
  (two machines, off, the lab BMC) and takes it down afterwards, failure included.
* :func:`machine_fixture` builds the per-test fixture "machine 1, put back after
  each test" (generic profile, no fault, no sessions, off, no boot override).
* :func:`curl` is the independent HTTP client (curl, not Python): one request,
  answered as (status, headers with lower-case names, JSON body or {}).
  :func:`lab_curl` runs it in the lab's controller namespace with the lab CA.
* :func:`sushy_emulator` starts DMTF-style sushy-emulator ``--fake`` over TLS
  (a self-signed certificate for 127.0.0.1, its own state folder);
  :func:`sushy_fixture` wraps it as a module-scoped fixture.
"""

from __future__ import annotations

import contextlib
import json
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Dict, Iterator, List, Optional, Tuple

import pytest

Reply = Tuple[int, Dict[str, str], Dict[str, Any]]
Runner = Callable[..., "subprocess.CompletedProcess[str]"]
LAB_DEFAULTS: Dict[str, Any] = {"machines": 2, "state": "off", "bmc": "lab", "boot_delay": 0.3, "shutdown_delay": 0.2}


def wait_for(predicate: Callable[[], Any], timeout: float = 10.0, what: str = "condition") -> None:
    """Poll ``predicate`` every 50 ms until it is true; AssertionError naming ``what`` after ``timeout`` s."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.05)
    raise AssertionError(f"{what} not reached within {timeout} s")


def free_port() -> int:
    """A TCP port on 127.0.0.1 nobody listens on (closed right after it was picked)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def fingerprint_of(pem: Path) -> str:
    """The certificate's SHA-256 fingerprint, as ``openssl x509 -fingerprint -sha256`` prints it."""
    out = subprocess.run(["openssl", "x509", "-noout", "-fingerprint", "-sha256", "-in", str(pem)], capture_output=True, text=True, check=True)
    return out.stdout.strip().split("=", 1)[1]


# ----------------------------------------------------------------- the lab
def lab_fixture(folder: str, name: str = "lab", **kwargs: Any) -> Any:
    """A module-scoped fixture ``name`` with a lab (``Lab.up(**LAB_DEFAULTS, **kwargs)``), taken down afterwards."""

    @pytest.fixture(scope="module", name=name)
    def fixture(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
        from pmlab_lib.lab import Lab  # lazily: the unit tests never start a lab

        with Lab.up(**dict(LAB_DEFAULTS, lab_dir=tmp_path_factory.mktemp(folder), **kwargs)) as lab:
            yield lab  # Lab.down() on leaving, also when a test failed

    return fixture


def reset_machine(lab: Any, machine: Any) -> None:
    """Back to the generic Redfish profile, no fault, a 4-session limit, no session, off, no boot override."""
    machine.redfish_configure(profile="generic", fault={"mode": "none"}, session_limit=4)
    for session in lab_curl(lab, machine, "GET", "/redfish/v1/SessionService/Sessions")[2].get("Members", []):
        lab_curl(lab, machine, "DELETE", session["@odata.id"])
    machine.control.call("power", action="off")
    machine.control.call("bootdev", device="default", persistent=False, uefi=False)


def machine_fixture(index: int = 0, name: str = "m") -> Any:
    """A fixture ``name``: the lab's machine ``index``, put back by :func:`reset_machine` after each test."""

    @pytest.fixture(name=name)
    def fixture(lab: Any) -> Iterator[Any]:
        machine = lab.machines[index]
        yield machine
        reset_machine(lab, machine)

    return fixture


def ipmi_power(lab: Any, machine: Any, **kw: Any) -> str:
    """``Chassis Power is on|off`` as ipmitool reads it from the machine's IPMI face."""
    result = lab.ipmitool(machine, "chassis", "power", "status", **kw)
    assert result.returncode == 0, result.stderr
    return result.stdout.strip()


# ----------------------------------------------------------------- curl
def curl(run: Runner, url: str, method: str = "GET", body: Any = None, *, user: Optional[str] = None, password: str = "",
         ca: Optional[Path] = None, token: Optional[str] = None, headers: Optional[Dict[str, str]] = None, max_time: float = 10) -> Reply:
    """One request with curl: (status, headers with lower-case names, JSON body or {}); status is minus curl's exit code on failure."""
    argv = ["curl", "-sS", "-i", "--max-time", str(max_time), "-X", method]
    if ca is not None:
        argv += ["--cacert", str(ca)]
    if token:
        argv += ["-H", f"X-Auth-Token: {token}"]
    elif user:
        argv += ["-u", f"{user}:{password}"]
    for key, value in (headers or {}).items():
        argv += ["-H", f"{key}: {value}"]
    if body is not None:
        argv += ["-H", "Content-Type: application/json", "--data-binary", json.dumps(body)]
    argv.append(url)
    result = run(argv, timeout=max_time + 10)
    if result.returncode != 0:
        return -result.returncode, {"stderr": result.stderr}, {}
    head, _sep, text = result.stdout.replace("\r\n", "\n").partition("\n\n")
    lines = head.split("\n")
    found = {line.split(":", 1)[0].strip().lower(): line.split(":", 1)[1].strip() for line in lines[1:] if ":" in line}
    return int(lines[0].split()[1]), found, json.loads(text) if text.strip().startswith("{") else {}


def lab_curl(lab: Any, machine: Any, method: str, path: str, body: Any = None, user: Optional[str] = "admin", password: Optional[str] = None,
             token: Optional[str] = None, headers: Optional[Dict[str, str]] = None, ca: bool = True, max_time: float = 10,
             base: Optional[str] = None) -> Reply:
    """:func:`curl` to a lab BMC's Redfish face, from the controller namespace, with the lab CA and basic auth."""
    return curl(lab.run, (base or machine.redfish_url) + path, method, body, user=user, password=password or machine.bmc_password,
                ca=lab.redfish_ca if ca else None, token=token, headers=headers, max_time=max_time)


def lab_get(lab: Any, machine: Any, path: str) -> Dict[str, Any]:
    """GET with :func:`lab_curl` that must answer 200; the JSON body."""
    status, _headers, body = lab_curl(lab, machine, "GET", path)
    assert status == 200, (path, status, body)
    return body


def systems_of(get: Callable[[str], Dict[str, Any]]) -> List[str]:
    return [member["@odata.id"] for member in get("/redfish/v1/Systems")["Members"]]


def redfish_power(lab: Any, machine: Any, system: Optional[str] = None) -> str:
    """PowerState of the BMC's (first) system, read by curl."""
    return lab_get(lab, machine, system or systems_of(lambda path: lab_get(lab, machine, path))[0])["PowerState"]


def sessions(lab: Any, machine: Any) -> List[Dict[str, Any]]:
    """The open sessions of a lab BMC, read by curl with basic auth (which opens none)."""
    return lab_get(lab, machine, "/redfish/v1/SessionService/Sessions").get("Members", [])


# ----------------------------------------------------------------- sushy-emulator
@dataclass
class Sushy:
    """A running sushy-emulator: its port, its certificate, its log."""

    port: int
    cert: Path
    folder: Path

    @property
    def url(self) -> str:
        return f"https://127.0.0.1:{self.port}"

    def curl(self, method: str, path: str, body: Any = None) -> Reply:
        return curl(lambda argv, **kw: subprocess.run(argv, capture_output=True, text=True, check=False, **kw),
                    self.url + path, method, body, ca=self.cert)

    def get(self, path: str) -> Dict[str, Any]:
        status, _headers, body = self.curl("GET", path)
        assert status == 200, (path, status, body)
        return body

    def system(self, index: int = 0) -> Dict[str, Any]:
        return self.get(systems_of(self.get)[index])

    def power_state(self) -> str:
        return str(self.system()["PowerState"])


@contextlib.contextmanager
def sushy_emulator(folder: Path, systems: Optional[List[Dict[str, Any]]] = None) -> Iterator[Sushy]:
    """sushy-emulator ``--fake`` over TLS on 127.0.0.1, basic auth off (it has no sessions), state kept in ``folder``.

    Its fake driver applies a power change 1 to 11 s after the request (PowerState unchanged meanwhile),
    and keeps its state in SQLite: without a state folder of its own every emulator on the machine would share one.
    """
    subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
                    "-keyout", str(folder / "key.pem"), "-out", str(folder / "cert.pem"), "-days", "2", "-subj", "/CN=127.0.0.1",
                    "-addext", "subjectAltName=IP:127.0.0.1"], check=True, capture_output=True)
    conf = [f'SUSHY_EMULATOR_SSL_CERT = "{folder}/cert.pem"', f'SUSHY_EMULATOR_SSL_KEY = "{folder}/key.pem"',
            f'SUSHY_EMULATOR_STATE_DIR = "{folder}/state"',
            # its INFO lines (such as 'System "..." power state set to "On"') in emulator.log, without --debug's reloader
            'import logging', 'logging.getLogger("sushy_tools.emulator.main").setLevel(logging.INFO)']
    if systems is not None:
        conf.append(f"SUSHY_EMULATOR_FAKE_SYSTEMS = {systems!r}")
    (folder / "conf.py").write_text("\n".join(conf) + "\n")
    sushy = Sushy(free_port(), folder / "cert.pem", folder)
    with open(folder / "emulator.log", "wb") as log:
        proc = subprocess.Popen([str(Path(sys.executable).parent / "sushy-emulator"), "--fake", "-i", "127.0.0.1", "-p", str(sushy.port),
                                 "--config", str(folder / "conf.py")], stdout=log, stderr=subprocess.STDOUT)
        try:
            try:
                wait_for(lambda: sushy.curl("GET", "/redfish/v1/")[0] == 200, timeout=20, what="sushy-emulator answering")
            except AssertionError:
                raise AssertionError("sushy-emulator did not start: " + (folder / "emulator.log").read_text()[-2000:]) from None
            yield sushy
        finally:
            proc.terminate()
            try:
                proc.wait(10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(10)


def sushy_fixture(name: str = "sushy") -> Any:
    """A module-scoped fixture ``name``: a :class:`Sushy` with one fake system (Off), stopped afterwards."""

    @pytest.fixture(scope="module", name=name)
    def fixture(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Sushy]:
        with sushy_emulator(tmp_path_factory.mktemp("sushy")) as sushy:
            yield sushy

    return fixture
