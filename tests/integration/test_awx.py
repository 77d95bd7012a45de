"""playbooks/power.yml run as an AWX job runs it, against the lab.

AWX hands a job to ansible-runner: a private data dir with ``project/`` (the project's checkout),
``inventory/hosts`` (a script printing the synced inventory), ``env/extravars`` (the survey's
answers), ``env/envvars``, ``env/settings`` and the credentials injected as their type says
(``tests/pmtest/awx.py`` re-does that from ``extensions/awx/credential_type.yml``). The inventory
given here carries no BMC account, so the machine's BMC is reached with the credential's account
or not at all:

* without the credential the job fails and the machine stays off;
* with it, the machine is on: its own power state and ipmitool say so;
* the password is nowhere in what the runner leaves behind (artifacts: job events, stdout, command)
  nor in its output.

The env route of the issue (no pm_bmc_user/pm_bmc_password anywhere, IPMI_USER/IPMI_PASSWORD in
the controller's environment) runs the same playbook with ansible-playbook.
"""

from __future__ import annotations

import json
import os
import shlex
import subprocess
from pathlib import Path
from typing import Any, Dict, List, Optional

import pytest

from pmtest import awx
from pmtest.ansible_run import COLLECTIONS, REPO_ROOT, VENV_BIN, ansible_env, run_playbook, without_unsafe_markers

pytestmark = [pytest.mark.lab, pytest.mark.skipif(os.geteuid() != 0, reason="the lab's namespaces need root")]

# ansible-runner from .venv; the ansible-playbook it starts is the first on PATH: VENV_BIN (PMTEST_VENV's under make compat)
RUNNER = REPO_ROOT / ".venv" / "bin" / "ansible-runner"
BMC_ACCOUNT = ("pm_bmc_user", "pm_bmc_password")


@pytest.fixture(scope="module")
def lab(tmp_path_factory):
    from pmlab_lib.lab import Lab

    with Lab.up(machines=2, state="off", bmc="lab", boot_delay=0.2, shutdown_delay=0.2, lab_dir=tmp_path_factory.mktemp("awx")) as lab:
        yield lab  # Lab.down() on leaving, also when a test failed


def synced_inventory(lab) -> Dict[str, Any]:
    """The lab's inventory as an AWX inventory sync stores it (ansible-inventory --list), with no BMC account."""
    proc = subprocess.run([str(VENV_BIN / "ansible-inventory"), "-i", str(lab.inventory_path), "--list"], env=ansible_env(),
                          capture_output=True, text=True, check=True, timeout=120)
    data = without_unsafe_markers(json.loads(proc.stdout))
    for hostvars in data["_meta"]["hostvars"].values():
        for name in BMC_ACCOUNT:
            hostvars.pop(name, None)
    return data


def runner_env() -> Dict[str, str]:
    """The runner's own environment: no Ansible settings, no IPMI_* of the test process."""
    env = {key: value for key, value in os.environ.items() if not key.startswith(("ANSIBLE_", "IPMI_", "PMTEST_"))}
    env["PATH"] = f"{VENV_BIN}:{env.get('PATH', '/usr/bin:/bin')}"
    return env


def run_job(lab, root: Path, answers: Dict[str, Any], credential: Optional[Dict[str, str]]) -> Dict[str, Any]:
    """Lay out ROOT as AWX does and run ``ansible-runner run`` in the lab's controller namespace."""
    survey = awx.load_survey("power")
    extra_vars = awx.survey_answers(survey, answers)
    # what AWX puts in every job's environment that matters here; the collection stands where an execution
    # environment has it installed
    envvars = {"JOB_ID": "1", "ANSIBLE_COLLECTIONS_PATH": str(COLLECTIONS), "ANSIBLE_RETRY_FILES_ENABLED": "False",
               "PYTHONDONTWRITEBYTECODE": "1"}
    awx.private_data_dir(root, inventory=synced_inventory(lab), extra_vars=extra_vars, envvars=envvars,
                         settings={"job_timeout": 600, "suppress_ansible_output": False})
    args: List[str] = []
    if credential is not None:
        injected_env, args = awx.inject_credential(awx.load_credential_type(), credential, root)
        if injected_env:
            envvars.update(injected_env)
            (root / "env" / "envvars").write_text(json.dumps(envvars), encoding="utf-8")
    if args:
        (root / "env" / "cmdline").write_text(shlex.join(args), encoding="utf-8")
    argv = ["ip", "netns", "exec", lab.controller_netns] if lab.controller_netns else []
    argv += [str(RUNNER), "run", str(root), "-p", "playbooks/power.yml", "--ident", "1"]
    proc = subprocess.run(argv, env=runner_env(), capture_output=True, text=True, timeout=900, stdin=subprocess.DEVNULL, check=False)
    artifacts = root / "artifacts" / "1"
    event_files = sorted((artifacts / "job_events").glob("*.json"), key=lambda p: int(p.name.split("-", 1)[0]))
    events = [json.loads(path.read_text(encoding="utf-8")) for path in event_files]
    status = (artifacts / "status").read_text(encoding="utf-8").strip() if (artifacts / "status").exists() else None
    return {"proc": proc, "events": events, "status": status, "artifacts": artifacts}


