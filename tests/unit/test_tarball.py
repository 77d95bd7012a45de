"""The collection tarball built from a used working tree carries the collection and nothing else.

The tree is copied (the files git knows, tracked or new) to a temporary directory, the caches, virtual
environments and build outputs that the tools used here create are planted in it, then
``ansible-galaxy collection build`` runs and the tarball is listed, as a user who installs it sees it.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import tarfile
from pathlib import Path
from typing import List, Set

import pytest
import yaml

REPO_ROOT = Path(__file__).resolve().parents[2]

# What the tools here leave in a working tree (file paths; a directory is planted with one file in it).
PLANTED = [
    ".pytest_cache/v/cache/lastfailed",
    "tests/unit/.pytest_cache/README.md",
    ".hypothesis/examples/abc/123",
    "tests/reliability/.hypothesis/constants/x",
    "bench/results/wake.json",
    ".ansible/collections/ansible_collections/x.json",
    "roles/pm_shutdown_stack/.ansible/tmp/x.txt",
    "roles/pm_wol_prepare/molecule/default/.molecule/state.yml",
    ".cache/molecule/x.yml",
    ".mypy_cache/3.11/x.json",
    ".ruff_cache/0.6.0/x",
    "plugins/modules/__pycache__/pm_wake.cpython-311.pyc",
    "plugins/module_utils/stray.pyc",
    "tests/unit/__pycache__/conftest.cpython-311-pytest-9.2.0.pyc",
    ".build/collections/ansible_collections/ctys/pm/README.md",
    ".venv/bin/python",
    "tests/output/junit/python3.11-units.xml",
    ".tox/py311/x",
    ".nox/sanity/x",
    ".coverage",
    "htmlcov/index.html",
    "changelogs/.plugin-cache.yaml",
    "docs/docsite/_build/html/index.html",
    "ctys-pm-0.0.9.tar.gz",
    "roles/pm_wol_prepare/old.tar.gz",
    "playbooks/power.retry",
    "README.md.swp",
    "README.md~",
    ".idea/workspace.xml",
    ".vscode/settings.json",
    ".git/HEAD",
]

# Repository files that are for developing the collection, not for its users.
NOT_SHIPPED = {".gitignore", ".ci/run", "galaxy.yml"}


def _source_files() -> List[str]:
    """The files git knows in the working tree (tracked or new, not ignored), that exist now."""
    out = subprocess.run(
        ["git", "ls-files", "--cached", "--others", "--exclude-standard", "-z"],
        cwd=REPO_ROOT,
        check=True,
        capture_output=True,
    ).stdout.decode()
    return sorted(p for p in out.split("\0") if p and (REPO_ROOT / p).is_file())


def _ansible_galaxy() -> str:
    here = Path(sys.executable).parent / "ansible-galaxy"
    return str(here) if here.exists() else (shutil.which("ansible-galaxy") or "ansible-galaxy")


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    if shutil.which("git") is None or not (REPO_ROOT / ".git").exists():
        pytest.skip("needs the git repository of the collection")
    tree = tmp_path_factory.mktemp("tree") / "pm"
    sources = _source_files()
    for rel in sources:
        dest = tree / rel
        dest.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(REPO_ROOT / rel, dest)
    for rel in PLANTED:
        dest = tree / rel
        dest.parent.mkdir(parents=True, exist_ok=True)
        dest.write_text("planted by test_tarball\n", encoding="utf-8")
    out = tmp_path_factory.mktemp("out")
    proc = subprocess.run(
        [_ansible_galaxy(), "collection", "build", str(tree), "--output-path", str(out)],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    (tarball,) = out.glob("ctys-pm-*.tar.gz")
    with tarfile.open(tarball) as tar:
        members = {m.name for m in tar.getmembers() if m.isfile()}
    return sources, members, tarball


def test_no_cache_or_build_output_in_tarball(built):
    _sources, members, _tarball = built
    leaked = sorted(set(PLANTED) & members)
    assert leaked == []
    for name in members:
        parts = name.split("/")
        assert not {".pytest_cache", ".hypothesis", ".ansible", "__pycache__", ".mypy_cache", ".ruff_cache",
                    ".venv", ".build", ".git", ".tox", ".nox", ".molecule", ".cache", "htmlcov"} & set(parts), name
        assert not name.startswith(("bench/results/", "tests/output/", "docs/docsite/_build/")), name
        assert not name.endswith((".pyc", ".tar.gz", ".retry", ".swp", "~")), name
    assert ".ci/run" not in members


def test_tarball_ships_every_collection_file(built):
    """Everything the repository holds for users is in the tarball, and nothing else."""
    sources, members, _tarball = built
    expected = set(sources) - NOT_SHIPPED
    shipped = members - {"MANIFEST.json", "FILES.json"}
    assert sorted(expected - shipped) == []
    assert sorted(shipped - expected) == []


def test_tarball_contents_a_user_needs(built):
    _sources, members, tarball = built
    modules = sorted(p.name for p in (REPO_ROOT / "plugins" / "modules").glob("*.py"))
    assert modules, "no module found in plugins/modules"
    for name in modules:
        assert f"plugins/modules/{name}" in members
    must: Set[str] = {"MANIFEST.json", "FILES.json", "meta/runtime.yml", "README.md", "COPYING",
                      "requirements.txt", "bindep.txt", "meta/execution-environment.yml",
                      "changelogs/changelog.yaml"}
    assert sorted(must - members) == []
    for role in (REPO_ROOT / "roles").iterdir():
        if (role / "tasks" / "main.yml").is_file():
            assert f"roles/{role.name}/tasks/main.yml" in members
    assert any(m.startswith("playbooks/") and m.endswith(".yml") for m in members)
    assert any(m.startswith("docs/") and m.endswith(".md") for m in members)
    with tarfile.open(tarball) as tar:
        manifest = yaml.safe_load(tar.extractfile("MANIFEST.json"))
    galaxy = yaml.safe_load((REPO_ROOT / "galaxy.yml").read_text(encoding="utf-8"))
    assert manifest["collection_info"]["version"] == galaxy["version"]
