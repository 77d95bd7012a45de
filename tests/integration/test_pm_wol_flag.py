"""pm_wol_flag through the real ansible CLI inside a network namespace of its own, against the real kernel.

There is no Wake-on-LAN-capable NIC here: a veth gives the kernel's own "not supported" answer (EOPNOTSUPP
from SIOCETHTOOL, driver name from ETHTOOL_GDRVINFO), a bridge over it exercises the resolution to the
physical port, a run without CAP_NET_ADMIN the EPERM -> ethtool fallback, and live: false writes the
persistent configuration into a test root, checked byte for byte in four steps.
"""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest

from pmtest.ansible_run import REPO_ROOT, VENV_BIN, run_module, run_playbook

pytestmark = [pytest.mark.lab, pytest.mark.skipif(os.geteuid() != 0, reason="network namespaces need root")]

MODULE = "ctys.pm.pm_wol_flag"
VETH, PEER, BRIDGE = "pmwv0", "pmwv1", "pmwbr0"
NOT_SUPPORTED = "does not support Wake-on-LAN; arm a physical NIC whose driver supports it (veth, virtio_net, tun and bridges never do)"


def ip(*args: str) -> str:
    return subprocess.run(["ip", *args], check=True, capture_output=True, text=True).stdout


@pytest.fixture(scope="module")
def netns():
    """A namespace with a veth pair; one end is the port of a bridge that carries 198.18.99.1/24."""
    name = f"pmwol{os.getpid()}"
    ip("netns", "add", name)
    try:
        ip("-n", name, "link", "add", VETH, "type", "veth", "peer", "name", PEER)
        ip("-n", name, "link", "add", BRIDGE, "type", "bridge")
        ip("-n", name, "link", "set", VETH, "master", BRIDGE)
        for link in (VETH, PEER, BRIDGE):
            ip("-n", name, "link", "set", link, "up")
        ip("-n", name, "addr", "add", "198.18.99.1/24", "dev", BRIDGE)
        yield name
    finally:
        subprocess.run(["ip", "netns", "del", name], check=False)


def mac_of(netns: str, link: str) -> str:
    return json.loads(ip("-n", netns, "-j", "link", "show", link))[0]["address"]


def wol(netns, check=False, diff=False, inventory=None, **params):
    return run_module(MODULE, params, netns=netns, check=check, diff=diff, inventory=inventory).result


def test_veth_gets_the_kernels_not_supported_naming_the_driver(netns):
    result = wol(netns, interface=VETH)
    assert result["failed"] is True and result["msg"] == f"interface {VETH} (driver veth) {NOT_SUPPORTED}"


def test_bridge_is_resolved_to_its_port_and_the_port_is_named(netns):
    result = wol(netns, interface=BRIDGE)
    assert result["failed"] is True and result["msg"] == f"interface {VETH} (driver veth, under {BRIDGE}) {NOT_SUPPORTED}"


def test_without_interface_no_virtual_interface_is_ever_chosen(netns):
    result = wol(netns, state="enabled")  # ansible needs one argument
    assert result["failed"] is True
    assert result["msg"] == "no physical interface with a carrier supports Wake-on-LAN (no physical interface found); give interface"


def test_missing_interface_names_the_real_ones(netns):
    result = wol(netns, interface="eth7")
    assert result["failed"] is True
    assert result["msg"] == f"interface 'eth7' does not exist on this host; use one of lo, {PEER}, {VETH}, {BRIDGE}"


def test_without_cap_net_admin_the_task_asks_for_become(netns, tmp_path):
    """SIOCETHTOOL GWOL answers EPERM; the real `ethtool` is tried, whose netlink WOL_GET is refused too."""
    wrapper = tmp_path / "python-without-net-admin"
    wrapper.write_text(f"#!/bin/sh\nexec setpriv --inh-caps=-net_admin --bounding-set=-net_admin {VENV_BIN / 'python'} \"$@\"\n")
    wrapper.chmod(0o755)
    inventory = tmp_path / "inventory.ini"
    inventory.write_text(f"localhost ansible_connection=local ansible_python_interpreter={wrapper}\n")
    result = wol(netns, inventory=inventory, interface=VETH)
    assert result["failed"] is True and result["msg"] == (
        f"reading the Wake-on-LAN flags of interface {VETH} (driver veth) needs root (CAP_NET_ADMIN); run the task with become: true"
    )
    # the kernel really refuses the ioctl without CAP_NET_ADMIN (and ethtool says "Operation not permitted")
    probe = subprocess.run(
        ["ip", "netns", "exec", netns, str(wrapper), "-c",
         "import errno, ansible_collections.ctys.pm.plugins.module_utils._wol.ethtool as e\n"
         f"try:\n    e.kernel_ioctl('{VETH}', e.WOLINFO.pack(5, 0, 0, bytes(6)))\n"
         "except OSError as error:\n    print(errno.errorcode[error.errno])\n"],
        capture_output=True, text=True, check=False,
        env=dict(os.environ, PYTHONPATH=str(Path(__file__).resolve().parents[2] / ".build" / "collections")),
    )
    assert probe.stdout.strip() == "EPERM", probe.stderr


