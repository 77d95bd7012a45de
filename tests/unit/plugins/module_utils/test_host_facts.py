"""pm_info's fact gathering (_host_facts) at its outermost seams.

The machine is a prepared tree under tmp_path (``/sys/class/net``, ``/proc``, ``/etc``), the NIC
register is the SIOCETHTOOL ioctl (fed the bytes a driver writes), and ``ethtool IF`` answers
with the recorded real outputs in tests/unit/fixtures/ethtool/ (origins in fixtures/INDEX.md).
"""

from __future__ import annotations

import errno
import json
import os
from pathlib import Path
from typing import Dict, List, Optional, Tuple

import pytest

from ansible_collections.ctys.pm.plugins.module_utils import _host_facts
from ansible_collections.ctys.pm.plugins.module_utils._ctys.fields import ENUM_INDEX
from ansible_collections.ctys.pm.plugins.module_utils._ctys.formats import parse_conf

GWOL = 5
FIXTURES = Path(__file__).resolve().parents[2] / "fixtures" / "ethtool"


class FakeNics:
    """SIOCETHTOOL as drivers answer it: GWOL fills struct ethtool_wolinfo (20 bytes), errors as errno."""

    def __init__(self, nics: Dict[str, object]) -> None:
        self.nics = nics  # name -> (supported, wolopts) or an errno
        self.requests: List[Tuple[str, int, int]] = []

    def __call__(self, ifname: str, request: bytes) -> bytes:
        cmd = int.from_bytes(request[:4], "little")
        self.requests.append((ifname, cmd, len(request)))
        # The kernel copies sizeof(struct ethtool_wolinfo) = 20 bytes back: a shorter buffer is overrun.
        assert cmd == GWOL and len(request) == 20, (cmd, len(request))
        nic = self.nics.get(ifname, errno.ENODEV)
        if isinstance(nic, int):
            raise OSError(nic, os.strerror(nic))
        supported, wolopts = nic  # type: ignore[misc]
        return request[:4] + supported.to_bytes(4, "little") + wolopts.to_bytes(4, "little") + b"\0" * 6 + b"\0\0"


def write(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)


def nic(root: Path, name: str, mac: str, link_type: str = "1", operstate: str = "up") -> Path:
    folder = root / "sys" / "class" / "net" / name
    write(folder / "address", mac + "\n")
    write(folder / "type", link_type + "\n")
    write(folder / "operstate", operstate + "\n")
    return folder


@pytest.fixture
def machine(tmp_path):
    """lo, two NICs (eno2 a port of bridge br0), a veth; a default route and an sshd on port 2222."""
    nic(tmp_path, "lo", "00:00:00:00:00:00", link_type="772", operstate="unknown")
    nic(tmp_path, "eno1", "00:1a:2b:3c:4d:5e")
    eno2 = nic(tmp_path, "eno2", "00:1a:2b:3c:4d:5f")
    bridge = nic(tmp_path, "br0", "00:1a:2b:3c:4d:5f")
    (bridge / "bridge").mkdir()
    (bridge / "brif").mkdir()
    (bridge / "brif" / "eno2").mkdir()
    (eno2 / "brport").mkdir()
    os.symlink("../../br0", eno2 / "brport" / "bridge")
    nic(tmp_path, "veth0", "02:00:00:00:00:01")
    write(tmp_path / "proc" / "net" / "route",
          "Iface\tDestination\tGateway \tFlags\tRefCnt\tUse\tMetric\tMask\t\tMTU\tWindow\tIRTT\n"
          "eno1\t00000000\t0100000A\t0003\t0\t0\t100\t00000000\t0\t0\t0\n")
    write(tmp_path / "etc" / "ssh" / "sshd_config", "Port 2222\n")
    return tmp_path


def no_ip(argv: List[str]) -> Tuple[int, str, str]:
    return 1, "", "ip: not installed"


def gatherer(root: Path, ioctl: FakeNics, run=no_ip, ethtool: Optional[str] = None) -> _host_facts.Gatherer:
    return _host_facts.Gatherer(run=run, root=str(root), ioctl=ioctl, which=lambda name: ethtool if name == "ethtool" else None)


def wol_of(interfaces) -> Dict[str, dict]:
    return {i.ifname: i.wol.as_dict() for i in interfaces}


@pytest.mark.parametrize(
    "supported, wolopts, letters_supported, letters_enabled",
    [
        (0x21, 0x20, "pg", "g"),
        (0xFF, 0x60, "pumbagsf", "gs"),  # WAKE_MAGIC | WAKE_MAGICSECURE: not just "g"
        (0xFF, 0x80, "pumbagsf", "f"),  # WAKE_FILTER: not "s"
        (0x7F, 0x40, "pumbags", "s"),
        (0x2F, 0x00, "pumbg", "d"),
    ],
)
def test_the_register_is_read_as_ethtool_letters_with_the_kernel_bits(machine, supported, wolopts, letters_supported, letters_enabled):
    ioctl = FakeNics({"eno1": (supported, wolopts), "eno2": (0, 0), "veth0": errno.EOPNOTSUPP})
    found = wol_of(gatherer(machine, ioctl).interfaces())
    assert found["eno1"] == {"supported": letters_supported, "enabled": letters_enabled, "capable": "g" in letters_supported,
                             "source": "ioctl"}
    assert found["eno2"] == {"supported": "d", "enabled": "d", "capable": False, "source": "ioctl"}
    assert found["veth0"] == {"supported": "", "enabled": "", "capable": False, "source": "ioctl"}  # no WoL at all
    # only Ethernet links are asked, each once, with the 20-byte struct (FakeNics checks the size)
    assert sorted(name for name, _cmd, _size in ioctl.requests) == ["eno1", "eno2", "veth0"]


