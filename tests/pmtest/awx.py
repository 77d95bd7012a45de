"""What AWX does with ``extensions/awx/`` before ansible-runner starts a job, re-done for the tests.

* ``CredentialType.inject_credential``: the injectors are Jinja2 templates rendered in an immutable
  sandbox over the credential's inputs; ``env`` goes into the job's environment, ``extra_vars`` into a
  YAML file under ``env/`` (string values tagged ``!unsafe``) passed as ``-e @FILE``.
* Surveys: the checks of AWX's survey spec view (``_validate_spec_data``) and of a launch
  (``_survey_element_validation``), and the defaults AWX fills in (``_update_unified_job_kwargs``).
* The private data dir a job runs in: ``project/``, ``inventory/hosts`` (an executable script that
  prints the inventory's JSON, as AWX writes it), ``env/extravars``, ``env/envvars``, ``env/settings``,
  ``env/cmdline``.

Only what the shipped material uses is re-done; a check here that AWX does not make would hide a
real incompatibility, so each one names the AWX behaviour it stands for.
"""

from __future__ import annotations

import json
import os
import shutil
import stat
import tempfile
from pathlib import Path
from typing import Any, Dict, List, Mapping, Optional, Tuple

import yaml
from jinja2 import StrictUndefined, meta
from jinja2.sandbox import ImmutableSandboxedEnvironment

REPO_ROOT = Path(__file__).resolve().parents[2]
AWX_DIR = REPO_ROOT / "extensions" / "awx"
CREDENTIAL_TYPE = AWX_DIR / "credential_type.yml"
SURVEYS = AWX_DIR / "surveys"

# awx/main/models/mixins.py: SURVEY_TYPE_MAPPING
SURVEY_TYPES: Dict[str, Tuple[type, ...]] = {
    "text": (str,), "textarea": (str,), "password": (str,), "multiplechoice": (str,), "multiselect": (str,),
    "integer": (int,), "float": (float, int),
}
# awx/main/fields.py: CredentialTypeInputField (field types) and CredentialTypeInjectorField (injector kinds)
INPUT_TYPES = ("string", "boolean")
INJECTOR_KINDS = ("file", "env", "extra_vars")


class Unsafe(str):
    """A string AWX writes as ``!unsafe`` (awx.main.utils.safe_yaml), so Ansible never templates it."""


class _Dumper(yaml.SafeDumper):
    pass


_Dumper.add_representer(Unsafe, lambda dumper, value: dumper.represent_scalar("!unsafe", str(value), style="'"))


def safe_dump(data: Mapping[str, Any]) -> str:
    """YAML with every string value tagged ``!unsafe``, as AWX's ``safe_dump`` writes extra vars it did not author."""

    def mark(value: Any) -> Any:
        if isinstance(value, str):
            return Unsafe(value)
        if isinstance(value, dict):
            return {key: mark(item) for key, item in value.items()}
        if isinstance(value, list):
            return [mark(item) for item in value]
        return value

    return yaml.dump(mark(dict(data)), Dumper=_Dumper, default_flow_style=False)


# ----- credential type ------------------------------------------------------------------------------
def load_credential_type(path: Path = CREDENTIAL_TYPE) -> Dict[str, Any]:
    return yaml.safe_load(path.read_text(encoding="utf-8"))


def credential_type_errors(ctype: Mapping[str, Any]) -> List[str]:
    """The checks AWX makes when a custom credential type is created (fields.py), plus: every injector names only fields."""
    errors: List[str] = []
    if ctype.get("kind") not in ("cloud", "net"):
        errors.append(f"kind {ctype.get('kind')!r}: custom credential types are cloud or net")
    fields = ctype.get("inputs", {}).get("fields", [])
    ids = [field.get("id") for field in fields]
    if len(set(ids)) != len(ids):
        errors.append(f"duplicate field ids {ids}")
    for field in fields:
        if not field.get("id") or not field.get("label"):
            errors.append(f"field {field} needs id and label")
        if field.get("type", "string") not in INPUT_TYPES:
            errors.append(f"field {field.get('id')}: type {field.get('type')!r} is not one of {INPUT_TYPES}")
        if "secret" in field and not isinstance(field["secret"], bool):
            errors.append(f"field {field.get('id')}: secret must be a boolean")
    for name in ctype.get("inputs", {}).get("required", []):
        if name not in ids:
            errors.append(f"required names {name!r}, which is not a field")
    injectors = ctype.get("injectors", {})
    for kind in injectors:
        if kind not in INJECTOR_KINDS:
            errors.append(f"injector kind {kind!r} is not one of {INJECTOR_KINDS}")
    env = ImmutableSandboxedEnvironment()
    for kind, templates in injectors.items():
        for key, template in _leaves(templates):
            if kind == "env" and (key.startswith("ANSIBLE_") or key in ("JOB_ID", "INVENTORY_ID", "PROJECT_REVISION")):
                errors.append(f"env {key}: AWX refuses it in a credential")
            for name in meta.find_undeclared_variables(env.parse(template)):
                if name not in ids and name != "tower":
                    errors.append(f"injector {kind}.{key} uses {name!r}, which is not a field (AWX would render it empty)")
    return errors


