# Copyright: ctys.pm contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations


class ModuleDocFragment:
    # BMC connection options; the matching argument spec is
    # plugins/module_utils/_bmc.py:bmc_argument_spec().
    DOCUMENTATION = r"""
options:
  bmc:
    description:
      - Host name or IP address (IPv4 or IPv6) of the BMC.
      - Conventionally taken from the host variable C(pm_bmc_host).
    type: str
    aliases: [name, host]
  port:
    description:
      - UDP port of the BMC's RMCP+ service (C(pm_bmc_port)).
    type: int
    default: 623
  user:
    description:
      - BMC user name (C(pm_bmc_user)).
      - If not set, the environment variable E(IPMI_USER) is used.
    type: str
    aliases: [username]
  password:
    description:
      - Password of O(user) (C(pm_bmc_password)).
      - If not set, the environment variable E(IPMI_PASSWORD) is used, as C(ipmitool -E) does.
    type: str
  kg:
    description:
      - BMC key (K_g) for two-key authentication, as plain text.
    type: str
  privilege:
    description:
      - Privilege level requested for the session.
      - Power control needs V(operator) or V(administrator).
    type: str
    choices: [user, operator, administrator]
    default: administrator
  cipher_suite:
    description:
      - RMCP+ cipher suite.
      - V(auto) proposes suite 17 (HMAC-SHA256, AES) and falls back to suite 3 (HMAC-SHA1, AES)
        when the BMC does not support 17.
      - A number forces that suite. Suite V(0) authenticates nothing and is refused unless
        O(allow_unauthenticated=true).
    type: str
    default: auto
    choices: [auto, '0', '1', '2', '3', '15', '16', '17']
  allow_unauthenticated:
    description:
      - Allow O(cipher_suite=0), which sends commands without authentication or integrity.
    type: bool
    default: false
  connect_timeout:
    description:
      - Seconds to wait for the BMC to answer the session set-up, login included.
      - A dead or silent BMC fails within this time with a message naming host and port.
    type: float
    default: 10
"""
