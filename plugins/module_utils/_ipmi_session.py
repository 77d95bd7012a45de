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

import importlib
import threading
import time
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


class RawCommand:
    """What raw IPMI commands need of pyghmi's ``Command``: a logged-in session.

    Importing ``pyghmi.ipmi.command`` loads every OEM handler (about 45 ms per
    task), and its power helpers add a Get Device ID round trip for OEM
    detection. Power and boot control use only standard chassis commands, as
    ipmitool does, so they log in through this instead.
    """

    def __init__(self, *, bmc: str, userid: str, password: str, port: int, kg: Optional[str], privlevel: int,
                 onlogon: Callable[..., None], keepalive: bool = False) -> None:
        from pyghmi.ipmi.private import session as pyghmi_session  # controller-side dependency, imported late

        self.onlogon: Optional[Callable[..., None]] = onlogon
        self.ipmi_session = pyghmi_session.Session(
            bmc=bmc, userid=userid, password=password, port=port, kg=kg, privlevel=privlevel, onlogon=self._logged, keepalive=keepalive
        )
        pyghmi_session.Session.wait_for_rsp(0)  # sends the first login packet, as Command does

    def _logged(self, response: Any) -> None:
        if self.onlogon is not None:
            callback, self.onlogon = self.onlogon, None
            callback(response, self)

    def raw_command(self, netfn: int, command: int, data: Sequence[int] = (), **options: Any) -> Any:
        return self.ipmi_session.raw_command(netfn=netfn, command=command, data=data, **options)


def _factory(raw_only: bool) -> Callable[..., Any]:
    if command_factory is not None:
        return command_factory
    try:
        if raw_only:
            importlib.import_module("pyghmi.ipmi.private.session")  # fail here, not inside a login
            return RawCommand
        from pyghmi.ipmi.command import Command  # controller-side dependency, imported late
    except ImportError as error:
        raise PmUnsupportedError(
            f"IPMI needs the Python library pyghmi where the task runs ({error}); install it there, for example with pip install pyghmi"
        ) from None
    return Command


def pump(seconds: float) -> None:
    """Run pyghmi's event loop for at most ``seconds``."""
    from pyghmi.ipmi.private import session as pyghmi_session

    try:
        pyghmi_session.Session.wait_for_rsp(max(0.0, seconds))
    except Exception:  # see below
        # pyghmi raises "Session no longer connected" out of its event loop for whichever
        # session broke while pumping; that session's own next command reports it with its BMC
        # named, so here it must not abort every other BMC's work.
        pass


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
    expired: bool = False  # used up its own connect_timeout
    events: List[Dict[str, Any]] = field(default_factory=list)

    def on_logon(self, response: Any, command: Any = None) -> None:
        if isinstance(response, dict) and response.get("error"):
            self.error = classify_ipmi_error(response["error"], self.conn)
        elif command is not None:
            self.command = command
        self.done = True


# BMCs (host, port) for which cipher suite 3 was asked: pyghmi proposes suite 17 first and only
# falls back on a refusal. Setting its choice after Command() is too late (the first proposal is
# already on the wire, and a late refusal of it then ends the login), so the proposal is made
# suite 3 from the start, in pyghmi's request builder, for these BMCs only.
_SUITE_3_ONLY: set = set()


def _propose_suite_3_where_asked() -> None:
    try:
        from pyghmi.ipmi.private import session as pyghmi_session
    except ImportError:  # the factory reports the missing library
        return
    original = pyghmi_session.Session._open_rmcpplus_request
    if getattr(original, "ctys_pm_patched", False):
        return

    def open_request(self: Any) -> Any:
        if (getattr(self, "bmc", None), getattr(self, "port", None)) in _SUITE_3_ONLY:
            self.attemptedhash = 1  # HMAC-SHA1: suite 3
        return original(self)

    open_request.ctys_pm_patched = True  # type: ignore[attr-defined]
    pyghmi_session.Session._open_rmcpplus_request = open_request


# pyghmi's waits can miss their wake-up: an answer that arrives between a session's look at its
# packet queue and its registration with pyghmi's I/O thread stays queued until the wait times out
# (0.5 to 1 s, pyghmi's retransmission timer). Sequential logins stalled on about one packet in 100
# that way, and a fleet of 100 BMCs took 2 to 5 s instead of under 1 s. This wait registers first
# and looks at the queues afterwards, which closes that window; WAIT_SLICE only bounds the cost if
# another one exists. It replaces ``pyghmi.ipmi.private.session._io_wait`` of pyghmi 1.6.19.
WAIT_SLICE = 0.05


