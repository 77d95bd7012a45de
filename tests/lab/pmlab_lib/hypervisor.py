"""Hypervisors for the lab: each machine can carry real libvirt/QEMU guests.

Per machine with guests, a session libvirtd runs as ``nobody`` (libvirtd as
root fails here) in the machine's network namespace, under a subreaper that
reaps QEMU at once (this host's PID 1 reaps slowly, which would make every
guest look 2 s slower to stop). Root on the machine reaches it with
``pm_stack_uri`` = ``qemu+unix:///session?socket=/tmp/pmhv-.../run/libvirt/libvirt-sock``.

Guest kinds (TCG, no disk, no network):

* ``honour``: a Debian kernel with a busybox initramfs (:mod:`pmlab_lib.guest_image`) that
  powers off ``stop_delay`` seconds after the ACPI power button; ready in about
  3 s, stopped about ``stop_delay`` + 0.3 s after ``virsh shutdown``.
* ``refuse``: firmware only (SeaBIOS, no OS): the power button is ignored, the
  real "guest refuses" case; only ``virsh destroy`` stops it.

A watcher process keeps the stack honest: when a machine loses power, its
running guests die with it (recorded by :func:`lost_guests`); a nested machine
(``nested={"lab02": "lab01"}``) is also a domain named ``lab02`` on lab01, and
the two stay in step (domain off -> machine off, machine off -> domain off,
either started -> the other started).

Spec for ``Lab.up(hypervisor=...)``: ``True`` (each machine: one honour, one
refuse guest), a list such as ``["honour", "refuse"]`` for every machine, or::

    {"guests": {"lab01": ["honour", {"name": "web 1", "kind": "refuse"}]},
     "nested": {"lab02": "lab01"}, "stop_delay": 0.5}

Guest fields: ``name`` (default ``<kind>-<n>``), ``kind``, ``stop_delay``,
``state`` (``running`` or ``shut off``), ``autostart`` (start when the machine
powers on). Guests start only on machines that are on.
"""

from __future__ import annotations

import functools
import json
import os
import pwd
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any, Dict, List, Optional, Tuple
from xml.sax.saxutils import escape

from pmlab_lib.guest_image import READY, ensure_image

# ----- lab hypervisors ---------------------------------------------------------------
KINDS = ("honour", "refuse")
DEFAULT_STOP_DELAY = 0.5
MEMORY_MIB = {"honour": 96, "refuse": 32}
READY_TIMEOUT = 120.0
WATCH_INTERVAL = 0.2
XMLNS = "https://github.com/ctys-pm/pmlab"

# Orphaned QEMU processes are re-parented here and reaped at once (PR_SET_CHILD_SUBREAPER).
REAPER = r"""import ctypes, os, signal, sys
ctypes.CDLL(None).prctl(36, 1, 0, 0, 0)
child = os.fork()
if child == 0:
    os.execvp(sys.argv[1], sys.argv[1:])
signal.signal(signal.SIGTERM, lambda *args: os.kill(child, signal.SIGTERM))
while True:
    try:
        os.wait()
    except ChildProcessError:
        break
"""


def _guest_entry(item: Any, counts: Dict[str, int], stop_delay: float) -> Dict[str, Any]:
    entry = {"kind": item} if isinstance(item, str) else dict(item)
    kind = entry.get("kind", "honour")
    if kind not in KINDS:
        raise ValueError(f"guest kind must be one of {KINDS}, not {kind!r}")
    counts[kind] = counts.get(kind, 0) + 1
    return {
        "name": str(entry.get("name") or f"{kind}-{counts[kind]}"),
        "kind": kind,
        "stop_delay": float(entry.get("stop_delay", stop_delay)),
        "state": entry.get("state", "running"),
        "autostart": bool(entry.get("autostart", False)),
        "nested": False,
    }


