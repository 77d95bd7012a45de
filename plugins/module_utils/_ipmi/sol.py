# Copyright: ctys.pm contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""IPMI Serial-over-LAN: a bounded expect-style conversation with a machine's console.

The transport is pyghmi's SOL ``Console``, driven from this thread only; every
read is bounded by a step timeout and by the task's :class:`Deadline`, so a
console that never answers fails with the output seen so far.

Failures are classified where they arise, as ``_ipmi.errors`` does for
sessions: pyghmi's Console hands every failure to its output handler as text,
so :func:`reporting_console` adds to each report the phase it arose in (login,
payload activation, running session) and the completion code the BMC gave the
activation; :func:`classify` decides from those, never from words in the text.
"""

from __future__ import annotations

import re
import shlex
from dataclasses import dataclass, field
from typing import Any, Callable, Dict, List, Optional, Sequence

from ansible_collections.ctys.pm.plugins.module_utils._bmc.options import BmcConnection
from ansible_collections.ctys.pm.plugins.module_utils._deadline import Deadline, check_seconds
from ansible_collections.ctys.pm.plugins.module_utils._errors import (
    PmConnectionError,
    PmError,
    PmInputError,
    PmStateError,
    PmTimeoutError,
    PmUnsupportedError,
)
from ansible_collections.ctys.pm.plugins.module_utils._ipmi import errors
from ansible_collections.ctys.pm.plugins.module_utils._ipmi.session import wake_promptly

# CSI sequences, OSC strings (BEL or ST terminated), and two-byte escapes.
_ANSI = re.compile(r"\x1b\[[0-?]*[ -/]*[@-~]|\x1b\][^\x07\x1b]*(?:\x07|\x1b\\)|\x1b[@-Z\\-_]")
_ESCAPES = {"r": "\r", "n": "\n", "t": "\t", "e": "\x1b", "\\": "\\", "0": "\x00"}
CONSOLE_TYPES = ("sol", "ssh", "xterm", "gnome-terminal", "emacs", "vnc")


def strip_ansi(text: str) -> str:
    """Remove terminal escape sequences and carriage returns (line ends become plain newlines)."""
    return _ANSI.sub("", text).replace("\r\n", "\n").replace("\r", "")


def decode_keys(text: str, option: str = "send") -> bytes:
    r"""Turn ``send`` text into the bytes typed on the console.

    ``\r``, ``\n``, ``\t``, ``\e``, ``\\``, ``\xNN`` are escapes; ``^C`` (any
    letter or ``[\]^_@?``) is the control key; ``^^`` is a literal caret.
    """
    out = bytearray()
    index = 0
    while index < len(text):
        char = text[index]
        if char == "\\" and index + 1 < len(text):
            nxt = text[index + 1]
            if nxt in _ESCAPES:
                out += _ESCAPES[nxt].encode()
                index += 2
                continue
            if nxt == "x" and re.match(r"[0-9a-fA-F]{2}", text[index + 2:index + 4]):
                out.append(int(text[index + 2:index + 4], 16))
                index += 4
                continue
            raise PmInputError(
                f"{option} '{text}' has an unknown escape '\\{nxt}'; use \\r, \\n, \\t, \\e, \\\\ or \\xNN"
            )
        if char == "^" and index + 1 < len(text):
            nxt = text[index + 1]
            if nxt == "^":
                out += b"^"
            elif nxt == "?":
                out.append(0x7F)
            elif nxt.upper() in "@ABCDEFGHIJKLMNOPQRSTUVWXYZ[\\]_":
                out.append(ord(nxt.upper()) & 0x1F)
            else:
                raise PmInputError(
                    f"{option} '{text}' has an unknown control key '^{nxt}'; use ^A to ^Z, ^[ or ^^ for a caret"
                )
            index += 2
            continue
        out += char.encode("utf-8")
        index += 1
    return bytes(out)


@dataclass
class Step:
    """One turn of the conversation: send something, then wait for a pattern."""

    send: Optional[bytes]
    expect: Optional["re.Pattern[str]"]
    timeout: float
    label: str = ""

    @classmethod
    def from_option(cls, index: int, raw: Dict[str, Any], default_timeout: float) -> "Step":
        where = f"steps[{index}]"
        unknown = sorted(set(raw) - {"send", "expect", "timeout"})
        if unknown:
            raise PmInputError(f"{where} has unknown key '{unknown[0]}'; use send, expect and timeout")
        send = raw.get("send")
        expect = raw.get("expect")
        if send is None and expect is None:
            raise PmInputError(f"{where} '{raw}' does nothing; give it send, expect or both")
        pattern = None
        if expect is not None:
            try:
                pattern = re.compile(str(expect), re.MULTILINE)
            except re.error as error:
                raise PmInputError(f"{where}.expect '{expect}' is not a valid regular expression ({error}); fix the pattern") from None
        timeout = check_seconds(f"{where}.timeout", raw.get("timeout", default_timeout), 3600, "10")
        data = decode_keys(str(send), f"{where}.send") if send is not None else None
        label = str(expect) if expect is not None else str(send)
        return cls(send=data, expect=pattern, timeout=timeout, label=label)


@dataclass
class Conversation:
    """What happened on the console during the task."""

    raw_output: str = ""
    sent_bytes: int = 0
    steps: List[Dict[str, Any]] = field(default_factory=list)
    matched_until: bool = False

    def output(self, raw: bool) -> str:
        return self.raw_output if raw else strip_ansi(self.raw_output)


# Where a SOL failure arose (the "phase" of a console's error report)
LOGIN = "login"  # the RMCP+ login: pyghmi's onlogon text, classified by _ipmi.errors.login_error
ACTIVATE = "activate"  # Activate Payload (and the take-over's Deactivate Payload): a completion code
SESSION = "session"  # after activation: the session or the payload ended
# Activate Payload completion codes (IPMI 2.0 section 24.1)
SOL_ACTIVE_ELSEWHERE = 0x80
SOL_DISABLED = 0x81
SOL_SESSION_LIMIT = 0x82
SOL_ENCRYPTION = (0x83, 0x84)  # cannot activate with / without encryption
CC_INVALID_COMMAND = 0xC1

_REPORTING_CONSOLE: List[type] = []


def reporting_console() -> type:
    """pyghmi's SOL ``Console``, whose error reports also carry ``phase`` and ``code``.

    ``Console._got_session`` runs the activation and turns its completion code
    into text before ``_print_error`` hands it on; the subclass records the
    code from the Activate Payload answer as it comes in
    (``test_sol.py`` drives pyghmi's own ``_got_session`` to notice a change).
    """
    if not _REPORTING_CONSOLE:
        from pyghmi.ipmi import console as pyghmi_console  # controller-side only

        class ReportingConsole(pyghmi_console.Console):
            ctys_phase = LOGIN
            ctys_code: Optional[int] = None

            def _got_session(self, response: Dict[str, Any]) -> None:
                session = self.ipmi_session
                if "error" in response or not session:  # a failed login, or pyghmi defers the call
                    return super()._got_session(response)
                self.ctys_phase = ACTIVATE
                command = session.raw_command

                def raw_command(*args: Any, **kwargs: Any) -> Any:
                    answer = command(*args, **kwargs)
                    self.ctys_code = answer.get("code") or None
                    return answer

                session.raw_command = raw_command
                try:
                    super()._got_session(response)
                finally:
                    try:
                        del session.raw_command  # pyghmi's own method again
                    except AttributeError:  # a take-over's nested call has restored it already
                        pass
                if self.connected:
                    self.ctys_phase = SESSION
                return None

            def _print_error(self, error: Any) -> None:
                report = dict(error) if isinstance(error, dict) else {"error": error}
                report.setdefault("phase", self.ctys_phase)
                report.setdefault("code", self.ctys_code if self.ctys_phase == ACTIVATE else None)
                super()._print_error(report)

        _REPORTING_CONSOLE.append(ReportingConsole)
    return _REPORTING_CONSOLE[0]


def activation_error(code: Optional[int], text: str, conn: BmcConnection) -> PmError:
    """Activate Payload failed with completion code ``code`` (None: no code, pyghmi's ``text`` only)."""
    if code is None:
        code = errors.completion_code_of(text)  # pyghmi's "timeout" and its completion-code texts, looked up exactly
    if code == SOL_ACTIVE_ELSEWHERE:
        return PmStateError(f"SOL on {conn.address} is held by another client; set takeover: true to take it over")
    if code in (SOL_DISABLED, CC_INVALID_COMMAND):
        return PmUnsupportedError(f"the BMC at {conn.address} offers no Serial-over-LAN console ({text})")
    if code == SOL_SESSION_LIMIT:
        return PmStateError(f"the BMC at {conn.address} has no free SOL session ({text}); close another SOL session")
    if code in SOL_ENCRYPTION:
        return PmUnsupportedError(f"the BMC at {conn.address} refused SOL with encryption ({text}); enable encrypted SOL on the BMC")
    if code:
        return errors.completion_error(code, text, conn)
    return PmConnectionError(f"SOL with the BMC at {conn.address} failed: {text}")


def classify(report: Dict[str, Any], conn: BmcConnection) -> PmError:
    """A console's error report (``error`` text, ``phase``, ``code``) as a typed error."""
    text = str(report.get("error") or "").strip() or "refused"
    phase = report.get("phase")
    if phase == LOGIN:
        return errors.login_error(text, conn)
    if phase == ACTIVATE:
        return activation_error(report.get("code"), text, conn)
    if phase == SESSION:
        return errors.BmcSessionLostError(f"the SOL session with the BMC at {conn.address} ended ({text}); run the task again")
    return PmConnectionError(f"SOL with the BMC at {conn.address} failed: {text}")


class SolTransport:
    """pyghmi's SOL console, pumped from this thread with bounded waits."""

    def __init__(self, conn: BmcConnection, takeover: bool, console_factory: Optional[Callable[..., Any]] = None) -> None:
        self.conn = conn
        self.takeover = takeover
        self._factory = console_factory
        self._buffer: List[str] = []
        self._errors: List[Dict[str, Any]] = []
        self._console: Any = None

    def _handler(self, data: Any) -> None:
        if isinstance(data, dict):
            if "error" in data:
                self._errors.append(data)
            return
        if isinstance(data, bytes):
            data = data.decode("utf-8", errors="replace")
        self._buffer.append(str(data))

    def _pump(self, seconds: float) -> None:
        self._console.wait_for_rsp(max(0.0, seconds))
        if self._errors:
            raise classify(self._errors[0], self.conn)  # the first report is the cause, later ones its echoes

    def open(self, deadline: Deadline) -> None:
        factory = self._factory
        if factory is None:
            factory = reporting_console()
            wake_promptly()  # console output is not left waiting in pyghmi's queue
        login = Deadline(deadline.cap(self.conn.connect_timeout))
        try:
            self._console = factory(
                bmc=self.conn.host,
                userid=self.conn.user,
                password=self.conn.password,
                iohandler=self._handler,
                port=self.conn.port,
                force=self.takeover,
                kg=self.conn.kg,
            )
        except Exception as error:  # pyghmi raises bare exceptions for DNS and socket errors
            raise errors.exception_error(error, self.conn) from None
        while not getattr(self._console, "connected", False):
            if login.expired:
                raise PmTimeoutError(
                    f"the BMC at {self.conn.address} did not open a SOL session within {login.seconds:g} s; "
                    "check bmc, port, credentials and that SOL is enabled"
                )
            self._pump(min(0.2, login.remaining()))

    def send(self, data: bytes) -> None:
        try:
            self._console.send_data(data)
        except Exception as error:  # pyghmi raises IpmiException once the session is gone, after reporting it
            if self._errors:
                raise classify(self._errors[0], self.conn) from None
            raise errors.exception_error(error, self.conn, "sending to the SOL console") from None
        self._pump(0)

    def read(self, seconds: float) -> str:
        """Whatever arrives within ``seconds`` (returns early once data is there)."""
        self._pump(seconds)
        text = "".join(self._buffer)
        self._buffer.clear()
        return text

    def close(self) -> None:
        if self._console is not None:
            try:
                self._console.close()
                self._console.wait_for_rsp(0.2)
            except Exception:  # closing a broken session must not mask the real result
                pass


def converse(transport: Any, steps: Sequence[Step], deadline: Deadline, check_mode: bool = False) -> Conversation:
    """Run the steps in order; fail on the first expect that does not come in time."""
    talk = Conversation()
    for step in steps:
        if step.send is not None and not check_mode:
            transport.send(step.send)
            talk.sent_bytes += len(step.send)
        if step.expect is None or check_mode:
            talk.steps.append({"step": step.label, "matched": None})
            continue
        step_deadline = Deadline(deadline.cap(step.timeout))
        window = ""
        while True:
            match = step.expect.search(strip_ansi(window))
            if match:
                talk.steps.append({"step": step.label, "matched": match.group(0)})
                break
            if step_deadline.expired:
                reason = "the task timeout" if deadline.expired else f"{step.timeout:g} s"
                raise PmTimeoutError(
                    f"expect '{step.expect.pattern}' did not appear within {reason}",
                    output=strip_ansi(talk.raw_output),
                    steps=talk.steps,
                    sent_bytes=talk.sent_bytes,
                )
            chunk = transport.read(min(0.1, step_deadline.remaining()))
            window += chunk
            talk.raw_output += chunk
    return talk


def capture(transport: Any, duration: float, until: Optional["re.Pattern[str]"], deadline: Deadline) -> Conversation:
    """Record the console for ``duration`` seconds or until ``until`` matches."""
    talk = Conversation()
    window = Deadline(deadline.cap(duration))
    while not window.expired:
        talk.raw_output += transport.read(min(0.1, window.remaining()))
        if until is not None and until.search(strip_ansi(talk.raw_output)):
            talk.matched_until = True
            break
    return talk


def console_command(kind: str, conn: Optional[BmcConnection], target: Optional[str], target_user: Optional[str], display: int) -> Dict[str, Any]:
    """The command a person runs to attach interactively (never run here).

    For ``sol`` the password travels in the environment (``ipmitool -E`` reads
    ``IPMI_PASSWORD``), never on the command line.
    """
    if kind not in CONSOLE_TYPES:
        raise PmInputError(f"console_command '{kind}' is not valid; use one of {', '.join(CONSOLE_TYPES)}")
    if kind == "sol":
        if conn is None:
            raise PmInputError("console_command 'sol' needs bmc; set bmc to the BMC's address")
        argv = ["ipmitool", "-I", "lanplus", "-H", conn.host, "-p", str(conn.port), "-U", conn.user, "-E"]
        if conn.cipher_suite not in ("auto",):
            argv += ["-C", conn.cipher_suite]
        argv += ["-L", conn.privilege.upper(), "sol", "activate"]
        return {"argv": argv, "command": shlex.join(argv), "environment": ["IPMI_PASSWORD"]}
    if not target:
        raise PmInputError(f"console_command '{kind}' needs target_host; set it to the machine's address")
    login = f"{target_user}@{target}" if target_user else target
    ssh = ["ssh", "-t", login]
    if kind == "ssh":
        argv = ssh
    elif kind == "xterm":
        argv = ["xterm", "-T", target, "-e"] + ssh
    elif kind == "gnome-terminal":
        argv = ["gnome-terminal", "--title", target, "--"] + ssh
    elif kind == "emacs":
        argv = ssh + ["emacs", "-nw", "-f", "shell"]
    else:  # vnc
        argv = ["vncviewer", f"{target}:{display}"]
    return {"argv": argv, "command": shlex.join(argv), "environment": []}


def _log(path: str, host: str, text: str) -> None:
    import datetime
    import os

    directory = os.path.dirname(path)
    if directory and not os.path.isdir(directory):
        raise PmInputError(f"log_file '{path}' is in a folder that does not exist; create {directory} first")
    stamp = datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds")
    with open(path, "a", encoding="utf-8") as stream:
        stream.write(f"--- {stamp} SOL {host}\n{text}")
        if text and not text.endswith("\n"):
            stream.write("\n")


def run_console(
    params: Dict[str, Any],
    check_mode: bool = False,
    transport_factory: Optional[Callable[[BmcConnection, bool], Any]] = None,
) -> Dict[str, Any]:
    """The pm_console backend: validate, then command line, script or capture."""
    total = check_seconds("timeout", params.get("timeout", 120), 86400, "120")
    kind = params.get("console_command")
    if kind:
        conn = BmcConnection.from_params(params) if (params.get("bmc") or kind == "sol") else None
        command = console_command(kind, conn, params.get("target_host"), params.get("target_user"), int(params.get("vnc_display") or 0))
        command["changed"] = False
        return command

    conn = BmcConnection.from_params(params)
    raw_steps = params.get("steps")
    capturing = bool(params.get("capture"))
    if not raw_steps and not capturing:
        raise PmInputError("steps is empty and capture is false; give steps, set capture: true, or use console_command")
    steps = [Step.from_option(i, step, 30.0) for i, step in enumerate(raw_steps or [])]
    duration = check_seconds("duration", params.get("duration", 10), 86400, "10") if capturing else 0.0
    until = None
    if params.get("until"):
        try:
            until = re.compile(params["until"], re.MULTILINE)
        except re.error as error:
            raise PmInputError(f"until '{params['until']}' is not a valid regular expression ({error}); fix the pattern") from None

    deadline = Deadline(float(total))
    factory = transport_factory or SolTransport
    transport = factory(conn, bool(params.get("takeover", True)))
    raw = bool(params.get("raw"))
    log_file = params.get("log_file")
    talk = Conversation()
    try:
        transport.open(deadline)
        if capturing:
            talk = capture(transport, duration, until, deadline)
        else:
            talk = converse(transport, steps, deadline, check_mode=check_mode)
    except PmTimeoutError as error:
        if log_file and error.result.get("output"):
            _log(log_file, conn.address, error.result["output"])
        raise
    finally:
        transport.close()
    output = talk.output(raw)
    if log_file and not check_mode:
        _log(log_file, conn.address, output)
    result: Dict[str, Any] = {"changed": talk.sent_bytes > 0, "output": output, "sent_bytes": talk.sent_bytes}
    if capturing:
        result["matched"] = talk.matched_until
    else:
        result["steps"] = talk.steps
        if check_mode:
            result["would_send_bytes"] = sum(len(step.send or b"") for step in steps)
            result["changed"] = result["would_send_bytes"] > 0
    return result
