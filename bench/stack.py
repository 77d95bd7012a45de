"""Benchmark pm_stack against libvirt-guests (PARALLEL_SHUTDOWN=0), on the lab.

One lab machine carries 10 real QEMU guests (the lab's tiny Linux guest) that
each take about 2 s to stop after the ACPI button. pm_stack (state=stopped, run
on the machine over SSH) asks all at once and polls; the anchor is Debian's own
/usr/lib/libvirt/libvirt-guests.sh ``shutdown`` (configured ON_SHUTDOWN=shutdown,
PARALLEL_SHUTDOWN=0, its default: one guest after another, polled each second),
run unchanged except for where it keeps its config and state files.
Prints a table with the ratio. Run: ``make bench`` (root).
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
sys.path[:0] = [str(ROOT / "tests" / "lab"), str(ROOT / "tests"), str(ROOT / "bench")]

from pmlab_lib import hypervisor as hv  # noqa: E402
from pmlab_lib.lab import Lab  # noqa: E402
from pmtest.ansible_run import ansible_env  # noqa: E402

GUESTS = int(os.environ.get("BENCH_STACK_GUESTS", "10"))
STOP_SECONDS = 2.0
LIBVIRT_GUESTS = Path("/usr/lib/libvirt/libvirt-guests.sh")


def one_guest_stop_seconds(lab, machine, name: str) -> float:
    """How long one guest takes from the ACPI request until libvirt reports it off."""
    started = time.monotonic()
    hv.virsh(lab, machine, "shutdown", "--domain", name)
    while hv.virsh(lab, machine, "domstate", "--domain", name).stdout.strip() != "shut off":
        time.sleep(0.02)
    return time.monotonic() - started


def libvirt_guests(tmp: Path, uri: str) -> float:
    """Debian's libvirt-guests.sh shutdown, its config and state files moved into ``tmp``."""
    (tmp / "etc" / "default").mkdir(parents=True)
    (tmp / "var" / "lib" / "libvirt").mkdir(parents=True)
    (tmp / "var" / "lock").mkdir(parents=True)
    (tmp / "etc" / "default" / "libvirt-guests").write_text(
        f'URIS="{uri}"\nON_BOOT=ignore\nON_SHUTDOWN=shutdown\nPARALLEL_SHUTDOWN=0\nSHUTDOWN_TIMEOUT=300\n')
    script = LIBVIRT_GUESTS.read_text().replace('sysconfdir="/etc"', f'sysconfdir="{tmp}/etc"', 1)
    script = script.replace('localstatedir="/var"', f'localstatedir="{tmp}/var"', 1)
    copy = tmp / "libvirt-guests.sh"
    copy.write_text(script)
    started = time.monotonic()
    proc = subprocess.run(["sh", str(copy), "shutdown"], capture_output=True, text=True, timeout=900, check=False,
                          env=dict(os.environ, LC_ALL="C"))
    seconds = time.monotonic() - started
    if proc.returncode != 0:
        raise RuntimeError(f"libvirt-guests failed: {proc.stdout[-1500:]}{proc.stderr[-1500:]}")
    return seconds


def main() -> int:
    if os.geteuid() != 0:
        print("bench/stack.py needs root (the lab's network namespaces)")
        return 1
    if not LIBVIRT_GUESTS.exists():
        print(f"bench/stack.py needs {LIBVIRT_GUESTS} (Debian package libvirt-clients)")
        return 1
    delay = STOP_SECONDS - 0.3  # the guest's own delay; poweroff and libvirt's reaping add about 0.3 s
    names = [f"guest-{i:02d}" for i in range(1, GUESTS + 1)]
    spec = {"guests": {"lab01": [{"name": n, "kind": "honour", "stop_delay": delay} for n in names]}}
    env = ansible_env()
    with tempfile.TemporaryDirectory() as tmp, Lab.up(machines=1, state="on", bmc=None, lab_dir=Path(tmp) / "lab", hypervisor=spec) as lab:
        machine = lab.machines[0]
        single = one_guest_stop_seconds(lab, machine, names[0])
        hv.start_guests(lab, machine, names)

        args = {"state": "stopped", "uri": "{{ pm_stack_uri }}", "timeout": 120}
        started = time.monotonic()
        proc = lab.run([str(ROOT / ".venv" / "bin" / "ansible"), "lab01", "-i", str(lab.inventory_path), "-m", "ctys.pm.pm_stack",
                        "-a", json.dumps(args), "-o"], env=env, timeout=600)
        ours_wall = time.monotonic() - started
        assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
        result = json.loads(proc.stdout.split("=>", 1)[1])
        assert sorted(result["stopped"]) == names, result
        ours = float(result["elapsed"])

        hv.start_guests(lab, machine, names)
        theirs = libvirt_guests(Path(tmp) / "anchor", hv.uri(lab, machine))
        assert all(state == "shut off" for state in hv.guest_states(lab, machine).values())
    print(f"{'measurement':64} {'ctys.pm':>9} {'anchor':>9} {'ratio':>7}")
    label = f"stop {GUESTS} guests (one stops in {single:.1f} s): module time"
    print(f"{label:64} {ours:9.2f} {theirs:9.2f} {theirs / ours:6.1f}x")
    label = f"stop {GUESTS} guests: whole ansible run over SSH"
    print(f"{label:64} {ours_wall:9.2f} {theirs:9.2f} {theirs / ours_wall:6.1f}x")
    print("goal: module time under 3 s and at least 5x; anchor = libvirt-guests.sh shutdown, PARALLEL_SHUTDOWN=0")
    return 0


if __name__ == "__main__":
    sys.exit(main())
