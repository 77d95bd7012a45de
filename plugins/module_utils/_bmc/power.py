# Copyright: ctys.pm contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The pm_power backend: power state and boot device over IPMI or Redfish, one BMC or a mixed fleet.

Nothing about power is done here: IPMI targets go to ``_ipmi.power.run_jobs``
(the backend of pm_ipmi_power), Redfish targets to ``_redfish.power.run_one``.
This file decides the protocol of each target (``auto``: ``_redfish.probe``),
runs both kinds concurrently under one deadline (the Redfish targets on
threads, the IPMI targets on pyghmi's loop in this thread), with one TLS
context for the task, and shapes the results as pm_ipmi_power does, plus
``protocol`` everywhere.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any, Callable, Dict, List, Optional, Sequence

from ansible_collections.ctys.pm.plugins.module_utils._bmc import guard, targets
from ansible_collections.ctys.pm.plugins.module_utils._bmc.power_request import FLEET_KEYS, BootRequest, check_state, validate_boot
from ansible_collections.ctys.pm.plugins.module_utils._deadline import Deadline, check_seconds
from ansible_collections.ctys.pm.plugins.module_utils._errors import PmError, PmTimeoutError
from ansible_collections.ctys.pm.plugins.module_utils._redfish import fleet as _rf_fleet
from ansible_collections.ctys.pm.plugins.module_utils._redfish import power as _rf_power
from ansible_collections.ctys.pm.plugins.module_utils._redfish.client import TlsContexts

if TYPE_CHECKING:  # imported where an IPMI target runs: a Redfish-only task does not load the IPMI stack
    from ansible_collections.ctys.pm.plugins.module_utils._ipmi.power import PowerJob

DEFAULT_PROTOCOL = "auto"


@dataclass
class Target(targets.Endpoint):
    """One BMC of the task: what was asked, which protocol, what happened."""

    state: str = "query"
    boot: Optional[BootRequest] = None
    job: Optional[PowerJob] = None
    outcome: Optional[_rf_power.PowerOutcome] = None
    started: float = field(default_factory=time.monotonic)

    def result(self) -> Dict[str, Any]:
        """The per-target result: pm_ipmi_power's keys plus ``protocol`` (and Redfish's ``reset_type``, ``resource_id``)."""
        if self.outcome is not None:
            return self.outcome.result()
        if self.job is not None:
            data = self.job.result()
            data["protocol"] = "ipmi"
            return data
        return {  # failed before any power request (the auto probe)
            "name": self.label,
            "bmc": self.address,
            "state": self.state,
            "changed": False,
            "power_state_before": None,
            "power_state": None,
            "elapsed": round(time.monotonic() - self.started, 3),
            "protocol": self.protocol,
            "failed": True,
            "msg": self.error.msg if self.error is not None else "not run",
        }

    @property
    def failure(self) -> Optional[PmError]:
        if self.outcome is not None:
            return self.outcome.error
        if self.job is not None:
            return self.job.error
        return self.error


def build_targets(params: Dict[str, Any]) -> List[Target]:
    """Targets from module parameters: one BMC, or ``targets`` with the top-level options as defaults."""
    boot = validate_boot(params)
    state = check_state(params.get("state") or "query", "state")
    found: List[Target] = []
    for entry in targets.fleet_entries(params, FLEET_KEYS, targets.OWN_KEYS + ("state",)):
        endpoint = targets.endpoint_of(entry, DEFAULT_PROTOCOL)
        own_state = check_state(entry.params.get("state") or state, entry.option("state")) if entry.index is not None else state
        found.append(Target(entry, endpoint.asked, endpoint.ipmi, endpoint.redfish, endpoint.protocol, state=own_state, boot=boot))
    targets.refuse_repeats([(target.entry, target.address) for target in found])
    return found


def run_targets(fleet: Sequence[Target], deadline: Deadline, wait: bool, check_mode: bool, tls: Optional[TlsContexts] = None,
                progress: Optional[guard.Progress] = None) -> None:
    """Decide the protocols, then run the Redfish targets (threads) and the IPMI targets (pyghmi) at the same time.

    ``progress`` records the step of each IPMI job, keyed by its index among the IPMI jobs (:func:`run_bounded`).
    """
    tls = tls or TlsContexts()
    targets.decide(fleet, deadline, tls)
    ready = [target for target in fleet if target.error is None]
    for target in ready:
        if target.protocol != "ipmi":
            target.outcome = _rf_power.PowerOutcome(_rf_power.PowerRequest(target.redfish_target(), target.state, target.label, target.boot))
    redfish = [(target, target.outcome) for target in ready if target.outcome is not None]
    run_ipmi: Optional[Callable[[], None]] = None
    if len(redfish) < len(ready):
        # imported here, not at the top: a Redfish-only task does not load the IPMI stack
        from ansible_collections.ctys.pm.plugins.module_utils._ipmi import power as _ipmi_power

        jobs: List[PowerJob] = []
        for target in ready:
            if target.protocol == "ipmi":
                target.job = _ipmi_power.PowerJob(target.ipmi_connection(), target.state, target.label, target.boot)
                jobs.append(target.job)

        def ipmi_part() -> None:
            _ipmi_power.run_jobs(jobs, max(deadline.remaining(), 0.001), wait, check_mode, progress)

        run_ipmi = ipmi_part

    def run_redfish() -> None:
        def one(pair: Any) -> _rf_power.PowerOutcome:
            return _rf_power.run_one(pair[1].request, deadline, tls, wait, check_mode)

        done = _rf_fleet.run_each(redfish, one)
        for (target, outcome), item in zip(redfish, done):
            if isinstance(item, _rf_power.PowerOutcome):
                target.outcome = item
            else:  # outside run_one's own handling (a bug): kept per target
                outcome.error = item
                outcome.finished = time.monotonic()

    targets.side_by_side(run_redfish if redfish else None, run_ipmi, deadline, "redfish-fleet")


def run_bounded(fleet: List[Target], timeout: float, wait: bool, check_mode: bool) -> List[Target]:
    """:func:`run_targets` under the hard bound (``_bmc.guard``): back by ``timeout`` plus ``guard.GRACE``.

    Returns the targets as they are then (snapshots: the abandoned worker may still write to the
    originals); a target the deadline cut off fails naming its BMC and its step.
    """
    progress = guard.Progress()
    outcome = guard.bounded(lambda: run_targets(fleet, Deadline(timeout), wait, check_mode, progress=progress), timeout,
                            name="ctys-pm-power")
    if outcome.finished:
        return fleet
    steps = progress.close()
    now = time.monotonic()
    frozen: List[Target] = []
    ipmi_index = 0
    for target in fleet:
        copy = replace(target)
        if copy.job is not None:
            step = steps.get(ipmi_index, guard.LOGIN)
            ipmi_index += 1
            job = replace(copy.job)
            if step != guard.DONE or (job.error is None and job.after is None):
                job.error = PmTimeoutError(guard.cut_off_message(copy.address, step, timeout, copy.label), step=step)
                job.finished = now
            copy.job = job
        elif copy.outcome is not None:
            redfish = replace(copy.outcome)
            if redfish.finished is None:
                # no step record from the Redfish client: it had no answer yet, or was waiting for the state
                step = guard.LOGIN if redfish.before is None else guard.WAITING
                redfish.error = PmTimeoutError(guard.cut_off_message(copy.address, step, timeout, copy.label), step=step)
                redfish.finished = now
            copy.outcome = redfish
        elif copy.error is None:
            copy.error = PmTimeoutError(guard.cut_off_message(copy.address, "probe", timeout, copy.label), step="probe")
        frozen.append(copy)
    return frozen


def run(params: Dict[str, Any], check_mode: bool = False) -> Dict[str, Any]:
    """The pm_power backend."""
    started = time.monotonic()
    timeout = check_seconds("timeout", params.get("timeout", 300), 86400, "300")
    fail_on = targets.check_fail_on(params.get("fail_on"))
    fleet = run_bounded(build_targets(params), float(timeout), bool(params.get("wait", True)), check_mode)
    elapsed = round(time.monotonic() - started, 3)
    if not params.get("targets"):
        return _single(fleet[0], elapsed)
    results = [target.result() for target in fleet]
    failed = [r for r in results if r["failed"]]
    summary = {
        "targets": len(results),
        "changed": sum(1 for r in results if r["changed"]),
        "failed": len(failed),
        "power_on": sum(1 for r in results if r["power_state"] == "on"),
        "power_off": sum(1 for r in results if r["power_state"] == "off"),
        "ipmi": sum(1 for r in results if r.get("protocol") == "ipmi"),
        "redfish": sum(1 for r in results if r.get("protocol") == "redfish"),
    }
    result: Dict[str, Any] = {"changed": summary["changed"] > 0, "results": results, "summary": summary, "elapsed": elapsed}
    return targets.fleet_outcome(results, fail_on, result)


def _single(target: Target, elapsed: float) -> Dict[str, Any]:
    data = target.result()
    error = target.failure
    if error is not None:
        extra = {"power_state_before": data.get("power_state_before"), "elapsed": elapsed, "protocol": target.protocol}
        raise error.__class__(error.msg, **extra)
    result: Dict[str, Any] = {
        "changed": data["changed"],
        "power_state": data["power_state"],
        "power_state_before": data["power_state_before"],
        "elapsed": elapsed,
        "protocol": target.protocol,
    }
    if "boot_device" in data and target.boot is not None:
        result["boot_device"] = data["boot_device"]
    if target.outcome is not None:
        result["reset_type"] = target.outcome.reset_type
        result["resource_id"] = target.outcome.resource_id
        if target.outcome.warnings:
            result["warnings"] = list(target.outcome.warnings)
        result["diff"] = target.outcome.diff()
    elif target.job is not None:
        job = target.job
        result["diff"] = {
            "before": {"power_state": job.before, "boot_device": job.boot_before},
            "after": {"power_state": job.after, "boot_device": job.boot_after or job.boot_before},
        }
    return result


__all__ = ["Target", "build_targets", "run_targets", "run_bounded", "run"]
