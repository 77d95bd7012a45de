"""pm_wake's backend end to end on loopback: packets to a real UDP receiver, machines that "boot" by
opening a TCP port on their own 127.0.0.x address when their magic packet arrives."""

from __future__ import annotations

import json
import socket
import threading
import time
from typing import Dict, List

import pytest
import yaml
from ansible.module_utils.testing import patch_module_args

from ansible_collections.ctys.pm.plugins.module_utils import _wake
from ansible_collections.ctys.pm.plugins.module_utils._errors import PmInputError, PmStateError, PmTimeoutError
from ansible_collections.ctys.pm.plugins.modules import pm_wake

# the module's documented defaults: what AnsibleModule hands the backend for options left out
DEFAULTS = {name: spec.get("default") for name, spec in yaml.safe_load(pm_wake.DOCUMENTATION)["options"].items()}
FIXTURE_MACS = ["02:c7:5e:00:00:01", "02:c7:5e:00:00:02", "02:c7:5e:00:00:03"]


def free_port(address: str) -> int:
    with socket.socket() as probe:
        probe.bind((address, 0))
        return probe.getsockname()[1]


class LoopbackSegment:
    """A UDP receiver on 127.0.0.1 standing in for the segment; machines at 127.0.0.2.. boot on their packet."""

    def __init__(self, macs: List[str], boots: bool = True) -> None:
        self.udp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.udp.bind(("127.0.0.1", 0))
        self.udp.settimeout(0.1)
        self.port = self.udp.getsockname()[1]
        self.macs = macs
        self.hosts = [f"127.0.0.{i + 2}" for i in range(len(macs))]
        self.poll_port = free_port(self.hosts[0])
        self.received: List[bytes] = []
        self.listeners: Dict[str, socket.socket] = {}
        self.boots = boots
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def boot(self, index: int) -> None:
        host = self.hosts[index]
        if host in self.listeners:
            return
        listener = socket.socket()
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind((host, self.poll_port))
        listener.listen(16)
        self.listeners[host] = listener

    def _serve(self) -> None:
        deadline = time.monotonic() + 60  # bounded, whatever happens
        while not self.stop.is_set() and time.monotonic() < deadline:
            try:
                data, _source = self.udp.recvfrom(2048)
            except socket.timeout:
                continue
            except OSError:
                return
            self.received.append(data)
            mac = data[6:12].hex(":")
            if self.boots and mac in self.macs and data[:6] == b"\xff" * 6:
                self.boot(self.macs.index(mac))

    def settle(self) -> List[bytes]:
        time.sleep(0.3)  # let late datagrams arrive before counting what was (not) sent
        return list(self.received)

    def close(self) -> None:
        self.stop.set()
        self.thread.join(2)
        self.udp.close()
        for listener in self.listeners.values():
            listener.close()


@pytest.fixture
def segment():
    made: List[LoopbackSegment] = []

    def make(count: int = 1, boots: bool = True) -> LoopbackSegment:
        made.append(LoopbackSegment(FIXTURE_MACS[:count], boots))
        return made[-1]

    yield make
    for seg in made:
        seg.close()


def defaults(**extra) -> Dict[str, object]:
    values = dict(DEFAULTS, broadcast_given=extra.get("broadcast") is not None)
    values.update(extra)
    return values


def params(seg: LoopbackSegment, **extra) -> Dict[str, object]:
    base: Dict[str, object] = {
        "broadcast": "127.0.0.1",
        "broadcast_given": True,
        "port": seg.port,
        "repeat": 2,
        "repeat_interval": 0.05,
        "poll": "tcp",
        "poll_port": seg.poll_port,
        "poll_interval": 0.2,
        "wait_timeout": 10,
    }
    base.update(extra)
    return defaults(**base)


def test_wakes_a_machine_and_waits_until_its_port_answers(segment):
    seg = segment(1)
    result = _wake.run(params(seg, mac=["02-C7-5E-00-00-01"], host=seg.hosts[0]))
    got = seg.settle()
    assert len(got) == 2 and all(p == b"\xff" * 6 + bytes.fromhex("02c75e000001") * 16 for p in got)
    assert result["changed"] is True and result["already_running"] is False and result["reachable"] is True
    assert result["macs"] == ["02:c7:5e:00:00:01"]
    assert result["packets"] == [{"mac": "02:c7:5e:00:00:01", "destination": f"127.0.0.1:{seg.port}/udp", "bytes": 102, "count": 2}]
    assert result["boot_seconds"] is not None and result["boot_seconds"] >= 0


