"""_ethtool at its outermost seams: the SIOCETHTOOL ioctl (fed real struct bytes), the ``ethtool``
command (fed the recorded real outputs in tests/unit/fixtures/ethtool/), and a fake sysfs tree."""

from __future__ import annotations

import errno
import os
from pathlib import Path
from typing import Dict, List, Optional

import pytest

from ansible_collections.ctys.pm.plugins.module_utils._errors import (
    PmInputError,
    PmPermissionError,
    PmStateError,
    PmUnsupportedError,
)
from ansible_collections.ctys.pm.plugins.module_utils._wol import ethtool as _ethtool

FIXTURES = Path(__file__).resolve().parents[3] / "unit" / "fixtures" / "ethtool"
GWOL, SWOL, GDRVINFO = 5, 6, 3
P, U, M, B, A, G, S, F = 1, 2, 4, 8, 16, 32, 64, 128


def wolinfo(cmd: int, supported: int, wolopts: int, sopass: bytes = b"\0" * 6) -> bytes:
    """struct ethtool_wolinfo as the kernel lays it out on x86_64: three little-endian u32, u8[6], 2 pad bytes."""
    return cmd.to_bytes(4, "little") + supported.to_bytes(4, "little") + wolopts.to_bytes(4, "little") + sopass + b"\0\0"


class FakeDriver:
    """Answers SIOCETHTOOL as a NIC driver does: GWOL fills the struct, SWOL stores it, errors as errno."""

    def __init__(self, nics: Dict[str, dict]) -> None:
        self.nics = nics
        self.requests: List[tuple] = []

    def __call__(self, ifname: str, request: bytes) -> bytes:
        cmd = int.from_bytes(request[:4], "little")
        self.requests.append((ifname, cmd, bytes(request)))
        nic = self.nics.get(ifname)
        if nic is None:
            raise OSError(errno.ENODEV, os.strerror(errno.ENODEV))
        if cmd == GDRVINFO:
            return request[:4] + nic["driver"].encode().ljust(32, b"\0") + request[36:]
        failure = nic.get("errno", {}).get(cmd)
        if failure:
            raise OSError(failure, os.strerror(failure))
        if cmd == GWOL:
            return wolinfo(GWOL, nic["supported"], nic["wolopts"], nic.get("sopass", b"\0" * 6))
        if cmd == SWOL:
            assert len(request) == 20
            wanted = int.from_bytes(request[8:12], "little")
            if wanted & ~nic["supported"]:
                raise OSError(errno.EINVAL, os.strerror(errno.EINVAL))
            if not nic.get("ignores_set"):
                nic["wolopts"], nic["sopass"] = wanted, request[12:18]
            return request
        raise AssertionError(f"unexpected ethtool command {cmd}")


class Commands:
    """Stands in for module.run_command: answers argv with recorded outputs."""

    def __init__(self, answers: Dict[tuple, tuple]) -> None:
        self.answers = answers
        self.calls: List[List[str]] = []

    def __call__(self, argv: List[str]):
        self.calls.append(list(argv))
        return self.answers.get(tuple(argv), (1, "", f"unexpected {argv}"))


def fixture(name: str) -> str:
    return (FIXTURES / name).read_text(encoding="utf-8")


