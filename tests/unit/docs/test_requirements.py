"""Every module that needs a library or a command says so under ``requirements`` (what ``ansible-doc`` shows).

``NEEDS`` below states what each module needs. It is held against the code on one side: the Python
libraries are derived from the imports of the module and of every module_utils file it reaches, and
the commands from what that code runs (argv lists, ``get_bin_path``/``which`` look-ups, the hypervisor
backends' ``tool``). And against the documentation on the other side: each need is named in the
module's ``requirements`` as ``ansible-doc --json`` returns them.
"""

from __future__ import annotations

import ast
import json
import re
import subprocess
import sys
from pathlib import Path
from typing import Dict, Iterator, Set

import pytest

from pmtest.ansible_run import REPO_ROOT, VENV_BIN, ansible_env

MODULES_DIR = REPO_ROOT / "plugins" / "modules"
MODULE_UTILS = REPO_ROOT / "plugins" / "module_utils"
PREFIX = "ansible_collections.ctys.pm.plugins.module_utils"

LIBRARIES = {"pyghmi", "paramiko", "libvirt"}
NEEDS: Dict[str, Set[str]] = {
    "pm_ipmi_power": {"pyghmi"},
    "pm_power": {"pyghmi"},
    "pm_bmc_info": {"pyghmi"},
    "pm_console": {"pyghmi"},
    "pm_sensors": {"pyghmi", "sensors"},
    "pm_wake": {"paramiko"},
    "pm_wol_flag": {"ethtool", "nmcli"},
    "pm_info": {"ip", "ethtool"},
    "pm_stack": {"libvirt", "virsh", "VBoxManage", "vmrun", "xl", "qm"},
}
# looked up to report a capability, never run and never needed (pm_info's WoLRemote token)
DETECTED_ONLY = {"ether-wake", "etherwake", "wakeonlan"}


def _path_of(dotted: str) -> Path | None:
    """ansible_collections.ctys.pm.plugins.module_utils.a.b -> the file (module or package) it names."""
    rest = dotted[len(PREFIX):].lstrip(".")
    base = MODULE_UTILS.joinpath(*rest.split(".")) if rest else MODULE_UTILS
    for candidate in (base.with_suffix(".py"), base / "__init__.py"):
        if candidate.is_file():
            return candidate
    return None


def _package_of(path: Path) -> str:
    """The package a module_utils file's relative imports start from (its folder, for __init__.py too)."""
    return ".".join((PREFIX,) + path.relative_to(MODULE_UTILS).parts[:-1])


def _closure(module: str) -> Dict[Path, ast.AST]:
    """The module's file and every module_utils file it imports, directly or not."""
    todo = [MODULES_DIR / f"{module}.py"]
    seen: Dict[Path, ast.AST] = {}
    while todo:
        path = todo.pop()
        if path in seen:
            continue
        tree = ast.parse(path.read_text(encoding="utf-8"))
        seen[path] = tree
        for node in ast.walk(tree):
            targets = []
            if isinstance(node, ast.ImportFrom):
                if node.level:  # relative, inside module_utils
                    package = _package_of(path).split(".")
                    base = ".".join(package[: len(package) - node.level + 1])
                    source = f"{base}.{node.module}" if node.module else base
                else:
                    source = node.module or ""
                if source.startswith(PREFIX):
                    targets.append(source)
                    targets.extend(f"{source}.{alias.name}" for alias in node.names)  # submodules imported by name
            elif isinstance(node, ast.Import):
                targets.extend(alias.name for alias in node.names if alias.name.startswith(PREFIX))
            for target in targets:
                found = _path_of(target)
                if found:
                    todo.append(found)
    return seen


def _third_party(trees: Dict[Path, ast.AST]) -> Set[str]:
    found = set()
    for tree in trees.values():
        for node in ast.walk(tree):
            names = []
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and not node.level and node.module:
                names = [node.module]
            for name in names:
                top = name.split(".")[0]
                if top not in sys.stdlib_module_names and top not in ("ansible", "ansible_collections", "__future__"):
                    found.add(top)
    return found


def _run_calls(node: ast.Call) -> Iterator[str]:
    """Command names in argv lists handed to a run function, and in get_bin_path/which look-ups."""
    func = node.func
    name = func.attr if isinstance(func, ast.Attribute) else func.id if isinstance(func, ast.Name) else ""
    first = node.args[0] if node.args else None
    if name in ("get_bin_path", "which") and isinstance(first, ast.Constant) and isinstance(first.value, str):
        yield first.value
    if re.search(r"run|runner", name) and isinstance(first, ast.List) and first.elts:
        head = first.elts[0]
        if isinstance(head, ast.Constant) and isinstance(head.value, str):
            yield head.value


def _commands(trees: Dict[Path, ast.AST]) -> Set[str]:
    found: Set[str] = set()
    for tree in trees.values():
        for node in ast.walk(tree):
            if isinstance(node, ast.Call):
                found.update(_run_calls(node))
            elif isinstance(node, ast.Assign) and len(node.targets) == 1:
                target, value = node.targets[0], node.value
                if isinstance(target, ast.Tuple) and isinstance(value, ast.Tuple):  # name, tool = "libvirt", "virsh"
                    for element, item in zip(target.elts, value.elts):
                        if isinstance(element, ast.Name) and element.id == "tool" and isinstance(item, ast.Constant):
                            found.add(item.value)
                elif isinstance(target, ast.Name) and target.id == "tool" and isinstance(value, ast.Constant):
                    found.add(value.value)
                elif isinstance(target, ast.Name) and target.id == "tools" and isinstance(value, ast.Dict):
                    for item in value.values:  # {"virtualbox": ("VBoxManage", VBoxManage), ...}
                        if isinstance(item, ast.Tuple) and isinstance(item.elts[0], ast.Constant):
                            found.add(item.elts[0].value)
    return found - DETECTED_ONLY - {""}  # "" is the abstract backend's tool


MODULES = sorted(path.stem for path in MODULES_DIR.glob("pm_*.py"))


def test_the_table_covers_every_module():
    assert sorted(NEEDS) == MODULES


@pytest.mark.parametrize("module", MODULES)
def test_the_table_matches_what_the_code_imports_and_runs(module):
    trees = _closure(module)
    assert len(trees) > 1, f"{module} reaches no module_utils: the import resolution is broken"
    needs = NEEDS[module]
    assert _third_party(trees) == needs & LIBRARIES, f"{module} imports other libraries than NEEDS says"
    assert _commands(trees) == needs - LIBRARIES, f"{module} runs other commands than NEEDS says"


@pytest.fixture(scope="module")
def documented() -> Dict[str, list]:
    argv = [str(VENV_BIN / "ansible-doc"), "-t", "module", "--json"] + [f"ctys.pm.{name}" for name in MODULES]
    proc = subprocess.run(argv, env=ansible_env(), capture_output=True, text=True, timeout=120, check=False)
    assert proc.returncode == 0, proc.stderr
    return {name.removeprefix("ctys.pm."): entry["doc"].get("requirements") or [] for name, entry in json.loads(proc.stdout).items()}


@pytest.mark.parametrize("module", MODULES)
def test_ansible_doc_shows_every_need(documented, module):
    text = " ".join(documented[module])
    missing = [need for need in sorted(NEEDS[module]) if not re.search(rf"(?<![\w-]){re.escape(need)}(?![\w])", text)]
    assert not missing, f"ansible-doc ctys.pm.{module} lists no requirement for {missing}: {documented[module]}"
