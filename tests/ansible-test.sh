#!/usr/bin/env bash
# Run ansible-test on a private copy of the collection: ansible-test needs the tree at
# ansible_collections/ctys/pm and a git repository to list files.
# Usage: tests/ansible-test.sh COMMAND [ansible-test arguments...]
#   COMMAND: sanity | units | integration (or any ansible-test command)
# Environment:
#   ANSIBLE_TEST_VENV  the virtual environment whose ansible-test runs (default .venv; make sanity
#                      also uses .build/compat-venv, ansible-core 2.16, and .build/sanity-venv-latest)
#   ANSIBLE_TEST_MODE  --local (default: the tests run with that venv's Python and packages) or
#                      --venv (ansible-test makes its own venv and installs the test requirements)
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
venv="${ANSIBLE_TEST_VENV:-$root/.venv}"
mode="${ANSIBLE_TEST_MODE:---local}"
[ $# -ge 1 ] || { echo "usage: $0 COMMAND [ansible-test arguments...]" >&2; exit 2; }
command="$1"; shift
python_version="$("$venv/bin/python" -c 'import sys; print("%d.%d" % sys.version_info[:2])')"
"$root/tests/sanity/bootstrap-get-pip.sh"
work="$(mktemp -d "${TMPDIR:-/tmp}/ctys-ansible-test.XXXXXX")"
trap 'rm -rf "$work"' EXIT
dest="$work/ansible_collections/ctys/pm"
mkdir -p "$dest"
# the files git knows (tracked or new, not ignored): no cache, venv or build output reaches the copy
(cd "$root" && git ls-files -z --cached --others --exclude-standard \
    | while IFS= read -r -d '' f; do if [ -e "$f" ]; then printf '%s\0' "$f"; fi; done) \
    | rsync -a --from0 --files-from=- "$root/" "$dest/"
cd "$dest"
git init -q && git add -A >/dev/null
PATH="$venv/bin:$PATH" ansible-test "$command" "$mode" --python "$python_version" --color no "$@"
