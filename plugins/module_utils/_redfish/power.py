# Copyright: ctys.pm contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Power state and boot override through Redfish, for one BMC or a fleet.

The ResetType is chosen from the values the BMC allows (first allowed wins):

=====  ==========================================================
on     On, ForceOn, PushPowerButton
off    ForceOff
soft   GracefulShutdown, PushPowerButton (never ForceOff)
reset  ForceRestart
cycle  PowerCycle; else ForceOff, wait for Off, then On
boot   On when off, ForceRestart when on
=====  ==========================================================

Then ``PowerState`` is polled (PoweringOn/PoweringOff are "not yet") with
back-off from 0.2 s. A machine already in the wanted state gets no request.
Results carry the keys ``pm_ipmi_power`` returns per target, plus
``protocol: redfish``, ``reset_type`` and ``resource_id``.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any, Callable, Dict, List, Optional, Sequence, Tuple

from ansible_collections.ctys.pm.plugins.module_utils._bmc.power_request import BootRequest, boot_matches
from ansible_collections.ctys.pm.plugins.module_utils._deadline import Deadline, backoff
from ansible_collections.ctys.pm.plugins.module_utils._errors import PmError, PmStateError, PmTimeoutError, PmUnsupportedError
from ansible_collections.ctys.pm.plugins.module_utils._redfish import fleet
from ansible_collections.ctys.pm.plugins.module_utils._redfish.client import Connection, Logger, RedfishTarget, Session, TlsContexts
from ansible_collections.ctys.pm.plugins.module_utils._redfish.errors import RedfishPreconditionError
from ansible_collections.ctys.pm.plugins.module_utils._redfish.system import System, find_system, refresh

RESET_CHOICES: Dict[str, Tuple[str, ...]] = {
    "on": ("On", "ForceOn", "PushPowerButton"),
    "off": ("ForceOff",),
    "soft": ("GracefulShutdown", "PushPowerButton"),
    "reset": ("ForceRestart",),
    "cycle": ("PowerCycle",),
}
BOOT_TARGETS = {"network": "Pxe", "hd": "Hdd", "cdrom": "Cd", "bios": "BiosSetup", "floppy": "Floppy"}
TARGET_DEVICES = {target: device for device, target in BOOT_TARGETS.items()}
BOOT_MODES = {"uefi": "UEFI", "legacy": "Legacy"}
HEADING_ON = ("On", "PoweringOn", "Paused")
SETTLED = ("On", "Off", "Paused")


@dataclass
class PowerRequest:
    """One target: the BMC, the wanted state, the boot override."""

    target: RedfishTarget
    state: str = "query"
    label: Optional[str] = None
    boot: Optional[BootRequest] = None


@dataclass
class PowerOutcome:
    """What happened on one target."""

    request: PowerRequest
    before: Optional[str] = None
    after: Optional[str] = None
    boot_before: Optional[Dict[str, Any]] = None
    boot_after: Optional[Dict[str, Any]] = None
    changed: bool = False
    reset_type: Optional[str] = None
    resource_id: Optional[str] = None
    auth: Optional[str] = None  # session or basic
    warnings: List[str] = field(default_factory=list)
    error: Optional[PmError] = None
    started: float = field(default_factory=time.monotonic)
    finished: Optional[float] = None

    @property
    def label(self) -> str:
        return self.request.label or self.request.target.host

    def result(self) -> Dict[str, Any]:
        """The per-target result, with the keys of pm_ipmi_power's fleet results."""
        data: Dict[str, Any] = {
            "name": self.label,
            "bmc": self.request.target.address,
            "state": self.request.state,
            "changed": self.changed,
            "power_state_before": self.before,
            "power_state": self.after,
            "elapsed": round((self.finished or time.monotonic()) - self.started, 3),
            "protocol": "redfish",
            "reset_type": self.reset_type,
            "resource_id": self.resource_id,
        }
        if self.boot_after is not None or self.boot_before is not None:
            data["boot_device"] = self.boot_after or self.boot_before
        if self.warnings:
            data["warnings"] = list(self.warnings)
        data["failed"] = self.error is not None
        if self.error is not None:
            data["msg"] = self.error.msg
        return data

    def diff(self) -> Dict[str, Any]:
        return {
            "before": {"power_state": self.before, "boot_device": self.boot_before},
            "after": {"power_state": self.after, "boot_device": self.boot_after or self.boot_before},
        }


