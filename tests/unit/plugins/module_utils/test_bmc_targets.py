"""_bmc/targets.py: the one place where a task's BMCs (``bmc`` or a ``targets`` fleet) are validated."""

from __future__ import annotations

import socket

import pytest

from ansible_collections.ctys.pm.plugins.module_utils._bmc import info as bmc_info
from ansible_collections.ctys.pm.plugins.module_utils._bmc import power as bmc_power
from ansible_collections.ctys.pm.plugins.module_utils._bmc import targets
from ansible_collections.ctys.pm.plugins.module_utils._deadline import Deadline
from ansible_collections.ctys.pm.plugins.module_utils._errors import PmError, PmInputError
from ansible_collections.ctys.pm.plugins.module_utils._ipmi import power as ipmi_power
from ansible_collections.ctys.pm.plugins.module_utils._redfish.client import TlsContexts

BAD_FLEETS = [
    ({"targets": [{"bmc": "a"}, {"bmc": "a"}]}, "targets[1] repeats BMC a:623 (already a); list every BMC once"),
    ({"targets": [{"bmc": "a", "colour": 1}]}, "targets[0] has unknown key 'colour'"),
    ({"targets": [{"user": "u"}]}, "targets[0] has no bmc; set bmc to the BMC's host name or address"),
    ({"targets": ["a"]}, "targets[0] 'a' is not a dictionary"),
    ({"targets": [{"bmc": "a"}], "bmc": "b"}, "bmc and targets were both given"),
    ({}, "bmc is missing"),
    ({"targets": [{"bmc": "a", "state": "sideways"}]}, "targets[0].state 'sideways' is not valid"),
]


@pytest.mark.parametrize("params,message", BAD_FLEETS)
def test_pm_power_and_pm_ipmi_power_refuse_a_bad_fleet_in_the_same_words(params, message):
    with pytest.raises(PmInputError) as ipmi:
        ipmi_power.build_jobs(dict(params, protocol="ipmi"))
    with pytest.raises(PmInputError) as both:
        bmc_power.build_targets(dict(params, protocol="ipmi"))
    assert message in ipmi.value.msg
    # the same words; only the list of keys a target may have differs (pm_power adds the Redfish ones)
    assert ipmi.value.msg.split("; use ")[0] == both.value.msg.split("; use ")[0]


def test_a_target_inherits_the_task_options_but_not_its_name_or_bmc():
    entries = targets.fleet_entries(
        {"user": "admin", "password": "pw", "port": 6230, "name": "task", "targets": [{"host": "10.0.0.1"}, {"bmc": "10.0.0.2", "name": "b", "port": 1}]},
        bmc_power.FLEET_KEYS,
    )
    assert [(e.label, e.params["bmc"], e.params["port"], e.params["user"]) for e in entries] == [
        ("10.0.0.1", "10.0.0.1", 6230, "admin"),
        ("b", "10.0.0.2", 1, "admin"),
    ]
    assert "host" not in entries[0].params and entries[0].params.get("name") is None
    assert entries[1].option("port") == "targets[1].port" and entries[1].where == "targets[1]"


def test_single_form_names_options_plainly():
    (entry,) = targets.fleet_entries({"bmc": "x", "port": None}, bmc_power.FLEET_KEYS)
    assert (entry.index, entry.label, entry.option("port"), entry.where) == (None, "x", "port", "bmc")
    assert "port" not in entry.params


def test_endpoint_of_builds_the_connections_the_protocol_may_use():
    (entry,) = targets.fleet_entries({"bmc": "x", "password": "pw"}, bmc_power.FLEET_KEYS)
    auto = targets.endpoint_of(entry)
    assert (auto.asked, auto.protocol, auto.ipmi.port, auto.redfish.port) == ("auto", None, 623, 443)
    ipmi = targets.endpoint_of(entry, default_protocol="ipmi")
    assert (ipmi.protocol, ipmi.redfish, ipmi.address) == ("ipmi", None, "x:623")
    with pytest.raises(PmInputError, match="has no Redfish settings"):
        ipmi.redfish_target()


def test_protocol_and_port_errors_name_the_target_option():
    (entry,) = targets.fleet_entries({"targets": [{"bmc": "x", "protocol": "snmp"}]}, bmc_power.FLEET_KEYS)
    with pytest.raises(PmInputError, match=r"^targets\[0\]\.protocol 'snmp' is not valid; use one of ipmi, redfish, auto$"):
        targets.endpoint_of(entry)
    (entry,) = targets.fleet_entries({"bmc": "x", "port": 0, "protocol": "redfish"}, bmc_power.FLEET_KEYS)
    with pytest.raises(PmInputError, match=r"^port '0' is outside 1\.\.65535; use a port number such as 443$"):  # was silently 443
        targets.endpoint_of(entry)


