# Copyright: ctys.pm contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The Redfish transport: TLS, one keep-alive HTTPS connection per BMC, retries, task monitors, sessions.

* One :class:`ssl.SSLContext` per task (:class:`TlsContexts`), shared by every
  BMC: verification by default (the system store or ``ca_path``); a pinned
  SHA-256 fingerprint replaces chain verification by a check of the peer's
  certificate on every connect; ``validate_certs: false`` verifies nothing.
* One :class:`http.client.HTTPSConnection` per BMC, kept alive; a connection
  the BMC closed is opened again (once per request).
* Every request is bounded by what is left of the task's :class:`Deadline`,
  the connect (TCP and TLS handshake) also by ``connect_timeout``.
* 503 and the vendors' busy replies are retried with back-off from 0.2 s,
  ``Retry-After`` honoured within the deadline; a 202 task monitor is
  followed until the task is done.
* :class:`Session`: POST SessionService/Sessions, ``X-Auth-Token``, DELETE on
  exit (failure included); basic auth when the session service is absent or
  its table is full. Neither the password nor the token appear in a message.
"""

from __future__ import annotations

import base64
import hashlib
import http.client
import json
import re
import socket
import ssl
import threading
import time
from dataclasses import dataclass, field
from typing import Any, Callable, Dict, Iterator, Mapping, Optional, Tuple
from urllib.parse import urlsplit

from ansible_collections.ctys.pm.plugins.module_utils._bmc.options import DEFAULT_CONNECT_TIMEOUT, CommonOptions
from ansible_collections.ctys.pm.plugins.module_utils._deadline import Deadline, backoff
from ansible_collections.ctys.pm.plugins.module_utils._errors import PmError, PmInputError
from ansible_collections.ctys.pm.plugins.module_utils._redfish import errors as rf_errors
from ansible_collections.ctys.pm.plugins.module_utils._redfish.errors import (
    RedfishHandshakeError,
    RedfishNoAnswerError,
    RedfishNotFoundError,
    RedfishNotJsonError,
    RedfishRefusedError,
    RedfishSessionsFullError,
    RedfishTlsError,
    RedfishUnreachableError,
    RedfishUnsupportedError,
)

DEFAULT_PORT = 443
SERVICE_ROOT = "/redfish/v1/"
SESSIONS = "/redfish/v1/SessionService/Sessions"
LOGOUT_GRACE = 2.0  # seconds a session's DELETE may take after the task's time ran out
MAX_BODY = 16 << 20  # bytes; real answers are a few kB
TASK_RUNNING = ("New", "Starting", "Running", "Suspended", "Pending", "Stopping", "Cancelling", "Interrupted", "Service")
TASK_FAILED = ("Exception", "Killed", "Cancelled")
USER_AGENT = "ctys.pm-redfish"
_FINGERPRINT = re.compile(r"^[0-9a-f]{64}$")

Logger = Callable[[str], None]


def normalise_fingerprint(value: Any, option: str = "certificate_fingerprint") -> Optional[str]:
    """A SHA-256 fingerprint as 64 lower-case hex digits (colons, spaces and a ``sha256:`` prefix allowed)."""
    if value in (None, ""):
        return None
    text = str(value).strip().lower()
    if text.startswith("sha256:") or text.startswith("sha256="):
        text = text[7:]
    text = re.sub(r"[\s:]", "", text)
    if not _FINGERPRINT.match(text):
        raise PmInputError(
            f"{option} '{value}' is not valid; give the SHA-256 fingerprint of the BMC's certificate as 64 hex digits "
            "(colons allowed), as `openssl x509 -noout -fingerprint -sha256` prints it"
        )
    return text


@dataclass(frozen=True)
class RedfishTarget:
    """Everything needed to talk Redfish with one BMC."""

    host: str
    port: int = DEFAULT_PORT
    user: str = ""
    password: str = field(default="", repr=False)
    connect_timeout: float = DEFAULT_CONNECT_TIMEOUT
    validate_certs: bool = True
    ca_path: Optional[str] = None
    fingerprint: Optional[str] = None
    resource_id: Optional[str] = None

    @property
    def address(self) -> str:
        """``host:port`` for messages ([v6]:port for IPv6 literals)."""
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{host}:{self.port}"

    @property
    def tls_key(self) -> Tuple[str, Optional[str]]:
        """Which shared context this target uses."""
        if self.fingerprint:
            return ("pinned", None)
        if not self.validate_certs:
            return ("none", None)
        return ("verify", self.ca_path)

    @classmethod
    def from_params(cls, params: Mapping[str, Any], defaults: Optional[Mapping[str, Any]] = None) -> "RedfishTarget":
        """Validate module parameters (``bmc``, ``port``, ``user``, ``password``, ``connect_timeout``,
        ``validate_certs``, ``ca_path``, ``certificate_fingerprint``, ``resource_id``), optionally over ``defaults``."""
        shared = CommonOptions.from_params(params, defaults, DEFAULT_PORT)
        merged = shared.merged
        validate = merged.get("validate_certs", True)
        if not isinstance(validate, bool):
            raise PmInputError(f"validate_certs '{validate}' is not valid; use true or false")
        ca_path = merged.get("ca_path") or None
        if ca_path is not None:
            ca_path = str(ca_path)
            try:
                with open(ca_path, "rb"):
                    pass
            except OSError as error:
                raise PmInputError(
                    f"ca_path '{ca_path}' is not valid ({error.strerror}); give a readable PEM file of the CA that signed the BMC's certificate"
                ) from None
        fingerprint = normalise_fingerprint(merged.get("certificate_fingerprint"))
        if fingerprint and ca_path:
            raise PmInputError("certificate_fingerprint and ca_path were both given; pin the fingerprint or verify with the CA, not both")
        resource_id = merged.get("resource_id")
        return cls(
            host=shared.host,
            port=shared.port,
            user=shared.user,
            password=shared.password,
            connect_timeout=shared.connect_timeout,
            validate_certs=validate,
            ca_path=ca_path,
            fingerprint=fingerprint,
            resource_id=str(resource_id).strip() if resource_id not in (None, "") else None,
        )


class TlsContexts:
    """The SSL contexts of one task: one per distinct TLS setting (in practice one), shared by every BMC.

    Building a context loads the CA store (tens of ms of CPU); a context per
    request or per BMC is what makes other clients slow on a fleet.
    """

    def __init__(self) -> None:
        self._contexts: Dict[Tuple[str, Optional[str]], ssl.SSLContext] = {}
        self._lock = threading.Lock()

    def context_for(self, target: RedfishTarget) -> ssl.SSLContext:
        key = target.tls_key
        with self._lock:
            context = self._contexts.get(key)
            if context is None:
                context = self._build(key, target)
                self._contexts[key] = context
            return context

    @staticmethod
    def _build(key: Tuple[str, Optional[str]], target: RedfishTarget) -> ssl.SSLContext:
        mode, ca_path = key
        if mode == "verify":
            try:
                context = ssl.create_default_context(cafile=ca_path) if ca_path else ssl.create_default_context()
            except (ssl.SSLError, OSError) as error:
                raise PmInputError(f"ca_path '{ca_path}' is not valid ({error}); give a PEM file of the CA that signed the BMC's certificate") from None
        else:  # "pinned" (the fingerprint is checked on every connect) or "none"
            context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
            context.check_hostname = False
            context.verify_mode = ssl.CERT_NONE
        context.minimum_version = ssl.TLSVersion.TLSv1_2
        return context


@dataclass
class Reply:
    """One HTTP answer."""

    status: int
    headers: Dict[str, str]  # lower-case names
    body: bytes

    def json(self) -> Dict[str, Any]:
        if not self.body:
            return {}
        try:
            document = json.loads(self.body.decode("utf-8"))
        except (ValueError, UnicodeDecodeError):
            raise ValueError("not JSON") from None
        if not isinstance(document, dict):
            raise ValueError("not a JSON object")
        return document

    @property
    def etag(self) -> Optional[str]:
        return self.headers.get("etag")


def path_of(uri: str) -> str:
    """The path (and query) of a URI the BMC gave, absolute or relative."""
    parts = urlsplit(uri)
    path = parts.path or "/"
    return f"{path}?{parts.query}" if parts.query else path


class Connection:
    """One keep-alive HTTPS connection to one BMC, bounded by the task's deadline."""

    def __init__(self, target: RedfishTarget, deadline: Deadline, tls: Optional[TlsContexts] = None,
                 log: Optional[Logger] = None, sleeper: Callable[[float], None] = time.sleep) -> None:
        self.target = target
        self.deadline = deadline
        self.tls = tls or TlsContexts()
        self.log = log
        self.sleep = sleeper
        self.auth: Dict[str, str] = {}  # Authorization or X-Auth-Token; never logged
        self._http: Optional[http.client.HTTPSConnection] = None
        self.dead = False  # the BMC stopped answering: no further requests (not even a logout)
        self.requests = 0

    # ----- the socket ---------------------------------------------------------------
    def close(self) -> None:
        if self._http is not None:
            try:
                self._http.close()
            except OSError:
                pass
            self._http = None

    def _connect(self, deadline: Deadline) -> http.client.HTTPSConnection:
        address = self.target.address
        timeout = deadline.cap(self.target.connect_timeout)
        if timeout <= 0:
            raise RedfishNoAnswerError(f"no time was left to connect to the BMC at {address}; raise timeout")
        context = self.tls.context_for(self.target)
        conn = http.client.HTTPSConnection(self.target.host, self.target.port, timeout=timeout, context=context)
        try:
            conn.connect()
        except ssl.SSLCertVerificationError as error:
            conn.close()
            reason = getattr(error, "verify_message", "") or str(error)
            raise RedfishTlsError(
                f"the certificate of the BMC at {address} was refused ({reason}); set ca_path to the CA that signed it, "
                "or pin its SHA-256 fingerprint with certificate_fingerprint"
            ) from None
        except (socket.timeout, TimeoutError):
            conn.close()
            raise RedfishNoAnswerError(
                f"the BMC at {address} did not complete the connection within {timeout:g} s (connect_timeout); "
                "check bmc, port and that the BMC is reachable"
            ) from None
        except ssl.SSLError as error:
            conn.close()
            raise RedfishHandshakeError(
                f"the TLS handshake with the BMC at {address} failed ({error.reason or error}); check port (Redfish is HTTPS, usually 443)"
            ) from None
        except ConnectionRefusedError:
            conn.close()
            raise RedfishRefusedError(f"the BMC at {address} refused the connection (nothing listens there); check bmc and port") from None
        except OSError as error:
            conn.close()
            raise RedfishUnreachableError(f"cannot reach the BMC at {address}: {error.strerror or error}; check bmc and port") from None
        if self.target.fingerprint:
            der = conn.sock.getpeercert(binary_form=True) if conn.sock is not None else None
            seen = hashlib.sha256(der or b"").hexdigest()
            if seen != self.target.fingerprint:
                conn.close()
                shown = ":".join(seen[i:i + 2] for i in range(0, 64, 2)).upper()
                raise RedfishTlsError(
                    f"the certificate of the BMC at {address} has SHA-256 fingerprint {shown}, not the pinned one; "
                    "check certificate_fingerprint (a replaced certificate needs the new fingerprint)"
                )
        return conn

    def _exchange(self, method: str, path: str, body: Optional[bytes], headers: Dict[str, str], deadline: Deadline) -> Reply:
        """One request on the kept-alive connection (opened again once if the BMC closed it meanwhile)."""
        address = self.target.address
        for attempt in (1, 2):
            kept = self._http
            reused = kept is not None and kept.sock is not None
            if kept is not None and reused:
                conn = kept
            else:
                self.close()
                conn = self._http = self._connect(deadline)
            left = deadline.remaining()
            if left <= 0:
                raise RedfishNoAnswerError(f"no time was left for {method} {path} on the BMC at {address}; raise timeout")
            if conn.sock is not None:  # set by _connect; a kept connection was checked above
                conn.sock.settimeout(left)
            try:
                conn.request(method, path, body=body, headers=headers)
                response = conn.getresponse()
                data = response.read(MAX_BODY)
                reply = Reply(response.status, {k.lower(): v for k, v in response.getheaders()}, data)
                if response.will_close:
                    self.close()
                self.requests += 1
                return reply
            except (socket.timeout, TimeoutError):
                self.close()
                self.dead = True
                raise RedfishNoAnswerError(
                    f"the BMC at {address} did not answer {method} {path} within the time left ({left:.1f} s of timeout); "
                    "check that the BMC is alive, or raise timeout"
                ) from None
            except (http.client.RemoteDisconnected, ConnectionResetError, BrokenPipeError, http.client.CannotSendRequest,
                    http.client.BadStatusLine) as error:
                self.close()
                if reused and attempt == 1:
                    continue  # the BMC closed an idle kept-alive connection: open a new one
                raise RedfishUnreachableError(f"the BMC at {address} closed the connection during {method} {path} ({error.__class__.__name__})") from None
            except ssl.SSLError as error:
                self.close()
                raise RedfishHandshakeError(f"TLS with the BMC at {address} failed during {method} {path} ({error.reason or error})") from None
            except (http.client.HTTPException, OSError) as error:
                self.close()
                raise RedfishUnreachableError(f"the BMC at {address} failed during {method} {path}: {error}") from None
        raise RedfishUnreachableError(f"the BMC at {address} kept closing the connection during {method} {path}")  # pragma: no cover

    # ----- requests -------------------------------------------------------------------
    def request(self, method: str, path: str, payload: Any = None, headers: Optional[Mapping[str, str]] = None,
                authenticated: bool = True, retry: bool = True, deadline: Optional[Deadline] = None,
                follow_task: bool = True) -> Reply:
        """A request with retries of busy replies; raises the typed error of any non-success answer."""
        deadline = deadline or self.deadline
        if self.dead:
            raise RedfishNoAnswerError(f"the BMC at {self.target.address} stopped answering earlier in this task")
        sent: Dict[str, str] = {"Accept": "application/json", "OData-Version": "4.0", "User-Agent": USER_AGENT}
        if authenticated:
            sent.update(self.auth)
        body: Optional[bytes] = None
        if payload is not None:
            body = json.dumps(payload).encode()
            sent["Content-Type"] = "application/json"
        sent.update(headers or {})
        pauses = backoff(0.2, 1.5, 2.0)
        while True:
            reply = self._exchange(method, path, body, sent, deadline)
            if self.log:  # method, path and status only: never a header or a body (tokens, passwords)
                self.log(f"{self.target.address} {method} {path} -> {reply.status}")
            if 200 <= reply.status < 300:
                if reply.status == 202 and follow_task and reply.headers.get("location"):
                    return self.follow_task(reply, deadline)
                return reply
            error = rf_errors.reply_error(self.target.address, self.target.user, method, path, reply.status, reply.body,
                                          reply.headers.get("retry-after"))
            if not (retry and error.transient) or isinstance(error, RedfishSessionsFullError):
                raise error
            pause = max(next(pauses), getattr(error, "retry_after", None) or 0.0)
            if pause >= deadline.remaining():
                raise error
            self.sleep(pause)

    def follow_task(self, accepted: Reply, deadline: Deadline) -> Reply:
        """Poll a task monitor (the Location of a 202) until the task ends; its final answer."""
        monitor = path_of(accepted.headers["location"])
        pauses = backoff(0.2, 1.5, 2.0)
        reply = accepted
        while True:
            retry_after = rf_errors.parse_retry_after(reply.headers.get("retry-after"))
            pause = min(next(pauses), retry_after) if retry_after else next(pauses)
            if pause >= deadline.remaining():
                raise RedfishNoAnswerError(
                    f"the task of the BMC at {self.target.address} ({monitor}) did not finish within the timeout "
                    f"of {deadline.seconds:g} s; raise timeout"
                )
            self.sleep(pause)
            try:
                reply = self.request("GET", monitor, deadline=deadline, follow_task=False)
            except RedfishNotFoundError:
                return Reply(204, {}, b"")  # the BMC dropped the finished task's monitor
            if reply.status == 202:
                continue
            try:
                document = reply.json()
            except ValueError:
                return reply
            state = document.get("TaskState")
            if state in TASK_RUNNING:
                continue
            if state in TASK_FAILED:
                messages = [str(m.get("Message")) for m in document.get("Messages") or [] if isinstance(m, dict) and m.get("Message")]
                said = f": {'; '.join(messages)}" if messages else ""
                raise rf_errors.RedfishReplyError(
                    f"the task of the BMC at {self.target.address} ({monitor}) ended {state} ({document.get('TaskStatus', 'no status')}){said}"
                )
            return reply

    def get(self, path: str, **kwargs: Any) -> Dict[str, Any]:
        """GET a JSON resource."""
        reply = self.request("GET", path, **kwargs)
        try:
            return reply.json()
        except ValueError:
            raise RedfishNotJsonError(
                f"the BMC at {self.target.address} answered GET {path} with something that is not JSON; is this a Redfish service?"
            ) from None

    def get_with_etag(self, path: str) -> Tuple[Dict[str, Any], Optional[str]]:
        reply = self.request("GET", path)
        try:
            document = reply.json()
        except ValueError:
            raise RedfishNotJsonError(
                f"the BMC at {self.target.address} answered GET {path} with something that is not JSON; is this a Redfish service?"
            ) from None
        return document, reply.etag or document.get("@odata.etag")


