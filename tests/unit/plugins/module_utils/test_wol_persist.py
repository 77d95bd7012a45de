"""_wol_persist: files written under a test root and compared byte for byte; nmcli at its argv seam."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from typing import Dict, List, Optional

import pytest

from ansible_collections.ctys.pm.plugins.module_utils._errors import PmError, PmInputError, PmStateError
from ansible_collections.ctys.pm.plugins.module_utils._wol import persist as _wol_persist

MAC = "00:1b:21:3c:4d:5e"
G, S, U, F = 0x20, 0x40, 0x02, 0x80
SOPASS = bytes.fromhex("a1b2c3d4e5f6")

LINK_G = (
    "# Managed by ctys.pm.pm_wol_flag: Wake-on-LAN of eno1 survives reboots.\n"
    "# systemd-udevd applies only the first .link file that matches, so the policies of\n"
    "# 99-default.link are repeated here to keep the interface's name and MAC address.\n"
    "[Match]\n"
    "MACAddress=00:1b:21:3c:4d:5e\n"
    "\n"
    "[Link]\n"
    "NamePolicy=keep kernel database onboard slot path\n"
    "AlternativeNamesPolicy=database onboard slot path\n"
    "MACAddressPolicy=persistent\n"
    "WakeOnLan=magic\n"
)
UDEV_G = (
    "# Managed by ctys.pm.pm_wol_flag: Wake-on-LAN of eno1 survives reboots.\n"
    'ACTION=="add", SUBSYSTEM=="net", ATTR{address}=="00:1b:21:3c:4d:5e", RUN+="/usr/sbin/ethtool -s $name wol g"\n'
)


def request(method: str, root, wolopts: int = G, sopass=None) -> _wol_persist.Request:
    return _wol_persist.Request(method, "eno1", MAC, wolopts, sopass, str(root))


def test_link_file_byte_for_byte_then_idempotent(tmp_path):
    path = tmp_path / "etc/systemd/network/70-ctys-pm-wol-eno1.link"
    checked = _wol_persist.persist(request("systemd-networkd", tmp_path), check_mode=True)
    assert checked.changed is True and not path.exists()
    assert checked.diff == {"before": "", "after": LINK_G, "before_header": str(path), "after_header": str(path)}
    applied = _wol_persist.persist(request("systemd-networkd", tmp_path))
    assert applied.changed is True and applied.path == str(path)
    assert path.read_bytes() == LINK_G.encode() and (path.stat().st_mode & 0o777) == 0o644
    assert _wol_persist.persist(request("systemd-networkd", tmp_path), check_mode=True).changed is False
    assert _wol_persist.persist(request("systemd-networkd", tmp_path)).changed is False


def test_udev_rule_byte_for_byte_and_a_hand_edit_is_repaired(tmp_path):
    path = tmp_path / "etc/udev/rules.d/70-ctys-pm-wol-eno1.rules"
    outcome = _wol_persist.persist(request("udev", tmp_path))
    assert outcome.changed and path.read_bytes() == UDEV_G.encode()
    assert outcome.warnings == [f"the udev rule runs /usr/sbin/ethtool at boot, which is not installed under {tmp_path}; install ethtool"]
    path.write_text(UDEV_G.replace("wol g", "wol d"))
    again = _wol_persist.persist(request("udev", tmp_path))
    assert again.changed and "wol d" in again.diff["before"] and path.read_bytes() == UDEV_G.encode()


def test_udev_rule_uses_the_ethtool_installed_under_the_root(tmp_path):
    (tmp_path / "sbin").mkdir()
    (tmp_path / "sbin/ethtool").write_text("")
    outcome = _wol_persist.persist(request("udev", tmp_path))
    text = (tmp_path / "etc/udev/rules.d/70-ctys-pm-wol-eno1.rules").read_text()
    assert 'RUN+="/sbin/ethtool -s $name wol g"' in text and outcome.warnings == []


def test_disabled_writes_off_rather_than_deleting(tmp_path):
    _wol_persist.persist(request("systemd-networkd", tmp_path))
    outcome = _wol_persist.persist(request("systemd-networkd", tmp_path, wolopts=0))
    text = (tmp_path / "etc/systemd/network/70-ctys-pm-wol-eno1.link").read_text()
    assert outcome.changed and text == LINK_G.replace("WakeOnLan=magic", "WakeOnLan=off")
    assert "WakeOnLan=magic\n" in outcome.diff["before"] and "WakeOnLan=off\n" in outcome.diff["after"]


def test_secureon_file_is_0600_and_the_password_never_appears_in_the_diff(tmp_path):
    outcome = _wol_persist.persist(request("systemd-networkd", tmp_path, G | S, SOPASS))
    path = tmp_path / "etc/systemd/network/70-ctys-pm-wol-eno1.link"
    assert path.read_text().endswith("WakeOnLan=magic secureon\nWakeOnLanPassword=a1:b2:c3:d4:e5:f6\n")
    assert (path.stat().st_mode & 0o777) == 0o600
    assert "a1:b2" not in repr(outcome.diff) and "WakeOnLanPassword=********" in outcome.diff["after"]
    changed = _wol_persist.persist(request("systemd-networkd", tmp_path, G | S, bytes(6)))
    assert changed.changed and "a1:b2" not in repr(changed.diff)  # the old password in the file is masked too
    rule = _wol_persist.persist(request("udev", tmp_path, G | S, SOPASS))
    assert "sopass ********" in rule.diff["after"] and "a1:b2" not in repr(rule.diff)


def test_filter_mode_cannot_be_expressed_by_systemd_or_networkmanager(tmp_path):
    with pytest.raises(PmInputError, match=r"^wol 'gf' cannot be made persistent with systemd \(no filter mode f\); drop f"):
        _wol_persist.persist(request("systemd-networkd", tmp_path, G | F))
    assert _wol_persist.persist(request("udev", tmp_path, G | F)).changed  # ethtool itself knows f


def test_an_earlier_link_file_for_the_same_nic_is_reported(tmp_path):
    folder = tmp_path / "etc/systemd/network"
    folder.mkdir(parents=True)
    (folder / "10-lan.link").write_text(f"[Match]\nMACAddress={MAC.upper()}\n\n[Link]\nName=lan0\n")
    (folder / "20-other.link").write_text("[Match]\nMACAddress=00:00:00:00:00:01\n")
    outcome = _wol_persist.persist(request("systemd-networkd", tmp_path))
    assert outcome.warnings == [
        f"{folder}/10-lan.link sorts before {folder}/70-ctys-pm-wol-eno1.link and names eno1; "
        "systemd applies only the first match, so add WakeOnLan= there"
    ]


def test_auto_chooses_link_files_where_systemd_udevd_reads_them_else_udev(tmp_path):
    assert _wol_persist.choose("eno1", str(tmp_path), None, None) == "udev"
    (tmp_path / "usr/lib/systemd/network").mkdir(parents=True)
    (tmp_path / "usr/lib/systemd/network/99-default.link").write_text("[Match]\nOriginalName=*\n")
    outcome = _wol_persist.persist(request("auto", tmp_path))
    assert outcome.method == "systemd-networkd" and outcome.path.endswith("70-ctys-pm-wol-eno1.link")


class Nmcli:
    """nmcli at its argv seam; -g prints bare values, as nmcli does."""

    def __init__(self, connection: str = "Wired connection 1", wol: str = "default", password: str = "") -> None:
        self.state = {"connection": connection, "wol": wol, "password": password}
        self.calls: List[List[str]] = []

    def __call__(self, argv: List[str]):
        self.calls.append(list(argv))
        args = argv[1:]
        if args == ["-g", "GENERAL.CONNECTION", "device", "show", "eno1"]:
            return 0, self.state["connection"] + "\n", ""
        if args[:3] == ["-g", "802-3-ethernet.wake-on-lan", "connection"]:
            return 0, self.state["wol"] + "\n", ""
        if args[:4] == ["-s", "-g", "802-3-ethernet.wake-on-lan-password", "connection"]:
            return 0, self.state["password"] + "\n", ""
        if args[:3] == ["connection", "modify", self.state["connection"]]:
            values: Dict[str, str] = dict(zip(args[3::2], args[4::2]))
            self.state["wol"] = values["802-3-ethernet.wake-on-lan"].replace(",", ", ")
            self.state["password"] = values.get("802-3-ethernet.wake-on-lan-password", self.state["password"])
            return 0, "", ""
        return 10, "", f"Error: unexpected {argv}"


def test_networkmanager_sets_the_connection_property_with_argv_then_is_idempotent(tmp_path):
    nmcli = Nmcli()
    checked = _wol_persist.persist(request("networkmanager", tmp_path), True, nmcli, "/usr/bin/nmcli")
    assert checked.changed and nmcli.state["wol"] == "default"
    assert checked.diff["before"] == "802-3-ethernet.wake-on-lan: default\n"
    assert checked.diff["after"] == "802-3-ethernet.wake-on-lan: magic\n"
    outcome = _wol_persist.persist(request("networkmanager", tmp_path), False, nmcli, "/usr/bin/nmcli")
    assert outcome.changed and outcome.path == "NetworkManager connection 'Wired connection 1'"
    assert ["/usr/bin/nmcli", "connection", "modify", "Wired connection 1", "802-3-ethernet.wake-on-lan", "magic"] in nmcli.calls
    assert not list(tmp_path.iterdir())  # NetworkManager keeps its own files; nothing under the root
    assert _wol_persist.persist(request("networkmanager", tmp_path), False, nmcli, "/usr/bin/nmcli").changed is False


def test_networkmanager_several_modes_secureon_and_disable(tmp_path):
    nmcli = Nmcli(wol="magic")
    outcome = _wol_persist.persist(request("networkmanager", tmp_path, U | G | S, SOPASS), False, nmcli, "/usr/bin/nmcli")
    assert outcome.changed and nmcli.state == {"connection": "Wired connection 1", "wol": "magic, unicast", "password": "a1:b2:c3:d4:e5:f6"}
    assert _wol_persist.persist(request("networkmanager", tmp_path, U | G | S, SOPASS), False, nmcli, "/usr/bin/nmcli").changed is False
    off = _wol_persist.persist(request("networkmanager", tmp_path, 0), False, nmcli, "/usr/bin/nmcli")
    assert off.changed and nmcli.state["wol"] == "none" and off.diff["after"] == "802-3-ethernet.wake-on-lan: none\n"


def test_networkmanager_password_that_cannot_be_read_is_cleared_and_shown_as_unknown(tmp_path):
    class SecretsRefused(Nmcli):
        def __call__(self, argv):
            if argv[1:3] == ["-s", "-g"]:
                self.calls.append(list(argv))
                return 4, "", "Error: secrets were not provided"
            return super().__call__(argv)

    nmcli = SecretsRefused(wol="magic")
    outcome = _wol_persist.persist(request("networkmanager", tmp_path), False, nmcli, "/usr/bin/nmcli")
    assert outcome.changed and outcome.diff["before"] == "802-3-ethernet.wake-on-lan: magic\n802-3-ethernet.wake-on-lan-password: unknown\n"
    assert nmcli.calls[-1][-2:] == ["802-3-ethernet.wake-on-lan-password", ""]


class OfflineNmcli:
    """One NetworkManager connection kept as a keyfile; the module's ``connection modify`` runs the real nmcli.

    ``nmcli --offline`` (NetworkManager 1.40+) applies the properties to a keyfile read from stdin and prints
    the result, with no daemon, so the keyfile shows what NetworkManager would store for the module's argv.
    Reads (``-g``) answer from that keyfile, with the flags' nicks joined by ", " (no NetworkManager daemon
    runs here to show nmcli's own display; the module's parser also takes "|" and spaces).
    """

    NICKS = {0x2: "phy", 0x4: "unicast", 0x8: "multicast", 0x10: "broadcast", 0x20: "arp", 0x40: "magic"}

    def __init__(self, nmcli: str) -> None:
        self.nmcli = nmcli
        added = subprocess.run([nmcli, "--offline", "connection", "add", "type", "ethernet", "con-name", "Wired connection 1",
                                "ifname", "eno1"], capture_output=True, text=True, timeout=30, check=True)
        self.keyfile = added.stdout

    def value(self, key: str) -> Optional[str]:
        match = re.search(rf"^{re.escape(key)}=(.*)$", self.keyfile, re.MULTILINE)
        return match.group(1) if match else None

    def __call__(self, argv: List[str]):
        args = argv[1:]
        if args == ["-g", "GENERAL.CONNECTION", "device", "show", "eno1"]:
            return 0, "Wired connection 1\n", ""
        if args[:3] == ["-g", "802-3-ethernet.wake-on-lan", "connection"]:
            flags = int(self.value("wake-on-lan") or 1)  # not written: NM_SETTING_WIRED_WAKE_ON_LAN_DEFAULT
            shown = "default" if flags == 1 else ", ".join(nick for bit, nick in sorted(self.NICKS.items()) if flags & bit) or "none"
            return 0, shown + "\n", ""
        if args[:4] == ["-s", "-g", "802-3-ethernet.wake-on-lan-password", "connection"]:
            return 0, (self.value("wake-on-lan-password") or "") + "\n", ""
        if args[:3] == ["connection", "modify", "Wired connection 1"]:
            modified = subprocess.run([self.nmcli, "--offline", "connection", "modify", *args[3:]], input=self.keyfile,
                                      capture_output=True, text=True, timeout=30, check=False)
            if modified.returncode == 0:
                self.keyfile = modified.stdout
            return modified.returncode, "", modified.stderr
        return 10, "", f"Error: unexpected {argv}"


@pytest.mark.skipif(shutil.which("nmcli") is None, reason="needs nmcli (Debian network-manager; make deps installs it)")
def test_networkmanager_argv_is_what_a_real_nmcli_stores(tmp_path):
    nmcli = OfflineNmcli(shutil.which("nmcli") or "")
    outcome = _wol_persist.persist(request("networkmanager", tmp_path, U | G | S, SOPASS), False, nmcli, nmcli.nmcli)
    assert outcome.changed
    assert nmcli.value("wake-on-lan") == str(0x4 | 0x40)  # NM_SETTING_WIRED_WAKE_ON_LAN_UNICAST | _MAGIC
    assert nmcli.value("wake-on-lan-password") == "a1:b2:c3:d4:e5:f6"
    assert _wol_persist.persist(request("networkmanager", tmp_path, U | G | S, SOPASS), False, nmcli, nmcli.nmcli).changed is False
    magic_only = _wol_persist.persist(request("networkmanager", tmp_path, G), False, nmcli, nmcli.nmcli)
    assert magic_only.changed and nmcli.value("wake-on-lan") == str(0x40)
    assert nmcli.value("wake-on-lan-password") is None  # a password left behind would keep SecureOn on
    assert magic_only.diff["before"] == "802-3-ethernet.wake-on-lan: magic, unicast\n802-3-ethernet.wake-on-lan-password: ********\n"
    assert magic_only.diff["after"] == "802-3-ethernet.wake-on-lan: magic\n"
    _wol_persist.persist(request("networkmanager", tmp_path, G | S, SOPASS), False, nmcli, nmcli.nmcli)
    # NetworkManager refuses a password without magic mode: disabling must drop it in the same call
    off = _wol_persist.persist(request("networkmanager", tmp_path, 0), False, nmcli, nmcli.nmcli)
    assert off.changed and nmcli.value("wake-on-lan") == "0"  # NM_SETTING_WIRED_WAKE_ON_LAN_NONE: disabled, not "ignore"
    assert nmcli.value("wake-on-lan-password") is None
    assert _wol_persist.persist(request("networkmanager", tmp_path, 0), False, nmcli, nmcli.nmcli).changed is False


def test_networkmanager_without_a_connection_or_without_nmcli_explains(tmp_path):
    with pytest.raises(PmStateError, match=r"^NetworkManager has no active connection on eno1; activate one or use persistent"):
        _wol_persist.persist(request("networkmanager", tmp_path), False, Nmcli(connection="--"), "/usr/bin/nmcli")
    with pytest.raises(PmStateError, match=r"needs nmcli, which is not installed"):
        _wol_persist.persist(request("networkmanager", tmp_path), False, None, None)


def test_auto_prefers_networkmanager_when_it_manages_the_interface_on_the_real_root():
    assert _wol_persist.choose("eno1", "/", Nmcli(), "/usr/bin/nmcli") == "networkmanager"


def test_a_root_that_cannot_be_written_is_one_sentence(tmp_path):
    blocker = tmp_path / "etc"
    blocker.write_text("a file where a folder should be")
    with pytest.raises(PmError) as caught:
        _wol_persist.persist(request("udev", tmp_path))
    assert caught.value.msg.endswith("cannot be written (Not a directory); run the task with become: true or check persistent_root")
    assert os.listdir(tmp_path) == ["etc"]
