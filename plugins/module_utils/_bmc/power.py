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

import threading
import time
from dataclasses import dataclass, field, replace
from typing import Any, Dict, List, Optional, Sequence, Union

from ansible_collections.ctys.pm.plugins.module_utils._bmc import guard
from ansible_collections.ctys.pm.plugins.module_utils._bmc.options import PROTOCOLS, BmcConnection
from ansible_collections.ctys.pm.plugins.module_utils._deadline import Deadline, check_seconds
from ansible_collections.ctys.pm.plugins.module_utils._errors import PmError, PmInputError, PmTimeoutError
from ansible_collections.ctys.pm.plugins.module_utils._ipmi import power as _ipmi_power
from ansible_collections.ctys.pm.plugins.module_utils._redfish import fleet as _rf_fleet
from ansible_collections.ctys.pm.plugins.module_utils._redfish import power as _rf_power
from ansible_collections.ctys.pm.plugins.module_utils._redfish import probe as _rf_probe
from ansible_collections.ctys.pm.plugins.module_utils._redfish.client import RedfishTarget, TlsContexts

STATES = _ipmi_power.STATES
BOOT_DEVICES = _ipmi_power.BOOT_DEVICES
BOOT_MODES = _ipmi_power.BOOT_MODES
REDFISH_KEYS = ("protocol", "validate_certs", "ca_path", "certificate_fingerprint", "resource_id")
FLEET_KEYS = tuple(_ipmi_power.FLEET_KEYS) + REDFISH_KEYS
DEFAULT_PROTOCOL = "auto"


@dataclass
class Target:
    """One BMC of the task: what was asked, which protocol, what happened."""

    label: str
    state: str
    asked: str  # ipmi, redfish or auto
    params: Dict[str, Any]
    boot: Optional[_ipmi_power.BootRequest]
    ipmi: Optional[BmcConnection] = None
    redfish: Optional[RedfishTarget] = None
    protocol: Optional[str] = None  # the one used
    job: Optional[_ipmi_power.PowerJob] = None
    outcome: Optional[_rf_power.PowerOutcome] = None
    error: Optional[PmError] = None
    started: float = field(default_factory=time.monotonic)

    @property
    def address(self) -> str:
        if self.protocol == "ipmi" and self.ipmi is not None:
            return self.ipmi.address
        if self.redfish is not None:
            return self.redfish.address
        return self.ipmi.address if self.ipmi is not None else self.label

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


def check_protocol(value: Any, option: str) -> str:
    protocol = DEFAULT_PROTOCOL if value in (None, "") else str(value)
    if protocol not in PROTOCOLS:
        raise PmInputError(f"{option} '{value}' is not valid; use one of {', '.join(PROTOCOLS)}")
    return protocol


def _target(merged: Dict[str, Any], label: str, state: str, boot: Optional[_ipmi_power.BootRequest], option: str) -> Target:
    """Validate one target's connection options for the protocol(s) it may use."""
    asked = check_protocol(merged.get("protocol"), option)
    target = Target(label, state, asked, merged, boot)
    if asked in ("ipmi", "auto"):
        target.ipmi = BmcConnection.from_params(merged)
    if asked in ("redfish", "auto"):
        target.redfish = RedfishTarget.from_params(merged)
    if asked != "auto":
        target.protocol = asked
    return target


def build_targets(params: Dict[str, Any]) -> List[Target]:
    """Targets from module parameters: one BMC, or ``targets`` with the top-level options as defaults."""
    boot = _ipmi_power.validate_boot(params)
    state = _check_state(params.get("state") or "query", "state")
    targets = params.get("targets")
    if not targets:
        if not params.get("bmc"):
            raise PmInputError("bmc is missing; set bmc to the BMC's host name or address, or give targets for fleet mode")
        merged = {key: value for key, value in params.items() if value is not None}
        return [_target(merged, str(params["bmc"]), state, boot, "protocol")]
    if params.get("bmc"):
        raise PmInputError("bmc and targets were both given; use bmc for one machine or targets for a fleet, not both")
    defaults = {key: params.get(key) for key in FLEET_KEYS if key not in ("bmc", "name", "host", "state") and params.get(key) is not None}
    found: List[Target] = []
    seen: Dict[str, str] = {}
    for index, entry in enumerate(targets):
        if not isinstance(entry, dict):
            raise PmInputError(f"targets[{index}] '{entry}' is not a dictionary; give each target as {{bmc: ADDRESS, ...}}")
        unknown = sorted(set(entry) - set(FLEET_KEYS))
        if unknown:
            raise PmInputError(f"targets[{index}] has unknown key '{unknown[0]}'; use {', '.join(FLEET_KEYS)}")
        entry = {key: value for key, value in entry.items() if value is not None}
        host = entry.get("bmc") or entry.get("host")
        if not host:
            raise PmInputError(f"targets[{index}] has no bmc; set bmc to the BMC's host name or address")
        merged = dict(defaults)
        merged.update(entry)
        merged["bmc"] = host
        merged.pop("host", None)
        label = str(entry.get("name") or host)
        target = _target(merged, label, _check_state(entry.get("state") or state, f"targets[{index}].state"), boot,
                         f"targets[{index}].protocol")
        if target.address in seen:
            raise PmInputError(f"targets[{index}] repeats BMC {target.address} (already {seen[target.address]}); list every BMC once")
        seen[target.address] = label
        found.append(target)
    return found


