"""_redfish.fleet.run_each: every item concurrently, results in order, errors kept per item."""

from __future__ import annotations

import re
import threading
import time
from typing import List

from ansible_collections.ctys.pm.plugins.module_utils._errors import PmError, PmInputError
from ansible_collections.ctys.pm.plugins.module_utils._redfish import fleet


def _workers() -> int:
    # run_each's own threads (redfish-0, redfish-1, ...), not a pm_power task's "redfish-fleet" thread left by another test
    return sum(1 for thread in threading.enumerate() if re.fullmatch(r"redfish-\d+", thread.name))


def test_results_keep_the_order_of_the_items_and_errors_stay_in_place():
    def work(item: int) -> int:
        time.sleep(0.002 * (10 - item))  # the first items finish last
        if item == 3:
            raise PmInputError("three is refused")
        if item == 5:
            raise KeyError("a bug")
        return item * 10

    results = fleet.run_each(list(range(10)), work)
    assert [r for i, r in enumerate(results) if i not in (3, 5)] == [0, 10, 20, 40, 60, 70, 80, 90]
    assert isinstance(results[3], PmInputError) and results[3].msg == "three is refused"
    assert isinstance(results[5], PmError) and results[5].msg == "internal error (KeyError): 'a bug'"


def test_every_thread_is_started_before_any_item_begins():
    seen: List[int] = []

    def work(item: int) -> int:
        seen.append(_workers())
        time.sleep(0.01)
        return item

    assert fleet.run_each(list(range(40)), work) == list(range(40))
    assert min(seen) == 40


def test_max_threads_bounds_the_items_in_flight_and_all_are_done():
    lock = threading.Lock()
    in_flight = [0, 0]  # now, most

    def work(item: int) -> int:
        with lock:
            in_flight[0] += 1
            in_flight[1] = max(in_flight[1], in_flight[0])
        time.sleep(0.005)
        with lock:
            in_flight[0] -= 1
        return item

    assert fleet.run_each(list(range(30)), work, max_threads=4) == list(range(30))
    assert in_flight[1] == 4
    assert _workers() == 0


def test_one_item_runs_in_the_calling_thread():
    assert fleet.run_each([7], lambda item: threading.current_thread().name) == [threading.current_thread().name]
    assert fleet.run_each([], lambda item: item) == []


def test_when_the_system_gives_no_more_threads_those_started_do_all_the_work(monkeypatch):
    real_start = threading.Thread.start
    count = [0]

    def start(self: threading.Thread) -> None:
        count[0] += 1
        if count[0] > 2:
            raise RuntimeError("can't start new thread")
        real_start(self)

    monkeypatch.setattr(threading.Thread, "start", start)
    assert fleet.run_each(list(range(12)), lambda item: item + 1) == list(range(1, 13))


def test_when_the_system_gives_no_thread_at_all_the_calling_thread_does_the_work(monkeypatch):
    def start(self: threading.Thread) -> None:
        raise RuntimeError("can't start new thread")

    monkeypatch.setattr(threading.Thread, "start", start)
    caller = threading.current_thread().name
    assert fleet.run_each([1, 2, 3], lambda item: (item, threading.current_thread().name)) == [(1, caller), (2, caller), (3, caller)]
