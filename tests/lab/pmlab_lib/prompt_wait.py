"""A lab BMC answers at once: pyghmi's event loop without its missed wake-ups.

pyghmi's server loop (``wait_for_rsp`` -> ``_io_wait``) checks its queue of
received packets and then registers with its I/O thread; a request that
arrives in between waits for the loop's timeout. A real BMC has no such
pause, so the lab BMCs register first and look at the queue afterwards.
Written for pyghmi 1.6.19 (``pyghmi.ipmi.private.session._io_wait``).
"""

from __future__ import annotations

import threading
from typing import Any

import pyghmi.ipmi.private.session as ipmisession


def _queued(myaddr: Any) -> bool:
    if myaddr is None:
        return bool(ipmisession.sessionqueue)
    handlers = ipmisession.Session.bmc_handlers.get(myaddr) or {}
    return any(getattr(session, "pktqueue", None) for session in list(handlers.values()))


def install() -> None:
    def wait(timeout: float, myaddr: Any = None, evq: Any = None) -> None:
        if _queued(myaddr):
            return
        event = threading.Event()
        if evq is not None:
            evq.append(event)
        deadline = timeout + ipmisession._monotonic_time()
        ipmisession.ioqueue.append((deadline, event, myaddr))
        if _queued(myaddr):
            return  # a request came in while registering
        if deadline < ipmisession.selectdeadline:
            wake = ipmisession.iosockets[0]
            wake.sendto(b"\x01", (ipmisession.myself, wake.getsockname()[1]))
        event.wait(timeout)

    ipmisession._io_wait = wait
