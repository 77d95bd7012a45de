"""extensions/awx: the credential type and the surveys are what AWX accepts and what the playbooks read.

* the credential type passes AWX's checks, keeps the password secret and injects exactly the BMC
  account variables the playbooks and roles pass to the modules; every such use falls back to the
  modules' IPMI_USER / IPMI_PASSWORD when the variable is unset (``default(omit)``, or an
  ``is defined`` guard);
* there is one survey per shipped playbook, each passes AWX's survey spec checks, its defaults pass
  AWX's launch checks, every question's variable is read by the playbook (or the roles and task
  files it runs), and every multiple choice offers exactly what the playbook accepts: the choices
  of the module option or role option it feeds, the list the playbook checks it against, or
  true/false for a value that goes through ``| bool`` or into a boolean option.
"""

from __future__ import annotations

import functools
import json
import re
import subprocess
from pathlib import Path
from typing import Dict, List, Set, Tuple

import pytest
import yaml

from pmtest import awx
from pmtest.ansible_run import VENV_BIN, ansible_env

REPO = awx.REPO_ROOT
PLAYBOOKS = REPO / "playbooks"
# playbooks/ that are no job templates: demo.yml needs the lab, group_by_level.yml is imported by the others
NOT_JOBS = {"demo", "group_by_level"}
SHIPPED = sorted(p.stem for p in PLAYBOOKS.glob("*.yml") if p.stem not in NOT_JOBS)
BMC_ACCOUNT = {"pm_bmc_user": "user", "pm_bmc_password": "password"}
# how power.yml copies its mapping of host variables to a fleet target's options: only the variables a host defines
FLEET_GUARD = "{% if hostvars[host][variable] is defined %}{% set _ = target.update({option: hostvars[host][variable]}) %}"

# Where each multiple choice's accepted values are defined: ("module", MODULE, OPTION), ("role", ROLE, OPTION),
# ("checked", ALIASES) = the list an assert of the playbook checks the variable (or a play variable set from it) against,
# ("bool",) = true/false for a value read through "| bool" or passed to a boolean option.
CHOICE_SOURCES: Dict[Tuple[str, str], Tuple[str, ...]] = {
    ("power", "pm_power_state"): ("module", "pm_power", "state"),
    ("power", "pm_power_fail_on"): ("module", "pm_power", "fail_on"),
    ("wake", "pm_wake_raw"): ("bool",),
    ("health", "pm_health_fail_on"): ("checked",),
    ("shutdown", "pm_shutdown_method"): ("role", "pm_shutdown_stack", "pm_shutdown_method"),
    ("shutdown", "pm_shutdown_guest_action"): ("role", "pm_shutdown_stack", "pm_shutdown_guest_action"),
    ("shutdown", "pm_shutdown_force"): ("bool",),
    ("maintenance_enter", "pm_maintenance_wol"): ("bool",),
    ("maintenance_enter", "pm_shutdown_force"): ("bool",),
    ("maintenance_exit", "pm_maintenance_power"): ("checked", "power_by"),
    ("enumerate", "ctys_db_mode"): ("checked", "db_mode"),
    ("enumerate", "ctys_category"): ("module", "pm_info", "category"),
}


def without_comments(text: str) -> str:
    return "\n".join(line for line in text.splitlines() if not line.lstrip().startswith("#"))


def closure(playbook: Path) -> Dict[Path, str]:
    """The playbook and every file it runs: imported playbooks, included task files and templates, roles (and their roles)."""
    found: Dict[Path, str] = {}
    pending: List[Path] = [playbook]
    while pending:
        path = pending.pop().resolve()
        if path in found or not path.is_file():
            continue
        text = without_comments(path.read_text(encoding="utf-8"))
        found[path] = text
        for name in re.findall(r"(?:import_playbook|include_tasks|import_tasks):\s*([\w./-]+\.yml)", text):
            pending.append(path.parent / name)
        for name in re.findall(r"['\"]([\w./-]+\.j2)['\"]", text):
            pending.append(path.parent / name)
        for role in re.findall(r"(?:role|name):\s*ctys\.pm\.(\w+)", text):
            for sub in ("tasks", "defaults", "vars", "templates", "handlers"):
                pending += sorted((REPO / "roles" / role / sub).glob("*")) if (REPO / "roles" / role / sub).is_dir() else []
    return found


