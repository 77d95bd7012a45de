# Copyright: ctys.pm contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Read the guest listings of each hypervisor's own tool into :class:`Guest` records.

Pure functions, no commands run here: ``virsh list``, ``VBoxManage list``,
``vmrun list``, ``xl list`` and ``qm list`` as they really print (names with
spaces, names that overflow their column, inaccessible VirtualBox entries).
Every state is mapped to one vocabulary (:data:`OFF_STATES` and the rest), and
``running`` says whether the guest still holds live state that a host power-off
would lose.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from typing import Any, Dict, List, Optional

from ansible_collections.ctys.pm.plugins.module_utils._errors import PmUnsupportedError

# A guest is off only in one of these; anything else (paused, shutting down, ...) still runs.
OFF_STATES = ("shut off", "saved", "crashed")
INACCESSIBLE = "inaccessible"


@dataclass
class Guest:
    """One guest as its hypervisor reports it."""

    hypervisor: str  # libvirt, virtualbox, vmware, xen, proxmox
    name: str
    key: str  # what the hypervisor's commands address it by (name, UUID, .vmx path, domain id, VMID)
    state: str  # normalised, see OFF_STATES
    raw_state: str = ""
    id: Optional[str] = None

    @property
    def running(self) -> bool:
        return self.state not in OFF_STATES and self.state != INACCESSIBLE

    def result(self) -> Dict[str, Any]:
        return {
            "name": self.name,
            "hypervisor": self.hypervisor,
            "id": self.id,
            "state": self.state,
            "raw_state": self.raw_state,
            "running": self.running,
        }


def _bad_line(tool: str, line: str) -> PmUnsupportedError:
    shown = line if len(line) <= 120 else line[:117] + "..."
    return PmUnsupportedError(f"{tool} printed a line this module cannot read: {shown!r}; report it with the {tool} version")


# ----- libvirt -------------------------------------------------------------------
# virsh's words (virshDomainStateToString) and what they mean here
VIRSH_STATES = {
    "running": "running",
    "idle": "idle",  # VIR_DOMAIN_BLOCKED
    "blocked": "idle",
    "paused": "paused",
    "in shutdown": "shutting down",
    "shut off": "shut off",
    "crashed": "crashed",
    "pmsuspended": "suspended",  # guest RAM suspended (S3): the process still holds it
    "no state": "no state",
    "saved": "saved",  # only with --managed-save
}
_VIRSH_ROW = re.compile(r"^\s*(?P<id>-|\d+)\s+(?P<name>.*?\S)\s+(?P<state>" + "|".join(sorted(map(re.escape, VIRSH_STATES), key=len, reverse=True)) + r")\s*$")
# libvirt-python's virDomainState numbers, in the same words
LIBVIRT_STATE_CODES = {
    0: "no state",
    1: "running",
    2: "idle",
    3: "paused",
    4: "shutting down",
    5: "shut off",
    6: "crashed",
    7: "suspended",
}


def parse_virsh_list(text: str) -> List[Guest]:
    """``virsh list --all [--managed-save]`` (LC_ALL=C): a header, a rule, then ``Id Name State`` rows.

    The state is matched from the end against virsh's fixed words, so names
    with spaces and names that overflow their column (old virsh) both read right.
    """
    guests: List[Guest] = []
    header_seen = False
    for line in text.splitlines():
        stripped = line.strip()
        if not stripped:
            continue
        if not header_seen:
            if stripped.split()[:3] == ["Id", "Name", "State"]:
                header_seen = True
                continue
            raise _bad_line("virsh list", line)
        if set(stripped) == {"-"}:
            continue
        match = _VIRSH_ROW.match(line)
        if not match:
            raise _bad_line("virsh list", line)
        raw = match.group("state")
        domain_id = None if match.group("id") == "-" else match.group("id")
        name = match.group("name")
        guests.append(Guest("libvirt", name, name, VIRSH_STATES[raw], raw, domain_id))
    if not header_seen and text.strip():
        raise _bad_line("virsh list", text.strip().splitlines()[0])
    return guests


