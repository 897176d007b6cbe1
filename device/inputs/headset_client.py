"""The desk side of the headset link: pyserial and ``hw.firmware.headset_link`` in a reader thread.

The headset MCU sends ``hello`` (firmware version, headset id), ``imu`` frames (pitch/roll, deg),
``wear`` edges and replies (``pong``, ``info``, ``ack``); the desk sends ``led``, ``ping``,
``get_info`` and ``cal`` (see docs/headset-link.md). Garbage lines are counted by reason (in
``garbage``, logged at DEBUG) and skipped; nothing a headset sends can stop the reader thread (a
line that trips a bug is counted as ``internal-error`` and logged with its traceback).

Liveness runs on the wall-clock ``monotonic`` function (seconds), not on the agent's clock: the
link pings after ``PING_AFTER_S`` of silence and declares the headset gone after ``STALE_S`` without
any line, a read error or a closed port. It then reopens the port with backoff
(``REOPEN_MIN_S`` .. ``REOPEN_MAX_S``); the link is back when a hello or any valid line arrives.
A read waits for bytes up to the next of those deadlines (``READ_TIMEOUT_S`` .. ``MAX_READ_TIMEOUT_S``),
so a streaming headset wakes the reader once per line, not on a fixed poll; ``stop()`` cancels a read
in progress.
Changes reach the owner as :class:`LinkEvent` values through :meth:`HeadsetClient.events`.
"""

from __future__ import annotations

import logging
import math
import os
import queue
import threading
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import serial

from device.errors import LinkError
from device.logs import kv
from hw.firmware import headset_link as hl

log = logging.getLogger("device.headset")

STALE_S = 1.5
PING_AFTER_S = 0.5
REOPEN_MIN_S = 0.2
REOPEN_MAX_S = 1.0
READ_TIMEOUT_S = 0.05
"""Shortest wait (s) of one read of the port: the resolution of the liveness checks."""
MAX_READ_TIMEOUT_S = 0.5
"""Longest wait (s) of one read: a read returns as soon as bytes arrive, so while the headset streams the
reader wakes once per line, and only a silent link wakes it on a timeout (for the ping and the stale check)."""


@dataclass(frozen=True)
class Hello:
    firmware: str
    headset_id: str
    micropython: str
    proto: int


@dataclass(frozen=True)
class ImuFrame:
    """Pitch (deg, + = head forward) and roll (deg, + = right ear down) at ``at_s`` (monotonic s)."""

    pitch_deg: float
    roll_deg: float
    at_s: float


@dataclass(frozen=True)
class LinkEvent:
    """``kind``: connected, disconnected, hello (every hello: firmware, headset_id), wear, ack, pong, info, log."""

    kind: str
    at_s: float
    data: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class LinkSnapshot:
    connected: bool
    hello: Hello | None
    imu: ImuFrame | None
    worn: bool | None
    garbage: dict[str, int]
    frames: int


def missing_port(port: str) -> str | None:
    """What to tell the user when the serial ``port`` does not exist (None: it does): checked before a
    :class:`HeadsetClient` waits for a headset that cannot answer."""
    if os.path.exists(port):
        return None
    return f"no such port {port} (is the headset plugged in? see ls /dev/ttyACM*)"


