"""The ``pm_bmc_*`` host variables mean the same in every playbook and role task that asks a BMC.

docs/pm_power.md ("In the playbooks and the role") lists which variable feeds which option. Each BMC
task of the shipped playbooks and of the role pm_shutdown_stack lists them again (a task cannot share
a mapping with ``omit`` inside it), and power.yml copies them into each fleet target; this keeps the
copies and the table in step, so that a variable added to one is not missing from another.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any, Dict, Iterator, Tuple

import pytest
import yaml

from pmtest.ansible_run import REPO_ROOT

# demo.yml drives the IPMI lab of make demo with pm_ipmi_power (docs/pm_power.md says so)
NOT_ASKED_BY_VARIABLE = {"playbooks/demo.yml"}
# the files whose BMC tasks take one machine's connection from its pm_bmc_* variables
SINGLE_HOST_USERS = {"playbooks/health.yml", "playbooks/maintenance_exit.yml", "roles/pm_shutdown_stack/tasks/self.yml"}
VALUE = re.compile(r"\{\{ (pm_bmc_\w+)(?: \| default\((?:omit|'ipmi')\))? \}\}")


def documented() -> Dict[str, str]:
    """host variable -> option, from the table of docs/pm_power.md."""
    text = (REPO_ROOT / "docs" / "pm_power.md").read_text(encoding="utf-8")
    section = text.split("## In the playbooks and the role", 1)[1].split("\n## ", 1)[0]
    table: Dict[str, str] = {}
    for variables, options in re.findall(r"^\| (`pm_bmc_[^|]+) \| (`[^|]+)\|", section, re.M):
        names = re.findall(r"`(pm_bmc_\w+)`", variables)
        table.update(zip(names, re.findall(r"`(\w+)`", options)))  # the first options, one per variable; then prose
    return table


TABLE = documented()


def shipped_files() -> Iterator[Path]:
    yield from sorted((REPO_ROOT / "playbooks").glob("*.yml"))
    yield from sorted((REPO_ROOT / "roles").glob("*/tasks/*.yml"))


def connections(node: Any) -> Iterator[Dict[str, Any]]:
    """Every mapping (task arguments or module_defaults) whose ``bmc`` is the host's pm_bmc_host."""
    if isinstance(node, dict):
        if node.get("bmc") == "{{ pm_bmc_host }}":
            yield node
        for value in node.values():
            yield from connections(value)
    elif isinstance(node, list):
        for item in node:
            yield from connections(item)


def single_host_connections() -> Iterator[Tuple[str, Dict[str, Any]]]:
    for path in shipped_files():
        name = str(path.relative_to(REPO_ROOT))
        if name not in NOT_ASKED_BY_VARIABLE:
            for found in connections(yaml.safe_load(path.read_text(encoding="utf-8"))):
                yield name, found


def test_the_table_names_every_bmc_variable():
    assert TABLE == {
        "pm_bmc_host": "bmc", "pm_bmc_protocol": "protocol", "pm_bmc_port": "port", "pm_bmc_user": "user", "pm_bmc_password": "password",
        "pm_bmc_ca_path": "ca_path", "pm_bmc_certificate_fingerprint": "certificate_fingerprint",
        "pm_bmc_validate_certs": "validate_certs", "pm_bmc_resource_id": "resource_id",
    }


def test_every_single_host_bmc_task_passes_every_variable_to_its_option():
    found = list(single_host_connections())
    assert {name for name, _args in found} == SINGLE_HOST_USERS
    for name, args in found:
        passed: Dict[str, str] = {}
        for option, value in args.items():
            match = VALUE.fullmatch(str(value))
            if match:
                passed[match.group(1)] = option
        assert passed == TABLE, f"{name}: passes {passed}, the table in docs/pm_power.md says {TABLE}"
        assert args["protocol"] == "{{ pm_bmc_protocol | default('ipmi') }}", f"{name}: unset pm_bmc_protocol must mean ipmi"


def test_power_playbook_copies_every_variable_into_each_target():
    play = yaml.safe_load((REPO_ROOT / "playbooks" / "power.yml").read_text(encoding="utf-8"))
    task = play[0]["tasks"][0]
    copied = dict(task["vars"]["pm_power_options"])
    targets = task["ctys.pm.pm_power"]["targets"]
    for variable in ("pm_bmc_host", "pm_bmc_protocol"):  # set in the target itself, the protocol with its default
        assert f"'{TABLE[variable]}': hostvars[host].{variable}" in targets
    assert "hostvars[host].pm_bmc_protocol | default('ipmi')" in targets
    copied.update({"pm_bmc_host": "bmc", "pm_bmc_protocol": "protocol"})
    assert copied == TABLE


@pytest.mark.parametrize("variable", sorted(TABLE))
def test_the_role_documents_every_variable(variable):
    specs = yaml.safe_load((REPO_ROOT / "roles" / "pm_shutdown_stack" / "meta" / "argument_specs.yml").read_text(encoding="utf-8"))
    assert variable in specs["argument_specs"]["main"]["options"]
