#!/usr/bin/env bash
# Check the collection's execution-environment metadata without a container engine:
# 1. ansible-builder introspect reads meta/execution-environment.yml and must
#    report the collection's Python and system requirements;
# 2. ansible-builder create must produce a build context that installs the
#    collection tarball and runs the introspection step.
set -euo pipefail
root="$(cd "$(dirname "$0")/../.." && pwd)"
work="$(mktemp -d "${TMPDIR:-/tmp}/ctys-ee.XXXXXX")"
trap 'rm -rf "$work"' EXIT

introspect="$(ansible-builder introspect --sanitize "$root/.build/collections")"
for need in pyghmi paramiko ipmitool ethtool; do
    grep -q "$need" <<<"$introspect" || { echo "introspect misses $need:"; echo "$introspect"; exit 1; }
done

ansible-galaxy collection build "$root" --output-path "$work" >/dev/null
tarball="$(ls "$work"/ctys-pm-*.tar.gz)"
cp "$root/tests/ee/execution-environment.yml" "$work/"
printf -- '---\ncollections:\n  - name: %s\n    type: file\n' "$tarball" > "$work/requirements.yml"
(cd "$work" && ansible-builder create -f execution-environment.yml -c context --output-filename Containerfile >/dev/null)
grep -q "ansible-galaxy collection install" "$work/context/Containerfile"
grep -q "introspect" "$work/context/Containerfile"
test -s "$work/context/_build/requirements.yml"
echo "execution environment: introspect lists pyghmi, paramiko, ipmitool, ethtool; ansible-builder create OK"
