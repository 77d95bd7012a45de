"""The recorded BMC answers of tests/unit/fixtures/ipmi and ipmitool's own views of them, parsed."""

from __future__ import annotations

import datetime
import json
import re
from pathlib import Path
from typing import Any, Dict, List, Optional

FIXTURES = Path(__file__).resolve().parents[1] / "unit" / "fixtures" / "ipmi"
NAMES = ("ipmi_sim", "lab_bmc")


def load(name: str) -> Dict[str, Any]:
    return json.loads((FIXTURES / f"{name}.json").read_text())


def colon_fields(text: str) -> Dict[str, str]:
    """ipmitool's "Key : value" lines (first occurrence wins)."""
    fields: Dict[str, str] = {}
    for line in text.splitlines():
        if ":" in line:
            key, value = line.split(":", 1)
            fields.setdefault(key.strip(), value.strip())
    return fields


def fru_print(text: str) -> Dict[str, Optional[str]]:
    fields = colon_fields(text)
    date = fields.get("Board Mfg Date")
    return {
        "board_manufactured": datetime.datetime.strptime(date, "%a %b %d %H:%M:%S %Y UTC").strftime("%Y-%m-%dT%H:%M:%SZ") if date else None,
        "board_manufacturer": fields.get("Board Mfg"), "board_product": fields.get("Board Product"),
        "board_serial": fields.get("Board Serial"), "board_part_number": fields.get("Board Part Number"),
        "manufacturer": fields.get("Product Manufacturer"), "product": fields.get("Product Name"),
        "part_number": fields.get("Product Part Number"), "version": fields.get("Product Version"),
        "serial_number": fields.get("Product Serial"), "asset_tag": fields.get("Product Asset Tag"),
    }


def sdr_names(text: str) -> Dict[int, str]:
    """{sensor number: name} from `sdr elist`."""
    names = {}
    for line in text.splitlines():
        parts = [part.strip() for part in line.split("|")]
        if len(parts) >= 2 and re.fullmatch(r"[0-9a-fA-F]{2}h", parts[1]):
            names[int(parts[1][:2], 16)] = parts[0]
    return names


def sel_elist(text: str) -> List[Dict[str, Any]]:
    """`sel elist` rows: id, time (ISO or None for Pre-Init), sensor column, event text, direction."""
    rows = []
    for line in text.splitlines():
        parts = [part.strip() for part in line.split("|")]
        if len(parts) < 6:
            continue
        if parts[1] == "Pre-Init":
            time = None
        else:
            time = datetime.datetime.strptime(f"{parts[1]} {parts[2]}", "%m/%d/%y %H:%M:%S UTC").strftime("%Y-%m-%dT%H:%M:%SZ")
        rows.append({"id": int(parts[0], 16), "time": time, "sensor": parts[3], "message": parts[4], "direction": parts[5].lower()})
    return rows


def sensor_column(entry: Dict[str, Any]) -> str:
    """What ipmitool shows in the sensor column for a decoded entry: type, then the SDR name or #0xNN."""
    name = entry["sensor"] or "#0x%02x" % entry["sensor_number"]
    return f"{entry['sensor_type']} {name}"
