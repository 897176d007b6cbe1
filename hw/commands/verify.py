"""Check the headset firmware on one board or many against this firmware's manifest, by SHA-256.

Read only: each file's hash is computed on the board and compared; nothing is written. A board is
interrupted for its raw REPL and left as it was (a board with a main.py is soft-reset, so its
firmware runs again). Prints the files that differ or are missing, per board; the exit status is 1
when any board has one, or could not be checked. hs_config.json (each board's own) is not checked."""

from __future__ import annotations

import argparse
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from hw.cli import PROG
from hw.commands import MAX_WAIT_S, check_seconds, refuse_empty
from hw.errors import UsageError
from hw.flashing.batch import ProgressPrinter
from hw.flashing.manifest import FIRMWARE_DIR, Manifest
from hw.flashing.ports import find_boards
from hw.flashing.table import format_table
from hw.flashing.verify import VerifyResult, verify_board

EXAMPLE = """example:
  headset-flash verify --port /dev/ttyACM0
  headset-flash verify --all"""


def configure(parser: argparse.ArgumentParser) -> None:
    where = parser.add_mutually_exclusive_group(required=True)
    where.add_argument("--port", action="append", help="serial port of a board (repeat for several)")
    where.add_argument("--all", action="store_true", help="every MicroPython board found by USB VID:PID")
    parser.add_argument("--connect-timeout", type=float, default=10.0,
                        help=f"seconds to wait for a board's raw REPL, at most {MAX_WAIT_S:g} (default %(default)s)")
    parser.add_argument("--firmware-dir", default=str(FIRMWARE_DIR), help=argparse.SUPPRESS)


def run(args: argparse.Namespace) -> int:
    refuse_empty(*(("--port", port, "empty (name a serial port)") for port in args.port or ()))
    check_seconds("--connect-timeout", args.connect_timeout)
    ports = list(dict.fromkeys(args.port or [b.port for b in find_boards()]))
    if not ports:
        raise UsageError("no MicroPython board found on any serial port (plug one in, or name it with --port)")
    manifest = Manifest.load(Path(args.firmware_dir))
    print(f"verifying {len(ports)} board(s) against firmware {manifest.version} ({manifest.fw_hash[:12]}), "
          "hashes only", file=sys.stderr)
    progress = ProgressPrinter()
    with ThreadPoolExecutor(max_workers=min(len(ports), 16)) as pool:
        results = list(pool.map(lambda p: verify_board(p, manifest, args.connect_timeout, progress), ports))
    print(report(results, manifest))
    for r in results:
        if r.error:
            print(f"{PROG}: {r.error}", file=sys.stderr)
    return 0 if all(r.ok for r in results) else 1


def report(results: list[VerifyResult], manifest: Manifest) -> str:
    rows = []
    for r in results:
        if r.error:
            rows.append((r.port, r.board_id or "-", "-", "ERROR", r.error))
        for f in r.problems:
            got = "-" if f.got is None else f.got[:12]
            rows.append((r.port, r.board_id or "-", f.name, f.status.upper(),
                         f"board {got}, firmware {f.expected[:12]}"))
    lines = [format_table(("port", "board id", "file", "status", "sha256"), rows)] if rows else []
    n = len(manifest.files)
    for r in results:
        if not r.error:
            matching = n - len(r.problems)
            on_board = f"; the board's hs_app.py says {r.firmware}" if r.firmware else ""
            lines.append(f"{r.port}: {matching} of {n} files match firmware {manifest.version}{on_board}")
    good = sum(r.ok for r in results)
    lines.append(f"{good} of {len(results)} boards match" + ("" if good == len(results) else
                 f"; {len(results) - good} do not"))
    return "\n".join(lines)
