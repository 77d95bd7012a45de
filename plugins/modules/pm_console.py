#!/usr/bin/python
# Copyright: ctys.pm contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
module: pm_console
short_description: Talk to a machine's console over IPMI Serial-over-LAN
version_added: 0.1.0
description:
  - Opens the IPMI Serial-over-LAN (SOL) console of a physical machine through its BMC and runs a
    small expect-style script on it (O(steps)), or records what the console prints (O(capture)).
  - This reaches a machine where SSH cannot help - watching it boot, answering a boot loader or a
    login prompt, rescuing a machine with a broken network.
  - IPMI only, also on BMCs that speak Redfish, because Redfish has no standard serial-console stream (managers only advertise
    SSH, Telnet or IPMI consoles), so O(protocol) other than V(ipmi) is refused and the Redfish options are ignored.
  - Like ctys-PM's CONSOLE, an SOL session held by someone else is taken over by default (O(takeover)).
  - With O(console_command) nothing is opened; the module returns the command line a person would run
    to attach interactively (the ctys console types CLI, XTERM, GTERM, EMACS and VNC, plus SOL).
  - Every step and the whole task are bounded (O(steps[].timeout), O(timeout)); on a timeout the module
    fails and returns the output seen so far.
  - Runs where the task runs, normally the controller (C(delegate_to=localhost)); it needs C(pyghmi) there.
requirements:
  - pyghmi >= 1.6.19, < 1.7 (Python library) on the host that runs the task, normally the controller.
extends_documentation_fragment:
  - ctys.pm.bmc
  - ctys.pm.attributes
  - ctys.pm.attributes.ACTIONGROUP_BMC
  - ctys.pm.attributes.NETWORK
attributes:
  check_mode:
    support: full
    details: Connects and activates SOL to prove the console is reachable, sends nothing and does not wait for O(steps[].expect).
  diff_mode:
    support: none
options:
  steps:
    description:
      - The conversation, in order. Each step sends O(steps[].send) (if given), then waits for
        O(steps[].expect) (if given).
      - Mutually exclusive with O(capture) and O(console_command).
    type: list
    elements: dict
    suboptions:
      send:
        description:
          - Text to type. C(\\r) is Enter, C(\\n), C(\\t), C(\\e) (Escape), C(\\xNN) a byte; C(^C) is Ctrl-C
            (any of C(^A) to C(^Z), C(^[)); C(^^) is a literal caret.
          - In YAML, write the backslash escapes in single quotes or double the backslash.
        type: str
      expect:
        description:
          - A Python regular expression (multi-line mode) searched in the output that arrives after
            this step's send, with terminal escape sequences removed.
        type: str
      timeout:
        description: Seconds to wait for O(steps[].expect).
        type: float
        default: 30
  capture:
    description:
      - Record the console for O(duration) seconds, or until O(until) matches, without sending anything.
    type: bool
    default: false
  duration:
    description: Seconds to record with O(capture).
    type: float
    default: 10
  until:
    description: Stop recording as soon as this regular expression matches the output.
    type: str
  raw:
    description: Return the output as received, with terminal escape sequences.
    type: bool
    default: false
  log_file:
    description:
      - Append the session's output to this file (on the host that runs the task, normally the controller).
    type: path
  takeover:
    description:
      - Deactivate an SOL session that another client holds before opening ours (ctys behaviour).
      - With V(false), such a session makes the task fail with a clear message.
    type: bool
    default: true
  timeout:
    description: Seconds the whole task may take, login included.
    type: float
    default: 120
  console_command:
    description:
      - Return the command line to attach interactively instead of connecting.
      - V(sol) gives an C(ipmitool) SOL command that reads the password from the environment variable
        E(IPMI_PASSWORD) (C(-E)), never from the command line.
      - V(ssh), V(xterm), V(gnome-terminal), V(emacs) and V(vnc) give the usual commands for O(target_host).
    type: str
    choices: [sol, ssh, xterm, gnome-terminal, emacs, vnc]
  target_host:
    description: The machine's own address, for O(console_command) types other than V(sol).
    type: str
  target_user:
    description: User for O(console_command) types that log in over SSH.
    type: str
  vnc_display:
    description: VNC display number for O(console_command=vnc).
    type: int
    default: 0
notes:
  - pyghmi's SOL client negotiates the cipher suite itself (17, then 3 when the BMC answers that it has no
    suite 17); O(cipher_suite) is checked but not forced for consoles.
seealso:
  - module: ctys.pm.pm_ipmi_power
author:
  - ctys.pm maintainers (@ctys-pm)
