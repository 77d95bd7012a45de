"""make compat runs the tests marked compat with the oldest supported ansible-core: check that it really does."""

from __future__ import annotations

import os
import subprocess

import pytest

from pmtest.ansible_run import VENV_BIN

pytestmark = pytest.mark.compat


def test_the_ansible_under_test_is_the_one_make_compat_installed():
    expected = os.environ.get("PMTEST_ANSIBLE_CORE")
    if not expected:
        pytest.skip("runs under make compat, which sets PMTEST_ANSIBLE_CORE")
    version = subprocess.run([str(VENV_BIN / "ansible"), "--version"], capture_output=True, text=True, timeout=60, check=True)
    assert f"[core {expected}]" in version.stdout.splitlines()[0], version.stdout
