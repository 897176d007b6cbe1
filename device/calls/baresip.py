"""Call state from baresip (a SIP softphone) through its ``ctrl_tcp`` module.

``ctrl_tcp`` (``module_app ctrl_tcp.so``, ``ctrl_tcp_listen HOST:PORT`` in baresip's config) speaks
JSON netstrings both ways: ``LEN:JSON,`` where LEN is the decimal byte length of JSON.

- Events in: ``{"event":true,"type":"CALL_INCOMING","id":CALLID,"direction":"incoming",...}``.
  ``CALL_INCOMING`` (incoming, the desk rings), ``CALL_OUTGOING``/``CALL_RINGING``/``CALL_PROGRESS``
  (an outgoing call rings at the far end), ``CALL_ESTABLISHED`` and ``CALL_CLOSED`` map to
  :class:`~device.calls.state.CallState` transitions, keyed by baresip's call id (the SIP Call-ID,
  the same on both ends). Everything else (``CALL_LOCAL_SDP``, ``CALL_RTCP``, ``CALL_RTPESTAB``,
  registration events...) is counted in ``ignored`` and dropped. The peer URI is never kept.
- Commands out: ``{"command":"accept","params":...,"token":"hsc-N"}``; the answer
  ``{"response":true,"ok":BOOL,"data":TEXT,"token":"hsc-N"}`` is matched on the token.

Threads: one reader thread connects, reads and parses; :meth:`BaresipClient.command` runs in the
caller's thread and waits (wall time) for its response. Times of call states are the agent clock's
(``clock.now_ms()`` when the event is read, ms); backoff and timeouts are wall seconds.

ctrl_tcp serves one connection: a second client (another agent, a technician's netcat) makes
baresip close the first. The two then take turns, each reconnecting with backoff; run one.

Failures:
- baresip not there, refusing, or gone: the client reconnects with backoff
  (``BACKOFF_MIN_S`` .. ``BACKOFF_MAX_S``, doubling). The first failure and any change of cause are
  logged at WARNING with ``host:port`` and the cause, repeats at most once per ``LOG_EVERY_S``.
  A connection lost mid-call closes the active calls with reason ``source-lost``: baresip may have
  died, and a call that outlives a restart would be a new call anyway.
- Bad netstrings or JSON are counted by reason in ``garbage`` (the first of each reason logged at
  WARNING, the rest at DEBUG), never raised; the
  decoder resyncs on the next ``DIGITS:{``. A frame whose declared length never arrives (a corrupt
  length) is given up after ``STALL_S`` without completing, and the bytes after its header are
  parsed again, so one bad length cannot swallow the events behind it.
"""

from __future__ import annotations

import errno
import itertools
import json
import logging
import re
import socket
import threading
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from device.calls.state import CallSourceError, CallTracker, Direction, Listener, TrackedSource
from device.clock import Clock, WallClock
from device.logs import kv

log = logging.getLogger("device.calls.baresip")

BACKOFF_MIN_S = 0.5
BACKOFF_MAX_S = 8.0
LOG_EVERY_S = 60.0
"""Repeated connection failures with the same cause are logged at most this often (s)."""
CONNECT_TIMEOUT_S = 2.0
READ_TIMEOUT_S = 0.2
STALL_S = 1.0
"""A netstring whose declared length has not arrived after this long (s) is dropped as corrupt."""
MAX_FRAME = 256 * 1024
"""Longest netstring accepted (bytes); baresip's events are well under 2 KiB."""
COMMAND_TIMEOUT_S = 2.0

RINGING_EVENTS = {"CALL_INCOMING": Direction.INCOMING, "CALL_OUTGOING": Direction.OUTGOING,
                  "CALL_RINGING": Direction.OUTGOING, "CALL_PROGRESS": Direction.OUTGOING}
"""baresip events that mean "ringing", with the direction to assume when the event carries none."""

_HEADER = re.compile(rb"[0-9]{1,7}:")


