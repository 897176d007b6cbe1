"""Silence alerts: add, list, expire or extend silences.

Silences live in the host's history database, so a running host picks up a change within 2 s.
A silenced alert stays visible (marked silenced) but stops nagging.

  add      silence a rule on a desk (--desk D --rule R), a desk (--desk D), a rule on every desk
           (--rule R), or a whole site (--all) for --for (30m, 2h, 1h30m; default 30m)
  list     the running silences with their ids (--json for scripts)
  expire   end a silence now
  extend   move a silence's end later by --for

The site must be configured or seen in the history, the desk seen by the host; durations need a
unit (a bare number is an error). `silence --site S ...` without an action is `silence add`, and
`silence --list` is `silence list`, as before."""

from __future__ import annotations

import argparse
import datetime as dt
import json
from pathlib import Path

from host_agent.alerts import Silence
from host_agent.config import DEFAULT_RULES, load_config
from host_agent.errors import HostError, UsageError
from host_agent.history import SqlStore, is_postgres_url, open_store
from host_agent.silences import (
    DURATION_HELP,
    NoSuchSilence,
    as_json,
    check_ids,
    check_scope,
    check_span,
    expired,
    extended,
    human_left,
    parse_span,
)
from host_agent.timeflags import add_time_flags, clock_from_args, refuse_empty

EXAMPLE = """examples:
  headset-host silence add --config host.toml --site site1 --desk d07 --rule break-overrun --for 30m
  headset-host silence add --config host.toml --site site1 --rule noisy-floor --for 2h
  headset-host silence list --config host.toml
  headset-host silence extend --config host.toml 12 --for 1h
  headset-host silence expire --config host.toml 12"""
EXAMPLES = {
    "add": """example:
  headset-host silence add --config host.toml --site site1 --desk d07 --rule break-overrun --for 1h30m
  headset-host silence add --config host.toml --site site1 --all --for 15m   # every alert of the site""",
    "list": """example:
  headset-host silence list --config host.toml --site site1""",
    "expire": """example:
  headset-host silence expire --config host.toml 12""",
    "extend": """example:
  headset-host silence extend --config host.toml 12 --for 1h""",
}
ACTIONS = {
    "add": "silence a rule, a desk or (with --all) a whole site for a while",
    "list": "list the running silences with their ids",
    "expire": "end a silence now",
    "extend": "move a silence's end later",
}

MAX_ID = 2**63 - 1
"""The largest silence id: ids are 64-bit signed integers in both backends."""


def _db_flags(p: argparse.ArgumentParser) -> None:
    src = p.add_mutually_exclusive_group()
    src.add_argument("--config", help="host config TOML (its host.db and its sites are used)")
    src.add_argument("--db", help="the host's history database: a file, or postgresql://user:pass@host:port/dbname")


def _add_flags(p: argparse.ArgumentParser | argparse._ArgumentGroup) -> None:
    p.add_argument("--site", help="site id (configured, or seen in the history)")
    p.add_argument("--desk", help="desk id the host has seen (default: every desk of the site)")
    p.add_argument("--rule", help=f"rule id ({', '.join(DEFAULT_RULES)}; default: every rule)")
    p.add_argument("--all", action="store_true", dest="everything",
                   help="confirm silencing every alert of the site (needed without --desk and --rule)")
    p.add_argument("--for", dest="duration", metavar="DURATION", help=f"how long: {DURATION_HELP}; default 30m")
    p.add_argument("--by", help="who silenced it (shown in the list; default cli)")


def configure(parser: argparse.ArgumentParser) -> None:
    _db_flags(parser)
    old = parser.add_argument_group("without an action (the old form): the options of `add`")
    _add_flags(old)
    old.add_argument("--list", action="store_true", help="same as `silence list`")
    add_time_flags(parser)
    parser.set_defaults(action=None, id=None, json=False)
    sub = parser.add_subparsers(dest="action", metavar="ACTION", title="actions")
    for name, help_text in ACTIONS.items():
        p = sub.add_parser(name, help=help_text, description=help_text[0].upper() + help_text[1:] + ".",
                           epilog=EXAMPLES[name], formatter_class=argparse.RawDescriptionHelpFormatter)
        _db_flags(p)
        if name == "add":
            _add_flags(p)
        elif name == "list":
            p.add_argument("--site", help="only this site's silences")
            p.add_argument("--json", action="store_true", help="print JSON (ids, times in host-clock ms)")
        else:
            p.add_argument("id", type=int, metavar="ID", help="the silence's id (from `silence list`)")
            if name == "extend":
                p.add_argument("--for", dest="duration", metavar="DURATION", required=True,
                               help=f"how much longer: {DURATION_HELP}")
        add_time_flags(p)
        # Options given before the action (`silence --db h.db list`) must survive: the action's own
        # defaults would overwrite them, so it has none (the parent parser's defaults apply).
        for action in p._actions:
            if action.dest not in ("help", "id"):
                action.default = argparse.SUPPRESS


