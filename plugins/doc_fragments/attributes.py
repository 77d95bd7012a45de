# Copyright: ctys.pm contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations


class ModuleDocFragment:
    # Common attribute definitions; each module states its support level.
    DOCUMENTATION = r"""
options: {}
attributes:
  check_mode:
    description: Can run in C(check_mode) and return changed status prediction without modifying target.
  diff_mode:
    description: Will return details on what has changed (or possibly needs changing in C(check_mode)), when in diff mode.
"""

    # For the modules of the action group bmc (meta/runtime.yml): those taking the BMC options.
    ACTIONGROUP_BMC = r"""
options: {}
attributes:
  action_group:
    description: Use C(group/ctys.pm.bmc) in C(module_defaults) to set defaults for this module.
    support: full
    membership:
      - ctys.pm.bmc
"""

    # For modules that run on the controller or a relay and talk over the network.
    NETWORK = r"""
options: {}
attributes:
  platform:
    description: Target OS/families that can be operated against.
    support: N/A
    platforms: posix
"""
