"""Finding MicroPython boards on serial ports by USB VID:PID, and asking them who they are.

``probe`` asks the headset firmware over the headset link first (it never interrupts a running
firmware); a board that does not answer there (a blank board, or a firmware that is stuck) is asked
over the raw REPL, as mpremote does (``sys.implementation``, ``os.uname()``), and left as it was
found: at the friendly REPL, or, when it has a main.py, soft-reset so that its firmware runs again.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import serial
from serial.tools import list_ports

from hw.errors import FlashError
from hw.firmware import headset_link as hl
from hw.flashing.session import BoardSession

# (VID, PID) -> what it is
MICROPYTHON_USB_IDS = {
    (0x2E8A, 0x0005): "Raspberry Pi RP2040/RP2350 (MicroPython)",
    (0xF055, 0x9800): "MicroPython (pyboard and others)",
    (0x1209, 0xADDA): "MicroPython (pid.codes)",
}


@dataclass
class BoardInfo:
    port: str
    usb: str
    headset_id: str = ""
    firmware: str = ""
    micropython: str = ""
    machine: str = ""  # os.uname().machine, from the raw REPL
    note: str = ""  # why a field is empty: "blank (no headset firmware)", the REPL's error


def find_boards() -> list[BoardInfo]:
    out = []
    for p in list_ports.comports():
        key = (p.vid, p.pid)
        if key in MICROPYTHON_USB_IDS:
            out.append(BoardInfo(p.device, f"{p.vid:04x}:{p.pid:04x} {MICROPYTHON_USB_IDS[key]}"))
    return out


def probe(info: BoardInfo, timeout_s: float = 1.5, repl_timeout_s: float = 3.0) -> BoardInfo:
    """Fill ``info`` from the headset firmware's answer, else from the raw REPL (see the module)."""
    probe_link(info, timeout_s)
    if not info.firmware:
        probe_repl(info, repl_timeout_s)
    return info


def probe_repl(info: BoardInfo, timeout_s: float = 3.0) -> BoardInfo:
    """Ask the board over the raw REPL for its MicroPython version and machine, and the firmware
    version written on its flash; ``note`` says why when it cannot."""
    try:
        with BoardSession(info.port, timeout_s=timeout_s) as board:
            board.enter_raw()
            ident = board.identity()
            info.micropython, info.machine = ident.micropython, ident.machine
            if ident.firmware:
                info.firmware = ident.firmware
                info.note = "firmware not answering on the headset link"
            else:
                info.note = "blank (no headset firmware)"
            board.leave(restart=ident.has_main)
    except FlashError as exc:
        info.note = str(exc).removeprefix(info.port).lstrip(": ")
    return info


def probe_link(info: BoardInfo, timeout_s: float = 1.5) -> BoardInfo:
    """Ask a running headset firmware for its info over the headset link; leave fields empty if it
    does not answer (no firmware yet, or the REPL is in use). Never interrupts the board."""
    try:
        with serial.Serial(info.port, 115200, timeout=0.05) as ser:
            ser.write(hl.encode({"t": hl.GET_INFO, "n": 7}))
            lines = hl.LineBuffer()
            end = time.monotonic() + timeout_s
            while time.monotonic() < end:
                for line in lines.feed(ser.read(512)):
                    try:
                        msg = hl.decode(line)
                    except hl.LinkError:
                        continue
                    if msg["t"] in (hl.INFO, hl.HELLO):
                        info.headset_id, info.firmware, info.micropython = msg["id"], msg["fw"], str(msg.get("mp", ""))
                        if msg["t"] == hl.INFO:
                            return info
    except (serial.SerialException, OSError):
        pass
    return info
