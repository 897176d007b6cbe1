"""Daily report of one site from the host's history: per desk (or per agent with --roster) speaking
time, mean level and rate, share of speech in each cue zone, slouched minutes, breaks and overruns,
and alerts. Formats: an aligned table, CSV, JSON, or a self-contained HTML page with charts.

The roster CSV has the columns desk,agent,start,end (ISO 8601 times in --tz; an empty end means the
agent is still at that desk)."""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import sys
import tempfile
from pathlib import Path

from host_agent.config import load_config
from host_agent.errors import HostError, UsageError
from host_agent.history import is_postgres_url, open_store, redact
from host_agent.report import build_report, render_csv, render_table
from host_agent.report_html import render_html
from host_agent.roster import load_roster
from host_agent.timeflags import refuse_empty
from mqtt_schema import SchemaError, check_id

EXAMPLE = """example:
  headset-host report --config host.toml --site site1 --date 2026-11-22 --format html > report.html"""


def configure(parser: argparse.ArgumentParser) -> None:
    src = parser.add_mutually_exclusive_group(required=True)
    src.add_argument("--config", help="host config TOML (its host.db and allowed break are used)")
    src.add_argument("--db", help="the host's history database: a file, or postgresql://user:pass@host:port/dbname")
    parser.add_argument("--site", required=True, help="site id")
    parser.add_argument("--date", default=None, help="day to report, YYYY-MM-DD (default: today in --tz)")
    parser.add_argument("--tz", default="UTC", help="time zone of the day, e.g. Asia/Shanghai (default UTC)")
    parser.add_argument("--format", choices=("table", "csv", "json", "html"), default="table")
    parser.add_argument("--roster", help="CSV desk,agent,start,end: report per agent instead of per desk")
    parser.add_argument("-o", "--output", help="write to this file instead of stdout")


def run(args: argparse.Namespace) -> int:
    refuse_empty(("--config", args.config, "empty path"), ("--db", args.db, "empty path"),
                 ("--date", args.date, "empty (give a day like 2026-11-22, or leave it out for today)"),
                 ("--roster", args.roster, "empty path"), ("-o", args.output, "empty path (leave it out to write to stdout)"))
    try:
        site = check_id(args.site, "site")
    except SchemaError as exc:
        raise UsageError(str(exc)) from None
    if args.config:
        cfg = load_config(args.config)
        db, allowed = cfg.db, cfg.allowed_break(site)
    else:
        db, allowed = args.db, 900.0
    from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

    try:
        tz = ZoneInfo(args.tz)
    except (ZoneInfoNotFoundError, ValueError):
        raise UsageError(f"unknown time zone {args.tz!r}") from None
    try:
        date = dt.date.fromisoformat(args.date) if args.date else dt.datetime.now(tz).date()
        date + dt.timedelta(days=1)  # the day's end is a date too (not so for 9999-12-31)
    except (ValueError, OverflowError):
        raise UsageError(f"--date {args.date!r} is not a date like 2026-11-22") from None
    if args.output:
        check_output(args.output, {"the history database": None if is_postgres_url(db) else db,
                                   "the --config file": args.config, "the --roster file": args.roster})
    roster = load_roster(args.roster, tz) if args.roster else None
    store = open_store(db, readonly=True)
    try:
        known = set(store.sites()) | set(cfg.sites if args.config else ())
        if site not in known:
            have = ", ".join(sorted(known)) or "none yet"
            raise UsageError(f"unknown site {site!r}: the history {redact(db)} knows the sites {have}")
        rep = build_report(store, site, date, tz_name=args.tz, roster=roster, allowed_break_s=allowed)
    finally:
        store.close()
    if args.format == "json":
        text = json.dumps(rep.as_dict(), indent=2) + "\n"
    elif args.format == "csv":
        text = render_csv(rep)
    elif args.format == "html":
        text = render_html(rep)
    else:
        text = render_table(rep)
    if args.output:
        write_output(args.output, text)
        print(f"wrote {args.output} ({len(rep.rows)} {rep.by}s)", file=sys.stderr)
    else:
        sys.stdout.write(text)
    return 0


def check_output(path: str, inputs: dict[str, str | None]) -> None:
    """Refuse an ``-o`` that is one of the report's own inputs (``{what: path}``): the report would replace it."""
    for what, source in inputs.items():
        try:
            same = source is not None and os.path.samefile(path, source)
        except OSError:  # one of them does not exist (yet): not the same file
            same = False
        if same:
            raise UsageError(f"-o {path} is {what}: the report would replace it; write the report to another file")


def write_output(path: str, text: str) -> None:
    """Write ``text`` to ``path`` whole or not at all (a temp file in the same folder, then a rename).

    Raises :class:`HostError` naming the path when the folder is missing or not writable.
    """
    target = Path(path)
    folder = target.parent
    if not folder.is_dir():
        raise HostError(f"cannot write the report to {path}: the folder {folder} does not exist")
    if target.is_dir():
        raise HostError(f"cannot write the report to {path}: it is a folder")
    tmp: str | None = None
    try:
        fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=folder)
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(text)
        umask = os.umask(0o022)  # single-threaded CLI: read the umask to give the usual file mode
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)
        os.replace(tmp, target)
        tmp = None
    except OSError as exc:
        raise HostError(f"cannot write the report to {path}: {exc.strerror or exc}") from None
    finally:
        if tmp is not None:
            Path(tmp).unlink(missing_ok=True)
