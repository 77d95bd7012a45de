#!/usr/bin/env bash
# Run ansible-test sanity on a private copy of the collection (tests/ansible-test.sh).
# Usage: tests/sanity/run.sh [ansible-test sanity arguments...]
#   ANSIBLE_TEST_VENV=.build/compat-venv tests/sanity/run.sh   the oldest ansible-core supported
set -euo pipefail
exec "$(cd "$(dirname "$0")/.." && pwd)/ansible-test.sh" sanity "$@"
