"""pytest fixtures for the simulated machine room."""

from __future__ import annotations

import os
from typing import Any, Callable, Iterator, List

import pytest


def lab_available() -> bool:
    """Labs with network namespaces need root; loopback labs run anywhere."""
    return os.geteuid() == 0


@pytest.fixture
def lab_factory(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Callable[..., Any]]:
    """Start labs with ``lab_factory(**Lab.up kwargs)``; all are torn down after the test."""
    from pmlab_lib.lab import Lab  # imported lazily: unit tests do not need the lab

    started: List[Any] = []

    def start(**kwargs: Any) -> Any:
        kwargs.setdefault("lab_dir", tmp_path_factory.mktemp("pmlab"))
        lab = Lab.up(**kwargs)
        started.append(lab)
        return lab

    try:
        yield start
    finally:
        for lab in reversed(started):
            lab.down()
