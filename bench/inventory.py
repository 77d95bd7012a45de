"""Benchmark the ctys.pm.ctys inventory plugin on 10,000 machines.

Writes enum.fdb and macmap.fdb for BENCH_INVENTORY_MACHINES machines (default
10,000), then times ``ansible-inventory --list`` and its peak memory for:

* the plugin without a cache, cold (jsonfile cache enabled but empty, so the
  run also writes it) and with that cache warm;
* the same hosts and variables as a static YAML inventory (skipped with
  ``BENCH_INVENTORY_SKIP_YAML=1``, it alone takes about a minute);
* the same as a JSON inventory script (``_meta`` included);

and the plugin's own parsing (``collect_sources`` + ``build_inventory``) in
process, in CPU seconds. Prints a table with ratios and the goals, then the
ceiling: the time ``ansible-inventory`` spends outside reading its source
(``InventoryManager.parse_sources``), for the plugin's listing (values unsafe)
and the script's (values trusted). No plugin, however fast, beats that time.
Run: ``make bench`` (no root needed).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Dict, List, Tuple

import yaml

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT / ".build" / "collections"), str(ROOT / "tests")]

from ansible_collections.ctys.pm.plugins.module_utils._ctys.formats import EnumRecord  # noqa: E402
from ansible_collections.ctys.pm.plugins.plugin_utils.ctys_inventory import (  # noqa: E402
    build_inventory,
    collect_sources,
)
from pmtest.ansible_run import VENV_BIN, ansible_env, without_unsafe_markers  # noqa: E402

MACHINES = int(os.environ.get("BENCH_INVENTORY_MACHINES", "10000"))
SKIP_YAML = os.environ.get("BENCH_INVENTORY_SKIP_YAML") == "1"
PARSE_GOAL = 0.3  # CPU seconds for 10,000 machines
YAML_GOAL = 8.0  # times faster than the static YAML inventory

# ansible-inventory run in one python process that also reports, on its last stderr line, the seconds
# InventoryManager.parse_sources took (config, plugin loading and the source itself).
_TIMING_DRIVER = """
import atexit, sys, time
from ansible.cli import inventory
from ansible.inventory.manager import InventoryManager
original, spent = InventoryManager.parse_sources, []
def timed(self, *args, **kwargs):
    started = time.monotonic()
    try:
        return original(self, *args, **kwargs)
    finally:
        spent.append(time.monotonic() - started)
