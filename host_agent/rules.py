"""Alert conditions: what each default rule looks at (pure functions of the floor and the time).

Break overrun levels follow the call-centre norm (NORMS.md): overrun under 10 min is level 1,
10 min level 2, 15 level 3, 20 level 4, 25 level 5, 30 level 6; from 60 min over it counts as
absence (level 7).
"""

from __future__ import annotations

import statistics
from collections.abc import Callable
from dataclasses import dataclass

from host_agent.config import HostConfig, RuleSpec
from host_agent.floor import (
    K_LATE_GREETING,
    K_MIC,
    K_MONOTONE,
    K_PACE,
    K_SLOUCH,
    K_SLOW_ANSWER,
    K_VOLUME,
    DeskState,
    Floor,
)
from host_agent.shifts import ShiftSchedule
from mqtt_schema import DeskStatus, Severity

FLOOR_DESK = "floor"
"""The desk id that site-wide alerts (noisy floor) are published under."""


@dataclass(frozen=True, slots=True)
class Condition:
    """A rule's verdict on one desk at one time."""

    active: bool
    value: float | None = None
    level: int | None = None
    summary: str = ""
    severity: Severity | None = None
    """Overrides the rule's severity for an alert this condition starts (a shift's severity)."""


INACTIVE = Condition(False)


def human(seconds: float) -> str:
    """``45 s``, ``15 min``, ``1 h 05 min``."""
    if seconds < 60:
        return f"{seconds:.0f} s"
    minutes = int(seconds // 60)
    if minutes < 60:
        return f"{minutes} min"
    return f"{minutes // 60} h {minutes % 60:02d} min"


def overrun_level(over_s: float) -> int:
    """Break-overrun level for ``over_s`` seconds beyond the allowed break (> 0)."""
    minutes = over_s / 60.0
    if minutes >= 60:
        return 7
    if minutes < 10:
        return 1
    return min(6, 2 + int((minutes - 10) // 5))


def _window_rule(kind: int) -> Callable[[RuleSpec, DeskState, int, HostConfig], Condition]:
    def check(spec: RuleSpec, d: DeskState, now_ms: int, cfg: HostConfig) -> Condition:
        total = d.window.total(now_ms, kind, spec.window_s)
        if total > spec.threshold:
            return Condition(True, round(total, 1), None, spec.summary.format(value=total))
        return Condition(False, round(total, 1))

    return check


def _count_rule(kind: int) -> Callable[[RuleSpec, DeskState, int, HostConfig], Condition]:
    """Active while at least ``threshold`` calls of ``kind`` (e.g. answered too late) ended in the window."""

    def check(spec: RuleSpec, d: DeskState, now_ms: int, cfg: HostConfig) -> Condition:
        count = round(d.window.total(now_ms, kind, spec.window_s))
        if count >= max(1.0, spec.threshold):
            return Condition(True, float(count), None, spec.summary.format(value=count))
        return Condition(False, float(count))

    return check


def _break_overrun(spec: RuleSpec, d: DeskState, now_ms: int, cfg: HostConfig) -> Condition:
    off_s = d.off_for_s(now_ms)
    if off_s is None:
        return INACTIVE
    allowed = cfg.allowed_break(d.site)
    over = off_s - allowed
    if over <= 0:
        return Condition(False, 0.0)
    level = overrun_level(over)
    text = (f"headset off {human(off_s)}, {human(over)} over the allowed break"
            + (" (counted as absence)" if level == 7 else ""))
    return Condition(True, round(over, 1), level, text)


def _desk_offline(spec: RuleSpec, d: DeskState, now_ms: int, cfg: HostConfig) -> Condition:
    """Active while the desk is ``lost`` (its last will: it vanished without saying goodbye).

    A clean ``offline`` (the agent stopped on purpose, e.g. at the end of a shift) raises nothing:
    it is not a fault, and the dashboard shows the desk offline. Its other alerts are still muted
    (see :func:`is_inhibited`).

    A site with a shift schedule (``[shifts.<site>]``, :mod:`host_agent.shifts`) is judged by it instead.
    """
    schedule = cfg.shifts.get(d.site)
    if schedule is not None:
        return _desk_offline_in_shift(schedule, d, now_ms)
    if d.status is DeskStatus.LOST:
        gone = max(0.0, (now_ms - d.status_since_ms) / 1000)
        return Condition(True, round(gone, 1), None, f"desk lost for {human(gone)}")
    return INACTIVE


def _desk_offline_in_shift(schedule: ShiftSchedule, d: DeskState, now_ms: int) -> Condition:
    """Outside a shift nothing; inside, a lost (or, with ``alert_on_offline``, offline) desk is active at
    once if it went away during the shift, or ``grace_s`` after the shift's start if it was already gone."""
    gone = d.status is DeskStatus.LOST or (d.status is DeskStatus.OFFLINE and schedule.alert_on_offline)
    if not gone or d.status is None:
        return INACTIVE
    shift = schedule.shift_at(now_ms)
    if shift is None:
        return INACTIVE
    start_ms, end_ms = shift
    if d.status_since_ms < start_ms and now_ms < start_ms + schedule.grace_s * 1000:
        return INACTIVE  # gone since before the shift: a few minutes to boot and come online
    gone_s = max(0.0, (now_ms - max(d.status_since_ms, start_ms)) / 1000)
    return Condition(True, round(gone_s, 1), None,
                     f"desk {d.status.value} for {human(gone_s)} during its shift "
                     f"({schedule.local_label(start_ms, end_ms)})", severity=schedule.severity)


DESK_RULES: dict[str, Callable[[RuleSpec, DeskState, int, HostConfig], Condition]] = {
    "volume": _window_rule(K_VOLUME),
    "pace": _window_rule(K_PACE),
    "mic-position": _window_rule(K_MIC),
    "posture": _window_rule(K_SLOUCH),
    "break-overrun": _break_overrun,
    "desk-offline": _desk_offline,
    "slow-answer": _count_rule(K_SLOW_ANSWER),
    "late-greeting": _count_rule(K_LATE_GREETING),
    "monotone": _window_rule(K_MONOTONE),
}
SITE_RULES = ("noisy-floor",)
INHIBITING_RULE = "desk-offline"


def is_inhibited(d: DeskState) -> bool:
    """A desk that is offline or lost mutes its other alerts."""
    return d.status in (DeskStatus.OFFLINE, DeskStatus.LOST)


def site_noise(floor: Floor, site: str, now_ms: int, stale_after_s: float) -> float | None:
    """Median noise floor (dBov) of the site's online desks with fresh metrics, or None."""
    values = [
        d.metrics.noise_dbov
        for (s, _), d in floor.desks.items()
        if s == site and d.metrics is not None and d.metrics.noise_dbov is not None
        and d.view_status(now_ms, stale_after_s) == "online"
    ]
    return statistics.median(values) if values else None


def noisy_floor(spec: RuleSpec, median: float | None) -> Condition:
    if median is None:
        return INACTIVE
    if median > spec.threshold:
        return Condition(True, round(median, 1), None, spec.summary.format(value=median))
    return Condition(False, round(median, 1))
