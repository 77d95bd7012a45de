# Copyright: ctys.pm contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Find and control the guests of every hypervisor on this host (ctys STACKER's VM plugins).

One :class:`Backend` per hypervisor: libvirt (through libvirt-python when it
imports, else ``virsh``), VirtualBox (``VBoxManage``), VMware (``vmrun``), Xen
(``xl``) and Proxmox VE (``qm``). Each lists its guests with their real state
and can ask one to shut down (ACPI), destroy it, save it to disk and start it.
Commands go through :class:`Commands`, the one seam tests replace.
"""

from __future__ import annotations

from typing import Any, Callable, List, Optional, Sequence, Tuple

from ansible_collections.ctys.pm.plugins.module_utils._errors import PmConnectionError, PmInputError, PmUnsupportedError
from ansible_collections.ctys.pm.plugins.module_utils._hypervisors_parse import (
    Guest,
    libvirt_state,
    parse_qm_list,
    parse_vbox_long,
    parse_virsh_list,
    parse_vmrun_list,
    parse_xl_list,
)

HYPERVISORS = ("libvirt", "virtualbox", "vmware", "xen", "proxmox")
C_LOCALE = {"LC_ALL": "C", "LANG": "C"}


class Commands:
    """Runs argv lists (never a shell) and finds programs; modules pass AnsibleModule's methods."""

    def __init__(self, run: Callable[[List[str]], Tuple[int, str, str]], which: Callable[[str], Optional[str]]) -> None:
        self._run = run
        self._which = which

    def run(self, argv: List[str]) -> Tuple[int, str, str]:
        return self._run(list(argv))

    def which(self, program: str) -> Optional[str]:
        return self._which(program)

    @classmethod
    def from_module(cls, module: Any) -> "Commands":
        return cls(lambda argv: module.run_command(argv, environ_update=C_LOCALE), module.get_bin_path)


def _first_line(text: str) -> str:
    lines = [line.strip() for line in (text or "").splitlines() if line.strip()]
    return lines[0] if lines else "no message"


class Backend:
    """One hypervisor on this host."""

    name = ""
    can_save = True
    # True when the stop request blocks until the guest is off (vmrun stop soft, qm shutdown)
    blocking_requests = False

    def list(self) -> List[Guest]:
        raise NotImplementedError

    def shutdown(self, guest: Guest, timeout: float) -> None:
        raise NotImplementedError

    def destroy(self, guest: Guest) -> None:
        raise NotImplementedError

    def save(self, guest: Guest) -> None:
        raise PmUnsupportedError(f"{self.name} cannot save guest '{guest.name}' to disk")

    def start(self, guest: Guest) -> None:
        raise NotImplementedError


class CommandBackend(Backend):
    """A hypervisor driven by its command-line tool."""

    tool = ""

    def __init__(self, commands: Commands, program: str) -> None:
        self.commands = commands
        self.program = program

    def _call(self, args: Sequence[str], what: str) -> str:
        rc, out, err = self.commands.run([self.program] + list(args))
        if rc != 0:
            raise PmConnectionError(f"{self.tool} {what} failed (rc={rc}): {_first_line(err or out)}")
        return out


class Virsh(CommandBackend):
    name, tool = "libvirt", "virsh"

    def __init__(self, commands: Commands, program: str, uri: Optional[str]) -> None:
        super().__init__(commands, program)
        self.uri = uri

    def _call(self, args: Sequence[str], what: str) -> str:
        prefix = ["-c", self.uri] if self.uri else []
        return super()._call(prefix + list(args), what)

    def list(self) -> List[Guest]:
        return parse_virsh_list(self._call(["list", "--all", "--managed-save"], "list"))

    def shutdown(self, guest: Guest, timeout: float) -> None:
        self._call(["shutdown", "--domain", guest.key], f"shutdown of '{guest.name}'")

    def destroy(self, guest: Guest) -> None:
        self._call(["destroy", "--domain", guest.key], f"destroy of '{guest.name}'")

    def save(self, guest: Guest) -> None:
        self._call(["managedsave", "--domain", guest.key], f"managedsave of '{guest.name}'")

    def start(self, guest: Guest) -> None:
        verb = "resume" if guest.state == "paused" else "start"
        self._call([verb, "--domain", guest.key], f"{verb} of '{guest.name}'")


