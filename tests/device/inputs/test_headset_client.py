"""The desk side of the headset link against a pty-backed virtual headset (the firmware's own logic)."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from device.errors import LinkError
from device.inputs.headset_client import HeadsetClient, LinkEvent
from hw.firmware import headset_link as hl
from hw.virtual_headset import HeadsetTrace, VirtualHeadset
from tests.device.helpers import wait_for

TRACE = HeadsetTrace.from_segments([
    (0.0, 5.0, dict(pitch=3, roll=1, worn=True)),
    (5.0, 3600.0, dict(pitch=24, roll=-2, worn=True)),
])



@pytest.fixture
def headset(tmp_path: Path) -> Iterator[VirtualHeadset]:
    hs = VirtualHeadset(TRACE, link_path=tmp_path / "ttyHS", headset_id="e6614103e7452d2f",
                        firmware_version="1.2.3", time_scale=1.0)
    hs.start()
    yield hs
    hs.stop()


@pytest.fixture
def client(headset: VirtualHeadset) -> Iterator[HeadsetClient]:
    c = HeadsetClient(str(headset.link_path)).start()
    yield c
    c.stop()


class Events:
    def __init__(self, client: HeadsetClient) -> None:
        self.client = client
        self.seen: list[LinkEvent] = []

    def kinds(self) -> list[str]:
        self.seen += self.client.events()
        return [e.kind for e in self.seen]


def test_hello_frames_wear_and_requests(client: HeadsetClient) -> None:
    snap = wait_for(lambda: (s := client.snapshot()).imu is not None and s.hello is not None and s, what="frames")
    assert snap.connected
    assert snap.hello.firmware == "1.2.3" and snap.hello.headset_id == "e6614103e7452d2f"
    assert snap.hello.proto == hl.PROTOCOL_VERSION
    assert abs(snap.imu.pitch_deg - 3.0) < 1.5
    wait_for(lambda: client.snapshot().worn is True, what="worn")
    pong = client.request(hl.PING, timeout_s=2.0)
    assert pong["t"] == hl.PONG
    info = client.request(hl.GET_INFO, timeout_s=2.0)
    assert info["t"] == hl.INFO and info["id"] == "e6614103e7452d2f"
    ack = client.request(hl.LED, timeout_s=2.0, rgb=[10, 0, 0])
    assert ack["ok"] is True


def test_garbage_lines_are_counted_by_reason_and_skipped(headset: VirtualHeadset, client: HeadsetClient) -> None:
    wait_for(lambda: client.snapshot().imu is not None, what="first frame")
    garbage = [b"hello there\n", b"{\"t\": \"imu\", \"n\": 1}\n", b"[1, 2]\n", b"\xff\xfe\n",
               b"{\"t\": \"warp\", \"n\": 3}\n", b"{\"t\": \"imu\", \"n\": 4, \"p\": 999, \"r\": 0}\n",
               b"x" * 400 + b"\n", b"{\"t\": \"ping\", \"n\": 5}\n"]
    for line in garbage:
        headset.port.write(line)
    want = {"not-json": 1, "missing-field": 1, "not-object": 1, "not-utf8": 1, "unknown-type": 1,
            "out-of-range": 1, "too-long": 1, "wrong-direction": 1}
    snap = wait_for(lambda: (s := client.snapshot()).garbage == want and s, what=f"garbage counts {want}")
    frames = snap.frames
    wait_for(lambda: client.snapshot().frames > frames + 3, what="frames after garbage")
    assert client.connected


def test_unplug_gives_unknown_within_2_s_and_replug_comes_back(headset: VirtualHeadset,
                                                               client: HeadsetClient) -> None:
    ev = Events(client)
    wait_for(lambda: client.snapshot().imu is not None, what="first frame")
    assert "connected" in ev.kinds()
    t0 = time.monotonic()
    headset.unplug()
    wait_for(lambda: not client.connected, deadline_s=2.0, what="disconnect")
    snap = client.snapshot()
    assert snap.imu is None and snap.worn is None
    assert time.monotonic() - t0 < 2.0
    wait_for(lambda: "disconnected" in ev.kinds(), deadline_s=1.0, what="disconnected event")
    with pytest.raises(LinkError, match="not open"):
        client.send(hl.PING)
    headset.replug()
    snap = wait_for(lambda: (s := client.snapshot()).imu is not None and s.hello is not None and s,
                    deadline_s=5.0, what="reconnect")
    assert snap.connected and snap.hello.headset_id == "e6614103e7452d2f"
    assert ev.kinds().count("connected") == 2
    assert client.opens >= 2


def test_a_silent_port_is_declared_lost(tmp_path: Path) -> None:
    # a headset whose firmware hangs: the port stays open but nothing arrives, not even pongs
    hs = VirtualHeadset(TRACE, link_path=tmp_path / "ttyHS", time_scale=1.0)
    hs.start()
    c = HeadsetClient(str(hs.link_path)).start()
    try:
        wait_for(lambda: c.snapshot().imu is not None, what="first frame")
        with hs._lock:  # freeze the firmware loop (the port stays open): a hung MCU
            t0 = time.monotonic()
            wait_for(lambda: not c.connected, deadline_s=2.5, what="stale link")
            assert time.monotonic() - t0 < 2.5
    finally:
        c.stop()
        hs.stop()


def test_a_read_waits_until_the_next_liveness_deadline_not_a_fixed_poll() -> None:
    # the reader wakes on bytes; its timeout only has to reach the next ping or the stale check
    from device.inputs.headset_client import MAX_READ_TIMEOUT_S, PING_AFTER_S, READ_TIMEOUT_S, STALE_S

    c = HeadsetClient("/dev/null-headset", monotonic=lambda: 0.0)
    c._last_rx = c._last_ping = 100.0
    assert c._read_timeout(100.0) == MAX_READ_TIMEOUT_S  # a line just arrived: no poll until the ping is due
    assert abs(c._read_timeout(100.0 + PING_AFTER_S - 0.12) - 0.15) < 1e-9  # up to the ping, in READ_TIMEOUT_S steps
    assert c._read_timeout(100.0 + PING_AFTER_S + 0.3) == READ_TIMEOUT_S  # overdue: the shortest wait
    c._last_ping = 100.0 + PING_AFTER_S + 0.01  # pinged: the next deadline is the next ping, then the stale link
    assert abs(c._read_timeout(c._last_ping) - PING_AFTER_S) < 1e-9
    c._last_ping = 100.0 + STALE_S - 0.12
    assert abs(c._read_timeout(100.0 + STALE_S - 0.12) - 0.15) < 1e-9  # the stale check comes first
