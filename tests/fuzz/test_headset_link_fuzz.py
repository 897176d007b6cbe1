"""The serial headset link fed random bytes, truncated and garbled lines through a real pty.

The desk side (``device.inputs.headset_client.HeadsetClient`` on pyserial) must never stop reading: every
bad line is counted exactly once (by reason), and a valid line after any garbage still parses. The
expected count of bad lines comes from the protocol module itself (``hw.firmware.headset_link``).
"""

from __future__ import annotations

import json
import os
import random
import select
import threading
from collections.abc import Iterator
from dataclasses import dataclass

import pytest
from hypothesis import HealthCheck, given, seed, settings
from hypothesis import strategies as st

from device.inputs.headset_client import HeadsetClient
from hw.firmware import headset_link as hl
from tests.device.helpers import wait_for

DESK_TO_MCU = (hl.PING, hl.GET_INFO, hl.LED, hl.CALIBRATE)



def bad_lines(data: bytes) -> tuple[int, int]:
    """(bad lines, valid imu frames) in ``data`` as the protocol module splits and decodes it."""
    buf = hl.LineBuffer()
    bad = frames = 0
    for line in buf.feed(data):
        try:
            msg = hl.decode(line)
        except (hl.LinkError, TypeError):
            bad += 1
            continue
        if msg["t"] in DESK_TO_MCU:
            bad += 1
        elif msg["t"] == hl.IMU:
            frames += 1
    return bad + buf.dropped, frames


@dataclass
class Pty:
    """The headset end of a pty (we write what a broken MCU would send) and the client on the other."""

    master: int
    client: HeadsetClient
    marker: int = 0

    def write(self, data: bytes) -> None:
        view = memoryview(data)
        while view:
            n = os.write(self.master, view)
            view = view[n:]

    def valid_frame(self) -> float:
        """Send one valid imu frame with a pitch never sent before; wait until the client has it."""
        self.marker += 1
        pitch = round(-170 + (self.marker % 34000) / 100, 2)
        self.write(hl.encode({"t": hl.IMU, "n": self.marker % hl.SEQ_MOD, "p": pitch, "r": 1.5}))
        wait_for(lambda: (s := self.client.snapshot()).imu is not None and s.imu.pitch_deg == pitch,
                 what=f"the valid frame with pitch {pitch}", poll_s=0.002)
        return pitch

    def bad_total(self) -> int:
        return sum(self.client.snapshot().garbage.values())


@pytest.fixture(scope="module")
def pty() -> Iterator[Pty]:
    master, slave = os.openpty()
    client = HeadsetClient(os.ttyname(slave), stale_s=60.0).start()
    stop = threading.Event()

    def drain() -> None:  # read the desk's pings so that the pty never fills
        while not stop.is_set():
            if select.select([master], [], [], 0.05)[0]:
                try:
                    os.read(master, 4096)
                except OSError:
                    return

    t = threading.Thread(target=drain, daemon=True)
    t.start()
    p = Pty(master, client)
    try:
        wait_for(lambda: client.opens >= 1, what="the client opened the pty")
        p.valid_frame()
        yield p
    finally:
        client.stop()
        stop.set()
        t.join(2)
        os.close(master)
        os.close(slave)


# --- strategies -----------------------------------------------------------------------------------

json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**70), 2**70) | st.floats() | st.text(max_size=12),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=6), inner, max_size=3),
    max_leaves=8,
)
keys = st.sampled_from(["t", "n", "p", "r", "on", "re", "ok", "fw", "id", "mp", "proto", "msg", "rgb", "kind",
                        "self", "data", "at_s"]) | st.text(max_size=5)
messages = st.builds(
    lambda t, n, extra: {"t": t, "n": n, **extra},
    t=st.sampled_from(list(hl.TYPES)) | json_values,
    n=st.integers(-5, hl.SEQ_MOD + 5) | json_values,
    extra=st.dictionaries(keys, json_values, max_size=6),
)


