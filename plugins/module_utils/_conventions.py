# Copyright: ctys.pm contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Host variable names shared by the inventory plugin, roles, playbooks and the lab.

Keeping them in one place means a host described once (by the ctys inventory,
by ``pmlab``, or by hand) works with every role and playbook.
"""

from __future__ import annotations

PM_BMC_HOST = "pm_bmc_host"
PM_BMC_PORT = "pm_bmc_port"
PM_BMC_USER = "pm_bmc_user"
PM_BMC_PASSWORD = "pm_bmc_password"
PM_MAC = "pm_mac"
PM_WOL_BROADCAST = "pm_wol_broadcast"
PM_WOL_PORT = "pm_wol_port"
PM_WOL_INTERFACE = "pm_wol_interface"  # the machine's own armed NIC (role pm_wol_prepare)
PM_WAKE_INTERFACE = "pm_wake_interface"  # the NIC raw magic frames leave from, on the controller or relay

HOST_VARIABLES = (
    PM_BMC_HOST,
    PM_BMC_PORT,
    PM_BMC_USER,
    PM_BMC_PASSWORD,
    PM_MAC,
    PM_WOL_BROADCAST,
    PM_WOL_PORT,
    PM_WOL_INTERFACE,
    PM_WAKE_INTERFACE,
)

# Variables that hold secrets: never print them, never write them unencrypted.
SECRET_HOST_VARIABLES = (PM_BMC_PASSWORD,)
