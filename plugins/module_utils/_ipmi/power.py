# Copyright: ctys.pm contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Power state and boot device through the BMC, for one machine or a fleet.

All targets of a task share one pyghmi event loop (see ``_ipmi.session``):
logins run concurrently, commands are sent target after target (each takes
milliseconds), and the waits for the target power state are polled
round-robin with back-off (0.2 s first), each bounded by its own deadline.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any, Callable, Dict, List, Optional, Sequence, Tuple

from ansible_collections.ctys.pm.plugins.module_utils._bmc import guard, targets
from ansible_collections.ctys.pm.plugins.module_utils._bmc.options import BmcConnection
from ansible_collections.ctys.pm.plugins.module_utils._bmc.power_request import FLEET_KEYS, BootRequest, boot_matches, check_state, validate_boot
from ansible_collections.ctys.pm.plugins.module_utils._deadline import Deadline, check_seconds
from ansible_collections.ctys.pm.plugins.module_utils._errors import PmError, PmStateError, PmTimeoutError
from ansible_collections.ctys.pm.plugins.module_utils._ipmi import flows
from ansible_collections.ctys.pm.plugins.module_utils._ipmi.flows import Ask, Flow, Pause
from ansible_collections.ctys.pm.plugins.module_utils._ipmi.retry import POLICY

# boot flags byte 2 selector (IPMI 2.0 table 28-14) for our device names
BOOT_SELECTOR = {"default": 0x00, "network": 0x04, "hd": 0x08, "safe": 0x0C, "cdrom": 0x14, "bios": 0x18, "floppy": 0x3C}
SELECTOR_DEVICE = {code: name for name, code in BOOT_SELECTOR.items()}
CHASSIS_CONTROL = {"off": 0, "on": 1, "cycle": 2, "reset": 3, "soft": 5}


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
    step: str = guard.LOGIN  # login, command, waiting for the state, done: where a failure happened

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
            data["step"] = self.error.result.get("step", self.step)  # the step it failed in (or was cut off in)
        return data


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


def run_jobs(jobs: Sequence[PowerJob], deadline_seconds: float, wait: bool, check_mode: bool, progress: Optional[guard.Progress] = None) -> None:
    """Log in, read, act and wait for every job; failures stay per job.

    Every job is a :func:`_flow` (a generator of IPMI requests and pauses) driven by one
    :class:`_ipmi.flows.Driver`: requests go out asynchronously and their answers come back in
    pyghmi's event loop, so a BMC that is slow to answer one command (or whose answer was
    lost or misdelivered) delays only its own job. ``progress`` (keyed by the job's index)
    records the step each job is in, for :func:`run_bounded`'s hard bound.
    """
    deadline = Deadline(deadline_seconds)
    flows.run_jobs(jobs, deadline, lambda job, mark: _flow(job, deadline, wait, check_mode, mark), progress)


def _power_of(data: List[int]) -> str:
    return "on" if data and data[0] & 0x01 else "off"


def _boot_of(data: List[int]) -> Dict[str, Any]:
    flags = data[2] if len(data) > 2 else 0
    selector = (data[3] & 0x3C) if len(data) > 3 else 0
    valid = bool(flags & 0x80)
    return {
        "device": SELECTOR_DEVICE.get(selector, "default") if valid else "default",
        "persistent": bool(flags & 0x40) if valid else False,
        "mode": "uefi" if flags & 0x20 else "legacy",
    }


def _boot_request(boot: BootRequest) -> List[int]:
    flags = 0x80 if boot.device != "default" else 0x00
    if boot.persistent:
        flags |= 0x40
    if boot.mode == "uefi":
        flags |= 0x20
    return [0x05, flags, BOOT_SELECTOR[boot.device], 0, 0, 0]


