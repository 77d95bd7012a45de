"""The lab's pytest fixtures (``lab_factory``) for the tests of this directory."""

from __future__ import annotations

from pmlab_lib.pytest_plugin import lab_factory  # noqa: F401  pylint: disable=unused-import