def libvirt_state(code: int, has_managed_save: bool = False) -> str:
    """libvirt-python's ``dom.state()[0]`` in this module's words."""
    state = LIBVIRT_STATE_CODES.get(int(code), "no state")
    if state == "shut off" and has_managed_save:
        return "saved"
    return state


# ----- VirtualBox ------------------------------------------------------------------
VBOX_STATES = {
    "powered off": "shut off",
    "poweroff": "shut off",
    "aborted": "crashed",  # the VM process died: nothing runs
    "saved": "saved",
    "running": "running",
    "paused": "paused",
    "stuck": "stuck",  # guru meditation: the process still holds the guest
    "starting": "starting",
    "stopping": "shutting down",
    "saving": "saving",
    "restoring": "starting",
    "teleported": "shut off",
    "teleporting": "running",
    "live snapshotting": "running",
    "deleting snapshot": "shut off",
}
_VBOX_SHORT = re.compile(r'^"(?P<name>.*)"\s+\{(?P<uuid>[0-9a-fA-F-]{36})\}\s*$')
_VBOX_BLOCK_START = ("Guest OS:", "Encryption:", "Groups:", "UUID:")


def parse_vbox_list(text: str, running: bool = False) -> List[Guest]:
    """``VBoxManage list vms`` or ``list runningvms``: ``"name" {uuid}`` per line.

    Names may hold spaces and quotes; an inaccessible VM prints as ``<inaccessible>``.
    With ``running`` (``list runningvms``) every entry is running; otherwise the
    state is unknown from this listing alone.
    """
    guests: List[Guest] = []
    for line in text.splitlines():
        if not line.strip():
            continue
        match = _VBOX_SHORT.match(line.strip())
        if not match:
            raise _bad_line("VBoxManage list", line)
        name, uuid = match.group("name"), match.group("uuid").lower()
        if name == "<inaccessible>":
            guests.append(Guest("virtualbox", name, uuid, INACCESSIBLE, INACCESSIBLE, uuid))
            continue
        state = "running" if running else "unknown"
        guests.append(Guest("virtualbox", name, uuid, state, state, uuid))
    return guests


def _vbox_blocks(lines: List[str]) -> List[List[str]]:
    """Split ``list --long vms`` into one block per VM.

    A VM starts at an unindented ``Name:`` whose next line is one of the VM's own
    keys; ``Name:`` lines of USB filters or shared folders are not VM starts.
    """
    blocks: List[List[str]] = []
    for index, line in enumerate(lines):
        if line.startswith("Name:"):
            following = next((candidate for candidate in lines[index + 1:index + 3] if candidate.strip()), "")
            if following.startswith(_VBOX_BLOCK_START):
                blocks.append([line])
                continue
        if blocks:
            blocks[-1].append(line)
        elif line.strip():
            raise _bad_line("VBoxManage list --long vms", line)
    return blocks


def parse_vbox_long(text: str) -> List[Guest]:
    """``VBoxManage list --long vms``: blocks of ``Key: value`` lines, one per VM."""
    guests: List[Guest] = []
    for block in _vbox_blocks(text.splitlines()):
        fields: Dict[str, str] = {}
        for line in block:
            if ":" in line and not line.startswith((" ", "\t")):
                key, value = line.split(":", 1)
                fields.setdefault(key.strip(), value.strip())
        name = fields.get("Name", "")
        uuid = fields.get("UUID", "").lower()
        if not re.match(r"^[0-9a-f-]{36}$", uuid):
            raise _bad_line("VBoxManage list --long vms", block[0])
        if name.startswith("<inaccessible"):
            guests.append(Guest("virtualbox", "<inaccessible>", uuid, INACCESSIBLE, INACCESSIBLE, uuid))
            continue
        raw = re.sub(r"\s*\(since .*$", "", fields.get("State", "")).strip()
        state = VBOX_STATES.get(raw.lower(), "unknown")
        guests.append(Guest("virtualbox", name, uuid, state, raw, uuid))
    return guests