def power_task_result(job: Dict[str, Any]) -> Dict[str, Any]:
    found = [e for e in job["events"] if e.get("event") in ("runner_on_ok", "runner_on_failed")
             and str(e["event_data"].get("resolved_action") or e["event_data"].get("task_action", "")).endswith(".pm_power")]
    assert len(found) == 1, f"status {job['status']}\n{job['proc'].stdout[-4000:]}\n{job['proc'].stderr[-2000:]}"
    return found[0]["event_data"]["res"]


def ipmitool_power(lab, machine) -> str:
    return lab.ipmitool(machine, "chassis", "power", "status").stdout.strip().rsplit(" ", 1)[-1]


@pytest.mark.compat
def test_power_job_with_the_credential_type_through_ansible_runner(lab, tmp_path):
    m, other = lab.machines
    assert m.power_state() == "off" and other.power_state() == "off"
    answers = {"pm_power_hosts": m.name, "pm_power_state": "on", "pm_power_timeout": 60}

    # the inventory alone cannot reach the BMC: the job fails, nothing changes
    bare = run_job(lab, tmp_path / "without", answers, credential=None)
    assert bare["status"] == "failed", bare["proc"].stdout[-3000:]
    assert m.power_state() == "off"

    credential = {"username": m.bmc_user, "password": m.bmc_password}
    job = run_job(lab, tmp_path / "with", answers, credential=credential)
    assert job["status"] == "successful" and job["proc"].returncode == 0, job["proc"].stdout[-4000:] + job["proc"].stderr[-2000:]
    inventory_script = (tmp_path / "with" / "inventory" / "hosts").read_text(encoding="utf-8")
    assert m.bmc_password not in inventory_script and "pm_bmc_user" not in inventory_script

    # the machine itself and an independent client: on; the machine not named stays off
    assert m.power_state() == "on"
    assert ipmitool_power(lab, m) == "on"
    assert other.power_state() == "off"
    fleet = power_task_result(job)
    assert [(r["name"], r["power_state"], r["changed"]) for r in fleet["results"]] == [(m.name, "on", True)]

    # the secret stays out of everything the runner leaves behind and prints
    leaked = [str(path.relative_to(job["artifacts"])) for path in job["artifacts"].rglob("*")
              if path.is_file() and m.bmc_password.encode() in path.read_bytes()]
    assert leaked == [], f"the BMC password is in the runner's artifacts: {leaked}"
    assert m.bmc_password not in job["proc"].stdout + job["proc"].stderr
    assert any(e.get("event") == "runner_on_ok" for e in job["events"]) and (job["artifacts"] / "stdout").is_file()


def test_power_playbook_falls_back_to_ipmi_env(lab, tmp_path):
    """No pm_bmc_user/pm_bmc_password anywhere: the modules read IPMI_USER/IPMI_PASSWORD (the issue's 'HostVarsVars' error)."""
    m = lab.machines[1]
    inventory = awx.inventory_script(tmp_path / "hosts", synced_inventory(lab))
    start = m.power_state()
    target = "off" if start == "on" else "on"
    extra = {"pm_power_state": target, "pm_power_hosts": m.name, "pm_power_timeout": 60}
    run = run_playbook(REPO_ROOT / "playbooks" / "power.yml", inventory=inventory, extra_vars=extra, netns=lab.controller_netns,
                       env={"IPMI_USER": m.bmc_user, "IPMI_PASSWORD": m.bmc_password}, timeout=300)
    assert run.rc == 0, run.stdout[-3000:] + run.stderr[-2000:]
    fleet = next(t for t in run.tasks if t["action"].endswith(".pm_power"))["result"]
    assert [(r["name"], r["power_state"]) for r in fleet["results"]] == [(m.name, target)]
    assert m.power_state() == target and ipmitool_power(lab, m) == target
    assert m.bmc_password not in run.stdout + run.stderr

    wrong = run_playbook(REPO_ROOT / "playbooks" / "power.yml", inventory=inventory, extra_vars=dict(extra, pm_power_state=start),
                         netns=lab.controller_netns, env={"IPMI_USER": m.bmc_user, "IPMI_PASSWORD": "not-" + m.bmc_password},
                         timeout=300)
    assert wrong.rc != 0 and m.power_state() == target  # the environment's password is really the one used
