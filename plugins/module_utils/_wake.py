# Copyright: ctys.pm contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""pm_wake's backend: ctys-PM CREATE - reuse a running machine, else send, wait, poll."""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any, Callable, Dict, List, Optional

from ansible_collections.ctys.pm.plugins.module_utils._deadline import Deadline, check_seconds
from ansible_collections.ctys.pm.plugins.module_utils._errors import PmInputError, PmStateError, PmTimeoutError
from ansible_collections.ctys.pm.plugins.module_utils._netaddr import check_port, parse_mac
from ansible_collections.ctys.pm.plugins.module_utils._poll import PollSpec, poll_once
from ansible_collections.ctys.pm.plugins.module_utils._wol.packet import Sender, lookup_name, magic_packet, parse_password


@dataclass
class Target:
    mac: str
    host: Optional[str]
    already_running: bool = False
    sent_at: Optional[float] = None
    up_at: Optional[float] = None
    last_error: str = ""
    polls: int = 0

    def result(self) -> Dict[str, Any]:
        boot = round(self.up_at - self.sent_at, 3) if self.up_at and self.sent_at else None
        return {
            "mac": self.mac,
            "host": self.host,
            "already_running": self.already_running,
            "reachable": bool(self.up_at) or self.already_running,
            "boot_seconds": boot,
            "last_poll_error": self.last_error or None,
        }


def _read(path: str) -> str:
    with open(path, encoding="utf-8", errors="replace") as stream:
        return stream.read()


def _given(params: Dict[str, Any], key: str, default: Any) -> Any:
    """The option's value, or ``default`` only when it was left out (0 is a value, and an invalid one is refused)."""
    value = params.get(key)
    return default if value is None else value


def _number(params: Dict[str, Any], key: str, low: float, high: float, example: str) -> float:
    return check_seconds(key, params.get(key), high, example, allow_zero=low == 0)


def build_targets(params: Dict[str, Any], reader: Callable[[str], str]) -> List[Target]:
    macs = params.get("mac") or []
    hosts = list(params.get("hosts") or [])
    if params.get("host"):
        if hosts:
            raise PmInputError("host and hosts were both given; use host for one machine or hosts for several")
        hosts = [params["host"]]
    if not macs:
        name = params.get("name")
        if not name:
            raise PmInputError("mac and name are both missing; give mac, or name to look up in ethers or macmap")
        entry = lookup_name(name, params.get("ethers"), params.get("macmap"), reader)
        macs = [entry["mac"]]
        if not hosts and entry.get("ip") and params.get("wait"):
            hosts = [entry["ip"]]
    parsed = [parse_mac(mac, "mac") for mac in macs]
    if hosts and len(hosts) != len(parsed):
        raise PmInputError(f"hosts has {len(hosts)} entries but mac has {len(parsed)}; give one host per MAC, in the same order")
    return [Target(mac, hosts[i] if hosts else None) for i, mac in enumerate(parsed)]


