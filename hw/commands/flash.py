"""Flash, verify and self-test the headset firmware on one board or a batch.

For each board: check MicroPython >= 1.20, read the board's device config (hs_config.json), copy
the firmware through mpremote's transport (skipping files whose on-board SHA-256 already matches,
unless --force; each file goes to a temporary name, is verified, then renamed), write the device
config, verify every file, soft-reset, wait for the firmware's hello, run the self-test (IMU gravity
in range, wear sensor readable), and record the result in the inventory. Boards are flashed in
parallel; a failure does not stop the others; the exit status is 1 when any board failed.

A re-flash keeps each board's config (site, desk, model, orientation, ...): a flag replaces only its
own value. --replace-config writes the flags alone (the rest goes back to the firmware's defaults).
--site, --desk and --model are ids ([a-z0-9-], at most 32 characters), as in the MQTT topics.

A staged rollout: --only-older first asks each board for its firmware version (over the headset
link, else from the board's hs_app.py over the raw REPL) and flashes only the boards whose firmware
is older than this one (compared as versions) or that have none; --batch N flashes at most N boards
in this run and names the ones left for the next run."""

from __future__ import annotations

import argparse
import getpass
import sys
from concurrent.futures import ThreadPoolExecutor

from hw.cli import PROG
from hw.commands import MAX_WAIT_S, check_seconds, refuse_empty
from hw.errors import UsageError
from hw.flashing.batch import ProgressPrinter, flash_many, summary_table
from hw.flashing.device_config import requested_config
from hw.flashing.inventory import DEFAULT_PATH, Inventory
from hw.flashing.manifest import FIRMWARE_DIR, Manifest
from hw.flashing.ports import BoardInfo, find_boards, probe
from hw.flashing.versions import is_older

EXAMPLE = """example:
  headset-flash flash --port /dev/ttyACM0 --site site1 --desk d01 --operator alice
  headset-flash flash --all --operator alice --orientation=-y+x+z
  headset-flash flash --all --operator alice        # firmware update: each board keeps its site/desk
  headset-flash flash --all --only-older --batch 10  # staged rollout: 10 outdated boards per run"""


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
    parser.add_argument("--hello-timeout", type=float, default=15.0,
                        help=f"seconds to wait for the firmware's hello, at most {MAX_WAIT_S:g} (default %(default)s)")
    parser.add_argument("--connect-timeout", type=float, default=10.0,
                        help=f"seconds to wait for a board's raw REPL, at most {MAX_WAIT_S:g} (default %(default)s)")
    parser.add_argument("--only-older", action="store_true",
                        help="flash only boards whose firmware is older than this one (or that have none)")
    parser.add_argument("--batch", type=int, metavar="N", help="flash at most N boards in this run")


def run(args: argparse.Namespace) -> int:
    from pathlib import Path

    # Every input is checked before a board or the inventory is touched.
    refuse_empty(*(("--port", port, "empty (name a serial port)") for port in args.port or ()),
                 ("--inventory", args.inventory, "empty path"),
                 ("--operator", args.operator, "empty (leave it out for the login name)"))
    requested = requested_config(site=args.site, desk=args.desk, orientation=args.orientation, model=args.model)
    check_seconds("--hello-timeout", args.hello_timeout)
    check_seconds("--connect-timeout", args.connect_timeout)
    ports = args.port or [b.port for b in find_boards()]
    if not ports:
        raise UsageError("no MicroPython board found on any serial port (plug one in, or name it with --port)")
    if len(set(ports)) != len(ports):
        raise UsageError("a port is named twice")
    if args.batch is not None and args.batch < 1:
        raise UsageError(f"--batch must be at least 1, got {args.batch}")
    manifest = Manifest.load(Path(args.firmware_dir))
    left: list[str] = []
    current: dict[str, str] = {}
    if args.only_older:
        ports, current = select_older(ports, manifest.version, args.connect_timeout)
    if args.batch is not None and len(ports) > args.batch:
        ports, left = ports[:args.batch], ports[args.batch:]
    if not ports:
        print(f"every board already has firmware {manifest.version} or newer: nothing to flash")
        return 0
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
    if left:
        named = [f"{p} ({current[p] or 'no firmware'})" if p in current else p for p in left]
        print(f"left for the next run ({len(left)}): " + ", ".join(named))
    for r in results:  # each failure once more as the tool's one error line (the table may be in a log)
        if not r.ok:
            print(f"{PROG}: {r.error}", file=sys.stderr)
    return 0 if all(r.ok for r in results) else 1


def select_older(ports: list[str], latest: str, connect_timeout_s: float) -> tuple[list[str], dict[str, str]]:
    """The ports whose board has firmware older than ``latest``, or none, or cannot be asked (the flash
    then reports why), in the order given; and each board's firmware version ("" when none)."""
    print(f"checking the firmware version of {len(ports)} board(s)", file=sys.stderr)
    with ThreadPoolExecutor(max_workers=min(len(ports), 16)) as pool:
        infos = list(pool.map(lambda p: probe(BoardInfo(p, ""), repl_timeout_s=connect_timeout_s), ports))
    chosen = []
    for info in infos:
        older = is_older(info.firmware, latest)
        if not info.firmware:
            why = "no headset firmware: will flash" if info.micropython else f"not answering ({info.note}): will try"
            chosen.append(info.port)
        elif older:
            why = f"firmware {info.firmware} is older than {latest}: will flash"
            chosen.append(info.port)
        elif older is None:
            why = f"firmware version {info.firmware!r} unreadable: skipped (flash it by --port without --only-older)"
        else:
            why = f"firmware {info.firmware}: up to date, skipped"
        print(f"{info.port}  {why}", file=sys.stderr)
    return chosen, {i.port: i.firmware for i in infos}