class FakeSys:
    """A sysfs tree like the kernel's: class/net/X symlinks into devices/, device/driver links, brif/, bonding/."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.index = 0
        (root / "class" / "net").mkdir(parents=True)

    def _add(self, name: str, where: Path, mac: str, carrier: Optional[str]) -> Path:
        where.mkdir(parents=True)
        self.index += 1
        files = {"address": mac + "\n", "ifindex": f"{self.index}\n"}
        if carrier is not None:
            files["carrier"] = carrier + "\n"
        for key, value in files.items():
            (where / key).write_text(value)
        os.symlink(os.path.relpath(where, self.root / "class" / "net"), self.root / "class" / "net" / name)
        return where

    def nic(self, name: str, driver: str, mac: str, carrier: str = "1", pci: str = "0000:00:19.0") -> None:
        device = self.root / "devices" / "pci0000:00" / pci
        where = self._add(name, device / "net" / name, mac, carrier)
        drivers = self.root / "bus" / "pci" / "drivers" / driver
        drivers.mkdir(parents=True, exist_ok=True)
        if not (device / "driver").exists():
            os.symlink(os.path.relpath(drivers, device), device / "driver")
        os.symlink(os.path.relpath(device, where), where / "device")

    def virtual(self, name: str, mac: str, carrier: str = "1") -> Path:
        return self._add(name, self.root / "devices" / "virtual" / "net" / name, mac, carrier)

    def bridge(self, name: str, mac: str, ports: List[str]) -> None:
        where = self.virtual(name, mac)
        (where / "bridge").mkdir()
        (where / "brif").mkdir()
        for port in ports:
            os.symlink(f"../../{port}/brport", where / "brif" / port)
            os.symlink(f"../{name}", self._dir(port) / "master")

    def bond(self, name: str, mac: str, slaves: List[str]) -> None:
        where = self.virtual(name, mac)
        (where / "bonding").mkdir()
        (where / "bonding" / "slaves").write_text(" ".join(slaves) + "\n")
        for slave in slaves:
            os.symlink(f"../{name}", self._dir(slave) / "master")
            os.symlink(f"../{slave}", where / f"lower_{slave}")

    def vlan(self, name: str, parent: str, mac: str) -> None:
        where = self.virtual(name, mac)
        os.symlink(f"../{parent}", where / f"lower_{parent}")
        os.symlink(f"../{name}", self._dir(parent) / f"upper_{name}")

    def _dir(self, name: str) -> Path:
        return Path(os.path.realpath(self.root / "class" / "net" / name))

    @property
    def net(self) -> _ethtool.SysNet:
        return _ethtool.SysNet(str(self.root))


@pytest.fixture
def fake_sys(tmp_path):
    return FakeSys(tmp_path / "sys")


# ---------------------------------------------------------------- the recorded ethtool outputs

@pytest.mark.parametrize(
    "name, supported, wolopts",
    [
        ("1.txt", "umbg", "d"),  # enp0s3, e1000-like: can wake, currently off
        ("3.txt", "d", "d"),  # eth0 with external PHY: no Wake-on-LAN
        ("5.txt", None, None),  # enp4s0, link down: ethtool printed no Wake-on lines at all
        ("7.txt", "pumbg", "g"),  # System76 after 'ethtool -s enp40s0 wol g', grep-filtered
        ("9.txt", "d", "d"),  # Yukon 88E1011: no Wake-on-LAN
    ],
)
def test_parser_reads_the_wake_on_lines_of_every_recorded_output(name, supported, wolopts):
    found = _ethtool.parse_ethtool(fixture(name))
    assert (None if found.supported is None else _ethtool.letters(found.supported)) == supported
    assert (None if found.wolopts is None else _ethtool.letters(found.wolopts)) == wolopts
    assert found.sopass is None and found.not_permitted is False


def test_parser_reads_a_secureon_password_line_and_the_old_not_permitted_message():
    text = "\tSupports Wake-on: pumbgs\n\tWake-on: gs\n        SecureOn password: 01:02:0a:0b:0c:ff\n"
    found = _ethtool.parse_ethtool(text)
    assert (found.supported, found.wolopts, found.sopass) == (P | U | M | B | G | S, G | S, bytes([1, 2, 10, 11, 12, 255]))
    assert _ethtool.parse_ethtool("Cannot get wake-on-lan settings: Operation not permitted\n").not_permitted


@pytest.mark.parametrize("name", ["1.txt", "3.txt", "5.txt", "7.txt", "9.txt"])
def test_each_recorded_output_through_the_ethtool_fallback(name):
    """ioctl not permitted (EPERM) -> `ethtool IF`; what the operator gets for each real NIC."""
    driver = FakeDriver({"eth0": {"driver": "e1000", "supported": G, "wolopts": 0, "errno": {GWOL: errno.EPERM}}})
    commands = Commands({("/usr/sbin/ethtool", "eth0"): (0, fixture(name), "")})
    eth = _ethtool.Ethtool(driver, commands, "/usr/sbin/ethtool")
    expected = _ethtool.parse_ethtool(fixture(name))
    if not expected.supported:
        with pytest.raises(PmUnsupportedError) as caught:
            eth.get("eth0", "interface eth0 (driver e1000)")
        assert caught.value.msg.startswith("interface eth0 (driver e1000) does not support Wake-on-LAN;")
    else:
        state = eth.get("eth0", "interface eth0 (driver e1000)")
        assert (state.supported, state.wolopts, state.source) == (expected.supported, expected.wolopts, "ethtool")
    assert commands.calls == [["/usr/sbin/ethtool", "eth0"]]


# ---------------------------------------------------------------- the ioctl seam

def test_gwol_struct_is_read_field_by_field_from_the_kernels_bytes():
    answer = bytes.fromhex("05000000 2e000000 20000000 000000000000 0000")  # umbg supported, g armed
    eth = _ethtool.Ethtool(lambda ifname, request: answer)
    state = eth.get("eno1", "interface eno1 (driver e1000e)")
    assert (_ethtool.letters(state.supported), _ethtool.letters(state.wolopts), state.source) == ("umbg", "g", "ioctl")


def test_swol_sends_exactly_the_kernels_struct_layout():
    driver = FakeDriver({"eno1": {"driver": "e1000e", "supported": U | M | B | G, "wolopts": 0}})
    _ethtool.Ethtool(driver).set("eno1", "interface eno1 (driver e1000e)", G, None)
    ifname, cmd, request = driver.requests[-1]
    assert (ifname, cmd) == ("eno1", SWOL)
    assert request == bytes.fromhex("06000000 00000000 20000000 000000000000 0000")


def test_eperm_on_set_falls_back_to_ethtool_and_its_refusal_says_become():
    driver = FakeDriver({"eno1": {"driver": "e1000e", "supported": G, "wolopts": 0, "errno": {SWOL: errno.EPERM}}})
    commands = Commands({("/usr/sbin/ethtool", "-s", "eno1", "wol", "g"): (75, "", "netlink error: Operation not permitted\n")})
    with pytest.raises(PmPermissionError) as caught:
        _ethtool.Ethtool(driver, commands, "/usr/sbin/ethtool").set("eno1", "interface eno1 (driver e1000e)", G, None)
    assert caught.value.msg == (
        "setting the Wake-on-LAN flags of interface eno1 (driver e1000e) needs root (CAP_NET_ADMIN); run the task with become: true"
    )
    assert commands.calls == [["/usr/sbin/ethtool", "-s", "eno1", "wol", "g"]]


def test_eperm_without_an_ethtool_binary_says_become():
    driver = FakeDriver({"eno1": {"driver": "e1000e", "supported": G, "wolopts": 0, "errno": {GWOL: errno.EPERM}}})
    with pytest.raises(PmPermissionError, match=r"^reading the Wake-on-LAN flags of .* run the task with become: true$"):
        _ethtool.Ethtool(driver).get("eno1", "interface eno1 (driver e1000e)")


def test_eperm_on_set_with_a_permitted_ethtool_sets_through_the_command_with_sopass():
    driver = FakeDriver({"eno1": {"driver": "e1000e", "supported": G | S, "wolopts": 0, "errno": {SWOL: errno.EPERM}}})
    argv = ("/sbin/ethtool", "-s", "eno1", "wol", "gs", "sopass", "01:02:03:04:05:06")
    commands = Commands({argv: (0, "", "")})
    _ethtool.Ethtool(driver, commands, "/sbin/ethtool").set("eno1", "x", G | S, bytes([1, 2, 3, 4, 5, 6]))
    assert commands.calls == [list(argv)]


def test_eopnotsupp_names_the_driver_that_gdrvinfo_reports(fake_sys):
    fake_sys.virtual("veth0", "0a:00:00:00:00:01")
    driver = FakeDriver({"veth0": {"driver": "veth", "supported": 0, "wolopts": 0, "errno": {GWOL: errno.EOPNOTSUPP}}})
    with pytest.raises(PmUnsupportedError) as caught:
        _ethtool.run({"interface": "veth0"}, ethtool=_ethtool.Ethtool(driver), sysfs=fake_sys.net, broadcast=lambda name: None)
    assert caught.value.msg.startswith("interface veth0 (driver veth) does not support Wake-on-LAN;")


def test_driver_falls_back_from_sysfs_to_gdrvinfo_to_ethtool_i(fake_sys):
    fake_sys.nic("eno1", "e1000e", "00:1b:21:00:00:01")
    fake_sys.virtual("tap0", "fe:00:00:00:00:01")
    fake_sys.virtual("odd0", "fe:00:00:00:00:02")
    driver = FakeDriver({"tap0": {"driver": "tun"}})
    commands = Commands({("/usr/sbin/ethtool", "-i", "odd0"): (0, "driver: ipvlan\nversion: 1.0\n", "")})
    eth = _ethtool.Ethtool(driver, commands, "/usr/sbin/ethtool")
    assert [eth.driver(name, fake_sys.net) for name in ("eno1", "tap0", "odd0")] == ["e1000e", "tun", "ipvlan"]


# ---------------------------------------------------------------- sysfs resolution

def test_bridge_bond_and_vlan_resolve_to_their_physical_ports(fake_sys):
    fake_sys.nic("eno1", "e1000e", "00:1b:21:00:00:01", pci="0000:00:19.0")
    fake_sys.nic("enp3s0", "igb", "00:1b:21:00:00:02", pci="0000:03:00.0")
    fake_sys.nic("enp4s0", "igb", "00:1b:21:00:00:03", pci="0000:04:00.0")
    fake_sys.virtual("vnet0", "fe:54:00:00:00:01")
    fake_sys.bond("bond0", "00:1b:21:00:00:02", ["enp3s0", "enp4s0"])
    fake_sys.bridge("br0", "00:1b:21:00:00:01", ["eno1", "vnet0"])
    fake_sys.vlan("bond0.10", "bond0", "00:1b:21:00:00:02")
    net = fake_sys.net
    assert net.leaves("br0") == ["eno1", "vnet0"]
    assert net.leaves("bond0.10") == ["enp3s0", "enp4s0"]
    assert net.leaves("eno1") == ["eno1"]
    assert [net.is_virtual(name) for name in ("eno1", "vnet0", "br0", "bond0")] == [False, True, True, True]
    assert net.with_address_chain("eno1") == ["eno1", "br0"]
    assert net.with_address_chain("enp3s0") == ["enp3s0", "bond0", "bond0.10"]


def test_bridge_arms_its_physical_port_not_the_tap_and_finds_the_bridges_broadcast(fake_sys):
    fake_sys.nic("eno1", "e1000e", "00:1b:21:00:00:01")
    fake_sys.virtual("vnet0", "fe:54:00:00:00:01")
    fake_sys.bridge("br0", "00:1b:21:00:00:01", ["eno1", "vnet0"])
    driver = FakeDriver({"eno1": {"driver": "e1000e", "supported": P | U | M | B | G, "wolopts": 0}})
    result = _ethtool.run(
        {"interface": "br0"}, ethtool=_ethtool.Ethtool(driver), sysfs=fake_sys.net,
        broadcast={"br0": "192.0.2.255"}.get,
    )
    assert result["changed"] is True and result["interface"] == "br0" and result["physical_interfaces"] == ["eno1"]
    assert (result["supported"], result["before"], result["after"]) == ("pumbg", "d", "g")
    assert (result["mac"], result["driver"], result["broadcast"]) == ("00:1b:21:00:00:01", "e1000e", "192.0.2.255")
    assert driver.nics["eno1"]["wolopts"] == G
    assert [r[:2] for r in driver.requests if r[1] != GDRVINFO] == [("eno1", GWOL), ("eno1", SWOL), ("eno1", GWOL)]


def test_bond_arms_every_slave_that_can_and_lists_the_one_that_cannot(fake_sys):
    fake_sys.nic("enp3s0", "igb", "00:1b:21:00:00:02", pci="0000:03:00.0")
    fake_sys.nic("enp4s0", "virtio_net", "52:54:00:00:00:03", pci="0000:04:00.0")
    fake_sys.bond("bond0", "00:1b:21:00:00:02", ["enp3s0", "enp4s0"])
    driver = FakeDriver({
        "enp3s0": {"driver": "igb", "supported": G, "wolopts": G},
        "enp4s0": {"driver": "virtio_net", "supported": 0, "wolopts": 0, "errno": {GWOL: errno.EOPNOTSUPP}},
    })
    result = _ethtool.run({"interface": "bond0"}, ethtool=_ethtool.Ethtool(driver), sysfs=fake_sys.net, broadcast=lambda n: None)
    assert result["changed"] is False and result["physical_interfaces"] == ["enp3s0"]
    assert result["unsupported_ports"][0]["interface"] == "enp4s0"
    assert "interface enp4s0 (driver virtio_net, under bond0) does not support" in result["unsupported_ports"][0]["reason"]


def test_without_interface_the_first_physical_nic_with_carrier_and_wol_is_chosen(fake_sys):
    fake_sys.virtual("lo", "00:00:00:00:00:00")
    fake_sys.virtual("veth0", "0a:00:00:00:00:01")  # before the NICs in ifindex order
    fake_sys.nic("enp1s0", "virtio_net", "52:54:00:00:00:01", pci="0000:01:00.0")
    fake_sys.nic("enp2s0", "e1000e", "00:1b:21:00:00:02", carrier="0", pci="0000:02:00.0")
    fake_sys.nic("enp3s0", "r8169", "00:e0:4c:00:00:03", pci="0000:03:00.0")
    driver = FakeDriver({
        "enp1s0": {"driver": "virtio_net", "supported": 0, "wolopts": 0, "errno": {GWOL: errno.EOPNOTSUPP}},
        "enp2s0": {"driver": "e1000e", "supported": G, "wolopts": 0},
        "enp3s0": {"driver": "r8169", "supported": P | U | M | B | G, "wolopts": P | U | M | B | G},
        "veth0": {"driver": "veth", "supported": G, "wolopts": 0},  # never chosen, even if it claimed support
    })
    result = _ethtool.run({}, ethtool=_ethtool.Ethtool(driver), sysfs=fake_sys.net, broadcast=lambda n: None)
    assert result["interface"] == "enp3s0" and result["driver"] == "r8169"
    assert (result["before"], result["after"], result["changed"]) == ("pumbg", "g", True)


def test_without_interface_and_no_candidate_the_error_lists_what_was_seen(fake_sys):
    fake_sys.virtual("lo", "00:00:00:00:00:00")
    fake_sys.nic("enp1s0", "virtio_net", "52:54:00:00:00:01", pci="0000:01:00.0")
    fake_sys.nic("enp2s0", "e1000e", "00:1b:21:00:00:02", carrier="0", pci="0000:02:00.0")
    driver = FakeDriver({"enp1s0": {"driver": "virtio_net", "supported": 0, "wolopts": 0, "errno": {GWOL: errno.EOPNOTSUPP}}})
    with pytest.raises(PmUnsupportedError) as caught:
        _ethtool.run({}, ethtool=_ethtool.Ethtool(driver), sysfs=fake_sys.net, broadcast=lambda n: None)
    assert caught.value.msg == (
        "no physical interface with a carrier supports Wake-on-LAN (interface enp1s0 (driver virtio_net) has no Wake-on-LAN; "
        "enp2s0 has no carrier); give interface"
    )


# ---------------------------------------------------------------- modes, idempotency, check mode

def test_mode_the_nic_lacks_is_refused_listing_what_it_supports(fake_sys):
    fake_sys.nic("eno1", "e1000e", "00:1b:21:00:00:01")
    driver = FakeDriver({"eno1": {"driver": "e1000e", "supported": U | M | B | G, "wolopts": 0}})
    with pytest.raises(PmUnsupportedError) as caught:
        _ethtool.run({"interface": "eno1", "wol": "pg"}, ethtool=_ethtool.Ethtool(driver), sysfs=fake_sys.net, broadcast=lambda n: None)
    assert caught.value.msg == (
        "interface eno1 (driver e1000e) does not support Wake-on-LAN mode 'p'; it supports 'umbg', so use wol with those letters"
    )
    assert driver.nics["eno1"]["wolopts"] == 0


def test_apply_then_again_is_idempotent_and_check_mode_changes_nothing(fake_sys):
    fake_sys.nic("eno1", "e1000e", "00:1b:21:00:00:01")
    driver = FakeDriver({"eno1": {"driver": "e1000e", "supported": U | M | B | G, "wolopts": U}})
    eth = _ethtool.Ethtool(driver)

    def run(check):
        return _ethtool.run({"interface": "eno1"}, check_mode=check, ethtool=eth, sysfs=fake_sys.net, broadcast=lambda n: None)

    checked = run(True)
    assert (checked["changed"], checked["before"], checked["after"], driver.nics["eno1"]["wolopts"]) == (True, "u", "g", U)
    assert checked["diff"] == [{"before_header": "eno1 (Wake-on-LAN, volatile)", "after_header": "eno1 (Wake-on-LAN, volatile)",
                                "before": "wol: u\n", "after": "wol: g\n"}]
    applied = run(False)
    assert (applied["changed"], applied["after"], driver.nics["eno1"]["wolopts"]) == (True, "g", G)
    assert run(True)["changed"] is False and run(False)["changed"] is False


def test_state_disabled_clears_the_register(fake_sys):
    fake_sys.nic("eno1", "e1000e", "00:1b:21:00:00:01")
    driver = FakeDriver({"eno1": {"driver": "e1000e", "supported": U | G, "wolopts": U | G}})
    result = _ethtool.run({"interface": "eno1", "state": "disabled"}, ethtool=_ethtool.Ethtool(driver), sysfs=fake_sys.net,
                          broadcast=lambda n: None)
    assert (result["before"], result["after"], driver.nics["eno1"]["wolopts"]) == ("ug", "d", 0)


def test_a_driver_that_ignores_the_set_is_caught_by_the_read_back(fake_sys):
    fake_sys.nic("eno1", "e1000e", "00:1b:21:00:00:01")
    driver = FakeDriver({"eno1": {"driver": "e1000e", "supported": G, "wolopts": 0, "ignores_set": True}})
    with pytest.raises(PmUnsupportedError, match=r"still reports Wake-on-LAN 'd' after setting 'g'; the driver ignored it$"):
        _ethtool.run({"interface": "eno1"}, ethtool=_ethtool.Ethtool(driver), sysfs=fake_sys.net, broadcast=lambda n: None)


def test_secureon_password_is_set_and_never_returned(fake_sys):
    fake_sys.nic("eno1", "e1000e", "00:1b:21:00:00:01")
    driver = FakeDriver({"eno1": {"driver": "e1000e", "supported": G | S, "wolopts": 0}})
    result = _ethtool.run({"interface": "eno1", "wol": "gs", "sopass": "0A-0B-0C-0D-0E-0F"},
                          ethtool=_ethtool.Ethtool(driver), sysfs=fake_sys.net, broadcast=lambda n: None)
    assert driver.nics["eno1"]["sopass"] == bytes.fromhex("0a0b0c0d0e0f") and result["after"] == "gs"
    assert "0a:0b" not in repr(result).lower() and "0a-0b" not in repr(result).lower()


@pytest.mark.parametrize(
    "params, message",
    [
        ({"interface": "eth0", "wol": "gx"}, "wol 'gx' is not valid; use ethtool's letters p u m b a g s f (such as g), or d alone to disable"),
        ({"interface": "eth0", "wol": "dg"}, "wol 'dg' is not valid;"),
        ({"interface": "eth0", "wol": "g", "state": "disabled"}, "wol 'g' contradicts state 'disabled'"),
        ({"interface": "eth0", "wol": "gs"}, "wol contains s (SecureOn) but sopass is missing"),
        ({"interface": "eth0", "sopass": "01:02:03:04:05:06"}, "sopass was given but wol 'g' has no s"),
        ({"interface": "eth0", "wol": "gs", "sopass": "secret-word"}, "sopass is not a SecureOn password; use six hex octets"),
        ({"interface": "eth 0"}, "interface 'eth 0' is not a valid interface name"),
        ({"interface": "eth9"}, "interface 'eth9' does not exist on this host; use one of eth0"),
        ({"live": False, "persistent": "udev"}, "interface is missing but live is false"),
    ],
)
def test_bad_input_is_one_sentence_naming_option_and_fix(fake_sys, params, message):
    fake_sys.nic("eth0", "e1000e", "00:1b:21:00:00:01")
    driver = FakeDriver({"eth0": {"driver": "e1000e", "supported": G | S, "wolopts": 0}})
    with pytest.raises(PmInputError) as caught:
        _ethtool.run(params, ethtool=_ethtool.Ethtool(driver), sysfs=fake_sys.net, broadcast=lambda n: None)
    assert caught.value.msg.startswith(message) and "secret-word" not in caught.value.msg
    assert driver.nics["eth0"]["wolopts"] == 0


def test_live_false_writes_only_the_persistent_file_and_never_touches_the_nic(fake_sys, tmp_path):
    fake_sys.nic("eno1", "e1000e", "00:1b:21:00:00:01")
    driver = FakeDriver({"eno1": {"driver": "e1000e", "supported": G, "wolopts": 0}})
    params = {"interface": "eno1", "live": False, "persistent": "udev", "persistent_root": str(tmp_path / "image")}
    result = _ethtool.run(params, ethtool=_ethtool.Ethtool(driver), sysfs=fake_sys.net, broadcast=lambda n: None)
    assert result["changed"] is True and (result["before"], result["after"], result["supported"]) == (None, None, None)
    assert result["persistent_path"] == str(tmp_path / "image/etc/udev/rules.d/70-ctys-pm-wol-eno1.rules")
    assert [r[1] for r in driver.requests] == []  # the NIC was not even read (the driver name came from sysfs)
    assert driver.nics["eno1"]["wolopts"] == 0


def test_missing_persistent_mac_is_a_state_error(fake_sys, tmp_path):
    where = fake_sys.virtual("odd0", "")
    (where / "address").write_text("")
    driver = FakeDriver({"odd0": {"driver": "odd"}})
    with pytest.raises(PmStateError, match="has no MAC address in sysfs"):
        _ethtool.run({"interface": "odd0", "live": False, "persistent": "udev", "persistent_root": str(tmp_path)},
                     ethtool=_ethtool.Ethtool(driver), sysfs=fake_sys.net, broadcast=lambda n: None)
