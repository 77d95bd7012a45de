# Copyright: ctys.pm contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""BMC connection options: defined once, shared by every module that talks IPMI.

The documentation of these options is the ``ctys.pm.bmc`` doc fragment;
keep the two in step.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Dict, Mapping, Optional

from ansible_collections.ctys.pm.plugins.module_utils._deadline import check_seconds
from ansible_collections.ctys.pm.plugins.module_utils._errors import PmInputError
from ansible_collections.ctys.pm.plugins.module_utils._netaddr import check_port

PRIVILEGES = ("user", "operator", "administrator")
# Cipher suites a client may negotiate; 0 sends credentials nowhere and
# authenticates nothing, so it needs allow_unauthenticated.
CIPHER_SUITES = ("auto", "0", "1", "2", "3", "15", "16", "17")
DEFAULT_PORT = 623
DEFAULT_CONNECT_TIMEOUT = 10.0


def bmc_argument_spec(bmc_required: bool = False) -> Dict[str, Dict[str, Any]]:
    """The argument spec of the connection options (a fresh copy each call)."""
    return {
        "bmc": {"type": "str", "aliases": ["name", "host"], "required": bmc_required},
        "port": {"type": "int", "default": DEFAULT_PORT},
        "user": {"type": "str", "aliases": ["username"], "fallback": (_env_fallback, ["IPMI_USER"])},
        "password": {"type": "str", "no_log": True, "fallback": (_env_fallback, ["IPMI_PASSWORD"])},
        "kg": {"type": "str", "no_log": True},
        "privilege": {"type": "str", "default": "administrator", "choices": list(PRIVILEGES)},
        "cipher_suite": {"type": "str", "default": "auto", "choices": list(CIPHER_SUITES)},
        "allow_unauthenticated": {"type": "bool", "default": False},
        "connect_timeout": {"type": "float", "default": DEFAULT_CONNECT_TIMEOUT},
    }


def _env_fallback(*names: str) -> str:
    # Same contract as ansible.module_utils.basic.env_fallback, without
    # importing AnsibleModule into this file (the inventory plugin uses it too).
    import os

    from ansible.module_utils.common.parameters import AnsibleFallbackNotFound

    for name in names:
        if name in os.environ:
            return os.environ[name]
    raise AnsibleFallbackNotFound


@dataclass(frozen=True)
class BmcConnection:
    """Everything needed to open an IPMI session with one BMC."""

    host: str
    port: int = DEFAULT_PORT
    user: str = ""
    password: str = field(default="", repr=False)
    kg: Optional[str] = field(default=None, repr=False)
    privilege: str = "administrator"
    cipher_suite: str = "auto"
    connect_timeout: float = DEFAULT_CONNECT_TIMEOUT

    @property
    def address(self) -> str:
        """``host:port`` for messages ([v6]:port for IPv6 literals)."""
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{host}:{self.port}"

    @classmethod
    def from_params(cls, params: Mapping[str, Any], defaults: Optional[Mapping[str, Any]] = None) -> "BmcConnection":
        """Validate module parameters (optionally overlaid on ``defaults``).

        ``defaults`` lets fleet mode use the top-level options for keys a
        target does not set.
        """
        merged: Dict[str, Any] = dict(defaults or {})
        merged.update({k: v for k, v in params.items() if v is not None})
        host = merged.get("bmc") or merged.get("host") or merged.get("name")
        if not host or not str(host).strip():
            raise PmInputError("bmc is missing; set bmc to the BMC's host name or address, for example bmc: 192.0.2.10")
        port = check_port(merged.get("port", DEFAULT_PORT), "port")
        privilege = str(merged.get("privilege") or "administrator")
        if privilege not in PRIVILEGES:
            raise PmInputError(f"privilege '{privilege}' is not valid; use one of {', '.join(PRIVILEGES)}")
        suite = str(merged.get("cipher_suite", "auto")).strip().lower()
        if suite not in CIPHER_SUITES:
            raise PmInputError(
                f"cipher_suite '{suite}' is not valid; use auto or one of {', '.join(CIPHER_SUITES[1:])}"
            )
        if suite == "0" and not merged.get("allow_unauthenticated"):
            raise PmInputError(
                "cipher_suite '0' authenticates nothing; use 3 or 17, or set allow_unauthenticated: true if you accept that"
            )
        timeout = check_seconds("connect_timeout", merged.get("connect_timeout", DEFAULT_CONNECT_TIMEOUT), 3600, "10")
        kg = merged.get("kg") or None
        return cls(
            host=str(host).strip(),
            port=port,
            user=str(merged.get("user") or ""),
            password=str(merged.get("password") or ""),
            kg=kg,
            privilege=privilege,
            cipher_suite=suite,
            connect_timeout=timeout,
        )