def parse_vbox_machinereadable_state(text: str) -> str:
    """``VBoxManage showvminfo UUID --machinereadable``: its ``VMState="..."`` in this module's words."""
    for line in text.splitlines():
        if line.startswith("VMState="):
            raw = line.split("=", 1)[1].strip().strip('"')
            return VBOX_STATES.get(raw.lower(), "unknown")
    raise PmUnsupportedError("VBoxManage showvminfo printed no VMState line; report it with the VirtualBox version")


# ----- VMware ----------------------------------------------------------------------
_VMRUN_HEADER = re.compile(r"^Total running VMs:\s*(\d+)\s*$")


def parse_vmrun_list(text: str) -> List[Guest]:
    """``vmrun list``: ``Total running VMs: N`` then one .vmx path per running VM.

    vmrun knows only running VMs; each is named after its .vmx file.
    """
    lines = [line.rstrip("\r") for line in text.splitlines() if line.strip()]
    if not lines:
        return []
    match = _VMRUN_HEADER.match(lines[0].strip())
    if not match:
        raise _bad_line("vmrun list", lines[0])
    guests = []
    for line in lines[1:]:
        path = line.strip()
        if not path.lower().endswith(".vmx"):
            raise _bad_line("vmrun list", line)
        base = re.split(r"[\\/]", path)[-1]
        guests.append(Guest("vmware", os.path.splitext(base)[0], path, "running", "running", None))
    if len(guests) != int(match.group(1)):
        raise PmUnsupportedError(f"vmrun list announced {match.group(1)} running VMs but listed {len(guests)}; run it again or report it")
    return guests


# ----- Xen -------------------------------------------------------------------------
def xen_state(flags: str) -> str:
    """``xl list`` state flags (``r b p s c d``, ``-`` = not set) in this module's words."""
    if "d" in flags:
        return "dying"
    if "c" in flags:
        return "crashed"
    if "s" in flags:
        return "shut off"  # the guest OS has shut down; the domain is not yet torn down
    if "p" in flags:
        return "paused"
    if "b" in flags:
        return "idle"
    return "running"  # r, or ------ (runnable, waiting for a CPU)


_XL_STATE = re.compile(r"^[rbpscd-]{6}$")


def parse_xl_list(text: str) -> List[Guest]:
    """``xl list`` (or ``xm list``): ``Name ID Mem VCPUs State Time(s)``; Domain-0 (the host) is left out.

    Fields are read from the right, so a name may hold spaces.
    """
    guests: List[Guest] = []
    header_seen = False
    for line in text.splitlines():
        if not line.strip():
            continue
        if not header_seen:
            if line.split()[:2] == ["Name", "ID"]:
                header_seen = True
                continue
            raise _bad_line("xl list", line)
        parts = line.split()
        if len(parts) < 6 or not parts[-5].isdigit() or not _XL_STATE.match(parts[-2]):
            raise _bad_line("xl list", line)
        name = " ".join(parts[:-5])
        domid = parts[-5]
        if domid == "0":
            continue  # Domain-0 is the host itself
        guests.append(Guest("xen", name, domid, xen_state(parts[-2]), parts[-2], domid))
    return guests


# ----- Proxmox ---------------------------------------------------------------------
QM_STATES = {"running": "running", "stopped": "shut off", "paused": "paused", "suspended": "saved", "prelaunch": "starting"}


def parse_qm_list(text: str) -> List[Guest]:
    """``qm list``: ``VMID NAME STATUS MEM(MB) BOOTDISK(GB) PID``; read from both ends, names may hold spaces."""
    guests: List[Guest] = []
    header_seen = False
    for line in text.splitlines():
        if not line.strip():
            continue
        parts = line.split()
        if not header_seen:
            if parts[:2] == ["VMID", "NAME"]:
                header_seen = True
                continue
            raise _bad_line("qm list", line)
        if len(parts) < 6 or not parts[0].isdigit() or not parts[-1].isdigit():
            raise _bad_line("qm list", line)
        raw = parts[-4]
        name = " ".join(parts[1:-4])
        guests.append(Guest("proxmox", name, parts[0], QM_STATES.get(raw, "unknown"), raw, parts[0]))
    return guests
