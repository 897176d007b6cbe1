"""Shift schedules: per site, the hours when desks are expected online (``[shifts]`` of host.toml).

A schedule is a set of weekly spans in the site's time zone (IANA name, e.g. ``Asia/Shanghai``).
Each span belongs to the day it *starts* on; one whose end is not after its start crosses midnight
(``fri = "22:00-06:00"`` runs from Friday 22:00 to Saturday 06:00). Spans that touch (``12:00`` end,
``12:00`` start, or a night shift running into a morning shift) make one continuous shift.

Only the ``desk-offline`` rule reads schedules (see :func:`host_agent.rules._desk_offline`):

- outside a shift a desk that is offline or lost raises nothing (a firing alert resolves at the
  shift's end);
- inside a shift it raises ``desk-offline`` with the schedule's severity; with ``alert_on_offline``
  (the default) a clean ``offline`` counts as well as ``lost``, since the desk is expected online;
- a desk already gone when the shift starts gets ``grace_s`` (default 300 s) to come online before
  the condition holds (desks booting at the start of the shift raise nothing), then the rule's
  ``for_s`` as usual. A desk that goes away during the shift counts at once.

Times are host-clock milliseconds (UTC epoch); no wall clock is read here.
"""

from __future__ import annotations

import bisect
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from host_agent import config_checks as check
from host_agent.errors import ConfigError
from mqtt_schema import Severity

DAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
"""Day names, in ``datetime.weekday()`` order."""
DEFAULT_GRACE_S = 300.0
"""A desk already gone at the start of a shift gets this long (s) to come online."""


@dataclass(frozen=True, slots=True)
class Span:
    """One weekly span: ``day`` (0 = Monday) from ``start_min`` to ``end_min`` (minutes after local
    midnight, 0-1440). ``end_min <= start_min`` means it ends the next day."""

    day: int
    start_min: int
    end_min: int

    @property
    def crosses_midnight(self) -> bool:
        return self.end_min <= self.start_min

    def label(self) -> str:
        return f"{DAYS[self.day]} {_hhmm(self.start_min)}-{_hhmm(self.end_min)}"


def _hhmm(minutes: int) -> str:
    return f"{minutes // 60:02d}:{minutes % 60:02d}"


