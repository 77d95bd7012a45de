# Copyright: ctys.pm contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Many BMCs at once on pyghmi's event loop: every job is a flow of IPMI requests and pauses.

A *job* is any object with ``conn`` (BmcConnection), ``label``, ``command`` (the
logged-in pyghmi object, set here), ``error``, ``step``, ``finished`` and
``fail(error)``. A *flow* is a generator that yields :class:`Ask` (one IPMI
command; the answer's data bytes are sent back into it, a failure is thrown into
it) or :class:`Pause`, and ends when the job is done; a :class:`PmError` it
raises fails its job. :func:`run_jobs` logs in to every job's BMC concurrently
and drives all flows with one :class:`Driver`: requests go out asynchronously
and their answers come back in pyghmi's event loop, so a BMC that is slow to
answer one command (or whose answer was lost or misdelivered) delays only its
own job. Used by ``_ipmi.power`` and ``_ipmi.info``.
"""

from __future__ import annotations

import copy
import time
from collections import deque
from dataclasses import dataclass
from typing import Any, Callable, Deque, Dict, Generator, List, Optional, Protocol, Sequence, Tuple, TypeVar

from ansible_collections.ctys.pm.plugins.module_utils._bmc import guard
from ansible_collections.ctys.pm.plugins.module_utils._bmc.options import BmcConnection
from ansible_collections.ctys.pm.plugins.module_utils._deadline import Deadline
from ansible_collections.ctys.pm.plugins.module_utils._errors import PmConnectionError, PmError, PmTimeoutError
from ansible_collections.ctys.pm.plugins.module_utils._ipmi import errors
from ansible_collections.ctys.pm.plugins.module_utils._ipmi import session as _ipmi_session
from ansible_collections.ctys.pm.plugins.module_utils._ipmi.retry import POLICY


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
Mark = Callable[[str], None]
# builds job ``job``'s flow once it is logged in; ``mark(step)`` records the step it is in
FlowFactory = Callable[[Any, Mark], Flow]
# an answer must come within the task's deadline; one sent at the very end still gets this long
LAST_ANSWER = 0.5


class Job(Protocol):
    """What a flow's job has (``_ipmi.power.PowerJob``, ``_ipmi.info.InfoJob``)."""

    conn: BmcConnection
    label: str
    command: Any
    error: Optional[PmError]
    step: str
    finished: Optional[float]

    def fail(self, error: PmError) -> None:
        """Record ``error`` as the job's outcome."""


J = TypeVar("J", bound=Job)


@dataclass
class _Running:
    """A job's flow and what it waits for: an answer (``token``) or a time (``due``)."""

    flow: Flow
    ask: Optional[Ask] = None
    pauses: Any = None  # back-off of the current request's retries
    token: int = 0
    sent: float = 0.0
    due: Optional[float] = None  # resume (or resend) then


class Driver:
    """Drives every job's flow: sends its requests, feeds it the answers, keeps its pauses."""

    def __init__(self, jobs: List[Any], deadline: Deadline, factory: FlowFactory, progress: guard.Progress) -> None:
        self.jobs = jobs
        self.deadline = deadline
        self.factory = factory
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
        flow = self.factory(job, lambda step: self.mark(index, step))
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
            kept = error.__class__(f"{run.ask.what} on {self.jobs[index].conn.address} kept failing until the timeout: {error.msg}")
            kept.completion_code = error.completion_code
            error = kept
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


def run_jobs(jobs: Sequence[Any], deadline: Deadline, factory: FlowFactory, progress: Optional[guard.Progress] = None,
             raw_only: bool = True) -> None:
    """Log in to every job's BMC and drive its flow; failures stay per job.

    ``progress`` (keyed by the job's index) records the step each job is in, for the hard bound.
    """
    driver = Driver(list(jobs), deadline, factory, progress or guard.Progress())
    try:
        logins = _ipmi_session.open_sessions([job.conn for job in jobs], deadline, raw_only=raw_only, on_ready=driver.start, between=driver.tick)
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


def frozen(jobs: Sequence[J], steps: Dict[Any, str], timeout: float, complete: Callable[[J], bool]) -> List[J]:
    """Snapshots of ``jobs`` after the hard bound cut the work off (``_bmc.guard``).

    The abandoned worker may still write to the jobs, so each is copied; a job that was not done
    (or done without an outcome, ``complete`` false and no error) fails naming its BMC and its step.
    """
    now = time.monotonic()
    copies: List[J] = []
    for index, job in enumerate(jobs):
        snapshot = copy.copy(job)
        step = steps.get(index, guard.LOGIN)
        if step != guard.DONE or (snapshot.error is None and not complete(snapshot)):
            snapshot.error = PmTimeoutError(guard.cut_off_message(job.conn.address, step, timeout, job.label), step=step)
            snapshot.finished = now
        copies.append(snapshot)
    return copies


def completion_code(error: Optional[BaseException]) -> Optional[int]:
    """The IPMI completion code a command failed with (``_ipmi.errors.completion_error``), or None."""
    return error.completion_code if isinstance(error, PmError) else None
