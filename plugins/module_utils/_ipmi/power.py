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
from collections import deque
from dataclasses import dataclass, field, replace
from typing import Any, Callable, Deque, Dict, Generator, List, Optional, Sequence, Tuple

from ansible_collections.ctys.pm.plugins.module_utils._bmc import guard
from ansible_collections.ctys.pm.plugins.module_utils._bmc.options import BmcConnection
from ansible_collections.ctys.pm.plugins.module_utils._deadline import Deadline, check_seconds
from ansible_collections.ctys.pm.plugins.module_utils._errors import PmConnectionError, PmError, PmInputError, PmStateError, PmTimeoutError
from ansible_collections.ctys.pm.plugins.module_utils._ipmi import errors
from ansible_collections.ctys.pm.plugins.module_utils._ipmi import session as _ipmi_session
from ansible_collections.ctys.pm.plugins.module_utils._ipmi.retry import POLICY

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


def run_jobs(jobs: Sequence[PowerJob], deadline_seconds: float, wait: bool, check_mode: bool, progress: Optional[guard.Progress] = None) -> None:
    """Log in, read, act and wait for every job; failures stay per job.

    Every job is a :func:`_flow` (a generator of IPMI requests and pauses) driven by one
    :class:`_Driver`: requests go out asynchronously and their answers come back in
    pyghmi's event loop, so a BMC that is slow to answer one command (or whose answer was
    lost or misdelivered) delays only its own job. ``progress`` (keyed by the job's index)
    records the step each job is in, for :func:`run_bounded`'s hard bound.
    """
    driver = _Driver(list(jobs), Deadline(deadline_seconds), wait, check_mode, progress or guard.Progress())
    try:
        logins = _ipmi_session.open_sessions([job.conn for job in jobs], driver.deadline, raw_only=True, on_ready=driver.start, between=driver.tick)
        for index, (job, login) in enumerate(zip(jobs, logins)):
            if login.error is not None:
                job.fail(login.error)
                driver.mark(index, guard.DONE)
        driver.run()
    finally:
        for job in jobs:
            # a BMC that stopped answering would make pyghmi's logout wait for it
            if not isinstance(job.error, PmConnectionError):
                _ipmi_session.logout(job.command)


@dataclass
class Ask:
    """A request of a job's flow: one IPMI command, tried again as ``_ipmi.retry.POLICY`` allows."""

    what: str
    netfn: int
    command: int
    data: Sequence[int] = ()


@dataclass
class Pause:
    """A pause of a job's flow (between two polls of the power state)."""

    seconds: float


Flow = Generator[Any, Any, None]
# an answer must come within the task's deadline; one sent at the very end still gets this long
LAST_ANSWER = 0.5


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


@dataclass
class _Running:
    """A job's flow and what it waits for: an answer (``token``) or a time (``due``)."""

    flow: Flow
    ask: Optional[Ask] = None
    pauses: Any = None  # back-off of the current request's retries
    token: int = 0
    sent: float = 0.0
    due: Optional[float] = None  # resume (or resend) then


