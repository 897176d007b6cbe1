"""Silence an alert rule for a desk (or every desk, ``--desk '*'``) for a while.

The silence is stored in the host's history database, so a running host picks it up within a few
seconds. Silenced alerts stay visible (marked silenced) but stop nagging. ``--list`` shows the
active silences."""

from __future__ import annotations

import argparse
import datetime as dt

from host_agent.alerts import Silence
from host_agent.config import DEFAULT_RULES, load_config
from host_agent.errors import UsageError
from host_agent.storage import SqliteStore
from host_agent.timeflags import add_time_flags, clock_from_args, parse_duration
from mqtt_schema import SchemaError, check_id

EXAMPLE = """example:
  headset-host silence --config host.toml --site site1 --desk d07 --rule break-overrun --for 30m"""


def configure(parser: argparse.ArgumentParser) -> None:
    src = parser.add_mutually_exclusive_group(required=True)
    src.add_argument("--config", help="host config TOML (its host.db is used)")
    src.add_argument("--db", help="the host's history database")
    parser.add_argument("--site", help="site id")
    parser.add_argument("--desk", default="*", help="desk id, or '*' for every desk of the site (default)")
    parser.add_argument("--rule", default="*", help=f"rule id ({', '.join(DEFAULT_RULES)}) or '*' (default)")
    parser.add_argument("--for", dest="duration", default="30m", help="how long: 90s, 30m, 2h (default 30m)")
    parser.add_argument("--by", default="cli", help="who silenced it (shown in the history)")
    parser.add_argument("--list", action="store_true", help="list the active silences instead")
    add_time_flags(parser)


def _check(value: str | None, what: str, wildcard: bool) -> str:
    if value is None:
        raise UsageError(f"--{what} is required")
    if wildcard and value == "*":
        return value
    try:
        return check_id(value, what)
    except SchemaError as exc:
        raise UsageError(str(exc)) from None


def run(args: argparse.Namespace) -> int:
    db = load_config(args.config).db if args.config else args.db
    clock = clock_from_args(args)
    now = clock.now_ms()
    store = SqliteStore(db)
    try:
        if args.list:
            for s in store.silences(now):
                until = dt.datetime.fromtimestamp(s.until_ms / 1000, dt.UTC).strftime("%Y-%m-%d %H:%M:%S UTC")
                print(f"{s.site}\t{s.desk}\t{s.rule}\tuntil {until}\tby {s.by}")
            return 0
        site = _check(args.site, "site", False)
        desk = _check(args.desk, "desk", True)
        rule = _check(args.rule, "rule", True)
        if rule != "*" and rule not in DEFAULT_RULES:
            raise UsageError(f"unknown rule {rule!r} (known: {', '.join(DEFAULT_RULES)})")
        seconds = parse_duration(args.duration)
        if not 0 < seconds <= 7 * 86400:
            raise UsageError(f"--for {args.duration} must be more than 0 and at most 7 days")
        store.add_silence(Silence(site, desk, rule, now + int(seconds * 1000), now, args.by[:64]))
        store.commit()
        print(f"silenced {rule} on {site}/{desk} for {args.duration}")
        return 0
    finally:
        store.close()
