#!/usr/bin/env bash
# ansible-test sanity --local downloads get-pip-24.2.py from a host CI cannot
# reach. Put a stand-in in its cache that bootstraps pip with ensurepip and
# then installs pip 24.2 from the package index (see lab-facts.md).
set -euo pipefail
cache="${HOME}/.ansible/test/cache"
mkdir -p "$cache"
cat > "$cache/get_pip_24_2.py" <<'PY'
import subprocess
import sys

subprocess.check_call([sys.executable, "-m", "ensurepip", "--upgrade"])
subprocess.check_call([sys.executable, "-m", "pip", "install", "-q", "--disable-pip-version-check", "pip==24.2"])
PY
