"""List MicroPython boards on serial ports (by USB VID:PID): the headset id and firmware version when
the headset firmware answers on the headset link; otherwise (a blank board) the MicroPython version
and board name, asked over the raw REPL as mpremote does (sys.implementation, os.uname()). A board
asked over the REPL is left as it was found (a board with a main.py is soft-reset so that it runs)."""

from __future__ import annotations

import argparse
from concurrent.futures import ThreadPoolExecutor

from hw.commands import refuse_empty
from hw.flashing.ports import BoardInfo, find_boards, probe
from hw.flashing.table import format_table

EXAMPLE = """example:
  headset-flash list
  headset-flash list --port /dev/ttyACM3 --no-probe"""


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--port", action="append", default=[], help="also look at this port (any serial device)")
    parser.add_argument("--no-probe", action="store_true", help="do not open the ports to ask for id and version")


def run(args: argparse.Namespace) -> int:
    refuse_empty(*(("--port", port, "empty (name a serial port)") for port in args.port))
    boards = find_boards()
    known = {b.port for b in boards}
    boards += [BoardInfo(p, "given on the command line") for p in dict.fromkeys(args.port) if p not in known]
    if not boards:
        print("no MicroPython boards found")
        return 0
    if not args.no_probe:
        with ThreadPoolExecutor(max_workers=min(len(boards), 16)) as pool:
            list(pool.map(probe, boards))
    rows = [(b.port, b.headset_id or "-", b.firmware or "-", b.micropython or "-", b.machine or "-",
             b.usb + (f"; {b.note}" if b.note else "")) for b in boards]
    print(format_table(("port", "headset id", "firmware", "micropython", "board", "usb / note"), rows))
    return 0
