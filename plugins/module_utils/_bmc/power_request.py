# Copyright: ctys.pm contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""What a power task asks, whatever the protocol: the states, the boot override, their checks.

Shared by ``_ipmi.power`` and ``_redfish.power`` (each maps them to its own wire values) and
by ``_bmc.power``, which needs no more of either protocol than this to read a task's options.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Dict, Optional

from ansible_collections.ctys.pm.plugins.module_utils._bmc import options
from ansible_collections.ctys.pm.plugins.module_utils._errors import PmInputError

STATES = ("on", "off", "soft", "reset", "cycle", "boot", "query")
BOOT_DEVICES = ("network", "hd", "cdrom", "bios", "floppy", "safe", "default")
BOOT_MODES = ("legacy", "uefi")
# what a fleet entry may set: the connection options (both protocols) and its own host and state
FLEET_KEYS = options.FLEET_KEYS + ("host", "state")


@dataclass
class BootRequest:
    """``boot_device``, ``boot_persistent`` and ``boot_mode`` as asked."""

    device: str
    persistent: bool = False
    mode: Optional[str] = None


def boot_matches(current: Dict[str, Any], boot: BootRequest) -> bool:
    """Whether the boot override read back (``device``, ``persistent``, ``mode``) already is the one asked."""
    if current["device"] != boot.device:
        return False
    if boot.device == "default":
        return True
    if current["persistent"] != boot.persistent:
        return False
    return boot.mode is None or current["mode"] == boot.mode


def validate_boot(params: Dict[str, Any]) -> Optional[BootRequest]:
    device = params.get("boot_device")
    if device is None:
        if params.get("boot_persistent") or params.get("boot_mode"):
            raise PmInputError("boot_persistent and boot_mode need boot_device; set boot_device, for example boot_device: network")
        return None
    if device not in BOOT_DEVICES:
        raise PmInputError(f"boot_device '{device}' is not valid; use one of {', '.join(BOOT_DEVICES)}")
    mode = params.get("boot_mode")
    if mode is not None and mode not in BOOT_MODES:
        raise PmInputError(f"boot_mode '{mode}' is not valid; use legacy or uefi")
    return BootRequest(device, bool(params.get("boot_persistent")), mode)


def check_state(state: str, option: str) -> str:
    """``state`` if it is one of STATES; ``option`` names where it was set (``state``, ``targets[2].state``)."""
    if state not in STATES:
        raise PmInputError(f"{option} '{state}' is not valid; use one of {', '.join(STATES)}")
    return state
