# Copyright: ctys.pm contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The BMCs of a task: one (``bmc``) or a fleet (``targets``), validated once for every BMC module.

:func:`fleet_entries` turns module parameters into one :class:`FleetEntry` per BMC, the
task's options overlaid by the target's own; :func:`endpoint_of` validates an entry's
connection options for the protocol(s) it may use; :func:`decide` settles
``protocol: auto`` by asking each BMC's Redfish service root, concurrently.

The Redfish imports are inside the functions that need them, so that an IPMI-only
module (pm_ipmi_power) does not load the HTTP and TLS stack at run time.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Callable, Dict, List, Mapping, Optional, Sequence, Tuple, Union

from ansible_collections.ctys.pm.plugins.module_utils._bmc import guard
from ansible_collections.ctys.pm.plugins.module_utils._bmc.options import PROTOCOLS, BmcConnection
from ansible_collections.ctys.pm.plugins.module_utils._deadline import Deadline
from ansible_collections.ctys.pm.plugins.module_utils._errors import PmError, PmInputError

if TYPE_CHECKING:  # pragma: no cover - typing only
    from ansible_collections.ctys.pm.plugins.module_utils._redfish.client import RedfishTarget, TlsContexts

# keys that name a target rather than configure it: never inherited from the task
OWN_KEYS = ("bmc", "name", "host")
FAIL_ON = ("any", "all", "never")


@dataclass(frozen=True)
class FleetEntry:
    """One BMC of the task, its options merged over the task's."""

    index: Optional[int]  # None: the single-BMC form (``bmc`` at the top)
    label: str  # the name shown in results: the target's ``name``, else its ``bmc``
    params: Dict[str, Any] = field(repr=False)  # None values dropped; ``bmc`` always set

    @property
    def where(self) -> str:
        """How to name this entry in a message: ``targets[3]``, or ``bmc`` for the single-BMC form."""
        return "bmc" if self.index is None else f"targets[{self.index}]"

    def option(self, key: str) -> str:
        """How to name one of this entry's options in a message."""
        return key if self.index is None else f"{self.where}.{key}"


def fleet_entries(params: Mapping[str, Any], fleet_keys: Sequence[str], own_keys: Sequence[str] = OWN_KEYS) -> List[FleetEntry]:
    """The BMCs of a task: ``bmc`` for one, or ``targets`` (keys from ``fleet_keys``) with the task's options as defaults.

    ``own_keys`` are the keys a target never inherits from the task (its name, its BMC, and for
    pm_power its ``state``, which falls back to the task's through the caller).
    """
    targets = params.get("targets")
    if not targets:
        if not params.get("bmc"):
            raise PmInputError("bmc is missing; set bmc to the BMC's host name or address, or give targets for fleet mode")
        merged = {key: value for key, value in params.items() if value is not None}
        return [FleetEntry(None, str(params["bmc"]), merged)]
    if params.get("bmc"):
        raise PmInputError("bmc and targets were both given; use bmc for one machine or targets for a fleet, not both")
    if not isinstance(targets, list):
        raise PmInputError(f"targets '{targets}' is not a list; give targets as a list of {{bmc: ADDRESS, ...}} dictionaries")
    defaults = {key: params[key] for key in fleet_keys if key not in own_keys and params.get(key) is not None}
    entries: List[FleetEntry] = []
    for index, target in enumerate(targets):
        if not isinstance(target, dict):
            raise PmInputError(f"targets[{index}] '{target}' is not a dictionary; give each target as {{bmc: ADDRESS, ...}}")
        unknown = sorted(set(target) - set(fleet_keys))
        if unknown:
            raise PmInputError(f"targets[{index}] has unknown key '{unknown[0]}'; use {', '.join(fleet_keys)}")
        own = {key: value for key, value in target.items() if value is not None}
        host = own.pop("host", None) or own.get("bmc")
        if not host or not str(host).strip():
            raise PmInputError(f"targets[{index}] has no bmc; set bmc to the BMC's host name or address")
        merged = dict(defaults)
        merged.update(own)
        merged["bmc"] = host
        entries.append(FleetEntry(index, str(own.get("name") or host), merged))
    return entries


def refuse_repeats(addressed: Sequence[Tuple[FleetEntry, str]]) -> None:
    """Refuse a fleet that names one BMC twice: ``addressed`` pairs each entry with its ``host:port``."""
    seen: Dict[str, str] = {}
    for entry, address in addressed:
        if address in seen:
            raise PmInputError(f"{entry.where} repeats BMC {address} (already {seen[address]}); list every BMC once")
        seen[address] = entry.label


def check_protocol(value: Any, option: str, default: str = "auto") -> str:
    protocol = default if value in (None, "") else str(value)
    if protocol not in PROTOCOLS:
        raise PmInputError(f"{option} '{value}' is not valid; use one of {', '.join(PROTOCOLS)}")
    return protocol


