"""Copy every file of a board (firmware, hs_config.json, logs, anything else) into a folder here.

Read only on the board; it is interrupted for its raw REPL and left as it was (a board with a
main.py is soft-reset, so its firmware runs again). The folder must be new or empty, unless --force
(files of the same name are then replaced). Progress per file on stderr; the files and their
SHA-256 on stdout."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from hw.commands import MAX_WAIT_S, check_seconds, refuse_empty
from hw.flashing.backup import backup_board, check_out_folder
from hw.flashing.batch import ProgressPrinter

EXAMPLE = """example:
  headset-flash backup --port /dev/ttyACM0 --out ./backup-desk-d07
  headset-flash backup --port /dev/ttyACM0 --out ./backup-desk-d07 --force   # refresh an old backup"""


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--port", required=True, help="serial port of the board")
    parser.add_argument("--out", required=True, help="folder to copy the board's files into")
    parser.add_argument("--force", action="store_true", help="write into a folder that already holds files")
    parser.add_argument("--connect-timeout", type=float, default=10.0,
                        help=f"seconds to wait for the board's raw REPL, at most {MAX_WAIT_S:g} (default %(default)s)")


def run(args: argparse.Namespace) -> int:
    refuse_empty(("--port", args.port, "empty (name a serial port)"), ("--out", args.out, "empty path"))
    check_seconds("--connect-timeout", args.connect_timeout)
    out = Path(args.out)
    check_out_folder(out, args.force)  # refused before the board is interrupted
    res = backup_board(args.port, out, force=args.force, connect_timeout_s=args.connect_timeout,
                       progress=ProgressPrinter())
    for name, size, digest in res.files:
        print(f"{digest}  {name}  ({size} B)")
    print(f"{len(res.files)} files, {res.total_bytes} B from board {res.board_id or '-'} at {args.port} "
          f"saved in {out}", file=sys.stderr)
    return 0