def expected_link(mac: str) -> bytes:
    return (
        f"# Managed by ctys.pm.pm_wol_flag: Wake-on-LAN of {VETH} survives reboots.\n"
        "# systemd-udevd applies only the first .link file that matches, so the policies of\n"
        "# 99-default.link are repeated here to keep the interface's name and MAC address.\n"
        "[Match]\n"
        f"MACAddress={mac}\n"
        "\n"
        "[Link]\n"
        "NamePolicy=keep kernel database onboard slot path\n"
        "AlternativeNamesPolicy=database onboard slot path\n"
        "MACAddressPolicy=persistent\n"
        "WakeOnLan=magic\n"
    ).encode()


@pytest.mark.compat
def test_persistent_link_file_in_four_steps_with_the_bridges_broadcast(netns, tmp_path):
    root = tmp_path / "root"
    path = root / f"etc/systemd/network/70-ctys-pm-wol-{VETH}.link"
    params = {"interface": BRIDGE, "live": False, "persistent": "systemd-networkd", "persistent_root": str(root)}
    checked = wol(netns, check=True, diff=True, **params)
    assert checked.get("failed") is not True, checked
    assert checked["changed"] is True and not path.exists()
    applied = wol(netns, **params)
    assert applied["changed"] is True and applied["persistent_path"] == str(path)
    assert path.read_bytes() == expected_link(mac_of(netns, VETH))
    assert (applied["interface"], applied["physical_interfaces"], applied["mac"]) == (BRIDGE, [VETH], mac_of(netns, VETH))
    assert (applied["driver"], applied["broadcast"], applied["before"]) == ("veth", "198.18.99.255", None)
    assert wol(netns, check=True, **params)["changed"] is False
    again = wol(netns, **params)
    assert again["changed"] is False and path.read_bytes() == expected_link(mac_of(netns, VETH))


def test_persistent_udev_rule_with_secureon_is_0600_and_the_password_stays_hidden(netns, tmp_path):
    root = tmp_path / "root"
    path = root / f"etc/udev/rules.d/70-ctys-pm-wol-{VETH}.rules"
    params = {"interface": VETH, "live": False, "persistent": "udev", "persistent_root": str(root),
              "wol": "gs", "sopass": "5e:c2:e7:0a:5e:c2"}
    result = run_module(MODULE, params, netns=netns, diff=True)
    assert result.result["changed"] is True
    assert path.read_bytes() == (
        f"# Managed by ctys.pm.pm_wol_flag: Wake-on-LAN of {VETH} survives reboots.\n"
        f'ACTION=="add", SUBSYSTEM=="net", ATTR{{address}}=="{mac_of(netns, VETH)}", '
        'RUN+="/usr/sbin/ethtool -s $name wol gs sopass 5e:c2:e7:0a:5e:c2"\n'
    ).encode()
    assert (path.stat().st_mode & 0o777) == 0o600
    assert "5e:c2:e7:0a:5e:c2" not in result.stdout + result.stderr + json.dumps(result.result)
    assert "sopass ********" in result.stdout  # the diff shows the rule with the password masked
    assert wol(netns, **params)["changed"] is False


def test_ansible_test_target_in_the_namespace(netns, tmp_path):
    """tests/integration/targets/pm_wol_flag as a role: it creates and deletes its own veth inside our namespace."""
    play = tmp_path / "target.yml"
    play.write_text("- hosts: localhost\n  gather_facts: false\n  roles:\n    - pm_wol_flag\n")
    run = run_playbook(play, netns=netns, env={"ANSIBLE_ROLES_PATH": str(REPO_ROOT / "tests" / "integration" / "targets")})
    assert run.rc == 0 and "failed=0" in run.stdout, run.stdout[-3000:] + run.stderr[-2000:]
    assert "pmwoltgt0" not in ip("-n", netns, "-br", "link")  # the target cleaned up after itself
