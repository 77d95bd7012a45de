"""Golden test of the ctys inventory plugin: ctys files -> `ansible-inventory --list` JSON, compared with stored JSON.

The input files under targets/inventory_ctys/files carry every quirk of the formats
(first #@#KEY wins, tabs and single quotes, MAGICID-IGNORE/-NOENUM, MAC<n>/IP<n> pairs with
comma-separated tuples, writer/reader aliases, one enum.fdb record per interface, TCP filled from
macmap by MAC, multipath VMs, group files with #include, user@host'(options)', CONTEXT) and
malformed lines, which must be skipped with a warning naming file and line.
Set CTYS_GOLDEN_UPDATE=1 to rewrite the stored files after a deliberate change (then review the diff).
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest

from pmtest.ansible_run import VENV_BIN, ansible_env

TARGET = Path(__file__).resolve().parent / "targets" / "inventory_ctys"
INVENTORY = TARGET / "inventory.ctys.yml"
UPDATE = os.environ.get("CTYS_GOLDEN_UPDATE") == "1"

pytestmark = pytest.mark.compat  # output and messages as every supported ansible-core gives them


def _run(argv, cwd=TARGET, **env):
    return subprocess.run(argv, cwd=cwd, env=ansible_env(env), capture_output=True, text=True, timeout=120, check=False)


def _normalise(text: str) -> str:
    return text.replace(str(TARGET / "files"), "@FILES@")


def _squeezed(text: str) -> str:
    """Without whitespace: ansible-core before 2.19 wraps messages at 80 columns, even inside a path."""
    return _normalise(re.sub(r"\s+", "", text))


def _warnings(stderr: str):
    # one warning per line; ansible may wrap long lines, so join continuation lines first. Sorted without
    # whitespace: a wrap inside a path (where it falls depends on the clone's path) must not change the order.
    joined = re.sub(r"\n(?!\[WARNING\]|\Z)", " ", stderr)
    return sorted((_normalise(line) for line in joined.splitlines() if "ctys inventory:" in line), key=_squeezed)


def _compare(name: str, actual: str, *, ignore_whitespace: bool = False) -> None:
    stored = TARGET / name
    if UPDATE:
        stored.write_text(actual)
    expected = stored.read_text()
    if ignore_whitespace:
        actual, expected = _squeezed(actual), _squeezed(expected)
    assert actual == expected, f"{name} differs; run with CTYS_GOLDEN_UPDATE=1 and review the diff"


def test_list_matches_stored_json():
    proc = _run([str(VENV_BIN / "ansible-inventory"), "-i", str(INVENTORY), "--list"])
    assert proc.returncode == 0, proc.stderr
    data = json.loads(_normalise(proc.stdout))
    data["_meta"].pop("profile", None)  # ansible-core's serialisation profile (2.19+), not the plugin's output
    _compare("expected-list.json", json.dumps(data, indent=2, sort_keys=True) + "\n")
    _compare("expected-warnings.txt", "\n".join(_warnings(proc.stderr)) + "\n", ignore_whitespace=True)


def test_every_malformed_line_is_named_and_the_rest_loads():
    proc = _run([str(VENV_BIN / "ansible-inventory"), "-i", str(INVENTORY), "--list"])
    warnings = _squeezed(proc.stderr)
    for where in ("enum.fdb:4:", "enum.fdb:7:", "enum.fdb:8:", "macmap.fdb:5:", "macmap.fdb:6:", "lab05-pm.conf:27:",
                  "lab05-pm.conf:30:", "lab05-pm.conf:31:", "ethers:4:", "all-labs:7:", "all-labs:3:"):
        assert where in warnings, where
    hosts = json.loads(proc.stdout)["_meta"]["hostvars"]
    assert {"lab07", "lab08", "lab09", "lab10", "lab11", "hidden", "MARKER_LABEL"}.isdisjoint(hosts)
    assert {"lab02", "lab03", "lab04", "lab05", "lab06", "tst-qemu1", "tst-xen1", "tst-vbox1"} <= set(hosts)


def test_template_strings_in_files_are_not_evaluated():
    proc = _run([str(VENV_BIN / "ansible"), "tst-qemu1:tst-vbox1", "-i", str(INVENTORY), "-c", "local", "-m", "ansible.builtin.debug",
                 "-a", "msg={{ pm_dist }}|{{ pm_osrel | default('') }}"], ANSIBLE_CALLBACK_RESULT_FORMAT="json")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert '"msg": "{{lookup(\'env\',\'HOME\')}}|"' in proc.stdout
    assert '"msg": "openSUSE|{{7*6}}"' in proc.stdout
    assert "|42" not in proc.stdout and os.environ.get("HOME", "/root") + "|" not in proc.stdout


def test_missing_file_named_explicitly_is_an_error(tmp_path):
    config = tmp_path / "broken.ctys.yml"
    config.write_text(f"plugin: ctys.pm.ctys\ndb_paths: [{TARGET / 'files' / 'db'}]\nethers: {tmp_path / 'no-such-ethers'}\n")
    proc = _run([str(VENV_BIN / "ansible-inventory"), "-i", str(config), "--list"], cwd=tmp_path,
                ANSIBLE_INVENTORY_UNPARSED_FAILED="1", ANSIBLE_INVENTORY_ENABLED="ctys.pm.ctys")
    assert proc.returncode != 0
    assert _squeezed("ethers '") in _squeezed(proc.stderr)
    assert _squeezed("no-such-ethers' does not exist; give an existing") in _squeezed(proc.stderr)


def test_constructed_options_and_cache(tmp_path):
    cache = tmp_path / "cache"
    config = tmp_path / "constructed.ctys.yml"
    files = TARGET / "files"
    config.write_text(
        "plugin: ctys.pm.ctys\n"
        f"db_paths: [{files / 'db'}]\n"
        f"groups_paths: [{files / 'groups'}]\n"
        "compose:\n  pm_wol_port: \"9\"\n  short_dist: pm_dist | default('none') | lower\n"
        "groups:\n  wol_ready: pm_wol_capable | default(false)\n"
        "keyed_groups:\n  - key: pm_session_type | default('none')\n    prefix: stype\n"
        "cache: true\ncache_plugin: ansible.builtin.jsonfile\n"
        f"cache_connection: {cache}\n"
    )
    first = _run([str(VENV_BIN / "ansible-inventory"), "-i", str(config), "--list"], cwd=tmp_path)
    assert first.returncode == 0, first.stderr
    data = json.loads(first.stdout)
    assert data["wol_ready"]["hosts"] == ["lab02"]
    assert sorted(data["stype_QEMU"]["hosts"]) == ["tst-qemu1"]
    lab02 = data["_meta"]["hostvars"]["lab02"]
    # a value computed from file data stays unsafe
    assert lab02["short_dist"] == {"__ansible_unsafe": "centos"}
    assert lab02["pm_wol_port"] in (9, "9")  # "9" where ansible-core < 2.19 renders templates without native types
    uncached = tmp_path / "uncached.ctys.yml"
    uncached.write_text(config.read_text().split("cache: true")[0])
    assert json.loads(_run([str(VENV_BIN / "ansible-inventory"), "-i", str(uncached), "--list"], cwd=tmp_path).stdout) == data
    second = _run([str(VENV_BIN / "ansible-inventory"), "-i", str(config), "--list"], cwd=tmp_path)
    assert json.loads(second.stdout) == data
    # the warm run reads the cache rather than the files: a value changed in the cache shows
    (written,) = cache.iterdir()
    written.write_text(written.read_text().replace("192.168.1.12", "192.0.2.99"))
    third = json.loads(_run([str(VENV_BIN / "ansible-inventory"), "-i", str(config), "--list"], cwd=tmp_path).stdout)
    assert third["_meta"]["hostvars"]["lab02"]["ansible_host"] == {"__ansible_unsafe": "192.0.2.99"}


def test_a_rewritten_source_file_replaces_the_cached_inventory(tmp_path):
    db, cache = tmp_path / "db", tmp_path / "cache"
    shutil.copytree(TARGET / "files" / "db", db)
    config = tmp_path / "cached.ctys.yml"
    config.write_text(f"plugin: ctys.pm.ctys\ndb_paths: [{db}]\ngroups_paths: []\n"
                      f"cache: true\ncache_plugin: ansible.builtin.jsonfile\ncache_connection: {cache}\n")

    def lab02_address():
        run = _run([str(VENV_BIN / "ansible-inventory"), "-i", str(config), "--host", "lab02"], cwd=tmp_path)
        assert run.returncode == 0, run.stderr
        return json.loads(run.stdout)["ansible_host"]

    assert lab02_address() in ("192.168.1.12", {"__ansible_unsafe": "192.168.1.12"})
    for name in ("enum.fdb", "macmap.fdb"):
        (db / name).write_text((db / name).read_text().replace("192.168.1.12", "192.0.2.77"))
    assert lab02_address() in ("192.0.2.77", {"__ansible_unsafe": "192.0.2.77"})  # the cache did not hide the change
    assert len(list(cache.iterdir())) == 1, sorted(p.name for p in cache.iterdir())  # replaced, not piled up
