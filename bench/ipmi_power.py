"""Benchmark pm_ipmi_power against the anchors, in one run, on the lab.

Anchors: community.general.ipmi_power (from the ``ansible`` package, installed
into .build/bench-venv on first use) and a shell loop of ``ipmitool``.
Prints one table with ratios. Run: ``make bench`` (root: the lab needs
network namespaces). ``BENCH_FLEET=N`` sets the lab fleet size (default 100,
at most 200); ``BENCH_FARM=N`` the number of machine-less BMCs of
pmlab_lib.bmc_farm on loopback (default 1000; 0 skips that part).

Both modules run on one controller (this repository's venv, same ansible-core
and libraries); only the module differs.
"""

from __future__ import annotations

import json
import math
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Dict

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT / "tests" / "lab"), str(ROOT / "tests")]

from pmlab_lib.bmc_farm import Farm  # noqa: E402
from pmlab_lib.lab import Lab  # noqa: E402
from pmtest.ansible_run import ansible_env  # noqa: E402

BENCH_VENV = ROOT / ".build" / "bench-venv"
OURS_BIN = ROOT / ".venv" / "bin"
FLEET = int(os.environ.get("BENCH_FLEET", "100"))
FARM = int(os.environ.get("BENCH_FARM", "1000"))  # BMCs without machines (pmlab_lib.bmc_farm); 0 skips


def community_general() -> Path:
    """A venv with the ansible package (it bundles community.general)."""
    if not (BENCH_VENV / "bin" / "ansible").exists():
        subprocess.run([sys.executable, "-m", "venv", str(BENCH_VENV)], check=True)
        subprocess.run([str(BENCH_VENV / "bin" / "pip"), "install", "-q", "ansible==12.3.0", "pyghmi==1.6.19"], check=True)
    return BENCH_VENV / "bin"


def anchor_env() -> Dict[str, str]:
    """Ansible's environment for running ctys.pm and community.general on one controller.

    The same ansible-core, Python and libraries for both (this venv has paramiko, which ansible-core
    imports at start); community.general is found through the collections path. Only the module differs.
    """
    site_packages = next((community_general().parent / "lib").glob("python3*/site-packages"))
    env = ansible_env({"ANSIBLE_PYTHON_INTERPRETER": str(OURS_BIN / "python")})
    env["ANSIBLE_COLLECTIONS_PATH"] += f":{site_packages}"
    return env


class HostNamespace:
    """Runs commands where the BMC farm listens: loopback of this namespace."""

    @staticmethod
    def run(argv, **kwargs):
        return subprocess.run(argv, capture_output=True, text=True, stdin=subprocess.DEVNULL, check=False, **kwargs)


def timed(argv, lab, env=None, runs=1):
    """Best wall time of ``runs`` runs (the first run also warms caches)."""
    best = None
    for _attempt in range(runs):
        started = time.monotonic()
        proc = lab.run(argv, env=env, timeout=1800)
        elapsed = time.monotonic() - started
        if proc.returncode not in (0, 2):
            raise RuntimeError(f"{argv[:3]} failed: {proc.stderr[-2000:]}")
        best = elapsed if best is None else min(best, elapsed)
    return best


def adhoc_argv(module, args):
    return [str(OURS_BIN / "ansible"), "localhost", "-c", "local", "-i", "localhost,", "-m", module, "-a", json.dumps(args)]


def adhoc(module, args, lab, env, runs=3):
    return timed(adhoc_argv(module, args), lab, env, runs)


def alternating_medians(first, second, lab, env, rounds=9):
    """Median wall times of two ad-hoc tasks run in turns, so load drifts hit both alike."""
    times = ([], [])
    for _round in range(rounds):
        for index, (module, args) in enumerate((first, second)):
            times[index].append(timed(adhoc_argv(module, args), lab, env))
    return statistics.median(times[0]), statistics.median(times[1])


def community_play(directory, bmcs):
    """ansible-playbook argv: community.general.ipmi_power over ``bmcs`` (name, host, port, password)."""
    inventory = directory / "inv.json"
    inventory.write_text(json.dumps({"all": {"hosts": {name: {"bmc": host, "bmc_port": port, "pw": pw} for name, host, port, pw in bmcs}}}))
    play = directory / "play.yml"
    play.write_text(
        "- hosts: all\n  gather_facts: false\n  tasks:\n    - community.general.ipmi_power:\n"
        "        name: '{{ bmc }}'\n        port: '{{ bmc_port }}'\n        user: admin\n        password: '{{ pw }}'\n"
        "        state: 'on'\n      check_mode: true\n      delegate_to: localhost\n"
    )
    return [str(OURS_BIN / "ansible-playbook"), "-i", str(inventory), "-f", "10", str(play)]


