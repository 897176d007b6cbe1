"""List MicroPython boards on serial ports (by USB VID:PID), with the headset id and firmware
version when the headset firmware answers on the headset link."""

from __future__ import annotations

import argparse

from hw.flashing.ports import BoardInfo, find_boards, probe

EXAMPLE = """example:
  headset-flash list
  headset-flash list --port /dev/ttyACM3 --no-probe"""


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--port", action="append", default=[], help="also look at this port (any serial device)")
    parser.add_argument("--no-probe", action="store_true", help="do not open the ports to ask for id and version")


def run(args: argparse.Namespace) -> int:
    boards = find_boards()
    known = {b.port for b in boards}
    boards += [BoardInfo(p, "given on the command line") for p in args.port if p not in known]
    if not boards:
        print("no MicroPython boards found")
        return 0
    rows = [("port", "headset id", "firmware", "micropython", "usb")]
    for b in boards:
        if not args.no_probe:
            probe(b)
        rows.append((b.port, b.headset_id or "-", b.firmware or "-", b.micropython or "-", b.usb))
    widths = [max(len(r[i]) for r in rows) for i in range(4)]
    for r in rows:
        print("  ".join(c.ljust(widths[i]) for i, c in enumerate(r[:4])) + "  " + r[4])
    return 0
