"""Call state on the desk: the one small interface every call source implements.

A call goes ``ringing`` (the desk phone rings, or an outgoing call rings at the far end) →
``established`` (connected: picked up, or answered by the far end) → ``closed`` (hung up, not
answered, or the source was lost). Between calls the desk is ``idle``. An outgoing call may go
straight to ``established`` when the source cannot see its ringing (a desk phone lifted to dial).

Every transition is a :class:`CallState`: the phase, the call id, the direction, and the agent-clock
times (ms since the Unix epoch, :mod:`device.clock`) of each phase reached so far, so that the
``closed`` state alone carries the whole timeline a per-call measure needs
(:func:`device.calls.measures.measure_call`).

Sources (:class:`CallSource`): ``none`` (:class:`NoCallSource`, the default: always idle),
``baresip`` (:mod:`device.calls.baresip`) and ``gpio`` (:mod:`device.calls.gpio`). The owner either
polls :meth:`CallSource.events` (transitions since the last poll, oldest first) and
:meth:`CallSource.current`, or passes a ``listener`` that each source calls from its own thread;
a listener that raises is logged and never stops the source.

Privacy: a state holds ids, phases and times only. The peer's number or SIP URI is never kept.
"""

from __future__ import annotations

import collections
import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass, replace
from enum import StrEnum
from typing import Protocol, Self

from device.clock import Clock
from device.errors import AgentError
from device.logs import kv

log = logging.getLogger("device.calls")


class CallSourceError(AgentError, OSError):
    """A call source that cannot be used: a command refused, timed out, or sent while disconnected."""


class CallPhase(StrEnum):
    IDLE = "idle"
    RINGING = "ringing"
    ESTABLISHED = "established"
    CLOSED = "closed"


class Direction(StrEnum):
    INCOMING = "incoming"
    OUTGOING = "outgoing"


@dataclass(frozen=True, slots=True)
class CallState:
    """One call at one transition. Times are agent-clock ms since the Unix epoch; None = not reached.

    ``at_ms`` is the time of this transition. ``rings`` is the number of ring bursts counted by the
    source (GPIO) or None when the source cannot count them (SIP: see
    :func:`device.calls.measures.rings_from_time`). ``reason`` says why a call closed
    (``"hangup"``, ``"not-answered"``, ``"source-lost"``, or the source's own text).
    """

    phase: CallPhase
    call_id: str | None = None
    direction: Direction | None = None
    at_ms: int = 0
    ringing_ms: int | None = None
    established_ms: int | None = None
    closed_ms: int | None = None
    rings: int | None = None
    reason: str | None = None
    source: str = "none"

    @property
    def active(self) -> bool:
        """True while ringing or established."""
        return self.phase in (CallPhase.RINGING, CallPhase.ESTABLISHED)

    @property
    def answered(self) -> bool:
        return self.established_ms is not None


@dataclass(frozen=True, slots=True)
class RingCadence:
    """The ring cadence of the line (seconds): ``on_s`` of ringing, then ``off_s`` of silence.

    The default (1 s on, 4 s off) is the Chinese and North American cadence; a UK double ring
    (0.4 on, 0.2 off, 0.4 on, 2 off) is ``RingCadence(1.0, 2.0)`` with ``merge_gap_s`` above 0.2.

    - ``merge_gap_s``: inactive gaps shorter than this stay inside one burst (a ring detector on
      the AC ring voltage chatters at twice the ring frequency, about 40 Hz). Default:
      ``min(0.3, off_s / 2)``.
    - ``min_burst_s``: a burst shorter than this is a glitch, not a ring. Default ``min(0.2, on_s / 2)``.
    - ``timeout_s``: ringing is over (the caller gave up) when no burst starts this long after the
      last one ended. Default ``1.5 * off_s``.
    """

    on_s: float = 1.0
    off_s: float = 4.0
    merge_gap_s: float | None = None
    min_burst_s: float | None = None
    timeout_s: float | None = None

    def __post_init__(self) -> None:
        for name in ("on_s", "off_s", "merge_gap_s", "min_burst_s", "timeout_s"):
            v = getattr(self, name)
            if v is None:
                continue
            if isinstance(v, bool) or not isinstance(v, int | float) or not 0 < v < 3600:
                raise ValueError(f"ring cadence {name}: must be seconds in (0, 3600), got {v!r}")
        if self.gap_s >= self.off_s:
            raise ValueError(f"ring cadence merge_gap_s ({self.gap_s:g} s) must be shorter than off_s ({self.off_s:g} s)")

    @property
    def period_s(self) -> float:
        """One ring cycle (s): ``on_s + off_s``."""
        return self.on_s + self.off_s

    @property
    def gap_s(self) -> float:
        return self.merge_gap_s if self.merge_gap_s is not None else min(0.3, self.off_s / 2)

    @property
    def glitch_s(self) -> float:
        return self.min_burst_s if self.min_burst_s is not None else min(0.2, self.on_s / 2)

    @property
    def give_up_s(self) -> float:
        return self.timeout_s if self.timeout_s is not None else 1.5 * self.off_s


