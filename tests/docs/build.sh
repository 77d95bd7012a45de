#!/usr/bin/env bash
# Build the collection's docsite with antsibull-docs and Sphinx, offline (make docs).
# 1. antsibull-docs lint-collection-docs --plugin-docs: docs/docsite/ (links.yml, extra-docs.yml,
#    the rst guides) and every plugin's DOCUMENTATION/EXAMPLES/RETURN, parsed and cross-checked;
# 2. antsibull-docs sphinx-init + collection: the rst pages of the collection (its plugins, roles,
#    guides), with --fail-on-error (a plugin whose docs do not parse fails the build);
# 3. sphinx-build -W: any warning (broken reference, bad markup) fails the build.
# Offline: references into docs.ansible.com resolve through a local intersphinx inventory written
# from tests/docs/ansible-refs.txt; one not listed there fails the build.
# Usage: tests/docs/build.sh [DEST]   (default .build/docs; the site is DEST/build/html)
set -euo pipefail
root="$(cd "$(dirname "$0")/../.." && pwd)"
dest="${1:-$root/.build/docs}"
export ANSIBLE_COLLECTIONS_PATH="${ANSIBLE_COLLECTIONS_PATH:-$root/.build/collections}"
collection="${ANSIBLE_COLLECTIONS_PATH%%:*}/ansible_collections/ctys/pm"
[ -e "$collection/galaxy.yml" ] || { echo "docs: ctys.pm not found at $collection (make collection)" >&2; exit 1; }

antsibull-docs lint-collection-docs --plugin-docs "$collection"

rm -rf "$dest"
mkdir -p "$(dirname "$dest")"
mkdir -m 700 "$dest"
antsibull-docs sphinx-init --use-current --squash-hierarchy --fail-on-error --dest-dir "$dest" \
    --project ctys.pm --copyright "ctys.pm maintainers" --title "ctys.pm" --html-short-title "ctys.pm" \
    ctys.pm >/dev/null
# offline: the only intersphinx inventory is a local one for the docs.ansible.com targets the pages use
python3 - "$root/tests/docs/ansible-refs.txt" "$dest/ansible_devel.inv" <<'PY'
import sys
import zlib

lines = []
with open(sys.argv[1], encoding="utf-8") as refs:
    for line in refs:
        if line.strip() and not line.startswith("#"):
            name, role, path = line.split()
            lines.append(f"{name} {role} {-1 if role == 'std:label' else 1} {path} -\n")
with open(sys.argv[2], "wb") as inv:
    inv.write(b"# Sphinx inventory version 2\n# Project: Ansible\n# Version: devel\n"
              b"# The remainder of this file is compressed using zlib.\n")
    inv.write(zlib.compress("".join(lines).encode("utf-8")))
PY
cat >> "$dest/conf.py" <<'PY'

# tests/docs/build.sh: offline; docs.ansible.com targets from tests/docs/ansible-refs.txt
intersphinx_mapping = {
    'ansible_devel': ('https://docs.ansible.com/projects/ansible/devel/', '../ansible_devel.inv'),
}
PY
"$dest/build.sh"
test -s "$dest/build/html/index.html"
echo "docs: $dest/build/html/index.html"
