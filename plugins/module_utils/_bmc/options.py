# Copyright: ctys.pm contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""BMC connection options: defined once, shared by every module that talks IPMI.

The documentation of these options is the ``ctys.pm.bmc`` doc fragment;
keep the two in step.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Dict, Mapping, Optional, Sequence

from ansible_collections.ctys.pm.plugins.module_utils._deadline import check_seconds
from ansible_collections.ctys.pm.plugins.module_utils._errors import PmInputError
from ansible_collections.ctys.pm.plugins.module_utils._ipmi import ciphers
from ansible_collections.ctys.pm.plugins.module_utils._netaddr import check_port

PRIVILEGES = ("user", "operator", "administrator")
# The cipher suites pyghmi really negotiates (see _ipmi/ciphers.py, which decides what each means)
CIPHER_SUITES = ciphers.SUITES
DEFAULT_PORT = 623
PROTOCOLS = ("ipmi", "redfish", "auto")
DEFAULT_CONNECT_TIMEOUT = 10.0


def bmc_argument_spec(bmc_required: bool = False) -> Dict[str, Dict[str, Any]]:
    """The argument spec of the connection options (a fresh copy each call)."""
    return {
        "bmc": {"type": "str", "aliases": ["name", "host"], "required": bmc_required},
        "port": {"type": "int"},  # None: 623 for IPMI, 443 for Redfish (resolved per protocol)
        "protocol": {"type": "str", "choices": list(PROTOCOLS)},
        "user": {"type": "str", "aliases": ["username"], "fallback": (_env_fallback, ["IPMI_USER"])},
        "password": {"type": "str", "no_log": True, "fallback": (_env_fallback, ["IPMI_PASSWORD"])},
        "kg": {"type": "str", "no_log": True},
        "privilege": {"type": "str", "default": "administrator", "choices": list(PRIVILEGES)},
        "cipher_suite": {"type": "str", "default": "auto", "choices": list(CIPHER_SUITES)},
        "connect_timeout": {"type": "float", "default": DEFAULT_CONNECT_TIMEOUT},
        # Redfish only (plugins/module_utils/_redfish/client.py:RedfishTarget); the IPMI modules ignore them
        "validate_certs": {"type": "bool", "default": True},
        "ca_path": {"type": "path"},
        "certificate_fingerprint": {"type": "str"},
        "resource_id": {"type": "str"},
    }


def fleet_target_options() -> Dict[str, Dict[str, Any]]:
    """The suboptions of a fleet target (``targets[]``) shared by the BMC modules: the connection options (a fresh copy)."""
    return {
        "bmc": {"type": "str", "aliases": ["host"]},
        "name": {"type": "str"},
        "protocol": {"type": "str", "choices": list(PROTOCOLS)},
        "port": {"type": "int"},
        "user": {"type": "str"},
        "password": {"type": "str", "no_log": True},
        "kg": {"type": "str", "no_log": True},
        "privilege": {"type": "str", "choices": list(PRIVILEGES)},
        "cipher_suite": {"type": "str"},
        "connect_timeout": {"type": "float"},
        "validate_certs": {"type": "bool"},
        "ca_path": {"type": "path"},
        "certificate_fingerprint": {"type": "str"},
        "resource_id": {"type": "str"},
    }


FLEET_KEYS = tuple(fleet_target_options())


def fleet_argument_spec(**per_target: Dict[str, Any]) -> Dict[str, Dict[str, Any]]:
    """``targets`` and ``fail_on`` (doc fragment ``ctys.pm.fleet``); ``per_target`` adds a module's own target keys."""
    target = fleet_target_options()
    target.update(per_target)
    return {
        "targets": {"type": "list", "elements": "dict", "options": target},
        "fail_on": {"type": "str", "default": "any", "choices": ["any", "all", "never"]},
    }


def power_argument_spec(states: Sequence[str], boot_devices: Sequence[str], boot_modes: Sequence[str]) -> Dict[str, Dict[str, Any]]:
    """pm_power's and pm_ipmi_power's own options (doc fragments ``ctys.pm.power`` and ``ctys.pm.fleet.POWER``)."""
    spec: Dict[str, Dict[str, Any]] = {
        "state": {"type": "str", "default": "query", "choices": list(states)},
        "wait": {"type": "bool", "default": True},
        "timeout": {"type": "float", "default": 300},
        "boot_device": {"type": "str", "choices": list(boot_devices)},
        "boot_persistent": {"type": "bool", "default": False},
        "boot_mode": {"type": "str", "choices": list(boot_modes)},
    }
    spec.update(fleet_argument_spec(state={"type": "str", "choices": list(states)}))
    return spec


def require_ipmi(params: Mapping[str, Any], module: str) -> None:
    """Refuse ``protocol`` other than ipmi, for the task or for one of its targets, in a module that speaks IPMI only."""
    asked = [("protocol", params.get("protocol"))]
    asked += [(f"targets[{index}].protocol", target.get("protocol")) for index, target in enumerate(params.get("targets") or [])
              if isinstance(target, Mapping)]
    for option, protocol in asked:
        if protocol not in (None, "ipmi"):
            raise PmInputError(
                f"{option} '{protocol}' is not valid for {module}, which speaks IPMI only; "
                "use ctys.pm.pm_power for Redfish or auto, or set protocol: ipmi"
            )


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
class CommonOptions:
    """What every protocol's connection shares: where the BMC is, who logs in, how long a connection may take."""

    host: str
    port: int
    user: str
    password: str = field(repr=False)
    connect_timeout: float
    merged: Dict[str, Any] = field(repr=False)  # every option, ``defaults`` overlaid by ``params``: for the protocol's own checks

    @classmethod
    def from_params(cls, params: Mapping[str, Any], defaults: Optional[Mapping[str, Any]], default_port: int) -> "CommonOptions":
        """Validate the shared options of module parameters (optionally overlaid on ``defaults``)."""
        merged: Dict[str, Any] = dict(defaults or {})
        merged.update({k: v for k, v in params.items() if v is not None})
        host = merged.get("bmc") or merged.get("host") or merged.get("name")
        if not host or not str(host).strip():
            raise PmInputError("bmc is missing; set bmc to the BMC's host name or address, for example bmc: 192.0.2.10")
        return cls(
            host=str(host).strip(),
            port=check_port(default_port if merged.get("port") is None else merged["port"], "port", default_port),
            user=str(merged.get("user") or ""),
            password=str(merged.get("password") or ""),
            connect_timeout=check_seconds("connect_timeout", merged.get("connect_timeout", DEFAULT_CONNECT_TIMEOUT), 3600, "10"),
            merged=merged,
        )


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
        shared = CommonOptions.from_params(params, defaults, DEFAULT_PORT)
        merged = shared.merged
        privilege = str(merged.get("privilege") or "administrator")
        if privilege not in PRIVILEGES:
            raise PmInputError(f"privilege '{privilege}' is not valid; use one of {', '.join(PRIVILEGES)}")
        suite = ciphers.choose(merged.get("cipher_suite", "auto")).asked
        return cls(
            host=shared.host,
            port=shared.port,
            user=shared.user,
            password=shared.password,
            kg=merged.get("kg") or None,
            privilege=privilege,
            cipher_suite=suite,
            connect_timeout=shared.connect_timeout,
        )
