"""Record raw IPMI answers and ipmitool's own views from a lab machine (tests/unit/fixtures/ipmi, see INDEX.md there).

Usage (root, from the repository root):
  PYTHONPATH=tests/lab:.build/collections .venv/bin/python tests/pmtest/record_ipmi.py ipmi_sim|lab OUT.json LAB_DIR
"""

from __future__ import annotations

import json
import re
import sys
import time
from typing import Any, Dict, List

from pmlab_lib.lab import Lab

VIEWS = (["fru", "print", "0"], ["sel", "elist"], ["mc", "info"], ["mc", "guid"], ["lan", "print", "1"],
         ["dcmi", "power", "reading"], ["sdr", "elist"])


def raw(lab: Lab, machine: Any, *args: int) -> Any:
    """One raw command's answer bytes, or {"cc": code, "stderr": text}."""
    result = lab.ipmitool(machine, "raw", *[hex(a) for a in args])
    if result.returncode:
        code = re.search(r"rsp=0x([0-9a-f]+)", result.stderr)
        return {"cc": int(code.group(1), 16) if code else None, "stderr": result.stderr.strip()}
    return [int(x, 16) for x in result.stdout.split()]


def walk(lab: Lab, machine: Any, rec: Dict[str, Any]) -> None:
    size = rec["fru_info"][0] | rec["fru_info"][1] << 8 if isinstance(rec["fru_info"], list) else 0
    image: List[int] = []
    while len(image) < size:
        part = raw(lab, machine, 0x0A, 0x11, 0, len(image) & 0xFF, len(image) >> 8, min(24, size - len(image)))
        if not isinstance(part, list) or not part[0]:
            break
        image += part[1:1 + part[0]]
    rec["fru_image"] = image
    reservation = raw(lab, machine, 0x0A, 0x42)
    record_id, records = 0, []
    while record_id != 0xFFFF and len(records) < 200:
        part = raw(lab, machine, 0x0A, 0x43, reservation[0], reservation[1], record_id & 0xFF, record_id >> 8, 0, 0xFF)
        if not isinstance(part, list):
            break
        records.append(part[2:18])
        record_id = part[0] | part[1] << 8
    rec["sel_records"] = records
    reservation = raw(lab, machine, 0x0A, 0x22)
    record_id, sdrs = 0, []
    while record_id != 0xFFFF and len(sdrs) < 100:
        head = raw(lab, machine, 0x0A, 0x23, reservation[0], reservation[1], record_id & 0xFF, record_id >> 8, 0, 5)
        if not isinstance(head, list):
            break
        body: List[int] = []
        while len(body) < head[6]:
            part = raw(lab, machine, 0x0A, 0x23, reservation[0], reservation[1], record_id & 0xFF, record_id >> 8, 5 + len(body),
                       min(16, head[6] - len(body)))
            body += part[2:]
        following = head[0] | head[1] << 8
        sdrs.append({"id": record_id, "next": following, "record": head[2:] + body})
        record_id = following
    rec["sdr_records"] = sdrs


def main(kind: str, out: str, lab_dir: str) -> None:
    lab = Lab.up(machines=1, state="on", bmc=kind, loopback=True, boot_delay=0.2, shutdown_delay=0.2, lab_dir=lab_dir)
    try:
        machine = lab.machines[0]
        if kind == "lab":  # a few power events in the SEL
            machine.wait_os("up")
            machine.control.call("power", action="off")
            machine.wait_os("down")
            time.sleep(1)
            machine.control.call("power", action="on")
            machine.wait_os("up")
        rec: Dict[str, Any] = {"source": kind, "recorded": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()), "machine": machine.name}
        rec["device_id"] = raw(lab, machine, 0x06, 0x01)
        rec["system_guid"] = raw(lab, machine, 0x06, 0x37)
        rec["device_guid"] = raw(lab, machine, 0x06, 0x08)
        rec["fru_info"] = raw(lab, machine, 0x0A, 0x10, 0)
        rec["sel_info"] = raw(lab, machine, 0x0A, 0x40)
        walk(lab, machine, rec)
        rec["dcmi_power"] = raw(lab, machine, 0x2C, 0x02, 0xDC, 0x01, 0, 0)
        rec["lan"] = {str(p): raw(lab, machine, 0x0C, 0x02, 1, p, 0, 0) for p in (3, 4, 5, 6, 12, 20)}
        rec["ipmitool"] = {}
        for args in VIEWS:
            result = lab.ipmitool(machine, *args)
            rec["ipmitool"][" ".join(args)] = result.stdout + (("\nSTDERR: " + result.stderr) if result.returncode else "")
        with open(out, "w", encoding="utf-8") as stream:
            json.dump(rec, stream, indent=1)
    finally:
        lab.down()


if __name__ == "__main__":
    main(*sys.argv[1:4])
