# Copyright: ctys.pm contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Power state and boot device through the BMC, for one machine or a fleet.

All targets of a task share one pyghmi event loop (see ``_ipmi_session``):
logins run concurrently, commands are sent target after target (each takes
milliseconds), and the waits for the target power state are polled
round-robin with back-off (0.2 s first), each bounded by its own deadline.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any, Dict, List, Optional, Sequence, Tuple

from ansible_collections.ctys.pm.plugins.module_utils import _ipmi_session
from ansible_collections.ctys.pm.plugins.module_utils._bmc import BmcConnection
from ansible_collections.ctys.pm.plugins.module_utils._deadline import Deadline, backoff, check_seconds
from ansible_collections.ctys.pm.plugins.module_utils._errors import PmConnectionError, PmError, PmInputError, PmStateError, PmTimeoutError

STATES = ("on", "off", "soft", "reset", "cycle", "boot", "query")
BOOT_DEVICES = ("network", "hd", "cdrom", "bios", "floppy", "safe", "default")
BOOT_MODES = ("legacy", "uefi")
# boot flags byte 2 selector (IPMI 2.0 table 28-14) for our device names
BOOT_SELECTOR = {"default": 0x00, "network": 0x04, "hd": 0x08, "safe": 0x0C, "cdrom": 0x14, "bios": 0x18, "floppy": 0x3C}
SELECTOR_DEVICE = {code: name for name, code in BOOT_SELECTOR.items()}
CHASSIS_CONTROL = {"off": 0, "on": 1, "cycle": 2, "reset": 3, "soft": 5}
FLEET_KEYS = ("bmc", "name", "host", "port", "user", "password", "kg", "state", "privilege", "cipher_suite", "connect_timeout")


@dataclass
class BootRequest:
    device: str
    persistent: bool = False
    mode: Optional[str] = None


@dataclass
class PowerJob:
    """One target: what to do, and what happened."""

    conn: BmcConnection
    state: str
    label: str
    boot: Optional[BootRequest] = None
    command: Any = None
    before: Optional[str] = None
    after: Optional[str] = None
    boot_before: Optional[Dict[str, Any]] = None
    boot_after: Optional[Dict[str, Any]] = None
    changed: bool = False
    waiting_for: Optional[str] = None
    error: Optional[PmError] = None
    started: float = field(default_factory=time.monotonic)
    finished: Optional[float] = None

    def fail(self, error: PmError) -> None:
        if self.error is None:
            self.error = error
        self.finished = time.monotonic()

    def result(self) -> Dict[str, Any]:
        data: Dict[str, Any] = {
            "name": self.label,
            "bmc": self.conn.address,
            "state": self.state,
            "changed": self.changed,
            "power_state_before": self.before,
            "power_state": self.after,
            "elapsed": round((self.finished or time.monotonic()) - self.started, 3),
        }
        if self.boot_after is not None or self.boot_before is not None:
            data["boot_device"] = self.boot_after or self.boot_before
        data["failed"] = self.error is not None
        if self.error is not None:
            data["msg"] = self.error.msg
        return data


def read_power(job: PowerJob) -> str:
    data = _ipmi_session.raw(job.command, job.conn, 0x00, 0x01)
    return "on" if data and data[0] & 0x01 else "off"


def read_boot(job: PowerJob) -> Dict[str, Any]:
    data = _ipmi_session.raw(job.command, job.conn, 0x00, 0x09, [0x05, 0x00, 0x00])
    flags = data[2] if len(data) > 2 else 0
    selector = (data[3] & 0x3C) if len(data) > 3 else 0
    valid = bool(flags & 0x80)
    return {
        "device": SELECTOR_DEVICE.get(selector, "default") if valid else "default",
        "persistent": bool(flags & 0x40) if valid else False,
        "mode": "uefi" if flags & 0x20 else "legacy",
    }


def write_boot(job: PowerJob, boot: BootRequest) -> None:
    flags = 0x80 if boot.device != "default" else 0x00
    if boot.persistent:
        flags |= 0x40
    if boot.mode == "uefi":
        flags |= 0x20
    _ipmi_session.raw(job.command, job.conn, 0x00, 0x08, [0x05, flags, BOOT_SELECTOR[boot.device], 0, 0, 0])


def boot_matches(current: Dict[str, Any], boot: BootRequest) -> bool:
    if current["device"] != boot.device:
        return False
    if boot.device == "default":
        return True
    if current["persistent"] != boot.persistent:
        return False
    return boot.mode is None or current["mode"] == boot.mode


