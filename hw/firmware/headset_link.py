# The headset link: the line protocol between the headset MCU and the desk unit.
#
# Written in the subset that both CPython 3.11 and MicroPython 1.20+ run: no f-strings with `=`,
# no dataclasses, no typing at run time, no `from __future__`. The firmware imports it as
# `headset_link`; the desk agent imports it as `hw.firmware.headset_link`.
# The format is documented in docs/headset-link.md.
#
# One message per line: a JSON object, UTF-8, terminated by "\n", at most MAX_LINE bytes
# including the newline. Every message has "t" (its type) and "n" (the sender's sequence number,
# 0..2**30-1, wrapping). Replies carry "re", the "n" of the request they answer.

import json

MYPY = False
if MYPY:  # mypy treats MYPY as true; MicroPython has no typing module
    from typing import Any

PROTOCOL_VERSION = 1
MAX_LINE = 256
SEQ_MOD = 1 << 30

# MCU -> desk
HELLO = "hello"  # fw (str), id (str, hex unique id), mp (str, MicroPython version), proto (int)
IMU = "imu"  # p (pitch, deg, + = head forward), r (roll, deg, + = right ear down), ms (MCU ticks)
WEAR = "wear"  # on (bool)
PONG = "pong"  # re
INFO = "info"  # re, fw, id, mp, proto, cfg (dict), up_s (int)
ACK = "ack"  # re, ok (bool), err (str, optional)
LOG = "log"  # msg (str)
# desk -> MCU
PING = "ping"
GET_INFO = "get_info"
LED = "led"  # rgb: [r, g, b] 0..255
CALIBRATE = "cal"  # gyro bias calibration: hold the head still for about 1 s

_FIELDS = {
    HELLO: (("fw", str), ("id", str), ("mp", str), ("proto", int)),
    IMU: (("p", float), ("r", float)),
    WEAR: (("on", bool),),
    PONG: (("re", int),),
    INFO: (("re", int), ("fw", str), ("id", str)),
    ACK: (("re", int), ("ok", bool)),
    LOG: (("msg", str),),
    PING: (),
    GET_INFO: (),
    LED: (("rgb", list),),
    CALIBRATE: (),
}
TYPES = tuple(_FIELDS.keys())


class LinkError(ValueError):
    """A line that breaks the protocol. `reason` is a short category for counters."""

    def __init__(self, reason: str, detail: str = "") -> None:
        # super(): MicroPython has no ValueError.__init__ to call directly
        super().__init__(reason + (": " + detail if detail else ""))
        self.reason = reason


def _is_type(value: "Any", kind: type) -> bool:
    if kind is float:
        return (isinstance(value, (int, float))) and not isinstance(value, bool)
    if kind is int:
        return isinstance(value, int) and not isinstance(value, bool)
    return isinstance(value, kind)


def validate(msg: "Any") -> "dict[str, Any]":
    """Check a decoded message's type and required fields; return it, or raise LinkError."""
    if not isinstance(msg, dict):
        raise LinkError("not-object")
    t = msg.get("t")
    if not isinstance(t, str) or t not in _FIELDS:
        raise LinkError("unknown-type", str(t))
    n = msg.get("n", -1)
    if not _is_type(n, int) or n < 0 or n >= SEQ_MOD:
        raise LinkError("bad-seq", str(n))
    for name, kind in _FIELDS[t]:
        if name not in msg:
            raise LinkError("missing-field", t + "." + name)
        if not _is_type(msg[name], kind):
            raise LinkError("bad-field", t + "." + name)
    if t == IMU:
        if not (-180.0 <= msg["p"] <= 180.0 and -180.0 <= msg["r"] <= 180.0):
            raise LinkError("out-of-range", "imu angle")
    if t == LED:
        rgb = msg["rgb"]
        if len(rgb) != 3:
            raise LinkError("bad-field", "led.rgb")
        for c in rgb:
            if not _is_type(c, int) or c < 0 or c > 255:
                raise LinkError("bad-field", "led.rgb")
    return msg


def encode(msg: "dict[str, Any]") -> bytes:
    """Encode a message dict to one line of bytes, newline included."""
    validate(msg)
    line = json.dumps(msg).encode() + b"\n"
    if len(line) > MAX_LINE:
        raise LinkError("too-long", str(len(line)))
    return line


def decode(line: bytes) -> "dict[str, Any]":
    """Decode one line (bytes, with or without the newline) to a validated message dict."""
    if len(line) > MAX_LINE:
        raise LinkError("too-long", str(len(line)))
    line = line.strip()
    if not line:
        raise LinkError("empty")
    try:
        text = line.decode()
    except UnicodeError:
        raise LinkError("not-utf8")
    try:
        msg = json.loads(text)
    except ValueError:
        raise LinkError("not-json")
    return validate(msg)


class Sequencer:
    """Hands out the sender's sequence numbers, wrapping at SEQ_MOD."""

    def __init__(self, start: int = 0) -> None:
        self.n = start % SEQ_MOD

    def next(self) -> int:
        n = self.n
        self.n = (self.n + 1) % SEQ_MOD
        return n

    def message(self, t: str, **fields: "Any") -> "dict[str, Any]":
        msg = {"t": t, "n": self.next()}
        for key in fields:
            msg[key] = fields[key]
        return msg


class LineBuffer:
    """Splits a byte stream into lines; an over-long line is dropped whole and reported once.

    feed(data) returns a list of complete lines (without newline); `dropped` counts the lines
    thrown away for exceeding MAX_LINE.
    """

    def __init__(self) -> None:
        self.buf = b""
        self.dropped = 0
        self._skipping = False

    def feed(self, data: bytes) -> "list[bytes]":
        out = []
        self.buf = self.buf + data
        while True:
            i = self.buf.find(b"\n")
            if i < 0:
                if len(self.buf) > MAX_LINE:
                    self.buf = b""
                    if not self._skipping:
                        self.dropped += 1
                    self._skipping = True
                break
            line = self.buf[:i]
            self.buf = self.buf[i + 1 :]
            if self._skipping:
                self._skipping = False
                continue
            if len(line) + 1 > MAX_LINE:
                self.dropped += 1
                continue
            out.append(line)
        return out
