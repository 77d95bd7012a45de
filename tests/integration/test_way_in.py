"""What a new user meets first, run as README.md writes it, against the lab.

* The module_defaults play of "Set BMC credentials once": power goes through ``group/ctys.pm.bmc``
  (the machine's own log says the BMC switched it off), and pm_wake in the same play, under the same
  defaults (``port`` and ``password`` of the BMC), still sends to UDP port 9 without a SecureOn
  password (tshark on the machine's wire, and the machine's NIC log).
* The ad-hoc recipe of "Short module names ad hoc": ``ansible localhost -m pm_wake`` with the
  ``ansible.cfg`` (or ``ANSIBLE_LIBRARY``) shown, the collection installed where ansible-galaxy puts it,
  wakes a machine.

The play, the ansible.cfg and the command line are cut out of README.md, so a README edit that
breaks them breaks this test.
"""

from __future__ import annotations

import json
import os
import re
import shlex
import subprocess
import time
from pathlib import Path
from typing import Dict, List

import pytest
import yaml

from pmtest.ansible_run import REPO_ROOT, VENV_BIN, ansible_env, run_playbook

pytestmark = [pytest.mark.lab, pytest.mark.skipif(os.geteuid() != 0, reason="the lab's namespaces need root")]

README = REPO_ROOT / "README.md"
BROADCAST = "198.18.255.255"  # the lab's directed broadcast (pm_wol_broadcast)


def readme_section(title: str) -> str:
    text = README.read_text(encoding="utf-8")
    match = re.search(rf"^##+ {re.escape(title)}\n(.*?)(?=^##+ )", text, re.S | re.M)  # "# " starts comments in code
    assert match, f"README.md has no section {title!r}"
    return match.group(1)


def code_blocks(section: str, language: str) -> List[str]:
    return re.findall(rf"^```{language}\n(.*?)^```", section, re.S | re.M)


@pytest.fixture(scope="module")
def lab(tmp_path_factory):
    from pmlab_lib.lab import Lab

    with Lab.up(machines=2, state="on", bmc="lab", boot_delay=0.3, shutdown_delay=0.2, lab_dir=tmp_path_factory.mktemp("wayin")) as lab:
        yield lab  # Lab.down() on leaving, also when a test failed


def machine_log(machine) -> List[str]:
    path = Path(machine.state_dir) / "machine.log"
    return path.read_text(encoding="utf-8").splitlines() if path.exists() else []


class BroadcastCapture:
    """tshark on the controller's side of the lab segment (the machine's own namespace loses its processes
    when the BMC switches it off): every UDP datagram to the lab's broadcast, its port, length and SecureOn."""

    def __init__(self, lab, count: int) -> None:
        self.errors = ""
        self.proc = lab.popen(
            ["tshark", "-i", "lab0", "-a", "duration:60", "-c", str(count), "-l", "-f", f"udp and dst host {BROADCAST}",
             "-T", "fields", "-e", "udp.dstport", "-e", "udp.length", "-e", "wol.mac", "-e", "wol.passwd"],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        )
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:  # tshark says "Capturing on" when it listens
            line = self.proc.stderr.readline()
            if "Capturing on" in line or not line:
                break

    def packets(self) -> List[Dict[str, str]]:
        try:
            out, self.errors = self.proc.communicate(timeout=90)
        finally:
            if self.proc.poll() is None:
                self.proc.kill()
                self.proc.wait()
        rows = []
        for line in out.splitlines():
            if line.strip():
                fields = (line.split("\t") + [""] * 4)[:4]
                rows.append(dict(zip(("port", "length", "mac", "password"), fields)))
        return rows


@pytest.mark.compat
def test_readme_module_defaults_play_powers_through_the_group_and_wakes_on_port_9(lab, tmp_path):
    blocks = [b for b in code_blocks(readme_section("Set BMC credentials once"), "yaml") if "group/ctys.pm.bmc" in b]
    assert len(blocks) == 1, "README's 'Set BMC credentials once' shows one play with group/ctys.pm.bmc"
    play_text = blocks[0]
    play = yaml.safe_load(play_text)
    defaults = play[0]["module_defaults"]["group/ctys.pm.bmc"]
    assert {"user", "password", "port"} <= set(defaults), "the play sets the BMC options that clash with pm_wake's"
    modules = [next(key for key in task if key.startswith("ctys.pm.")) for task in play[0]["tasks"]]
    assert modules == ["ctys.pm.pm_ipmi_power", "ctys.pm.pm_wake"], modules
    playbook = tmp_path / "readme_play.yml"
    playbook.write_text(play_text)

    m = lab.machines[0]
    assert m.control.status()["power"] == "on"
    # the lab's inventory, its machines as the README's group "servers"
    lab_inventory = yaml.safe_load(lab.inventory_path.read_text())
    hosts = lab_inventory["all"]["children"]["pm_lab"]["hosts"]
    inventory = tmp_path / "inventory.yml"
    inventory.write_text(json.dumps({"all": {"children": {"servers": {"hosts": {m.name: hosts[m.name]}}}}}))
    assert hosts[m.name]["pm_bmc_port"] != 9, "the lab's BMC port must differ from the WoL port to show which one is used"

    log_before = len(machine_log(m))
    wol_before = len(m.control.call("wol_log")["packets"])
    capture = BroadcastCapture(lab, count=3)  # pm_wake's default repeat
    run = run_playbook(playbook, inventory=inventory, netns=lab.controller_netns, timeout=300)
    packets = capture.packets()
    assert run.rc == 0, run.stdout[-3000:] + run.stderr[-2000:]

    power_task, wake_task = [t["result"] for t in run.tasks if t["host"] == m.name]
    assert power_task["changed"] is True and power_task["power_state"] == "off", power_task
    assert wake_task["changed"] is True and wake_task["reachable"] is True, wake_task
    # the machine itself: switched off by its BMC, then on by a magic packet
    events = [line.split(" ", 1)[1] for line in machine_log(m)[log_before:] if " power " in line]
    assert events == ["power off (bmc)", "power on (wake-on-lan udp)"], events
    assert m.control.status()["power"] == "on"
    assert lab.ipmitool(m, "chassis", "power", "status").stdout.strip() == "Chassis Power is on"
    # on the wire: UDP port 9, 8 + 102 bytes, no SecureOn password (the BMC's port and password stayed with the BMC)
    assert packets, f"tshark saw no datagram to the broadcast: {capture.errors}"
    assert all(p["port"] == "9" and p["length"] == "110" and p["password"] == "" for p in packets), packets
    assert all(set(p["mac"].split(",")) == {m.mac} for p in packets), packets
    nic_log = m.control.call("wol_log")["packets"][wol_before:]
    assert nic_log and all(record["password"] is None for record in nic_log), nic_log


