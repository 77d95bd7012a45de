"""Benchmark pm_wake against community.general.wakeonlan + ansible.builtin.wait_for, on the lab.

20 lab machines that each take 2 s to boot are woken and waited for until
SSH answers: pm_wake in one task, versus a play that loops
community.general.wakeonlan and wait_for over the same machines (forks 5).
Prints a table with the ratio. Run: ``make bench`` (root).
"""

from __future__ import annotations

import json
import os
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT / "tests" / "lab"), str(ROOT / "tests"), str(ROOT / "bench")]

from pmlab_lib.lab import BROADCAST, Lab  # noqa: E402
from pmtest.ansible_run import ansible_env  # noqa: E402

MACHINES = int(os.environ.get("BENCH_WAKE_MACHINES", "20"))
BOOT_DELAY = 2.0


def main() -> int:
    if os.geteuid() != 0:
        print("bench/wake.py needs root (the lab's network namespaces)")
        return 1
    from ipmi_power import community_general  # the same bench venv

    cg_bin = community_general()
    env = ansible_env()
    ours_env = dict(env, ANSIBLE_PYTHON_INTERPRETER=str(ROOT / ".venv" / "bin" / "python"), ANSIBLE_CALLBACK_RESULT_FORMAT="json")
    cg_env = dict(env, PATH=f"{cg_bin}:{env['PATH']}", ANSIBLE_PYTHON_INTERPRETER=str(cg_bin / "python"))
    with tempfile.TemporaryDirectory() as tmp, Lab.up(machines=MACHINES, state="off", bmc=None, boot_delay=BOOT_DELAY, lab_dir=Path(tmp) / "lab") as lab:
        args = {"mac": [m.mac for m in lab.machines], "hosts": [m.ip for m in lab.machines], "broadcast": BROADCAST, "poll": "ssh",
                "poll_interval": 0.2, "wait_timeout": 120}
        started = time.monotonic()
        proc = lab.run([str(ROOT / ".venv" / "bin" / "ansible"), "localhost", "-c", "local", "-i", "localhost,",
                        "-m", "ctys.pm.pm_wake", "-a", json.dumps(args)], env=ours_env, timeout=600)
        ours = time.monotonic() - started
        assert proc.returncode == 0, proc.stdout[-2000:]
        result = json.loads(proc.stdout.split("=>", 1)[1])  # ad-hoc output: "localhost | CHANGED => {...}"
        module_seconds = result["elapsed"]  # first packet to the last machine's SSH, Ansible's start excluded
        for machine in lab.machines:
            machine.control.call("power", action="off")

        inventory = Path(tmp) / "inv.json"
        inventory.write_text(json.dumps({"all": {"hosts": {m.name: {"mac": m.mac, "ip": m.ip} for m in lab.machines}}}))
        play = Path(tmp) / "play.yml"
        play.write_text(
            "- hosts: all\n  gather_facts: false\n  tasks:\n"
            f"    - community.general.wakeonlan:\n        mac: '{{{{ mac }}}}'\n        broadcast: {BROADCAST}\n        port: 9\n"
            "      delegate_to: localhost\n"
            "    - ansible.builtin.wait_for:\n        host: '{{ ip }}'\n        port: 22\n        search_regex: OpenSSH\n        timeout: 120\n"
            "      delegate_to: localhost\n"
        )
        started = time.monotonic()
        proc = lab.run([str(cg_bin / "ansible-playbook"), "-i", str(inventory), "-f", "5", str(play)], env=cg_env, timeout=900)
        theirs = time.monotonic() - started
        assert proc.returncode == 0, proc.stdout[-2000:]
    print(f"{'measurement':60} {'ctys.pm':>9} {'anchor':>9} {'ratio':>7}")
    print(f"{f'wake {MACHINES} machines (boot {BOOT_DELAY:g} s), wait for SSH':60} {ours:9.2f} {theirs:9.2f} {theirs / ours:6.1f}x")
    print(f"{f'module time: first packet to the last SSH (boot takes {BOOT_DELAY:g} s)':60} {module_seconds:9.2f}")
    print(f"goal: module time under boot + 0.5 s ({'met' if module_seconds < BOOT_DELAY + 0.5 else 'not met'}),"
          f" and at least 5x wall ({'met' if theirs / ours >= 5 else 'not met'}); anchor = wakeonlan + wait_for play, forks 5")
    return 0


if __name__ == "__main__":
    sys.exit(main())
