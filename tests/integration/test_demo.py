"""`make demo`, the README's first command, run as a user runs it: the lab comes up, playbooks/demo.yml passes, the lab goes.

Each claim of the demo's summaries is read from its output; what the machines did is asserted by the playbook
itself (its assert tasks fail the run), and the lab must leave none of its namespaces behind (other labs may run
beside it: make test runs the compat tests beside pytest).
"""

from __future__ import annotations

import os
import re
import subprocess
import threading

import pytest

from pmlab_lib.lab import namespace_prefix
from pmtest.ansible_run import REPO_ROOT

pytestmark = [pytest.mark.lab, pytest.mark.slow, pytest.mark.skipif(os.geteuid() != 0, reason="the lab's namespaces need root")]


def _namespaces(prefix: str) -> set:
    listed = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True, check=True).stdout
    return {line.split()[0] for line in listed.splitlines() if line.startswith(prefix + "-")}


def test_make_demo_runs_the_whole_story_and_tears_the_lab_down(tmp_path):
    prefix = namespace_prefix((tmp_path / "lab").resolve())
    seen: set = set()  # the demo lab's namespaces while it runs: proves the prefix is the lab's own
    done = threading.Event()

    def watch() -> None:
        while not done.wait(0.5):
            seen.update(_namespaces(prefix))

    watcher = threading.Thread(target=watch, daemon=True)
    watcher.start()
    env = dict(os.environ, PMLAB_DIR=str(tmp_path / "lab"))
    try:
        demo = subprocess.run(["make", "--no-print-directory", "demo", f"LAB_DIR={tmp_path / 'lab'}"], cwd=REPO_ROOT, env=env,
                              stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=900, check=False)
    finally:
        done.set()
        watcher.join(timeout=10)
        subprocess.run([str(REPO_ROOT / "tests" / "lab" / "pmlab"), "down"], env=env, capture_output=True, timeout=120, check=False)
    out = demo.stdout
    assert demo.returncode == 0, out[-4000:] + demo.stderr[-2000:]
    assert re.search(r"failed=0 ", out) and not re.search(r"failed=[1-9]", out), out[-3000:]
    assert "SSH answered as lab01" in out
    assert "second wake: already running = True, changed = False" in out
    assert "after the OS poweroff the BMC reports off" in out
    after_round_trip = out[out.rindex("Show the guests after the round trip"):]
    for guest in ("db", "web", "lab02"):
        assert f"'{guest}: running'" in after_round_trip or f"- {guest}: running" in after_round_trip, after_round_trip
    assert "pmlab: down" in out
    assert f"{prefix}-ctl" in seen, f"the demo lab's namespaces were never seen under {prefix}-: {sorted(seen)}"
    assert not _namespaces(prefix), "make demo left a network namespace behind"
