# Copyright: ctys.pm contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""IPMI sessions over pyghmi, bounded in time, many at once, errors explained.

pyghmi's client is asynchronous underneath: every session of a process is
driven by one event loop (``Session.wait_for_rsp``). We log in to all BMCs of
a task at once with ``onlogon`` callbacks and pump that loop ourselves, so a
login is bounded by ``connect_timeout`` and one dead BMC never delays the
others. Threads are avoided on purpose: pyghmi sessions driven from threads
are 10 to 20 times slower (shared/reference/lab-facts.md). The one exception
is ``_bmc.guard``: all of a task's pyghmi work runs on one worker thread while
the module's thread only waits for the deadline (the hard bound, issue 20).
"""

from __future__ import annotations

import importlib
import random
import struct
import threading
import time
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any, Callable, Dict, Iterator, List, Optional, Sequence

from ansible_collections.ctys.pm.plugins.module_utils._bmc.options import BmcConnection
from ansible_collections.ctys.pm.plugins.module_utils._deadline import Deadline
from ansible_collections.ctys.pm.plugins.module_utils._errors import (
    PmConnectionError,
    PmError,
    PmTimeoutError,
    PmUnsupportedError,
)
from ansible_collections.ctys.pm.plugins.module_utils._ipmi import ciphers, errors
from ansible_collections.ctys.pm.plugins.module_utils._ipmi.retry import POLICY

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
            self.error = errors.login_error(response["error"], self.conn)
        elif command is not None:
            self.command = command
        self.done = True


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
    harden(pyghmi_session)


# Foreign and stale packets, and logins that wait inside each other (issue 20). pyghmi 1.6.19:
# * gives every session the same console session id (``localsid = 2017673555`` in ``_initsession``)
#   and starts every RMCP+ tag at 1, so a RAKP2 or RAKP4 meant for another BMC's session passes its
#   checks and ends the login as "Incorrect password provided" or "wrong Kg?", a permanent failure;
# * turns an open-session, RAKP2 or RAKP4 reply with an error status into a failed login before it
#   compares the session id, so another session's refusal fails this one;
# * asks for the privilege level (the last login step) with a synchronous ``raw_command`` from inside
#   the packet handler of RAKP4, so a BMC that stalls there holds every other session's login, and
#   the waits nest and add up instead of running side by side.
# ``harden`` gives each session its own random id, drops error replies that name another session,
# sends the privilege-level request asynchronously (its answer ends the login in a callback), and
# drops a packet that pyghmi's parsers choke on instead of letting the exception out of the loop.
# A stray packet then costs what a lost one costs: a retransmission.


def _own_id(data: Any, offset: int, session: Any) -> bool:
    """Whether an RMCP+ login reply (payload ``data``) names ``session``'s console session id, or names none."""
    if len(data) < offset + 4:
        return True  # a short refusal names no session: pyghmi's own tag check has to do
    return struct.unpack("<I", bytes(data[offset:offset + 4]))[0] == session.localsid


def _own_ipmi15(session: Any, data: Any) -> bool:
    """Whether an IPMI 1.5 packet carries ``session``'s auth type and session id (pyghmi checks both, too late)."""
    if len(data) < 13:
        return False
    return data[4] == getattr(session, "authtype", None) and struct.unpack("<I", bytes(data[9:13]))[0] == getattr(session, "sessionid", None)


