#!/usr/bin/env bash
# Golden test (ansible-test layout): ctys files -> ansible-inventory --list, compared with expected-list.json.
# Same scenario as tests/integration/test_inventory_golden.py. The output of ansible-core 2.19 and later
# is the reference; normalise.py drops what differs between ansible-core releases only (_meta.profile, and
# the unsafe markers that ansible-inventory before 2.19 does not print).
set -euo pipefail
cd "$(dirname "$0")"
here="$(pwd)"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
ansible-inventory -i inventory.ctys.yml --list 2>/dev/null > "$work/list.json"
python3 normalise.py "$here/files" expected-list.json "$work/list.json" "$work/expected.json" "$work/actual.json"
diff -u "$work/expected.json" "$work/actual.json"
echo "inventory_ctys: ansible-inventory output matches expected-list.json"
