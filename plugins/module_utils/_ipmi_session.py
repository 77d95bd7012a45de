# Copyright: ctys.pm contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""IPMI sessions over pyghmi, bounded in time, many at once, errors explained.

pyghmi's client is asynchronous underneath: every session of a process is
driven by one event loop (``Session.wait_for_rsp``). We log in to all BMCs of
a task at once with ``onlogon`` callbacks and pump that loop ourselves, so a
login is bounded by ``connect_timeout`` and one dead BMC never delays the
others. Threads are avoided on purpose: pyghmi sessions driven from threads
are 10 to 20 times slower (shared/reference/lab-facts.md).
"""

from __future__ import annotations

from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any, Callable, Dict, Iterator, List, Optional, Sequence, TypeVar

from ansible_collections.ctys.pm.plugins.module_utils._bmc import BmcConnection
from ansible_collections.ctys.pm.plugins.module_utils._deadline import Deadline, backoff
from ansible_collections.ctys.pm.plugins.module_utils._errors import (
    PmAuthError,
    PmConnectionError,
    PmError,
    PmTimeoutError,
    PmUnsupportedError,
)

T = TypeVar("T")
PRIVILEGE_LEVELS = {"user": 2, "operator": 3, "administrator": 4}

# The seam for unit tests: replaced by a fake with pyghmi Command's interface.
command_factory: Optional[Callable[..., Any]] = None


def _factory() -> Callable[..., Any]:
    if command_factory is not None:
        return command_factory
    from pyghmi.ipmi.command import Command  # controller-side dependency, imported late

    return Command


def pump(seconds: float) -> None:
    """Run pyghmi's event loop for at most ``seconds``."""
    from pyghmi.ipmi.private import session as pyghmi_session

    pyghmi_session.Session.wait_for_rsp(max(0.0, seconds))


_pump: Callable[[float], None] = pump

TRANSIENT_MARKERS = (
    "timeout",
    "timed out",
    "insufficient resources",
    "node busy",
    "busy",
    "session no longer connected",
    "connection lost",
    "temporarily",
)
AUTH_MARKERS = ("password", "unauthorized name", "unauthorized role", "privilege", "invalid role", "authentication")


def is_transient(text: str) -> bool:
    lowered = text.lower()
    return any(marker in lowered for marker in TRANSIENT_MARKERS) and not any(m in lowered for m in AUTH_MARKERS)


def classify_ipmi_error(error: Any, conn: BmcConnection) -> PmError:
    """Turn a pyghmi error (exception or text) into the collection's error with a clear sentence."""
    text = str(error).strip() or error.__class__.__name__
    lowered = text.lower()
    if "password" in lowered:
        return PmAuthError(
            f"the BMC at {conn.address} refused the password of user '{conn.user}' ({text}); check password and kg"
        )
    if "unauthorized name" in lowered:
        return PmAuthError(f"the BMC at {conn.address} does not know user '{conn.user}' ({text}); check user")
    if any(marker in lowered for marker in ("privilege", "unauthorized role", "invalid role", "0xd4")):
        return PmAuthError(
            f"the BMC at {conn.address} refused privilege '{conn.privilege}' for user '{conn.user}' ({text}); "
            "check the user's privilege limit or set privilege to what the user may have"
        )
    if "insufficient resources" in lowered:
        return PmConnectionError(
            f"the BMC at {conn.address} has no free session ({text}); close other sessions or retry later"
        )
    if "timeout" in lowered or "timed out" in lowered:
        return PmTimeoutError(
            f"the BMC at {conn.address} did not answer ({text}); check bmc, port, that the BMC is powered and reachable"
        )
    if "cipher" in lowered or "no matching" in lowered:
        return PmUnsupportedError(
            f"the BMC at {conn.address} rejected cipher suite '{conn.cipher_suite}' ({text}); try cipher_suite: auto or 3"
        )
    return PmConnectionError(f"IPMI with the BMC at {conn.address} failed: {text}")


@dataclass
class Login:
    """One asynchronous login in progress."""

    conn: BmcConnection
    deadline: Deadline
    command: Any = None
    error: Optional[PmError] = None
    done: bool = False
    events: List[Dict[str, Any]] = field(default_factory=list)

    def on_logon(self, response: Any, command: Any = None) -> None:
        if isinstance(response, dict) and response.get("error"):
            self.error = classify_ipmi_error(response["error"], self.conn)
        elif command is not None:
            self.command = command
        self.done = True


