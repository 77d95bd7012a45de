"""The two variants of the ``ctys.pm.fleet`` doc fragment say the same, but for POWER's per-target ``state``."""

from __future__ import annotations

import yaml

from ansible_collections.ctys.pm.plugins.doc_fragments.fleet import ModuleDocFragment
from ansible_collections.ctys.pm.plugins.module_utils._bmc.options import fleet_argument_spec, power_argument_spec
from ansible_collections.ctys.pm.plugins.module_utils._bmc.power_request import BOOT_DEVICES, BOOT_MODES, STATES


def test_power_is_the_fleet_fragment_plus_a_target_state():
    fleet = yaml.safe_load(ModuleDocFragment.DOCUMENTATION)["options"]
    power = yaml.safe_load(ModuleDocFragment.POWER)["options"]
    state = power["targets"]["suboptions"].pop("state")
    assert power == fleet
    assert state["choices"] == list(STATES)


def test_the_fragments_document_exactly_the_argument_spec():
    fleet = yaml.safe_load(ModuleDocFragment.DOCUMENTATION)["options"]
    power = yaml.safe_load(ModuleDocFragment.POWER)["options"]
    assert sorted(fleet["targets"]["suboptions"]) == sorted(fleet_argument_spec()["targets"]["options"])
    spec = power_argument_spec(STATES, BOOT_DEVICES, BOOT_MODES)
    assert sorted(power["targets"]["suboptions"]) == sorted(spec["targets"]["options"])
