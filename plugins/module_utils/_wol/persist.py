# Copyright: ctys.pm contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Make a NIC's Wake-on-LAN flags survive reboots: NetworkManager, a systemd .link file, or a udev rule.

ctys sets only the volatile register ("not needed when WoL is set persistently by
the OS"); this writes the OS's own configuration instead.  Files go under
``root`` (``/``; an image or a test folder otherwise) and are rewritten only when
their bytes differ.  A SecureOn password is written to the file (mode 0600) but
never shown in a diff.
"""

from __future__ import annotations

import os
import re
import tempfile
from dataclasses import dataclass, field
from typing import Any, Callable, Dict, List, Optional, Tuple

from ansible_collections.ctys.pm.plugins.module_utils._errors import (
    PmError,
    PmInputError,
    PmStateError,
)
from ansible_collections.ctys.pm.plugins.module_utils._wol.bits import (
    WAKE_MAGICSECURE,
    WOL_LETTERS,
    letters,
)

RunFn = Callable[[List[str]], Tuple[int, str, str]]
METHODS = ("networkmanager", "systemd-networkd", "udev")
HIDDEN = "********"

# letter -> (NetworkManager flag, systemd WakeOnLan= value)
_NAMES = {
    "p": ("phy", "phy"),
    "u": ("unicast", "unicast"),
    "m": ("multicast", "multicast"),
    "b": ("broadcast", "broadcast"),
    "a": ("arp", "arp"),
    "g": ("magic", "magic"),
    "s": ("magic", "secureon"),  # NetworkManager: magic plus wake-on-lan-password
    "f": (None, None),  # filters: neither NetworkManager nor systemd can express them
}
if "".join(_NAMES) != WOL_LETTERS:  # pragma: no cover - guards edits of either table
    raise AssertionError("_NAMES must name every letter of bits.WOL_BITS, in order")


@dataclass
class Request:
    method: str
    interface: str
    mac: str
    wolopts: int
    sopass: Optional[bytes] = None
    root: str = "/"


@dataclass
class Outcome:
    method: str
    path: str
    changed: bool
    diff: Dict[str, Any]
    warnings: List[str] = field(default_factory=list)


def _sopass_text(sopass: Optional[bytes]) -> str:
    return ":".join(f"{octet:02x}" for octet in (sopass or b"\0" * 6))


def _names(request: Request, column: int) -> List[str]:
    names: List[str] = []
    for letter in letters(request.wolopts):
        if letter == "d":
            continue
        name = _NAMES[letter][column]
        if name is None:
            owner = "NetworkManager" if column == 0 else "systemd"
            raise PmInputError(f"wol '{letters(request.wolopts)}' cannot be made persistent with {owner} (no filter mode f); drop f or use persistent: udev")
        if name not in names:
            names.append(name)
    return names


def under_root(root: str, path: str) -> str:
    return os.path.join(root or "/", path.lstrip("/"))


def choose(interface: str, root: str, run_command: Optional[RunFn], nmcli: Optional[str]) -> str:
    """``auto``: NetworkManager if it manages the interface, else a .link file where systemd-udevd
    reads them (a 99-default.link is installed), else a udev rule."""
    if (root or "/") == "/" and run_command and nmcli and nm_connection(interface, run_command, nmcli):
        return "networkmanager"
    for folder in ("usr/lib/systemd/network", "lib/systemd/network"):
        if os.path.exists(os.path.join(under_root(root, folder), "99-default.link")):
            return "systemd-networkd"
    return "udev"


# ---------------------------------------------------------------- files

def link_path(request: Request) -> str:
    return under_root(request.root, f"/etc/systemd/network/70-ctys-pm-wol-{request.interface}.link")


def link_content(request: Request, sopass_shown: bool = True) -> str:
    values = _names(request, 1) or ["off"]
    lines = [
        f"# Managed by ctys.pm.pm_wol_flag: Wake-on-LAN of {request.interface} survives reboots.",
        "# systemd-udevd applies only the first .link file that matches, so the policies of",
        "# 99-default.link are repeated here to keep the interface's name and MAC address.",
        "[Match]",
        f"MACAddress={request.mac}",
        "",
        "[Link]",
        "NamePolicy=keep kernel database onboard slot path",
        "AlternativeNamesPolicy=database onboard slot path",
        "MACAddressPolicy=persistent",
        f"WakeOnLan={' '.join(values)}",
    ]
    if request.wolopts & WAKE_MAGICSECURE:
        lines.append(f"WakeOnLanPassword={_sopass_text(request.sopass) if sopass_shown else HIDDEN}")
    return "\n".join(lines) + "\n"


def udev_path(request: Request) -> str:
    return under_root(request.root, f"/etc/udev/rules.d/70-ctys-pm-wol-{request.interface}.rules")


def ethtool_in(root: str) -> str:
    for candidate in ("/usr/sbin/ethtool", "/sbin/ethtool", "/usr/bin/ethtool"):
        if os.path.exists(under_root(root, candidate)):
            return candidate
    return "/usr/sbin/ethtool"


def udev_content(request: Request, sopass_shown: bool = True) -> str:
    command = f"{ethtool_in(request.root)} -s $name wol {letters(request.wolopts)}"
    if request.wolopts & WAKE_MAGICSECURE:
        command += f" sopass {_sopass_text(request.sopass) if sopass_shown else HIDDEN}"
    return (
        f"# Managed by ctys.pm.pm_wol_flag: Wake-on-LAN of {request.interface} survives reboots.\n"
        f'ACTION=="add", SUBSYSTEM=="net", ATTR{{address}}=="{request.mac}", RUN+="{command}"\n'
    )


def _read(path: str) -> Optional[str]:
    try:
        with open(path, encoding="utf-8", errors="replace") as stream:
            return stream.read()
    except (FileNotFoundError, NotADirectoryError):
        return None  # absent; if the folder cannot exist either, writing says so
    except OSError as error:
        raise PmError(f"{path} cannot be read ({error.strerror}); check persistent_root and permissions") from None


def _write(path: str, content: str, mode: int) -> None:
    folder = os.path.dirname(path)
    try:
        os.makedirs(folder, mode=0o755, exist_ok=True)
        handle, temporary = tempfile.mkstemp(prefix=".ctys-pm-", dir=folder)
        try:
            with os.fdopen(handle, "w", encoding="utf-8") as stream:
                stream.write(content)
            os.chmod(temporary, mode)
            os.replace(temporary, path)  # atomic: udev never reads half a file
        except BaseException:
            if os.path.exists(temporary):
                os.unlink(temporary)
            raise
    except OSError as error:
        raise PmError(f"{path} cannot be written ({error.strerror}); run the task with become: true or check persistent_root") from None


def _mode(path: str) -> Optional[int]:
    try:
        return os.stat(path).st_mode & 0o777
    except OSError:
        return None


_SECRETS = re.compile(r"(WakeOnLanPassword=|sopass )[0-9A-Fa-f:.]+")


def _mask_secret(text: Optional[str], request: Request) -> str:
    """The text with every SecureOn password replaced, also an older one still in the file."""
    if not text:
        return ""
    if request.sopass:
        text = text.replace(_sopass_text(request.sopass), HIDDEN)
    return _SECRETS.sub(lambda match: match.group(1) + HIDDEN, text)


def _file(request: Request, path: str, content: str, shown: str, check_mode: bool) -> Outcome:
    before = _read(path)
    mode = 0o600 if request.wolopts & WAKE_MAGICSECURE else 0o644
    changed = before != content or _mode(path) != mode
    if changed and not check_mode:
        _write(path, content, mode)
    diff = {"before": _mask_secret(before, request), "after": shown, "before_header": path, "after_header": path}
    return Outcome(request.method, path, changed, diff)


def _shadowing_links(request: Request, path: str) -> List[str]:
    """Other .link files that sort before ours and name this NIC: systemd would apply them instead."""
    folder = os.path.dirname(path)
    try:
        entries = sorted(os.listdir(folder))
    except OSError:
        return []
    found = []
    for entry in entries:
        if not entry.endswith(".link") or entry >= os.path.basename(path):
            continue
        text = (_read(os.path.join(folder, entry)) or "").lower()
        if request.mac.lower() in text or f"name={request.interface}".lower() in text:
            found.append(os.path.join(folder, entry))
    return found


# ---------------------------------------------------------------- NetworkManager

def nm_connection(interface: str, run_command: RunFn, nmcli: str) -> Optional[str]:
    rc, out, _err = run_command([nmcli, "-g", "GENERAL.CONNECTION", "device", "show", interface])
    name = out.strip() if rc == 0 else ""
    return name if name and name != "--" else None


def parse_nm_flags(text: str) -> List[str]:
    """``nmcli -g 802-3-ethernet.wake-on-lan`` output as a sorted list of flag names (none: [])."""
    words = [word for word in text.replace(",", " ").replace("|", " ").split() if word]
    return sorted(set(words) - {"none", "disable", "disabled", "--", "0", "0x0"})


def _nm(request: Request, check_mode: bool, run_command: Optional[RunFn], nmcli: Optional[str]) -> Outcome:
    if not (run_command and nmcli):
        raise PmStateError("persistent 'networkmanager' needs nmcli, which is not installed; use persistent: systemd-networkd or udev")
    connection = nm_connection(request.interface, run_command, nmcli)
    if not connection:
        raise PmStateError(
            f"NetworkManager has no active connection on {request.interface}; activate one or use persistent: systemd-networkd or udev"
        )
    rc, out, err = run_command([nmcli, "-g", "802-3-ethernet.wake-on-lan", "connection", "show", connection])
    if rc != 0:
        raise PmError(f"nmcli could not read connection '{connection}' ({err.strip() or 'exit ' + str(rc)})")
    before = parse_nm_flags(out)
    wanted = sorted(set(_names(request, 0)))
    # A password left from SecureOn would keep it on, and NetworkManager refuses one without magic mode:
    # so it is cleared whenever s is not asked for.
    rc, out, _err = run_command([nmcli, "-s", "-g", "802-3-ethernet.wake-on-lan-password", "connection", "show", connection])
    password_before: Optional[str] = out.strip().lower() if rc == 0 else None  # None: could not be read
    if password_before == "--":
        password_before = ""
    password_wanted = _sopass_text(request.sopass) if request.wolopts & WAKE_MAGICSECURE else ""
    value = ",".join(wanted) or "none"
    argv = [nmcli, "connection", "modify", connection, "802-3-ethernet.wake-on-lan", value]
    if password_before != password_wanted:
        argv += ["802-3-ethernet.wake-on-lan-password", password_wanted]
    changed = before != wanted or password_before != password_wanted
    path = f"NetworkManager connection '{connection}'"
    if changed and not check_mode:
        rc, _out, err = run_command(argv)
        if rc != 0:
            raise PmError(f"nmcli could not set 802-3-ethernet.wake-on-lan on '{connection}' ({_safe(err, request)})")
    diff = {
        "before": _nm_diff_text(before, password_before),
        "after": _nm_diff_text(wanted, password_wanted),
        "before_header": path,
        "after_header": path,
    }
    return Outcome("networkmanager", path, changed, diff)


def _nm_diff_text(flags: List[str], password: Optional[str]) -> str:
    text = f"802-3-ethernet.wake-on-lan: {', '.join(flags) or 'none'}\n"
    if password != "":  # the password itself is never shown
        text += f"802-3-ethernet.wake-on-lan-password: {HIDDEN if password else 'unknown'}\n"
    return text


def _safe(text: str, request: Request) -> str:
    return _mask_secret(text.strip(), request) or "no message"


# ---------------------------------------------------------------- entry point

def persist(
    request: Request,
    check_mode: bool = False,
    run_command: Optional[RunFn] = None,
    nmcli: Optional[str] = None,
) -> Outcome:
    if request.wolopts & WAKE_MAGICSECURE and not request.sopass:
        raise PmInputError("wol contains s (SecureOn) but sopass is missing; give sopass or drop s from wol")
    method = request.method
    if method == "auto":
        method = choose(request.interface, request.root, run_command, nmcli)
        request = Request(method, request.interface, request.mac, request.wolopts, request.sopass, request.root)
    if method == "networkmanager":
        return _nm(request, check_mode, run_command, nmcli)
    if method == "systemd-networkd":
        path = link_path(request)
        outcome = _file(request, path, link_content(request), link_content(request, sopass_shown=False), check_mode)
        outcome.warnings += [
            f"{other} sorts before {path} and names {request.interface}; systemd applies only the first match, so add WakeOnLan= there"
            for other in _shadowing_links(request, path)
        ]
        return outcome
    if method == "udev":
        path = udev_path(request)
        outcome = _file(request, path, udev_content(request), udev_content(request, sopass_shown=False), check_mode)
        tool = ethtool_in(request.root)
        if not os.path.exists(under_root(request.root, tool)):
            outcome.warnings.append(f"the udev rule runs {tool} at boot, which is not installed under {request.root}; install ethtool")
        return outcome
    raise PmInputError(f"persistent '{method}' is not valid; use none, auto, {', '.join(METHODS)}")