class _Driver:
    """Drives every job's flow: sends its requests, feeds it the answers, keeps its pauses."""

    def __init__(self, jobs: List[PowerJob], deadline: Deadline, wait: bool, check_mode: bool, progress: guard.Progress) -> None:
        self.jobs = jobs
        self.deadline = deadline
        self.wait = wait
        self.check_mode = check_mode
        self.progress = progress
        self.running: Dict[int, _Running] = {}
        self.answers: Deque[Tuple[int, int, Optional[List[int]], Optional[PmError]]] = deque()
        self.tokens = 0

    def mark(self, index: int, step: str) -> None:
        if step != guard.DONE:
            self.jobs[index].step = step
        self.progress.step(index, step)

    def start(self, index: int, login: _ipmi_session.Login) -> None:
        job = self.jobs[index]
        job.command = login.command
        self.mark(index, guard.COMMAND)
        flow = _flow(job, self.deadline, self.wait, self.check_mode, lambda step: self.mark(index, step))
        self.running[index] = _Running(flow)
        self._advance(index, None, None)
        self.tick()  # answers already in (a fake answers at once): fed before the next login's work

    def _advance(self, index: int, value: Any, error: Optional[PmError]) -> None:
        """Resume job ``index``'s flow with an answer (or an error) and act on what it asks next."""
        run, job = self.running[index], self.jobs[index]
        try:
            step = run.flow.throw(error) if error is not None else run.flow.send(value)
        except StopIteration:
            self._finish(index)
            return
        except PmError as failure:
            job.fail(failure)
            self._finish(index)
            return
        if isinstance(step, Pause):
            run.ask, run.due = None, time.monotonic() + step.seconds
        else:
            run.ask, run.pauses = step, POLICY.pauses()
            self._send(index)

    def _finish(self, index: int) -> None:
        del self.running[index]
        job = self.jobs[index]
        if job.finished is None:
            job.finished = time.monotonic()
        self.mark(index, guard.DONE)

    def _send(self, index: int) -> None:
        run, job = self.running[index], self.jobs[index]
        ask = run.ask
        if ask is None:
            return
        self.tokens += 1
        run.token, run.sent, run.due = self.tokens, time.monotonic(), None
        token = self.tokens

        def answered(data: Optional[List[int]], error: Optional[PmError]) -> None:
            self.answers.append((index, token, data, error))

        _ipmi_session.send(job.command, job.conn, ask.netfn, ask.command, ask.data, answered)

    def _answer(self, index: int, token: int, data: Optional[List[int]], error: Optional[PmError]) -> None:
        run = self.running.get(index)
        if run is None or run.ask is None or token != run.token:
            return  # a late answer to a request given up on: ignored
        run.token = 0
        if error is None:
            self._advance(index, data, None)
            return
        if POLICY.retry_command(error, self.deadline):
            run.due = time.monotonic() + self.deadline.cap(next(run.pauses, POLICY.longest_pause))  # sent again then
            return
        if error.transient:
            error = error.__class__(f"{run.ask.what} on {self.jobs[index].conn.address} kept failing until the timeout: {error.msg}")
        self._advance(index, None, error)

    def tick(self) -> None:
        """Feed the answers that came in, resume pauses and resend retries that are due, give up on silence."""
        while self.answers:
            self._answer(*self.answers.popleft())
        now = time.monotonic()
        for index in list(self.running):
            run = self.running.get(index)
            if run is None:
                continue
            if run.due is not None and now >= run.due:
                if run.ask is None:
                    self._advance(index, None, None)  # a pause is over
                else:
                    self._send(index)  # a retry is due
            elif run.token and self.deadline.expired and now - run.sent > LAST_ANSWER:
                run.token = 0
                self._advance(index, None, errors.BmcNoAnswerError(
                    f"{run.ask.what if run.ask else 'a command'} on {self.jobs[index].conn.address} got no answer "
                    f"within the timeout of {self.deadline.seconds:g} s; check that the BMC is powered and reachable"
                ))

    def horizon(self) -> float:
        """How long the event loop may sleep before something is due here."""
        now = time.monotonic()
        dues = [run.due - now for run in self.running.values() if run.due is not None]
        if any(run.token for run in self.running.values()) and self.deadline.expired:
            dues.append(0.01)
        return max(0.0, min([0.05, *dues]))

    def run(self) -> None:
        """Drive every started flow until it ends (each is bounded by the task's deadline)."""
        self.tick()
        while self.running:
            _ipmi_session.pump_for(self.horizon())
            self.tick()


def run_bounded(jobs: List[PowerJob], timeout: float, wait: bool, check_mode: bool) -> List[PowerJob]:
    """:func:`run_jobs` under the hard bound (``_bmc.guard``): back by ``timeout`` plus ``guard.GRACE``, whatever pyghmi does.

    Returns the jobs as they are then; a job the deadline cut off fails naming its BMC and its step.
    """
    progress = guard.Progress()
    outcome = guard.bounded(lambda: run_jobs(jobs, timeout, wait, check_mode, progress), timeout, name="ctys-pm-ipmi-power")
    if outcome.finished:
        return jobs
    steps = progress.close()
    now = time.monotonic()
    frozen: List[PowerJob] = []
    for index, job in enumerate(jobs):
        copy = replace(job)  # a snapshot: the abandoned worker may still write to the job
        step = steps.get(index, guard.LOGIN)
        if step != guard.DONE or (copy.error is None and copy.after is None):
            copy.error = PmTimeoutError(guard.cut_off_message(job.conn.address, step, timeout, job.label), step=step)
            copy.finished = now
        frozen.append(copy)
    return frozen


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
    if failed and (fail_on == "any" or (fail_on == "all" and len(failed) == len(results))):
        names = ", ".join(f"{r['name']} ({r['msg']})" for r in failed[:5])
        more = f" and {len(failed) - 5} more" if len(failed) > 5 else ""
        raise PmError(f"{len(failed)} of {len(results)} targets failed: {names}{more}", **result)
    return result
