"""The roster: which agent sat at which desk when, and their display names, from a CSV that site staff
keep (``desk,agent,start,end[,name]``, ISO times in the site's time zone). The daily report
(``host_agent/report.py``) credits each minute to the agent the roster seats at its desk then.
"""

from __future__ import annotations

import csv
import datetime as dt
import unicodedata
from dataclasses import dataclass
from pathlib import Path
from zoneinfo import ZoneInfo

from host_agent.errors import UsageError
from mqtt_schema import SchemaError, check_id


@dataclass(frozen=True)
class RosterEntry:
    """Agent ``agent`` sat at ``desk`` from ``start_ms`` (inclusive) to ``end_ms`` (exclusive, None: open).

    ``name`` is the agent's display name (any Unicode, e.g. 李伟), separate from the id."""

    desk: str
    agent: str
    start_ms: int
    end_ms: int | None
    name: str | None = None


def _parse_time(text: str, tz: ZoneInfo, where: str) -> int:
    try:
        t = dt.datetime.fromisoformat(text.strip())
    except ValueError:
        raise UsageError(f"{where}: {text!r} is not an ISO 8601 time like 2026-11-22T09:00") from None
    if t.tzinfo is None:
        t = t.replace(tzinfo=tz)
    return int(t.timestamp() * 1000)


MAX_NAME_CHARS = 64
"""Longest display name in a roster (characters)."""


def check_display_name(text: str, where: str) -> str | None:
    """A roster display name: any printable Unicode, at most :data:`MAX_NAME_CHARS` characters
    (None when empty); raises :class:`UsageError` naming ``where`` otherwise."""
    name = unicodedata.normalize("NFC", text.strip())
    if not name:
        return None
    if len(name) > MAX_NAME_CHARS:
        raise UsageError(f"{where}: name is {len(name)} characters long (at most {MAX_NAME_CHARS})")
    bad = [c for c in name if unicodedata.category(c) in ("Cc", "Cf", "Cs", "Co", "Cn", "Zl", "Zp")]
    if bad:
        raise UsageError(f"{where}: name {name!r} holds a control or unassigned character ({bad[0]!r})")
    return name


def load_roster(path: str | Path, tz: ZoneInfo) -> list[RosterEntry]:
    """Read a roster CSV with the columns ``desk,agent,start,end`` (ISO times; empty end = still there)
    and optionally ``name`` (the agent's display name, any Unicode; UTF-8 file)."""
    p = Path(path)
    try:
        text = p.read_text(encoding="utf-8-sig")
    except OSError as exc:
        raise UsageError(f"cannot read roster {p}: {exc.strerror or exc}") from None
    except UnicodeDecodeError as exc:
        raise UsageError(f"roster {p} is not UTF-8 text (byte {exc.start}): save it as UTF-8") from None
    reader = csv.DictReader(text.splitlines())
    need = {"desk", "agent", "start", "end"}
    if not reader.fieldnames or not need <= set(reader.fieldnames):
        raise UsageError(f"roster {p} needs the columns desk,agent,start,end (has {reader.fieldnames})")
    out = []
    for i, r in enumerate(reader, start=2):
        where = f"roster {p.name} line {i}"
        if any(r[k] is None for k in need):  # a short row: DictReader fills the missing columns with None
            raise UsageError(f"{where}: has {len([v for v in r.values() if v is not None])} fields, "
                             f"not the columns {','.join(reader.fieldnames)}")
        try:
            desk, agent = check_id(r["desk"].strip(), "desk"), check_id(r["agent"].strip(), "agent")
        except SchemaError as exc:
            raise UsageError(f"{where}: {exc}") from None
        start = _parse_time(r["start"], tz, where)
        end = _parse_time(r["end"], tz, where) if r["end"].strip() else None
        if end is not None and end <= start:
            raise UsageError(f"{where}: end is not after start")
        name = check_display_name(r.get("name") or "", where) if "name" in reader.fieldnames else None
        out.append(RosterEntry(desk, agent, start, end, name))
    names: dict[str, str] = {}
    for e in out:
        if e.name is not None and names.setdefault(e.agent, e.name) != e.name:
            raise UsageError(f"roster {p.name}: agent {e.agent!r} has two names, {names[e.agent]!r} and {e.name!r}")
    return out


def agent_at(roster: list[RosterEntry], desk: str, t_ms: int) -> str | None:
    """The agent the roster seats at ``desk`` at ``t_ms`` (ms since the epoch), None if nobody."""
    for e in roster:
        if e.desk == desk and e.start_ms <= t_ms and (e.end_ms is None or t_ms < e.end_ms):
            return e.agent
    return None
