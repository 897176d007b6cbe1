"""Daily report from the history: per desk (and per agent, with a roster) speaking time, level, rate,
share of speech in each cue zone, slouched minutes, breaks and overruns, alerts, and calls (schema 1.1
``call`` summaries, by their start): how many, the share answered within the desk's ``max_rings`` (of
the calls the desk judged, ``answer_ok`` not null), the median greeting latency, and the share of calls
with a monotone stretch (``monotone_share`` > 0, of the calls whose intonation was measured), and
(schema 1.2) the silent calls (``silent_call``, the far end stayed silent) and how many of them were
handled per the silent-call norm (``silent_call_ok`` true), of the calls whose far end was measured: a desk
without far-end audio shows ``-`` (``None`` in JSON, empty in CSV), not 0.

Built from minute rollups (exact even when live metrics were dropped), wear events (breaks) and the
alert log. Levels are averaged in the power domain, weighted by speech time; rates by speech time.
"""

from __future__ import annotations

import csv
import datetime as dt
import math
import statistics
import unicodedata
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from host_agent.errors import UsageError
from host_agent.roster import RosterEntry, agent_at
from host_agent.rules import FLOOR_DESK, overrun_level
from host_agent.storage import HistoryStore
from mqtt_schema import AlertTransition, Call, Cue, Event, EventKind, Minute

SPEECH_CUES = (Cue.VOLUME_LOW, Cue.VOLUME_HIGH, Cue.PACE_SLOW, Cue.PACE_FAST, Cue.MIC_CLOSE, Cue.MIC_FAR)


