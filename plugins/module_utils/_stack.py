# Copyright: ctys.pm contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""pm_stack's backend: ctys-PM CANCEL for the guests of one host (the VM stack).

``stopped`` asks every selected running guest to shut down at once, then polls
each hypervisor's real state until all are off or ``timeout`` runs out; then
``force`` destroys the rest (ctys FORCE), or the task fails naming each guest
still running. ``saved`` suspends to disk where the hypervisor can (ctys
SUSPEND/S4; elsewhere it shuts down, as ctys maps S4 to S5). ``started`` is the
way back. A guest counts as stopped only when its hypervisor says it is off.
"""

from __future__ import annotations

import functools
import threading
import time
from dataclasses import dataclass
from fnmatch import fnmatchcase
from typing import Any, Callable, Dict, List, Optional, Tuple

from ansible_collections.ctys.pm.plugins.module_utils._deadline import Deadline, backoff, check_seconds, sleep_within
from ansible_collections.ctys.pm.plugins.module_utils._errors import PmConnectionError, PmError, PmInputError, PmStateError, invalid_option
from ansible_collections.ctys.pm.plugins.module_utils._hypervisors import Backend, Commands, discover, import_libvirt
from ansible_collections.ctys.pm.plugins.module_utils._hypervisors_parse import Guest

STATES = ("query", "stopped", "saved", "started")
FORCE_WAIT = 30.0  # seconds a destroyed guest gets to be reported off
REQUEST_JOIN = 30.0  # seconds to wait for a non-blocking request command to return
BLOCKING_JOIN = 0.5  # seconds a blocking request (vmrun stop soft, qm shutdown) gets before it goes on in the background


@dataclass
class Tracked:
    """A guest this task acts on: how it was, how it is now, what happened."""

    backend: Backend
    before: Guest
    now: Guest
    action: str = ""  # shutdown, save, start
    error: str = ""
    outcome: str = ""  # stopped, saved, forced, started

    @property
    def label(self) -> str:
        return f"'{self.before.name}' ({self.before.hypervisor}, {self.now.state})"


def _patterns(params: Dict[str, Any], option: str, default: List[str]) -> List[str]:
    values = params.get(option)
    if not values:  # an empty include means no restriction, as leaving it out
        return default
    for value in values:
        if not isinstance(value, str) or not value:
            raise invalid_option(option, value, "use name patterns such as 'web*' or 'db?'")
    return list(values)


def _selected(guest: Guest, names: Optional[List[str]], include: List[str], exclude: List[str]) -> bool:
    if names is not None and guest.name not in names:
        return False
    if not any(fnmatchcase(guest.name, pattern) for pattern in include):
        return False
    return not any(fnmatchcase(guest.name, pattern) for pattern in exclude)


def _gone(guest: Guest) -> Guest:
    """vmrun and xl list only running guests: one that left the list is off."""
    return Guest(guest.hypervisor, guest.name, guest.key, "shut off", "not listed", None)


class Stack:
    """The hypervisors of this host and their guests."""

    def __init__(self, found: List[Tuple[Backend, List[Guest]]]) -> None:
        self.found = found

    def guests(self) -> List[Tuple[Backend, Guest]]:
        return [(backend, guest) for backend, guests in self.found for guest in guests]

    def refresh(self, tracked: List[Tracked]) -> Optional[str]:
        """Read every involved hypervisor again; returns the last listing error (the wait goes on)."""
        problem = None
        for backend in {id(t.backend): t.backend for t in tracked}.values():
            try:
                listing = {g.key: g for g in backend.list()}
            except PmConnectionError as error:
                problem = error.msg
                continue
            for item in tracked:
                if item.backend is backend:
                    item.now = listing.get(item.before.key) or _gone(item.now)
        return problem


def _in_parallel(jobs: List[Tuple[Tracked, Callable[[], None]]], join: Deadline) -> None:
    """Run each request in its own thread, all at once, and wait for them to return.

    Requests that block until the guest is off (vmrun stop soft, qm shutdown) get
    half a second, then carry on in the background: the poll watches the real state.
    """
    threads = []

    def attempt(item: Tracked, call: Callable[[], None]) -> None:
        try:
            call()
        except PmError as error:
            item.error = error.msg

    for item, call in jobs:
        thread = threading.Thread(target=attempt, args=(item, call), daemon=True)
        thread.start()
        threads.append((item, thread))
    blocking = Deadline(BLOCKING_JOIN)
    for item, thread in threads:
        thread.join(blocking.cap(BLOCKING_JOIN) if item.backend.blocking_requests else join.cap(REQUEST_JOIN))


def _wait(stack: Stack, tracked: List[Tracked], done: Callable[[Guest], bool], deadline: Deadline,
          sleeper: Callable[[float], None]) -> Optional[str]:
    """Poll the real state until every tracked guest is ``done`` or the deadline passes."""
    problem = None
    intervals = backoff(first=0.2, factor=1.5, ceiling=0.5)  # a process per look with virsh: cheap enough
    while True:
        pending = [t for t in tracked if not done(t.now)]
        if not pending or deadline.expired:
            return problem
        sleep_within(deadline, next(intervals), sleeper)
        problem = stack.refresh(pending)


def _off(guest: Guest) -> bool:
    return not guest.running


def _on(guest: Guest) -> bool:
    return guest.running and guest.state != "paused"


def _names(tracked: List[Tracked], outcome: str) -> List[str]:
    return [t.before.name for t in tracked if t.outcome == outcome]


def _diff(before: List[Guest], after: Dict[Tuple[str, str], str]) -> Dict[str, str]:
    def render(states: List[Tuple[str, str, str]]) -> str:
        return "".join(f"{hv}/{name}: {state}\n" for hv, name, state in states)

    return {
        "before": render([(g.hypervisor, g.name, g.state) for g in before]),
        "after": render([(g.hypervisor, g.name, after.get((g.hypervisor, g.key), g.state)) for g in before]),
    }


def run(
    params: Dict[str, Any],
    commands: Commands,
    check_mode: bool = False,
    diff: bool = False,
    libvirt_loader: Callable[[], Any] = import_libvirt,
    clock: Callable[[], float] = time.monotonic,
    sleeper: Callable[[float], None] = time.sleep,
) -> Dict[str, Any]:
    started_at = clock()
    state = params.get("state") or "query"
    if state not in STATES:
        raise invalid_option("state", state, f"use one of {', '.join(STATES)}")
    timeout = check_seconds("timeout", 300 if params.get("timeout") is None else params.get("timeout"), 86400, "300")
    include = _patterns(params, "include", ["*"])
    exclude = _patterns(params, "exclude", [])
    names = params.get("names")
    if names is not None:
        names = [str(name) for name in names]
        if not names:
            raise PmInputError("names is empty; leave it out to select every guest, or give the guests' exact names")
    force = bool(params.get("force"))

    found, notes = discover(commands, params.get("uri"), params.get("hypervisors"), libvirt_loader)
    stack = Stack(found)
    selected = [(b, g) for b, g in stack.guests() if _selected(g, names, include, exclude)]
    before = [g for _b, g in selected]
    result: Dict[str, Any] = {
        "changed": False,
        "hypervisors": [b.name for b, _g in found],
        "guests_before": [g.result() for g in before],
        "stopped": [],
        "saved": [],
        "forced": [],
        "started": [],
        "remaining": [],
    }
    if notes:
        result["notes"] = notes
    if names is not None:
        missing = [name for name in names if name not in {g.name for g in before}]
        if missing and state == "started":
            known = ", ".join(sorted({g.name for _b, g in stack.guests()})) or "none"
            raise PmStateError(f"guest(s) {', '.join(repr(n) for n in missing)} not found on this host (guests: {known}); check names and uri")
        result["not_found"] = missing

    def finish(tracked: List[Tracked]) -> Dict[str, Any]:
        after = {(t.before.hypervisor, t.before.key): t.now.state for t in tracked}
        result["guests"] = [(next((t.now for t in tracked if t.before is g), g)).result() for g in before]
        for outcome in ("stopped", "saved", "forced", "started"):
            result[outcome] = _names(tracked, outcome)
        errors = [{"name": t.before.name, "hypervisor": t.before.hypervisor, "error": t.error} for t in tracked if t.error]
        if errors:
            result["request_errors"] = errors
        if diff:
            result["diff"] = _diff(before, after)
        result["elapsed"] = round(clock() - started_at, 3)
        return result

    if state == "query":
        result["guests"] = result["guests_before"]
        result["elapsed"] = round(clock() - started_at, 3)
        return result

    if state == "started":
        wanted = [Tracked(b, g, g, "start") for b, g in selected if not _on(g) and g.state != "inaccessible"]
    else:
        wanted = [Tracked(b, g, g, "save" if state == "saved" and b.can_save else "shutdown") for b, g in selected if g.running]
    result["changed"] = bool(wanted)
    if check_mode:
        key = {"stopped": "would_stop", "saved": "would_save", "started": "would_start"}[state]
        result[key] = [t.before.name for t in wanted]
        predicted = {"shutdown": "shut off", "save": "saved", "start": "running"}
        after = {(t.before.hypervisor, t.before.key): predicted[t.action] for t in wanted}
        if diff:
            result["diff"] = _diff(before, after)
        result["guests"] = result["guests_before"]
        result["elapsed"] = round(clock() - started_at, 3)
        return result
    if not wanted:
        return finish([])

    warnings = [f"{t.backend.name} cannot save guests to disk; '{t.before.name}' is shut down instead"
                for t in wanted if state == "saved" and t.action == "shutdown"]
    if warnings:
        result["warnings"] = warnings
    deadline = Deadline(timeout, clock)
    actions = {
        "shutdown": lambda t: (lambda: None) if t.before.state == "shutting down" else (lambda: t.backend.shutdown(t.before, timeout)),
        "save": lambda t: lambda: t.backend.save(t.before),
        "start": lambda t: lambda: t.backend.start(t.before),
    }
    _in_parallel([(t, actions[t.action](t)) for t in wanted], deadline)
    done = _on if state == "started" else _off
    problem = _wait(stack, wanted, done, deadline, sleeper)
    for item in wanted:
        if done(item.now):
            item.outcome = {"shutdown": "stopped", "save": "saved", "start": "started"}[item.action]

    late = [t for t in wanted if not t.outcome]
    if late and force and state != "started":
        _in_parallel([(t, functools.partial(t.backend.destroy, t.before)) for t in late], Deadline(FORCE_WAIT, clock))
        problem = _wait(stack, late, _off, Deadline(FORCE_WAIT, clock), sleeper) or problem
        for item in late:
            if _off(item.now):
                item.outcome = "forced"
        late = [t for t in late if not t.outcome]
    if late:
        result["remaining"] = [{"name": t.before.name, "hypervisor": t.before.hypervisor, "state": t.now.state} for t in late]
        finish(wanted)
        result["changed"] = any(t.outcome for t in wanted)
        detail = ", ".join(t.label + (f" [{t.error}]" if t.error else "") for t in late)
        if problem:
            detail += f"; last listing error: {problem}"
        if state == "started":
            raise PmStateError(f"{len(late)} guest(s) not running after timeout {timeout:g} s: {detail}; see the hypervisor's log", **result)
        if force:
            raise PmStateError(f"{len(late)} guest(s) still run after being destroyed: {detail}; the hypervisor refuses to stop them", **result)
        raise PmStateError(
            f"{len(late)} guest(s) still run after timeout {timeout:g} s: {detail}; set force: true to destroy them, or allow a longer timeout",
            **result,
        )
    return finish(wanted)
