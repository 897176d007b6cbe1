"""Show the flashing inventory, or export it as CSV (one row per board flash, failures included)."""

from __future__ import annotations

import argparse
import sys

from hw.flashing.inventory import DEFAULT_PATH, Inventory

EXAMPLE = """example:
  headset-flash inventory
  headset-flash inventory --csv > inventory.csv"""


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--inventory", default=str(DEFAULT_PATH), help="inventory database (default %(default)s)")
    parser.add_argument("--csv", action="store_true", help="write CSV to stdout")


def run(args: argparse.Namespace) -> int:
    inv = Inventory(args.inventory)
    try:
        if args.csv:
            inv.write_csv(sys.stdout)
            return 0
        recs = inv.records()
        if not recs:
            print(f"no flashes recorded in {args.inventory}")
            return 0
        for r in recs:
            print(f"{r.time}  {r.board_id or '-':<16}  {r.result:<6}  fw {r.fw_version} {r.fw_hash[:12]}  "
                  f"{r.operator}  {r.site}/{r.desk}  {r.detail}")
    finally:
        inv.close()
    return 0