@dataclass
class Row:
    """One desk's (or agent's) day."""

    key: str
    name: str | None = None
    """Display name (an agent's, from the roster); the key stays the id."""
    desks: set[str] = field(default_factory=set)
    minutes: int = 0
    speech_s: float = 0.0
    worn_s: float = 0.0
    slouched_s: float = 0.0
    cue_s: dict[str, float] = field(default_factory=dict)
    hourly_speech_s: list[float] = field(default_factory=lambda: [0.0] * 24)
    _level_pow: float = 0.0
    _level_w: float = 0.0
    _rate_sum: float = 0.0
    _rate_w: float = 0.0
    breaks: list[tuple[int, float]] = field(default_factory=list)
    """(start ms, minutes) of each headset-off period."""
    overruns: list[int] = field(default_factory=list)
    """Overrun level of each break longer than allowed."""
    alerts: Counter[str] = field(default_factory=Counter)
    calls: int = 0
    answer_judged: int = 0
    answer_ok: int = 0
    greeting_s: list[float] = field(default_factory=list)
    monotone_judged: int = 0
    monotone_calls: int = 0
    silent_judged: int = 0
    """Calls whose far end was measured (``silent_call`` not null)."""
    silent_n: int = 0
    """Calls whose far end stayed silent."""
    silent_ok_n: int = 0
    """Silent calls handled per the silent-call norm (``silent_call_ok`` true)."""

    def add_call(self, c: Call) -> None:
        self.desks.add(c.desk)
        self.calls += 1
        if c.answer_ok is not None:
            self.answer_judged += 1
            self.answer_ok += c.answer_ok
        if c.greeting_latency_s is not None:
            self.greeting_s.append(c.greeting_latency_s)
        if c.monotone_share is not None:
            self.monotone_judged += 1
            self.monotone_calls += c.monotone_share > 0
        if c.silent_call is not None:
            self.silent_judged += 1
            if c.silent_call:
                self.silent_n += 1
                self.silent_ok_n += c.silent_call_ok is True

    @property
    def answered_share(self) -> float | None:
        """Share of the judged calls answered within the allowed rings (None: no call judged)."""
        return self.answer_ok / self.answer_judged if self.answer_judged else None

    @property
    def median_greeting_s(self) -> float | None:
        return statistics.median(self.greeting_s) if self.greeting_s else None

    @property
    def monotone_share(self) -> float | None:
        """Share of the calls with measured intonation that had a monotone stretch (None: none measured)."""
        return self.monotone_calls / self.monotone_judged if self.monotone_judged else None

    @property
    def silent_calls(self) -> int | None:
        """Silent calls (None: no call's far end was measured, e.g. a desk without far-end audio)."""
        return self.silent_n if self.silent_judged else None

    @property
    def silent_calls_ok(self) -> int | None:
        """Silent calls handled per the norm (None: no call's far end was measured)."""
        return self.silent_ok_n if self.silent_judged else None

    def add_minute(self, m: Minute, hour: int) -> None:
        self.desks.add(m.desk)
        self.minutes += 1
        self.speech_s += m.speech_s
        self.worn_s += m.worn_s
        self.slouched_s += m.slouched_s
        self.hourly_speech_s[hour] += m.speech_s
        for cue, s in m.cue_s.items():
            self.cue_s[cue.value] = self.cue_s.get(cue.value, 0.0) + s
        if m.level_dbov is not None and m.speech_s > 0:
            self._level_pow += m.speech_s * 10 ** (m.level_dbov / 10)
            self._level_w += m.speech_s
        if m.rate_spm is not None and m.speech_s > 0:
            self._rate_sum += m.speech_s * m.rate_spm
            self._rate_w += m.speech_s

    @property
    def level_dbov(self) -> float | None:
        return 10 * math.log10(self._level_pow / self._level_w) if self._level_w > 0 else None

    @property
    def rate_spm(self) -> float | None:
        return self._rate_sum / self._rate_w if self._rate_w > 0 else None

    def cue_share(self, cue: Cue) -> float:
        """Fraction of speech time spent with ``cue`` active (0..1)."""
        return self.cue_s.get(cue.value, 0.0) / self.speech_s if self.speech_s > 0 else 0.0

    def as_dict(self) -> dict[str, object]:
        return {
            "key": self.key, "name": self.name, "desks": sorted(self.desks), "minutes": self.minutes,
            "speaking_min": round(self.speech_s / 60, 1),
            "mean_level_dbov": None if self.level_dbov is None else round(self.level_dbov, 1),
            "mean_rate_spm": None if self.rate_spm is None else round(self.rate_spm, 0),
            "cue_share": {c.value: round(self.cue_share(c), 3) for c in SPEECH_CUES},
            "slouched_min": round(self.slouched_s / 60, 1),
            "breaks": len(self.breaks), "break_min": round(sum(m for _, m in self.breaks), 1),
            "overruns": len(self.overruns), "max_overrun_level": max(self.overruns, default=None),
            "alerts": dict(sorted(self.alerts.items())),
            "hourly_speaking_min": [round(s / 60, 2) for s in self.hourly_speech_s],
            "calls": self.calls,
            "answered_within_rings": _round(self.answered_share, 3),
            "median_greeting_s": _round(self.median_greeting_s, 2),
            "monotone_call_share": _round(self.monotone_share, 3),
            "silent_calls": self.silent_calls,
            "silent_calls_ok": self.silent_calls_ok,
        }


def _round(v: float | None, digits: int) -> float | None:
    return None if v is None else round(v, digits)


@dataclass
class Report:
    site: str
    date: dt.date
    tz: str
    by: str
    """``desk`` or ``agent``."""
    rows: list[Row]
    floor_alerts: Counter[str]
    allowed_break_s: float

    def as_dict(self) -> dict[str, object]:
        return {"site": self.site, "date": self.date.isoformat(), "tz": self.tz, "by": self.by,
                "allowed_break_min": self.allowed_break_s / 60, "floor_alerts": dict(self.floor_alerts),
                "rows": [r.as_dict() for r in self.rows]}