# ----------------------------------------------------------------- power
def power_word(raw: Optional[str]) -> Optional[str]:
    """``on``/``off`` for a Redfish PowerState (a transition counts as where it is heading)."""
    if raw is None:
        return None
    return "on" if raw in HEADING_ON else "off"


def choose(state: str, allowed: Optional[Sequence[str]], address: str) -> str:
    """The first ResetType for ``state`` the BMC allows (every standard one when it does not say)."""
    choices = RESET_CHOICES[state]
    if allowed is None:
        return choices[0]
    for choice in choices:
        if choice in allowed:
            return choice
    offered = ", ".join(allowed) or "none"
    if state == "soft":
        raise PmUnsupportedError(
            f"the BMC at {address} offers no graceful shutdown (ResetType allowed: {offered}); use state: off for a hard power off"
        )
    raise PmUnsupportedError(f"the BMC at {address} offers no ResetType for state '{state}' ({', '.join(choices)}; allowed: {offered})")


def plan(state: str, raw: Optional[str], allowed: Optional[Sequence[str]], address: str) -> List[Tuple[str, str]]:
    """[(ResetType, PowerState to wait for)] for ``state`` given the current PowerState; [] when nothing is to do."""
    heading = power_word(raw)
    if state == "query":
        return []
    if state == "on":
        return [] if heading == "on" else [(choose("on", allowed, address), "On")]
    if state in ("off", "soft"):
        return [] if heading == "off" else [(choose(state, allowed, address), "Off")]
    if state == "boot":
        return [(choose("on", allowed, address), "On")] if heading == "off" else [(choose("reset", allowed, address), "On")]
    if heading == "off":  # reset, cycle
        raise PmStateError(f"state '{state}' needs a running machine and this one is off; use state: boot to power on or reset")
    if state == "reset":
        return [(choose("reset", allowed, address), "On")]
    if allowed is None or "PowerCycle" in allowed:
        return [("PowerCycle", "On")]
    return [(choose("off", allowed, address), "Off"), (choose("on", allowed, address), "On")]


def wait_power(conn: Connection, system: System, wanted: str, deadline: Deadline, state: str,
               sleeper: Callable[[float], None] = time.sleep) -> str:
    """Poll PowerState until it is ``wanted`` (On/Off); PoweringOn/PoweringOff are "not yet"."""
    pauses = backoff(0.2, 1.5, 2.0)
    while True:
        seen = refresh(conn, system).power_state
        if seen == wanted:
            return seen
        pause = next(pauses)
        if deadline.remaining() <= pause:
            hint = "; raise timeout if the machine needs longer"
            if state == "soft":
                hint = " (the OS may ignore the ACPI request; use state: off for a hard power off)"
            raise PmTimeoutError(
                f"the machine of the BMC at {conn.target.address} did not reach PowerState '{wanted}' within the timeout of "
                f"{deadline.seconds:g} s; the BMC still reports '{seen}'{hint}"
            )
        sleeper(pause)


# ----------------------------------------------------------------- boot override
def read_boot(boot: Dict[str, Any]) -> Dict[str, Any]:
    """device/persistent/mode (the names pm_ipmi_power returns) from a Redfish ``Boot`` object."""
    enabled = boot.get("BootSourceOverrideEnabled")
    target = boot.get("BootSourceOverrideTarget")
    mode = boot.get("BootSourceOverrideMode")
    if enabled in (None, "Disabled") or target in (None, "None"):
        device = "default"
    else:
        device = TARGET_DEVICES.get(str(target), str(target))
    return {
        "device": device,
        "persistent": device != "default" and enabled == "Continuous",
        "mode": "uefi" if mode == "UEFI" else "legacy" if mode == "Legacy" else None,
    }


