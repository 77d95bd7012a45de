# Copyright: ctys.pm contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations


class ModuleDocFragment:
    # BMC connection options (IPMI and Redfish); the matching argument spec is
    # plugins/module_utils/_bmc/options.py:bmc_argument_spec().
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
      - Port of the BMC (C(pm_bmc_port)), for the protocol used.
      - Unset means 623 (UDP, RMCP+) for IPMI and 443 (HTTPS) for Redfish. With O(protocol=auto) a port that is set
        is probed for Redfish and, when no Redfish service answers there, used for IPMI.
    type: int
  protocol:
    description:
      - How to talk to the BMC (C(pm_bmc_protocol)). V(ipmi) is IPMI 2.0 / RMCP+; V(redfish) is DMTF Redfish over HTTPS.
      - V(auto) asks the Redfish service root (an unauthenticated GET of C(/redfish/v1/), bounded by
        min(O(connect_timeout), 3 s)); a Redfish answer means Redfish; connection refused, no answer, HTTP 404 or an answer
        that is not JSON means IPMI. A refused certificate or HTTP 401 fails the task; it never falls back to IPMI.
      - Unset means V(auto) in M(ctys.pm.pm_power). M(ctys.pm.pm_ipmi_power) and M(ctys.pm.pm_console) speak IPMI only
        and refuse anything but V(ipmi); M(ctys.pm.pm_sensors) follows its O(ctys.pm.pm_sensors#module:source).
    type: str
    choices: [ipmi, redfish, auto]
  validate_certs:
    description:
      - Redfish only. Verify the BMC's TLS certificate against the system CA store or O(ca_path).
      - V(false) verifies nothing; prefer O(ca_path) or O(certificate_fingerprint) for self-signed BMCs.
    type: bool
    default: true
  ca_path:
    description:
      - Redfish only. PEM file of the CA that signed the BMC's certificate (C(pm_bmc_ca_path)), used instead of the system store.
    type: path
  certificate_fingerprint:
    description:
      - Redfish only. SHA-256 fingerprint of the BMC's certificate (64 hex digits, colons allowed, as
        C(openssl x509 -noout -fingerprint -sha256) prints it). The certificate is accepted when it matches,
        whoever signed it; the usual way to trust a self-signed BMC. Not together with O(ca_path).
    type: str
  resource_id:
    description:
      - Redfish only. Id of the computer system (C(/redfish/v1/Systems/ID)) when the BMC manages several;
        required then (the error names the ids). Unset uses the only system.
    type: str
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
      - RMCP+ cipher suite of the session. Only the suites pyghmi negotiates are offered.
      - V(auto) proposes suite 17 (HMAC-SHA256 authentication, HMAC-SHA256-128 integrity, AES-CBC-128)
        and falls back to suite 3 (HMAC-SHA1, HMAC-SHA1-96, AES-CBC-128) when the BMC refuses 17.
      - V(3) proposes suite 3 from the first request.
      - V(17) proposes suite 17; a BMC that offers only suite 3 fails the login with a message saying so.
      - Suite 0 (no authentication) and suites 1, 2, 15 and 16 are not offered, because pyghmi cannot
        negotiate them.
    type: str
    default: auto
    choices: [auto, '3', '17']
  connect_timeout:
    description:
      - Seconds to wait for the BMC to answer the session set-up, login included.
      - A dead or silent BMC fails within this time with a message naming host and port; with O(protocol=auto) the
        Redfish probe comes first, so such a BMC costs up to min(O(connect_timeout), 3 s) more.
      - A BMC that stalls in any login step costs only its own O(connect_timeout); the other BMCs of a fleet
        finish as if it were not there.
    type: float
    default: 10
notes:
  - For M(ctys.pm.pm_ipmi_power), M(ctys.pm.pm_sensors) with O(ctys.pm.pm_sensors#module:source=ipmi) and
    M(ctys.pm.pm_console), the task's C(timeout) is a hard bound; the task returns by C(timeout) plus at most 1 s
    (about 2 s with the module's start and result writing), whatever the BMC or the IPMI library do, with a result for
    every target. A target cut off by the deadline fails naming its host and port and the
    step it was in (V(login), V(command) or V(waiting for the state)), also in its per-target C(step) in fleet mode.
"""
