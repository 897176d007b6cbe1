"""baresip's ctrl_tcp as a call source: two real baresip instances on the loopback, and a fake server
that sends garbage.

The "customer" instance dials the "desk" instance; our :class:`BaresipClient` reads the desk's
ctrl_tcp (and drives the customer's). Recipe: docs TESTING.md, "baresip on the loopback".
"""

from __future__ import annotations

import logging
import signal
import socket
import subprocess
import threading
import time
import wave
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from device.calls import open_source, parse_source
from device.calls.baresip import BaresipClient, NetstringDecoder, encode_netstring
from device.calls.gpio import GpioCallSource
from device.calls.measures import measure_call
from device.calls.state import (
    CallPhase,
    CallSource,
    CallSourceError,
    CallState,
    Direction,
    NoCallSource,
    RingCadence,
)
from device.clock import WallClock
from device.errors import ConfigError
from tests import real_parts
from tests.device.helpers import wait_for
from tests.ports import free_port

BARESIP = real_parts.find("baresip")



_TAKEN: set[int] = set()
"""Ports handed out in this run: two instances must not get each other's SIP, TLS or ctrl ports."""


def free_ctrl_port() -> int:
    for _ in range(50):
        p = free_port()
        if p not in _TAKEN:
            _TAKEN.add(p)
            return p
    raise RuntimeError("no free port for ctrl_tcp")


def free_sip_port() -> int:
    """A port P with P and P + 1 free on the loopback, UDP and TCP (baresip's TLS takes P + 1)."""
    for _ in range(50):
        p = free_port()
        if p in _TAKEN or p + 1 in _TAKEN:
            continue
        try:
            for port in (p, p + 1):
                for kind in (socket.SOCK_STREAM, socket.SOCK_DGRAM):
                    with socket.socket(socket.AF_INET, kind) as s:
                        s.bind(("127.0.0.1", port))
        except OSError:
            continue
        _TAKEN.update((p, p + 1))
        return p
    raise RuntimeError("no free pair of ports for SIP")


