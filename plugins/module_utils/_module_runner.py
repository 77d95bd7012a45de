# Copyright: ctys.pm contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Run a module's backend and report its result or its :class:`PmError`.

Keeps every module's ``main()`` to: build the argument spec, call
:func:`run_module` with a backend function.
"""

from __future__ import annotations

from typing import Any, Callable, Dict

from ansible_collections.ctys.pm.plugins.module_utils._errors import PmError

Result = Dict[str, Any]


def run_module(module: Any, backend: Callable[[], Result]) -> None:
    """Call ``backend()`` and exit the module with its result.

    ``backend`` returns the result dict (``changed`` included).  A
    :class:`PmError` becomes ``fail_json`` with the error's message and its
    extra result values; anything else is a bug and keeps its traceback.
    """
    try:
        result = backend()
    except PmError as error:
        module.fail_json(msg=error.msg, **error.result)
        return  # fail_json exits; this return is for tests that stub it
    module.exit_json(**result)
