"""Fixtures shared by the lab tests of pm_stack, the role pm_shutdown_stack and the maintenance playbooks."""

from __future__ import annotations

import pytest

from pmlab_lib.pytest_plugin import lab_factory  # noqa: F401  pylint: disable=unused-import


@pytest.fixture
def hv():
    """pmlab_lib.hypervisor: virsh from outside the machines, guest readiness, guests lost with their host."""
    from pmlab_lib import hypervisor

    return hypervisor


@pytest.fixture
def records(tmp_path):
    """The folder the role writes its records of guests that ran to (pm_shutdown_record_dir)."""
    return tmp_path / "records"
