"""Unit-test helpers: access to the recorded real outputs."""

from __future__ import annotations

import gzip
from pathlib import Path

import pytest

FIXTURES = Path(__file__).resolve().parent / "fixtures"


@pytest.fixture
def fixture_text():
    """Read a recorded output copied from ../shared/fixtures (see fixtures/INDEX.md)."""

    def read(relative: str) -> str:
        path = FIXTURES / relative
        if not path.exists() and path.with_name(path.name + ".gz").exists():
            # stored compressed: data whose first line is a shebang (fixtures/INDEX.md, section 5)
            return gzip.decompress(path.with_name(path.name + ".gz").read_bytes()).decode("utf-8", "surrogateescape")
        return path.read_text(encoding="utf-8", errors="surrogateescape")

    return read