class LibvirtApi(Backend):
    """libvirt through libvirt-python: one connection, no process per call."""

    name = "libvirt"

    def __init__(self, libvirt: Any, uri: Optional[str]) -> None:
        self.libvirt = libvirt
        libvirt.registerErrorHandler(lambda _ctx, _err: None, None)  # errors come back as exceptions, not on stderr
        try:
            self.conn = libvirt.open(uri)
        except libvirt.libvirtError as error:
            raise PmConnectionError(f"libvirt connection to {uri or 'the default URI'} failed: {error.get_error_message()}") from None

    def _guest(self, dom: Any) -> Guest:
        code = dom.state()[0]
        saved = False
        if code == 5:  # shut off: a managed save image makes it "saved"
            try:
                saved = bool(dom.hasManagedSaveImage(0))
            except self.libvirt.libvirtError:
                saved = False
        state = libvirt_state(code, saved)
        domain_id = dom.ID()
        return Guest("libvirt", dom.name(), dom.UUIDString(), state, state, str(domain_id) if domain_id >= 0 else None)

    def list(self) -> List[Guest]:
        guests = []
        try:
            for dom in self.conn.listAllDomains(0):
                try:
                    guests.append(self._guest(dom))
                except self.libvirt.libvirtError:
                    continue  # undefined while we looked: it is gone
        except self.libvirt.libvirtError as error:
            raise PmConnectionError(f"libvirt could not list domains: {error.get_error_message()}") from None
        return guests

    def _act(self, guest: Guest, what: str, action: Callable[[Any], Any]) -> None:
        try:
            action(self.conn.lookupByUUIDString(guest.key))
        except self.libvirt.libvirtError as error:
            raise PmConnectionError(f"libvirt {what} of '{guest.name}' failed: {error.get_error_message()}") from None

    def shutdown(self, guest: Guest, timeout: float) -> None:
        self._act(guest, "shutdown", lambda dom: dom.shutdown())

    def destroy(self, guest: Guest) -> None:
        self._act(guest, "destroy", lambda dom: dom.destroy())

    def save(self, guest: Guest) -> None:
        self._act(guest, "managed save", lambda dom: dom.managedSave(0))

    def start(self, guest: Guest) -> None:
        if guest.state == "paused":
            self._act(guest, "resume", lambda dom: dom.resume())
        else:
            self._act(guest, "start", lambda dom: dom.create())


class VBoxManage(CommandBackend):
    name, tool = "virtualbox", "VBoxManage"

    def list(self) -> List[Guest]:
        return parse_vbox_long(self._call(["list", "--long", "vms"], "list"))

    def shutdown(self, guest: Guest, timeout: float) -> None:
        self._call(["controlvm", guest.key, "acpipowerbutton"], f"ACPI power button of '{guest.name}'")

    def destroy(self, guest: Guest) -> None:
        self._call(["controlvm", guest.key, "poweroff"], f"poweroff of '{guest.name}'")

    def save(self, guest: Guest) -> None:
        self._call(["controlvm", guest.key, "savestate"], f"savestate of '{guest.name}'")

    def start(self, guest: Guest) -> None:
        if guest.state == "paused":
            self._call(["controlvm", guest.key, "resume"], f"resume of '{guest.name}'")
        else:
            self._call(["startvm", guest.key, "--type", "headless"], f"start of '{guest.name}'")


class Vmrun(CommandBackend):
    name, tool = "vmware", "vmrun"
    blocking_requests = True

    def list(self) -> List[Guest]:
        return parse_vmrun_list(self._call(["list"], "list"))

    def shutdown(self, guest: Guest, timeout: float) -> None:
        self._call(["stop", guest.key, "soft"], f"soft stop of '{guest.name}'")

    def destroy(self, guest: Guest) -> None:
        self._call(["stop", guest.key, "hard"], f"hard stop of '{guest.name}'")

    def save(self, guest: Guest) -> None:
        self._call(["suspend", guest.key, "soft"], f"suspend of '{guest.name}'")

    def start(self, guest: Guest) -> None:
        verb = ["unpause", guest.key] if guest.state == "paused" else ["start", guest.key, "nogui"]
        self._call(verb, f"start of '{guest.name}'")