def _leaves(node: Any, prefix: str = "") -> List[Tuple[str, str]]:
    if isinstance(node, dict):
        found: List[Tuple[str, str]] = []
        for key, value in node.items():
            found += _leaves(value, f"{prefix}.{key}" if prefix else str(key))
        return found
    if isinstance(node, list):
        return [leaf for index, item in enumerate(node) for leaf in _leaves(item, f"{prefix}[{index}]")]
    return [(prefix, str(node))]


def inject_credential(ctype: Mapping[str, Any], inputs: Mapping[str, Any], private_data_dir: Path) -> Tuple[Dict[str, str], List[str]]:
    """Render the injectors as ``CredentialType.inject_credential`` does: (environment, ansible-playbook arguments).

    StrictUndefined where AWX renders a missing input as '': a credential type that names a field the
    credential does not have breaks the test instead of injecting an empty password.
    """
    env = ImmutableSandboxedEnvironment(undefined=StrictUndefined)
    namespace = {key: value for key, value in inputs.items() if value not in (None, "")}
    injectors = ctype.get("injectors", {})
    if injectors.get("file"):
        raise NotImplementedError("file injectors are not re-done here; the shipped type has none")
    job_env = {key: env.from_string(template).render(**namespace) for key, template in injectors.get("env", {}).items()}
    args: List[str] = []

    def build(node: Any) -> Any:
        if isinstance(node, dict):
            return {build(key): build(value) for key, value in node.items()}
        if isinstance(node, list):
            return [build(item) for item in node]
        return env.from_string(str(node)).render(**namespace)

    extra_vars = build(injectors.get("extra_vars", {}))
    if extra_vars:
        handle, path = tempfile.mkstemp(dir=private_data_dir / "env")
        with os.fdopen(handle, "w", encoding="utf-8") as out:
            out.write(safe_dump(extra_vars))
        os.chmod(path, stat.S_IRUSR)
        args += ["-e", f"@{path}"]
    return job_env, args


# ----- surveys --------------------------------------------------------------------------------------
def load_survey(playbook: str) -> Dict[str, Any]:
    return json.loads((SURVEYS / f"{playbook}.json").read_text(encoding="utf-8"))


def survey_spec_errors(survey: Mapping[str, Any]) -> List[str]:
    """The checks of AWX's survey_spec endpoint (JobTemplateSurveySpec._validate_spec_data)."""
    errors: List[str] = []
    for key in ("name", "description"):
        if not isinstance(survey.get(key), str):
            errors.append(f"'{key}' missing from survey spec")
    spec = survey.get("spec")
    if not isinstance(spec, list) or not spec:
        return errors + ["'spec' must be a non-empty list of questions"]
    seen = set()
    for index, item in enumerate(spec):
        if not isinstance(item, dict):
            errors.append(f"question {index} is not an object")
            continue
        for key in ("type", "question_name", "variable", "required"):
            if key not in item:
                errors.append(f"'{key}' missing from survey question {index}")
        variable = item.get("variable")
        if variable in seen:
            errors.append(f"'variable' '{variable}' duplicated in survey question {index}")
        seen.add(variable)
        qtype = item.get("type")
        if qtype not in SURVEY_TYPES:
            errors.append(f"'{qtype}' in survey question {index} is not an allowed type")
            continue
        if "default" in item and item["default"] != "" and (
            not isinstance(item["default"], SURVEY_TYPES[qtype]) or isinstance(item["default"], bool)
        ):
            errors.append(f"default {item['default']!r} in survey question {index} is not a {qtype}")
        for key in ("min", "max"):
            if key in item and item[key] is not None and not isinstance(item[key], int):
                errors.append(f"the {key} limit in survey question {index} is not an integer")
        if qtype in ("multiplechoice", "multiselect"):
            choices = _choices(item)
            if not choices:
                errors.append(f"survey question {index} of type {qtype} must specify choices")
            if "default" in item:
                defaults = item["default"].splitlines() if isinstance(item["default"], str) else list(item["default"])
                if qtype == "multiplechoice" and len(defaults) > 1:
                    errors.append(f"survey question {index}: multiple choice can only have one default")
                if any(value not in choices for value in defaults):
                    errors.append(f"survey question {index}: default {item['default']!r} is not one of the choices")
    return errors