class HeadsetClient:
    """A headset on serial ``port`` (a device path; a pty path works). ``start()`` runs the reader."""

    def __init__(self, port: str, baud: int = 115200, *, monotonic: Callable[[], float] = time.monotonic,
                 stale_s: float = STALE_S) -> None:
        self.port = port
        self.baud = baud
        self.monotonic = monotonic
        self.stale_s = stale_s
        self._ser: serial.Serial | None = None
        self._lock = threading.Lock()
        self._write_lock = threading.Lock()
        self._events: queue.Queue[LinkEvent] = queue.Queue()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._seq = hl.Sequencer()
        self._lines = hl.LineBuffer()
        self._connected = False
        self._hello: Hello | None = None
        self._imu: ImuFrame | None = None
        self._worn: bool | None = None
        self._last_rx = 0.0
        self._last_ping = 0.0
        self.garbage: Counter[str] = Counter()
        self.frames = 0
        self.opens = 0
        self._waiters: dict[int, tuple[threading.Event, list[dict[str, Any]]]] = {}

    # --- lifecycle --------------------------------------------------------------------------------

    def start(self) -> HeadsetClient:
        if self._thread is None:
            self._stop.clear()
            self._thread = threading.Thread(target=self._run, name=f"headset {self.port}", daemon=True)
            self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        self._cancel_read()
        if self._thread is not None:
            self._thread.join(5)
            self._thread = None
        self._close_port()

    def __enter__(self) -> HeadsetClient:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # --- what the owner reads ---------------------------------------------------------------------

    def snapshot(self) -> LinkSnapshot:
        with self._lock:
            return LinkSnapshot(self._connected, self._hello, self._imu, self._worn if self._connected else None,
                                dict(self.garbage), self.frames)

    def live(self) -> tuple[bool, ImuFrame | None, bool | None]:
        """(connected, the latest IMU frame, worn): what the desk loop reads on every pass, without the
        copies a :meth:`snapshot` makes."""
        with self._lock:
            connected = self._connected
            return connected, self._imu, self._worn if connected else None

    @property
    def connected(self) -> bool:
        with self._lock:
            return self._connected

    def events(self) -> list[LinkEvent]:
        """Every event since the last call, oldest first."""
        if self._events.empty():  # the usual case on a pass of the loop: no exception to raise and catch
            return []
        out: list[LinkEvent] = []
        while True:
            try:
                out.append(self._events.get_nowait())
            except queue.Empty:
                return out

    # --- commands to the headset ------------------------------------------------------------------

    def send(self, t: str, **fields: Any) -> int:
        """Send one message; return its sequence number. Raises LinkError when the port is not open."""
        msg = self._seq.message(t, **fields)
        try:
            line = hl.encode(msg)
        except hl.LinkError as exc:
            raise LinkError(f"cannot encode a {t!r} message for the headset: {exc}") from None
        with self._write_lock:
            ser = self._ser
            if ser is None:
                raise LinkError(f"headset port {self.port} is not open")
            try:
                ser.write(line)
            except (serial.SerialException, OSError) as exc:
                raise LinkError(f"write to headset port {self.port} failed: {exc}") from None
        return int(msg["n"])

    def request(self, t: str, timeout_s: float = 2.0, **fields: Any) -> dict[str, Any]:
        """Send ``t`` and wait (wall time) for the reply carrying ``re`` = its n; LinkError on timeout."""
        ev = threading.Event()
        box: list[dict[str, Any]] = []
        with self._lock:
            n = self._seq.n
            self._waiters[n] = (ev, box)
        try:
            sent = self.send(t, **fields)
            if sent != n:  # another sender raced us: re-register under the real number
                with self._lock:
                    self._waiters.pop(n, None)
                    self._waiters[sent] = (ev, box)
                n = sent
            if not ev.wait(timeout_s):
                raise LinkError(f"no reply to {t!r} from the headset on {self.port} within {timeout_s:g} s")
            return box[0]
        finally:
            with self._lock:
                self._waiters.pop(n, None)

    def set_led(self, rgb: tuple[int, int, int]) -> None:
        """Ask the headset LED to show ``rgb`` (0..255 each); a missing port is ignored."""
        try:
            self.send(hl.LED, rgb=[int(c) for c in rgb])
        except LinkError:
            pass

    # --- the reader thread ------------------------------------------------------------------------

    def _emit(self, kind: str, data: dict[str, Any] | None = None) -> None:
        self._events.put(LinkEvent(kind, self.monotonic(), data or {}))

    def _open_port(self) -> bool:
        try:
            ser = serial.Serial(self.port, self.baud, timeout=READ_TIMEOUT_S, write_timeout=0.5)
        except (serial.SerialException, OSError, ValueError):
            return False
        try:
            ser.reset_input_buffer()
        except (serial.SerialException, OSError):
            pass
        with self._write_lock:
            self._ser = ser
        self._lines = hl.LineBuffer()
        self.opens += 1
        now = self.monotonic()
        self._last_rx = now
        self._last_ping = now
        return True

    def _cancel_read(self) -> None:
        """Wake the reader thread from a read in progress (it then sees ``_stop``)."""
        with self._write_lock:
            ser = self._ser
        if ser is not None:
            try:
                ser.cancel_read()
            except (serial.SerialException, OSError, AttributeError):
                pass  # the port is closing anyway

    def _read_timeout(self, now: float) -> float:
        """Seconds (``READ_TIMEOUT_S`` .. ``MAX_READ_TIMEOUT_S``, in steps of ``READ_TIMEOUT_S``) until the
        next liveness deadline after ``now`` (monotonic s): a ping due, or the link going stale."""
        ping_at = max(self._last_rx, self._last_ping) + PING_AFTER_S
        stale_at = self._last_rx + self.stale_s
        steps = math.ceil((min(ping_at, stale_at) - now) / READ_TIMEOUT_S)
        return min(MAX_READ_TIMEOUT_S, READ_TIMEOUT_S * max(1, steps))

    def _close_port(self) -> None:
        with self._write_lock:
            ser, self._ser = self._ser, None
        if ser is not None:
            try:
                ser.close()
            except (serial.SerialException, OSError):
                pass

    def _lost(self, reason: str) -> None:
        self._close_port()
        with self._lock:
            was = self._connected
            self._connected = False
            self._imu = None
            self._worn = None
        if was:
            log.warning("headset link lost", extra=kv(port=self.port, reason=reason))
            self._emit("disconnected", {"reason": reason})

    def _run(self) -> None:
        backoff = REOPEN_MIN_S
        while not self._stop.is_set():
            if self._ser is None:
                if not self._open_port():
                    self._stop.wait(backoff)
                    backoff = min(REOPEN_MAX_S, backoff * 2)
                    continue
                backoff = REOPEN_MIN_S
            ser = self._ser
            assert ser is not None
            try:
                timeout = self._read_timeout(self.monotonic())
                if ser.timeout != timeout:  # a change reconfigures the port: only when it differs
                    ser.timeout = timeout
                data = ser.read(max(1, ser.in_waiting))
                waiting = ser.in_waiting if data else 0
                if waiting:  # the rest of what woke the read (a line arrives in pieces): in this pass
                    data += ser.read(waiting)
            except (serial.SerialException, OSError, TypeError) as exc:
                self._lost(f"read error: {exc}")
                continue
            now = self.monotonic()
            if data:
                for line in self._lines.feed(data):
                    try:
                        self._handle(line, now)
                    except Exception as exc:  # a bug must not stop the link: count it, keep reading
                        with self._lock:
                            self.garbage["internal-error"] += 1
                        log.exception("headset line could not be handled",
                                      extra=kv(port=self.port, error=f"{type(exc).__name__}: {exc}"))
                dropped = self._lines.dropped
                if dropped:
                    self._lines.dropped = 0
                    with self._lock:
                        self.garbage["too-long"] += dropped
            if now - self._last_rx > self.stale_s:
                self._lost(f"no data for {now - self._last_rx:.1f} s")
                continue
            if now - self._last_rx > PING_AFTER_S and now - self._last_ping > PING_AFTER_S:
                self._last_ping = now
                try:
                    self.send(hl.PING)
                except LinkError:
                    pass

    def _garbage(self, reason: str) -> None:
        with self._lock:
            self.garbage[reason] += 1
        log.debug("garbage line from the headset", extra=kv(port=self.port, reason=reason))

    def _handle(self, line: bytes, now: float) -> None:
        try:
            msg = hl.decode(line)
        except hl.LinkError as exc:
            self._garbage(exc.reason)
            return
        except (TypeError, RecursionError):  # hl.validate on a "t" that is a list or an object
            self._garbage("unknown-type")
            return
        t = msg["t"]
        if t in (hl.PING, hl.GET_INFO, hl.LED, hl.CALIBRATE):
            with self._lock:
                self.garbage["wrong-direction"] += 1
            return
        self._last_rx = now
        newly = False
        with self._lock:
            if not self._connected:
                self._connected = True
                newly = True
            if t == hl.HELLO:
                self._hello = Hello(msg["fw"], msg["id"], msg["mp"], msg["proto"])
            elif t == hl.IMU:
                self._imu = ImuFrame(float(msg["p"]), float(msg["r"]), now)
                self.frames += 1
            elif t == hl.WEAR:
                self._worn = bool(msg["on"])
            waiter = self._waiters.get(msg["re"]) if "re" in msg and isinstance(msg.get("re"), int) else None
            hello = self._hello
        if newly:
            log.info("headset link up", extra=kv(port=self.port, firmware=hello.firmware if hello else None))
            self._emit("connected", {"firmware": hello.firmware if hello else None,
                                     "headset_id": hello.headset_id if hello else None})
        if t == hl.HELLO and msg["proto"] != hl.PROTOCOL_VERSION:
            log.warning("headset speaks another protocol version",
                        extra=kv(port=self.port, theirs=msg["proto"], ours=hl.PROTOCOL_VERSION))
        if t == hl.HELLO:
            self._emit("hello", {"firmware": msg["fw"], "headset_id": msg["id"], "proto": msg["proto"]})
        if t == hl.WEAR:
            self._emit("wear", {"on": bool(msg["on"])})
        elif t in (hl.ACK, hl.PONG, hl.INFO, hl.LOG):  # any extra keys ("kind", "self", ...) are data only
            self._emit(t, {k: v for k, v in msg.items() if k != "t"})
        if waiter is not None:
            waiter[1].append(msg)
            waiter[0].set()
