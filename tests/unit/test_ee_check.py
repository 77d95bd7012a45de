"""tests/ee/check.sh (make ee-check) passes on the example execution environment and fails on a
build context that lacks a file it names, or that names a path of the build machine.

No container engine is used: the check stops at the context, an offline ``ansible-galaxy collection
install`` from it and ``ansible-builder introspect``.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

REPO_ROOT = Path(__file__).resolve().parents[2]
CHECK = REPO_ROOT / "tests" / "ee" / "check.sh"


def _env():
    env = dict(os.environ)
    env["PATH"] = f"{Path(sys.executable).parent}:{env.get('PATH', '/usr/bin:/bin')}"
    env["PYTHON"] = sys.executable
    return env


def _run(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([str(CHECK), *args], capture_output=True, text=True, env=_env(), timeout=300, check=False)


@pytest.fixture(scope="module")
def good(tmp_path_factory):
    if shutil.which("ansible-builder", path=_env()["PATH"]) is None:
        pytest.skip("needs ansible-builder (requirements-dev.txt)")
    work = tmp_path_factory.mktemp("ee")
    proc = _run("--keep", str(work))
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return work


@pytest.fixture
def broken(good, tmp_path):
    """A copy of the good build context and its definition, to break."""
    shutil.copytree(good / "context", tmp_path / "context", symlinks=True)
    shutil.copy(good / "execution-environment.yml", tmp_path / "execution-environment.yml")
    return tmp_path


def _tarball_name() -> str:
    version = yaml.safe_load((REPO_ROOT / "galaxy.yml").read_text(encoding="utf-8"))["version"]
    return f"ctys-pm-{version}.tar.gz"


def test_example_context_holds_the_tarball_by_a_relative_name(good):
    build = good / "context" / "_build"
    assert (build / _tarball_name()).is_file()
    reqs = yaml.safe_load((build / "requirements.yml").read_text(encoding="utf-8"))
    assert reqs["collections"] == [{"name": _tarball_name(), "type": "file"}]
    assert str(REPO_ROOT) not in (build / "requirements.yml").read_text(encoding="utf-8")


def test_intact_context_passes(broken):
    proc = _run("--context", str(broken / "context"), str(broken / "execution-environment.yml"))
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_context_without_the_tarball_fails(broken):
    (broken / "context" / "_build" / _tarball_name()).unlink()
    proc = _run("--context", str(broken / "context"), str(broken / "execution-environment.yml"))
    assert proc.returncode != 0
    assert f"installs {_tarball_name()}, which is not in the context" in proc.stderr


def test_context_without_a_copied_script_fails(broken):
    (broken / "context" / "_build" / "scripts" / "entrypoint").unlink()
    proc = _run("--context", str(broken / "context"), str(broken / "execution-environment.yml"))
    assert proc.returncode != 0
    assert "copies _build/scripts/entrypoint, which is not in the context" in proc.stderr


def test_requirements_with_an_absolute_tarball_path_fail(broken):
    """What the old check produced: _build/requirements.yml naming the tarball where it was built."""
    tarball = broken / "context" / "_build" / _tarball_name()
    reqs = broken / "context" / "_build" / "requirements.yml"
    reqs.write_text(yaml.safe_dump({"collections": [{"name": str(tarball), "type": "file"}]}), encoding="utf-8")
    proc = _run("--context", str(broken / "context"), str(broken / "execution-environment.yml"))
    assert proc.returncode != 0
    assert f"names the absolute path {tarball}" in proc.stderr


def test_definition_without_its_tarball_fails(tmp_path):
    """ansible-builder create only warns when a build file is missing; the check does not let it pass."""
    if shutil.which("ansible-builder", path=_env()["PATH"]) is None:
        pytest.skip("needs ansible-builder (requirements-dev.txt)")
    shutil.copy(REPO_ROOT / "tests" / "ee" / "execution-environment.yml", tmp_path)
    create = subprocess.run(
        ["ansible-builder", "create", "-f", "execution-environment.yml", "-c", "context"],
        cwd=tmp_path, capture_output=True, text=True, env=_env(), timeout=300, check=False,
    )
    assert create.returncode == 0, create.stdout + create.stderr
    proc = _run("--context", str(tmp_path / "context"), str(tmp_path / "execution-environment.yml"))
    assert proc.returncode != 0
    assert f"additional_build_files: {_tarball_name()} is not in the context" in proc.stderr
