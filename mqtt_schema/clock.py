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


TIME_SCALE_MIN = 1e-9
"""The smallest ``--time-scale`` (clock seconds per wall second): a clock that all but stands still (tests)."""
TIME_SCALE_MAX = 1000.0
"""The largest ``--time-scale`` (clock seconds per wall second); the demo runs at up to 200."""
MAX_MS = 253_402_300_799_999
"""The last millisecond a date can name (9999-12-31T23:59:59.999Z), in ms since the Unix epoch."""


def check_time_flags(scale: float, origin_ms: int | None) -> None:
    """Check ``--time-scale S --time-origin-ms T`` of a command line; :class:`ValueError` naming the flag.

    ``S`` (clock seconds per wall second) must lie in [:data:`TIME_SCALE_MIN`, :data:`TIME_SCALE_MAX`];
    ``T`` (ms since the epoch) and the clock's time now (ms) in [0, :data:`MAX_MS`] (1970 to year 9999).
    """
    if not (isinstance(scale, int | float) and TIME_SCALE_MIN <= scale <= TIME_SCALE_MAX):
        raise ValueError(f"--time-scale must be a number from {TIME_SCALE_MIN:g} to {TIME_SCALE_MAX:g}, not {scale!r}")
    if origin_ms is None:
        return
    if not 0 <= origin_ms <= MAX_MS:
        raise ValueError(f"--time-origin-ms must be from 0 to {MAX_MS} (ms since the epoch: 1970 to year 9999), "
                         f"not {origin_ms}")
    now = scaled_ms(wall_ms(), scale, origin_ms)
    if not 0 <= now <= MAX_MS:
        raise ValueError(f"--time-origin-ms {origin_ms} with --time-scale {scale:g} puts the clock now at {now} ms, "
                         f"outside 0 to {MAX_MS} (1970 to year 9999)")


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
