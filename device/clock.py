"""The desk agent's clock: milliseconds since the Unix epoch, optionally running faster than wall time.

Every duration of the agent (cue persistence, slouch time, metrics interval, minute rollups, file
audio pacing) runs on one injected :class:`Clock`:

- :class:`WallClock`: real time.
- :class:`ScaledClock`: ``now = T + (wall_ms - T) * S`` for a time scale ``S`` and origin ``T`` (ms),
  the contract's clock (:mod:`mqtt_schema.clock`, which the host runs on too), so a host and desks
  started with the same ``T`` and ``S`` agree on the time (the demo runs at ``S = 20``).
- :class:`ManualClock`: moves only when told to (tests). Its :meth:`ManualClock.sleep` advances it,
  so a loop that sleeps on the clock runs ten minutes of agent time in milliseconds.

``sleep(seconds)`` waits ``seconds`` of *clock* time (wall seconds / scale), returning early when
the optional ``stop`` event is set.
"""

from __future__ import annotations

import threading
import time
from typing import Protocol

from mqtt_schema.clock import ScaledClock as SharedScaledClock
from mqtt_schema.clock import wall_ms


class Clock(Protocol):
    """A millisecond clock the agent runs on."""

    @property
    def scale(self) -> float:
        """Clock seconds per wall second (1 for real time)."""
        ...

    def now_ms(self) -> int:
        """Milliseconds since the Unix epoch (UTC) on this clock."""
        ...

    def sleep(self, seconds: float, stop: threading.Event | None = None) -> bool:
        """Wait ``seconds`` of clock time; return True when ``stop`` was set (early or not)."""
        ...


_MAX_WALL_SLEEP_S = 1e9
"""The longest wall wait of one ``sleep`` (s, about 31 years): what every OS can wait for."""


def _wall_sleep(wall_s: float, stop: threading.Event | None) -> bool:
    # A nearly stopped clock (time scale 1e-9) makes a minute of clock time centuries of wall time, more
    # than the OS can wait (an OverflowError or EINVAL): wait at most _MAX_WALL_SLEEP_S.
    wall_s = min(wall_s, _MAX_WALL_SLEEP_S)
    if stop is None:
        if wall_s > 0:
            time.sleep(wall_s)
        return False
    if wall_s <= 0:
        return stop.is_set()
    return stop.wait(wall_s)


class WallClock:
    """Real time."""

    scale = 1.0

    def now_ms(self) -> int:
        return wall_ms()

    def sleep(self, seconds: float, stop: threading.Event | None = None) -> bool:
        return _wall_sleep(seconds, stop)


class ScaledClock(SharedScaledClock):
    """The contract's scaled clock (:class:`mqtt_schema.clock.ScaledClock`) with a ``sleep`` in clock time."""

    def sleep(self, seconds: float, stop: threading.Event | None = None) -> bool:
        return _wall_sleep(seconds / self.scale, stop)


class ManualClock:
    """A clock that moves only when told to (tests, simulations). Thread-safe.

    ``sleep(s)`` advances the clock by ``s`` seconds at once (a simulated wait).
    """

    scale = 1.0

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

    def sleep(self, seconds: float, stop: threading.Event | None = None) -> bool:
        if seconds > 0:
            self.advance(seconds)
        return stop.is_set() if stop is not None else False


def make_clock(time_scale: float = 1.0, origin_ms: int | None = None) -> WallClock | ScaledClock:
    """The clock for ``--time-scale S --time-origin-ms T`` (a wall clock for S = 1 without T)."""
    if time_scale == 1.0 and origin_ms is None:
        return WallClock()
    return ScaledClock(time_scale, origin_ms)