@dataclass
class Baresip:
    """A real baresip process with its own config folder: ``sip_port`` for SIP, ``ctrl_port`` for ctrl_tcp."""

    workdir: Path
    user: str
    sip_port: int = field(default_factory=free_sip_port)
    ctrl_port: int = field(default_factory=free_ctrl_port)
    proc: subprocess.Popen[bytes] | None = field(default=None, repr=False)

    @property
    def uri(self) -> str:
        return f"sip:{self.user}@127.0.0.1:{self.sip_port}"

    def write_config(self) -> None:
        self.workdir.mkdir(parents=True, exist_ok=True)
        tone = self.workdir / "tone.wav"
        # 60 s of silence: the outgoing audio does not matter here, but its length does: baresip 1.0.0
        # hangs up ("audio error (0,end of file)", CALL_CLOSED "end of file") when the aufile ends
        with wave.open(str(tone), "wb") as w:
            w.setnchannels(1)
            w.setsampwidth(2)
            w.setframerate(8000)
            w.writeframes(b"\0\0" * 8000 * 60)
        (self.workdir / "config").write_text(
            f"sip_listen 127.0.0.1:{self.sip_port}\n"
            "module_path /usr/lib/baresip/modules\n"
            "module g711.so\n"
            "module aufile.so\n"
            f"audio_source aufile,{tone}\n"
            "module_app account.so\n"
            "module_app menu.so\n"
            "module_app ctrl_tcp.so\n"
            f"ctrl_tcp_listen 127.0.0.1:{self.ctrl_port}\n")
        (self.workdir / "accounts").write_text(f"<{self.uri}>;regint=0\n")

    def start(self) -> Baresip:
        assert BARESIP is not None
        self.write_config()
        log = self.workdir / "baresip.log"
        with open(log, "ab") as out:
            self.proc = subprocess.Popen([BARESIP, "-f", str(self.workdir)], stdin=subprocess.DEVNULL,
                                         stdout=out, stderr=subprocess.STDOUT)
        wait_for(lambda: b"baresip is ready" in log.read_bytes().rsplit(b"baresip v", 1)[-1],
                 what=f"baresip {self.user} ready")
        return self

    def kill(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait(5)
        self.proc = None

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
        self.proc = None


@pytest.fixture
def desk(tmp_path: Path) -> Iterator[Baresip]:
    b = Baresip(tmp_path / "desk", "desk")
    yield b
    b.stop()


@pytest.fixture
def customer(tmp_path: Path) -> Iterator[Baresip]:
    b = Baresip(tmp_path / "customer", "customer").start()
    yield b
    b.stop()


class _ListHandler(logging.Handler):
    def __init__(self, out: list[logging.LogRecord]) -> None:
        super().__init__(logging.DEBUG)
        self.out = out

    def emit(self, record: logging.LogRecord) -> None:
        self.out.append(record)


@pytest.fixture
def records() -> Iterator[list[logging.LogRecord]]:
    """The records of the ``device.calls`` loggers, on a handler of their own (the agent's log setup
    stops propagation to the root, where caplog listens)."""
    out: list[logging.LogRecord] = []
    logger = logging.getLogger("device.calls")
    handler, level = _ListHandler(out), logger.level
    logger.addHandler(handler)
    logger.setLevel(logging.DEBUG)
    yield out
    logger.removeHandler(handler)
    logger.setLevel(level)


class Recorder:
    """A listener that keeps each state with the wall time (monotonic s) it reached us."""

    def __init__(self) -> None:
        self.states: list[tuple[float, CallState]] = []

    def __call__(self, state: CallState) -> None:
        self.states.append((time.monotonic(), state))

    def first(self, phase: CallPhase) -> tuple[float, CallState] | None:
        return next(((t, s) for t, s in self.states if s.phase is phase), None)


def client(port: int, **kw: Any) -> BaresipClient:
    return BaresipClient("127.0.0.1", port, clock=WallClock(), **kw)


# --- two real baresip instances ---------------------------------------------------------------------


@pytest.mark.needs("baresip")
def test_a_customer_calls_the_desk_which_answers_after_two_seconds(desk: Baresip, customer: Baresip) -> None:
    desk.start()
    rec = Recorder()
    with client(desk.ctrl_port, listener=rec) as ours, client(customer.ctrl_port) as cust:
        assert ours.wait_connected(10) and cust.wait_connected(10)
        t_dial = time.monotonic()
        cust.dial(desk.uri)
        t_ring, ringing = wait_for(lambda: rec.first(CallPhase.RINGING), what="desk ringing")
        assert ringing.direction is Direction.INCOMING and ringing.call_id
        assert ringing.ringing_ms is not None and ringing.established_ms is None
        assert wait_for(lambda: cust.current().phase is CallPhase.RINGING, what="customer hears ringing")
        assert cust.current().direction is Direction.OUTGOING

        time.sleep(2.0)  # the ringing time under test, not a synchronisation
        t_accept = time.monotonic()
        result = ours.accept()
        t_answer = time.monotonic()
        assert result.ok and result.token.startswith("hsc-")
        t_est, est = wait_for(lambda: rec.first(CallPhase.ESTABLISHED), what="desk established")
        assert est.call_id == ringing.call_id and est.ringing_ms == ringing.ringing_ms
        assert est.established_ms is not None
        assert 1800 <= est.established_ms - ringing.ringing_ms <= 5000  # 2 s of ringing
        wait_for(lambda: cust.current().phase is CallPhase.ESTABLISHED, what="customer established")
        assert cust.current().call_id == ringing.call_id  # the SIP Call-ID, the same on both ends

        time.sleep(1.0)  # the call's length under test
        t_hangup = time.monotonic()
        ours.hangup()
        t_close, closed = wait_for(lambda: rec.first(CallPhase.CLOSED), what="desk closed")
        assert closed.call_id == ringing.call_id and closed.reason != "end of file"
        assert t_close >= t_hangup  # closed by our hangup, not before it
        assert closed.closed_ms is not None and 800 <= closed.closed_ms - est.established_ms <= 5000  # 1 s call
        wait_for(lambda: cust.current().phase is CallPhase.CLOSED, what="customer closed")
        assert [s.phase for _, s in rec.states] == [CallPhase.RINGING, CallPhase.ESTABLISHED, CallPhase.CLOSED]
        assert ours.garbage == {} and ours.ignored  # SDP/RTCP/RTP events were read and ignored
        assert ours.current() == closed

        # rings from the ringing time and a 0.5 s on / 1 s off cadence: onsets at 0 and 1.5 s → 2 rings
        m = measure_call(closed, [], cadence=RingCadence(0.5, 1.0))
        assert m.rings == 2 and not m.rings_counted and m.answer_ok is True
        print(f"\nbaresip timings: dial→desk ringing {1000 * (t_ring - t_dial):.1f} ms; "
              f"accept sent→answer {1000 * (t_answer - t_accept):.1f} ms, →desk established "
              f"{1000 * (t_est - t_accept):.1f} ms; hangup sent→desk closed {1000 * (t_close - t_hangup):.1f} ms")


@pytest.mark.needs("baresip")
def test_our_client_started_before_baresip_connects_with_backoff(desk: Baresip, customer: Baresip,
                                                                 records: list[logging.LogRecord]) -> None:
    with client(desk.ctrl_port) as ours:
        wait_for(lambda: ours.failures >= 3, what="three failed attempts")  # 0 s, 0.5 s, 1.5 s
        assert not ours.connected and ours.last_error == "connection refused"
        warnings = [r for r in records if r.levelno == logging.WARNING]
        assert len(warnings) == 1  # the same cause again is rate-limited to DEBUG
        fields = warnings[0].fields  # type: ignore[attr-defined]
        assert fields["address"] == f"127.0.0.1:{desk.ctrl_port}" and fields["cause"] == "connection refused"
        desk.start()
        assert ours.wait_connected(10)  # the next attempt is at most 8 s away
        assert ours.connects == 1
        with client(customer.ctrl_port) as cust:
            assert cust.wait_connected(10)
            cust.dial(desk.uri)
            wait_for(lambda: ours.current().phase is CallPhase.RINGING, what="desk ringing")
            cust.hangup()
            wait_for(lambda: ours.current().phase is CallPhase.CLOSED, what="desk closed")


@pytest.mark.needs("baresip")
def test_baresip_killed_mid_call_closes_the_call_and_reconnects(desk: Baresip, customer: Baresip) -> None:
    desk.start()
    with client(desk.ctrl_port) as ours, client(customer.ctrl_port) as cust:
        assert ours.wait_connected(10) and cust.wait_connected(10)
        cust.dial(desk.uri)
        wait_for(lambda: ours.current().phase is CallPhase.RINGING, what="desk ringing")
        ours.accept()
        est = wait_for(lambda: ours.current() if ours.current().phase is CallPhase.ESTABLISHED else None,
                       what="desk established")
        desk.kill()
        closed = wait_for(lambda: ours.current() if ours.current().phase is CallPhase.CLOSED else None,
                          what="call closed after baresip died")
        assert closed.call_id == est.call_id and closed.reason == "source-lost"
        assert not ours.connected
        with pytest.raises(CallSourceError, match="not connected"):
            ours.hangup()
        desk.start()
        assert ours.wait_connected(10) and ours.connects == 2
        cust.hangup()  # the customer's side of the dead call
        cust.dial(desk.uri)  # and the desk takes calls again
        second = wait_for(lambda: ours.current() if ours.current().phase is CallPhase.RINGING else None,
                          what="desk ringing after the restart")
        assert second.call_id != est.call_id
        ours.hangup()
        wait_for(lambda: ours.current().phase is CallPhase.CLOSED, what="closed")


# --- a fake ctrl_tcp that sends garbage -----------------------------------------------------------------


class FakeCtrl:
    """A TCP server on the loopback that plays baresip's ctrl_tcp side with whatever bytes the test sends."""

    def __init__(self) -> None:
        self.server = socket.create_server(("127.0.0.1", 0))
        self.port = self.server.getsockname()[1]
        self.conn: socket.socket | None = None
        self.accepted = threading.Event()
        self.received = bytearray()
        self._thread = threading.Thread(target=self._accept, daemon=True)
        self._thread.start()

    def _accept(self) -> None:
        while True:
            try:
                conn, _ = self.server.accept()
            except OSError:
                return
            self.conn = conn
            self.accepted.set()

    def send(self, data: bytes) -> None:
        assert self.conn is not None
        self.conn.sendall(data)

    def read_command(self) -> dict[str, Any]:
        """The next netstring command the client sent."""
        import json

        assert self.conn is not None
        self.conn.settimeout(5)
        dec = NetstringDecoder()
        while True:
            frames = dec.feed(self.conn.recv(4096))
            if frames:
                return dict(json.loads(frames[0]))

    def drop(self) -> None:
        if self.conn is not None:
            self.conn.close()
            self.conn = None
        self.accepted.clear()

    def close(self) -> None:
        self.drop()
        self.server.close()


@pytest.fixture
def fake() -> Iterator[FakeCtrl]:
    f = FakeCtrl()
    yield f
    f.close()


def event(kind: str, call_id: str = "abc123", direction: str = "incoming") -> bytes:
    return encode_netstring({"event": True, "type": kind, "class": "call", "id": call_id, "direction": direction,
                             "peeruri": "sip:13800138000@pbx", "param": "x"})


def test_garbage_on_the_socket_is_counted_and_the_stream_resyncs(fake: FakeCtrl,
                                                                  records: list[logging.LogRecord]) -> None:
    rec = Recorder()
    with client(fake.port, listener=rec) as ours:
        assert ours.wait_connected(5) and fake.accepted.wait(5)
        fake.send(b"5:[1,2],")  # JSON, not an object
        fake.send(b"hello baresip\r\n")  # not a netstring at all
        fake.send(event("CALL_INCOMING"))
        fake.send(b"11:{not json!},")  # the right length, bad JSON
        fake.send(b"3:{}}x")  # no comma after the payload
        fake.send(encode_netstring({"event": True, "type": "CALL_RTCP", "id": "abc123"}))  # ignored
        fake.send(b"\xff\xfe" + b"8:{\"a\":1}")  # binary junk, then a wrong length
        fake.send(b"9999999:{")  # a length over the limit
        fake.send(encode_netstring({"neither": "event nor response"}))
        fake.send(encode_netstring({"event": True, "type": "CALL_ESTABLISHED"}))  # no call id
        fake.send(event("CALL_ESTABLISHED"))
        wait_for(lambda: rec.first(CallPhase.ESTABLISHED), what="established after garbage")
        # a corrupt length that promises more than ever comes: given up after STALL_S, the events
        # behind it are still read
        fake.send(b"5000:{" + event("CALL_CLOSED"))
        wait_for(lambda: rec.first(CallPhase.CLOSED), deadline_s=5, what="closed behind a stalled frame")
        assert [s.phase for _, s in rec.states] == [CallPhase.RINGING, CallPhase.ESTABLISHED, CallPhase.CLOSED]
        assert all(s.call_id == "abc123" for _, s in rec.states)
        g = ours.garbage
        assert g["bad-json"] == 1 and g["not-object"] == 1 and g["unknown-message"] == 1
        assert g["event-without-id"] == 1 and g["stalled"] == 1 and g["too-long"] >= 1
        assert g["bad-header"] >= 2 and g["no-comma"] >= 1
        assert ours.ignored["CALL_RTCP"] == 1
        assert ours.connected and ours.connects == 1  # never dropped for garbage
        warned = [r.fields["reason"] for r in records  # type: ignore[attr-defined]
                  if r.levelno == logging.WARNING and "bad message" in r.getMessage()]
        assert sorted(warned) == sorted(g)  # once per reason


def test_commands_are_matched_on_their_token(fake: FakeCtrl) -> None:
    with client(fake.port) as ours:
        assert ours.wait_connected(5) and fake.accepted.wait(5)
        box: dict[str, Any] = {}
        t = threading.Thread(target=lambda: box.update(result=ours.accept()))
        t.start()
        cmd = fake.read_command()
        assert cmd["command"] == "accept" and cmd["token"].startswith("hsc-")
        fake.send(encode_netstring({"response": True, "ok": True, "data": "other", "token": "someone-else"}))
        fake.send(encode_netstring({"response": True, "ok": True, "data": "answering", "token": cmd["token"]}))
        t.join(5)
        assert box["result"].ok and box["result"].data == "answering"
        assert ours.garbage["unmatched-response"] == 1

        def refuse() -> None:
            cmd = fake.read_command()
            fake.send(encode_netstring({"response": True, "ok": False, "data": "no active call\n",
                                        "token": cmd["token"]}))

        threading.Thread(target=refuse, daemon=True).start()
        with pytest.raises(CallSourceError, match="refused 'hangup': no active call"):
            ours.hangup()
        with pytest.raises(CallSourceError, match="no answer"):
            ours.command("dial", "sip:x@127.0.0.1", timeout_s=0.2)


def test_a_dropped_connection_closes_calls_and_reconnects(fake: FakeCtrl) -> None:
    rec = Recorder()
    with client(fake.port, listener=rec) as ours:
        assert ours.wait_connected(5) and fake.accepted.wait(5)
        fake.send(event("CALL_INCOMING", "c1"))
        wait_for(lambda: rec.first(CallPhase.RINGING), what="ringing")
        fake.drop()
        wait_for(lambda: rec.first(CallPhase.CLOSED), what="closed on loss")
        assert rec.states[-1][1].reason == "source-lost"
        assert fake.accepted.wait(5)  # reconnected after the backoff
        wait_for(lambda: ours.connected and ours.connects == 2, what="second connection")
        fake.send(event("CALL_CLOSED", "c1"))  # a late close of the lost call: no phantom call
        fake.send(event("CALL_INCOMING", "c2"))
        wait_for(lambda: ours.current().call_id == "c2", what="next call")
        assert [s.call_id for _, s in rec.states] == ["c1", "c1", "c2"]


# --- the parts without a socket -----------------------------------------------------------------------


def test_netstrings_split_anywhere_decode_the_same() -> None:
    stream = event("CALL_INCOMING") + b"junk" + event("CALL_ESTABLISHED") + encode_netstring({"k": "é"})
    whole = NetstringDecoder().feed(stream)
    dec = NetstringDecoder()
    pieces = [f for i in range(len(stream)) for f in dec.feed(stream[i:i + 1])]
    assert pieces == whole and len(whole) == 3
    assert dec.errors["bad-header"] == 1 and len(dec) == 0


def test_garbage_counts_the_same_however_the_reads_split_it() -> None:
    """Two runs of garbage with a good frame between count twice, also when a read ends just after the first
    run (the decoder then waits in its skipping state, and the good frame must end that run)."""
    parts = [b"hello baresip\r\n", event("CALL_INCOMING"), b"3:{}}x", encode_netstring({"a": 1}),
             b"\xff\xfe" + encode_netstring({"b": 2})]
    whole = NetstringDecoder()
    frames = whole.feed(b"".join(parts))
    split = NetstringDecoder()
    assert [f for p in parts for f in split.feed(p)] == frames and len(frames) == 3
    for dec in (whole, split):
        assert (dec.errors["bad-header"], dec.errors["no-comma"]) == (2, 1), dec.errors


def test_a_stalled_frame_is_given_up_on_the_injected_clock() -> None:
    now = [0.0]
    dec = NetstringDecoder(monotonic=lambda: now[0], stall_s=1.0)
    assert dec.feed(b"900:{" + encode_netstring({"a": 1})) == []
    assert dec.stall() == []
    now[0] = 1.5
    assert dec.stall() == [b'{"a":1}'] and dec.errors["stalled"] == 1


def test_source_specs() -> None:
    assert parse_source("none") == ("none", "", 0)
    assert parse_source("gpio") == ("gpio", "", 0)
    assert parse_source("baresip") == ("baresip", "127.0.0.1", 4444)
    assert parse_source("baresip:10.0.0.5:4445") == ("baresip", "10.0.0.5", 4445)
    for bad in ("baresip:host", "baresip:host:0", "sip", "gpio:5", ""):
        with pytest.raises(ConfigError, match="calls.source"):
            parse_source(bad)
    sources: list[CallSource] = [NoCallSource(), BaresipClient(), GpioCallSource()]  # mypy checks the protocol
    assert [s.name for s in sources] == ["none", "baresip", "gpio"]
    none = open_source("none")
    assert none.start() is none and none.events() == [] and none.current().phase is CallPhase.IDLE
    src = open_source("baresip:127.0.0.1:1")
    assert isinstance(src, BaresipClient) and src.address == "127.0.0.1:1" and not src.connected