def test_secureon_password_travels_after_the_102_bytes(segment):
    seg = segment(1)
    _wake.run(params(seg, mac=["001a.2b3c.4d5e"], secureon_password="192.0.2.1", wait=False, repeat=1))
    got = seg.settle()
    assert [len(p) for p in got] == [106] and got[0][102:] == bytes([192, 0, 2, 1])
    assert got[0][6:12] == bytes.fromhex("001a2b3c4d5e")


def run_main(args, capsys):
    """pm_wake.main() through a real AnsibleModule; returns the module's JSON result."""
    with patch_module_args(dict(args)), pytest.raises(SystemExit):
        pm_wake.main()
    return json.loads(capsys.readouterr().out)


def test_module_option_secureon_password_reaches_the_wire(segment, capsys):
    seg = segment(1)
    result = run_main({"mac": [FIXTURE_MACS[0]], "broadcast": "127.0.0.1", "port": seg.port, "repeat": 1,
                       "secureon_password": "01:02:03:04:05:06"}, capsys)
    got = seg.settle()
    assert result.get("failed") is not True, result
    assert [len(p) for p in got] == [108] and got[0][102:] == bytes.fromhex("010203040506")
    assert result["packets"][0]["bytes"] == 108 and "01:02:03:04:05:06" not in json.dumps(result)


def test_module_refuses_password_so_a_bmc_password_never_becomes_secureon(segment, capsys):
    """pm_wake has no option (and no alias) password: a BMC password set for a play cannot travel as SecureOn."""
    seg = segment(1)
    result = run_main({"mac": [FIXTURE_MACS[0]], "broadcast": "127.0.0.1", "port": seg.port, "repeat": 1,
                       "password": "010203040506"}, capsys)
    assert result["failed"] is True and "Unsupported parameters" in result["msg"] and "password" in result["msg"]
    assert "010203040506" not in result["msg"]
    assert seg.settle() == []


def test_module_names_secureon_password_in_its_error(segment, capsys):
    seg = segment(1)
    result = run_main({"mac": [FIXTURE_MACS[0]], "broadcast": "127.0.0.1", "port": seg.port, "secureon_password": "hunter2"}, capsys)
    assert result["failed"] is True
    assert result["msg"].startswith("secureon_password is not a SecureOn password; use 4 bytes") and "hunter2" not in json.dumps(result)
    assert seg.settle() == []


def test_running_machine_gets_no_packet_and_no_change(segment):
    seg = segment(1)
    seg.boot(0)
    result = _wake.run(params(seg, mac=[FIXTURE_MACS[0]], host=seg.hosts[0]))
    assert seg.settle() == []
    assert result["changed"] is False and result["already_running"] is True and result["packets"] == []
    assert result["reachable"] is True and result["boot_seconds"] is None


def test_running_machine_with_already_running_fail_is_an_error(segment):
    seg = segment(1)
    seg.boot(0)
    with pytest.raises(PmStateError) as raised:
        _wake.run(params(seg, mac=[FIXTURE_MACS[0]], host=seg.hosts[0], already_running="fail"))
    assert raised.value.msg == f"{seg.hosts[0]} already running (ctys: try REUSE); set already_running: reuse to accept running machines"
    assert seg.settle() == []


def test_check_mode_sends_nothing_but_says_what_it_would_send(segment):
    seg = segment(1)
    result = _wake.run(params(seg, mac=[FIXTURE_MACS[0]], host=seg.hosts[0]), check_mode=True)
    assert seg.settle() == [] and seg.listeners == {}
    assert result["changed"] is True and result["packets"] == []
    assert result["would_send"] == [{"mac": FIXTURE_MACS[0], "destination": f"127.0.0.1:{seg.port}/udp", "bytes": 102}]


def test_default_broadcast_is_the_limited_broadcast_on_port_9_in_check_mode():
    result = _wake.run(defaults(mac=[FIXTURE_MACS[0]]), check_mode=True)
    assert result["would_send"][0]["destination"] == "255.255.255.255:9/udp"


def test_fleet_woken_concurrently_in_staggered_groups(segment):
    seg = segment(3)
    result = _wake.run(params(seg, mac=seg.macs, hosts=seg.hosts, repeat=1, stagger=2, stagger_interval=0.3))
    got = seg.settle()
    assert [p[6:12].hex(":") for p in got] == seg.macs  # group of two, then the third
    assert [r["reachable"] for r in result["results"]] == [True, True, True]
    assert result["already_running"] == [] and result["changed"] is True
    assert sorted(seg.listeners) == seg.hosts


