"""Test-only callback: write every task result as JSON for the test suite to read."""

from __future__ import annotations

import json
import os

from ansible.plugins.callback import CallbackBase

DOCUMENTATION = r"""
name: pmtest_results
type: aggregate
short_description: Write task results as JSON lines for the ctys.pm tests
description:
  - Appends one JSON object per task result to the file named by E(PMTEST_RESULTS).
requirements: []
options: {}
"""


class CallbackModule(CallbackBase):
    CALLBACK_VERSION = 2.0
    CALLBACK_TYPE = "aggregate"
    CALLBACK_NAME = "pmtest_results"
    CALLBACK_NEEDS_ENABLED = False

    def _write(self, result, status: str) -> None:
        path = os.environ.get("PMTEST_RESULTS")
        if not path:
            return
        record = {
            "host": result._host.get_name(),
            "task": result._task.get_name(),
            "action": result._task.action,
            "status": status,
            "result": result._result,
        }
        with open(path, "a", encoding="utf-8") as stream:
            stream.write(json.dumps(record, default=str) + "\n")

    def v2_runner_on_ok(self, result):
        self._write(result, "ok")

    def v2_runner_on_failed(self, result, ignore_errors=False):
        self._write(result, "failed")

    def v2_runner_on_unreachable(self, result):
        self._write(result, "unreachable")

    def v2_runner_on_skipped(self, result):
        self._write(result, "skipped")
