"""Benchmark pm_ipmi_power against the anchors, in one run, on the lab.

Anchors: community.general.ipmi_power (from the ``ansible`` package, installed
into .build/bench-venv on first use) and a shell loop of ``ipmitool``.
Prints one table with ratios. Run: ``make bench`` (root: the lab needs
network namespaces). ``BENCH_FLEET=N`` sets the fleet size (default 100).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT / "tests" / "lab"), str(ROOT / "tests")]

from pmlab_lib.lab import Lab  # noqa: E402
from pmtest.ansible_run import ansible_env  # noqa: E402

BENCH_VENV = ROOT / ".build" / "bench-venv"
FLEET = int(os.environ.get("BENCH_FLEET", "100"))


def community_general() -> Path:
    """A venv with the ansible package (it bundles community.general)."""
    if not (BENCH_VENV / "bin" / "ansible").exists():
        subprocess.run([sys.executable, "-m", "venv", str(BENCH_VENV)], check=True)
        subprocess.run([str(BENCH_VENV / "bin" / "pip"), "install", "-q", "ansible==12.3.0", "pyghmi==1.6.19"], check=True)
    return BENCH_VENV / "bin"


def timed(argv, lab, env=None, runs=1):
    """Best wall time of ``runs`` runs (the first run also warms caches)."""
    best = None
    for _attempt in range(runs):
        started = time.monotonic()
        proc = lab.run(argv, env=env, timeout=1200)
        elapsed = time.monotonic() - started
        if proc.returncode not in (0, 2):
            raise RuntimeError(f"{argv[:3]} failed: {proc.stderr[-2000:]}")
        best = elapsed if best is None else min(best, elapsed)
    return best


def adhoc(bin_dir, module, args, lab, env, runs=3):
    argv = [str(bin_dir / "ansible"), "localhost", "-c", "local", "-i", "localhost,", "-m", module, "-a", json.dumps(args)]
    return timed(argv, lab, env, runs)


def main() -> int:
    if os.geteuid() != 0:
        print("bench/ipmi_power.py needs root (the lab's network namespaces)")
        return 1
    cg_bin = community_general()
    ours_bin = ROOT / ".venv" / "bin"
    env = ansible_env()
    cg_env = dict(env, PATH=f"{cg_bin}:{env['PATH']}", ANSIBLE_PYTHON_INTERPRETER=str(cg_bin / "python"))
    ours_env = dict(env, ANSIBLE_PYTHON_INTERPRETER=str(ours_bin / "python"))
    rows = []
    with tempfile.TemporaryDirectory() as tmp, Lab.up(machines=FLEET, state="off", bmc="lab", boot_delay=0.1, lab_dir=Path(tmp) / "lab") as lab:
        m = lab.machines[0]
        conn = {"port": m.bmc_port, "user": m.bmc_user, "password": m.bmc_password}
        ours = adhoc(ours_bin, "ctys.pm.pm_ipmi_power", dict(conn, bmc=m.bmc_host, state="query"), lab, ours_env)
        theirs = adhoc(cg_bin, "community.general.ipmi_power", dict(conn, name=m.bmc_host, state="off"), lab, cg_env)
        rows.append(("status query, one BMC (ansible ad-hoc)", ours, theirs, "community.general.ipmi_power"))

        m2 = lab.machines[1]
        conn2 = {"port": m2.bmc_port, "user": m2.bmc_user, "password": m2.bmc_password}
        ours = adhoc(ours_bin, "ctys.pm.pm_ipmi_power", dict(conn2, bmc=m2.bmc_host, state="on"), lab, ours_env, runs=1)
        m2.control.call("power", action="off")
        theirs = adhoc(cg_bin, "community.general.ipmi_power", dict(conn2, name=m2.bmc_host, state="on"), lab, cg_env, runs=1)
        rows.append(("power on with wait, one BMC", ours, theirs, "community.general.ipmi_power"))

        targets = [{"bmc": x.bmc_host, "password": x.bmc_password, "name": x.name} for x in lab.machines]
        ours = adhoc(ours_bin, "ctys.pm.pm_ipmi_power", {"user": "admin", "targets": targets, "state": "query"}, lab, ours_env)
        loop = "; ".join(f"ipmitool -I lanplus -C 3 -H {x.bmc_host} -U admin -P {x.bmc_password} chassis power status >/dev/null" for x in lab.machines)
        shell = timed(["bash", "-c", loop], lab)
        rows.append((f"status of {FLEET} BMCs: fleet mode vs ipmitool loop", ours, shell, "ipmitool shell loop"))

        inventory = Path(tmp) / "inv.json"
        inventory.write_text(json.dumps({"all": {"hosts": {x.name: {"bmc": x.bmc_host, "pw": x.bmc_password} for x in lab.machines}}}))
        play = Path(tmp) / "play.yml"
        play.write_text(
            "- hosts: all\n  gather_facts: false\n  tasks:\n    - community.general.ipmi_power:\n"
            "        name: '{{ bmc }}'\n        user: admin\n        password: '{{ pw }}'\n        state: 'on'\n"
            "      check_mode: true\n      delegate_to: localhost\n"
        )
        theirs = timed([str(cg_bin / "ansible-playbook"), "-i", str(inventory), "-f", "10", str(play)], lab, cg_env)
        rows.append((f"status of {FLEET} BMCs: fleet mode vs play, forks 10", ours, theirs, "community.general play"))

    print(f"{'measurement':55} {'ctys.pm':>9} {'anchor':>9} {'ratio':>7}  anchor")
    for name, ours, theirs, anchor in rows:
        print(f"{name:55} {ours:9.2f} {theirs:9.2f} {theirs / ours:6.1f}x  {anchor}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
