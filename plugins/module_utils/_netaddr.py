# Copyright: ctys.pm contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Parsing and checking of network identifiers: MAC addresses, interface names, ports."""

from __future__ import annotations

import re

from ansible_collections.ctys.pm.plugins.module_utils._errors import PmInputError

_MAC_FORMS = (
    re.compile(r"^([0-9a-f]{1,2})([:-])([0-9a-f]{1,2})\2([0-9a-f]{1,2})\2([0-9a-f]{1,2})\2([0-9a-f]{1,2})\2([0-9a-f]{1,2})$"),
    re.compile(r"^([0-9a-f]{4})\.([0-9a-f]{4})\.([0-9a-f]{4})$"),
    re.compile(r"^([0-9a-f]{12})$"),
)
MAC_EXAMPLE = "00:1a:2b:3c:4d:5e"
# Linux IFNAMSIZ is 16 including the NUL; '/' and whitespace are never allowed.
_IFNAME = re.compile(r"^[A-Za-z0-9_.:@+-]{1,15}$")


def parse_mac(value: object, option: str = "mac") -> str:
    """Return ``value`` as a lower-case, colon-separated MAC address.

    Accepts ``00:1a:2b:3c:4d:5e``, ``00-1A-2B-3C-4D-5E``, ``001a.2b3c.4d5e``,
    ``001a2b3c4d5e`` and the non-padded ``0:1a:2b:3:4d:5e`` that BSD prints.
    """
    text = str(value).strip().lower()
    for form in _MAC_FORMS:
        match = form.fullmatch(text)
        if not match:
            continue
        groups = [g for g in match.groups() if g not in (":", "-")]
        if len(groups) == 6:
            octets = [g.zfill(2) for g in groups]
        else:
            digits = "".join(groups)
            octets = [digits[i:i + 2] for i in range(0, 12, 2)]
        return ":".join(octets)
    raise PmInputError(
        f"{option} '{value}' is not a MAC address; use six hex octets such as {MAC_EXAMPLE}"
    )


def mac_bytes(mac: str) -> bytes:
    """The six bytes of a MAC address in any form :func:`parse_mac` accepts."""
    return bytes.fromhex(parse_mac(mac).replace(":", ""))


def check_interface_name(value: object, option: str = "interface") -> str:
    """Return ``value`` if it can be a Linux interface name, else raise."""
    text = str(value)
    if not _IFNAME.fullmatch(text) or text in (".", ".."):
        raise PmInputError(
            f"{option} '{value}' is not a valid interface name; use 1 to 15 letters, digits or '_.:@+-' such as eth0"
        )
    return text


def check_port(value: object, option: str = "port", example: int = 9) -> int:
    """Return ``value`` as a TCP/UDP port number, else raise (``example``: the usual port, named in the message)."""
    try:
        port = int(str(value))
    except ValueError:
        port = -1
    if not 1 <= port <= 65535:
        raise PmInputError(f"{option} '{value}' is outside 1..65535; use a port number such as {example}")
    return port
