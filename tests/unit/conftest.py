"""Unit-test helpers: access to the recorded real outputs."""

from __future__ import annotations

from pathlib import Path

import pytest

FIXTURES = Path(__file__).resolve().parent / "fixtures"


@pytest.fixture
def fixture_text():
    """Read a recorded output copied from ../shared/fixtures (see fixtures/INDEX.md)."""

    def read(relative: str) -> str:
        return (FIXTURES / relative).read_text(encoding="utf-8", errors="surrogateescape")

    return read