def harden(pyghmi_session: Any) -> None:
    """Put the guards above into pyghmi, once per process."""
    cls = pyghmi_session.Session
    if getattr(cls, "ctys_pm_hardened", False):
        return
    original_init = cls._initsession
    original_rmcp = cls._got_rmcp_response
    original_rakp2 = cls._got_rakp2
    original_rakp4 = cls._got_rakp4

    def _initsession(self: Any) -> None:
        original_init(self)
        self.localsid = random.randint(1, 0xFFFFFFFE)  # pyghmi: 2017673555 for every session

    def _got_rmcp_response(self: Any, data: Any) -> Any:
        return original_rmcp(self, data) if _own_id(data, 4, self) else -9

    def _got_rakp2(self: Any, data: Any) -> Any:
        return original_rakp2(self, data) if _own_id(data, 4, self) else -9

    def _got_rakp4(self: Any, data: Any) -> Any:
        return original_rakp4(self, data) if _own_id(data, 4, self) else -9

    def _req_priv_level(self: Any) -> None:
        self.logged = 1
        self.logoutexpiry = None
        self.maxtimeout = 4  # as pyghmi: switch quickly to the relogin recovery
        self.logontries = 1
        self.ctys_pm_priv_tries = 0
        _send_priv_level(self)

    def _send_priv_level(self: Any) -> None:
        self.ctys_pm_priv_tries += 1
        self.lastresponse = None
        self.ipmicallback = lambda response: _got_priv_level(self, response)
        self._send_ipmi_net_payload(netfn=0x6, command=0x3B, data=[self.privlevel])

    def _got_priv_level(self: Any, response: Dict[str, Any]) -> None:
        code = response.get("code", 0)
        if code:
            if code in (0x80, 0x81) and self.privlevel == 4 and self.ctys_pm_priv_tries < 2:
                self.privlevel = 3  # as pyghmi: some BMCs refuse administrator only here
                _send_priv_level(self)
                return
            self.logged = 0
            self.onlogpayload = None
            self.logging = False
            if code == 0xFFFF:  # pyghmi's own "no answer": its text, so _ipmi.errors sees a transient timeout
                self.onlogon({"error": str(response.get("error") or "timeout")})
                return
            suffix = f" while requesting privelege level {self.privlevel} for {self.userid}"
            text = pyghmi_session.get_ipmi_error(response, suffix=suffix)
            if text:
                self.onlogon({"error": text})
                return
        self.logging = False
        resume = getattr(self, "ctys_pm_callback", None)
        if resume is not None:  # a relogin under a command (pyghmi resends it on logon): its answer is ours
            self.ipmicallback = resume
        with pyghmi_session.util.protect(pyghmi_session.KEEPALIVE_SESSIONS):
            cls.keepalive_sessions[self] = {
                "ipmisession": self,
                "timeout": pyghmi_session._monotonic_time() + pyghmi_session.MAX_IDLE - (random.random() * 4.9),
            }
        self.onlogon({"success": True})

    original_handle = cls._handle_ipmi_packet

    def _handle_ipmi_packet(self: Any, data: Any, sockaddr: Any = None, qent: Any = None) -> Any:
        # a malformed packet (truncated, garbage after a valid header) makes pyghmi's parsers raise
        # IndexError or struct.error out of whichever wait processes it, even inside another BMC's
        # login; dropped here, it costs what a lost packet costs (the fuzz test found this)
        if len(data) > 4 and data[4] in (0, 2) and not _own_ipmi15(self, data):
            # an IPMI 1.5 packet of another session (or another auth type): pyghmi stores its sequence
            # number before it compares the session id, and then drops this session's real replies
            # as "sequence number too low" (the fuzz test found this)
            return -1
        try:
            return original_handle(self, data, sockaddr=sockaddr, qent=qent)
        except (IndexError, KeyError, ValueError, TypeError, struct.error):
            return -1

    cls._handle_ipmi_packet = _handle_ipmi_packet
    cls._initsession = _initsession
    cls._got_rmcp_response = _got_rmcp_response
    cls._got_rakp2 = _got_rakp2
    cls._got_rakp4 = _got_rakp4
    cls._req_priv_level = _req_priv_level
    cls.ctys_pm_hardened = True


def _start_login(factory: Callable[..., Any], conn: BmcConnection, deadline: Deadline) -> Login:
    login = Login(conn, Deadline(deadline.cap(conn.connect_timeout)))
    ciphers.prepare(conn.host, conn.port, ciphers.choose(conn.cipher_suite))
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
        login.error = PmConnectionError(f"cannot reach the BMC at {conn.address}: {error}")  # permanent: not retried
        login.done = True
        return login
    if login.command is None and not login.done:
        login.command = command
    elif login.error is not None:  # refused while pyghmi built the Command: a retry would get this session back
        _purge(command)
    return login


def _retry_login(login: Login, deadline: Deadline, window: Deadline, tries: int) -> bool:
    if login.error is None or login.expired:
        return False
    return POLICY.retry_login(login.error, tries=tries, asked_suite=login.conn.cipher_suite, task=deadline, window=window)


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
    between: Optional[Callable[[], None]] = None,
) -> List[Login]:
    """Log in to every BMC at once; each login is bounded by its connect_timeout.

    A login that failed transiently (out of sessions, busy, an answer lost) is
    tried again as ``_ipmi.retry.POLICY`` allows, with its back-off. Returns one :class:`Login` per
    connection, with ``command`` or ``error``; with ``raw_only`` that is a
    :class:`RawCommand`, which offers ``raw_command`` only. ``on_ready(index,
    login)`` is called for each successful login as soon as it completes, so
    its commands run while the other logins are still under way; ``between()`` is
    called after each turn of the event loop (to feed answers to asynchronous commands).
    """
    factory = _factory(raw_only)
    if factory is not command_factory:
        wake_promptly()
    logins: List[Login] = [_start_login(factory, conn, deadline) for conn in conns]
    schedules = [POLICY.pauses() for _conn in conns]
    retry_at: List[Optional[float]] = [None] * len(conns)
    refusals: List[Optional[PmError]] = [None] * len(conns)
    tries = [1] * len(conns)
    windows = [Deadline(deadline.cap(conn.connect_timeout)) for conn in conns]
    active = set(range(len(conns)))  # logins not yet final
    while active:
        for index in sorted(active):
            item = logins[index]
            due = retry_at[index]
            if due is not None and time.monotonic() >= due:
                retry_at[index] = None
                if deadline.remaining() < POLICY.login_reserve:
                    item.error = _kept_refusing(item.conn, refusals[index])
                    continue
                _purge(item.command)
                # after a timeout, only what is left of the first login's connect_timeout
                budget = windows[index] if isinstance(refusals[index], PmTimeoutError) else deadline
                item = logins[index] = _start_login(factory, item.conn, budget)
            if item.done and retry_at[index] is None and _retry_login(item, deadline, windows[index], tries[index]):
                if refusals[index] is None or not isinstance(item.error, PmTimeoutError):
                    refusals[index] = item.error  # a BMC's own refusal says more than a lost answer
                tries[index] += 1
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
        horizons += [due - time.monotonic() for due in (retry_at[i] for i in active) if due is not None]
        _pump(min(0.05, max(0.0, min(horizons, default=0.0))))
        if between is not None:
            between()
    return logins