def encode_netstring(obj: dict[str, Any]) -> bytes:
    """``LEN:JSON,`` for one JSON object (UTF-8)."""
    body = json.dumps(obj, separators=(",", ":")).encode()
    return str(len(body)).encode() + b":" + body + b","


class NetstringDecoder:
    """Incremental netstring decoder that never raises: bad input is counted and skipped.

    :meth:`feed` returns the complete payloads (bytes) found so far. ``errors`` counts by reason:
    ``bad-header`` (no ``DIGITS:`` where a frame should start), ``too-long`` (a length over
    ``max_frame``), ``no-comma`` (the byte after the payload is not ``,``), ``stalled`` (see
    :meth:`stall`). After an error the decoder resyncs on the next ``DIGITS:`` followed by ``{``;
    a run of garbage counts once however the reads split it.
    """

    def __init__(self, max_frame: int = MAX_FRAME, *, monotonic: Callable[[], float] = time.monotonic,
                 stall_s: float = STALL_S) -> None:
        self.max_frame = max_frame
        self.monotonic = monotonic
        self.stall_s = stall_s
        self.errors: Counter[str] = Counter()
        self._buf = bytearray()
        self._pending_since: float | None = None
        self._skipping = False

    def __len__(self) -> int:
        return len(self._buf)

    def _error(self, reason: str) -> None:
        self.errors[reason] += 1
        log.debug("bad netstring from baresip", extra=kv(reason=reason))

    def _resync(self, start: int) -> None:
        """Drop bytes up to the next plausible frame start at or after ``start``."""
        pos = start
        while True:
            m = _HEADER.search(self._buf, pos)
            if m is None:
                # keep a tail that may be the beginning of a header cut by the read
                tail = len(self._buf)
                while tail > start and self._buf[tail - 1:tail].isdigit() and len(self._buf) - tail < 7:
                    tail -= 1
                del self._buf[:tail]
                self._skipping = True  # more of the same garbage is not a new error
                return
            end = m.end()
            if end == len(self._buf) or self._buf[end:end + 1] == b"{":
                del self._buf[:m.start()]
                self._skipping = False
                return
            pos = m.start() + 1

    def feed(self, data: bytes) -> list[bytes]:
        self._buf += data
        out: list[bytes] = []
        while self._buf:
            m = _HEADER.match(self._buf)
            if m is None:
                if len(self._buf) < 8 and self._buf.isdigit():
                    break  # a header still arriving
                if not self._skipping:
                    self._error("bad-header")
                self._resync(1)
                continue
            self._skipping = False  # a header ends a run of garbage, even when a read ended the run before it
            # after an error, skip the whole header: a shorter suffix of its digits is no frame either
            n = int(self._buf[:m.end() - 1])
            if n > self.max_frame:
                self._error("too-long")
                self._resync(m.end())
                continue
            end = m.end() + n
            if len(self._buf) <= end:
                if self._pending_since is None:
                    self._pending_since = self.monotonic()
                break
            self._pending_since = None
            if self._buf[end] != ord(","):
                self._error("no-comma")
                self._resync(m.end())
                continue
            out.append(bytes(self._buf[m.end():end]))
            del self._buf[:end + 1]
        if not self._buf:
            self._pending_since = None
        return out

    def stall(self) -> list[bytes]:
        """Give up an incomplete frame older than ``stall_s`` and parse what follows its header.

        Call this when the socket is quiet. Returns the payloads found behind the dropped header.
        """
        if self._pending_since is None or self.monotonic() - self._pending_since < self.stall_s:
            return []
        self._pending_since = None
        self._error("stalled")
        m = _HEADER.match(self._buf)
        self._resync(m.end() if m is not None else 1)
        return self.feed(b"")

    def reset(self) -> None:
        self._buf.clear()
        self._pending_since = None
        self._skipping = False


@dataclass(frozen=True, slots=True)
class CommandResult:
    """baresip's answer to a command: ``ok`` and its ``data`` text."""

    ok: bool
    data: str
    token: str