def open_sessions(conns: Sequence[BmcConnection], deadline: Deadline) -> List[Login]:
    """Log in to every BMC at once; each login is bounded by its connect_timeout.

    Returns one :class:`Login` per connection, with ``command`` or ``error``.
    """
    factory = _factory()
    logins: List[Login] = []
    for conn in conns:
        login = Login(conn, Deadline(deadline.cap(conn.connect_timeout)))
        logins.append(login)
        try:
            command = factory(
                bmc=conn.host,
                userid=conn.user,
                password=conn.password,
                port=conn.port,
                kg=conn.kg,
                privlevel=PRIVILEGE_LEVELS[conn.privilege],
                onlogon=login.on_logon,
                keepalive=False,
            )
        except Exception as error:  # pyghmi raises plain exceptions for DNS and socket errors
            login.error = PmConnectionError(f"cannot reach the BMC at {conn.address}: {error}")
            login.done = True
            continue
        if conn.cipher_suite == "3":
            session = getattr(command, "ipmi_session", None)
            if session is not None and hasattr(session, "attemptedhash"):
                session.attemptedhash = 1  # propose HMAC-SHA1 (suite 3) first
        if login.command is None and not login.done:
            login.command = command
    while True:
        pending = [item for item in logins if not item.done]
        if not pending:
            break
        for item in pending:
            if item.deadline.expired:
                item.error = PmTimeoutError(
                    f"the BMC at {item.conn.address} did not complete login within {item.deadline.seconds:g} s; "
                    "check bmc, port, the network and that the BMC is powered"
                )
                item.done = True
                _forget(item.command)
                item.command = None
        if all(item.done for item in logins):
            break
        _pump(min(0.05, max(0.0, min(item.deadline.remaining() for item in logins if not item.done))))
    for item in logins:
        if item.error is None and item.command is not None and item.conn.cipher_suite == "17":
            session = getattr(item.command, "ipmi_session", None)
            if getattr(session, "currhashlen", 16) != 16:
                item.error = PmUnsupportedError(
                    f"the BMC at {item.conn.address} does not offer cipher suite 17; use cipher_suite: auto or 3"
                )
                logout(item.command)
                item.command = None
    return logins


def _forget(command: Any) -> None:
    """Drop a session that never logged in so pyghmi stops retrying it."""
    session = getattr(command, "ipmi_session", None)
    if session is None:
        return
    try:
        session.broken = True
        session.logged = 0
    except Exception:  # best effort: the process ends with the module anyway
        pass


def logout(command: Any) -> None:
    if command is None:
        return
    try:
        command.ipmi_session.logout()
    except Exception:  # a failed logout must not hide the task's result
        pass


@contextmanager
def ipmi_session(conn: BmcConnection, deadline: Deadline) -> Iterator[Any]:
    """A logged-in pyghmi Command for ``conn``; logs out at exit."""
    login = open_sessions([conn], deadline)[0]
    if login.error is not None:
        raise login.error
    try:
        yield login.command
    finally:
        logout(login.command)


def raw(command: Any, conn: BmcConnection, netfn: int, cmd: int, data: Sequence[int] = ()) -> List[int]:
    """One raw IPMI command; completion codes other than 0 raise a classified error."""
    try:
        # pyghmi retransmits by itself; with retry=False it drops the answer, so a
        # BMC that goes silent mid-session costs pyghmi's own retry time (see docs/notes.md)
        response = command.raw_command(netfn=netfn, command=cmd, data=list(data))
    except Exception as error:  # pyghmi raises IpmiException for broken sessions
        raise classify_ipmi_error(error, conn) from None
    if not response:  # no answer at all comes back as None
        raise classify_ipmi_error("timeout waiting for a response", conn)
    code = response.get("code", 0)
    if response.get("error") or code:
        text = response.get("error") or f"completion code {code:#x}"
        if code == 0xD4:
            text = f"insufficient privilege (completion code 0xd4): {text}"
        elif code == 0xC0:
            text = f"node busy (completion code 0xc0): {text}"
        raise classify_ipmi_error(text, conn)
    return list(bytearray(response.get("data", b"")))


def call_with_retries(operation: Callable[[], T], conn: BmcConnection, deadline: Deadline, *, what: str) -> T:
    """Run ``operation``, retrying transient faults with back-off until the deadline."""
    schedule = backoff(0.2, 1.5, 2.0)
    while True:
        try:
            return operation()
        except PmError as error:
            if isinstance(error, PmAuthError) or not is_transient(error.msg) or deadline.remaining() < 0.3:
                if is_transient(error.msg) and not isinstance(error, PmAuthError):
                    raise error.__class__(f"{what} on {conn.address} kept failing until the timeout: {error.msg}") from None
                raise
        _pump(deadline.cap(next(schedule)))