@st.composite
def garbled(draw: st.DrawFn) -> bytes:
    """A valid-looking message line, then truncated, with bytes flipped, or padded past MAX_LINE."""
    line = json.dumps(draw(messages)).encode()
    how = draw(st.sampled_from(["as-is", "truncate", "flip", "insert", "long", "nan"]))
    if how == "truncate" and line:
        line = line[: draw(st.integers(0, len(line) - 1))]
    elif how == "flip" and line:
        i = draw(st.integers(0, len(line) - 1))
        line = line[:i] + bytes([draw(st.integers(0, 255))]) + line[i + 1:]
    elif how == "insert":
        i = draw(st.integers(0, len(line)))
        line = line[:i] + draw(st.binary(min_size=1, max_size=8)) + line[i:]
    elif how == "long":
        line = line + b" " * draw(st.integers(hl.MAX_LINE - len(line), hl.MAX_LINE * 4))
    elif how == "nan":
        line = line.replace(b"0", b"NaN", 1)
    return line


lines = st.one_of(st.binary(max_size=400), garbled(), st.sampled_from([b"", b"\r", b"\x00", b"{", b"}", b"[]",
                                                                        b"null", b"\xff\xfe", b"\x04\x03"]))
chunks = st.lists(lines, min_size=1, max_size=8).map(lambda ls: b"\n".join(ls) + b"\n")


@seed(20261130)
@settings(max_examples=300, deadline=None, database=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=chunks)
def test_any_bytes_are_counted_and_the_next_valid_line_still_parses(pty: Pty, data: bytes) -> None:
    expected_bad, _ = bad_lines(data)
    before = pty.bad_total()
    pty.write(data)
    pty.valid_frame()  # parsed after whatever came before it
    snap = pty.client.snapshot()
    assert sum(snap.garbage.values()) - before == expected_bad, (data, snap.garbage)
    assert snap.garbage.get("internal-error", 0) == 0
    assert snap.connected


def test_a_random_byte_stream_in_random_chunks_keeps_the_link_going(pty: Pty) -> None:
    rng = random.Random(13)
    out = bytearray()
    valid = [hl.encode({"t": hl.IMU, "n": i, "p": rng.uniform(-90, 90), "r": rng.uniform(-90, 90)})
             for i in range(200)]
    for i in range(3000):
        r = rng.random()
        if r < 0.15:
            out += valid[i % len(valid)]
        elif r < 0.4:
            out += rng.randbytes(rng.randrange(1, 300)) + b"\n"
        elif r < 0.7:
            line = rng.choice(valid)
            out += line[: rng.randrange(1, len(line) - 1)] + b"\n"  # truncated (the rest lost)
        elif r < 0.9:
            flipped = bytearray(rng.choice(valid))
            flipped[rng.randrange(len(flipped) - 1)] = rng.randrange(256)
            out += flipped if flipped.endswith(b"\n") else flipped + b"\n"
        else:
            out += b"x" * rng.randrange(hl.MAX_LINE, 2000) + b"\n"
    expected_bad, expected_frames = bad_lines(bytes(out))
    before_bad, before_frames = pty.bad_total(), pty.client.snapshot().frames
    view = memoryview(bytes(out))
    while view:  # split anywhere, lines straddle reads
        n = rng.randrange(1, 700)
        pty.write(bytes(view[:n]))
        view = view[n:]
    pty.valid_frame()
    snap = pty.client.snapshot()
    assert sum(snap.garbage.values()) - before_bad == expected_bad
    assert snap.frames - before_frames == expected_frames + 1
    assert snap.garbage.get("internal-error", 0) == 0
    assert expected_bad > 1500 and snap.connected


def test_a_message_type_that_is_a_list_or_an_object_is_an_unknown_type(pty: Pty) -> None:
    before = pty.client.snapshot().garbage.get("unknown-type", 0)
    pty.write(b'{"t": [], "n": 1}\n{"t": {"a": 1}, "n": 2}\n')  # hl.validate raises TypeError on these
    pty.valid_frame()
    assert pty.client.snapshot().garbage.get("unknown-type", 0) == before + 2


def test_extra_keys_named_like_parameters_are_data(pty: Pty) -> None:
    pty.client.events()
    pty.write(b'{"t": "log", "n": 3, "msg": "hi", "kind": "x", "self": 1, "data": 2}\n'
              b'{"t": "pong", "n": 4, "re": 9, "kind": "y"}\n')
    pty.valid_frame()
    events = [e for e in pty.client.events() if e.kind in ("log", "pong")]
    assert [(e.kind, e.data.get("kind")) for e in events] == [("log", "x"), ("pong", "y")]
    assert events[0].data["self"] == 1 and events[0].data["msg"] == "hi"
