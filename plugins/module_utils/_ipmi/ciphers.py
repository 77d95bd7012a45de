# Copyright: ctys.pm contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""RMCP+ cipher suites: what ``cipher_suite`` offers and what it makes pyghmi do, decided in one place.

pyghmi 1.6 proposes exactly two suites (``Session._open_rmcpplus_request``):
17 (RAKP-HMAC-SHA256, HMAC-SHA256-128, AES-CBC-128) and, when the BMC refuses
that, 3 (RAKP-HMAC-SHA1, HMAC-SHA1-96, AES-CBC-128). It proposes no other,
suite 0 (no authentication) included, so only ``auto``, ``3`` and ``17`` are
offered: anything else would be silently replaced.

* ``auto``: pyghmi's own order, 17 first, 3 when the BMC refuses 17.
* ``3``: suite 3 from the first proposal (pyghmi's request builder is told so
  for this BMC's address, see :func:`prepare`).
* ``17``: suite 17 is proposed; a login that ended on suite 3 (pyghmi falls
  back by itself) is refused afterwards (:func:`refusal_after_login`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Dict, FrozenSet, Optional, Tuple

from ansible_collections.ctys.pm.plugins.module_utils._errors import PmInputError, PmUnsupportedError

SUITES = ("auto", "3", "17")
# pyghmi's ``attemptedhash`` for each suite it can propose, and the HMAC length the session then uses
PYGHMI_HASH = {17: 256, 3: 1}
HASH_LENGTH = {17: 16, 3: 12}


@dataclass(frozen=True)
class CipherChoice:
    """What one ``cipher_suite`` value means for a login."""

    asked: str  # auto, 3 or 17
    first_proposal: int  # the suite the first open-session request proposes
    accepted: FrozenSet[int]  # the suites a completed login may use


def choose(value: Any, option: str = "cipher_suite") -> CipherChoice:
    """The one decision: ``cipher_suite`` as pyghmi will negotiate it, or one sentence for a bad value."""
    suite = "auto" if value is None else str(value).strip().lower()
    if suite not in SUITES:
        raise PmInputError(
            f"{option} '{value}' is not valid; use auto, 3 or 17, the suites pyghmi negotiates (it offers no other)"
        )
    if suite == "auto":
        return CipherChoice(suite, 17, frozenset({17, 3}))
    return CipherChoice(suite, int(suite), frozenset({int(suite)}))


# pyghmi builds and sends its first proposal inside Session's constructor, before a caller can set
# anything on the session; so the proposal is looked up by BMC address in the request builder.
_FIRST_PROPOSAL: Dict[Tuple[str, int], int] = {}


def prepare(host: str, port: int, choice: CipherChoice) -> None:
    """Make pyghmi's first proposal to ``host:port`` the chosen suite (call before the session is created)."""
    if choice.first_proposal == 17:
        _FIRST_PROPOSAL.pop((host, port), None)
        return
    _FIRST_PROPOSAL[(host, port)] = choice.first_proposal
    _install()


def _install() -> None:
    """Wrap ``pyghmi.ipmi.private.session.Session._open_rmcpplus_request`` once per process."""
    try:
        from pyghmi.ipmi.private import session as pyghmi_session
    except ImportError:  # the factory reports the missing library
        return
    original = pyghmi_session.Session._open_rmcpplus_request
    if getattr(original, "ctys_pm_patched", False):
        return

    def open_request(self: Any) -> Any:
        suite = _FIRST_PROPOSAL.get((getattr(self, "bmc", None), getattr(self, "port", None)))  # type: ignore[arg-type]
        if suite is not None:
            self.attemptedhash = PYGHMI_HASH[suite]
        return original(self)

    open_request.ctys_pm_patched = True  # type: ignore[attr-defined]
    pyghmi_session.Session._open_rmcpplus_request = open_request


def suite_in_use(session: Any) -> Optional[int]:
    """The suite a logged-in pyghmi session uses (from its HMAC length), None if unknown."""
    length = getattr(session, "currhashlen", None)
    return next((suite for suite, hashlen in HASH_LENGTH.items() if hashlen == length), None)


def refusal_after_login(session: Any, choice: CipherChoice, address: str) -> Optional[PmUnsupportedError]:
    """An error if the login ended on a suite that was not asked for (pyghmi's own fall-back from 17 to 3)."""
    used = suite_in_use(session)
    if used is None or used in choice.accepted:
        return None
    return PmUnsupportedError(f"the BMC at {address} does not offer cipher suite {choice.asked}; use cipher_suite: auto or 3")