def plan(spec: Any, machine_names: List[str]) -> Dict[str, Any]:
    """The normalised spec: guests per machine (nested machines added as guests of their host)."""
    if spec is True:
        spec = {"guests": {name: ["honour", "refuse"] for name in machine_names}}
    elif isinstance(spec, str):
        spec = {"guests": {name: [k.strip() for k in spec.split(",") if k.strip()] for name in machine_names}}
    elif isinstance(spec, (list, tuple)):
        spec = {"guests": {name: list(spec) for name in machine_names}}
    if not isinstance(spec, dict):
        raise ValueError("hypervisor must be True, a list of guest kinds, or a dict with guests/nested")
    stop_delay = float(spec.get("stop_delay", DEFAULT_STOP_DELAY))
    nested = dict(spec.get("nested") or {})
    guests: Dict[str, List[Dict[str, Any]]] = {}
    for machine, items in (spec.get("guests") or {}).items():
        if machine not in machine_names:
            raise ValueError(f"hypervisor guests for unknown machine {machine}")
        counts: Dict[str, int] = {}
        guests[machine] = [_guest_entry(item, counts, stop_delay) for item in items]
    for child, host in nested.items():
        if child not in machine_names or host not in machine_names or child == host:
            raise ValueError(f"nested {child} -> {host}: both must be lab machines, and different")
        entry = _guest_entry({"name": child, "kind": "honour"}, {}, stop_delay)
        entry["nested"] = True
        guests.setdefault(host, []).append(entry)
    for machine, entries in guests.items():
        names = [g["name"] for g in entries]
        if len(set(names)) != len(names):
            raise ValueError(f"guest names on {machine} must be unique: {names}")
    return {"guests": guests, "nested": nested, "stop_delay": stop_delay}


def _state(lab: Any) -> Dict[str, Any]:
    state = lab.hypervisor if isinstance(lab.hypervisor, dict) else {}
    return state if "libvirtd" in state else {}


def uri(lab: Any, machine: Any) -> str:
    """The libvirt URI of a machine's hypervisor (its inventory's pm_stack_uri)."""
    return _state(lab)["libvirtd"][machine.name]["uri"]


def _uri_for(directory: str) -> str:
    return f"qemu+unix:///session?socket={directory}/run/libvirt/libvirt-sock"


def virsh(lab: Any, machine: Any, *args: str, timeout: float = 60) -> subprocess.CompletedProcess:
    """virsh against the machine's hypervisor, from outside (an independent client)."""
    return subprocess.run(["virsh", "-c", uri(lab, machine)] + list(args), capture_output=True, text=True, timeout=timeout,
                          check=False, env=dict(os.environ, LC_ALL="C"))


def guest_states(lab: Any, machine: Any) -> Dict[str, str]:
    """Each guest's state as virsh words it (running, shut off, paused, ...)."""
    names = [n for n in virsh(lab, machine, "list", "--all", "--name").stdout.splitlines() if n.strip()]
    return {name: virsh(lab, machine, "domstate", "--domain", name).stdout.strip() for name in names}


def _guest(lab: Any, machine: Any, name: str) -> Dict[str, Any]:
    for entry in _state(lab)["libvirtd"][machine.name]["guests"]:
        if entry["name"] == name:
            return entry
    raise KeyError(f"{machine.name} has no lab guest {name!r}")


def _log_path(directory: str, name: str) -> str:
    return f"{directory}/log/{re.sub(r'[^A-Za-z0-9_.-]', '_', name)}.log"


def guest_ready(lab: Any, machine: Any, name: str) -> bool:
    """A honour guest is ready once its init watches the power button."""
    try:
        return READY in Path(_log_path(_state(lab)["libvirtd"][machine.name]["dir"], name)).read_text(errors="replace")
    except OSError:
        return False


def _domain_xml(entry: Dict[str, Any], directory: str, image: Dict[str, str], prefix: str, machine: str) -> str:

    kind = entry["kind"]
    domain_uuid = uuid.uuid5(uuid.NAMESPACE_URL, f"pmlab:{prefix}:{machine}:{entry['name']}")
    boot = "<type arch='x86_64' machine='pc'>hvm</type>"
    if kind == "honour":
        boot += (f"<kernel>{escape(image['kernel'])}</kernel><initrd>{escape(image['initrd'])}</initrd>"
                 f"<cmdline>console=ttyS0 quiet pmguest.stop_delay={entry['stop_delay']:g}</cmdline>")
    return (
        f"<domain type='qemu'><name>{escape(entry['name'])}</name>"
        f"<uuid>{domain_uuid}</uuid>"
        f"<metadata><pmlab:guest xmlns:pmlab='{XMLNS}' kind='{kind}' nested='{entry['nested']}'/></metadata>"
        f"<memory unit='MiB'>{MEMORY_MIB[kind]}</memory><vcpu>1</vcpu><os>{boot}</os>"
        "<features><acpi/></features><on_poweroff>destroy</on_poweroff><on_reboot>destroy</on_reboot>"
        f"<devices><serial type='file'><source path='{escape(_log_path(directory, entry['name']))}' append='on'/></serial>"
        "<memballoon model='none'/></devices></domain>"
    )


