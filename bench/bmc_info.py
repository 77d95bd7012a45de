"""Benchmark pm_bmc_info against the anchor, in one run, on the lab.

``gather: [identity, firmware]`` of every lab BMC (IPMI) in one pm_bmc_info task (fleet
mode) against a play over the same hosts at forks 10 that runs ``ipmitool fru print 0`` and
``ipmitool mc info`` for each (what an operator without the module would write). Both answers
are checked against each other (serial number and firmware revision of every BMC) before
the times are printed: a fast wrong answer is no answer. Wall times include Ansible's start.
Run: ``make bench`` (root: the lab needs network namespaces); ``BENCH_FLEET=N`` sets the
number of machines (default 100, at most 200).
"""

from __future__ import annotations

import json
import os
import re
import sys
import tempfile
import time
from pathlib import Path
from typing import Dict, Tuple

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT / "bench"), str(ROOT / "tests" / "lab"), str(ROOT / "tests")]

from ipmi_power import OURS_BIN, adhoc_argv  # noqa: E402

from pmlab_lib.lab import Lab  # noqa: E402
from pmtest.ansible_run import ansible_env  # noqa: E402

FLEET = int(os.environ.get("BENCH_FLEET", "100"))


def run_timed(argv, lab, env) -> Tuple[float, str]:
    started = time.monotonic()
    proc = lab.run(argv, env=env, timeout=1800)
    elapsed = time.monotonic() - started
    if proc.returncode != 0:
        raise RuntimeError(f"{argv[:3]} failed: {proc.stdout[-2000:]} {proc.stderr[-2000:]}")
    return elapsed, proc.stdout


def ours(lab, env) -> Tuple[float, Dict[str, Tuple[str, str]]]:
    targets = [{"bmc": m.bmc_host, "password": m.bmc_password, "name": m.name} for m in lab.machines]
    args = {"user": "admin", "targets": targets, "gather": ["identity", "firmware"], "protocol": "ipmi", "timeout": 120}
    elapsed, out = run_timed(adhoc_argv("ctys.pm.pm_bmc_info", args) + ["-o"], lab, env)
    result = json.loads(out.split(" => ", 1)[1])
    found = {r["name"]: (r["identity"]["serial_number"], r["firmware"]["bmc_version"]) for r in result["results"]}
    return elapsed, found


def theirs(lab, env, directory: Path) -> Tuple[float, Dict[str, Tuple[str, str]]]:
    inventory = directory / "inv.json"
    inventory.write_text(json.dumps({"all": {"hosts": {m.name: {"bmc": m.bmc_host, "pw": m.bmc_password} for m in lab.machines}}}))
    play = directory / "play.yml"
    ipmitool = "ipmitool -I lanplus -C 3 -H {{ bmc }} -U admin -P {{ pw }}"
    play.write_text(
        "- hosts: all\n  gather_facts: false\n  tasks:\n"
        f"    - ansible.builtin.command: {ipmitool} fru print 0\n      register: fru\n      changed_when: false\n      delegate_to: localhost\n"
        f"    - ansible.builtin.command: {ipmitool} mc info\n      register: mc\n      changed_when: false\n      delegate_to: localhost\n"
    )
    # the answers are read back through the test suite's results callback (a JSON line per task result)
    results = directory / "results.jsonl"
    play_env = dict(env, ANSIBLE_LOAD_CALLBACK_PLUGINS="1", ANSIBLE_CALLBACK_PLUGINS=str(ROOT / "tests" / "pmtest" / "callback_plugins"),
                    PMTEST_RESULTS=str(results))
    argv = [str(OURS_BIN / "ansible-playbook"), "-i", str(inventory), "-f", "10", str(play)]
    elapsed, _out = run_timed(argv, lab, play_env)
    records = [json.loads(line) for line in results.read_text().splitlines()]
    outputs = {(r["host"], "fru" if "fru" in r["result"].get("cmd", []) else "mc"): r["result"]["stdout"] for r in records}
    serials = {host: re.search(r"Product Serial\s*:\s*(\S+)", text).group(1) for (host, kind), text in outputs.items() if kind == "fru"}
    firmware = {host: re.search(r"Firmware Revision\s*:\s*(\S+)", text).group(1) for (host, kind), text in outputs.items() if kind == "mc"}
    return elapsed, {host: (serials[host], firmware[host]) for host in serials}


def main() -> int:
    if os.geteuid() != 0:
        print("bench/bmc_info.py needs root (the lab's network namespaces)")
        return 1
    env = ansible_env({"ANSIBLE_PYTHON_INTERPRETER": str(OURS_BIN / "python")})
    with tempfile.TemporaryDirectory() as tmp, Lab.up(machines=FLEET, state="off", bmc="lab", lab_dir=Path(tmp) / "lab") as lab:
        our_time, our_answer = ours(lab, env)
        their_time, their_answer = theirs(lab, env, Path(tmp))
    if our_answer != their_answer:
        differ = sorted(host for host in set(their_answer) | set(our_answer) if our_answer.get(host) != their_answer.get(host))
        print(f"the answers differ for {len(differ)} BMCs, first {differ[:3]}: ours {[our_answer.get(h) for h in differ[:3]]}, "
              f"ipmitool {[their_answer.get(h) for h in differ[:3]]}")
        return 1
    print(f"{'measurement':62} {'ctys.pm':>9} {'anchor':>9} {'ratio':>7}  anchor")
    name = f"identity + firmware of {FLEET} BMCs: one task vs play, forks 10"
    print(f"{name:62} {our_time:9.2f} {their_time:9.2f} {their_time / our_time:6.1f}x  ipmitool fru print 0 + mc info")
    print(f"(both read the same serial numbers and firmware revision for all {len(our_answer)} BMCs)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
