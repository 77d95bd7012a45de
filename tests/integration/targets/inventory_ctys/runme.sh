#!/usr/bin/env bash
# Golden test (ansible-test layout): ctys files -> ansible-inventory --list, compared with expected-list.json.
# Same scenario as tests/integration/test_inventory_golden.py.
set -euo pipefail
cd "$(dirname "$0")"
here="$(pwd)"
actual="$(mktemp)"
trap 'rm -f "$actual"' EXIT
ansible-inventory -i inventory.ctys.yml --list 2>/dev/null \
  | python3 -c 'import json,sys; d=json.loads(sys.stdin.read().replace(sys.argv[1], "@FILES@")); print(json.dumps(d, indent=2, sort_keys=True))' "$here/files" \
  > "$actual"
diff -u expected-list.json "$actual"
echo "inventory_ctys: ansible-inventory output matches expected-list.json"
