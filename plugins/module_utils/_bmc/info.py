# Copyright: ctys.pm contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The pm_bmc_info backend: identity, firmware, event log, power draw and network settings of one BMC or a fleet.

The BMCs come from ``_bmc.targets`` (the same fleet and protocol rules as pm_power); IPMI
ones are read by ``_ipmi.info`` on pyghmi's loop, Redfish ones by ``_redfish.info`` on
threads, both at the same time under one deadline and the hard bound of ``_bmc.guard``.
Read only: nothing is ever changed.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field, replace
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any, Callable, Dict, List, Optional, Sequence, Tuple

from ansible_collections.ctys.pm.plugins.module_utils._bmc import guard, targets
from ansible_collections.ctys.pm.plugins.module_utils._bmc.info_request import SECTIONS
from ansible_collections.ctys.pm.plugins.module_utils._bmc.options import FLEET_KEYS
from ansible_collections.ctys.pm.plugins.module_utils._deadline import Deadline, check_seconds
from ansible_collections.ctys.pm.plugins.module_utils._errors import PmError, PmInputError, PmTimeoutError
from ansible_collections.ctys.pm.plugins.module_utils._redfish import fleet as _rf_fleet
from ansible_collections.ctys.pm.plugins.module_utils._redfish import info as _rf_info
from ansible_collections.ctys.pm.plugins.module_utils._redfish.client import TlsContexts

if TYPE_CHECKING:  # imported where an IPMI BMC is read: a Redfish-only task does not load the IPMI stack
    from ansible_collections.ctys.pm.plugins.module_utils._ipmi.info import InfoJob

INFO_FLEET_KEYS = FLEET_KEYS + ("host",)
EVENTS_MAX_LIMIT = 10000


@dataclass
class Request:
    sections: Tuple[str, ...]
    events_since: Optional[float]
    events_max: int


@dataclass
class Reader(targets.Endpoint):
    """One BMC of the task and what came back."""

    data: Dict[str, Any] = field(default_factory=dict)
    unsupported: List[str] = field(default_factory=list)
    job: Optional[InfoJob] = None
    done: bool = False
    started: float = field(default_factory=time.monotonic)
    finished: Optional[float] = None

    def result(self) -> Dict[str, Any]:
        """The per-target result: what the IPMI job or the Redfish reader found (read, never changed, here)."""
        job = self.job
        data, unsupported = (job.data, job.unsupported) if job is not None else (self.data, self.unsupported)
        error = self.error or (job.error if job is not None else None)
        finished = job.finished if job is not None else self.finished
        result: Dict[str, Any] = {
            "name": self.label,
            "bmc": self.address,
            "protocol": self.protocol,
            "changed": False,
            "elapsed": round((finished or time.monotonic()) - self.started, 3),
            "failed": error is not None,
            "unsupported": list(unsupported),
        }
        result.update(data)
        if error is not None:
            result["msg"] = error.msg
        return result


def check_request(params: Dict[str, Any]) -> Request:
    gather = params.get("gather")
    if gather is None:
        gather = list(SECTIONS)
    if not isinstance(gather, list):
        gather = [gather]
    if not gather:
        raise PmInputError("gather '[]' names no section; name at least one of " + ", ".join(SECTIONS) + ", or leave gather unset for all")
    for index, section in enumerate(gather):
        if section not in SECTIONS:
            raise PmInputError(f"gather[{index}] '{section}' is not valid; use one or more of {', '.join(SECTIONS)}")
        if section in gather[:index]:
            raise PmInputError(f"gather[{index}] '{section}' is given twice; name each section once")
    most = params.get("events_max", 100)
    try:
        most = int(most)
    except (TypeError, ValueError):
        most = -1
    if not 1 <= most <= EVENTS_MAX_LIMIT:
        raise PmInputError(f"events_max '{params.get('events_max')}' is not valid; use a number of entries from 1 to {EVENTS_MAX_LIMIT}")
    return Request(tuple(gather), parse_since(params.get("events_since")), most)


def parse_since(value: Any) -> Optional[float]:
    """``events_since``: epoch seconds, or an ISO 8601 time (UTC when it names no zone)."""
    if value in (None, ""):
        return None
    text = str(value).strip()
    try:
        return float(text)
    except ValueError:
        pass
    try:
        moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise PmInputError(
            f"events_since '{value}' is not valid; give an ISO 8601 time such as 2026-12-01T08:00:00Z or epoch seconds such as 1796112000"
        ) from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=timezone.utc)
    return moment.timestamp()


def build_readers(params: Dict[str, Any]) -> List[Reader]:
    readers: List[Reader] = []
    for entry in targets.fleet_entries(params, INFO_FLEET_KEYS):
        endpoint = targets.endpoint_of(entry)
        readers.append(Reader(entry, endpoint.asked, endpoint.ipmi, endpoint.redfish, endpoint.protocol))
    targets.refuse_repeats([(reader.entry, reader.address) for reader in readers])
    return readers


