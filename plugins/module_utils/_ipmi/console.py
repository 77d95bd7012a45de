# Copyright: ctys.pm contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""pm_console's hard bound: ``_ipmi.sol.run_console`` under ``_bmc.guard``.

The SOL backend bounds every read by its step timeout and the task's deadline;
this makes the bound hold also when pyghmi blocks (a login or an activation
that never returns): the backend runs on the guard's worker thread, its
transport records the step (login while the console opens, command while the
steps or the capture run), and the task ends by ``timeout`` plus
``guard.GRACE`` with the BMC's host and port and the step named.
"""

from __future__ import annotations

from typing import Any, Callable, Dict, Optional

from ansible_collections.ctys.pm.plugins.module_utils._bmc import guard
from ansible_collections.ctys.pm.plugins.module_utils._bmc.options import BmcConnection
from ansible_collections.ctys.pm.plugins.module_utils._deadline import check_seconds
from ansible_collections.ctys.pm.plugins.module_utils._errors import PmTimeoutError
from ansible_collections.ctys.pm.plugins.module_utils._ipmi import sol

KEY = "console"


class TrackedTransport:
    """A SOL transport that records the step it is in for the guard."""

    def __init__(self, inner: Any, progress: guard.Progress) -> None:
        self.inner = inner
        self.progress = progress

    def open(self, deadline: Any) -> None:
        self.progress.step(KEY, guard.LOGIN)
        self.inner.open(deadline)
        self.progress.step(KEY, guard.COMMAND)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)


def run_console_bounded(
    params: Dict[str, Any],
    check_mode: bool = False,
    transport_factory: Optional[Callable[[BmcConnection, bool], Any]] = None,
) -> Dict[str, Any]:
    """``sol.run_console`` that returns by ``timeout`` plus ``guard.GRACE`` whatever the BMC or pyghmi do."""
    if params.get("console_command"):
        return sol.run_console(params, check_mode, transport_factory)  # nothing is sent to the BMC
    total = check_seconds("timeout", params.get("timeout", 120), 86400, "120")
    progress = guard.Progress()
    factory = transport_factory or sol.SolTransport
    seen: Dict[str, str] = {}

    def tracked(conn: BmcConnection, takeover: bool) -> Any:
        seen["address"] = conn.address
        return TrackedTransport(factory(conn, takeover), progress)

    outcome = guard.bounded(lambda: sol.run_console(params, check_mode, tracked), total, name="ctys-pm-console")
    if outcome.finished:
        return outcome.value or {}
    step = progress.close().get(KEY, guard.LOGIN)
    address = seen.get("address") or BmcConnection.from_params(params).address
    raise PmTimeoutError(guard.cut_off_message(address, step, total), step=step, bmc=address)