IDLE = CallState(CallPhase.IDLE)
"""The desk with no call (``at_ms`` 0: no transition seen)."""

Listener = Callable[[CallState], None]


class CallSource(Protocol):
    """Where the desk learns about calls. ``start()`` returns the source; ``stop()`` is idempotent."""

    name: str

    def start(self) -> CallSource: ...

    def stop(self) -> None: ...

    def events(self) -> list[CallState]:
        """Every transition since the last call, oldest first."""
        ...

    def current(self) -> CallState:
        """The desk's call now: the established call, else the ringing one, else the last closed
        call (until the next one starts), else :data:`IDLE`."""
        ...

    @property
    def connected(self) -> bool:
        """True while the source can see calls (always True for ``none`` and ``gpio``)."""
        ...

    def poll(self, broker_connected: bool) -> None:
        """Called by the agent's loop on every pass with ``broker_connected``: whether the agent's MQTT
        client receives the ``cti`` topic (connected, and the broker has granted the subscription:
        :attr:`device.outputs.publisher.DeskPublisher.cti_ready`). A source fed through that client uses
        it; the others run on their own threads."""
        ...


class NoCallSource:
    """``none``: no call source configured. Always idle, never an event."""

    name = "none"
    connected = True

    def start(self) -> NoCallSource:
        return self

    def stop(self) -> None:
        pass

    def events(self) -> list[CallState]:
        return []

    def current(self) -> CallState:
        return IDLE

    def poll(self, broker_connected: bool) -> None:
        pass

    def __enter__(self) -> NoCallSource:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