@functools.lru_cache(maxsize=None)
def module_doc(module: str) -> dict:
    """The module's documentation as Ansible shows it (doc fragments merged)."""
    argv = [str(VENV_BIN / "ansible-doc"), "-t", "module", "--json", f"ctys.pm.{module}"]
    proc = subprocess.run(argv, env=ansible_env(), capture_output=True, text=True, timeout=120, check=False)
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout)[f"ctys.pm.{module}"]["doc"]


def role_option(role: str, option: str) -> dict:
    specs = yaml.safe_load((REPO / "roles" / role / "meta" / "argument_specs.yml").read_text(encoding="utf-8"))
    return specs["argument_specs"]["main"]["options"][option]


# ----- the credential type ---------------------------------------------------------------------------
def test_credential_type_is_valid_for_awx_and_keeps_the_password_secret():
    ctype = awx.load_credential_type()
    assert awx.credential_type_errors(ctype) == []
    fields = {field["id"]: field for field in ctype["inputs"]["fields"]}
    assert fields["password"].get("secret") is True
    assert set(ctype["inputs"]["required"]) == {"username", "password"}


def test_credential_type_injects_the_variables_the_playbooks_pass_to_the_modules(tmp_path):
    (tmp_path / "env").mkdir()
    ctype = awx.load_credential_type()
    env, args = awx.inject_credential(ctype, {"username": "ops", "password": "s3cr{{ et }}"}, tmp_path)
    assert env == {}  # extra vars only: an environment would land in the runner's artifacts/command
    assert args[0] == "-e" and args[1].startswith("@")
    injected = yaml.load(Path(args[1][1:]).read_text(encoding="utf-8"), Loader=_UnsafeLoader)
    assert injected == {"pm_bmc_user": "ops", "pm_bmc_password": "s3cr{{ et }}"}
    assert set(injected) == set(BMC_ACCOUNT)


class _UnsafeLoader(yaml.SafeLoader):
    pass


_UnsafeLoader.add_constructor("!unsafe", lambda loader, node: loader.construct_scalar(node))


def bmc_account_files() -> List[Path]:
    return sorted(PLAYBOOKS.rglob("*.yml")) + sorted((REPO / "roles").glob("*/tasks/*.yml"))


@pytest.mark.parametrize("path", bmc_account_files(), ids=lambda p: str(p.relative_to(REPO)))
def test_bmc_account_falls_back_to_the_environment_when_unset(path):
    """Every use of pm_bmc_user / pm_bmc_password leaves the option out when the variable is unset."""
    text = without_comments(path.read_text(encoding="utf-8"))
    for match in re.finditer(r"(hostvars\[\w+\]\.)?\b(pm_bmc_user|pm_bmc_password)\b(.{0,30})", text):
        prefix, name, after = match.group(1) or "", match.group(2), match.group(3)
        if re.match(r"\s*\|\s*default\(omit\)", after) or re.match(r"\s+is defined", after):
            continue
        if re.fullmatch(rf":\s*{BMC_ACCOUNT[name]}\s*", after):  # an entry of a host variable: option mapping, read through FLEET_GUARD
            assert FLEET_GUARD in text, f"{path.relative_to(REPO)}: maps {name} to an option without {FLEET_GUARD!r}"
            continue
        guard = f"if {prefix}{name} is defined %}}{{% set _ = target.update({{'{BMC_ACCOUNT[name]}': {prefix}{name}}})"
        assert guard in text, f"{path.relative_to(REPO)}: {match.group(0)!r} fails when {name} is unset; use default(omit)"