def _allowed(boot: Dict[str, Any], key: str) -> Optional[List[str]]:
    values = boot.get(f"{key}@Redfish.AllowableValues")
    return [str(v) for v in values] if isinstance(values, list) else None


def boot_patch(boot: Dict[str, Any], wish: BootRequest, address: str) -> Dict[str, str]:
    """The ``Boot`` object to PATCH, checked against the values the BMC allows."""
    targets = _allowed(boot, "BootSourceOverrideTarget")
    enabled_values = _allowed(boot, "BootSourceOverrideEnabled")
    if wish.device == "default":
        patch = {"BootSourceOverrideEnabled": "Disabled"}
        if targets is None or "None" in targets:
            patch["BootSourceOverrideTarget"] = "None"
        return patch
    target = BOOT_TARGETS.get(wish.device)
    if target is None:
        raise PmUnsupportedError(
            f"boot_device '{wish.device}' has no Redfish equivalent on the BMC at {address}; use one of {', '.join(BOOT_TARGETS)} or default"
        )
    if targets is not None and target not in targets:
        raise PmUnsupportedError(
            f"the BMC at {address} does not offer boot_device '{wish.device}' (Redfish {target}; it allows {', '.join(targets) or 'none'})"
        )
    enabled = "Continuous" if wish.persistent else "Once"
    if enabled_values is not None and enabled not in enabled_values:
        fix = "set boot_persistent: true" if not wish.persistent else "set boot_persistent: false"
        raise PmUnsupportedError(f"the BMC at {address} does not offer a {enabled} boot override (it allows {', '.join(enabled_values)}); {fix}")
    patch = {"BootSourceOverrideTarget": target, "BootSourceOverrideEnabled": enabled}
    if wish.mode:
        mode = BOOT_MODES[wish.mode]
        modes = _allowed(boot, "BootSourceOverrideMode")
        if modes is not None and mode not in modes:
            raise PmUnsupportedError(f"the BMC at {address} does not offer boot_mode '{wish.mode}' (it allows {', '.join(modes)})")
        patch["BootSourceOverrideMode"] = mode
    return patch


def set_boot(conn: Connection, system: System, wish: BootRequest) -> Tuple[Dict[str, Any], List[str]]:
    """PATCH the override (settings URI and If-Match where the BMC wants them), read it back; (read back, warnings)."""
    address = conn.target.address
    patch = boot_patch(system.boot, wish, address)
    uri, etag = system.uri, system.etag
    if system.settings_uri:
        uri = system.settings_uri
        _document, etag = conn.get_with_etag(uri)
    for attempt in (1, 2):
        headers = {"If-Match": etag} if etag else {}
        try:
            conn.request("PATCH", uri, {"Boot": patch}, headers=headers)
            break
        except RedfishPreconditionError:
            if attempt == 2:
                raise
            _document, etag = conn.get_with_etag(uri)  # changed by someone else meanwhile: once more with the new ETag
    document, _etag = conn.get_with_etag(uri)
    if uri == system.uri:
        system.document, system.etag = document, _etag
    found_boot = document.get("Boot")
    boot: Dict[str, Any] = found_boot if isinstance(found_boot, dict) else {}
    seen = read_boot(boot)
    asked = f"{patch.get('BootSourceOverrideTarget', 'None')}/{patch['BootSourceOverrideEnabled']}"
    got = f"{boot.get('BootSourceOverrideTarget')}/{boot.get('BootSourceOverrideEnabled')}"
    if seen["device"] != wish.device:
        raise PmUnsupportedError(
            f"the BMC at {address} accepted the boot override {asked} but reads back {got}: it ignores the override "
            "(some firmware does, for one-time overrides or in UEFI mode); try boot_persistent: true, or set the boot order in the firmware setup"
        )
    warnings = []
    if wish.device != "default" and seen["persistent"] != bool(wish.persistent):
        warnings.append(f"the BMC at {address} reads the boot override back as {got} although {asked} was asked")
    if wish.device != "default" and wish.mode and seen["mode"] not in (None, wish.mode):
        warnings.append(f"the BMC at {address} reads boot_mode back as '{seen['mode']}' although '{wish.mode}' was asked")
    return seen, warnings


