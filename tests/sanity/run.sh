#!/usr/bin/env bash
# Run ansible-test sanity on a private copy of the collection (ansible-test needs
# the tree at ansible_collections/ctys/pm, and a git repository to list files).
# Usage: tests/sanity/run.sh [ansible-test sanity arguments...]
set -euo pipefail
root="$(cd "$(dirname "$0")/../.." && pwd)"
"$root/tests/sanity/bootstrap-get-pip.sh"
work="$(mktemp -d "${TMPDIR:-/tmp}/ctys-sanity.XXXXXX")"
trap 'rm -rf "$work"' EXIT
dest="$work/ansible_collections/ctys/pm"
mkdir -p "$dest"
rsync -a --exclude .venv --exclude .build --exclude .git --exclude __pycache__ \
    --exclude .pytest_cache --exclude .hypothesis --exclude tests/output "$root/" "$dest/"
cd "$dest"
git init -q && git add -A >/dev/null
PATH="$root/.venv/bin:$PATH" ansible-test sanity --local --python 3.11 --color no "$@"
