"""Silence rules shared by ``headset-host silence`` and the dashboard: durations, scope, extend.

A silence is (site, desk or ``*``, rule or ``*``, until), stored by id in the history database. Times
are host-clock milliseconds; durations are written with units (``30m``, ``2h``, ``1h30m``). The rules:

- a bare number is refused (it used to be taken as seconds, which nobody meant);
- a silence lasts more than 0 s and at most :data:`MAX_SILENCE_S` (7 days) from now;
- a silence of a whole site (no desk and no rule) needs ``everything`` (``--all``);
- the site must be known (configured, or seen in the history), and so must the desk (a desk the host
  has seen, or the site-wide ``floor``);
- expiring ends a running silence now; extending moves its end ``seconds`` further (from its current
  end). An ended silence is neither expired nor extended again: add a new one.
"""

from __future__ import annotations

import re
from collections.abc import Collection, Iterable
from typing import Any

from host_agent.alerts import Silence
from host_agent.errors import UsageError
from host_agent.rules import FLOOR_DESK
from host_agent.timeflags import parse_duration
from mqtt_schema import SchemaError, check_id

MAX_SILENCE_S = 7 * 86400
"""The longest a silence may last from now, in seconds."""
DURATION_HELP = "30m, 2h, 1h30m, 1d (a unit is required)"
_BARE_NUMBER = re.compile(r"\s*[0-9.]+\s*")


class NoSuchSilence(UsageError):
    """No silence has that id."""


def parse_span(text: str) -> float:
    """``30m``, ``2h``, ``1h30m``, ``90s``, ``1d`` -> seconds. A bare number (``90``) is an error."""
    if _BARE_NUMBER.fullmatch(text):
        raise UsageError(f"bad duration {text!r}: give a unit, e.g. 30m, 2h or 1h30m "
                         "(a bare number is not taken as seconds)")
    return parse_duration(text)


def human_span(seconds: float) -> str:
    """``45s``, ``30m``, ``1h30m``, ``2d3h``: the inverse of :func:`parse_span`, to the second."""
    s = max(0, int(round(seconds)))
    parts: list[str] = []
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60), ("s", 1)):
        if s >= size or (unit == "s" and not parts):
            parts.append(f"{s // size}{unit}")
            s %= size
    return "".join(parts)


def human_left(seconds: float) -> str:
    """Time left, to the second under 10 min and to the minute above (``4m05s``, ``1h30m``)."""
    return human_span(seconds if seconds < 600 else round(seconds / 60) * 60)


def check_span(seconds: float, what: str) -> float:
    if not 0 < seconds <= MAX_SILENCE_S:
        raise UsageError(f"{what} must be more than 0 and at most 7 days")
    return seconds


def check_scope(site: str, desk: str, rule: str, *, everything: bool, rules: Collection[str],
                known_sites: Iterable[str], known_desks: Iterable[tuple[str, str]]) -> None:
    """Raise :class:`UsageError` unless (site, desk, rule) is a silence one may add (see the module doc)."""
    check_ids(site, desk, rule, rules)
    sites = set(known_sites)
    if site not in sites:
        known = ", ".join(sorted(sites)) or "none yet: no site configured and no desk seen"
        raise UsageError(f"unknown site {site!r} (known: {known})")
    if desk != "*" and desk != FLOOR_DESK:
        desks = sorted(d for s, d in known_desks if s == site)
        if desk not in desks:
            raise UsageError(f"unknown desk {desk!r} on site {site} (seen: {', '.join(desks) or 'none yet'})")
    if desk == "*" and rule == "*" and not everything:
        raise UsageError(f"this would silence every alert of site {site}: name a desk or a rule, "
                         "or confirm with --all")


def check_ids(site: str, desk: str, rule: str, rules: Collection[str]) -> None:
    """The checks that need no history: well-formed ids, and a rule the host has."""
    try:
        check_id(site, "site")
        if desk != "*":
            check_id(desk, "desk")
        if rule != "*":
            check_id(rule, "rule")
    except SchemaError as exc:
        raise UsageError(str(exc)) from None
    if rule != "*" and rule not in rules:
        raise UsageError(f"unknown rule {rule!r} (known: {', '.join(rules)})")


def expired(silence_id: int, s: Silence | None, now_ms: int) -> Silence:
    """``s`` ended now. Raises :class:`NoSuchSilence`, or :class:`UsageError` if it has ended already."""
    return _replace_until(_running(silence_id, s, now_ms), now_ms)


def extended(silence_id: int, s: Silence | None, now_ms: int, seconds: float) -> Silence:
    """``s`` with its end ``seconds`` later; at most :data:`MAX_SILENCE_S` from now."""
    running = _running(silence_id, s, now_ms)
    check_span(seconds, "the extension")
    until = running.until_ms + int(seconds * 1000)
    if until - now_ms > MAX_SILENCE_S * 1000:
        left = human_span((running.until_ms - now_ms) / 1000)
        raise UsageError(f"silence {silence_id} has {left} left: extending it by {human_span(seconds)} "
                         "would take it past 7 days from now")
    return _replace_until(running, until)


def _running(silence_id: int, s: Silence | None, now_ms: int) -> Silence:
    if s is None:
        raise NoSuchSilence(f"no silence {silence_id}")
    if s.until_ms <= now_ms:
        raise UsageError(f"silence {silence_id} has already ended: add a new one")
    return s


def _replace_until(s: Silence, until_ms: int) -> Silence:
    return Silence(s.site, s.desk, s.rule, until_ms, s.created_ms, s.by)


def as_json(silence_id: int, s: Silence, now_ms: int) -> dict[str, Any]:
    """The dashboard's and ``silence list --json``'s view of one silence."""
    return {"id": silence_id, "site": s.site, "desk": s.desk, "rule": s.rule, "until_ms": s.until_ms,
            "created_ms": s.created_ms, "by": s.by, "left_s": max(0.0, (s.until_ms - now_ms) / 1000)}
