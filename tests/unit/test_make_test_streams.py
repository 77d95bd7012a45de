"""``make test`` runs pytest, the checks and the property tests side by side: any of them failing fails it.

The recipe is run for real, with ``PY`` a stand-in that exits with the code a test asks for (pytest's own run
or the property tests') and cheap make targets as the checks; ``BUILD`` is a scratch folder, so the files of a
``make test`` that is running this very test are left alone.
"""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from pmtest.ansible_run import REPO_ROOT

STAND_IN = """#!/bin/sh
case "$*" in
  *tests/unit*) exit "$STAND_IN_PYTEST_RC" ;;
  *) exit "$STAND_IN_FUZZ_RC" ;;
esac
"""


def make_test(tmp_path: Path, pytest_rc: int = 0, fuzz_rc: int = 0, cpu_checks: str = "help") -> subprocess.CompletedProcess:
    stand_in = tmp_path / "python"
    stand_in.write_text(STAND_IN)
    stand_in.chmod(0o755)
    build = tmp_path / "build"
    build.mkdir(exist_ok=True)
    (build / "apt.stamp").touch()  # the apt packages are there (make test installed them before running this)
    env = dict(os.environ, STAND_IN_PYTEST_RC=str(pytest_rc), STAND_IN_FUZZ_RC=str(fuzz_rc))
    env.pop("MAKEFLAGS", None)
    return subprocess.run(
        ["make", "--no-print-directory", "test", f"PY={stand_in}", f"BUILD={build}", "FUZZ_TESTS=tests/reliability/stand_in.py",
         "LAB_CHECKS=help", f"CPU_CHECKS={cpu_checks}"],
        cwd=REPO_ROOT, env=env, stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=120, check=False)


def test_all_three_pass(tmp_path):
    run = make_test(tmp_path)
    assert run.returncode == 0, run.stdout + run.stderr
    assert "make test: pytest rc=0, checks rc=0, property tests rc=0" in run.stdout
    assert "make demo        install" in run.stdout  # the checks' log (here: make help) is printed


@pytest.mark.parametrize("pytest_rc, fuzz_rc, cpu_checks, said", [
    (1, 0, "help", "pytest rc=2, checks rc=0, property tests rc=0"),  # make's code for the step; pytest's in pytest.rc
    (0, 0, "no-such-check", "pytest rc=0, checks rc=2, property tests rc=0"),
    (0, 5, "help", "pytest rc=0, checks rc=0, property tests rc=5"),
])
def test_any_stream_failing_fails_make_test(tmp_path, pytest_rc, fuzz_rc, cpu_checks, said):
    run = make_test(tmp_path, pytest_rc, fuzz_rc, cpu_checks)
    assert run.returncode != 0, run.stdout + run.stderr
    assert f"make test: {said}" in run.stdout
    assert (tmp_path / "build" / "pytest.rc").read_text().strip() == str(pytest_rc)  # what .ci/run reads
    if fuzz_rc == 5:
        assert "the property tests collected nothing" in run.stderr
    if cpu_checks == "no-such-check":
        assert "no-such-check" in run.stdout  # make's own message, from the checks' log