def _utc(ms: int) -> str:
    return dt.datetime.fromtimestamp(ms / 1000, dt.UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


def _what(s: Silence) -> str:
    rule = "every rule" if s.rule == "*" else s.rule
    where = f"every desk of {s.site}" if s.desk == "*" else f"{s.site}/{s.desk}"
    return f"{rule} on {where}"


def run(args: argparse.Namespace) -> int:
    action = args.action or ("list" if args.list else "add")
    refuse_empty(*((f"--{flag}", getattr(args, flag, None), what) for flag, what in (
        ("config", "empty path"), ("db", "empty path"), ("site", "empty"), ("desk", "empty (leave it out for every desk)"),
        ("rule", "empty (leave it out for every rule)"), ("by", "empty (leave it out for cli)"))))
    if args.list and args.action not in (None, "list"):
        raise UsageError(f"--list is `silence list`; it does not go with `silence {args.action}`")
    if args.config and args.db:
        raise UsageError("give --config or --db, not both")
    if not (args.config or args.db):
        raise UsageError("one of --config or --db is required")
    config = load_config(args.config) if args.config else None
    rules = tuple(config.rules) if config else tuple(DEFAULT_RULES)
    db = config.db if config else args.db
    now = clock_from_args(args).now_ms()
    seconds = 0.0
    duration = "30m" if args.duration is None else args.duration  # an empty --for is an error, not 30m
    if action in ("add", "extend"):
        try:
            span = parse_span(duration)
        except UsageError as exc:
            raise UsageError(f"--for: {exc}") from None
        seconds = check_span(span, f"--for {duration}")
    if action in ("expire", "extend") and not 1 <= args.id <= MAX_ID:
        raise NoSuchSilence(f"no silence {args.id}")  # ids are 1..2^63-1: the database cannot even look others up
    if action == "add":
        site, desk, rule = args.site, args.desk or "*", args.rule or "*"
        if site is None:
            raise UsageError("--site is required")
        check_ids(site, desk, rule, rules)
    if not is_postgres_url(db) and not Path(db).exists() and not (action == "add" and config is not None):
        raise HostError(f"no history database at {db}: has the host run with it yet?")
    store = open_store(db)
    try:
        if action == "list":
            return _list(store, now, args.site, args.json)
        if action == "add":
            known_sites = set(config.sites if config else ()) | set(store.sites())
            check_scope(site, desk, rule, everything=args.everything, rules=rules, known_sites=known_sites,
                        known_desks={(r.site, r.desk) for r in store.desks()})
            s = Silence(site, desk, rule, now + int(seconds * 1000), now, (args.by or "cli")[:64])
            sid = store.add_silence(s)
            store.commit()
            print(f"silenced {_what(s)} for {duration}: silence {sid}, until {_utc(s.until_ms)}")
            return 0
        old = store.silence_by_id(args.id)
        if action == "expire":
            s = expired(args.id, old, now)
        else:
            s = extended(args.id, old, now, seconds)
        store.set_silence_until(args.id, s.until_ms)
        store.commit()
        if action == "expire":
            print(f"expired silence {args.id} ({_what(s)})")
        else:
            print(f"extended silence {args.id} ({_what(s)}) by {args.duration}: until {_utc(s.until_ms)}, "
                  f"{human_left((s.until_ms - now) / 1000)} left")
        return 0
    finally:
        store.close()


def _list(store: SqlStore, now: int, site: str | None, as_json_out: bool) -> int:
    rows = [(i, s) for i, s in store.silence_rows(now) if site is None or s.site == site]
    if as_json_out:
        print(json.dumps([as_json(i, s, now) for i, s in rows], indent=1))
        return 0
    if not rows:
        print("no running silences" + (f" on site {site}" if site else ""))
        return 0
    table = [("id", "site", "desk", "rule", "until", "left", "by")]
    table += [(str(i), s.site, s.desk, s.rule, _utc(s.until_ms), human_left((s.until_ms - now) / 1000), s.by)
              for i, s in rows]
    widths = [max(len(r[c]) for r in table) for c in range(len(table[0]))]
    for r in table:
        print("  ".join(v.ljust(w) for v, w in zip(r, widths, strict=True)).rstrip())
    return 0