def test_fleet_with_one_running_machine_wakes_only_the_others(segment):
    seg = segment(3)
    seg.boot(1)
    result = _wake.run(params(seg, mac=seg.macs, hosts=seg.hosts, repeat=1))
    got = seg.settle()
    assert sorted(p[6:12].hex(":") for p in got) == [seg.macs[0], seg.macs[2]]
    assert result["already_running"] == [seg.hosts[1]]
    assert [r["already_running"] for r in result["results"]] == [False, True, False]


def test_machine_that_never_boots_fails_at_wait_timeout_with_the_last_poll_error(segment):
    seg = segment(1, boots=False)
    with pytest.raises(PmTimeoutError) as raised:
        _wake.run(params(seg, mac=[FIXTURE_MACS[0]], host=seg.hosts[0], wait_timeout=0.8))
    error = raised.value
    assert error.msg.startswith(f"1 of 1 machines did not answer within wait_timeout 0.8 s: {seg.hosts[0]} (tcp {seg.hosts[0]}:{seg.poll_port}:")
    assert error.result["changed"] is True and error.result["packets"][0]["count"] == 2
    assert len(seg.settle()) == 2


def test_name_looked_up_in_an_ethers_file(segment, tmp_path):
    seg = segment(1)
    ethers = tmp_path / "ethers"
    ethers.write_text("# lab\n02:C7:5E:00:00:01  lab01\n")
    result = _wake.run(params(seg, name="lab01", ethers=str(ethers), wait=False, repeat=1))
    assert result["macs"] == [FIXTURE_MACS[0]] and len(seg.settle()) == 1


def test_name_from_macmap_watches_its_ip(tmp_path):
    macmap = tmp_path / "macmap.fdb"
    macmap.write_text("lab01.lab.;02:c7:5e:00:00:01;127.0.0.2;\n")
    params = defaults(name="lab01", ethers=str(tmp_path / "no-ethers"), macmap=str(macmap), wait=True,
                      poll="tcp", poll_port=free_port("127.0.0.2"))
    result = _wake.run(params, check_mode=True)
    assert result["results"][0]["host"] == "127.0.0.2" and result["macs"] == [FIXTURE_MACS[0]]


@pytest.mark.parametrize(
    "extra,message",
    [
        ({"mac": ["zz:11"]}, "mac 'zz:11' is not a MAC address; use six hex octets such as 00:1a:2b:3c:4d:5e"),
        ({"mac": [FIXTURE_MACS[0]], "port": 0}, "port '0' is outside 1..65535; use a port number such as 9"),
        ({"mac": [FIXTURE_MACS[0]], "port": 65536}, "port '65536' is outside 1..65535"),
        ({"mac": [FIXTURE_MACS[0]], "host": "127.0.0.2", "poll_port": 0}, "poll_port '0' is outside 1..65535"),
        ({"mac": [FIXTURE_MACS[0]], "interface": "lo"}, "broadcast and interface cannot be combined"),
        ({"mac": [FIXTURE_MACS[0]], "wait": True}, "wait is true but no host to watch was given; set host (or hosts), or wait: false"),
        ({"mac": FIXTURE_MACS[:2], "hosts": ["127.0.0.2"]}, "hosts has 1 entries but mac has 2; give one host per MAC, in the same order"),
        ({"mac": [FIXTURE_MACS[0]], "host": "127.0.0.2", "hosts": ["127.0.0.2"]}, "host and hosts were both given"),
        ({}, "mac and name are both missing; give mac, or name to look up in ethers or macmap"),
        ({"mac": [FIXTURE_MACS[0]], "stagger": -1}, "stagger '-1' is not valid"),
        ({"mac": [FIXTURE_MACS[0]], "repeat": 0}, "repeat '0' is not valid; use a count from 1 to 100 such as 3"),
        ({"mac": [FIXTURE_MACS[0]], "secureon_password": "hunter2"}, "secureon_password is not a SecureOn password; use 4 bytes"),
    ],
)
def test_bad_input_is_one_sentence_and_sends_nothing(segment, extra, message):
    seg = segment(1)
    with pytest.raises(PmInputError) as raised:
        _wake.run(params(seg, **extra))
    assert raised.value.msg.startswith(message) and "hunter2" not in raised.value.msg
    assert seg.settle() == []


def test_unknown_interface_names_the_real_ones(tmp_path):
    sysfs = tmp_path / "net"
    (sysfs / "eth0").mkdir(parents=True)
    (sysfs / "lo").mkdir()
    with pytest.raises(PmInputError) as raised:
        _wake.run(defaults(mac=[FIXTURE_MACS[0]], interface="nope0"), sysfs=str(sysfs))
    assert raised.value.msg == "interface 'nope0' does not exist on this host; use one of eth0, lo"
