# Copyright: ctys.pm contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The hard bound of every task that talks to a BMC: it returns by ``timeout`` plus :data:`GRACE`.

The work (pyghmi logins, commands, waits; later Redfish requests) runs on a
daemon worker thread; the module's own thread waits on an event with the
deadline and nothing else, so no library call that blocks or spins can keep
the task past its bound. The work records per target which step it is in
(:class:`Progress`, thread-safe); when the deadline passes the module's thread
closes the record, so late updates are ignored, and reports every target
that did not finish with its host, port and step. The worker is abandoned:
it is a daemon thread (as is pyghmi's I/O thread), so it does not keep the
process alive once the module has written its result.

Used by pm_ipmi_power (``_ipmi.power``), pm_sensors with ``source: ipmi``
(``_ipmi.sensors``) and pm_console (``_ipmi.sol`` through :func:`bounded`).
"""

from __future__ import annotations

import sys
import threading
from dataclasses import dataclass
from typing import Any, Callable, Dict, Generic, Hashable, Optional, TypeVar

T = TypeVar("T")

# What the task may take beyond ``timeout``: the work's own deadline is ``timeout``, its clean-up
# (logouts) and the module's result writing get this much more before the work is abandoned.
GRACE = 1.0

LOGIN = "login"
COMMAND = "command"
WAITING = "waiting for the state"
DONE = "done"


class Progress:
    """The step each target is in, written by the worker, read by the module's thread at the deadline."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._steps: Dict[Hashable, str] = {}
        self._closed = False

    def step(self, key: Hashable, step: str) -> None:
        with self._lock:
            if not self._closed:
                self._steps[key] = step

    def get(self, key: Hashable, default: str = LOGIN) -> str:
        with self._lock:
            return self._steps.get(key, default)

    def close(self) -> Dict[Hashable, str]:
        """Freeze the record (later updates are ignored) and return it."""
        with self._lock:
            self._closed = True
            return dict(self._steps)

    @property
    def closed(self) -> bool:
        with self._lock:
            return self._closed


@dataclass
class Outcome(Generic[T]):
    """What :func:`bounded` got: the work's value, or ``finished`` False if the deadline came first."""

    finished: bool
    value: Optional[T] = None


def bounded(work: Callable[[], T], seconds: float, *, grace: float = GRACE, name: str = "ctys-pm-bmc-work") -> Outcome[T]:
    """Run ``work()`` on a daemon thread; return its outcome, or ``finished=False`` after ``seconds + grace``.

    An exception raised by ``work`` is raised here, in the caller's thread.
    """
    done = threading.Event()
    box: Dict[str, Any] = {}

    def worker() -> None:
        try:
            box["value"] = work()
        except BaseException:  # handed to the waiting thread, raised there
            box["error"] = sys.exc_info()[1]
        finally:
            done.set()

    thread = threading.Thread(target=worker, name=name, daemon=True)
    thread.start()
    if not done.wait(max(0.0, seconds) + grace):
        return Outcome(False)
    error = box.get("error")
    if error is not None:
        raise error
    return Outcome(True, box.get("value"))


def cut_off_message(address: str, step: str, seconds: float, what: str = "") -> str:
    """The message of a target the deadline cut off: host and port, the step, the remedy."""
    subject = f"{what} ({address})" if what and what != address else f"the BMC at {address}"
    return (
        f"{subject} was cut off at the task's timeout of {seconds:g} s during step '{step}'; "
        "the BMC did not complete it in time: check the BMC, or raise timeout (and connect_timeout for login)"
    )