def _answer_queued(pyghmi_session: Any, myaddr: Any) -> bool:
    if myaddr is None:
        return bool(pyghmi_session.sessionqueue)
    handlers = pyghmi_session.Session.bmc_handlers.get(myaddr) or {}
    return any(getattr(session, "pktqueue", None) for session in list(handlers.values()))


def wake_promptly() -> None:
    """Put the wait above into pyghmi, once per process (pm_ipmi_power, pm_sensors and pm_console use it)."""
    try:
        from pyghmi.ipmi.private import session as pyghmi_session
    except ImportError:  # the factory reports the missing library
        return
    if getattr(pyghmi_session._io_wait, "ctys_pm_patched", False):
        return

    def prompt_wait(timeout: float, myaddr: Any = None, evq: Any = None) -> None:
        if _answer_queued(pyghmi_session, myaddr):
            return
        event = threading.Event()
        if evq is not None:
            evq.append(event)
        deadline = timeout + pyghmi_session._monotonic_time()
        pyghmi_session.ioqueue.append((deadline, event, myaddr))  # the I/O thread sets it on an answer or at the deadline
        if _answer_queued(pyghmi_session, myaddr):
            return  # came in while we registered: the I/O thread may already have looked
        if deadline < pyghmi_session.selectdeadline:  # its select() would sleep past our deadline: wake it, as pyghmi does
            wake = pyghmi_session.iosockets[0]
            wake.sendto(b"\x01", (pyghmi_session.myself, wake.getsockname()[1]))
        event.wait(min(timeout, WAIT_SLICE))

    prompt_wait.ctys_pm_patched = True  # type: ignore[attr-defined]
    pyghmi_session._io_wait = prompt_wait


def _start_login(factory: Callable[..., Any], conn: BmcConnection, deadline: Deadline) -> Login:
    login = Login(conn, Deadline(deadline.cap(conn.connect_timeout)))
    if conn.cipher_suite == "3":
        _SUITE_3_ONLY.add((conn.host, conn.port))
        _propose_suite_3_where_asked()
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
        return login
    if login.command is None and not login.done:
        login.command = command
    return login


# A login that pyghmi gave up on while the BMC is alive is tried again, with back-off, while the
# task's time lasts: "out of sessions" and "busy" refusals, pyghmi's own timeouts on a lossy path,
# and (twice at most) a cipher mismatch that pyghmi's retransmissions cause by changing their
# proposal. A login that used up its own connect_timeout is not retried, and neither are auth errors.
_LOGIN_RETRY_MARKERS = ("no free session", "insufficient resources", "busy")
_CIPHER_RETRIES = 4


def _login_worth_retrying(login: Login, deadline: Deadline, window: Deadline, attempts: int) -> bool:
    """``window`` is the first login's connect_timeout: a BMC that only times out gets no more than that."""
    if login.error is None or login.expired or isinstance(login.error, PmAuthError) or deadline.remaining() <= 0.5:
        return False
    if isinstance(login.error, PmUnsupportedError):
        return login.conn.cipher_suite != "17" and attempts <= _CIPHER_RETRIES
    if isinstance(login.error, PmTimeoutError):
        return window.remaining() > 0.5
    return any(marker in login.error.msg.lower() for marker in _LOGIN_RETRY_MARKERS)


def _kept_refusing(conn: BmcConnection, refusal: Optional[PmError]) -> PmError:
    if isinstance(refusal, PmTimeoutError):
        return PmTimeoutError(
            f"the BMC at {conn.address} did not complete login within connect_timeout {conn.connect_timeout:g} s, "
            "tried more than once (answers were lost); check the network to the BMC, or raise connect_timeout"
        )
    reason = refusal.msg if refusal is not None else "refused"
    return PmConnectionError(f"login to the BMC at {conn.address} kept being refused until the timeout: {reason}")


