# Copyright: ctys.pm contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Redfish failures, classified once, where they arise, into typed errors.

A failure is classified by what happened (the exception type of the socket or
TLS layer, the HTTP status, the ``MessageId`` values of a Redfish error body),
never by searching a message for words. Each class says whether trying again
may help (``transient``); the operator's message, which always names the BMC's
host and port, is written after the class was chosen.
"""

from __future__ import annotations

import json
from typing import Any, Dict, List, Optional, Sequence, Tuple, Type, TypeVar

from ansible_collections.ctys.pm.plugins.module_utils._errors import (
    PmAuthError,
    PmConnectionError,
    PmError,
    PmStateError,
    PmTimeoutError,
    PmUnsupportedError,
)

E = TypeVar("E", bound=PmError)

# the last part of a MessageId ("IDRAC.2.8.SYS518" -> "SYS518"): vendors version the prefix
BUSY_MESSAGES = frozenset({"SYS518", "InvalidOperationForSystemState", "ServiceTemporarilyUnavailable"})
SESSIONS_FULL_MESSAGES = frozenset({"SessionLimitExceeded", "RAC0218"})


class RedfishUnreachableError(PmConnectionError):
    """No TCP connection: refused, no route, unknown name."""

    refused: bool = False


class RedfishRefusedError(RedfishUnreachableError):
    """The TCP connection was refused: nothing listens on that port."""

    refused = True


class RedfishNoAnswerError(PmTimeoutError):
    """The connection, the TLS handshake or an answer did not come in time."""

    transient = True


class RedfishTlsError(PmConnectionError):
    """The BMC's certificate was refused (chain or host name verification, or the pinned fingerprint)."""


class RedfishHandshakeError(PmConnectionError):
    """TLS failed for another reason than the certificate (the port does not speak TLS, protocol mismatch)."""


class RedfishReplyError(PmConnectionError):
    """An HTTP answer that is not success; ``status`` and ``message_ids`` say what it was."""

    status: int = 0
    message_ids: Tuple[str, ...] = ()
    retry_after: Optional[float] = None


class RedfishBusyError(RedfishReplyError):
    """503, or a vendor's busy reply (iDRAC SYS518, iLO InvalidOperationForSystemState): try again later."""

    transient = True


class RedfishSessionsFullError(RedfishBusyError):
    """The session table is full (SessionLimitExceeded, iDRAC RAC0218): log in with basic auth instead."""


class RedfishNotJsonError(RedfishReplyError):
    """The answer is not a JSON document: not a Redfish service."""


class RedfishAuthError(PmAuthError):
    """401 or 403."""

    status: int = 0
    message_ids: Tuple[str, ...] = ()


class RedfishNotFoundError(PmUnsupportedError):
    """404: the BMC has no such resource."""

    status: int = 404
    message_ids: Tuple[str, ...] = ()


class RedfishUnsupportedError(PmUnsupportedError):
    """400, 405 or 501: the BMC refused the request or does not implement it."""

    status: int = 0
    message_ids: Tuple[str, ...] = ()


class RedfishConflictError(PmStateError):
    """409: the resource is in a state that forbids the request (iDRAC: "already powered on")."""

    status: int = 409
    message_ids: Tuple[str, ...] = ()


class RedfishPreconditionError(RedfishReplyError):
    """412: the ETag sent with If-Match is outdated (someone else changed the resource)."""


def _tag(cls: Type[E], msg: str, status: int, ids: Sequence[str], retry_after: Optional[float] = None) -> E:
    error = cls(msg)
    # every class _tag is given declares these attributes, PmError (the bound of E) does not
    setattr(error, "status", status)  # noqa: B010
    setattr(error, "message_ids", tuple(ids))  # noqa: B010
    if retry_after is not None:
        setattr(error, "retry_after", retry_after)  # noqa: B010
    return error


def body_messages(body: bytes) -> Tuple[List[str], str]:
    """(MessageIds, the BMC's own text) from a Redfish error body; ([], '') when there is none."""
    try:
        document = json.loads(body.decode("utf-8", "replace")) if body else None
    except ValueError:
        return [], ""
    if not isinstance(document, dict):
        return [], ""
    error = document.get("error")
    infos: List[Any] = []
    ids: List[str] = []
    text = ""
    if isinstance(error, dict):
        if isinstance(error.get("code"), str):
            ids.append(error["code"])
        text = str(error.get("message") or "")
        infos = error.get("@Message.ExtendedInfo") or []
    else:
        infos = document.get("@Message.ExtendedInfo") or []
    for info in infos if isinstance(infos, list) else []:
        if isinstance(info, dict) and isinstance(info.get("MessageId"), str):
            ids.append(info["MessageId"])
            if info.get("Message") and (not text or "ExtendedInfo" in text):
                text = str(info["Message"])
    return ids, text.strip()


def short_ids(ids: Sequence[str]) -> List[str]:
    return [message_id.rsplit(".", 1)[-1] for message_id in ids]


def parse_retry_after(value: Optional[str]) -> Optional[float]:
    """Retry-After in seconds (the HTTP-date form is ignored)."""
    if not value:
        return None
    try:
        seconds = float(value.strip())
    except ValueError:
        return None
    return seconds if 0 <= seconds <= 3600 else None


def reply_error(address: str, user: str, method: str, path: str, status: int, body: bytes,
                retry_after_header: Optional[str] = None) -> PmError:
    """The typed error for a non-success HTTP answer."""
    ids, text = body_messages(body)
    short = set(short_ids(ids))
    said = f": {text}" if text else ""
    where = f"the BMC at {address} answered HTTP {status} to {method} {path}{said}"
    retry_after = parse_retry_after(retry_after_header)
    if status == 401:
        return _tag(RedfishAuthError, f"the BMC at {address} refused the credentials of user '{user}' (HTTP 401); check user and password",
                    status, ids)
    if status == 403:
        return _tag(RedfishAuthError, f"{where}; user '{user}' lacks the privilege (an operator or administrator account is needed)",
                    status, ids)
    if short & SESSIONS_FULL_MESSAGES:
        return _tag(RedfishSessionsFullError, f"{where}; its session table is full", status, ids, retry_after)
    if status == 503 or short & BUSY_MESSAGES:
        return _tag(RedfishBusyError, f"{where}; the BMC stayed busy, retry later or raise timeout", status, ids, retry_after)
    if status == 404:
        return _tag(RedfishNotFoundError, f"{where}; the BMC has no such resource", status, ids)
    if status in (400, 405, 501):
        return _tag(RedfishUnsupportedError, f"{where}; the BMC refused or does not implement this request", status, ids)
    if status == 409:
        return _tag(RedfishConflictError, f"{where}; the machine's state forbids this request now", status, ids)
    if status == 412:
        return _tag(RedfishPreconditionError, f"{where}; the resource changed meanwhile (ETag), try again", status, ids)
    return _tag(RedfishReplyError, where, status, ids, retry_after)


def status_of(error: BaseException) -> int:
    return int(getattr(error, "status", 0) or 0)


def describe(error: BaseException) -> Dict[str, Any]:
    """What a result may carry about a failure (no secrets: status and message ids only)."""
    return {"status": status_of(error), "message_ids": list(getattr(error, "message_ids", ()))}
