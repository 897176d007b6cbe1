"""Show, filter or export the flashing inventory (one row per board flash, failures included).

--latest keeps each board's most recent row (what each board holds now); --site and --model filter
(after --latest: the boards that are at that site now). --format csv or json exports every column
with its name (a header row in CSV); the table shows the columns people read."""

from __future__ import annotations

import argparse
import sys

from hw.commands import check_ids, refuse_empty
from hw.errors import UsageError
from hw.flashing.inventory import DEFAULT_PATH, Inventory, Record
from hw.flashing.table import format_table

EXAMPLE = """example:
  headset-flash inventory
  headset-flash inventory --latest --site site1
  headset-flash inventory --model jabra-biz-2300 --format csv > jabra.csv
  headset-flash inventory --latest --format json > boards.json"""

HEADER = ("time", "board id", "result", "firmware", "fw hash", "micropython", "operator", "site/desk", "model",
          "port", "detail")


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--inventory", default=str(DEFAULT_PATH), help="inventory database (default %(default)s)")
    parser.add_argument("--site", help="only rows of this site id")
    parser.add_argument("--model", help="only rows of this headset model id")
    parser.add_argument("--latest", action="store_true", help="only the most recent row of each board")
    parser.add_argument("--format", choices=("table", "csv", "json"), default=None,
                        help="output format (default table)")
    parser.add_argument("--csv", action="store_true", help="the same as --format csv")


def table_row(r: Record) -> tuple[str, ...]:
    return (r.time, r.board_id or "-", r.result, r.fw_version, r.fw_hash[:12], r.micropython or "-", r.operator,
            f"{r.site or '-'}/{r.desk or '-'}", r.model or "-", r.port, r.detail)


def run(args: argparse.Namespace) -> int:
    if args.csv and args.format not in (None, "csv"):
        raise UsageError(f"--csv and --format {args.format} contradict each other")
    fmt = "csv" if args.csv else (args.format or "table")
    refuse_empty(("--inventory", args.inventory, "empty path"))
    check_ids(("--site", args.site), ("--model", args.model))
    inv = Inventory(args.inventory, create=False)  # a listing: a path that does not exist is an error
    try:
        recs = inv.records(site=args.site, model=args.model, latest=args.latest)
        if fmt == "csv":
            inv.write_csv(sys.stdout, recs)
        elif fmt == "json":
            inv.write_json(sys.stdout, recs)
        elif not recs:
            filtered = args.site is not None or args.model is not None
            print(f"no flashes recorded in {args.inventory}" + (" that match the filters" if filtered else ""))
        else:
            print(format_table(HEADER, [table_row(r) for r in recs]))
    finally:
        inv.close()
    return 0