class Xl(CommandBackend):
    name, tool = "xen", "xl"
    can_save = False  # xl save needs a checkpoint file per domain and xl create its config

    def list(self) -> List[Guest]:
        return parse_xl_list(self._call(["list"], "list"))

    def shutdown(self, guest: Guest, timeout: float) -> None:
        self._call(["shutdown", guest.key], f"shutdown of '{guest.name}'")

    def destroy(self, guest: Guest) -> None:
        self._call(["destroy", guest.key], f"destroy of '{guest.name}'")

    def start(self, guest: Guest) -> None:
        if guest.state != "paused":
            raise PmUnsupportedError(f"xl cannot start '{guest.name}' without its configuration file; start it with xl create")
        self._call(["unpause", guest.key], f"unpause of '{guest.name}'")


class Qm(CommandBackend):
    name, tool = "proxmox", "qm"
    blocking_requests = True

    def list(self) -> List[Guest]:
        return parse_qm_list(self._call(["list"], "list"))

    def shutdown(self, guest: Guest, timeout: float) -> None:
        # qm shutdown waits; its own timeout ends it (and frees the VM lock) before we force
        self._call(["shutdown", guest.key, "--timeout", str(max(1, int(timeout)))], f"shutdown of '{guest.name}'")

    def destroy(self, guest: Guest) -> None:
        self._call(["stop", guest.key], f"stop of '{guest.name}'")

    def save(self, guest: Guest) -> None:
        self._call(["suspend", guest.key, "--todisk", "1"], f"suspend to disk of '{guest.name}'")

    def start(self, guest: Guest) -> None:
        verb = "resume" if guest.state == "paused" else "start"
        self._call([verb, guest.key], f"{verb} of '{guest.name}'")


def import_libvirt() -> Any:
    """libvirt-python, or None when it is not installed for this interpreter."""
    try:
        import libvirt  # pylint: disable=import-outside-toplevel
    except ImportError:
        return None
    return libvirt


def check_hypervisors(names: Optional[Sequence[str]]) -> Optional[List[str]]:
    if not names:
        return None
    for name in names:
        if name not in HYPERVISORS:
            raise PmInputError(f"hypervisors '{name}' is not valid; use some of {', '.join(HYPERVISORS)}")
    return list(names)


def discover(
    commands: Commands, uri: Optional[str] = None, wanted: Optional[Sequence[str]] = None, libvirt_loader: Callable[[], Any] = import_libvirt
) -> Tuple[List[Tuple[Backend, List[Guest]]], List[str]]:
    """The hypervisors present on this host with their guests as first seen, and notes on those skipped.

    A hypervisor asked for by name (``wanted``, or libvirt with a ``uri``) that
    cannot be reached is an error; one merely looked for is skipped.
    """
    asked = check_hypervisors(wanted)
    candidates = asked or list(HYPERVISORS)
    found: List[Tuple[Backend, List[Guest]]] = []
    notes: List[str] = []

    def insist(name: str) -> bool:
        return bool(asked and name in asked) or (name == "libvirt" and bool(uri))

    def keep(backend: Backend) -> None:
        try:
            guests = backend.list()
        except PmConnectionError as error:
            if insist(backend.name):
                raise
            notes.append(f"{backend.name} skipped: {error.msg}")
            return
        found.append((backend, guests))

    if "libvirt" in candidates:
        module = libvirt_loader()
        if module is not None:
            try:
                keep(LibvirtApi(module, uri))
            except PmConnectionError as error:
                if insist("libvirt"):
                    raise
                notes.append(f"libvirt skipped: {error.msg}")
        else:
            program = commands.which("virsh")
            if program:
                keep(Virsh(commands, program, uri))
            elif insist("libvirt"):
                raise PmUnsupportedError("libvirt was asked for but neither libvirt-python nor virsh is installed; install libvirt-clients")
    tools = {"virtualbox": ("VBoxManage", VBoxManage), "vmware": ("vmrun", Vmrun), "xen": ("xl", Xl), "proxmox": ("qm", Qm)}
    for name in candidates:
        if name == "libvirt":
            continue
        if name == "xen" and uri and uri.startswith("xen"):
            notes.append("xen skipped: libvirt already drives Xen through its xen URI")
            continue
        program_name, backend_class = tools[name]
        program = commands.which(program_name)
        if program:
            keep(backend_class(commands, program))
        elif insist(name):
            raise PmUnsupportedError(f"{name} was asked for but {program_name} is not installed here")
    return found, notes
