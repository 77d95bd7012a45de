"""The EXAMPLES of every ctys.pm module and of the inventory plugin use only options that plugin documents.

Doc rot an operator meets at once: an example copied into a playbook fails with "Unsupported parameters".
Options (doc fragments, aliases and suboptions included) and examples are read with ``ansible-doc --json``,
the documentation Ansible itself shows; ansible-test checks that documentation against the argument spec.
"""

from __future__ import annotations

import json
import subprocess
from typing import Any, Dict, Iterator, List

import pytest
import yaml

from pmtest.ansible_run import REPO_ROOT, VENV_BIN, ansible_env

MODULES = sorted(path.stem for path in (REPO_ROOT / "plugins" / "modules").glob("pm_*.py"))
TASK_KEYWORDS = {"name", "register", "delegate_to", "when", "loop", "loop_control", "vars", "check_mode", "diff", "become",
                 "changed_when", "failed_when", "until", "retries", "delay", "run_once", "no_log", "tags", "environment",
                 "ignore_errors", "notify", "async", "poll", "module_defaults"}


def _ansible_doc(plugin_type: str, names: List[str]) -> Dict[str, Any]:
    argv = [str(VENV_BIN / "ansible-doc"), "-t", plugin_type, "--json"] + [f"ctys.pm.{name}" for name in names]
    proc = subprocess.run(argv, env=ansible_env(), capture_output=True, text=True, timeout=120, check=False)
    assert proc.returncode == 0, proc.stderr
    return {name.removeprefix("ctys.pm."): entry for name, entry in json.loads(proc.stdout).items()}


@pytest.fixture(scope="module")
def module_docs() -> Dict[str, Any]:
    return _ansible_doc("module", MODULES)


def _names(options: Dict[str, Any]) -> Dict[str, Dict[str, Any]]:
    """Option name or alias -> its documentation."""
    found = {}
    for name, spec in options.items():
        found[name] = spec
        for alias in spec.get("aliases") or ():
            found[alias] = spec
    return found


def _unknown(args: Any, options: Dict[str, Any], where: str = "") -> Iterator[str]:
    if not isinstance(args, dict):
        return  # a templated string: nothing to check by name
    names = _names(options)
    for key, value in args.items():
        if key not in names:
            yield where + key
        elif names[key].get("suboptions"):
            for item in value if isinstance(value, list) else [value]:
                yield from _unknown(item, names[key]["suboptions"], f"{where}{key}.")


def _tasks(data: Any) -> Iterator[Dict[str, Any]]:
    for item in data or ():
        if isinstance(item, dict):
            if "tasks" in item or "hosts" in item:
                yield from _tasks(item.get("tasks"))
            elif "block" in item:
                yield from _tasks(item["block"])
            else:
                yield item


@pytest.mark.parametrize("module", MODULES)
def test_module_examples_call_it_with_documented_options_only(module, module_docs):
    entry = module_docs[module]
    calls = [task for task in _tasks(yaml.safe_load(entry["examples"])) if f"ctys.pm.{module}" in task]
    assert calls, f"{module} EXAMPLES never call ctys.pm.{module}"
    problems = []
    for task in calls:
        problems += [f"{task.get('name', '?')}: {name}" for name in _unknown(task[f"ctys.pm.{module}"], entry["doc"]["options"])]
        problems += [f"{task.get('name', '?')}: task keyword {key}" for key in task if key not in TASK_KEYWORDS | {f"ctys.pm.{module}"}]
    assert not problems, f"{module} EXAMPLES use what it does not document: {problems}"


def test_inventory_examples_use_documented_options_only():
    entry = _ansible_doc("inventory", ["ctys"])["ctys"]
    configs = [config for config in yaml.safe_load_all(entry["examples"]) if config]
    assert configs and all(config["plugin"] == "ctys.pm.ctys" for config in configs)
    problems = [name for config in configs for name in _unknown(config, entry["doc"]["options"])]
    assert not problems, f"the inventory plugin's EXAMPLES use undocumented options: {problems}"
