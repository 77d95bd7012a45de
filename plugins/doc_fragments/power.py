# Copyright: ctys.pm contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations


class ModuleDocFragment:
    # The power options of pm_power and pm_ipmi_power (fleet mode: ctys.pm.fleet.POWER); the matching argument spec is
    # plugins/module_utils/_bmc/options.py:power_argument_spec().
    DOCUMENTATION = r"""
options:
  state:
    description:
      - V(on) powers on; V(off) is a hard power off; V(soft) asks the OS to shut down (ACPI power button) and waits for off.
      - V(reset) and V(cycle) need a running machine (they fail on a machine that is off).
      - V(boot) powers on a machine that is off and resets one that is on (ctys "when the PM is running it is rebooted, else booted").
      - V(query) changes nothing.
      - V(on), V(off), V(soft) and V(query) change nothing when the machine is already so.
    type: str
    choices: ['on', 'off', soft, reset, cycle, boot, query]
    default: query
  wait:
    description: Wait until the BMC reports the target power state.
    type: bool
    default: true
  timeout:
    description:
      - Seconds the whole task may take, protocol probe, logins, retries and waiting included.
      - A hard bound; the task returns by then plus at most 1 s, with a result for every target naming the BMC and the step
        it was cut off in.
    type: float
    default: 300
  boot_device:
    description:
      - Boot device to set before the power action. V(bios) enters the firmware setup; V(default) clears the override.
      - Over Redfish (M(ctys.pm.pm_power)) V(network), V(hd), V(cdrom), V(bios) and V(floppy) are C(Pxe), C(Hdd), C(Cd),
        C(BiosSetup) and C(Floppy), checked against the values the BMC allows; V(safe) exists on IPMI only. The setting
        is read back, and a BMC that ignores it fails the task saying so.
      - Changes nothing when the BMC already has this setting.
    type: str
    choices: [network, hd, cdrom, bios, floppy, safe, default]
  boot_persistent:
    description: Keep O(boot_device) for all future boots instead of the next one only (Redfish C(Continuous) instead of C(Once)).
    type: bool
    default: false
  boot_mode:
    description: Firmware boot mode to request with O(boot_device). Unset keeps what the BMC has.
    type: str
    choices: [legacy, uefi]
"""