def main() -> int:
    if os.geteuid() != 0:
        print("bench/ipmi_power.py needs root (the lab's network namespaces)")
        return 1
    env = anchor_env()
    rows = []
    with tempfile.TemporaryDirectory() as tmp, Lab.up(machines=FLEET, state="off", bmc="lab", boot_delay=0.1, lab_dir=Path(tmp) / "lab") as lab:
        m = lab.machines[0]
        conn = {"port": m.bmc_port, "user": m.bmc_user, "password": m.bmc_password}
        ours, theirs = alternating_medians(
            ("ctys.pm.pm_ipmi_power", dict(conn, bmc=m.bmc_host, state="query")),
            ("community.general.ipmi_power", dict(conn, name=m.bmc_host, state="off")),
            lab,
            env,
        )
        rows.append(("status query, one BMC (ad-hoc, median of 9)", ours, theirs, "community.general.ipmi_power"))

        m2 = lab.machines[1]
        conn2 = {"port": m2.bmc_port, "user": m2.bmc_user, "password": m2.bmc_password}
        started = time.monotonic()
        proc = lab.run(adhoc_argv("ctys.pm.pm_ipmi_power", dict(conn2, bmc=m2.bmc_host, state="on")) + ["-o"], env=env, timeout=600)
        ours = time.monotonic() - started
        module_seconds = json.loads(proc.stdout.split(" => ", 1)[1])["elapsed"] if " => " in proc.stdout else float("nan")
        m2.control.call("power", action="off")
        theirs = adhoc("community.general.ipmi_power", dict(conn2, name=m2.bmc_host, state="on"), lab, env, runs=1)
        rows.append(("power on with wait, one BMC", ours, theirs, "community.general.ipmi_power"))
        rows.append(("  the same, module time (goal < 0.5 s)", module_seconds, float("nan"), "reported by pm_ipmi_power"))

        targets = [{"bmc": x.bmc_host, "password": x.bmc_password, "name": x.name} for x in lab.machines]
        ours = adhoc("ctys.pm.pm_ipmi_power", {"user": "admin", "targets": targets, "state": "query"}, lab, env)
        loop = "; ".join(f"ipmitool -I lanplus -C 3 -H {x.bmc_host} -U admin -P {x.bmc_password} chassis power status >/dev/null" for x in lab.machines)
        shell = timed(["bash", "-c", loop], lab)
        rows.append((f"status of {FLEET} BMCs: fleet mode vs ipmitool loop", ours, shell, "ipmitool shell loop"))

        bmcs = [(x.name, x.bmc_host, x.bmc_port, x.bmc_password) for x in lab.machines]
        theirs = timed(community_play(Path(tmp), bmcs), lab, env)
        rows.append((f"status of {FLEET} BMCs: fleet mode vs play, forks 10", ours, theirs, "community.general play"))

    if FARM:
        with tempfile.TemporaryDirectory() as tmp, Farm.up(FARM, Path(tmp) / "farm") as farm:
            bmcs = [(f"bmc{index:04d}", b.host, b.port, b.password) for index, b in enumerate(farm.bmcs)]
            targets = [{"bmc": host, "port": port, "password": password} for _name, host, port, password in bmcs]
            # the first run after start is slow (a thousand BMC processes touch their memory): best of 3
            ours = adhoc("ctys.pm.pm_ipmi_power", {"user": "admin", "targets": targets, "state": "query"}, HostNamespace, env)
            loop = "; ".join(
                f"ipmitool -I lanplus -C 3 -H {host} -p {port} -U admin -P {password} chassis power status >/dev/null" for _n, host, port, password in bmcs
            )
            shell = timed(["bash", "-c", loop], HostNamespace)
            rows.append((f"status of {FARM} BMCs (farm): fleet mode vs ipmitool loop", ours, shell, "ipmitool shell loop"))
            theirs = timed(community_play(Path(tmp), bmcs), HostNamespace, env)
            rows.append((f"status of {FARM} BMCs (farm): fleet mode vs play, forks 10", ours, theirs, "community.general play"))

    print(f"{'measurement':62} {'ctys.pm':>9} {'anchor':>9} {'ratio':>7}  anchor")
    for name, ours, theirs, anchor in rows:
        ratio = "       " if math.isnan(theirs) else f"{theirs / ours:6.1f}x"
        print(f"{name:62} {ours:9.2f} {theirs:9.2f} {ratio}  {anchor}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