def read_all(readers: Sequence[Reader], request: Request, deadline: Deadline, progress: Optional[guard.Progress] = None) -> None:
    """Decide the protocols, then read the Redfish BMCs (threads) and the IPMI BMCs (pyghmi) at the same time."""
    tls = TlsContexts()
    targets.decide(readers, deadline, tls)
    ready = [reader for reader in readers if reader.error is None]
    redfish = [reader for reader in ready if reader.protocol == "redfish"]
    run_ipmi: Optional[Callable[[], None]] = None
    if len(redfish) < len(ready):
        # imported here, not at the top: a Redfish-only task does not load the IPMI stack
        from ansible_collections.ctys.pm.plugins.module_utils._ipmi import info as _ipmi_info

        jobs: List[InfoJob] = []
        for reader in ready:
            if reader.protocol == "ipmi":
                reader.job = _ipmi_info.InfoJob(reader.ipmi_connection(), reader.label, request.sections, request.events_since,
                                                request.events_max)
                jobs.append(reader.job)

        def ipmi_part() -> None:
            _ipmi_info.run_jobs(jobs, max(deadline.remaining(), 0.001), progress)

        run_ipmi = ipmi_part

    def one(reader: Reader) -> Tuple[Dict[str, Any], List[str]]:
        return _rf_info.gather(reader.redfish_target(), request.sections, request.events_since, request.events_max, deadline, tls)

    def run_redfish() -> None:
        for reader, answer in zip(redfish, _rf_fleet.run_each(redfish, one)):
            if isinstance(answer, PmError):
                reader.error = answer
            else:
                reader.data, reader.unsupported = answer
            reader.finished, reader.done = time.monotonic(), True

    targets.side_by_side(run_redfish if redfish else None, run_ipmi, deadline, "redfish-info")


def run_bounded(readers: List[Reader], request: Request, timeout: float) -> List[Reader]:
    """:func:`read_all` under the hard bound: back by ``timeout`` plus ``guard.GRACE``, a cut-off BMC failing by name."""
    progress = guard.Progress()
    outcome = guard.bounded(lambda: read_all(readers, request, Deadline(timeout), progress), timeout, name="ctys-pm-bmc-info")
    if outcome.finished:
        return readers
    steps = progress.close()
    frozen: List[Reader] = []
    ipmi_index = 0
    for reader in readers:
        copy = replace(reader, data=dict(reader.data), unsupported=list(reader.unsupported))
        if copy.job is not None:
            step = steps.get(ipmi_index, guard.LOGIN)
            ipmi_index += 1
            job = replace(copy.job, data=dict(copy.job.data), unsupported=list(copy.job.unsupported))
            if step != guard.DONE or job.finished is None:
                job.error = job.error or PmTimeoutError(guard.cut_off_message(copy.address, step, timeout, copy.label), step=step)
                job.finished = time.monotonic()
            copy.job = job
        elif copy.error is None and not copy.done:
            step = "probe" if copy.protocol is None else "reading"
            copy.error = PmTimeoutError(guard.cut_off_message(copy.address, step, timeout, copy.label), step=step)
            copy.finished = time.monotonic()
        frozen.append(copy)
    return frozen


def run(params: Dict[str, Any]) -> Dict[str, Any]:
    """The pm_bmc_info backend (read only: check mode does the same)."""
    started = time.monotonic()
    timeout = check_seconds("timeout", params.get("timeout", 60), 86400, "60")
    fail_on = targets.check_fail_on(params.get("fail_on"))
    request = check_request(params)
    results = [reader.result() for reader in run_bounded(build_readers(params), request, float(timeout))]
    elapsed = round(time.monotonic() - started, 3)
    if not params.get("targets"):
        single = dict(results[0], elapsed=elapsed)
        if single.pop("failed"):
            raise PmError(single.pop("msg"), **single)
        return single
    failed = [result for result in results if result["failed"]]
    summary = {
        "targets": len(results),
        "failed": len(failed),
        "critical": sum((result.get("events") or {}).get("critical", 0) for result in results),
        "warning": sum((result.get("events") or {}).get("warning", 0) for result in results),
        "ipmi": sum(1 for result in results if result["protocol"] == "ipmi"),
        "redfish": sum(1 for result in results if result["protocol"] == "redfish"),
    }
    outcome: Dict[str, Any] = {"changed": False, "results": results, "summary": summary, "elapsed": elapsed}
    return targets.fleet_outcome(results, fail_on, outcome)


__all__ = ["SECTIONS", "check_request", "parse_since", "build_readers", "run_bounded", "run"]
