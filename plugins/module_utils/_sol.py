# Copyright: ctys.pm contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""IPMI Serial-over-LAN: a bounded expect-style conversation with a machine's console.

The transport is pyghmi's SOL ``Console``, driven from this thread only; every
read is bounded by a step timeout and by the task's :class:`Deadline`, so a
console that never answers fails with the output seen so far.
"""

from __future__ import annotations

import re
import shlex
from dataclasses import dataclass, field
from typing import Any, Callable, Dict, List, Optional, Sequence

from ansible_collections.ctys.pm.plugins.module_utils._bmc import BmcConnection
from ansible_collections.ctys.pm.plugins.module_utils._deadline import Deadline, check_seconds
from ansible_collections.ctys.pm.plugins.module_utils._errors import (
    PmAuthError,
    PmConnectionError,
    PmInputError,
    PmStateError,
    PmTimeoutError,
    PmUnsupportedError,
)
from ansible_collections.ctys.pm.plugins.module_utils._ipmi_session import wake_promptly

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


class SolTransport:
    """pyghmi's SOL console, pumped from this thread with bounded waits."""

    def __init__(self, conn: BmcConnection, takeover: bool, console_factory: Optional[Callable[..., Any]] = None) -> None:
        self.conn = conn
        self.takeover = takeover
        self._factory = console_factory
        self._buffer: List[str] = []
        self._errors: List[str] = []
        self._console: Any = None

    def _handler(self, data: Any) -> None:
        if isinstance(data, dict):
            if "error" in data:
                self._errors.append(str(data["error"]))
            return
        if isinstance(data, bytes):
            data = data.decode("utf-8", errors="replace")
        self._buffer.append(str(data))

    def _pump(self, seconds: float) -> None:
        self._console.wait_for_rsp(max(0.0, seconds))
        if self._errors:
            raise self._classify(self._errors[-1])

    def _classify(self, error: str) -> Exception:
        conn = self.conn
        lowered = error.lower()
        if "active for another client" in lowered or "already active" in lowered:
            return PmStateError(
                f"SOL on {conn.address} is held by another client; set takeover: true to take it over"
            )
        if "disabled" in lowered or "not available" in lowered or "unrecognized" in lowered or "invalid command" in lowered:
            return PmUnsupportedError(f"the BMC at {conn.address} offers no Serial-over-LAN console ({error})")
        if "password" in lowered or "unauthorized" in lowered or "user" in lowered or "privilege" in lowered:
            return PmAuthError(
                f"the BMC at {conn.address} refused user '{conn.user}' ({error}); check user, password and privilege"
            )
        if "timeout" in lowered or "timed out" in lowered:
            return PmTimeoutError(f"the BMC at {conn.address} did not answer ({error}); check bmc, port and the network")
        return PmConnectionError(f"SOL with the BMC at {conn.address} failed: {error}")

    def open(self, deadline: Deadline) -> None:
        factory = self._factory
        if factory is None:
            from pyghmi.ipmi import console as pyghmi_console  # controller-side only

            factory = pyghmi_console.Console
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
            raise PmConnectionError(f"cannot reach the BMC at {self.conn.address}: {error}") from None
        while not getattr(self._console, "connected", False):
            if login.expired:
                raise PmTimeoutError(
                    f"the BMC at {self.conn.address} did not open a SOL session within {login.seconds:g} s; "
                    "check bmc, port, credentials and that SOL is enabled"
                )
            self._pump(min(0.2, login.remaining()))

    def send(self, data: bytes) -> None:
        self._console.send_data(data)
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
        result = console_command(kind, conn, params.get("target_host"), params.get("target_user"), int(params.get("vnc_display") or 0))
        result["changed"] = False
        return result

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