def run(params: Dict[str, Any], check_mode: bool = False, reader: Callable[[str], str] = _read, sysfs: Optional[str] = None) -> Dict[str, Any]:
    started = time.monotonic()
    if params.get("interface") and params.get("broadcast_given"):
        raise PmInputError(
            "broadcast and interface cannot be combined (ctys: BROADCAST or IF); use broadcast for UDP or interface for a raw frame"
        )
    targets = build_targets(params, reader)
    has_hosts = any(t.host for t in targets)
    wait = params.get("wait")
    if wait is None:
        wait = has_hosts
    if wait and not has_hosts:
        raise PmInputError("wait is true but no host to watch was given; set host (or hosts), or wait: false")
    password = parse_password(params.get("secureon_password"))
    sender_args = dict(
        broadcast=None if params.get("interface") else params.get("broadcast") or "255.255.255.255",
        port=_given(params, "port", 9),
        interface=params.get("interface"),
        repeat=int(_given(params, "repeat", 3)),
        repeat_interval=_number(params, "repeat_interval", 0, 10, "0.1"),
    )
    if sysfs:
        sender_args["sysfs"] = sysfs
    sender = Sender(**sender_args)
    wait_timeout = _number(params, "wait_timeout", 0.1, 86400, "300")
    wol_delay = _number(params, "wol_delay", 0, 3600, "0")
    interval = _number(params, "poll_interval", 0.05, 60, "0.5")
    stagger = int(_given(params, "stagger", 0))
    stagger_interval = _number(params, "stagger_interval", 0, 3600, "1")
    if stagger < 0:
        raise PmInputError(f"stagger '{stagger}' is not valid; use how many machines to wake per stagger_interval, such as 5, or 0 for all at once")
    spec = PollSpec(
        kind=params.get("poll") or "ping",
        port=check_port(_given(params, "poll_port", 22), "poll_port", 22),
        ssh_user=params.get("ssh_user"),
        ssh_key=params.get("ssh_key"),
        ssh_password=params.get("ssh_password"),
        host_key_checking=bool(params.get("ssh_host_key_checking", True)),
        known_hosts=params.get("ssh_known_hosts"),
    )
    policy = params.get("already_running") or "reuse"

    # ctys REUSE: a machine that already answers gets no packet
    for target in targets:
        if target.host:
            up, seen = poll_once(target.host, spec, min(1.0, interval * 2))
            target.already_running = up
            if not up:
                target.last_error = seen
    running = [t for t in targets if t.already_running]
    if running and policy == "fail":
        names = ", ".join(t.host or t.mac for t in running)
        raise PmStateError(f"{names} already running (ctys: try REUSE); set already_running: reuse to accept running machines")
    to_wake = [t for t in targets if not t.already_running]
    packets_sent: List[Dict[str, Any]] = []
    if to_wake and not check_mode:
        batch = stagger if stagger > 0 else len(to_wake)
        for first in range(0, len(to_wake), batch):
            group = to_wake[first:first + batch]
            if first:
                time.sleep(stagger_interval)
            sender.send([magic_packet(t.mac, password) for t in group])
            now = time.monotonic()
            for target in group:
                target.sent_at = now
                packets_sent.append(
                    {"mac": target.mac, "destination": sender.destination(), "bytes": len(magic_packet(target.mac, password)), "count": sender.repeat}
                )
    if wait and to_wake and not check_mode:
        if wol_delay:
            time.sleep(wol_delay)
        deadline = Deadline(wait_timeout)

        def watch(target: Target) -> None:
            host = target.host or ""  # only targets with a host are watched
            while not deadline.expired:
                target.polls += 1
                up, seen = poll_once(host, spec, min(max(interval, 0.5), max(0.05, deadline.remaining())))
                if up:
                    target.up_at = time.monotonic()
                    return
                target.last_error = seen
                time.sleep(deadline.cap(interval))

        watched = [t for t in to_wake if t.host]
        with ThreadPoolExecutor(max_workers=min(64, max(1, len(watched)))) as pool:
            list(pool.map(watch, watched))
        late = [t for t in watched if not t.up_at]
        if late:
            detail = "; ".join(f"{t.host} ({t.last_error})" for t in late[:5])
            raise PmTimeoutError(
                f"{len(late)} of {len(watched)} machines did not answer within wait_timeout {wait_timeout:g} s: {detail}",
                changed=True,
                macs=[t.mac for t in targets],
                packets=packets_sent,
                results=[t.result() for t in targets],
            )
    single = len(targets) == 1
    result: Dict[str, Any] = {
        "changed": bool(to_wake),
        "macs": [t.mac for t in targets],
        "packets": packets_sent,
        "already_running": targets[0].already_running if single else [t.host for t in running],
        "reachable": (bool(targets[0].up_at) or targets[0].already_running) if single and targets[0].host else None,
        "boot_seconds": targets[0].result()["boot_seconds"] if single else None,
        "elapsed": round(time.monotonic() - started, 3),
        "results": [t.result() for t in targets],
    }
    if check_mode:
        result["would_send"] = [{"mac": t.mac, "destination": sender.destination(), "bytes": len(magic_packet(t.mac, password))} for t in to_wake]
    return result