def plan(state: str, before: str) -> Tuple[Optional[str], Optional[str]]:
    """(chassis action, power state to wait for) for ``state`` given the current state."""
    if state == "query":
        return None, None
    if state == "on":
        return (None, None) if before == "on" else ("on", "on")
    if state in ("off", "soft"):
        return (None, None) if before == "off" else (state, "off")
    if state == "boot":
        return ("on", "on") if before == "off" else ("reset", "on")
    if before == "off":  # reset, cycle
        raise PmStateError(f"state '{state}' needs a running machine and this one is off; use state: boot to power on or reset")
    return state, "on"


def run_jobs(jobs: Sequence[PowerJob], deadline_seconds: float, wait: bool, check_mode: bool) -> None:
    """Log in, read, act and wait for every job; failures stay per job."""
    task_deadline = Deadline(deadline_seconds)

    def act_once_logged_in(index: int, login: _ipmi_session.Login) -> None:
        jobs[index].command = login.command
        _act(jobs[index], task_deadline, check_mode)

    try:
        logins = _ipmi_session.open_sessions([job.conn for job in jobs], task_deadline, raw_only=True, on_ready=act_once_logged_in)
        for job, login in zip(jobs, logins):
            if login.error is not None:
                job.fail(login.error)
        if wait and not check_mode:
            _wait_all([job for job in jobs if job.error is None and job.waiting_for], task_deadline)
        for job in jobs:
            if job.error is None:
                if job.after is None:
                    try:
                        job.after = _ipmi_session.call_with_retries(lambda: read_power(job), job.conn, task_deadline, what="reading the power state")
                    except PmError as error:
                        job.fail(error)
                        continue
                job.finished = time.monotonic()
    finally:
        for job in jobs:
            # a BMC that stopped answering would make pyghmi's logout wait for it
            if not isinstance(job.error, PmConnectionError):
                _ipmi_session.logout(job.command)


def _act(job: PowerJob, deadline: Deadline, check_mode: bool) -> None:
    try:
        job.before = _ipmi_session.call_with_retries(lambda: read_power(job), job.conn, deadline, what="reading the power state")
        if job.boot is not None:
            job.boot_before = _ipmi_session.call_with_retries(lambda: read_boot(job), job.conn, deadline, what="reading the boot device")
            if not boot_matches(job.boot_before, job.boot):
                job.changed = True
                job.boot_after = {"device": job.boot.device, "persistent": job.boot.persistent, "mode": job.boot.mode or job.boot_before["mode"]}
                if not check_mode:
                    _ipmi_session.call_with_retries(lambda: write_boot(job, job.boot), job.conn, deadline, what="setting the boot device")
            else:
                job.boot_after = job.boot_before
        action, target = plan(job.state, job.before)
        if action is None:
            job.after = job.before
            return
        job.changed = True
        if check_mode:
            job.after = target
            return
        _ipmi_session.call_with_retries(
            lambda: _ipmi_session.raw(job.command, job.conn, 0x00, 0x02, [CHASSIS_CONTROL[action]]),
            job.conn,
            deadline,
            what=f"power {action}",
        )
        job.waiting_for = target
    except PmError as error:
        job.fail(error)


def _wait_all(jobs: List[PowerJob], deadline: Deadline) -> None:
    """Poll every waiting job round-robin until it reaches its state or the deadline."""
    schedule = backoff(0.2, 1.5, 2.0)
    pending = list(jobs)
    last_seen: Dict[int, str] = {}
    while pending:
        for job in list(pending):
            try:
                state = read_power(job)
                last_seen[id(job)] = state
            except PmError as error:
                if not _ipmi_session.is_transient(error.msg) or deadline.remaining() < 0.3:
                    job.fail(error)
                    pending.remove(job)
                continue
            if state == job.waiting_for:
                job.after = state
                job.finished = time.monotonic()
                pending.remove(job)
        if not pending:
            return
        if deadline.expired:
            for job in pending:
                hint = " (the OS may ignore the ACPI request; use state: off for a hard power off)" if job.state == "soft" else ""
                seen = last_seen.get(id(job))
                still = f"; the BMC still reports '{seen}'" if seen else ""
                job.fail(
                    PmTimeoutError(
                        f"{job.label} ({job.conn.address}) did not reach power state '{job.waiting_for}' within the timeout "
                        f"of {deadline.seconds:g} s{still}{hint or '; raise timeout if the machine needs longer'}",
                    )
                )
            return
        _ipmi_session._pump(deadline.cap(next(schedule)))


