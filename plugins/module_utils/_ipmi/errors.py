# Copyright: ctys.pm contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""IPMI failures, classified once, where they arise, into typed errors.

A failure is classified by what the BMC or pyghmi reported: the RMCP+ status
code of a refused login, the completion code of a command, the type of an
exception. Each becomes one of the collection's :class:`PmError` subclasses,
whose ``transient`` flag tells the retry policy (``_ipmi.retry``) whether
trying again may help. Nothing here or later searches a message for words: the
operator's message (which names the BMC) is written after the class is chosen.

pyghmi hands a refused login over as text only (``onlogon({'error': ...})``),
made from its own table ``constants.rmcp_codes`` plus fixed suffixes; that text
is looked up *exactly* in pyghmi's table to get the status code back
(:func:`rmcp_status_of`). ``tests/unit/plugins/module_utils/test_ipmi_pyghmi_internals.py``
fails if pyghmi changes that vocabulary.
"""

from __future__ import annotations

import socket
from typing import Any, Dict, Optional

from ansible_collections.ctys.pm.plugins.module_utils._bmc.options import BmcConnection
from ansible_collections.ctys.pm.plugins.module_utils._errors import (
    PmAuthError,
    PmConnectionError,
    PmError,
    PmTimeoutError,
    PmUnsupportedError,
)


class BmcBusyError(PmConnectionError):
    """The BMC is alive but cannot serve the command now (completion code 0xC0 node busy, 0xC3)."""

    transient = True


class BmcOutOfSessionsError(PmConnectionError):
    """The BMC refused a login for lack of sessions (RMCP+ status 0x01 or 0x0B)."""

    transient = True


class BmcNoAnswerError(PmTimeoutError):
    """No answer came (pyghmi's timeout, completion code 0xFFFF, or a socket timeout)."""

    transient = True


class BmcSessionLostError(PmConnectionError):
    """pyghmi dropped the session under a command ("Session no longer connected")."""

    transient = True


class BmcCipherMismatchError(PmUnsupportedError):
    """The BMC refused the proposed algorithms (RMCP+ status 0x04 to 0x07, 0x10, 0x11).

    Transient because pyghmi's retransmissions can cause a spurious refusal; the
    retry policy tries it a few times only, and never when suite 17 was asked.
    """

    transient = True


# RMCP+ and RAKP status codes (IPMI 2.0 table 13-15)
RMCP_OUT_OF_SESSIONS = (0x01, 0x0B)
RMCP_BAD_ROLE = (0x09, 0x0A)
RMCP_UNKNOWN_USER = 0x0D
RMCP_CIPHER = (0x04, 0x05, 0x06, 0x07, 0x10, 0x11)
# completion codes (IPMI 2.0 table 5-2); 0xFFFF is pyghmi's own code for "no answer"
CC_NODE_BUSY = 0xC0
CC_PROCESSING_TIMEOUT = 0xC3
CC_NOT_PRESENT = 0xCB
CC_PRIVILEGE = 0xD4
CC_NO_ANSWER = 0xFFFF

# pyghmi's fixed texts (pyghmi.ipmi.private.session, 1.6.x) for what has no code
PYGHMI_BAD_PASSWORD = "Incorrect password provided"
PYGHMI_BAD_KG = "Invalid RAKP4 integrity code (wrong Kg?)"
PYGHMI_TIMEOUT = "timeout"
PYGHMI_SESSION_LOST = "Session no longer connected"
RMCP_SUFFIXES = (" in RAKP2", " reported in RAKP4")  # pyghmi appends these to rmcp_codes texts
# ... and these to completion-code texts (util.get_ipmi_error) of the login's own commands
PYGHMI_LOGIN_SUFFIXES = (" while trying to get channel authentication capabalities", " while getting session challenge")

_TABLES: Dict[str, Dict[str, int]] = {}  # pyghmi's texts -> codes, filled on first use


def _table(name: str) -> Dict[str, int]:
    if not _TABLES:
        try:
            from pyghmi.ipmi.private import constants  # controller-side dependency, imported late
        except ImportError:  # no pyghmi, no pyghmi texts to look up
            return {}
        rmcp: Dict[str, int] = {f"Unrecognized RMCP code {code}": code for code in range(256)}
        for code, text in sorted(constants.rmcp_codes.items(), reverse=True):  # 6 and 7 share a text: keep 6
            rmcp[text] = code
        _TABLES["rmcp"] = rmcp
        _TABLES["completion"] = {text: code for code, text in constants.ipmi_completion_codes.items()}
    return _TABLES[name]


def _without(text: str, suffixes: Any) -> str:
    for suffix in suffixes:
        if text.endswith(suffix):
            return text[: -len(suffix)]
    return text


def rmcp_status_of(text: str) -> Optional[int]:
    """The RMCP+ status code pyghmi turned into ``text`` (an exact look-up in pyghmi's table), else None."""
    return _table("rmcp").get(_without(text, RMCP_SUFFIXES))


def completion_code_of(text: str) -> Optional[int]:
    """The completion code pyghmi turned into ``text`` (exact look-up), else None."""
    if text == PYGHMI_TIMEOUT:
        return CC_NO_ANSWER
    return _table("completion").get(text)


def _privilege(conn: BmcConnection, text: str) -> PmAuthError:
    return PmAuthError(
        f"the BMC at {conn.address} refused privilege '{conn.privilege}' for user '{conn.user}' ({text}); "
        "check the user's privilege limit or set privilege to what the user may have"
    )


def _no_answer(conn: BmcConnection, text: str) -> BmcNoAnswerError:
    return BmcNoAnswerError(
        f"the BMC at {conn.address} did not answer ({text}); check bmc, port, that the BMC is powered and reachable"
    )


def login_error(text: Any, conn: BmcConnection) -> PmError:
    """A refused login, as pyghmi's ``onlogon`` reports it."""
    text = str(text).strip() or "refused"
    if text == PYGHMI_BAD_PASSWORD:
        return PmAuthError(f"the BMC at {conn.address} refused the password of user '{conn.user}' ({text}); check password and kg")
    if text == PYGHMI_BAD_KG:
        return PmAuthError(f"the BMC at {conn.address} refused the key ({text}); check kg")
    code = completion_code_of(_without(text, PYGHMI_LOGIN_SUFFIXES))  # a command of the login got a completion code
    if code:
        return completion_error(code, text, conn)
    status = rmcp_status_of(text)
    if status in RMCP_OUT_OF_SESSIONS:
        return BmcOutOfSessionsError(f"the BMC at {conn.address} has no free session ({text}); close other sessions or retry later")
    if status in RMCP_BAD_ROLE:
        return _privilege(conn, text)
    if status == RMCP_UNKNOWN_USER:
        return PmAuthError(f"the BMC at {conn.address} does not know user '{conn.user}' ({text}); check user")
    if status in RMCP_CIPHER:
        return BmcCipherMismatchError(
            f"the BMC at {conn.address} rejected cipher suite '{conn.cipher_suite}' ({text}); try cipher_suite: auto or 3"
        )
    return PmConnectionError(f"IPMI with the BMC at {conn.address} failed: {text}")


def completion_error(code: int, text: Optional[str], conn: BmcConnection) -> PmError:
    """A command answered with completion code ``code`` (non-zero); the error keeps it as ``completion_code``."""
    error = _completion_error(code, text, conn)
    error.completion_code = code  # callers decide by the code, never by the text
    return error


def _completion_error(code: int, text: Optional[str], conn: BmcConnection) -> PmError:
    detail = f"{text} (completion code {code:#x})" if text else f"completion code {code:#x}"
    if code == CC_NO_ANSWER:
        return _no_answer(conn, text or "timeout")
    if code == CC_NODE_BUSY:
        return BmcBusyError(f"IPMI with the BMC at {conn.address} failed: node busy, {detail}")
    if code == CC_PROCESSING_TIMEOUT:
        return BmcBusyError(f"IPMI with the BMC at {conn.address} failed: {detail}")
    if code == CC_PRIVILEGE:
        return _privilege(conn, f"insufficient privilege, {detail}")
    return PmConnectionError(f"IPMI with the BMC at {conn.address} failed: {detail}")


def no_response(conn: BmcConnection) -> BmcNoAnswerError:
    """pyghmi returned nothing at all for a command."""
    return _no_answer(conn, "timeout waiting for a response")


def exception_error(error: BaseException, conn: BmcConnection, what: str = "") -> PmError:
    """An exception raised by pyghmi or the socket layer under a command or a login."""
    if isinstance(error, PmError):
        return error
    prefix = f"{what}: " if what else ""
    text = str(error).strip() or error.__class__.__name__
    code = getattr(error, "ipmicode", 0) or completion_code_of(text)  # pyghmi.exceptions.IpmiException
    if code:
        return completion_error(code, prefix + text, conn)
    if getattr(error, "ipmicode", None) is not None and text == PYGHMI_SESSION_LOST:
        return BmcSessionLostError(f"IPMI with the BMC at {conn.address} failed: {prefix}{text}")
    if isinstance(error, (socket.timeout, TimeoutError)):
        return _no_answer(conn, prefix + text)
    if isinstance(error, OSError):
        return PmConnectionError(f"cannot reach the BMC at {conn.address}: {prefix}{text}")
    return PmConnectionError(f"IPMI with the BMC at {conn.address} failed: {prefix}{text}")
