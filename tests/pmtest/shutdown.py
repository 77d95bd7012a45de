"""Shared by the lab tests of the role pm_shutdown_stack and the maintenance playbooks."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from pmtest.ansible_run import REPO_ROOT, AnsibleResult, run_playbook


def stack_lab(tmp_path_factory: Any, name: str, guests: dict, redfish: bool = False) -> Any:
    """Three lab machines, on, with lab BMCs and the hypervisor spec ``guests``; a context manager (Lab.down() on leaving).

    ``redfish``: the BMCs have their Redfish face too, and the inventory says ``pm_bmc_protocol: redfish``.
    """
    from pmlab_lib.lab import Lab

    return Lab.up(machines=3, state="on", bmc="lab", boot_delay=0.3, shutdown_delay=0.2, lab_dir=tmp_path_factory.mktemp(name),
                  hypervisor=guests, redfish=redfish)


def run_role(lab: Any, host: str, tmp_path: Path, records: Path, check: bool = False, **variables: Any) -> AnsibleResult:
    """The role on one lab host, records under ``records``, from the lab's controller namespace."""
    play = tmp_path / "play.yml"
    play.write_text(f"- hosts: {host}\n  gather_facts: false\n  roles:\n    - ctys.pm.pm_shutdown_stack\n")
    extra = {"pm_shutdown_record_dir": str(records), "pm_shutdown_timeout": 30, "pm_shutdown_bmc_timeout": 15}
    extra.update(variables)
    return run_playbook(play, inventory=lab.inventory_path, extra_vars=extra, netns=lab.controller_netns, check=check, timeout=600)


def run_stack_playbook(lab: Any, name: str, records: Path, **variables: Any) -> AnsibleResult:
    """One of the collection's playbooks (shutdown.yml, maintenance_enter.yml, ...) against the lab."""
    extra = {"pm_shutdown_record_dir": str(records), "pm_shutdown_bmc_timeout": 15}
    extra.update(variables)
    return run_playbook(REPO_ROOT / "playbooks" / name, inventory=lab.inventory_path, netns=lab.controller_netns, extra_vars=extra,
                        timeout=600)
