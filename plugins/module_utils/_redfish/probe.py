# Copyright: ctys.pm contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""``protocol: auto``: does this BMC speak Redfish?

One unauthenticated GET of the service root ``/redfish/v1/``, bounded by
min(connect_timeout, 3 s) and by what is left of the task:

* a Redfish answer (a JSON object with ``RedfishVersion`` or ``@odata.id``) -> ``redfish``;
* connection refused, no answer in time, 404, or an answer that is not JSON -> ``ipmi``;
* a refused certificate, HTTP 401 or a busy Redfish service (503) -> an error: never a silent fall back to IPMI
  (a BMC that speaks Redfish but is misconfigured must be fixed, not bypassed).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Dict, Optional

from ansible_collections.ctys.pm.plugins.module_utils._deadline import Deadline
from ansible_collections.ctys.pm.plugins.module_utils._errors import PmAuthError, PmError
from ansible_collections.ctys.pm.plugins.module_utils._redfish.client import SERVICE_ROOT, Connection, Logger, RedfishTarget, TlsContexts
from ansible_collections.ctys.pm.plugins.module_utils._redfish.errors import (
    RedfishBusyError,
    RedfishHandshakeError,
    RedfishNoAnswerError,
    RedfishNotFoundError,
    RedfishTlsError,
    RedfishUnreachableError,
)

PROBE_SECONDS = 3.0


@dataclass
class ProbeResult:
    protocol: str  # redfish or ipmi
    reason: str
    redfish_version: Optional[str] = None

    def to_dict(self) -> Dict[str, Any]:
        return {"protocol": self.protocol, "reason": self.reason, "redfish_version": self.redfish_version}


def probe(target: RedfishTarget, deadline: Optional[Deadline] = None, tls: Optional[TlsContexts] = None,
          log: Optional[Logger] = None) -> ProbeResult:
    """Which protocol ``auto`` means for this BMC; raises a typed error for a TLS refusal or a 401."""
    address = target.address
    budget = min(target.connect_timeout, PROBE_SECONDS)
    bound = Deadline(deadline.cap(budget) if deadline is not None else budget)
    conn = Connection(target, bound, tls, log)
    try:
        reply = conn.request("GET", SERVICE_ROOT, authenticated=False, retry=False)
    except RedfishTlsError as error:
        raise error.__class__(f"protocol auto: {error.msg} (it answers HTTPS, so it is not treated as IPMI-only)") from None
    except PmAuthError as error:
        raise error.__class__(
            f"protocol auto: the BMC at {address} answered HTTP 401 to the unauthenticated service root {SERVICE_ROOT}; "
            "it speaks HTTPS but is not an open Redfish root: set protocol to redfish or ipmi"
        ) from None
    except RedfishUnreachableError as error:
        return ProbeResult("ipmi", "refused" if error.refused else "unreachable")
    except RedfishNoAnswerError:
        return ProbeResult("ipmi", f"no answer within {bound.seconds:g} s")
    except RedfishHandshakeError:
        return ProbeResult("ipmi", "the port does not speak TLS")
    except RedfishNotFoundError:
        return ProbeResult("ipmi", f"HTTP 404 for {SERVICE_ROOT}")
    except RedfishBusyError as error:
        raise error.__class__(f"protocol auto: {error.msg}") from None
    except PmError as error:
        return ProbeResult("ipmi", f"no Redfish service root (HTTP {getattr(error, 'status', '?')})")
    finally:
        conn.close()
    try:
        root = reply.json()
    except ValueError:
        return ProbeResult("ipmi", f"the answer to {SERVICE_ROOT} is not JSON")
    if "RedfishVersion" in root or "@odata.id" in root or "Systems" in root:
        return ProbeResult("redfish", "Redfish service root", str(root.get("RedfishVersion") or "") or None)
    return ProbeResult("ipmi", f"the answer to {SERVICE_ROOT} is not a Redfish service root")