def basic_auth(target: RedfishTarget) -> Dict[str, str]:
    raw = f"{target.user}:{target.password}".encode("utf-8")
    return {"Authorization": "Basic " + base64.b64encode(raw).decode("ascii")}


class Session:
    """Logged in to one BMC for the length of a ``with`` block; the session is deleted on exit, failure included.

    ``mode`` says how: ``session`` (X-Auth-Token), ``basic`` (the session
    service is absent, or its table is full).
    """

    def __init__(self, target: RedfishTarget, deadline: Deadline, tls: Optional[TlsContexts] = None,
                 log: Optional[Logger] = None, sleeper: Callable[[float], None] = time.sleep) -> None:
        self.conn = Connection(target, deadline, tls, log, sleeper)
        self.target = target
        self.mode = "none"
        self.location: Optional[str] = None
        self.why_basic: Optional[str] = None

    def __enter__(self) -> Connection:
        try:
            self.login()
        except BaseException:
            self.conn.close()
            raise
        return self.conn

    def __exit__(self, *exc: Any) -> None:
        self.logout()

    def login(self) -> None:
        target = self.target
        try:
            reply = self.conn.request("POST", SESSIONS, {"UserName": target.user, "Password": target.password}, authenticated=False)
        except RedfishSessionsFullError:
            self._basic("the BMC's session table is full")
            return
        except (RedfishNotFoundError, RedfishUnsupportedError):
            self._basic("the BMC has no session service")
            return
        token = reply.headers.get("x-auth-token")
        location = reply.headers.get("location")
        if not location:
            try:
                location = str(reply.json().get("@odata.id") or "") or None
            except ValueError:
                location = None
        if not token:
            self._basic("the BMC's session service gave no token")
            if location:
                self.location = path_of(location)  # a session was made anyway: delete it at the end
                self.mode = "basic"
            return
        self.conn.auth = {"X-Auth-Token": token}
        self.location = path_of(location) if location else None
        self.mode = "session"

    def _basic(self, why: str) -> None:
        self.conn.auth = basic_auth(self.target)
        self.mode = "basic"
        self.why_basic = why

    def logout(self) -> None:
        """DELETE the session; bounded by what is left, plus a short grace so a failed task still cleans up."""
        try:
            if self.location and not self.conn.dead:
                grace = Deadline(max(self.conn.deadline.remaining(), min(LOGOUT_GRACE, self.target.connect_timeout)))
                try:
                    self.conn.request("DELETE", self.location, deadline=grace, retry=False)
                except PmError:
                    pass  # the session expires on the BMC; nothing more can be done now
            self.location = None
        finally:
            self.conn.auth = {}
            self.conn.close()


def sessions_in_use(conn: Connection) -> Iterator[str]:
    """The session URIs the BMC lists (to check that none is left behind)."""
    for member in conn.get(SESSIONS).get("Members") or []:
        if isinstance(member, dict) and member.get("@odata.id"):
            yield str(member["@odata.id"])
