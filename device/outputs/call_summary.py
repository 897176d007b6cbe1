"""The per-call summary the desk publishes (``mqtt_schema.Call``): the call measures of
:mod:`device.calls.measures` plus the level, rate and intonation of the agent's own speech in the call.

:class:`CallAudio` keeps, per call, what the analyser's measurements say between the connection and the
hang-up (agent-clock ms; a measurement counts for the call when its end time ``t_ms`` is inside
``(established_ms, closed_ms]``). A source may report a connection or a hang-up after the fact (a
debounced hook switch, a CTI bridge), so the last ``BACKFILL_S`` seconds of measurements are kept:
a call that starts in the past takes them in, and a measurement counts for a call only once it is
``SETTLE_S`` older than the newest one (or when the call is taken), so a late hang-up still cuts the
call where it happened.

- ``level_dbov``: own-speech-weighted power mean of the live P.56 level (as the minute rollup);
- ``rate_spm``: own-speech-weighted mean of the live rate;
- ``intonation_st``: the F0 spread (10th-90th percentile, semitones) of the call's voiced own-speech hops
  (:class:`device.dsp.intonation.IntonationMeter`'s whole-stream histogram), None below its
  ``min_voiced_s``;
- ``monotone_share``: share of the call's own speech with the monotone cue on.

:func:`call_message_fields` turns :class:`~device.calls.measures.CallMeasures` and those into the
fields of ``mqtt_schema.Call``: ids are hashed (sha256 of the source's call id, 16 hex digits), values
clamped to the contract's ranges. Nothing here leaves the desk but those numbers.
"""

from __future__ import annotations

import collections
import hashlib
import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from device.calls.measures import CallMeasures
from device.calls.state import CallPhase, CallState, Direction
from device.dsp.intonation import IntonationMeter, IntonationParams
from device.dsp.measurement import Measurement

BACKFILL_S = 30.0
"""Seconds of measurements kept for a call whose connection is reported late."""
SETTLE_S = 5.0
"""A measurement joins a call's sums once it is this much older than the newest one."""
MAX_CALLS = 16
"""Calls followed at once at most (a source that never closes its calls cannot grow this)."""
_SECONDS = (0.0, 86400.0)
_DBOV = (-200.0, 10.0)
_SPM = (0.0, 1200.0)
_ST = (0.0, 48.0)


def hash_call_id(call_id: str) -> str:
    """The id a call summary carries: the first 16 hex digits of sha256 of the source's call id (UTF-8)."""
    return hashlib.sha256(call_id.encode("utf-8")).hexdigest()[:16]


@dataclass(frozen=True, slots=True)
class _Sample:
    t_ms: int
    m: Measurement
    monotone: bool


@dataclass
class _Acc:
    start_ms: int
    end_ms: int | None = None
    through_ms: int = 0
    """Measurements up to this time have been considered."""
    speech_s: float = 0.0
    level_w: float = 0.0
    level_pow: float = 0.0
    rate_w: float = 0.0
    rate_sum: float = 0.0
    monotone_s: float = 0.0
    intonation: bool = False
    meter: IntonationMeter | None = field(default=None, repr=False)


@dataclass(frozen=True, slots=True)
class CallAudioSummary:
    """Own speech of one call: level (dBov), rate (spm), F0 spread (st), monotone share (0..1); None = not measured."""

    level_dbov: float | None = None
    rate_spm: float | None = None
    intonation_st: float | None = None
    monotone_share: float | None = None


