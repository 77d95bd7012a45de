# Copyright: ctys.pm contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The retry policy of every IPMI exchange: what is retried, how often, with which back-off.

What is transient is decided where a failure arises (``_ipmi.errors``: the
error's class and its ``transient`` flag); this module only decides whether
and when to try again, from that flag and the time left. Logins
(``session.open_sessions``), commands (:func:`attempt`) and the power-state
polls (``power._wait_all``) all ask :data:`POLICY`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Iterator, TypeVar

from ansible_collections.ctys.pm.plugins.module_utils._bmc.options import BmcConnection
from ansible_collections.ctys.pm.plugins.module_utils._deadline import Deadline, backoff
from ansible_collections.ctys.pm.plugins.module_utils._errors import PmError, PmTimeoutError
from ansible_collections.ctys.pm.plugins.module_utils._ipmi.errors import BmcCipherMismatchError

T = TypeVar("T")


@dataclass(frozen=True)
class RetryPolicy:
    """One place for every retry decision of the IPMI layer."""

    first_pause: float = 0.2  # back-off: seconds before the first retry ...
    growth: float = 1.5  # ... growing by this factor ...
    longest_pause: float = 2.0  # ... up to this
    # A login refused for its algorithms is tried at most this often (the first try included): pyghmi's
    # retransmissions can make a BMC refuse a proposal spuriously. Never retried when suite 17 was asked.
    cipher_tries: int = 5
    login_reserve: float = 0.5  # no new login with less than this left of the task (or of connect_timeout)
    command_reserve: float = 0.3  # no new try of a command with less than this left of the task

    def pauses(self) -> Iterator[float]:
        """The pauses between tries: 0.2, 0.3, 0.45, ... up to 2 s."""
        return backoff(self.first_pause, self.growth, self.longest_pause)

    def retry_login(self, error: PmError, *, tries: int, asked_suite: str, task: Deadline, window: Deadline) -> bool:
        """Whether a login that failed with ``error`` after ``tries`` tries is tried again.

        ``window`` is the first login's connect_timeout: a BMC that only times out
        (answers lost) gets no more than that, whatever the task's timeout.
        """
        if not error.transient or task.remaining() <= self.login_reserve:
            return False
        if isinstance(error, BmcCipherMismatchError):
            return asked_suite != "17" and tries < self.cipher_tries
        if isinstance(error, PmTimeoutError):
            return window.remaining() > self.login_reserve
        return True

    def retry_command(self, error: PmError, task: Deadline) -> bool:
        """Whether a command (or a poll) that failed with ``error`` is tried again."""
        return error.transient and task.remaining() >= self.command_reserve


POLICY = RetryPolicy()


def attempt(
    operation: Callable[[], T],
    conn: BmcConnection,
    task: Deadline,
    *,
    what: str,
    wait: Callable[[float], None],
    policy: RetryPolicy = POLICY,
) -> T:
    """Run ``operation``; transient failures are tried again after ``wait(pause)`` while the policy allows."""
    pauses = policy.pauses()
    while True:
        try:
            return operation()
        except PmError as error:
            if not error.transient:
                raise
            if not policy.retry_command(error, task):
                raise error.__class__(f"{what} on {conn.address} kept failing until the timeout: {error.msg}") from None
        wait(task.cap(next(pauses)))