# ----- the surveys -----------------------------------------------------------------------------------
def test_one_survey_per_shipped_playbook():
    assert SHIPPED == ["enumerate", "health", "maintenance_enter", "maintenance_exit", "power", "shutdown", "wake"]
    assert sorted(p.stem for p in awx.SURVEYS.glob("*.json")) == SHIPPED


@pytest.mark.parametrize("playbook", SHIPPED)
def test_survey_passes_awx_checks_and_its_defaults_launch(playbook):
    survey = awx.load_survey(playbook)
    assert awx.survey_spec_errors(survey) == []
    required_without_default = {q["variable"]: "rack1" for q in survey["spec"] if q["required"] and "default" not in q}
    answers = awx.survey_answers(survey, required_without_default)
    assert set(answers) == {q["variable"] for q in survey["spec"] if q["required"] or "default" in q}
    for question in survey["spec"]:
        assert question.get("question_description"), f"{playbook}: {question['variable']} says nothing to the operator"


@pytest.mark.parametrize("playbook", SHIPPED)
def test_every_survey_variable_is_read_by_the_playbook(playbook):
    files = closure(PLAYBOOKS / f"{playbook}.yml")
    text = "\n".join(files.values())
    for question in awx.load_survey(playbook)["spec"]:
        assert re.search(rf"\b{question['variable']}\b", text), (
            f"surveys/{playbook}.json asks for {question['variable']}, which {playbook}.yml (and what it runs) never reads")


def test_every_multiple_choice_has_a_source():
    asked = {(playbook, q["variable"]) for playbook in SHIPPED for q in awx.load_survey(playbook)["spec"] if q["type"] == "multiplechoice"}
    assert asked == set(CHOICE_SOURCES)


@pytest.mark.parametrize("key", sorted(CHOICE_SOURCES), ids=lambda k: f"{k[0]}-{k[1]}")
def test_choices_are_what_the_playbook_accepts(key):
    playbook, variable = key
    question = next(q for q in awx.load_survey(playbook)["spec"] if q["variable"] == variable)
    choices = list(question["choices"])
    text = "\n".join(closure(PLAYBOOKS / f"{playbook}.yml").values())
    source = CHOICE_SOURCES[key]
    if source[0] == "module":
        option = module_doc(source[1])["options"][source[2]]
        assert sorted(choices) == sorted(str(c) for c in option["choices"])
        assert re.search(rf"\b{source[2]}:\s*\"{{{{ {variable}\b", text), f"{variable} does not feed {source[1]}'s {source[2]}"
    elif source[0] == "role":
        option = role_option(source[1], source[2])
        assert sorted(choices) == sorted(option["choices"])
    elif source[0] == "checked":
        names = (variable,) + source[1:]
        checked: Set[str] = set()
        for name in names:
            for listed in re.findall(rf"that:.*\b{name}\b.*\bin \[([^\]]*)\]", text):
                checked |= {item.strip().strip("'\"") for item in listed.split(",")}
        assert checked, f"{playbook}.yml never checks {variable} against a list"
        assert sorted(choices) == sorted(checked)
        for alias in source[1:]:
            assert re.search(rf"\b{alias}:\s*\"{{{{ {variable}\b", text), f"{alias} is not set from {variable}"
    else:
        assert sorted(choices) == ["false", "true"], "a boolean question offers the strings true and false"
        uses = list(re.finditer(rf"\b{variable}\b(.{{0,40}})", text))
        assert uses
        for use in uses:
            after = use.group(1)
            through_bool = re.match(r"\s*(\|\s*default\([^)]*\)\s*)?\|\s*bool\b", after)
            as_option = re.match(r"\s*}}\"", after)  # the whole value of a boolean module or role option
            defined = re.match(r":", after) or re.match(r"=(true|false)\b", after)  # a definition, or prose of a message
            assert through_bool or as_option or defined, f"{variable}{after!r}: 'false' from a survey would be true here"