def validate_boot(params: Dict[str, Any]) -> Optional[BootRequest]:
    device = params.get("boot_device")
    if device is None:
        if params.get("boot_persistent") or params.get("boot_mode"):
            raise PmInputError("boot_persistent and boot_mode need boot_device; set boot_device, for example boot_device: network")
        return None
    if device not in BOOT_DEVICES:
        raise PmInputError(f"boot_device '{device}' is not valid; use one of {', '.join(BOOT_DEVICES)}")
    mode = params.get("boot_mode")
    if mode is not None and mode not in BOOT_MODES:
        raise PmInputError(f"boot_mode '{mode}' is not valid; use legacy or uefi")
    return BootRequest(device, bool(params.get("boot_persistent")), mode)


def build_jobs(params: Dict[str, Any]) -> List[PowerJob]:
    """Jobs from module parameters: one target, or ``targets`` with top-level defaults."""
    boot = validate_boot(params)
    state = params.get("state") or "query"
    targets = params.get("targets")
    defaults = {key: params.get(key) for key in FLEET_KEYS if key not in ("bmc", "name", "host", "state")}
    defaults["allow_unauthenticated"] = params.get("allow_unauthenticated")
    if not targets:
        if not params.get("bmc"):
            raise PmInputError("bmc is missing; set bmc to the BMC's host name or address, or give targets for fleet mode")
        return [PowerJob(BmcConnection.from_params(params), _check_state(state, "state"), params["bmc"], boot)]
    if params.get("bmc"):
        raise PmInputError("bmc and targets were both given; use bmc for one machine or targets for a fleet, not both")
    jobs: List[PowerJob] = []
    seen: Dict[str, str] = {}
    for index, target in enumerate(targets):
        if not isinstance(target, dict):
            raise PmInputError(f"targets[{index}] '{target}' is not a dictionary; give each target as {{bmc: ADDRESS, ...}}")
        unknown = sorted(set(target) - set(FLEET_KEYS))
        if unknown:
            raise PmInputError(f"targets[{index}] has unknown key '{unknown[0]}'; use {', '.join(FLEET_KEYS)}")
        target = {key: value for key, value in target.items() if value is not None}
        host = target.get("bmc") or target.get("host")
        if not host:
            raise PmInputError(f"targets[{index}] has no bmc; set bmc to the BMC's host name or address")
        conn = BmcConnection.from_params(dict(target, bmc=host), defaults)
        if conn.address in seen:
            raise PmInputError(
                f"targets[{index}] repeats BMC {conn.address} (already {seen[conn.address]}); list every BMC once"
            )
        label = str(target.get("name") or host)
        seen[conn.address] = label
        jobs.append(PowerJob(conn, _check_state(target.get("state") or state, f"targets[{index}].state"), label, boot))
    return jobs


def _check_state(state: str, option: str) -> str:
    if state not in STATES:
        raise PmInputError(f"{option} '{state}' is not valid; use one of {', '.join(STATES)}")
    return state


def run(params: Dict[str, Any], check_mode: bool = False) -> Dict[str, Any]:
    """The pm_ipmi_power backend."""
    started = time.monotonic()
    timeout = check_seconds("timeout", params.get("timeout", 300), 86400, "300")
    fail_on = params.get("fail_on") or "any"
    if fail_on not in ("any", "all", "never"):
        raise PmInputError(f"fail_on '{fail_on}' is not valid; use any, all or never")
    jobs = build_jobs(params)
    run_jobs(jobs, float(timeout), bool(params.get("wait", True)), check_mode)
    elapsed = round(time.monotonic() - started, 3)
    if not params.get("targets"):
        job = jobs[0]
        if job.error is not None:
            raise job.error.__class__(job.error.msg, power_state_before=job.before, elapsed=elapsed)
        result: Dict[str, Any] = {
            "changed": job.changed,
            "power_state": job.after,
            "power_state_before": job.before,
            "elapsed": elapsed,
        }
        if job.boot_after is not None:
            result["boot_device"] = job.boot_after
        result["diff"] = {
            "before": {"power_state": job.before, "boot_device": job.boot_before},
            "after": {"power_state": job.after, "boot_device": job.boot_after or job.boot_before},
        }
        return result
    results = [job.result() for job in jobs]
    failed = [r for r in results if r["failed"]]
    summary = {
        "targets": len(results),
        "changed": sum(1 for r in results if r["changed"]),
        "failed": len(failed),
        "power_on": sum(1 for r in results if r["power_state"] == "on"),
        "power_off": sum(1 for r in results if r["power_state"] == "off"),
    }
    result = {"changed": summary["changed"] > 0, "results": results, "summary": summary, "elapsed": elapsed}
    if failed and (fail_on == "any" or (fail_on == "all" and len(failed) == len(results))):
        names = ", ".join(f"{r['name']} ({r['msg']})" for r in failed[:5])
        more = f" and {len(failed) - 5} more" if len(failed) > 5 else ""
        raise PmError(f"{len(failed)} of {len(results)} targets failed: {names}{more}", **result)
    return result
