"""Root conftest: makes the test helpers importable wherever pytest runs.

``pytest.ini`` puts ``tests`` (pmtest) and ``tests/lab`` (pmlab_lib) on ``sys.path``; ``ansible-test units``
runs pytest with its own configuration, so this conftest does the same for it. The lab's fixtures
(``pmlab_lib.pytest_plugin``) are loaded only by the conftests of the directories that start labs:
tests/lab, tests/integration and tests/reliability.
"""

from __future__ import annotations

import sys
from pathlib import Path

_TESTS = Path(__file__).resolve().parent
for _path in (_TESTS, _TESTS / "lab"):
    if str(_path) not in sys.path:
        sys.path.insert(0, str(_path))