def adhoc_recipe():
    section = readme_section("Short module names ad hoc")
    configs = code_blocks(section, "ini")
    commands = [line for block in code_blocks(section, "sh") for line in block.splitlines() if line.startswith("ansible ")]
    assert len(configs) == 1 and len(commands) == 1, "README shows one ansible.cfg and one ad-hoc command line"
    library = re.search(r"^library = (\S+)$", configs[0], re.M)
    env_var = re.search(r"`ANSIBLE_LIBRARY=(\S+) ansible localhost -m pm_wake -a '\.\.\.'`", section)
    assert library and env_var and library.group(1) == env_var.group(1)
    return configs[0], commands[0], library.group(1)


@pytest.mark.compat
@pytest.mark.parametrize("way", ["ansible.cfg", "ANSIBLE_LIBRARY"])
def test_readme_adhoc_short_name_wakes_a_machine(lab, tmp_path, way):
    config, command, library = adhoc_recipe()
    argv = shlex.split(command)
    assert argv[:5] == ["ansible", "localhost", "-m", "pm_wake", "-a"] and len(argv) == 6, argv
    m = lab.machines[1]
    m.control.call("power", action="off")
    m.wait_os("down")

    # a user's machine: the collection where ansible-galaxy installs it (~/.ansible/collections), no other
    # Ansible settings than the README's; only the example's MAC and broadcast become the lab's
    home = tmp_path / "home"
    installed = home / ".ansible" / "collections" / "ansible_collections" / "ctys"
    installed.mkdir(parents=True)
    (installed / "pm").symlink_to(REPO_ROOT)
    workdir = tmp_path / "work"
    workdir.mkdir(mode=0o700)
    env = ansible_env({"HOME": str(home)})
    for name in ("ANSIBLE_COLLECTIONS_PATH", "ANSIBLE_CONFIG"):
        env.pop(name, None)
    if way == "ansible.cfg":
        (workdir / "ansible.cfg").write_text(config)
    else:
        env["ANSIBLE_LIBRARY"] = library.replace("~", str(home), 1)
    argv[0] = str(VENV_BIN / "ansible")
    argv[5] = f"mac={m.mac} broadcast={BROADCAST} host={m.ip} wait_timeout=30"

    proc = subprocess.run(["ip", "netns", "exec", lab.controller_netns] + argv, cwd=workdir, env=env,
                          capture_output=True, text=True, timeout=120, stdin=subprocess.DEVNULL, check=False)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-2000:]
    assert proc.stdout.startswith("localhost | CHANGED => "), proc.stdout
    result = json.loads(proc.stdout.split(" => ", 1)[1])
    assert result["packets"] == [{"mac": m.mac, "destination": f"{BROADCAST}:9/udp", "bytes": 102, "count": 3}]
    assert result["reachable"] is True
    assert m.control.status()["power"] == "on"
    assert lab.ssh(m, "hostname").stdout.strip() == m.name


def test_without_the_recipe_the_short_name_does_not_resolve(tmp_path):
    """The README's reason for the recipe: an ad-hoc short name alone is not found (no packet is sent)."""
    home = tmp_path / "home"
    installed = home / ".ansible" / "collections" / "ansible_collections" / "ctys"
    installed.mkdir(parents=True)
    (installed / "pm").symlink_to(REPO_ROOT)
    env = ansible_env({"HOME": str(home)})
    for name in ("ANSIBLE_COLLECTIONS_PATH", "ANSIBLE_CONFIG", "ANSIBLE_LIBRARY"):
        env.pop(name, None)
    proc = subprocess.run([str(VENV_BIN / "ansible"), "localhost", "-m", "pm_wake", "-a", "mac=02:00:00:00:00:01 broadcast=127.0.0.1"],
                          cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120, stdin=subprocess.DEVNULL, check=False)
    output = proc.stdout + proc.stderr
    # ansible-core 2.19: "Cannot resolve 'pm_wake' to an action or module"; 2.16: "The module pm_wake was not found"
    assert proc.returncode != 0 and re.search(r"Cannot resolve 'pm_wake'|The module pm_wake was not found", output), output