def _breaks(events: Iterable[Event], day_end_ms: int) -> dict[str, list[tuple[int, float]]]:
    """Headset-off periods per desk from doffed/worn events: {desk: [(start ms, minutes)]}."""
    off_since: dict[str, int] = {}
    out: dict[str, list[tuple[int, float]]] = {}
    for e in events:
        if e.kind is EventKind.DOFFED and e.desk not in off_since:
            off_since[e.desk] = e.ts
        elif e.kind is EventKind.WORN and e.desk in off_since:
            start = off_since.pop(e.desk)
            out.setdefault(e.desk, []).append((start, (e.ts - start) / 60000))
    for desk, start in off_since.items():  # still off at the end of the day
        out.setdefault(desk, []).append((start, (day_end_ms - start) / 60000))
    return out


def build_report(store: HistoryStore, site: str, date: dt.date, *, tz_name: str = "UTC",
                 roster: list[RosterEntry] | None = None, allowed_break_s: float = 900.0) -> Report:
    """Aggregate ``site``'s day ``date`` (in time zone ``tz_name``)."""
    try:
        tz = ZoneInfo(tz_name)
    except (ZoneInfoNotFoundError, ValueError):
        raise UsageError(f"unknown time zone {tz_name!r}") from None
    start = dt.datetime.combine(date, dt.time(), tz)
    start_ms = int(start.timestamp() * 1000)
    end_ms = int((start + dt.timedelta(days=1)).timestamp() * 1000)
    by_agent = roster is not None
    rows: dict[str, Row] = {}
    names = {e.agent: e.name for e in roster or [] if e.name is not None}

    def row_for(desk: str, t_ms: int) -> Row | None:
        key = agent_at(roster, desk, t_ms) if roster is not None else desk
        if key is None:
            return None
        r = rows.get(key)
        if r is None:
            r = rows[key] = Row(key, name=names.get(key))
        r.desks.add(desk)
        return r

    for m in store.minutes(site, start_ms, end_ms):
        r = row_for(m.desk, m.minute_ts)
        if r is not None:
            hour = dt.datetime.fromtimestamp(m.minute_ts / 1000, tz).hour
            r.add_minute(m, hour)
    events = store.events(site, start_ms - 86_400_000, end_ms)
    for desk, periods in _breaks(events, end_ms).items():
        for b_start, minutes in periods:
            if b_start < start_ms:
                continue
            r = row_for(desk, b_start)
            if r is None:
                continue
            r.breaks.append((b_start, minutes))
            over_s = minutes * 60 - allowed_break_s
            if over_s > 0:
                r.overruns.append(overrun_level(over_s))
    for c in store.calls(site, start_ms, end_ms):
        r = row_for(c.desk, c.start_ts)
        if r is not None:
            r.add_call(c)
    floor_alerts: Counter[str] = Counter()
    for log in store.alert_logs(site, start_ms, end_ms):
        if log.transition is not AlertTransition.FIRING:
            continue
        if log.desk == FLOOR_DESK:
            floor_alerts[log.rule] += 1
            continue
        r = row_for(log.desk, log.ts)
        if r is not None:
            r.alerts[log.rule] += 1
    return Report(site, date, tz_name, "agent" if by_agent else "desk", sorted(rows.values(), key=lambda r: r.key),
                  floor_alerts, allowed_break_s)


# --- text formats ---------------------------------------------------------------------------------

COLUMNS = ("speaking_min", "mean_level_dbov", "mean_rate_spm", "volume", "pace", "mic", "slouched_min",
           "breaks", "overruns", "alerts", "calls", "answered", "greet_s", "monotone", "silent")


def _pct(v: float | None) -> str:
    return "-" if v is None else f"{100 * v:.0f}%"


def _silent(r: Row) -> str:
    """Silent calls and how many of them followed the norm, e.g. ``2 (1 ok)``; ``-``: far end not measured."""
    if r.silent_calls is None:
        return "-"
    return f"{r.silent_calls} ({r.silent_calls_ok} ok)" if r.silent_calls else "0"


