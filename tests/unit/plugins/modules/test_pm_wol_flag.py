"""pm_wol_flag's main() through a real AnsibleModule: documented options, results, no_log, check mode, failures.

The seams are the kernel ioctl, sysfs (a fake tree) and the commands the module runs (recorded ethtool output).
"""

from __future__ import annotations

import errno
import json
import os
from pathlib import Path

import pytest
import yaml
from ansible.module_utils.basic import AnsibleModule
from ansible.module_utils.testing import patch_module_args

from ansible_collections.ctys.pm.plugins.module_utils._wol import ethtool as _ethtool
from ansible_collections.ctys.pm.plugins.modules import pm_wol_flag

FIXTURES = Path(__file__).resolve().parents[2] / "fixtures" / "ethtool"
G = 0x20  # WAKE_MAGIC (ansible-lint's doc reader warns on tuple targets at module level)
S = 0x40  # WAKE_MAGICSECURE


def wolinfo(cmd: int, supported: int, wolopts: int) -> bytes:
    return cmd.to_bytes(4, "little") + supported.to_bytes(4, "little") + wolopts.to_bytes(4, "little") + bytes(8)


class Nic:
    """One e1000e NIC behind the ioctl; ``deny`` makes GWOL/SWOL fail as for a process without CAP_NET_ADMIN."""

    def __init__(self, supported: int, wolopts: int = 0, deny: bool = False) -> None:
        self.supported, self.wolopts, self.deny = supported, wolopts, deny
        self.sopass = bytes(6)

    def __call__(self, ifname: str, request: bytes) -> bytes:
        cmd = int.from_bytes(request[:4], "little")
        if ifname != "eno1":
            raise OSError(errno.ENODEV, "No such device")
        if cmd == 3:
            return request[:4] + b"e1000e".ljust(32, b"\0") + request[36:]
        if self.deny:
            raise OSError(errno.EPERM, "Operation not permitted")
        if cmd == 6:
            self.wolopts, self.sopass = int.from_bytes(request[8:12], "little"), request[12:18]
            return request
        return wolinfo(5, self.supported, self.wolopts)


@pytest.fixture
def host(tmp_path, monkeypatch):
    """A machine with one NIC eno1 (00:1b:21:3c:4d:5e) in a fake sysfs, its broadcast 192.0.2.255."""
    sys_root = tmp_path / "sys"
    device = sys_root / "devices/pci0000:00/0000:00:19.0"
    (device / "net/eno1").mkdir(parents=True)
    (sys_root / "class/net").mkdir(parents=True)
    (sys_root / "bus/pci/drivers/e1000e").mkdir(parents=True)
    os.symlink("../../../bus/pci/drivers/e1000e", device / "driver")
    os.symlink("../../../0000:00:19.0", device / "net/eno1/device")
    os.symlink("../../devices/pci0000:00/0000:00:19.0/net/eno1", sys_root / "class/net/eno1")
    for name, value in {"address": "00:1b:21:3c:4d:5e", "carrier": "1", "ifindex": "2"}.items():
        (device / "net/eno1" / name).write_text(value + "\n")
    monkeypatch.setattr(_ethtool, "SYSFS_ROOT", str(sys_root))
    monkeypatch.setattr(_ethtool, "kernel_broadcast", {"eno1": "192.0.2.255"}.get)
    nic = Nic(supported=0x2E)  # umbg, as the e1000 in fixture 1.txt
    monkeypatch.setattr(_ethtool, "kernel_ioctl", nic)
    commands = []
    answers = {}

    def run_command(self, argv, **kwargs):
        commands.append(list(argv))
        return answers.get(tuple(argv), (1, "", "unexpected command"))

    monkeypatch.setattr(AnsibleModule, "run_command", run_command)
    monkeypatch.setattr(AnsibleModule, "get_bin_path", lambda self, name, *a, **k: f"/usr/sbin/{name}" if name == "ethtool" else None)
    return {"nic": nic, "commands": commands, "answers": answers, "root": tmp_path / "root"}


def call(args, check=False, diff=False, capsys=None):
    args = dict(args)
    if check:
        args["_ansible_check_mode"] = True
    if diff:
        args["_ansible_diff"] = True
    with patch_module_args(args), pytest.raises(SystemExit):
        pm_wol_flag.main()
    return json.loads(capsys.readouterr().out)


