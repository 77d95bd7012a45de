#!/usr/bin/env bash
# ansible-test --local/--venv downloads get-pip-<version>.py from a host CI cannot
# reach. Put a stand-in in its cache that bootstraps pip with ensurepip and
# then installs that pip from the package index (see lab-facts.md). One per pip
# version the supported ansible-test releases ask for: 23.1.2 (ansible-core 2.16),
# 24.2 (2.19), 25.2 (2.20, 2.21).
set -euo pipefail
cache="${HOME}/.ansible/test/cache"
mkdir -p "$cache"
for version in 23.1.2 24.2 25.2; do
cat > "$cache/get_pip_${version//./_}.py" <<PY
import subprocess
import sys

subprocess.check_call([sys.executable, "-m", "ensurepip", "--upgrade"])
subprocess.check_call([sys.executable, "-m", "pip", "install", "-q", "--disable-pip-version-check", "pip==${version}"])
PY
done