def _flat(r: Row) -> dict[str, object]:
    d = r.as_dict()
    lvl, rate = d["mean_level_dbov"], d["mean_rate_spm"]
    return {
        "speaking_min": d["speaking_min"], "mean_level_dbov": "" if lvl is None else lvl,
        "mean_rate_spm": "" if rate is None else rate,
        "volume": f"{100 * (r.cue_share(Cue.VOLUME_LOW) + r.cue_share(Cue.VOLUME_HIGH)):.0f}%",
        "pace": f"{100 * (r.cue_share(Cue.PACE_SLOW) + r.cue_share(Cue.PACE_FAST)):.0f}%",
        "mic": f"{100 * (r.cue_share(Cue.MIC_CLOSE) + r.cue_share(Cue.MIC_FAR)):.0f}%",
        "slouched_min": d["slouched_min"], "breaks": f"{d['breaks']} ({d['break_min']} min)",
        "overruns": d["overruns"] if not r.overruns else f"{d['overruns']} (max L{max(r.overruns)})",
        "alerts": sum(r.alerts.values()),
        "calls": r.calls, "answered": _pct(r.answered_share),
        "greet_s": "-" if r.median_greeting_s is None else f"{r.median_greeting_s:.1f}",
        "monotone": _pct(r.monotone_share),
        "silent": _silent(r),
    }


def display_width(text: str) -> int:
    """Columns ``text`` takes in a terminal: wide (East Asian) characters take two."""
    return sum(2 if unicodedata.east_asian_width(c) in ("W", "F") else 0 if unicodedata.combining(c) else 1
               for c in text)


def _pad(text: str, width: int) -> str:
    return text + " " * (width - display_width(text))


def render_table(rep: Report) -> str:
    head = [rep.by, *COLUMNS]
    body = [[r.key if r.name is None else f"{r.name} ({r.key})", *(str(v) for v in _flat(r).values())]
            for r in rep.rows]
    widths = [max(display_width(h), *(display_width(b[i]) for b in body)) if body else len(h)
              for i, h in enumerate(head)]
    lines = [f"{rep.site} {rep.date.isoformat()} ({rep.tz}), by {rep.by}; cue columns: share of speech"]
    lines.append("  ".join(_pad(h, w) for h, w in zip(head, widths, strict=True)).rstrip())
    lines += ["  ".join(_pad(c, w) for c, w in zip(b, widths, strict=True)).rstrip() for b in body]
    if not rep.rows:
        lines.append("(no minute rollups for this site and day)")
    if rep.floor_alerts:
        lines.append("floor alerts: " + ", ".join(f"{k} {v}" for k, v in rep.floor_alerts.items()))
    return "\n".join(lines) + "\n"


def render_csv(rep: Report) -> str:
    import io

    buf = io.StringIO()
    cue_cols = [f"share_{c.value}" for c in SPEECH_CUES]
    w = csv.writer(buf, lineterminator="\n")
    w.writerow([rep.by, "name", "site", "date", "desks", "speaking_min", "mean_level_dbov", "mean_rate_spm", *cue_cols,
                "slouched_min", "breaks", "break_min", "overruns", "max_overrun_level", "alerts",
                "calls", "answered_within_rings", "median_greeting_s", "monotone_call_share", "silent_calls",
                "silent_calls_ok"])
    for r in rep.rows:
        d = r.as_dict()
        w.writerow([r.key, r.name or "", rep.site, rep.date.isoformat(), " ".join(sorted(r.desks)), d["speaking_min"],
                    d["mean_level_dbov"] if d["mean_level_dbov"] is not None else "",
                    d["mean_rate_spm"] if d["mean_rate_spm"] is not None else "",
                    *(f"{r.cue_share(c):.3f}" for c in SPEECH_CUES), d["slouched_min"], d["breaks"], d["break_min"],
                    d["overruns"], d["max_overrun_level"] or "", sum(r.alerts.values()), r.calls,
                    *("" if d[k] is None else d[k]
                      for k in ("answered_within_rings", "median_greeting_s", "monotone_call_share", "silent_calls",
                                "silent_calls_ok"))])
    return buf.getvalue()
