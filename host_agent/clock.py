"""The host's clock: milliseconds since the Unix epoch, optionally running faster than wall time.

Every duration of the host (alert ``for``, windows, breaks, staleness) runs on this clock. With a
time scale ``S`` and an origin ``T`` (ms), ``now = T + (wall_ms - T) * S``, so a host and desks
started with the same ``T`` and ``S`` agree on the time.
"""

from __future__ import annotations

import threading
import time
from typing import Protocol


class Clock(Protocol):
    def now_ms(self) -> int:
        """Milliseconds since the Unix epoch (UTC) on this clock."""
        ...


class WallClock:
    """Real time."""

    def now_ms(self) -> int:
        return time.time_ns() // 1_000_000


class ScaledClock:
    """``T + (wall_ms - T) * scale``: wall time sped up ``scale`` times around the origin ``T`` (ms)."""

    def __init__(self, scale: float = 1.0, origin_ms: int | None = None) -> None:
        if not scale > 0:
            raise ValueError(f"time scale must be > 0, not {scale}")
        self.scale = float(scale)
        self.origin_ms = int(origin_ms) if origin_ms is not None else time.time_ns() // 1_000_000

    def now_ms(self) -> int:
        wall = time.time_ns() / 1e6
        return int(self.origin_ms + (wall - self.origin_ms) * self.scale)


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
