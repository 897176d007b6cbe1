"""Run a virtual headset on a pty: the headset firmware's logic replaying a posture/wear trace,
speaking the headset line protocol at the given link path (for demos, tests and staff training).
Runs until interrupted (Ctrl-C) or, with --duration, for that many seconds of wall time.
With --board FSDIR it is a whole virtual MicroPython board instead (its flash kept in FSDIR, real
MicroPython via Node.js): flash it with `headset-flash flash --port LINK` to practise."""

from __future__ import annotations

import argparse
import math
import sys
import time

from hw.commands import refuse_empty
from hw.errors import FlashError, UsageError
from hw.virtual_headset import SCENARIOS, HeadsetTrace, VirtualHeadset
from hw.virtual_headset.board import VirtualBoard
from hw.virtual_headset.micropython import MicroPythonUnavailable
from mqtt_schema.clock import check_time_flags

EXAMPLE = """example:
  headset-flash virtual-headset --link /tmp/hs/ttyHEADSET --scenario slouch --time-scale 10
  headset-flash virtual-headset --link /tmp/hs/ttyHEADSET --trace posture.csv
  headset-flash virtual-headset --link /tmp/hs/ttyBOARD --scenario upright --board /tmp/hs/flash"""


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--link", required=True, help="path of the symlink to create for the pty (the 'serial port')")
    src = parser.add_mutually_exclusive_group(required=True)
    src.add_argument("--trace", help="trace file: JSON {'segments': [...]} or CSV t0,t1,pitch,roll,worn")
    src.add_argument("--scenario", choices=sorted(SCENARIOS), help="a built-in scenario")
    parser.add_argument("--id", default="e6614103e7452d2f", help="headset id, hex (default %(default)s)")
    parser.add_argument("--fw", default="1.0.0", help="firmware version to report (default %(default)s)")
    parser.add_argument("--time-scale", type=float, default=1.0,
                        help="headset seconds per wall second (default %(default)s)")
    parser.add_argument("--duration", type=float, default=None, help="stop after this many wall seconds")
    parser.add_argument("--board", metavar="FSDIR", default=None,
                        help="a whole virtual MicroPython board with its flash in FSDIR (for flashing practice)")


def run(args: argparse.Namespace) -> int:
    refuse_empty(("--link", args.link, "empty path"), ("--trace", args.trace, "empty path"),
                 ("--board", args.board, "empty path"), ("--id", args.id, "empty (a headset id in hex)"),
                 ("--fw", args.fw, "empty (a firmware version, e.g. 1.0.0)"))
    try:
        check_time_flags(args.time_scale, None)
    except ValueError as exc:
        raise UsageError(str(exc)) from None
    if args.duration is not None and not (math.isfinite(args.duration) and args.duration >= 0):
        raise UsageError(f"--duration must be a finite number of seconds >= 0, not {args.duration!r}")
    trace = HeadsetTrace.from_file(args.trace) if args.trace else HeadsetTrace.scenario(args.scenario)
    hs: VirtualHeadset | VirtualBoard
    try:
        if args.board:
            try:
                hs = VirtualBoard(args.link, args.board, trace=trace, unique_id=args.id, time_scale=args.time_scale)
                hs.start()
            except MicroPythonUnavailable as exc:
                raise FlashError(f"a virtual board needs MicroPython under Node.js: {exc}") from None
            kind = "virtual MicroPython board"
        else:
            try:
                hs = VirtualHeadset(trace, link_path=args.link, headset_id=args.id, firmware_version=args.fw,
                                    time_scale=args.time_scale)
            except ValueError as exc:
                raise UsageError(str(exc)) from None
            hs.start()
            kind = "virtual headset"
    except OSError as exc:  # the link (or the board's folder) cannot be made there
        board = f" with --board {args.board}" if args.board else ""
        raise FlashError(f"cannot start the virtual headset at --link {args.link}{board}: {exc}") from None
    print(f"{kind} {args.id} on {args.link} -> {hs.port.slave_name} "
          f"({trace.duration_s:.0f} s trace at x{args.time_scale:g}); Ctrl-C to stop", file=sys.stderr)
    try:
        end = None if args.duration is None else time.monotonic() + args.duration
        last = -1
        while end is None or time.monotonic() < end:
            t = int(hs.headset_time_s() if isinstance(hs, VirtualHeadset) else hs.board_ms() / 1000)
            if t // 10 != last // 10:
                last = t
                print(f"\r  headset time {t:6d} s", end="", file=sys.stderr, flush=True)
            time.sleep(0.2)
    finally:
        print("", file=sys.stderr)
        hs.stop()
    return 0
