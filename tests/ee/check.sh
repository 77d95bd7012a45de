#!/usr/bin/env bash
# Check the example execution environment (tests/ee/execution-environment.yml) without a container
# engine; no image is pulled or built:
# 1. build the collection tarball next to a copy of the definition, as docs/execution-environment.md says;
# 2. ansible-builder create: the context must hold every file it names (Containerfile COPY sources, the
#    tarball that _build/requirements.yml installs, by a relative name, additional_build_files), and no
#    path of this machine (tests/ee/verify_context.py);
# 3. install the collection from the context the way the Containerfile does (ansible-galaxy in _build,
#    offline) and run ansible-builder introspect on it: it must report the collection's Python and
#    system requirements (meta/execution-environment.yml).
# Usage: tests/ee/check.sh                        the whole check, in a temporary directory
#        tests/ee/check.sh --keep DIR             the same, in DIR (kept; DIR/context is the context)
#        tests/ee/check.sh --context DIR DEFINITION   steps 2 and 3 only, on an existing context
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
root="$(cd "$here/../.." && pwd)"
python="${PYTHON:-python3}"

verify() {  # verify CONTEXT DEFINITION
    local context="$1" definition="$2" inst
    "$python" "$here/verify_context.py" "$context" "$definition" "$root" || {
        echo "ee-check: the build context $context is incomplete (see above)" >&2; return 1; }
    inst="$(mktemp -d "${TMPDIR:-/tmp}/ctys-ee-inst.XXXXXX")"
    # shellcheck disable=SC2064
    trap "rm -rf '$inst'" RETURN
    (cd "$context/_build" && ANSIBLE_GALAXY_DISABLE_GPG_VERIFY=1 ANSIBLE_COLLECTIONS_PATH="$inst" \
        ansible-galaxy collection install -r requirements.yml --collections-path "$inst" --offline --force \
        >"$inst/install.log" 2>&1) || {
        echo "ee-check: ansible-galaxy cannot install from $context/_build/requirements.yml:" >&2
        cat "$inst/install.log" >&2; return 1; }
    test -f "$inst/ansible_collections/ctys/pm/MANIFEST.json" || {
        echo "ee-check: the context does not install ctys.pm" >&2; return 1; }
    local introspect
    introspect="$(ansible-builder introspect --sanitize "$inst" 2>/dev/null)"
    for need in pyghmi paramiko ipmitool ethtool; do
        grep -q "$need" <<<"$introspect" || {
            echo "ee-check: introspect misses $need:" >&2; echo "$introspect" >&2; return 1; }
    done
}

if [ "${1:-}" = "--context" ]; then
    [ $# -eq 3 ] || { echo "usage: $0 --context DIR DEFINITION" >&2; exit 2; }
    verify "$2" "$3"
    echo "execution environment: context $2 complete; ctys.pm installs from it; introspect lists its requirements"
    exit 0
fi

if [ "${1:-}" = "--keep" ]; then
    work="$2"; mkdir -p "$work"
else
    work="$(mktemp -d "${TMPDIR:-/tmp}/ctys-ee.XXXXXX")"
    trap 'rm -rf "$work"' EXIT
fi

cp "$here/execution-environment.yml" "$work/"
ansible-galaxy collection build "$root" --output-path "$work" --force >/dev/null
(cd "$work" && ansible-builder create -f execution-environment.yml -c context >"$work/create.log" 2>&1) || {
    cat "$work/create.log" >&2; exit 1; }
# ansible-builder only warns when a file named in additional_build_files is missing
if grep -qi "warning" "$work/create.log"; then
    echo "ee-check: ansible-builder create warned:" >&2; cat "$work/create.log" >&2; exit 1
fi
verify "$work/context" "$work/execution-environment.yml"
echo "execution environment: ansible-builder create OK; the context holds every file it names" \
     "($(cd "$work/context/_build" && ls ctys-pm-*.tar.gz)); ctys.pm installs from it offline;" \
     "introspect lists pyghmi, paramiko, ipmitool, ethtool"
