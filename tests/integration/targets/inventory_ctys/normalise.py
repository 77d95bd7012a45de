"""Normalise ansible-inventory --list output and the stored expected-list.json for comparison.

Usage: python3 normalise.py FILES_DIR EXPECTED ACTUAL EXPECTED_OUT ACTUAL_OUT
"""

from __future__ import annotations

import json
import sys


def unwrap(value):
    """Remove ansible-core 2.19's {"__ansible_unsafe": ...} markers."""
    if isinstance(value, dict):
        if set(value) == {"__ansible_unsafe"}:
            return value["__ansible_unsafe"]
        return {key: unwrap(item) for key, item in value.items()}
    if isinstance(value, list):
        return [unwrap(item) for item in value]
    return value


def main(files_dir, expected_path, actual_path, expected_out, actual_out):
    with open(actual_path, encoding="utf-8") as handle:
        actual = json.loads(handle.read().replace(files_dir, "@FILES@"))
    with open(expected_path, encoding="utf-8") as handle:
        expected = json.load(handle)
    actual.get("_meta", {}).pop("profile", None)  # ansible-core's serialisation profile (2.19+)
    if "__ansible_unsafe" not in json.dumps(actual):  # ansible-core before 2.19 prints no unsafe markers
        expected = unwrap(expected)
    for data, path in ((expected, expected_out), (actual, actual_out)):
        with open(path, "w", encoding="utf-8") as handle:
            handle.write(json.dumps(data, indent=2, sort_keys=True) + "\n")


if __name__ == "__main__":
    main(*sys.argv[1:6])
