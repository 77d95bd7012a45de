# Copyright: ctys.pm contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Many BMCs at once: one thread and one connection per BMC, one shared SSL context, one deadline.

A dead BMC costs only its own ``connect_timeout`` (in its own thread); the
others go on. Results come back in the order of the targets.
"""

from __future__ import annotations

import threading
from typing import Callable, Dict, List, Sequence, TypeVar, Union

from ansible_collections.ctys.pm.plugins.module_utils._errors import PmError

T = TypeVar("T")
R = TypeVar("R")
# each thread mostly waits on its socket: one per BMC (up to this many), so a fleet pays its round trips once
# (with 64, 100 BMCs took two rounds: 2.9 s instead of 2.4 s for their power state in bench/redfish.py)
MAX_THREADS = 256


def run_each(items: Sequence[T], work: Callable[[T], R], max_threads: int = MAX_THREADS) -> List[Union[R, PmError]]:
    """``work(item)`` for every item concurrently; a :class:`PmError` is returned in its place, not raised."""

    def guarded(item: T) -> Union[R, PmError]:
        try:
            return work(item)
        except PmError as error:
            return error
        except Exception as error:  # a bug in one target must not take the others down
            return PmError(f"internal error ({error.__class__.__name__}): {error}")

    if len(items) <= 1:
        return [guarded(item) for item in items]
    results: Dict[int, Union[R, PmError]] = {}
    pending = iter(range(len(items)))
    lock = threading.Lock()
    # every thread is started before any works: a start waits for the new thread to run, and once the first
    # ones are busy that takes milliseconds each (100 BMCs: the last began 0.3 s after the first)
    go = threading.Event()

    def worker() -> None:
        go.wait()
        while True:
            with lock:
                index = next(pending, None)
            if index is None:
                return
            results[index] = guarded(items[index])

    started: List[threading.Thread] = []
    try:
        for number in range(max(1, min(max_threads, len(items)))):
            thread = threading.Thread(target=worker, name=f"redfish-{number}", daemon=True)
            try:
                thread.start()
            except RuntimeError:  # the system gives no more threads: those started share the work
                break
            started.append(thread)
    finally:
        go.set()
    if not started:  # not even one: this thread does it all, one item after another
        worker()
    for thread in started:
        thread.join()
    return [results[index] for index in range(len(items))]