def _finish_login(login: Login, deadline: Deadline) -> None:
    if login.error is not None or login.command is None:
        return
    _bound_waits(login.command, deadline)
    refusal = ciphers.refusal_after_login(getattr(login.command, "ipmi_session", None), ciphers.choose(login.conn.cipher_suite), login.conn.address)
    if refusal is not None:
        login.error = refusal
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
    """One raw IPMI command; a non-zero completion code raises the error it is classified as."""
    try:
        # pyghmi retransmits by itself; with retry=False it drops the answer, so a
        # BMC that goes silent mid-session costs pyghmi's own retry time (see docs/notes.md)
        response = command.raw_command(netfn=netfn, command=cmd, data=list(data))
    except Exception as error:  # pyghmi raises IpmiException for broken sessions
        raise errors.exception_error(error, conn) from None
    return _classified(response, conn)  # no answer at all comes back as None


Answered = Callable[[Optional[List[int]], Optional[PmError]], None]


def send(command: Any, conn: BmcConnection, netfn: int, cmd: int, data: Sequence[int], answered: Answered) -> None:
    """Send one raw IPMI command without waiting; ``answered(data, error)`` gets its outcome, classified as :func:`raw` does.

    The answer comes in pyghmi's event loop (:func:`pump_for`), so a BMC slow to answer
    holds no other session. pyghmi retransmits as usual; a session that never answers
    never calls back (the caller's deadline decides). A command object without a pyghmi
    session (the unit tests' fake at ``command_factory``) is answered at once.
    """
    session = getattr(command, "ipmi_session", None)
    if session is None or not hasattr(session, "raw_command"):
        try:
            answered(raw(command, conn, netfn, cmd, data), None)
        except PmError as error:
            answered(None, error)
        return

    def got(response: Any) -> None:
        if getattr(session, "ctys_pm_callback", None) is got:
            session.ctys_pm_callback = None
        session.incommand = False
        try:
            answered(_classified(response, conn), None)
        except PmError as error:
            answered(None, error)

    if getattr(session, "logging", False) and not getattr(session, "logged", True):
        # pyghmi is logging in again (after lost answers); its raw_command would wait for that inside the loop
        answered(None, errors.BmcSessionLostError(f"IPMI with the BMC at {conn.address} failed: the session is logging in again"))
        return
    session.ctys_pm_callback = got  # restored by the hardened privilege-level step after a relogin
    try:
        session.raw_command(netfn=netfn, command=cmd, data=list(data), callback=got)
    except Exception as error:  # pyghmi raises IpmiException for a broken session
        answered(None, errors.exception_error(error, conn))
        return
    # pyghmi keeps incommand until the callback cleans it up; left set, a relogin of this session
    # would wait for it inside the event loop (Session.onlogon -> _cmdwait)
    session.incommand = False


def _classified(response: Any, conn: BmcConnection) -> List[int]:
    if not response:
        raise errors.no_response(conn)
    code = response.get("code", 0)
    if code or response.get("error"):
        raise errors.completion_error(code or errors.completion_code_of(str(response["error"])) or 0xFF, response.get("error"), conn)
    return list(bytearray(response.get("data", b"")))


def pump_for(seconds: float) -> None:
    """Run pyghmi's event loop for up to ``seconds`` (the asynchronous commands' answers come in there)."""
    _pump(seconds)


def wait(seconds: float) -> None:
    """The wait between two tries (``retry.attempt``): pyghmi's loop keeps running for the other sessions."""
    _pump(seconds)