# ----------------------------------------------------------------- one target, a fleet
def run_one(request: PowerRequest, deadline: Deadline, tls: Optional[TlsContexts] = None, wait: bool = True,
            check_mode: bool = False, log: Optional[Logger] = None, sleeper: Callable[[float], None] = time.sleep) -> PowerOutcome:
    """Read, act, wait and read back on one BMC; a failure is kept in ``outcome.error``, never raised."""
    outcome = PowerOutcome(request)
    session = Session(request.target, deadline, tls, log, sleeper)
    try:
        with session as conn:
            outcome.auth = session.mode
            if session.why_basic:
                outcome.warnings.append(f"{session.why_basic}; basic authentication was used")
            _act(conn, outcome, deadline, wait, check_mode, sleeper)
    except PmError as error:
        outcome.error = error
    outcome.finished = time.monotonic()
    return outcome


def _act(conn: Connection, outcome: PowerOutcome, deadline: Deadline, wait: bool, check_mode: bool,
         sleeper: Callable[[float], None]) -> None:
    request = outcome.request
    address = conn.target.address
    system = find_system(conn, request.target.resource_id)
    outcome.resource_id = system.id
    outcome.before = power_word(system.power_state)
    if request.boot is not None:
        outcome.boot_before = read_boot(system.boot)
        if boot_matches(outcome.boot_before, request.boot):
            outcome.boot_after = outcome.boot_before
        else:
            outcome.changed = True
            if check_mode:
                wish = request.boot
                outcome.boot_after = {"device": wish.device, "persistent": bool(wish.persistent) and wish.device != "default",
                                      "mode": wish.mode or outcome.boot_before["mode"]}
            else:
                outcome.boot_after, warnings = set_boot(conn, system, request.boot)
                outcome.warnings.extend(warnings)
    steps = plan(request.state, system.power_state, system.reset_types, address)
    if not steps:
        if wait and not check_mode and system.power_state not in SETTLED and request.state != "query":
            wanted = "On" if outcome.before == "on" else "Off"
            wait_power(conn, system, wanted, deadline, request.state, sleeper)  # already heading there: no request
        outcome.after = power_word(system.power_state)
        return
    outcome.changed = True
    outcome.reset_type = "+".join(reset for reset, _wanted in steps)
    if check_mode:
        outcome.after = "on" if steps[-1][1] == "On" else "off"
        return
    target_uri = system.reset_target or f"{system.uri}/Actions/ComputerSystem.Reset"
    for index, (reset, wanted) in enumerate(steps):
        conn.request("POST", target_uri, {"ResetType": reset})
        if index < len(steps) - 1 or wait:  # the off of a two-step cycle is always waited for
            wait_power(conn, system, wanted, deadline, request.state, sleeper)
    outcome.after = power_word(refresh(conn, system).power_state) if not wait else power_word(system.power_state)


def run_fleet(requests: Sequence[PowerRequest], timeout: float, wait: bool = True, check_mode: bool = False,
              log: Optional[Logger] = None, tls: Optional[TlsContexts] = None) -> List[PowerOutcome]:
    """Every request concurrently (one thread and connection each), one SSL context and one deadline for all."""
    deadline = Deadline(timeout)
    contexts = tls or TlsContexts()
    done = fleet.run_each(list(requests), lambda request: run_one(request, deadline, contexts, wait, check_mode, log))
    outcomes: List[PowerOutcome] = []
    for request, item in zip(requests, done):
        if isinstance(item, PowerOutcome):
            outcomes.append(item)
        else:  # an error outside run_one's own handling (a bug); kept per target
            outcome = PowerOutcome(request, error=item)
            outcome.finished = time.monotonic()
            outcomes.append(outcome)
    return outcomes


__all__ = ["PowerRequest", "PowerOutcome", "run_one", "run_fleet", "plan", "choose", "read_boot", "boot_patch",
           "set_boot", "wait_power"]
