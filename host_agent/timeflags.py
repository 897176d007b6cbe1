"""Command-line pieces shared by the host commands: time-scale flags, durations like ``30m``, and the
refusal of empty arguments."""

from __future__ import annotations

import argparse
import re

from host_agent.clock import ScaledClock
from host_agent.errors import UsageError
from mqtt_schema.clock import check_time_flags
from mqtt_schema.flags import empty_flag

_DURATION_RE = re.compile(r"(\d+(?:\.\d+)?)([smhd])")
_UNIT_S = {"s": 1, "m": 60, "h": 3600, "d": 86400}


def parse_duration(text: str) -> float:
    """``90s``, ``30m``, ``1h30m``, ``2d`` or plain seconds -> seconds."""
    t = text.strip().lower()
    try:
        return float(t)
    except ValueError:
        pass
    pos, total = 0, 0.0
    for m in _DURATION_RE.finditer(t):
        if m.start() != pos:
            break
        total += float(m.group(1)) * _UNIT_S[m.group(2)]
        pos = m.end()
    if pos != len(t) or not t:
        raise UsageError(f"bad duration {text!r}: use e.g. 90s, 30m, 1h30m or 2d")
    return total


def refuse_empty(*flags: tuple[str, str | None, str]) -> None:
    """:func:`mqtt_schema.flags.empty_flag` as a :class:`UsageError` (``"FLAG: WHAT"``)."""
    problem = empty_flag(*flags)
    if problem is not None:
        raise UsageError(problem)


def add_time_flags(parser: argparse.ArgumentParser) -> None:
    g = parser.add_argument_group("time scale (demos and simulations)")
    g.add_argument("--time-scale", type=float, default=1.0, metavar="S",
                   help="run the host clock S times faster than wall time (default 1; 1e-9 to 1000)")
    g.add_argument("--time-origin-ms", type=int, default=None, metavar="T",
                   help="origin of the scaled clock, ms since the epoch (default: now); desks must use the same T")


def clock_from_args(args: argparse.Namespace) -> ScaledClock:
    """The clock of ``--time-scale S --time-origin-ms T``; :class:`UsageError` for a value out of range."""
    try:
        check_time_flags(args.time_scale, args.time_origin_ms)
    except ValueError as exc:
        raise UsageError(str(exc)) from None
    return ScaledClock(args.time_scale, args.time_origin_ms)