class CallAudio:
    """Per-call own-speech level, rate and intonation from the analyser's measurements (one thread)."""

    def __init__(self, params: IntonationParams | None = None, backfill_s: float = BACKFILL_S,
                 settle_s: float = SETTLE_S) -> None:
        if not 0 <= settle_s < backfill_s:
            raise ValueError(f"settle_s must be in [0, backfill_s), got {settle_s!r}")
        self.params = params or IntonationParams()
        self.backfill_ms = int(backfill_s * 1000)
        self.settle_ms = int(settle_s * 1000)
        self._recent: collections.deque[_Sample] = collections.deque()
        self._calls: dict[str, _Acc] = {}

    def call(self, state: CallState) -> None:
        """Take a call transition (the same ones :class:`~device.calls.measures.CallMeter` takes)."""
        cid = state.call_id
        if cid is None or state.established_ms is None:
            return
        acc = self._calls.get(cid)
        if acc is None and state.phase is not CallPhase.IDLE:
            acc = self._calls[cid] = _Acc(state.established_ms, through_ms=state.established_ms)
            while len(self._calls) > MAX_CALLS:
                del self._calls[next(iter(self._calls))]
        if acc is not None and state.phase is CallPhase.CLOSED and state.closed_ms is not None:
            acc.end_ms = state.closed_ms

    def add(self, t_ms: int, m: Measurement, monotone: bool) -> None:
        """A measurement ending at agent-clock ``t_ms``, with the monotone cue's state then."""
        s = _Sample(int(t_ms), m, monotone)
        self._recent.append(s)
        while self._recent and s.t_ms - self._recent[0].t_ms > self.backfill_ms:
            self._recent.popleft()
        for acc in self._calls.values():
            self._catch_up(acc, s.t_ms - self.settle_ms)

    def _catch_up(self, acc: _Acc, limit_ms: float) -> None:
        """Add the kept measurements in ``(acc.through_ms, limit_ms]``."""
        if acc.through_ms >= limit_ms:
            return
        todo: list[_Sample] = []
        for s in reversed(self._recent):
            if s.t_ms <= acc.through_ms:
                break
            if s.t_ms <= limit_ms:
                todo.append(s)
        for s in reversed(todo):
            self._add(acc, s)
        acc.through_ms = int(min(limit_ms, self._recent[-1].t_ms)) if self._recent else acc.through_ms

    def _add(self, acc: _Acc, s: _Sample) -> None:
        if s.t_ms <= acc.start_ms or (acc.end_ms is not None and s.t_ms > acc.end_ms):
            return
        m = s.m
        if m.monotone is not None:
            acc.intonation = True
        speech = m.speech_s
        if speech <= 0:
            return
        acc.speech_s += speech
        if m.level_dbov is not None and math.isfinite(m.level_dbov):
            acc.level_w += speech
            acc.level_pow += speech * 10.0 ** (m.level_dbov / 10.0)
        if m.rate_spm is not None and math.isfinite(m.rate_spm):
            acc.rate_w += speech
            acc.rate_sum += speech * m.rate_spm
        if s.monotone:
            acc.monotone_s += speech
        if m.f0_hz:
            if acc.meter is None:
                acc.meter = IntonationMeter(self.params)
            f0 = np.asarray(m.f0_hz, dtype=np.float64)
            acc.meter.feed(f0, np.ones(f0.size, dtype=np.bool_))

    def take(self, call_id: str | None) -> CallAudioSummary:
        """The summary of a finished call, forgetting it (an unknown call: all None)."""
        acc = self._calls.pop(call_id, None) if call_id is not None else None
        if acc is None:
            return CallAudioSummary()
        self._catch_up(acc, math.inf)
        spread = acc.meter.totals() if acc.meter is not None else None
        return CallAudioSummary(
            level_dbov=10.0 * math.log10(acc.level_pow / acc.level_w) if acc.level_w > 0 and acc.level_pow > 0 else None,
            rate_spm=acc.rate_sum / acc.rate_w if acc.rate_w > 0 else None,
            intonation_st=spread.range_st if spread is not None else None,
            monotone_share=(acc.monotone_s / acc.speech_s if acc.speech_s > 0 else None) if acc.intonation else None,
        )

    def __len__(self) -> int:
        return len(self._calls)


def _clamp(value: float | None, bounds: tuple[float, float], nd: int = 3) -> float | None:
    if value is None or not math.isfinite(value):
        return None
    return round(min(max(float(value), bounds[0]), bounds[1]), nd)


def call_message_fields(m: CallMeasures, audio: CallAudioSummary) -> dict[str, Any]:
    """The fields of ``mqtt_schema.Call`` (without the header) for one measured call."""
    closed = m.closed_ms if m.closed_ms is not None else 0
    start = next((t for t in (m.ringing_ms, m.established_ms) if t is not None), closed)
    incoming = m.direction is Direction.INCOMING or (m.direction is None and m.ringing_ms is not None)
    return {
        "call_id": hash_call_id(m.call_id or f"{m.source}-{start}"),
        "source": m.source,
        "direction": m.direction.value if m.direction is not None else None,
        "start_ts": start,
        "end_ts": max(closed, start),
        "answered": m.answered,
        "abandoned": incoming and not m.answered,
        "rings": min(m.rings, 1000) if m.rings is not None else None,
        "rings_counted": m.rings_counted,
        "ring_s": _clamp(m.ring_time_s, _SECONDS),
        "greeting_latency_s": _clamp(m.greeting_latency_s, _SECONDS),
        "talk_s": _clamp(m.duration_s, _SECONDS),
        "own_talk_s": _clamp(m.own_talk_s, _SECONDS),
        "longest_own_silence_s": _clamp(m.longest_own_silence_s, _SECONDS),
        "silent_call": m.silent_call,
        "longest_mutual_silence_s": _clamp(m.longest_mutual_silence_s, _SECONDS),
        "far_talk_s": _clamp(m.far_talk_s, _SECONDS),
        "silent_prompts": min(m.silent_prompts, 1000) if m.silent_prompts is not None else None,
        "silent_min_wait_s": _clamp(m.silent_min_wait_s, _SECONDS),
        "silent_call_ok": m.silent_call_ok,
        "answer_ok": m.answer_ok,
        "greeting_ok": m.greeting_ok,
        "max_rings": min(m.norms.max_rings, 1000),
        "greet_within_s": _clamp(m.norms.greet_within_s, _SECONDS),
        "intonation_st": _clamp(audio.intonation_st, _ST, 2),
        "monotone_share": _clamp(audio.monotone_share, (0.0, 1.0)),
        "level_dbov": _clamp(audio.level_dbov, _DBOV, 2),
        "rate_spm": _clamp(audio.rate_spm, _SPM, 1),
    }