def test_decide_settles_auto_on_ipmi_for_a_closed_port():
    with socket.socket() as probe_port:
        probe_port.bind(("127.0.0.1", 0))
        port = probe_port.getsockname()[1]  # closed again when the block ends: nothing listens there
    (entry,) = targets.fleet_entries({"bmc": "127.0.0.1", "port": port, "connect_timeout": 1}, bmc_power.FLEET_KEYS)
    endpoint = targets.endpoint_of(entry)
    targets.decide([endpoint], Deadline(5), TlsContexts())
    assert (endpoint.protocol, endpoint.error) == ("ipmi", None)


@pytest.mark.parametrize("backend", [ipmi_power.run, bmc_power.run, bmc_info.run])
def test_the_three_fleet_modules_refuse_a_bad_fail_on_in_the_same_words_before_any_network(backend):
    with pytest.raises(PmInputError) as raised:
        backend({"bmc": "127.0.0.1", "fail_on": "sometimes"})  # refused before the fleet is built
    assert raised.value.msg == "fail_on 'sometimes' is not valid; use any, all or never"


def fleet(failed: int, ok: int):
    return [{"name": f"bad{n}", "failed": True, "msg": f"reason {n}"} for n in range(failed)] + \
        [{"name": f"good{n}", "failed": False} for n in range(ok)]


@pytest.mark.parametrize("fail_on, failed, ok, fails", [
    ("any", 1, 2, True), ("any", 0, 3, False),
    ("all", 1, 2, False), ("all", 3, 0, True),
    ("never", 3, 0, False),
])
def test_fail_on_decides_when_a_fleet_task_fails(fail_on, failed, ok, fails):
    results = fleet(failed, ok)
    outcome = {"results": results, "changed": False}
    checked = targets.check_fail_on(fail_on)
    if not fails:
        assert targets.fleet_outcome(results, checked, outcome) is outcome
        return
    with pytest.raises(PmError) as raised:
        targets.fleet_outcome(results, checked, outcome)
    assert raised.value.msg.startswith(f"{failed} of {failed + ok} targets failed: bad0 (reason 0)")
    assert raised.value.result["results"] is results  # the per-target results still reach the user


def test_a_failed_fleet_names_five_targets_and_counts_the_rest():
    results = fleet(7, 1)
    with pytest.raises(PmError) as raised:
        targets.fleet_outcome(results, targets.check_fail_on(None), {"results": results})
    names = ", ".join(f"bad{n} (reason {n})" for n in range(5))
    assert raised.value.msg == f"7 of 8 targets failed: {names} and 2 more"


LOADED_STACKS = """
import json, socket, sys
from ansible_collections.ctys.pm.plugins.module_utils._bmc import info, power

backend, protocols = sys.argv[1], sys.argv[2].split(",")
closed = socket.socket()  # bound, never listening: connecting is refused at once
closed.bind(("127.0.0.1", 0))
port = closed.getsockname()[1]
fleet = [{"bmc": f"127.0.0.{index}", "port": port, "protocol": protocol, "name": protocol}
         for index, protocol in enumerate(protocols, 1)]  # nothing answers on the IPMI one's UDP port either
params = {"targets": fleet, "user": "u", "password": "p", "timeout": 5, "connect_timeout": 1, "fail_on": "never"}
result = power.run(dict(params, state="query")) if backend == "power" else info.run(params)
print(json.dumps({"failed": [r["protocol"] for r in result["results"] if r["failed"]],
                  "loaded": sorted(name.rsplit(".", 2)[-2] for name in sys.modules if name.endswith("." + backend) and "module_utils._" in name)}))
"""


@pytest.mark.parametrize("backend", ["power", "info"])
@pytest.mark.parametrize("protocols,loaded", [("redfish", ["_bmc", "_redfish"]), ("redfish,ipmi", ["_bmc", "_ipmi", "_redfish"])])
def test_a_redfish_only_task_does_not_load_the_ipmi_stack(backend, protocols, loaded):
    import json
    import os
    import subprocess
    import sys

    env = dict(os.environ, PYTHONPATH=os.pathsep.join(p for p in sys.path if p))
    done = subprocess.run([sys.executable, "-c", LOADED_STACKS, backend, protocols], capture_output=True, text=True, timeout=60, env=env,
                          check=False)
    assert done.returncode == 0, done.stderr
    outcome = json.loads(done.stdout.splitlines()[-1])
    assert outcome["failed"] == protocols.split(",")  # both ran, and met the closed port
    assert outcome["loaded"] == loaded
