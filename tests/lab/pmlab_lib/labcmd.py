"""The lab's stand-in for poweroff, halt, reboot, shutdown, init, telinit, systemctl and wall.

Bind-mounted over the real commands inside a simulated machine's mount
namespace: a poweroff typed over SSH into a lab machine must stop that
machine, never the real computer, and a wall must reach that machine's
console, never the real computer's terminals. The machine's control socket path is
written into the copy of this file that the lab binds (CONTROL_SOCKET).
"""

import json
import os
import socket
import sys

CONTROL_SOCKET = "@CONTROL_SOCKET@"


def method_for(command, args):
    if command in ("poweroff", "halt", "reboot"):
        return command
    if command == "shutdown":
        return "reboot" if "-r" in args or "--reboot" in args else "poweroff"
    if command in ("init", "telinit"):
        return {"0": "poweroff", "6": "reboot"}.get(args[0] if args else "", None)
    if command == "systemctl":
        verbs = [a for a in args if not a.startswith("-")]
        if verbs and verbs[0] in ("poweroff", "halt", "reboot", "kexec"):
            return "reboot" if verbs[0] in ("reboot", "kexec") else verbs[0]
    return None


def wall_message(args, stdin):
    """wall [-n] [-t SECONDS] [-g GROUP] [MESSAGE...]: the message, from the arguments or standard input."""
    words, skip = [], False
    for arg in args:
        if skip:
            skip = False
        elif arg in ("-t", "--timeout", "-g", "--group"):
            skip = True
        elif not (arg.startswith("-") and not words):
            words.append(arg)
    return " ".join(words) if words else stdin.read()


def tell(request):
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as conn:
        conn.settimeout(5)
        conn.connect(CONTROL_SOCKET)
        conn.sendall(json.dumps(request).encode() + b"\n")
        conn.recv(65536)


def main():
    command = os.path.basename(sys.argv[0])
    if command == "wall":
        tell({"op": "wall", "message": wall_message(sys.argv[1:], sys.stdin)})
        return 0
    method = method_for(command, sys.argv[1:])
    if method is None:
        sys.stderr.write(f"pmlab: '{command} {' '.join(sys.argv[1:])}' is not available in a lab machine\n")
        return 1
    tell({"op": "os_shutdown", "method": method})
    sys.stdout.write(f"pmlab: {method} requested\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