"""

EXAMPLES = r"""
- name: Log in on the serial console and read the kernel version
  ctys.pm.pm_console:
    bmc: "{{ pm_bmc_host }}"
    user: "{{ pm_bmc_user }}"
    password: "{{ pm_bmc_password }}"
    steps:
      - send: '\r'
        expect: 'login: $'
        timeout: 20
      - send: 'root\r'
        expect: 'Password: $'
      - send: '{{ console_root_password }}\r'
        expect: '# $'
      - send: 'uname -r\r'
        expect: '\d+\.\d+\S*'
  delegate_to: localhost
  no_log: true  # the script contains a password

- name: Watch a machine boot until its login prompt (power it on in another task or play)
  ctys.pm.pm_console:
    bmc: "{{ pm_bmc_host }}"
    user: "{{ pm_bmc_user }}"
    password: "{{ pm_bmc_password }}"
    capture: true
    duration: 300
    until: 'login: $'
    log_file: "/var/log/consoles/{{ inventory_hostname }}.log"
  delegate_to: localhost

- name: Send Ctrl-C to a hung boot script, fail if someone else is using the console
  ctys.pm.pm_console:
    bmc: "{{ pm_bmc_host }}"
    user: "{{ pm_bmc_user }}"
    password: "{{ pm_bmc_password }}"
    takeover: false
    steps:
      - send: '^C'
  delegate_to: localhost

- name: Print the command to attach to the console by hand
  ctys.pm.pm_console:
    bmc: "{{ pm_bmc_host }}"
    user: "{{ pm_bmc_user }}"
    console_command: sol
  delegate_to: localhost
  register: attach

- name: Show it
  ansible.builtin.debug:
    msg: "IPMI_PASSWORD=... {{ attach.command }}"
"""

RETURN = r"""
output:
  description: What the console printed, escape sequences removed unless O(raw=true).
  returned: when connected (also on failure after a timeout)
  type: str
  sample: "lab01 login: root\nPassword: \nroot@lab01:~# uname -r\n6.1.0-18-amd64\n"
steps:
  description: Per step, the step's expect pattern (or send text) and the text that matched it.
  returned: when O(steps) is given
  type: list
  elements: dict
  sample: [{"step": "login: $", "matched": "login: "}]
sent_bytes:
  description: Number of bytes typed on the console.
  returned: when connected
  type: int
  sample: 12
matched:
  description: Whether O(until) matched before O(duration) ran out.
  returned: with O(capture)
  type: bool
  sample: true
elapsed:
  description: Seconds the task took.
  returned: always
  type: float
  sample: 2.41
command:
  description: The command line to attach interactively (O(console_command)).
  returned: with O(console_command)
  type: str
  sample: ipmitool -I lanplus -H 192.0.2.10 -p 623 -U admin -E -L ADMINISTRATOR sol activate
argv:
  description: The same command as a list of arguments.
  returned: with O(console_command)
  type: list
  elements: str
  sample: ["ssh", "-t", "root@lab01"]
environment:
  description: Environment variables the command expects (values are never returned).
  returned: with O(console_command)
  type: list
  elements: str
  sample: ["IPMI_PASSWORD"]
"""

import time

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.ctys.pm.plugins.module_utils._bmc.options import bmc_argument_spec, require_ipmi
from ansible_collections.ctys.pm.plugins.module_utils._ipmi.console import run_console_bounded
from ansible_collections.ctys.pm.plugins.module_utils._module_runner import run_module


def main() -> None:
    argument_spec = bmc_argument_spec()
    argument_spec.update(
        steps={
            "type": "list",
            "elements": "dict",
            "options": {
                "send": {"type": "str"},
                "expect": {"type": "str"},
                "timeout": {"type": "float", "default": 30},
            },
        },
        capture={"type": "bool", "default": False},
        duration={"type": "float", "default": 10},
        until={"type": "str"},
        raw={"type": "bool", "default": False},
        log_file={"type": "path"},
        takeover={"type": "bool", "default": True},
        timeout={"type": "float", "default": 120},
        console_command={"type": "str", "choices": ["sol", "ssh", "xterm", "gnome-terminal", "emacs", "vnc"]},
        target_host={"type": "str"},
        target_user={"type": "str"},
        vnc_display={"type": "int", "default": 0},
    )
    module = AnsibleModule(
        argument_spec=argument_spec,
        mutually_exclusive=[("steps", "capture", "console_command")],
        supports_check_mode=True,
    )
    started = time.monotonic()

    def backend():
        require_ipmi(module.params, "ctys.pm.pm_console")
        result = run_console_bounded(dict(module.params), check_mode=module.check_mode)
        result["elapsed"] = round(time.monotonic() - started, 3)
        return result

    run_module(module, backend)


if __name__ == "__main__":
    main()
