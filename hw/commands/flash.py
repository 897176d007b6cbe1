"""Flash, verify and self-test the headset firmware on one board or a batch.

For each board: check MicroPython >= 1.20, read the board's device config (hs_config.json), copy
the firmware through mpremote's transport (skipping files whose on-board SHA-256 already matches,
unless --force; each file goes to a temporary name, is verified, then renamed), write the device
config, verify every file, soft-reset, wait for the firmware's hello, run the self-test (IMU gravity
in range, wear sensor readable), and record the result in the inventory. Boards are flashed in
parallel; a failure does not stop the others; the exit status is 1 when any board failed.

A re-flash keeps each board's config (site, desk, model, orientation, ...): a flag replaces only its
own value. --replace-config writes the flags alone (the rest goes back to the firmware's defaults).
--site, --desk and --model are ids ([a-z0-9-], at most 32 characters), as in the MQTT topics."""

from __future__ import annotations

import argparse
import getpass
import sys

from hw.cli import PROG
from hw.errors import UsageError
from hw.flashing.batch import ProgressPrinter, flash_many, summary_table
from hw.flashing.device_config import requested_config
from hw.flashing.inventory import DEFAULT_PATH, Inventory
from hw.flashing.manifest import FIRMWARE_DIR, Manifest
from hw.flashing.ports import find_boards

EXAMPLE = """example:
  headset-flash flash --port /dev/ttyACM0 --site site1 --desk d01 --operator alice
  headset-flash flash --all --operator alice --orientation=-y+x+z
  headset-flash flash --all --operator alice        # firmware update: each board keeps its site/desk"""


def configure(parser: argparse.ArgumentParser) -> None:
    where = parser.add_mutually_exclusive_group(required=True)
    where.add_argument("--port", action="append", help="serial port of a board (repeat for a batch)")
    where.add_argument("--all", action="store_true", help="every MicroPython board found by USB VID:PID")
    parser.add_argument("--force", action="store_true", help="rewrite files even when the board's copy matches")
    parser.add_argument("--operator", default=None, help="who flashes (default: the login name)")
    parser.add_argument("--site", help="site id written to the device config (default: keep the board's)")
    parser.add_argument("--desk", help="desk id written to the device config (default: keep the board's)")
    parser.add_argument("--orientation", help="IMU mounting: device axes for forward,left,up, e.g. +x+y+z or "
                        "--orientation=-y+x+z (default: keep the board's)")
    parser.add_argument("--model", help="headset model name written to the device config (default: keep the board's)")
    parser.add_argument("--replace-config", action="store_true",
                        help="write the device config from these flags alone, dropping the board's other settings")
    parser.add_argument("--inventory", default=str(DEFAULT_PATH), help="inventory database (default %(default)s)")
    parser.add_argument("--firmware-dir", default=str(FIRMWARE_DIR), help=argparse.SUPPRESS)
    parser.add_argument("--hello-timeout", type=float, default=15.0, help="seconds to wait for the firmware's hello")
    parser.add_argument("--connect-timeout", type=float, default=10.0,
                        help="seconds to wait for a board's raw REPL (default %(default)s)")


def run(args: argparse.Namespace) -> int:
    from pathlib import Path

    # Every input is checked before a board or the inventory is touched.
    requested = requested_config(site=args.site, desk=args.desk, orientation=args.orientation, model=args.model)
    if args.hello_timeout <= 0 or args.connect_timeout <= 0:
        raise UsageError("--hello-timeout and --connect-timeout must be positive")
    ports = args.port or [b.port for b in find_boards()]
    if not ports:
        raise UsageError("no MicroPython board found on any serial port (plug one in, or name it with --port)")
    if len(set(ports)) != len(ports):
        raise UsageError("a port is named twice")
    manifest = Manifest.load(Path(args.firmware_dir))
    operator = args.operator or getpass.getuser()
    inventory = Inventory(args.inventory)
    print(f"flashing firmware {manifest.version} ({manifest.fw_hash[:12]}) to {len(ports)} board(s)", file=sys.stderr)
    try:
        results = flash_many(ports, manifest, requested, inventory, operator, force=args.force,
                             progress=ProgressPrinter(), hello_timeout_s=args.hello_timeout,
                             replace_config=args.replace_config, connect_timeout_s=args.connect_timeout)
    finally:
        inventory.close()
    print(summary_table(results))
    for r in results:  # each failure once more as the tool's one error line (the table may be in a log)
        if not r.ok:
            print(f"{PROG}: {r.error}", file=sys.stderr)
    return 0 if all(r.ok for r in results) else 1