def test_documented_options_match_the_argument_spec():
    documented = yaml.safe_load(pm_wol_flag.DOCUMENTATION)["options"]
    assert sorted(documented) == ["interface", "live", "persistent", "persistent_root", "sopass", "state", "wol"]
    assert documented["persistent"]["choices"] == ["none", "auto", "networkmanager", "systemd-networkd", "udev"]
    assert (documented["state"]["default"], documented["persistent"]["default"], documented["live"]["default"]) == ("enabled", "none", True)
    returned = yaml.safe_load(pm_wol_flag.RETURN)
    for key in ("interface", "physical_interfaces", "supported", "before", "after", "mac", "persistent_path"):
        assert key in returned


def test_arms_g_in_four_steps(host, capsys):
    args = {"interface": "eno1"}
    checked = call(args, check=True, diff=True, capsys=capsys)
    assert checked["changed"] is True and host["nic"].wolopts == 0
    assert checked["diff"] == [{"before_header": "eno1 (Wake-on-LAN, volatile)", "after_header": "eno1 (Wake-on-LAN, volatile)",
                                "before": "wol: d\n", "after": "wol: g\n"}]
    applied = call(args, capsys=capsys)
    assert applied["changed"] is True and host["nic"].wolopts == G
    assert {key: applied[key] for key in ("interface", "physical_interfaces", "supported", "before", "after", "mac", "driver", "broadcast")} == {
        "interface": "eno1", "physical_interfaces": ["eno1"], "supported": "umbg", "before": "d", "after": "g",
        "mac": "00:1b:21:3c:4d:5e", "driver": "e1000e", "broadcast": "192.0.2.255",
    }
    assert call(args, check=True, capsys=capsys)["changed"] is False
    assert call(args, capsys=capsys)["changed"] is False
    assert host["commands"] == []  # the ioctl did it all; no ethtool needed


def test_not_permitted_falls_back_to_ethtool_and_fails_asking_for_become(host, capsys):
    host["nic"].deny = True
    host["answers"][("/usr/sbin/ethtool", "eno1")] = (0, (FIXTURES / "1.txt").read_text(), "")
    host["answers"][("/usr/sbin/ethtool", "-s", "eno1", "wol", "g")] = (75, "", "netlink error: Operation not permitted\n")
    result = call({"interface": "eno1"}, capsys=capsys)
    assert result["failed"] is True
    assert result["msg"] == (
        "setting the Wake-on-LAN flags of interface eno1 (driver e1000e) needs root (CAP_NET_ADMIN); run the task with become: true"
    )
    assert host["commands"] == [["/usr/sbin/ethtool", "eno1"], ["/usr/sbin/ethtool", "-s", "eno1", "wol", "g"]]


def test_not_permitted_check_mode_reads_through_ethtool_and_reports(host, capsys):
    host["nic"].deny = True
    host["answers"][("/usr/sbin/ethtool", "eno1")] = (0, (FIXTURES / "1.txt").read_text(), "")
    result = call({"interface": "eno1"}, check=True, capsys=capsys)
    assert (result["changed"], result["supported"], result["before"], result["after"]) == (True, "umbg", "d", "g")


def test_sopass_is_no_log_and_persistence_file_is_byte_exact(host, capsys):
    host["nic"].supported = G | S
    result = call({"interface": "eno1", "wol": "gs", "sopass": "01:02:03:04:05:06", "persistent": "udev",
                   "persistent_root": str(host["root"])}, diff=True, capsys=capsys)
    assert result["changed"] is True and host["nic"].sopass == bytes([1, 2, 3, 4, 5, 6])
    path = host["root"] / "etc/udev/rules.d/70-ctys-pm-wol-eno1.rules"
    assert result["persistent_path"] == str(path) and result["persistent"] == "udev"
    assert path.read_bytes() == (
        b"# Managed by ctys.pm.pm_wol_flag: Wake-on-LAN of eno1 survives reboots.\n"
        b'ACTION=="add", SUBSYSTEM=="net", ATTR{address}=="00:1b:21:3c:4d:5e", '
        b'RUN+="/usr/sbin/ethtool -s $name wol gs sopass 01:02:03:04:05:06"\n'
    )
    assert "01:02:03:04:05:06" not in json.dumps(result)


def test_veth_like_nic_without_wol_fails_naming_the_driver(host, capsys):
    host["nic"].supported = 0
    result = call({"interface": "eno1"}, capsys=capsys)
    assert result["failed"] is True and result["msg"].startswith("interface eno1 (driver e1000e) does not support Wake-on-LAN;")


def test_bad_choice_is_refused_by_the_argument_spec(host, capsys):
    result = call({"interface": "eno1", "persistent": "ifupdown"}, capsys=capsys)
    assert result["failed"] is True and "persistent" in result["msg"] and "ifupdown" in result["msg"]