@pytest.mark.parametrize(
    "fixture, supported, enabled",
    [("1.txt", "umbg", "d"), ("7.txt", "pumbg", "g"), ("9.txt", "d", "d"), ("5.txt", "", "")],  # 5.txt prints no Wake-on lines
)
def test_without_permission_for_the_ioctl_ethtool_is_read(machine, fixture, supported, enabled):
    text = (FIXTURES / fixture).read_text()
    calls: List[List[str]] = []

    def run(argv: List[str]) -> Tuple[int, str, str]:
        calls.append(argv)
        return (0, text, "") if argv[0] == "/usr/sbin/ethtool" or argv[0] == "ethtool" else (1, "", "")

    ioctl = FakeNics({"eno1": errno.EPERM, "eno2": errno.EOPNOTSUPP, "veth0": errno.EOPNOTSUPP})
    found = wol_of(gatherer(machine, ioctl, run=run, ethtool="/usr/sbin/ethtool").interfaces())
    assert found["eno1"] == {"supported": supported, "enabled": enabled, "capable": "g" in supported, "source": "ethtool"}
    assert ["ethtool", "eno1"] in calls


def test_without_permission_and_without_ethtool_nothing_is_claimed(machine):
    ioctl = FakeNics({"eno1": errno.EPERM, "eno2": errno.EPERM, "veth0": errno.EPERM})
    found = wol_of(gatherer(machine, ioctl).interfaces())
    assert found["eno1"] == {"supported": "", "enabled": "", "capable": False, "source": "none"}


def test_interfaces_bridges_and_addresses(machine):
    # iproute2's 'ip -j addr show' schema (hand-written sample: one IPv4 and one link-local IPv6 on br0)
    addresses = [{"ifname": "br0", "addr_info": [
        {"family": "inet", "local": "10.0.0.5", "prefixlen": 24, "broadcast": "10.0.0.255", "scope": "global"},
        {"family": "inet6", "local": "fe80::1", "prefixlen": 64, "scope": "link"}]}]

    def run(argv: List[str]) -> Tuple[int, str, str]:
        return (0, json.dumps(addresses), "") if argv[:2] == ["ip", "-j"] else (1, "", "")

    ioctl = FakeNics({"eno1": (0x21, 0x20), "eno2": (0x21, 0x00), "veth0": errno.EOPNOTSUPP})
    found = {i.ifname: i for i in gatherer(machine, ioctl, run=run).interfaces()}
    assert (found["lo"].kind, found["br0"].kind, found["eno1"].kind) == ("loopback", "bridge", "ether")
    assert found["br0"].bridge_ports == ["eno2"] and found["eno2"].bridge == "br0"
    assert found["br0"].addresses == [{"address": "10.0.0.5", "prefix": 24, "family": "ipv4", "broadcast": "10.0.0.255",
                                       "netmask": "255.255.255.0"}]
    # ctys-genmconf's records: eno2 carries its bridge's address (relay br0); eno1 has none (WITHIP skips it)
    conf = _host_facts.conf_interfaces(list(found.values()), "WITHIP", [2222], "10.0.0.1")
    assert [(i.mac, i.ip, i.netmask, i.relay, i.ifname) for i in conf] == [("00:1A:2B:3C:4D:5F", "10.0.0.5", "255.255.255.0", "br0", "eno2")]


def test_gather_reports_wol_and_writes_a_pm_conf_that_reads_back(machine):
    ioctl = FakeNics({"eno1": (0xFF, 0x60), "eno2": (0, 0), "veth0": errno.EOPNOTSUPP})
    options = _host_facts.check_options({"label": "lab01", "category": "PM", "record": "WITHMAC"})
    facts = _host_facts.gather(gatherer(machine, ioctl), options)
    info = facts["machine"]
    assert info["wol_capable"] is True and "WoLTarget" in info["stackcap"].split("%", 1)[0].split("-")
    assert info["gateway"] == "10.0.0.1" and info["ssh_ports"] == [2222]
    eno1 = next(i for i in info["interfaces"] if i["ifname"] == "eno1")
    assert eno1["wol"] == {"supported": "pumbagsf", "enabled": "gs", "capable": True, "source": "ioctl"}
    text = _host_facts.format_pm_conf(facts["pm_conf"])
    conf = parse_conf(text)
    assert conf.get("LABEL") == "lab01" and conf.get("CATEGORY") == "PM" and conf.enumerable
    macs = ["00:1A:2B:3C:4D:5E", "00:1A:2B:3C:4D:5F", "02:00:00:00:00:01"]  # WITHMAC: every Ethernet link, the veth too
    assert sorted(i.mac for i in conf.interfaces) == macs
    records = [line.split(";") for line in facts["enum_records"]]
    assert sorted(r[ENUM_INDEX["mac"]] for r in records) == macs
    assert {r[ENUM_INDEX["label"]] for r in records} == {"lab01"} and {r[ENUM_INDEX["category"]] for r in records} == {"PM"}


def test_backend_writes_the_config_once(machine, tmp_path):
    ioctl = FakeNics({"eno1": (0x21, 0x20), "eno2": (0, 0), "veth0": errno.EOPNOTSUPP})
    target = tmp_path / "out" / "pm.conf"
    params = {"label": "lab01", "category": "PM", "write_config": str(target)}
    first = _host_facts.backend(params, no_ip, False, True, lambda: "20240101000000", gatherer=gatherer(machine, ioctl))
    assert first["changed"] is True and target.read_text() == first["pm_conf"]
    again = _host_facts.backend(params, no_ip, False, True, lambda: "20250101000000", gatherer=gatherer(machine, ioctl))
    assert again["changed"] is False and "20240101000000" in target.read_text()  # DATE/SERNO alone change nothing
