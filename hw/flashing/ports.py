"""Finding MicroPython boards on serial ports by USB VID:PID, and asking them who they are."""

from __future__ import annotations

import time
from dataclasses import dataclass

import serial
from serial.tools import list_ports

from hw.firmware import headset_link as hl

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


def find_boards() -> list[BoardInfo]:
    out = []
    for p in list_ports.comports():
        key = (p.vid, p.pid)
        if key in MICROPYTHON_USB_IDS:
            out.append(BoardInfo(p.device, f"{p.vid:04x}:{p.pid:04x} {MICROPYTHON_USB_IDS[key]}"))
    return out


def probe(info: BoardInfo, timeout_s: float = 1.5) -> BoardInfo:
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