@dataclass
class Endpoint:
    """One BMC and how to reach it: the protocol asked, the connection(s) it may use, the protocol settled."""

    entry: FleetEntry
    asked: str  # ipmi, redfish or auto
    ipmi: Optional[BmcConnection] = None
    redfish: Optional["RedfishTarget"] = None
    protocol: Optional[str] = None  # settled: asked, or what the auto probe found
    error: Optional[PmError] = None  # the probe's failure (a refused certificate, 401): never a fall back to IPMI

    @property
    def label(self) -> str:
        return self.entry.label

    @property
    def address(self) -> str:
        if self.protocol == "ipmi" and self.ipmi is not None:
            return self.ipmi.address
        if self.redfish is not None:
            return self.redfish.address
        return self.ipmi.address if self.ipmi is not None else self.label

    def ipmi_connection(self) -> BmcConnection:
        if self.ipmi is None:  # endpoint_of sets it for every endpoint that may use IPMI
            raise PmInputError(f"{self.label} has no IPMI settings; set protocol: ipmi or auto for it")
        return self.ipmi

    def redfish_target(self) -> "RedfishTarget":
        if self.redfish is None:  # endpoint_of sets it for every endpoint that may use Redfish
            raise PmInputError(f"{self.label} has no Redfish settings; set protocol: redfish or auto for it")
        return self.redfish


def endpoint_of(entry: FleetEntry, default_protocol: str = "auto") -> Endpoint:
    """Validate an entry's connection options for the protocol(s) it may use."""
    asked = check_protocol(entry.params.get("protocol"), entry.option("protocol"), default_protocol)
    endpoint = Endpoint(entry, asked)
    if asked in ("ipmi", "auto"):
        endpoint.ipmi = BmcConnection.from_params(entry.params)
    if asked in ("redfish", "auto"):
        from ansible_collections.ctys.pm.plugins.module_utils._redfish.client import RedfishTarget

        endpoint.redfish = RedfishTarget.from_params(entry.params)
    if asked != "auto":
        endpoint.protocol = asked
    return endpoint


def decide(endpoints: Sequence[Endpoint], deadline: Deadline, tls: "TlsContexts") -> None:
    """``protocol: auto``: probe every such endpoint concurrently (each bounded by min(connect_timeout, 3 s))."""
    pending = [endpoint for endpoint in endpoints if endpoint.protocol is None]
    if not pending:
        return
    from ansible_collections.ctys.pm.plugins.module_utils._redfish import fleet as _rf_fleet
    from ansible_collections.ctys.pm.plugins.module_utils._redfish import probe as _rf_probe

    def ask(endpoint: Endpoint) -> _rf_probe.ProbeResult:
        return _rf_probe.probe(endpoint.redfish_target(), deadline, tls)

    answers: List[Union[_rf_probe.ProbeResult, PmError]] = _rf_fleet.run_each(pending, ask)
    for endpoint, answer in zip(pending, answers):
        if isinstance(answer, PmError):
            endpoint.protocol = "redfish"  # it answered HTTPS (a refused certificate, 401, busy): never a fall back to IPMI
            endpoint.error = answer
        else:
            endpoint.protocol = answer.protocol


def side_by_side(redfish: Optional[Callable[[], None]], ipmi: Optional[Callable[[], None]], deadline: Deadline, name: str) -> None:
    """Run the Redfish part (threads of its own) beside the IPMI part (pyghmi's loop, in this thread).

    Every Redfish request is bounded by the deadline, logouts by a short grace after it; the caller's
    ``guard.bounded`` abandons the Redfish thread at timeout + ``guard.GRACE`` whatever happens.
    """
    if redfish is not None and ipmi is None:
        redfish()
        return
    worker: Optional[threading.Thread] = None
    if redfish is not None:
        worker = threading.Thread(target=redfish, name=name, daemon=True)
        worker.start()
    try:
        if ipmi is not None:
            ipmi()
    finally:
        if worker is not None:
            worker.join(max(deadline.remaining(), 0.0) + guard.GRACE)


def check_fail_on(value: Any) -> str:
    """``fail_on``: when a fleet task fails (any target, all of them, never)."""
    fail_on = str(value or "any")
    if fail_on not in FAIL_ON:
        raise PmInputError(f"fail_on '{value}' is not valid; use any, all or never")
    return fail_on


def fleet_outcome(results: Sequence[Dict[str, Any]], fail_on: str, outcome: Dict[str, Any]) -> Dict[str, Any]:
    """``outcome`` (``results`` are its per-target results), or the failure ``fail_on`` asks for, naming the first five."""
    failed = [result for result in results if result["failed"]]
    if failed and (fail_on == "any" or (fail_on == "all" and len(failed) == len(results))):
        names = ", ".join(f"{result['name']} ({result['msg']})" for result in failed[:5])
        more = f" and {len(failed) - 5} more" if len(failed) > 5 else ""
        raise PmError(f"{len(failed)} of {len(results)} targets failed: {names}{more}", **outcome)
    return outcome
