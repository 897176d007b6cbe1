"""Named periodic timers for the host's processing loop (one object instead of a ``last_*`` variable each).

The loop asks :meth:`Scheduler.due` for each job on every pass; a job is due when its period has passed
since it last ran (or at the first pass, for jobs started due). Times are seconds on a monotonic clock
that the caller passes in, so the scheduler itself never reads a clock and is tested without sleeping.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping


class Scheduler:
    """Periodic jobs by name: ``periods_s`` maps each name to its period (s)."""

    def __init__(self, now_s: float, periods_s: Mapping[str, float], *, due_at_start: Iterable[str] = ()) -> None:
        for name, period in periods_s.items():
            if not period >= 0:
                raise ValueError(f"period of {name!r} must be >= 0 s, not {period!r}")
        self._periods = dict(periods_s)
        self._last = {name: now_s for name in self._periods}
        for name in due_at_start:
            self._known(name)
            self._last[name] = now_s - self._periods[name]

    def _known(self, name: str) -> str:
        if name not in self._periods:
            raise KeyError(f"no job named {name!r}")
        return name

    def due(self, name: str, now_s: float) -> bool:
        """True (and the job counts as run at ``now_s``) when its period has passed since it last ran."""
        if now_s - self._last[self._known(name)] >= self._periods[name]:
            self._last[name] = now_s
            return True
        return False

    def since(self, name: str, now_s: float) -> float:
        """Seconds since job ``name`` last ran (or since the scheduler started)."""
        return now_s - self._last[self._known(name)]

    def ran(self, name: str, now_s: float) -> None:
        """Record that job ``name`` ran at ``now_s`` outside :meth:`due` (e.g. on demand)."""
        self._last[self._known(name)] = now_s
