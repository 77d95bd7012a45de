"""Run ctys.pm modules and playbooks through the real ansible CLI and read their results.

Results come from ansible-core's ``tree`` callback (one JSON file per host),
so tests assert on the module's real return values while stdout and stderr
stay available for checks such as "the password never appears".
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Dict, List, Mapping, Optional, Sequence

REPO_ROOT = Path(__file__).resolve().parents[2]
COLLECTIONS = REPO_ROOT / ".build" / "collections"
if not COLLECTIONS.is_dir() and REPO_ROOT.parents[1].name == "ansible_collections":
    # a copy at ansible_collections/ctys/pm without make's link (ansible-test units)
    COLLECTIONS = REPO_ROOT.parents[2]
# PMTEST_VENV runs the CLI tests with another Ansible (make compat: the oldest ansible-core supported)
VENV_BIN = Path(os.environ.get("PMTEST_VENV") or REPO_ROOT / ".venv") / "bin"
if not VENV_BIN.is_dir():
    # no .venv (ansible-test units in a copy): the Ansible on PATH (ansible-test puts its own there)
    VENV_BIN = Path(shutil.which("ansible-playbook") or sys.executable).parent


@dataclass
class AnsibleResult:
    """What one ``ansible`` or ``ansible-playbook`` run produced."""

    rc: int
    stdout: str
    stderr: str
    per_host: Dict[str, Dict[str, Any]] = field(default_factory=dict)
    tasks: List[Dict[str, Any]] = field(default_factory=list)

    def host(self, name: str = "localhost") -> Dict[str, Any]:
        if name not in self.per_host:
            raise AssertionError(
                f"no result for {name}; rc={self.rc}\nstdout:\n{self.stdout}\nstderr:\n{self.stderr}"
            )
        return self.per_host[name]

    @property
    def result(self) -> Dict[str, Any]:
        """The result of a single-host run."""
        if len(self.per_host) != 1:
            raise AssertionError(
                f"expected one host result, got {sorted(self.per_host)}; rc={self.rc}\n"
                f"stdout:\n{self.stdout}\nstderr:\n{self.stderr}"
            )
        return next(iter(self.per_host.values()))


def ansible_env(extra: Optional[Mapping[str, str]] = None) -> Dict[str, str]:
    env = dict(os.environ)
    env["ANSIBLE_COLLECTIONS_PATH"] = str(COLLECTIONS)
    env["ANSIBLE_CONFIG"] = str(REPO_ROOT / "tests" / "ansible.cfg")
    env["PATH"] = f"{VENV_BIN}:{env.get('PATH', '/usr/bin:/bin')}"
    env.setdefault("ANSIBLE_LOCAL_TEMP", tempfile.gettempdir())
    env["ANSIBLE_NOCOLOR"] = "1"
    env["ANSIBLE_FORCE_COLOR"] = "0"
    if extra:
        env.update(extra)
    return env


def _netns_prefix(netns: Optional[str]) -> List[str]:
    return ["ip", "netns", "exec", netns] if netns else []


def run_module(
    module: str,
    args: Mapping[str, Any],
    *,
    hosts: str = "localhost",
    inventory: Optional[os.PathLike] = None,
    check: bool = False,
    diff: bool = False,
    verbosity: int = 0,
    netns: Optional[str] = None,
    env: Optional[Mapping[str, str]] = None,
    timeout: float = 300,
    become: bool = False,
) -> AnsibleResult:
    """Run ``ansible HOSTS -m MODULE -a JSON`` and collect each host's result.

    Each host's result carries ``failed: true`` when the module failed and
    ``unreachable: true`` when the host could not be reached.
    """
    with tempfile.TemporaryDirectory(prefix="pmtest-") as tmp:
        argv = _netns_prefix(netns) + [
            str(VENV_BIN / "ansible"),
            hosts,
            "-m",
            module,
            "-a",
            json.dumps(dict(args)),
        ]
        argv += ["-i", str(inventory)] if inventory else ["-i", "localhost,", "-c", "local"]
        if check:
            argv.append("--check")
        if diff:
            argv.append("--diff")
        if become:
            argv.append("--become")
        if verbosity:
            argv.append("-" + "v" * verbosity)
        return _run(argv, env, inventory, timeout, Path(tmp))


def run_playbook(
    playbook: os.PathLike,
    *,
    inventory: Optional[os.PathLike] = None,
    extra_vars: Optional[Mapping[str, Any]] = None,
    check: bool = False,
    diff: bool = False,
    verbosity: int = 0,
    netns: Optional[str] = None,
    env: Optional[Mapping[str, str]] = None,
    timeout: float = 600,
    extra_args: Sequence[str] = (),
) -> AnsibleResult:
    """Run ``ansible-playbook``; ``per_host`` is empty (read stdout or registered files)."""
    argv = _netns_prefix(netns) + [str(VENV_BIN / "ansible-playbook"), str(playbook)]
    argv += ["-i", str(inventory)] if inventory else ["-i", "localhost,", "-c", "local"]
    if extra_vars:
        argv += ["-e", json.dumps(dict(extra_vars))]
    if check:
        argv.append("--check")
    if diff:
        argv.append("--diff")
    if verbosity:
        argv.append("-" + "v" * verbosity)
    argv += list(extra_args)
    with tempfile.TemporaryDirectory(prefix="pmtest-") as tmp:
        return _run(argv, env, inventory, timeout, Path(tmp))


def _run(argv: List[str], env: Optional[Mapping[str, str]], inventory: Optional[os.PathLike], timeout: float, tmp: Path) -> AnsibleResult:
    results_file = tmp / "results.jsonl"
    run_env = ansible_env(env)
    run_env["ANSIBLE_LOAD_CALLBACK_PLUGINS"] = "1"
    run_env["ANSIBLE_CALLBACK_PLUGINS"] = str(Path(__file__).resolve().parent / "callback_plugins")
    run_env["PMTEST_RESULTS"] = str(results_file)
    if not inventory:
        python = VENV_BIN / "python"
        run_env["ANSIBLE_PYTHON_INTERPRETER"] = str(python) if python.exists() else sys.executable
    proc = subprocess.run(argv, env=run_env, capture_output=True, text=True, timeout=timeout, stdin=subprocess.DEVNULL, check=False)
    tasks: List[Dict[str, Any]] = []
    per_host: Dict[str, Dict[str, Any]] = {}
    if results_file.exists():
        for line in results_file.read_text(encoding="utf-8").splitlines():
            record = json.loads(line)
            result = dict(record["result"])
            if record["status"] == "failed":
                result["failed"] = True
            elif record["status"] == "unreachable":
                result["unreachable"] = True
            record["result"] = result
            tasks.append(record)
            per_host[record["host"]] = result  # last task wins, as for ad-hoc runs
    return AnsibleResult(proc.returncode, proc.stdout, proc.stderr, per_host, tasks)


def without_unsafe_markers(value: Any) -> Any:
    """``ansible-inventory --list`` output with its ``{"__ansible_unsafe": ...}`` wrappers removed."""
    if isinstance(value, dict):
        if set(value) == {"__ansible_unsafe"}:
            return value["__ansible_unsafe"]
        return {key: without_unsafe_markers(item) for key, item in value.items()}
    if isinstance(value, list):
        return [without_unsafe_markers(item) for item in value]
    return value
