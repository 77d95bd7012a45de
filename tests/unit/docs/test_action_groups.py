"""The action groups of meta/runtime.yml fit their modules' options.

``module_defaults: {group/ctys.pm.<group>: {...}}`` hands every option set there to every module of the
group. That is only safe when an option name means the same thing in each module of the group: the old
all-modules group sent the BMC's ``port`` and ``password`` to pm_wake as its UDP port and SecureOn
password. Options are read with ``ansible-doc --json``, the documentation Ansible shows.
"""

from __future__ import annotations

import json
import subprocess
from itertools import combinations
from typing import Any, Dict

import pytest
import yaml

from ansible_collections.ctys.pm.plugins.doc_fragments.bmc import ModuleDocFragment as BmcFragment
from pmtest.ansible_run import REPO_ROOT, VENV_BIN, ansible_env

MODULES = sorted(path.stem for path in (REPO_ROOT / "plugins" / "modules").glob("pm_*.py"))
GROUPS: Dict[str, list] = yaml.safe_load((REPO_ROOT / "meta" / "runtime.yml").read_text())["action_groups"]
BMC_OPTIONS = set(yaml.safe_load(BmcFragment.DOCUMENTATION)["options"])


@pytest.fixture(scope="module")
def docs() -> Dict[str, Any]:
    argv = [str(VENV_BIN / "ansible-doc"), "-t", "module", "--json"] + [f"ctys.pm.{name}" for name in MODULES]
    proc = subprocess.run(argv, env=ansible_env(), capture_output=True, text=True, timeout=120, check=False)
    assert proc.returncode == 0, proc.stderr
    return {name.removeprefix("ctys.pm."): entry["doc"] for name, entry in json.loads(proc.stdout).items()}


def test_group_bmc_is_exactly_the_modules_with_the_bmc_options(docs):
    with_bmc_options = sorted(name for name, doc in docs.items() if BMC_OPTIONS <= set(doc["options"]))
    assert with_bmc_options, "no module documents the BMC options: the fragment lookup is broken"
    assert sorted(GROUPS["bmc"]) == with_bmc_options


def test_no_group_mixes_modules_whose_options_clash(docs):
    def meaning(spec):  # a group default replaces each module's own default, so defaults may differ
        return (spec.get("type", "str"), bool(spec.get("no_log")), tuple(spec.get("choices") or ()), spec.get("elements"))

    for group, members in GROUPS.items():
        for first, second in combinations(members, 2):
            shared = set(docs[first]["options"]) & set(docs[second]["options"])
            clashes = [name for name in sorted(shared)
                       if meaning(docs[first]["options"][name]) != meaning(docs[second]["options"][name])]
            assert not clashes, f"group {group}: {first} and {second} both take {clashes} with different meanings"


def test_the_bmc_options_mean_the_same_in_every_member(docs):
    for name in sorted(BMC_OPTIONS):
        specs = {json.dumps(docs[module]["options"][name], sort_keys=True) for module in GROUPS["bmc"]}
        assert len(specs) == 1, f"{name} is documented differently across group bmc"


def test_pm_wake_is_in_no_group_and_its_secureon_password_is_not_called_password(docs):
    assert not any("pm_wake" in members for members in GROUPS.values())
    options = docs["pm_wake"]["options"]
    names = set(options) | {alias for spec in options.values() for alias in spec.get("aliases") or ()}
    assert "secureon_password" in options and "password" not in names and "user" not in names


@pytest.mark.parametrize("module", MODULES)
def test_documented_membership_matches_runtime_yml(docs, module):
    membership = sorted(f"ctys.pm.{group}" for group, members in GROUPS.items() if module in members)
    attribute = docs[module].get("attributes", {}).get("action_group")
    if membership:
        assert attribute and sorted(attribute["membership"]) == membership and attribute["support"] == "full"
    else:
        assert attribute is None or attribute.get("support") == "none", attribute
