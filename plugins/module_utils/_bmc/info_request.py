# Copyright: ctys.pm contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""What an info task may ask, whatever the protocol: the sections, and how the events section is cut.

Shared by ``_ipmi.info`` and ``_redfish.info`` and by ``_bmc.info``, which needs no more of
either protocol than this to read a task's options.
"""

from __future__ import annotations

from typing import Any, Dict, List, Optional

SECTIONS = ("identity", "firmware", "events", "power", "network")


def select_events(entries: List[Dict[str, Any]], since: Optional[float], most: Optional[int], total: int) -> Dict[str, Any]:
    """The events section: entries oldest first, those at or after ``since`` (epoch seconds), the newest ``most``."""
    if since is not None:
        entries = [entry for entry in entries if entry["epoch"] is not None and entry["epoch"] >= since]
    if most is not None:
        entries = entries[-most:] if most > 0 else []
    for entry in entries:
        entry.pop("epoch", None)
    return {
        "entries": entries,
        "count": len(entries),
        "total": total,
        "critical": sum(1 for entry in entries if entry["severity"] == "critical"),
        "warning": sum(1 for entry in entries if entry["severity"] == "warning"),
    }
