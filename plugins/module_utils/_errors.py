# Copyright: ctys.pm contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The collection's one exception family.

Every backend raises a subclass of :class:`PmError`; modules turn it into
``fail_json`` in one place (:func:`run_module` in ``_module_runner``).  The
message is one sentence an operator can act on; ``result`` carries extra
return values (for example the output captured before a timeout).
"""

from __future__ import annotations

from typing import Any, Optional


class PmError(Exception):
    """Base class: a failure the collection explains to the operator."""

    #: whether trying the same thing again may succeed (a busy or silent peer); set by the subclass
    #: that classified the failure where it arose, never derived from the message text
    transient: bool = False
    #: an IPMI command's completion code, when a BMC answered with one (set by ``_ipmi.errors.completion_error``)
    completion_code: Optional[int] = None

    def __init__(self, msg: str, **result: Any) -> None:
        super().__init__(msg)
        self.msg = msg
        self.result = result


class PmInputError(PmError):
    """An option has a bad value or a bad combination with another option."""


class PmConnectionError(PmError):
    """A peer (BMC, host, hypervisor) could not be reached or stopped answering."""


class PmTimeoutError(PmConnectionError):
    """A wait ran out of its time budget."""


class PmAuthError(PmError):
    """Credentials or privilege were refused; retrying will not help."""


class PmPermissionError(PmError):
    """The local process lacks a privilege (root, CAP_NET_RAW, ...)."""


class PmUnsupportedError(PmError):
    """The device or system does not support the requested operation."""


class PmStateError(PmError):
    """The machine is in a state that forbids the operation (e.g. guests still run)."""


def invalid_option(option: str, value: Any, fix: str) -> PmInputError:
    """Build the standard one-sentence message for a bad option value.

    >>> str(invalid_option("port", 0, "use a number from 1 to 65535"))
    "port '0' is not valid; use a number from 1 to 65535"
    """
    return PmInputError(f"{option} '{value}' is not valid; {fix}")