def open_sessions(
    conns: Sequence[BmcConnection],
    deadline: Deadline,
    *,
    raw_only: bool = False,
    on_ready: Optional[Callable[[int, Login], None]] = None,
) -> List[Login]:
    """Log in to every BMC at once; each login is bounded by its connect_timeout.

    Logins refused for lack of sessions or because the BMC is busy are retried
    with back-off until ``deadline``. Returns one :class:`Login` per
    connection, with ``command`` or ``error``; with ``raw_only`` that is a
    :class:`RawCommand`, which offers ``raw_command`` only. ``on_ready(index,
    login)`` is called for each successful login as soon as it completes, so
    its commands run while the other logins are still under way.
    """
    factory = _factory(raw_only)
    if factory is not command_factory:
        wake_promptly()
    logins: List[Login] = [_start_login(factory, conn, deadline) for conn in conns]
    schedules = [backoff(0.2, 1.5, 2.0) for _conn in conns]
    retry_at: List[Optional[float]] = [None] * len(conns)
    refusals: List[Optional[PmError]] = [None] * len(conns)
    attempts = [1] * len(conns)
    windows = [Deadline(deadline.cap(conn.connect_timeout)) for conn in conns]
    active = set(range(len(conns)))  # logins not yet final
    while active:
        for index in sorted(active):
            item = logins[index]
            if retry_at[index] is not None and time.monotonic() >= retry_at[index]:
                retry_at[index] = None
                if deadline.remaining() < 0.5:
                    item.error = _kept_refusing(item.conn, refusals[index])
                    continue
                _purge(item.command)
                # after a timeout, only what is left of the first login's connect_timeout
                budget = windows[index] if isinstance(refusals[index], PmTimeoutError) else deadline
                item = logins[index] = _start_login(factory, item.conn, budget)
            if item.done and retry_at[index] is None and _login_worth_retrying(item, deadline, windows[index], attempts[index]):
                if refusals[index] is None or not isinstance(item.error, PmTimeoutError):
                    refusals[index] = item.error  # a BMC's own refusal says more than a lost answer
                attempts[index] += 1
                retry_at[index] = time.monotonic() + deadline.cap(next(schedules[index]))
            if not item.done and item.deadline.expired:
                refused = refusals[index]
                item.error = _kept_refusing(item.conn, refused) if refused else PmTimeoutError(
                    f"the BMC at {item.conn.address} did not complete login within {item.deadline.seconds:g} s; "
                    "check bmc, port, the network and that the BMC is powered"
                )
                item.done = True
                item.expired = True
                _forget(item.command)
                item.command = None
            if item.done and retry_at[index] is None:
                active.discard(index)
                _finish_login(item, deadline)
                if on_ready is not None and item.error is None:
                    on_ready(index, item)
        if not active:
            break
        horizons = [logins[i].deadline.remaining() for i in active if not logins[i].done]
        horizons += [retry_at[i] - time.monotonic() for i in active if retry_at[i] is not None]
        _pump(min(0.05, max(0.0, min(horizons, default=0.0))))
    return logins


def _finish_login(login: Login, deadline: Deadline) -> None:
    if login.error is not None or login.command is None:
        return
    _bound_waits(login.command, deadline)
    if login.conn.cipher_suite == "17":
        session = getattr(login.command, "ipmi_session", None)
        if getattr(session, "currhashlen", 16) != 16:
            login.error = PmUnsupportedError(
                f"the BMC at {login.conn.address} does not offer cipher suite 17; use cipher_suite: auto or 3"
            )
            logout(login.command)
            login.command = None


def _bound_waits(command: Any, deadline: Deadline) -> None:
    """Make pyghmi give up on an unanswered command when the task's time is up.

    pyghmi waits up to twice its ``_getmaxtimeout()`` (about 30 s) for an answer,
    retransmitting; a BMC that goes silent mid-session would hold the task that
    long whatever its ``timeout``. Its per-session value is capped here by what
    is left of the task (never below 1 s, so a retransmission still happens).
    """
    session = getattr(command, "ipmi_session", None)
    original = getattr(session, "_getmaxtimeout", None)
    if session is None or original is None:
        return

    def capped() -> float:
        return max(1.0, min(original(), deadline.remaining() / 2))

    session._getmaxtimeout = capped


def _purge(command: Any) -> None:
    """Remove a refused login from pyghmi's session tables.

    pyghmi hands a new Command for the same BMC the old session if it is still
    listed as logging in, and that one never finishes: a retry must start clean.
    """
    session = getattr(command, "ipmi_session", None)
    if session is None:
        return
    _forget(command)
    cls = type(session)
    for key, value in list(getattr(cls, "initting_sessions", {}).items()):
        if value is session:
            del cls.initting_sessions[key]
    for handlers in getattr(cls, "bmc_handlers", {}).values():
        for port, value in list(handlers.items()):
            if value is session:
                del handlers[port]


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
