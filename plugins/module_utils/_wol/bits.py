# Copyright: ctys.pm contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The NIC Wake-on-LAN modes: the kernel's WAKE_* bits and ethtool's letters, in one table.

Every reader and writer of the register (pm_wol_flag, pm_info, the persistent
configuration) converts through this module, so a mask means the same letters everywhere.
"""

from __future__ import annotations

from typing import Dict, Tuple

# <linux/ethtool.h>: WAKE_PHY .. WAKE_FILTER, with ethtool's letter for each, in ethtool's print order.
WAKE_PHY = 0x01  # p
WAKE_UCAST = 0x02  # u
WAKE_MCAST = 0x04  # m
WAKE_BCAST = 0x08  # b
WAKE_ARP = 0x10  # a
WAKE_MAGIC = 0x20  # g
WAKE_MAGICSECURE = 0x40  # s: magic packet with a SecureOn password
WAKE_FILTER = 0x80  # f

WOL_BITS: Tuple[Tuple[str, int], ...] = (
    ("p", WAKE_PHY),
    ("u", WAKE_UCAST),
    ("m", WAKE_MCAST),
    ("b", WAKE_BCAST),
    ("a", WAKE_ARP),
    ("g", WAKE_MAGIC),
    ("s", WAKE_MAGICSECURE),
    ("f", WAKE_FILTER),
)
WOL_LETTERS = "".join(letter for letter, _bit in WOL_BITS)  # "pumbagsf"
_BIT_OF: Dict[str, int] = dict(WOL_BITS)


def letters(mask: int) -> str:
    """ethtool's notation of ``mask``: ``g``, ``pumbg``, or ``d`` for none."""
    return "".join(letter for letter, bit in WOL_BITS if mask & bit) or "d"


def mask_of(text: str) -> int:
    """Bits of the known letters in ``text`` ('d' and unknown letters add nothing)."""
    mask = 0
    for char in text:
        mask |= _BIT_OF.get(char, 0)
    return mask
