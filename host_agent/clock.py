"""The host's clock: milliseconds since the Unix epoch, optionally running faster than wall time.

Every duration of the host (alert ``for``, windows, breaks, staleness) runs on this clock. With a
time scale ``S`` and an origin ``T`` (ms), ``now = T + (wall_ms - T) * S``: the contract's
:class:`mqtt_schema.clock.ScaledClock`, which the desks run on too, so a host and desks started with
the same ``T`` and ``S`` agree on the time.
"""

from __future__ import annotations

import threading
from typing import Protocol

from mqtt_schema.clock import ScaledClock, wall_ms

__all__ = ["Clock", "ManualClock", "ScaledClock", "WallClock"]


class Clock(Protocol):
    def now_ms(self) -> int:
        """Milliseconds since the Unix epoch (UTC) on this clock."""
        ...


class WallClock:
    """Real time."""

    def now_ms(self) -> int:
        return wall_ms()


class ManualClock:
    """A clock that moves only when told to (tests, simulations). Thread-safe."""

    def __init__(self, start_ms: int = 1_795_000_000_000) -> None:
        self._now = int(start_ms)
        self._lock = threading.Lock()

    def now_ms(self) -> int:
        with self._lock:
            return self._now

    def set(self, now_ms: int) -> None:
        with self._lock:
            self._now = int(now_ms)

    def advance(self, seconds: float) -> int:
        """Move forward ``seconds`` (s); return the new time (ms)."""
        with self._lock:
            self._now += int(round(seconds * 1000))
            return self._now