class CallTracker:
    """The bookkeeping every source shares: per-call timelines, the event queue, the listener.

    Sources call :meth:`ringing`, :meth:`established` and :meth:`closed` with the source's call id;
    the tracker stamps the agent clock (or the given ``at_ms``), ignores transitions that go
    backwards (a second ``ringing`` for an established call, anything for a closed call) and emits
    one :class:`CallState` per real transition. Thread-safe.
    """

    CLOSED_KEEP = 64
    """Closed call ids remembered, so that a late duplicate event does not start a phantom call."""
    QUEUE_KEEP = 256
    """Transitions kept for :meth:`events` (the oldest go first when nobody polls: a listener-only owner)."""

    def __init__(self, source: str, clock: Clock, listener: Listener | None = None) -> None:
        self.source = source
        self.clock = clock
        self.listener = listener
        self._lock = threading.Lock()
        self._calls: dict[str, CallState] = {}
        self._closed_ids: list[str] = []
        self._last_closed: CallState | None = None
        self._queue: collections.deque[CallState] = collections.deque(maxlen=self.QUEUE_KEEP)

    # --- transitions --------------------------------------------------------------------------------

    def ringing(self, call_id: str, direction: Direction, *, at_ms: int | None = None,
                rings: int | None = None) -> CallState | None:
        """The call rings (again: ``rings`` updated). None when nothing changed."""
        t = self.clock.now_ms() if at_ms is None else at_ms
        with self._lock:
            if call_id in self._closed_ids:
                return None
            old = self._calls.get(call_id)
            if old is None:
                new = CallState(CallPhase.RINGING, call_id, direction, t, ringing_ms=t, rings=rings,
                                source=self.source)
            elif old.phase is CallPhase.RINGING and rings is not None and rings != old.rings:
                new = replace(old, at_ms=t, rings=rings)
            else:
                return None
            self._calls[call_id] = new
        return self._emit(new)

    def established(self, call_id: str, direction: Direction, *, at_ms: int | None = None,
                    rings: int | None = None) -> CallState | None:
        """The call is connected. None when it already was (or is closed)."""
        t = self.clock.now_ms() if at_ms is None else at_ms
        with self._lock:
            if call_id in self._closed_ids:
                return None
            old = self._calls.get(call_id)
            if old is None:
                new = CallState(CallPhase.ESTABLISHED, call_id, direction, t, established_ms=t, rings=rings,
                                source=self.source)
            elif old.phase is CallPhase.RINGING:
                new = replace(old, phase=CallPhase.ESTABLISHED, at_ms=t, established_ms=t,
                              rings=old.rings if rings is None else rings)
            else:
                return None
            self._calls[call_id] = new
        return self._emit(new)

    def closed(self, call_id: str, reason: str, *, at_ms: int | None = None,
               direction: Direction | None = None) -> CallState | None:
        """The call ended. A close for a call never seen is recorded too (its other times None)."""
        t = self.clock.now_ms() if at_ms is None else at_ms
        with self._lock:
            if call_id in self._closed_ids:
                return None
            old = self._calls.pop(call_id, None)
            if old is None:
                new = CallState(CallPhase.CLOSED, call_id, direction, t, closed_ms=t, reason=reason,
                                source=self.source)
            else:
                new = replace(old, phase=CallPhase.CLOSED, at_ms=t, closed_ms=t, reason=reason)
            self._closed_ids.append(call_id)
            del self._closed_ids[:-self.CLOSED_KEEP]
            self._last_closed = new
        return self._emit(new)

    def close_all(self, reason: str, *, at_ms: int | None = None) -> list[CallState]:
        """Close every active call (the source was lost)."""
        with self._lock:
            ids = list(self._calls)
        return [s for s in (self.closed(i, reason, at_ms=at_ms) for i in ids) if s is not None]

    # --- what the owner reads -------------------------------------------------------------------------

    def active(self) -> list[CallState]:
        with self._lock:
            return list(self._calls.values())

    def get(self, call_id: str) -> CallState | None:
        with self._lock:
            return self._calls.get(call_id)

    def current(self) -> CallState:
        with self._lock:
            calls = list(self._calls.values())
            last = self._last_closed
        for phase in (CallPhase.ESTABLISHED, CallPhase.RINGING):
            now = [c for c in calls if c.phase is phase]
            if now:
                return max(now, key=lambda c: c.at_ms)
        return last if last is not None else IDLE

    def events(self) -> list[CallState]:
        with self._lock:
            out = list(self._queue)
            self._queue.clear()
        return out

    def _emit(self, state: CallState) -> CallState:
        with self._lock:
            self._queue.append(state)
        log.info("call state", extra=kv(source=self.source, call_id=state.call_id, phase=str(state.phase),
                                        direction=str(state.direction) if state.direction else None,
                                        rings=state.rings, reason=state.reason))
        if self.listener is not None:
            try:
                self.listener(state)
            except Exception as exc:  # the owner's bug must not stop the source
                log.exception("call listener failed", extra=kv(source=self.source,
                                                               error=f"{type(exc).__name__}: {exc}"))
        return state


class TrackedSource:
    """What every real source shares: the owner reads its :class:`CallTracker` (``self.tracker``), and
    ``with`` starts and stops it. Subclasses give ``start`` and ``stop``."""

    tracker: CallTracker

    def start(self) -> object:
        raise NotImplementedError

    def stop(self) -> None:
        raise NotImplementedError

    def events(self) -> list[CallState]:
        """Every transition since the last call, oldest first."""
        return self.tracker.events()

    def current(self) -> CallState:
        """The desk's call now (see :meth:`CallSource.current`)."""
        return self.tracker.current()

    def poll(self, broker_connected: bool) -> None:
        """Nothing to do on the loop's pass: the source runs on its own thread (see :meth:`CallSource.poll`)."""

    def __enter__(self) -> Self:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()