class _Waiter:
    def __init__(self) -> None:
        self.done = threading.Event()
        self.result: CommandResult | None = None


class BaresipClient(TrackedSource):
    """A :class:`~device.calls.state.CallSource` on baresip's ``ctrl_tcp`` at ``host:port``.

    ``start()`` runs the reader thread (it connects and reconnects on its own); ``stop()`` closes
    the socket and joins it. Counters for metrics: ``garbage`` (bad frames by reason), ``ignored``
    (events of other types), ``connects`` (successful connections), ``failures`` (failed attempts).
    """

    name = "baresip"

    def __init__(self, host: str = "127.0.0.1", port: int = 4444, *, clock: Clock | None = None,
                 listener: Listener | None = None, backoff_min_s: float = BACKOFF_MIN_S,
                 backoff_max_s: float = BACKOFF_MAX_S, log_every_s: float = LOG_EVERY_S,
                 monotonic: Callable[[], float] = time.monotonic) -> None:
        if not 0 < backoff_min_s <= backoff_max_s:
            raise ValueError(f"backoff must satisfy 0 < min <= max, got {backoff_min_s!r}..{backoff_max_s!r}")
        self.host = host
        self.port = int(port)
        self.clock: Clock = clock if clock is not None else WallClock()
        self.tracker = CallTracker(self.name, self.clock, listener)
        self.backoff_min_s = backoff_min_s
        self.backoff_max_s = backoff_max_s
        self.log_every_s = log_every_s
        self.monotonic = monotonic
        self.garbage: Counter[str] = Counter()
        self.ignored: Counter[str] = Counter()
        self.connects = 0
        self.failures = 0
        self.last_error: str | None = None
        self._sock: socket.socket | None = None
        self._lock = threading.Lock()
        self._write_lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._connected = threading.Event()
        self._tokens = itertools.count(1)
        self._waiters: dict[str, _Waiter] = {}
        self._decoder = NetstringDecoder(monotonic=monotonic)
        self._logged_cause: str | None = None
        self._logged_at = -float("inf")
        self._suppressed = 0

    @property
    def address(self) -> str:
        return f"{self.host}:{self.port}"

    # --- lifecycle ----------------------------------------------------------------------------------

    def start(self) -> BaresipClient:
        if self._thread is None:
            self._stop.clear()
            self._thread = threading.Thread(target=self._run, name=f"baresip {self.address}", daemon=True)
            self._thread.start()
        return self

    def stop(self) -> None:
        """Stop reading and close the socket (idempotent). Active calls are not closed: the desk
        no longer knows about them, and the owner is stopping anyway."""
        self._stop.set()
        self._close_socket()
        if self._thread is not None:
            self._thread.join(5)
            self._thread = None

    # --- what the owner reads -------------------------------------------------------------------------

    @property
    def connected(self) -> bool:
        return self._connected.is_set()

    def wait_connected(self, timeout_s: float) -> bool:
        """Wait (wall time) until connected; True when connected."""
        return self._connected.wait(timeout_s)


    def stats(self) -> dict[str, Any]:
        """Counters for metrics and logs (numbers only)."""
        with self._lock:
            return {"connected": self.connected, "connects": self.connects, "failures": self.failures,
                    "garbage": dict(self.garbage), "ignored": sum(self.ignored.values())}

    # --- commands -------------------------------------------------------------------------------------

    def command(self, name: str, params: str | None = None, timeout_s: float = COMMAND_TIMEOUT_S) -> CommandResult:
        """Send a ctrl_tcp command and wait (wall time) for its response.

        Raises :class:`CallSourceError` when not connected, on a write error, on timeout, or when
        baresip answers ``ok: false`` (its text in the message).
        """
        token = f"hsc-{next(self._tokens)}"
        msg: dict[str, Any] = {"command": name, "token": token}
        if params is not None:
            msg["params"] = params
        waiter = _Waiter()
        with self._lock:
            self._waiters[token] = waiter
        try:
            with self._write_lock:
                sock = self._sock
                if sock is None or not self.connected:
                    raise CallSourceError(f"baresip at {self.address} is not connected; cannot send {name!r}")
                try:
                    sock.sendall(encode_netstring(msg))
                except OSError as exc:
                    raise CallSourceError(f"send of {name!r} to baresip at {self.address} failed: {exc}") from None
            if not waiter.done.wait(timeout_s):
                raise CallSourceError(f"no answer to {name!r} from baresip at {self.address} within {timeout_s:g} s")
            result = waiter.result
            assert result is not None
            if not result.token:
                raise CallSourceError(f"lost baresip at {self.address} while waiting for {name!r}: {result.data}")
            if not result.ok:
                raise CallSourceError(f"baresip at {self.address} refused {name!r}: {result.data.strip()}")
            return result
        finally:
            with self._lock:
                self._waiters.pop(token, None)

    def accept(self, timeout_s: float = COMMAND_TIMEOUT_S) -> CommandResult:
        """Answer the ringing incoming call."""
        return self.command("accept", timeout_s=timeout_s)

    def hangup(self, timeout_s: float = COMMAND_TIMEOUT_S) -> CommandResult:
        """Hang up the current call."""
        return self.command("hangup", timeout_s=timeout_s)

    def dial(self, uri: str, timeout_s: float = COMMAND_TIMEOUT_S) -> CommandResult:
        """Call ``uri`` (``sip:user@host:port``)."""
        return self.command("dial", uri, timeout_s=timeout_s)

    # --- the reader thread ----------------------------------------------------------------------------

    def _close_socket(self) -> None:
        with self._write_lock:
            sock, self._sock = self._sock, None
        if sock is not None:
            try:
                sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            sock.close()

    def _log_failure(self, cause: str) -> None:
        """WARNING on the first failure and on a new cause; the same cause again once per ``log_every_s``."""
        now = self.monotonic()
        if cause != self._logged_cause or now - self._logged_at >= self.log_every_s:
            log.warning("cannot reach baresip ctrl_tcp; retrying with backoff",
                        extra=kv(address=self.address, cause=cause, failures=self.failures,
                                 suppressed=self._suppressed))
            self._logged_cause = cause
            self._logged_at = now
            self._suppressed = 0
        else:
            self._suppressed += 1
            log.debug("baresip ctrl_tcp still unreachable", extra=kv(address=self.address, cause=cause))

    def _connect(self) -> bool:
        try:
            sock = socket.create_connection((self.host, self.port), timeout=CONNECT_TIMEOUT_S)
        except OSError as exc:
            with self._lock:
                self.failures += 1
            cause = _cause(exc)
            self.last_error = cause
            self._log_failure(cause)
            return False
        sock.settimeout(READ_TIMEOUT_S)
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        with self._write_lock:
            self._sock = sock
        self._decoder.reset()
        with self._lock:
            self.connects += 1
        self._logged_cause = None
        log.info("connected to baresip ctrl_tcp", extra=kv(address=self.address, connects=self.connects))
        self._connected.set()
        return True

    def _lost(self, cause: str) -> None:
        self._close_socket()
        self._connected.clear()
        self.last_error = cause
        with self._lock:
            waiters = list(self._waiters.values())
        for w in waiters:  # fail pending commands now rather than at their timeout
            w.result = CommandResult(False, cause, "")
            w.done.set()
        closed = self.tracker.close_all("source-lost")
        if not self._stop.is_set():
            log.warning("lost baresip ctrl_tcp", extra=kv(address=self.address, cause=cause,
                                                         calls_closed=len(closed)))

    def _run(self) -> None:
        backoff = self.backoff_min_s
        up_since = 0.0
        while not self._stop.is_set():
            if self._sock is None:
                if not self._connect():
                    if self._stop.wait(backoff):
                        break
                    backoff = min(self.backoff_max_s, backoff * 2)
                    continue
                up_since = self.monotonic()
            sock = self._sock
            if sock is None:
                continue
            try:
                data = sock.recv(65536)
            except TimeoutError:
                self._dispatch(self._decoder.stall())
                continue
            except OSError as exc:
                cause: str | None = _cause(exc)
            else:
                cause = None if data else "closed by baresip"
                if data:
                    self._dispatch(self._decoder.feed(data) + self._decoder.stall())
            if cause is None or self._stop.is_set():
                continue
            self._lost(cause)
            # a connection that dropped soon after it came up (a crash loop, a wrong port that
            # accepts and closes) keeps backing off; one that lasted resets the backoff
            if self.monotonic() - up_since >= self.backoff_max_s:
                backoff = self.backoff_min_s
            if self._stop.wait(backoff):
                break
            backoff = min(self.backoff_max_s, backoff * 2)
        self._connected.clear()

    def _dispatch(self, frames: list[bytes]) -> None:
        for reason, n in list(self._decoder.errors.items()):
            self._garbage(reason, n)
        self._decoder.errors.clear()
        for frame in frames:
            try:
                self._handle(frame)
            except Exception as exc:  # a bug must not stop the reader: count it, keep reading
                self._garbage("internal-error")
                log.exception("baresip message could not be handled",
                              extra=kv(address=self.address, error=f"{type(exc).__name__}: {exc}"))

    def _garbage(self, reason: str, n: int = 1) -> None:
        """Count a bad message; the first of each reason is logged at WARNING, the rest at DEBUG."""
        with self._lock:
            first = reason not in self.garbage
            self.garbage[reason] += n
        if first:
            log.warning("bad message from baresip ctrl_tcp, dropped (more of this kind at debug level)",
                        extra=kv(address=self.address, reason=reason))
        else:
            log.debug("bad message from baresip ctrl_tcp", extra=kv(address=self.address, reason=reason))

    def _handle(self, frame: bytes) -> None:
        try:
            msg = json.loads(frame.decode("utf-8"))
        except (UnicodeDecodeError, ValueError, RecursionError):
            self._garbage("bad-json")
            return
        if not isinstance(msg, dict):
            self._garbage("not-object")
            return
        if msg.get("response") is True:
            self._response(msg)
        elif msg.get("event") is True:
            self._event(msg)
        else:
            self._garbage("unknown-message")

    def _response(self, msg: dict[str, Any]) -> None:
        token = msg.get("token")
        with self._lock:
            waiter = self._waiters.get(token) if isinstance(token, str) else None
        if waiter is None:
            self._garbage("unmatched-response")  # late (after a timeout) or someone else's
            return
        data = msg.get("data")
        waiter.result = CommandResult(msg.get("ok") is True, data if isinstance(data, str) else "", str(token))
        waiter.done.set()

    def _event(self, msg: dict[str, Any]) -> None:
        kind = msg.get("type")
        if not isinstance(kind, str):
            self._garbage("bad-event")
            return
        if kind not in RINGING_EVENTS and kind not in ("CALL_ESTABLISHED", "CALL_CLOSED"):
            with self._lock:
                self.ignored[kind] += 1
            return
        call_id = msg.get("id")
        if not isinstance(call_id, str) or not call_id:
            self._garbage("event-without-id")
            return
        d = msg.get("direction")
        direction = (Direction(d) if d in ("incoming", "outgoing")
                     else RINGING_EVENTS.get(kind, Direction.INCOMING))
        if kind in RINGING_EVENTS:
            self.tracker.ringing(call_id, direction)
        elif kind == "CALL_ESTABLISHED":
            self.tracker.established(call_id, direction)
        else:
            param = msg.get("param")
            self.tracker.closed(call_id, param if isinstance(param, str) and param else "hangup",
                                direction=direction)


def _cause(exc: OSError) -> str:
    """A short, stable cause for logs: ``connection refused``, ``timed out``, or the OS text."""
    if isinstance(exc, TimeoutError):
        return "timed out"
    if exc.errno == errno.ECONNREFUSED:
        return "connection refused"
    if exc.errno == errno.ECONNRESET:
        return "connection reset"
    return exc.strerror or str(exc) or type(exc).__name__
