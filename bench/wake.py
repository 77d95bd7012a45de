"""Benchmark pm_wake against community.general.wakeonlan + ansible.builtin.wait_for, on the lab.

20 lab machines that each take 2 s to boot are woken and waited for until
SSH answers: pm_wake in one task, versus two anchors on the same machines:
the loop the issue names (a ``loop`` over the machines whose body is
community.general.wakeonlan plus wait_for, as a playbook on localhost writes
it), and a faster play that runs wakeonlan then wait_for per host, forks 5.
All run on one controller (this repository's venv). Prints a table with the
ratios. Run: ``make bench`` (root).
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

MACHINES = int(os.environ.get("BENCH_WAKE_MACHINES", "20"))
BOOT_DELAY = 2.0


def main() -> int:
    if os.geteuid() != 0:
        print("bench/wake.py needs root (the lab's network namespaces)")
        return 1
    from ipmi_power import anchor_env  # the same bench venv and controller

    env = anchor_env()
    ours_env = dict(env, ANSIBLE_CALLBACK_RESULT_FORMAT="json")
    playbook = str(ROOT / ".venv" / "bin" / "ansible-playbook")
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

        machines = [{"mac": m.mac, "ip": m.ip} for m in lab.machines]
        (Path(tmp) / "machine.yml").write_text(
            f"- community.general.wakeonlan:\n    mac: '{{{{ machine.mac }}}}'\n    broadcast: {BROADCAST}\n    port: 9\n"
            "- ansible.builtin.wait_for:\n    host: '{{ machine.ip }}'\n    port: 22\n    search_regex: OpenSSH\n    timeout: 120\n"
        )
        loop_play = Path(tmp) / "loop.yml"
        loop_play.write_text(
            "- hosts: localhost\n  gather_facts: false\n  tasks:\n    - ansible.builtin.include_tasks: machine.yml\n"
            f"      loop: {json.dumps(machines)}\n      loop_control:\n        loop_var: machine\n"
        )
        loop_seconds = timed_play([playbook, "-c", "local", "-i", "localhost,", str(loop_play)], lab, env)
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
        play_seconds = timed_play([playbook, "-i", str(inventory), "-f", "5", str(play)], lab, env)
    rows = [
        (f"wake {MACHINES} (boot {BOOT_DELAY:g} s), wait for SSH: vs loop of wakeonlan + wait_for", ours, loop_seconds),
        (f"wake {MACHINES} (boot {BOOT_DELAY:g} s), wait for SSH: vs play of both, forks 5", ours, play_seconds),
    ]
    print(f"{'measurement':80} {'ctys.pm':>9} {'anchor':>9} {'ratio':>7}")
    for name, mine, theirs in rows:
        print(f"{name:80} {mine:9.2f} {theirs:9.2f} {theirs / mine:6.1f}x")
    print(f"{f'module time: first packet to the last SSH (boot takes {BOOT_DELAY:g} s)':80} {module_seconds:9.2f}")
    print(f"goal: module time under boot + 0.5 s ({'met' if module_seconds < BOOT_DELAY + 0.5 else 'not met'}),"
          f" at least 5x the loop ({'met' if loop_seconds / ours >= 5 else 'not met'}); wall clock, Ansible's start included")
    return 0


def timed_play(argv, lab, env):
    started = time.monotonic()
    proc = lab.run(argv, env=env, timeout=900)
    assert proc.returncode == 0, proc.stdout[-2000:]
    return time.monotonic() - started


if __name__ == "__main__":
    sys.exit(main())