def define_guest(lab: Any, machine: Any, name: str, kind: Optional[str] = None, stop_delay: Optional[float] = None) -> None:
    """(Re)define a shut-off guest, e.g. make it refuse or honour shutdown, or change its stop delay."""
    state = _state(lab)
    entry = _guest(lab, machine, name)
    if kind is not None:
        if kind not in KINDS:
            raise ValueError(f"kind must be one of {KINDS}")
        entry["kind"] = kind
    if stop_delay is not None:
        entry["stop_delay"] = float(stop_delay)
    info = state["libvirtd"][machine.name]
    with tempfile.NamedTemporaryFile("w", suffix=".xml", delete=False) as handle:
        handle.write(_domain_xml(entry, info["dir"], state["image"], lab.prefix, machine.name))
    try:
        result = virsh(lab, machine, "define", handle.name)
    finally:
        os.unlink(handle.name)
    if result.returncode != 0:
        raise RuntimeError(f"{machine.name}: virsh define {name}: {result.stderr.strip()}")
    lab.save()


def start_guests(lab: Any, machine: Any, names: Optional[List[str]] = None, wait: bool = True, timeout: float = READY_TIMEOUT) -> None:
    """Start guests (default: all) and wait until the honour ones watch their power button."""
    info = _state(lab)["libvirtd"][machine.name]
    entries = [g for g in info["guests"] if names is None or g["name"] in names]
    listing = virsh(lab, machine, "list", "--all", "--managed-save").stdout
    for entry in entries:
        state = guest_states(lab, machine).get(entry["name"])
        if state == "running":
            continue
        if state == "paused":
            virsh(lab, machine, "resume", "--domain", entry["name"])
            continue
        if not re.search(rf"\s{re.escape(entry['name'])}\s+saved\s*$", listing, re.M):
            # a fresh boot: forget the last boot's "ready" (a restored guest keeps its log and its readiness)
            log = _log_path(info["dir"], entry["name"])
            if os.path.exists(log):
                os.truncate(log, 0)  # keeps its owner: QEMU runs as nobody
        result = virsh(lab, machine, "start", "--domain", entry["name"])
        if result.returncode != 0:
            raise RuntimeError(f"{machine.name}: virsh start {entry['name']}: {result.stderr.strip()}")
    if wait:
        wait_ready(lab, machine, [e["name"] for e in entries if e["kind"] == "honour"], timeout)


def wait_ready(lab: Any, machine: Any, names: List[str], timeout: float = READY_TIMEOUT) -> None:
    deadline = time.monotonic() + timeout
    pending = list(names)
    while pending and time.monotonic() < deadline:
        pending = [n for n in pending if not guest_ready(lab, machine, n)]
        if pending:
            time.sleep(0.1)
    if pending:
        raise RuntimeError(f"{machine.name}: guests {pending} not ready within {timeout} s")


def lost_guests(lab: Any) -> List[Dict[str, Any]]:
    """Guests that were running when their machine lost power (each {machine, guest, at})."""
    path = Path(_state(lab).get("lost_file", "/nonexistent"))
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def inventory_vars(lab: Any) -> Dict[str, Dict[str, Any]]:
    state = _state(lab)
    found: Dict[str, Dict[str, Any]] = {}
    for name, info in state.get("libvirtd", {}).items():
        found.setdefault(name, {})["pm_stack_uri"] = info["uri"]
    for child, host in state.get("nested", {}).items():
        found.setdefault(child, {})["pm_containing_machine"] = host
    return found


def _owner() -> Tuple[int, int, str]:
    if os.geteuid() != 0:
        return os.getuid(), os.getgid(), ""
    user = pwd.getpwnam("nobody")
    return user.pw_uid, user.pw_gid, "nobody"