InventoryManager.parse_sources = timed
atexit.register(lambda: sys.stderr.write(f"\\nparse_sources_seconds={sum(spent)}\\n"))
sys.argv[0] = "ansible-inventory"
inventory.main()
"""


def write_db(folder: Path, count: int) -> None:
    """One PM record per machine in enum.fdb (TCP left empty: filled from macmap.fdb, as ctys does)."""
    enum_lines: List[str] = []
    macmap_lines: List[str] = []
    for index in range(count):
        name = f"node{index:05d}"
        mac = f"02:C7:{(index >> 16) & 0xff:02X}:{(index >> 8) & 0xff:02X}:{index & 0xff:02X}:01"
        ip = f"10.{(index >> 16) & 0xff}.{(index >> 8) & 0xff}.{index & 0xff}"
        enum_lines.append(EnumRecord(
            host=name, session_type="PM", label=name, id="/etc/ctys.d/pm.conf", uuid=f"{index:032x}", mac=mac,
            dist="debian", distrel="12", os="Linux", osrel="6.1.0-13-amd64", category="PM", sshport="22",
            netname=f"{name}.lab.", arch="x86_64", vcpu="8", vram="32019M", ifname="eth0", netmask="255.0.0.0",
            gateway="10.0.0.1", hwcap="CPU:8xGenuineIntel-6-158-10-12288KB-3700MHz-VMX,RAM:32019M,SWAP:976M",
        ).to_line())
        macmap_lines.append(f"{name};{mac};{ip};")
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "enum.fdb").write_text("\n".join(sorted(enum_lines)) + "\n")
    (folder / "macmap.fdb").write_text("\n".join(sorted(macmap_lines)) + "\n")


def timed_inventory(source: Path, env: Dict[str, str]) -> Tuple[float, float, dict]:
    """Wall seconds, peak RSS in MB and the parsed output of one ``ansible-inventory --list``."""
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        started = time.monotonic()
        proc = subprocess.Popen([str(VENV_BIN / "ansible-inventory"), "-i", str(source), "--list"], env=env, stdout=out, stderr=err)
        _pid, status, usage = os.wait4(proc.pid, 0)  # this child's own peak RSS, not the largest so far
        elapsed = time.monotonic() - started
        proc.returncode = os.waitstatus_to_exitcode(status)
        out.seek(0)
        err.seek(0)
        if proc.returncode != 0:
            raise SystemExit(f"ansible-inventory -i {source} failed: {err.read()[-2000:].decode(errors='replace')}")
        return elapsed, usage.ru_maxrss / 1024, json.loads(out.read())


def outside_parse_seconds(source: Path, env: Dict[str, str]) -> float:
    """Wall seconds of one ``ansible-inventory --list`` minus what reading the source took."""
    started = time.monotonic()
    proc = subprocess.run([str(VENV_BIN / "python"), "-c", _TIMING_DRIVER, "-i", str(source), "--list"],
                          env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, check=False)
    elapsed = time.monotonic() - started
    last_line = proc.stderr.strip().rsplit("\n", 1)[-1]
    if proc.returncode != 0 or not last_line.startswith("parse_sources_seconds="):
        raise SystemExit(f"timed ansible-inventory -i {source} failed: {proc.stderr[-2000:]}")
    return elapsed - float(last_line.partition("=")[2])


def main() -> int:
    env = ansible_env()
    with tempfile.TemporaryDirectory() as tmp_name:
        tmp = Path(tmp_name)
        write_db(tmp / "db", MACHINES)

        # CPU seconds of this process: the figure does not depend on what else the machine runs
        started = time.process_time()
        data = build_inventory(collect_sources(db_paths=[str(tmp / "db")], groups_paths=[]))
        parse_seconds = time.process_time() - started
        assert len(data["hosts"]) == MACHINES, len(data["hosts"])

        config = tmp / "bench.ctys.yml"
        config.write_text(f"plugin: ctys.pm.ctys\ndb_paths: [{tmp / 'db'}]\ngroups_paths: []\n")
        uncached = timed_inventory(config, env)
        cached_config = tmp / "cached.ctys.yml"
        cached_config.write_text(config.read_text() + f"cache: true\ncache_plugin: ansible.builtin.jsonfile\ncache_connection: {tmp / 'cache'}\n")
        cold = timed_inventory(cached_config, env)  # cache empty: parses and writes it
        warm = timed_inventory(cached_config, env)
        if cold[2] != uncached[2] or warm[2] != uncached[2]:
            raise SystemExit("the cached runs list other hosts or variables than the run without a cache")

        listing = without_unsafe_markers(uncached[2])
        static: Dict[str, dict] = {"all": {"children": {}}}
        for group, body in listing.items():
            if group in ("_meta", "all"):
                continue
            static["all"]["children"][group] = {"hosts": {host: listing["_meta"]["hostvars"].get(host, {}) if group == "ctys_pm" else None
                                                          for host in body.get("hosts", [])}}
        yaml_path = tmp / "static.yml"
        yaml_path.write_text(yaml.dump(static, Dumper=getattr(yaml, "CSafeDumper", yaml.SafeDumper), default_flow_style=False))
        script = tmp / "inventory_script.py"
        (tmp / "listing.json").write_text(json.dumps(listing))
        script.write_text(f"#!{sys.executable}\nimport sys\nsys.stdout.write(open({str(tmp / 'listing.json')!r}).read())\n")
        script.chmod(0o755)
        json_script = timed_inventory(script, env)
        ceilings = {"plugin": outside_parse_seconds(config, env), "script": outside_parse_seconds(script, env)}
        runs = [("no cache", uncached), ("cold", cold), ("warm", warm), ("script", json_script)]
        if not SKIP_YAML:
            yaml_env = dict(env, ANSIBLE_INVENTORY_ENABLED="yaml")
            runs.append(("yaml", timed_inventory(yaml_path, yaml_env)))
        for name, run in runs:
            hosts = len(without_unsafe_markers(run[2])["_meta"]["hostvars"])
            assert hosts == MACHINES, f"{name}: {hosts} hosts"

    static_yaml = dict(runs).get("yaml")
    print(f"ansible-inventory --list, {MACHINES} machines (enum.fdb + macmap.fdb)")
    print(f"{'route':<38}{'seconds':>9}{'peak MB':>9}{'vs YAML':>9}{'vs script':>11}")
    labels = {"no cache": "ctys.pm.ctys plugin, no cache", "cold": "ctys.pm.ctys plugin, cold (cache empty)",
              "warm": "ctys.pm.ctys plugin, cache warm", "script": "JSON inventory script", "yaml": "static YAML inventory"}
    for name, (seconds, peak, _output) in runs:
        versus_yaml = f"{static_yaml[0] / seconds:8.1f}x" if static_yaml else f"{'-':>9}"
        print(f"{labels[name]:<38}{seconds:9.2f}{peak:9.0f}{versus_yaml}{json_script[0] / seconds:10.2f}x")
    parse_verdict = "met" if parse_seconds < PARSE_GOAL else "NOT met"
    print(f"plugin's own parsing (collect_sources + build_inventory): {parse_seconds:.3f} CPU s (goal < {PARSE_GOAL} s: {parse_verdict})")
    cold_verdict = "met" if cold[0] <= json_script[0] else "NOT met"
    print(f"plugin cold vs JSON script: {cold[0]:.2f} s vs {json_script[0]:.2f} s (goal: no slower: {cold_verdict})")
    if static_yaml:
        yaml_verdict = "met" if static_yaml[0] / cold[0] >= YAML_GOAL else "NOT met"
        print(f"plugin cold vs static YAML: {static_yaml[0] / cold[0]:.1f}x (goal >= {YAML_GOAL:.0f}x: {yaml_verdict})")
    print("ansible-inventory's time outside reading the source (a plugin that parsed in no time would take this long):")
    for route, label in (("plugin", "plugin's listing, values unsafe"), ("script", "script's listing, values trusted")):
        versus_yaml = f", {static_yaml[0] / ceilings[route]:.1f}x faster than static YAML at best" if static_yaml else ""
        print(f"  {label}: {ceilings[route]:.2f} s{versus_yaml}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