@dataclass(frozen=True)
class ShiftSchedule:
    """The expected-online hours of one site."""

    site: str
    tz: str = "UTC"
    spans: tuple[Span, ...] = ()
    severity: Severity | None = None
    """Severity of ``desk-offline`` inside a shift; None keeps the rule's (``critical``)."""
    grace_s: float = DEFAULT_GRACE_S
    alert_on_offline: bool = True
    """A clean ``offline`` inside a shift fires too (not only ``lost``)."""
    _zone: ZoneInfo = field(init=False, repr=False, compare=False)
    _cache: dict[int, list[tuple[int, int]]] = field(init=False, repr=False, compare=False, hash=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "_zone", ZoneInfo(self.tz))
        object.__setattr__(self, "_cache", {})

    def shift_at(self, now_ms: int) -> tuple[int, int] | None:
        """The continuous shift (start_ms, end_ms) that ``now_ms`` falls in, or None outside shifts."""
        local = datetime.fromtimestamp(now_ms / 1000, self._zone).date()
        intervals = self._intervals(local.toordinal())
        i = bisect.bisect_right(intervals, (now_ms, 1 << 62)) - 1
        if i >= 0 and intervals[i][0] <= now_ms < intervals[i][1]:
            return intervals[i]
        return None

    def _intervals(self, ordinal: int) -> list[tuple[int, int]]:
        """Merged shift intervals (ms) of the local days around ``ordinal``: enough to answer for any
        time on that day (a span lasts at most one day, so one starting two days earlier cannot reach
        it; one extra day each side joins touching spans)."""
        cached = self._cache.get(ordinal)
        if cached is not None:
            return cached
        raw: list[tuple[int, int]] = []
        for o in range(ordinal - 3, ordinal + 2):
            day = date.fromordinal(o)
            for s in self.spans:
                if s.day != day.weekday():
                    continue
                start = self._ms(day, s.start_min)
                end = self._ms(day + timedelta(days=1) if s.crosses_midnight else day, s.end_min)
                if end > start:
                    raw.append((start, end))
        merged: list[tuple[int, int]] = []
        for start, end in sorted(raw):
            if merged and start <= merged[-1][1]:
                merged[-1] = (merged[-1][0], max(merged[-1][1], end))
            else:
                merged.append((start, end))
        if len(self._cache) > 64:
            self._cache.clear()
        self._cache[ordinal] = merged
        return merged

    def _ms(self, day: date, minutes: int) -> int:
        """Local wall time ``minutes`` after midnight of ``day`` (24:00 = next midnight) as epoch ms."""
        base = datetime(day.year, day.month, day.day, tzinfo=self._zone)
        if minutes == 1440:
            nxt = day + timedelta(days=1)
            return int(datetime(nxt.year, nxt.month, nxt.day, tzinfo=self._zone).timestamp() * 1000)
        return int(base.replace(hour=minutes // 60, minute=minutes % 60).timestamp() * 1000)

    def local_label(self, start_ms: int, end_ms: int) -> str:
        """``Fri 22:00-06:00 Asia/Shanghai``: a shift's local hours."""
        a = datetime.fromtimestamp(start_ms / 1000, self._zone)
        b = datetime.fromtimestamp(end_ms / 1000, self._zone)
        return f"{a:%a %H:%M}-{b:%H:%M} {self.tz}"

    def describe(self) -> str:
        """``mon 08:00-17:00, sat 09:00-13:00 (Europe/Berlin)``."""
        return ", ".join(s.label() for s in self.spans) + f" ({self.tz})"


def parse_clock(text: str) -> int:
    """``HH:MM`` (00:00-24:00) as minutes after midnight; ValueError otherwise."""
    hh, sep, mm = text.strip().partition(":")
    if (not sep or len(mm) != 2 or not (hh + mm).isascii() or not hh.isdigit() or not mm.isdigit()
            or len(hh) not in (1, 2)):
        raise ValueError(f"{text!r} is not a time HH:MM")
    h, m = int(hh), int(mm)
    if m > 59 or h > 24 or (h == 24 and m != 0):
        raise ValueError(f"{text!r} is not a time between 00:00 and 24:00")
    return h * 60 + m


def parse_hours(text: str) -> tuple[int, int]:
    """``"08:00-17:00"`` as (start_min, end_min); an end not after the start crosses midnight."""
    left, sep, right = text.partition("-")
    if not sep:
        raise ValueError(f"{text!r} must look like \"08:00-17:00\"")
    start, end = parse_clock(left), parse_clock(right)
    if start == 1440:
        raise ValueError(f"{text!r} cannot start at 24:00")
    if start == end:
        raise ValueError(f"{text!r} is empty (start = end); a whole day is \"00:00-24:00\"")
    return start, end


def parse_days(key: str) -> list[int]:
    """``mon``, ``mon-fri``, ``fri-mon`` (wraps over the weekend), ``daily``: weekday numbers."""
    k = key.strip().lower()
    if k == "daily":
        return list(range(7))
    first, sep, last = k.partition("-")
    if first not in DAYS or (sep and last not in DAYS):
        raise ValueError(f"{key!r} is not a day (mon..sun), a range of days (mon-fri) or daily")
    a = DAYS.index(first)
    if not sep:
        return [a]
    b = DAYS.index(last)
    return [(a + i) % 7 for i in range((b - a) % 7 + 1)]


def overlaps(spans: list[Span]) -> tuple[Span, Span] | None:
    """Two spans of a week that overlap (touching is fine), or None."""
    week = 7 * 1440
    pieces: list[tuple[int, int, Span]] = []
    for s in spans:
        start = s.day * 1440 + s.start_min
        end = s.day * 1440 + s.end_min + (1440 if s.crosses_midnight else 0)
        pieces.append((start, end, s))
        if end > week:  # sunday night into monday
            pieces.append((start - week, end - week, s))
    pieces.sort(key=lambda p: (p[0], p[1]))
    reach: tuple[int, Span] | None = None
    for start, end, s in pieces:
        if reach is not None and start < reach[0] and reach[1] is not s:
            return reach[1], s
        if reach is None or end > reach[0]:
            reach = (end, s)
    return None


# --- reading [shifts] of host.toml (host_agent.config.parse_config) -----------------------------------------------------------------------------------------

SHIFT_SETTINGS = {"tz", "severity", "grace_s", "alert_on_offline"}
"""Keys of ``[shifts]`` (host-wide defaults) and ``[shifts.<site>]`` that are not days."""


def _zone(value: object, name: str) -> str:
    from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

    tz = check.string(value, name)
    try:
        ZoneInfo(tz)
    except (ZoneInfoNotFoundError, ValueError):
        raise ConfigError(f"{name} {tz!r} is not a known time zone (an IANA name such as "
                                     "\"Europe/Berlin\" or \"UTC\")", field=name) from None
    return tz


def _shift_settings(t: dict[str, Any], prefix: str, base: dict[str, Any]) -> dict[str, Any]:
    kw = dict(base)
    if "tz" in t:
        kw["tz"] = _zone(t["tz"], prefix + "tz")
    if "severity" in t:
        kw["severity"] = check.severity(t["severity"], prefix + "severity")
    if "grace_s" in t:
        kw["grace_s"] = check.number(t["grace_s"], prefix + "grace_s", 0, 86400)
    if "alert_on_offline" in t:
        kw["alert_on_offline"] = check.boolean(t["alert_on_offline"], prefix + "alert_on_offline")
    return kw


def _shift_site(site: str, t: dict[str, Any], defaults: dict[str, Any]) -> ShiftSchedule:
    p = f"shifts.{site}."
    kw = _shift_settings(t, p, defaults)
    spans: list[Span] = []
    given: dict[int, str] = {}
    for key, value in t.items():
        if key in SHIFT_SETTINGS:
            continue
        name = p + key
        try:
            days = parse_days(key)
        except ValueError as exc:
            raise ConfigError(f"{name} is not a day or a setting: {exc}; settings: "
                                         f"{', '.join(sorted(SHIFT_SETTINGS))}", field=name) from None
        hours = value if isinstance(value, list) else [value]
        if not hours:
            raise ConfigError(f"{name} must be hours such as \"08:00-17:00\" (or a list of them)", field=name)
        for i, h in enumerate(hours):
            field_name = name if not isinstance(value, list) else f"{name}[{i}]"
            if not isinstance(h, str):
                raise ConfigError(f"{field_name} must be hours such as \"08:00-17:00\", not {h!r}", field=field_name)
            try:
                start, end = parse_hours(h)
            except ValueError as exc:
                raise ConfigError(f"{field_name}: {exc}", field=field_name) from None
            for day in days:
                spans.append(Span(day, start, end))
        for day in days:
            if day in given and given[day] != key:
                raise ConfigError(f"{name}: {DAYS[day]} "
                                             f"is also given by {p}{given[day]}: give each day once "
                                             "(a list of hours for several spans)", field=name)
            given[day] = key
    if not spans:
        raise ConfigError(f"shifts.{site} has no hours: add e.g. mon-fri = \"08:00-17:00\"", field=p.rstrip("."))
    clash = overlaps(spans)
    if clash is not None:
        a, b = clash
        raise ConfigError(f"shifts.{site}: {a.label()} and {b.label()} overlap", field=p.rstrip("."))
    spans.sort(key=lambda s: (s.day, s.start_min))
    return ShiftSchedule(site=site, spans=tuple(spans), **kw)


def parse_shifts(t: dict[str, Any], sites: tuple[str, ...]) -> dict[str, ShiftSchedule]:
    """``[shifts]``: host-wide ``tz``/``severity``/``grace_s``/``alert_on_offline``, then a table per site."""
    defaults = _shift_settings(t, "shifts.", {"tz": "UTC", "severity": None, "grace_s": DEFAULT_GRACE_S,
                                               "alert_on_offline": True})
    out: dict[str, ShiftSchedule] = {}
    for key, value in t.items():
        if key in SHIFT_SETTINGS and not isinstance(value, dict):
            continue
        if not isinstance(value, dict):
            raise ConfigError(f"shifts.{key} must be a site table ([shifts.{key}]) or one of "
                                                     f"{', '.join(sorted(SHIFT_SETTINGS))}, not {value!r}", field=f"shifts.{key}")
        site = check.ident(key, f"shifts.{key}")
        if sites and site not in sites:
            raise ConfigError(f"shifts.{key}: site {site!r} is not in host.sites "
                                                     f"({', '.join(sites)})", field=f"shifts.{key}")
        out[site] = _shift_site(site, value, defaults)
    return out