def _flow(job: PowerJob, deadline: Deadline, wait: bool, check_mode: bool, mark: Callable[[str], None]) -> Flow:
    """What one job does once logged in: read, set the boot device, act, wait for the state."""
    boot = job.boot
    job.before = _power_of((yield Ask("reading the power state", 0x00, 0x01)))
    if boot is not None:
        job.boot_before = _boot_of((yield Ask("reading the boot device", 0x00, 0x09, [0x05, 0x00, 0x00])))
        if not boot_matches(job.boot_before, boot):
            job.changed = True
            job.boot_after = {"device": boot.device, "persistent": boot.persistent, "mode": boot.mode or job.boot_before["mode"]}
            if not check_mode:
                yield Ask("setting the boot device", 0x00, 0x08, _boot_request(boot))
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
    yield Ask(f"power {action}", 0x00, 0x02, [CHASSIS_CONTROL[action]])
    job.waiting_for = target
    if not wait:
        job.after = _power_of((yield Ask("reading the power state", 0x00, 0x01)))
        return
    mark(guard.WAITING)
    pauses = POLICY.pauses()
    seen: Optional[str] = None
    while True:
        seen = _power_of((yield Ask("reading the power state", 0x00, 0x01)))
        if seen == target:
            job.after = seen
            return
        if deadline.expired:
            hint = " (the OS may ignore the ACPI request; use state: off for a hard power off)" if job.state == "soft" else ""
            raise PmTimeoutError(
                f"{job.label} ({job.conn.address}) did not reach power state '{target}' within the timeout "
                f"of {deadline.seconds:g} s; the BMC still reports '{seen}'{hint or '; raise timeout if the machine needs longer'}",
            )
        yield Pause(deadline.cap(next(pauses, POLICY.longest_pause)))


def run_bounded(jobs: List[PowerJob], timeout: float, wait: bool, check_mode: bool) -> List[PowerJob]:
    """:func:`run_jobs` under the hard bound (``_bmc.guard``): back by ``timeout`` plus ``guard.GRACE``, whatever pyghmi does.

    Returns the jobs as they are then; a job the deadline cut off fails naming its BMC and its step.
    """
    progress = guard.Progress()
    outcome = guard.bounded(lambda: run_jobs(jobs, timeout, wait, check_mode, progress), timeout, name="ctys-pm-ipmi-power")
    if outcome.finished:
        return jobs
    return flows.frozen(jobs, progress.close(), timeout, lambda job: job.after is not None)


def build_jobs(params: Dict[str, Any]) -> List[PowerJob]:
    """Jobs from module parameters: one target, or ``targets`` with top-level defaults."""
    boot = validate_boot(params)
    state = check_state(params.get("state") or "query", "state")
    jobs: List[PowerJob] = []
    # an entry may carry the Redfish options too (ignored here, as at the top level; a protocol other than ipmi is refused)
    entries = targets.fleet_entries(params, FLEET_KEYS, targets.OWN_KEYS + ("state",))
    for entry in entries:
        own_state = check_state(entry.params.get("state") or state, entry.option("state")) if entry.index is not None else state
        jobs.append(PowerJob(BmcConnection.from_params(entry.params), own_state, entry.label, boot))
    targets.refuse_repeats([(entry, job.conn.address) for entry, job in zip(entries, jobs)])
    return jobs


def run(params: Dict[str, Any], check_mode: bool = False) -> Dict[str, Any]:
    """The pm_ipmi_power backend."""
    started = time.monotonic()
    timeout = check_seconds("timeout", params.get("timeout", 300), 86400, "300")
    fail_on = targets.check_fail_on(params.get("fail_on"))
    jobs = build_jobs(params)
    jobs = run_bounded(jobs, float(timeout), bool(params.get("wait", True)), check_mode)
    elapsed = round(time.monotonic() - started, 3)
    if not params.get("targets"):
        job = jobs[0]
        if job.error is not None:
            raise job.error.__class__(job.error.msg, **dict(job.error.result, power_state_before=job.before, elapsed=elapsed))
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
    return targets.fleet_outcome(results, fail_on, result)