def _processes_of(directory: str, parents: List[int]) -> List[int]:
    """Processes whose command line names the directory (QEMU, the reaper) or whose parent is listed (libvirtd)."""
    found = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            cmdline = Path(f"/proc/{entry}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
            ppid = int(Path(f"/proc/{entry}/stat").read_text().rsplit(")", 1)[1].split()[1])
        except (OSError, ValueError, IndexError):
            continue
        if directory in cmdline or ppid in parents:
            found.append(int(entry))
    return found


def _kill_tree(directory: str, pid: int) -> None:
    victims = set(_processes_of(directory, [pid] if pid else []))
    if pid:
        victims.add(pid)
    for victim in victims:
        try:
            os.kill(victim, signal.SIGKILL)
        except OSError:
            pass


def _start_libvirtd(lab: Any, machine: Any) -> Dict[str, Any]:
    directory = f"/tmp/pmhv-{lab.prefix}-{machine.name}"
    if os.path.exists(directory):
        _kill_tree(directory, 0)
        shutil.rmtree(directory, ignore_errors=True)
    uid, gid, user = _owner()
    for sub in ("", "home", "run", "cfg", "cache", "log"):
        os.makedirs(f"{directory}/{sub}", exist_ok=True)
        os.chown(f"{directory}/{sub}", uid, gid)
        os.chmod(f"{directory}/{sub}", 0o755 if not sub else 0o700)
    Path(f"{directory}/reaper.py").write_text(REAPER)
    os.chmod(f"{directory}/reaper.py", 0o644)
    env = {"HOME": f"{directory}/home", "XDG_RUNTIME_DIR": f"{directory}/run", "XDG_CONFIG_HOME": f"{directory}/cfg",
           "XDG_CACHE_HOME": f"{directory}/cache", "PATH": "/usr/sbin:/usr/bin:/sbin:/bin", "LC_ALL": "C"}
    argv = ["env", "-i"] + [f"{k}={v}" for k, v in env.items()] + ["/usr/bin/python3", f"{directory}/reaper.py", "libvirtd", "--timeout", "0"]
    if user:
        argv = ["setpriv", f"--reuid={user}", f"--regid={gid}", "--clear-groups"] + argv
    if machine.netns:
        argv = ["ip", "netns", "exec", machine.netns] + argv
    with open(f"{directory}.log", "ab") as log:
        proc = subprocess.Popen(argv, stdout=log, stderr=log, stdin=subprocess.DEVNULL, start_new_session=True)
    info = {"dir": directory, "uri": _uri_for(directory), "pid": proc.pid, "guests": []}
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        if os.path.exists(f"{directory}/run/libvirt/libvirt-sock"):
            probe = subprocess.run(["virsh", "-c", info["uri"], "version"], capture_output=True, text=True, check=False, timeout=20)
            if probe.returncode == 0:
                return info
        if proc.poll() is not None:
            break
        time.sleep(0.1)
    log_text = Path(f"{directory}.log").read_text(errors="replace")[-1500:]
    raise RuntimeError(f"{machine.name}: session libvirtd did not start:\n{log_text}")


def provision(lab: Any, spec: Any) -> None:
    """Start a hypervisor on each machine that carries guests, define and start the guests, start the watcher."""
    wanted = plan(spec, [m.name for m in lab.machines])
    needs_image = any(g["kind"] == "honour" for entries in wanted["guests"].values() for g in entries)
    state: Dict[str, Any] = {
        "spec": spec, "nested": wanted["nested"], "libvirtd": {}, "watcher_pid": 0,
        "image": ensure_image() if needs_image else {},
        "lost_file": str(lab.lab_dir / "hypervisor-lost.jsonl"),
    }
    lab.hypervisor = state
    Path(state["lost_file"]).unlink(missing_ok=True)
    for name, entries in wanted["guests"].items():
        machine = lab.machine(name)
        info = _start_libvirtd(lab, machine)
        state["libvirtd"][name] = info
        lab.save()
        info["guests"] = entries
        for entry in entries:
            define_guest(lab, machine, entry["name"])
            if entry["autostart"]:  # started by the watcher when the machine powers on
                virsh(lab, machine, "autostart", "--domain", entry["name"])
    for name, entries in wanted["guests"].items():
        machine = lab.machine(name)
        if machine.power_state() != "on":
            continue
        running = [e["name"] for e in entries
                   if (e["nested"] and lab.machine(e["name"]).power_state() == "on") or (not e["nested"] and e["state"] == "running")]
        start_guests(lab, machine, running, wait=False)
    for name, entries in wanted["guests"].items():
        machine = lab.machine(name)
        honour = [e["name"] for e in entries if e["kind"] == "honour" and guest_states(lab, machine).get(e["name"]) == "running"]
        wait_ready(lab, machine, honour)
    config = lab.lab_dir / "hypervisor-watch.json"
    config.write_text(json.dumps({
        "machines": {m.name: str(m.state_dir / "control.sock") for m in lab.machines},
        "uris": {name: info["uri"] for name, info in state["libvirtd"].items()},
        "nested": state["nested"], "lost_file": state["lost_file"],
    }))
    env = dict(os.environ, PYTHONPATH=str(Path(__file__).resolve().parent.parent))
    with open(lab.lab_dir / "hypervisor-watch.log", "ab") as log:
        proc = subprocess.Popen([sys.executable, "-m", "pmlab_lib.hypervisor", "watch", str(config)], stdout=log, stderr=log,
                                stdin=subprocess.DEVNULL, start_new_session=True, env=env)
    state["watcher_pid"] = proc.pid
    lab.pids.append(proc.pid)
    lab.save()


def teardown(lab: Any) -> None:
    """Stop the watcher, every guest and every libvirtd of this lab; remove their folders."""
    state = _state(lab)
    if not state:
        return
    if state.get("watcher_pid"):
        try:
            os.killpg(state["watcher_pid"], signal.SIGKILL)
        except OSError:
            pass
    for info in state.get("libvirtd", {}).values():
        _kill_tree(info["dir"], info.get("pid", 0))
    deadline = time.monotonic() + 3
    for info in state.get("libvirtd", {}).values():
        while _processes_of(info["dir"], []) and time.monotonic() < deadline:
            time.sleep(0.05)
        shutil.rmtree(info["dir"], ignore_errors=True)
        Path(f"{info['dir']}.log").unlink(missing_ok=True)
    state["libvirtd"] = {}


# ----- the watcher: power loss kills guests; nested machines follow their domain ---------------
def _power(sockets: Dict[str, str]) -> Dict[str, Optional[str]]:
    from pmlab_lib.control import ControlClient

    found: Dict[str, Optional[str]] = {}
    for name, path in sockets.items():
        try:
            found[name] = ControlClient(path, timeout=2).status()["power"]
        except Exception:  # a machine being torn down: unknown this round
            found[name] = None
    return found


def watch(config_path: str) -> None:
    import libvirt

    from pmlab_lib.control import ControlClient

    libvirt.registerErrorHandler(lambda _ctx, _err: None, None)
    config = json.loads(Path(config_path).read_text())
    conns: Dict[str, Any] = {}

    def domains(machine: str) -> Dict[str, Any]:
        try:
            if machine not in conns:
                conns[machine] = libvirt.open(config["uris"][machine])
            return {d.name(): d for d in conns[machine].listAllDomains(0)}
        except libvirt.libvirtError:
            conns.pop(machine, None)
            return {}

    def record(machine: str, guest: str, reason: str) -> None:
        with open(config["lost_file"], "a", encoding="utf-8") as log:
            log.write(json.dumps({"machine": machine, "guest": guest, "reason": reason, "at": time.time()}) + "\n")

    before_power: Dict[str, Optional[str]] = {}
    before_running: Dict[Tuple[str, str], bool] = {}
    while True:
        power = _power(config["machines"])
        doms = {m: domains(m) for m in config["uris"]}
        running = {(m, n): bool(d.isActive()) for m, found in doms.items() for n, d in found.items() if _safe(d)}
        for machine, found in doms.items():
            was, now = before_power.get(machine), power.get(machine)
            if was == "on" and now == "off":  # power loss: whatever ran is gone
                for name, dom in found.items():
                    if running.get((machine, name)):
                        _quiet(dom.destroy)
                        record(machine, name, "host lost power")
            if was == "off" and now == "on":
                for name, dom in found.items():
                    if _quiet(dom.autostart) and not running.get((machine, name)):
                        _quiet(dom.create)
        for child, host in config["nested"].items():
            dom = doms.get(host, {}).get(child)
            if dom is None or power.get(child) is None:
                continue
            was_running, is_running = before_running.get((host, child)), running.get((host, child), False)
            control = ControlClient(config["machines"][child], timeout=2)
            if was_running and not is_running and power[child] == "on":
                _quiet(functools.partial(control.call, "power", action="off"))  # the VM is gone, so is the machine
            elif before_power.get(child) == "on" and power[child] == "off" and is_running:
                _quiet(dom.destroy)
            elif was_running is False and is_running and power[child] == "off":
                _quiet(functools.partial(control.call, "power", action="on"))
            elif before_power.get(child) == "off" and power[child] == "on" and not is_running and power.get(host) == "on":
                _quiet(dom.create)
        before_power, before_running = power, running
        time.sleep(WATCH_INTERVAL)


def _safe(dom: Any) -> bool:
    try:
        dom.isActive()
        return True
    except Exception:
        return False


def _quiet(call: Any) -> Any:
    try:
        return call()
    except Exception:  # the watcher must keep going
        return None


if __name__ == "__main__":
    if sys.argv[1:2] == ["watch"]:
        watch(sys.argv[2])