def _choices(item: Mapping[str, Any]) -> List[str]:
    choices = item.get("choices") or []
    return [c for c in choices.splitlines() if c.strip()] if isinstance(choices, str) else list(choices)


def answer_errors(item: Mapping[str, Any], answers: Mapping[str, Any]) -> List[str]:
    """AWX's check of one question's answer at launch (SurveyJobTemplateMixin._survey_element_validation)."""
    variable = item["variable"]
    if variable not in answers:
        return [f"'{variable}' value missing"] if item["required"] else []
    value = answers[variable]
    qtype = item["type"]
    if qtype in ("text", "textarea", "password"):
        if not isinstance(value, str):
            return [f"'{variable}' value {value!r} is not a string"]
        if item.get("min") not in ("", None) and len(value) < int(item["min"]):
            return [f"'{variable}' value {value!r} is shorter than {item['min']}"]
        if item.get("max") not in ("", None) and len(value) > int(item["max"]):
            return [f"'{variable}' value {value!r} is longer than {item['max']}"]
    elif qtype == "integer":
        if isinstance(value, bool) or not isinstance(value, int):  # AWX: True is not an integer answer
            return [f"'{variable}' value {value!r} is not an integer"]
        if item.get("min") not in ("", None) and value < int(item["min"]):
            return [f"'{variable}' value {value} is below {item['min']}"]
        if item.get("max") not in ("", None) and value > int(item["max"]):
            return [f"'{variable}' value {value} is above {item['max']}"]
    elif qtype == "multiplechoice" and value not in _choices(item):
        return [f"'{variable}' value {value!r} is not one of {_choices(item)}"]
    return []


def survey_answers(survey: Mapping[str, Any], given: Mapping[str, Any]) -> Dict[str, Any]:
    """The extra vars of a launch: the answers given, the defaults for the rest (as AWX fills them in), all checked."""
    answers = dict(given)
    for item in survey["spec"]:
        if item["variable"] not in answers and item.get("default") is not None and not answer_errors(item, {item["variable"]: item["default"]}):
            answers[item["variable"]] = item["default"]
    unknown = sorted(set(given) - {item["variable"] for item in survey["spec"]})
    errors = [f"'{name}' is not a question of the survey" for name in unknown]
    for item in survey["spec"]:
        errors += answer_errors(item, answers)
    if errors:
        raise ValueError("; ".join(errors))
    return answers


def inventory_script(path: Path, inventory: Mapping[str, Any]) -> Path:
    """An inventory as AWX hands it to a job (BaseTask.build_inventory): a script that prints its JSON."""
    path.write_text("#! /usr/bin/env python3\n# -*- coding: utf-8 -*-\nprint(%r)\n" % json.dumps(inventory), encoding="utf-8")
    os.chmod(path, stat.S_IRUSR | stat.S_IXUSR | stat.S_IWUSR)
    return path


# ----- the private data dir -------------------------------------------------------------------------
def private_data_dir(
    root: Path,
    *,
    inventory: Mapping[str, Any],
    extra_vars: Mapping[str, Any],
    envvars: Mapping[str, str],
    settings: Optional[Mapping[str, Any]] = None,
    project_files: Tuple[str, ...] = ("playbooks",),
) -> Path:
    """Lay out ROOT as AWX's BaseTask.run does before it hands the job to ansible-runner.

    ``inventory`` is the ``ansible-inventory --list`` JSON of a synced inventory (AWX's get_script_data).
    """
    for sub in ("project", "inventory", "env", "artifacts"):
        (root / sub).mkdir(parents=True, exist_ok=True)
    os.chmod(root / "env", stat.S_IRWXU)
    for name in project_files:  # the project's checkout (AWX copies the project revision into project/)
        source = REPO_ROOT / name
        shutil.copytree(source, root / "project" / name) if source.is_dir() else shutil.copy2(source, root / "project" / name)
    inventory_script(root / "inventory" / "hosts", inventory)
    (root / "env" / "extravars").write_text(safe_dump(extra_vars), encoding="utf-8")  # _write_extra_vars_file
    (root / "env" / "envvars").write_text(json.dumps(dict(envvars)), encoding="utf-8")
    (root / "env" / "settings").write_text(json.dumps(dict(settings or {"job_timeout": 600, "suppress_ansible_output": False})),
                                           encoding="utf-8")
    return root
