# Copyright: ctys.pm contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Time budgets and back-off schedules for every network wait."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any, Callable, Iterator, Optional

from ansible_collections.ctys.pm.plugins.module_utils._errors import PmInputError


@dataclass
class Deadline:
    """A fixed point in monotonic time that a whole task must finish by."""

    seconds: float
    clock: Callable[[], float] = time.monotonic
    started: float = field(init=False)

    def __post_init__(self) -> None:
        self.started = self.clock()

    @property
    def elapsed(self) -> float:
        return self.clock() - self.started

    def remaining(self) -> float:
        return max(0.0, self.seconds - self.elapsed)

    @property
    def expired(self) -> bool:
        return self.remaining() <= 0.0

    def cap(self, seconds: Optional[float]) -> float:
        """The smaller of ``seconds`` and what is left (never negative)."""
        left = self.remaining()
        return left if seconds is None else max(0.0, min(seconds, left))


def backoff(first: float = 0.2, factor: float = 1.5, ceiling: float = 2.0) -> Iterator[float]:
    """Poll intervals: fast at first, growing by ``factor`` up to ``ceiling``."""
    interval = first
    while True:
        yield interval
        interval = min(ceiling, interval * factor)


def sleep_within(deadline: Deadline, seconds: float, sleeper: Callable[[float], None] = time.sleep) -> None:
    """Sleep ``seconds`` but never past the deadline."""
    pause = deadline.cap(seconds)
    if pause > 0:
        sleeper(pause)


def check_seconds(option: str, value: Any, high: float, example: str, allow_zero: bool = False) -> float:
    """``value`` as seconds within (0, high] (or [0, high] with ``allow_zero``), else one clear sentence."""
    try:
        seconds = float(value)
    except (TypeError, ValueError):
        seconds = -1.0
    low_ok = seconds >= 0 if allow_zero else seconds > 0
    if not (low_ok and seconds <= high):  # also refuses NaN
        span = f"from 0 to {high:g}" if allow_zero else f"above 0 and at most {high:g}"
        raise PmInputError(f"{option} '{value}' is not valid; use seconds {span} such as {example}")
    return seconds