def _check_state(state: str, option: str) -> str:
    if state not in STATES:
        raise PmInputError(f"{option} '{state}' is not valid; use one of {', '.join(STATES)}")
    return state


def decide(targets: Sequence[Target], deadline: Deadline, tls: TlsContexts) -> None:
    """``protocol: auto``: probe every such target concurrently (each bounded by min(connect_timeout, 3 s))."""
    pending = [target for target in targets if target.protocol is None]
    if not pending:
        return

    def ask(target: Target) -> _rf_probe.ProbeResult:
        return _rf_probe.probe(_redfish_of(target), deadline, tls)

    answers: List[Union[_rf_probe.ProbeResult, PmError]] = _rf_fleet.run_each(pending, ask)
    for target, answer in zip(pending, answers):
        if isinstance(answer, PmError):
            target.protocol = "redfish"  # it answered HTTPS (a refused certificate, 401, busy): never a fall back to IPMI
            target.error = answer
        else:
            target.protocol = answer.protocol


def _redfish_of(target: Target) -> RedfishTarget:
    if target.redfish is None:  # _target sets it for every target that may use Redfish
        raise PmInputError(f"{target.label} has no Redfish settings; set protocol: redfish or auto for it")
    return target.redfish


def _ipmi_of(target: Target) -> BmcConnection:
    if target.ipmi is None:  # _target sets it for every target that may use IPMI
        raise PmInputError(f"{target.label} has no IPMI settings; set protocol: ipmi or auto for it")
    return target.ipmi


def run_targets(targets: Sequence[Target], deadline: Deadline, wait: bool, check_mode: bool, tls: Optional[TlsContexts] = None,
                progress: Optional[guard.Progress] = None) -> None:
    """Decide the protocols, then run the Redfish targets (threads) and the IPMI targets (pyghmi) at the same time.

    ``progress`` records the step of each IPMI job, keyed by its index among the IPMI jobs (:func:`run_bounded`).
    """
    tls = tls or TlsContexts()
    decide(targets, deadline, tls)
    ready = [target for target in targets if target.error is None]
    for target in ready:
        if target.protocol == "ipmi":
            target.job = _ipmi_power.PowerJob(_ipmi_of(target), target.state, target.label, target.boot)
        else:
            target.outcome = _rf_power.PowerOutcome(_rf_power.PowerRequest(_redfish_of(target), target.state, target.label, target.boot))
    redfish = [(target, target.outcome) for target in ready if target.outcome is not None]
    jobs = [target.job for target in ready if target.job is not None]

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

    worker: Optional[threading.Thread] = None
    if redfish and jobs:
        worker = threading.Thread(target=run_redfish, name="redfish-fleet", daemon=True)
        worker.start()
    elif redfish:
        run_redfish()
    try:
        if jobs:
            _ipmi_power.run_jobs(jobs, max(deadline.remaining(), 0.001), wait, check_mode, progress)
    finally:
        if worker is not None:
            # every Redfish request is bounded by the deadline, logouts by a short grace after it;
            # run_bounded's guard abandons this thread at timeout + guard.GRACE whatever happens
            worker.join(max(deadline.remaining(), 0.0) + guard.GRACE)


def run_bounded(targets: List[Target], timeout: float, wait: bool, check_mode: bool) -> List[Target]:
    """:func:`run_targets` under the hard bound (``_bmc.guard``): back by ``timeout`` plus ``guard.GRACE``.

    Returns the targets as they are then (snapshots: the abandoned worker may still write to the
    originals); a target the deadline cut off fails naming its BMC and its step.
    """
    progress = guard.Progress()
    outcome = guard.bounded(lambda: run_targets(targets, Deadline(timeout), wait, check_mode, progress=progress), timeout,
                            name="ctys-pm-power")
    if outcome.finished:
        return targets
    steps = progress.close()
    now = time.monotonic()
    frozen: List[Target] = []
    ipmi_index = 0
    for target in targets:
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
    fail_on = params.get("fail_on") or "any"
    if fail_on not in ("any", "all", "never"):
        raise PmInputError(f"fail_on '{fail_on}' is not valid; use any, all or never")
    targets = run_bounded(build_targets(params), float(timeout), bool(params.get("wait", True)), check_mode)
    elapsed = round(time.monotonic() - started, 3)
    if not params.get("targets"):
        return _single(targets[0], elapsed)
    results = [target.result() for target in targets]
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
    if failed and (fail_on == "any" or (fail_on == "all" and len(failed) == len(results))):
        names = ", ".join(f"{r['name']} ({r['msg']})" for r in failed[:5])
        more = f" and {len(failed) - 5} more" if len(failed) > 5 else ""
        raise PmError(f"{len(failed)} of {len(results)} targets failed: {names}{more}", **result)
    return result


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


__all__ = ["STATES", "FLEET_KEYS", "Target", "build_targets", "run_targets", "run_bounded", "run"]
