"""The time that host and desks share: ``--time-scale S --time-origin-ms T``.

Every ``ts`` in the contract is milliseconds since the Unix epoch (UTC) on this clock. With a time
scale ``S`` (clock seconds per wall second) and an origin ``T`` (ms since the epoch),

    now_ms = T + (wall_ms - T) * S

so a host and desks started with the same ``T`` and ``S`` agree on the time (the demo runs at
``S = 20``). ``S = 1`` is real time whatever ``T`` is.

Both sides build their clocks on :class:`ScaledClock`; the desk adds a ``sleep`` that waits clock time
(:mod:`device.clock`).
"""

from __future__ import annotations

import math
import time


def check_time_scale(scale: float) -> float:
    """``scale`` as a float; :class:`ValueError` unless it is a finite number > 0."""
    if not isinstance(scale, int | float) or not scale > 0 or not math.isfinite(scale):
        raise ValueError(f"time scale must be a finite number > 0, not {scale!r}")
    return float(scale)


def wall_ms() -> int:
    """Wall time: milliseconds since the Unix epoch (UTC)."""
    return time.time_ns() // 1_000_000


def scaled_ms(wall: float, scale: float, origin_ms: int) -> int:
    """``T + (wall_ms - T) * S``: the shared clock's time (ms) at the wall time ``wall`` (ms)."""
    return int(origin_ms + (wall - origin_ms) * scale)


class ScaledClock:
    """``T + (wall_ms - T) * scale``: wall time sped up ``scale`` times around the origin ``T`` (ms).

    ``origin_ms`` defaults to now. Raises :class:`ValueError` for a scale that is not a finite number > 0.
    """

    def __init__(self, scale: float = 1.0, origin_ms: int | None = None) -> None:
        self.scale = check_time_scale(scale)
        self.origin_ms = int(origin_ms) if origin_ms is not None else wall_ms()

    def now_ms(self) -> int:
        """Milliseconds since the Unix epoch (UTC) on this clock."""
        return scaled_ms(time.time_ns() / 1e6, self.scale, self.origin_ms)
