"""Per-call measures on the desk, from call states and own-speech flags, against the call norms.

Inputs:
- the call's ``closed`` :class:`~device.calls.state.CallState` (it carries the ringing,
  established and closed times, agent-clock ms, and the ring count when the source counts rings);
- own speech as ``(t_ms, speaking)`` samples: ``speaking`` says whether own voice was active in the
  block that ends at ``t_ms`` (agent-clock ms) and began at the previous sample. The analyser's
  :class:`device.dsp.measurement.Measurement` gives exactly that (``t_s`` converted to agent ms,
  ``speaking``), every hop or every ≤ 100 ms; any block length works. A block longer than
  ``max_block_ms`` (the analyser stalled, the audio device went away) counts as speech only for
  its last ``max_block_ms``;
- optionally far-end activity as ``(t_ms, active)`` samples of the same kind (the customer's
  audio, e.g. recorded by baresip). Without it, the measures that need it are None: not measured.

Measures (:class:`CallMeasures`; seconds unless named otherwise):
- ``rings``: rings before answer (or before the caller gave up). Counted by the source when it can
  (GPIO), else estimated from the ringing time and the cadence (:func:`rings_from_time`).
- ``greeting_latency_s``: from the connection to the onset of own speech; 0 when own speech is
  already under way at the connection; None when there is no own speech before hang-up.
- ``own_talk_s``: own speech between connection and hang-up.
- ``longest_own_silence_s``: the longest stretch without own speech between connection and hang-up
  (the wait before the greeting and after the last word included).
- ``longest_mutual_silence_s``: the longest stretch where neither side speaks (far end given only).
- ``far_talk_s`` and ``silent_call``: the far end's activity, and True when it stayed under
  ``silent_far_s`` for the whole call (far end given only, else None).
- Silent-call handling (无声电话: prompt, wait 2 s, prompt again, wait 2 s, then close), on silent
  calls only (else None): ``silent_prompts``, the own-speech bursts (prompts; pauses shorter than
  ``prompt_gap_s`` stay inside one prompt); ``silent_min_wait_s``, the shortest wait after a prompt
  (to the next prompt, and from the last prompt to the hang-up); ``silent_call_ok``, True when there
  were at least ``silent_prompts`` prompts and every wait lasted ``silent_wait_s`` (less
  ``wait_tolerance_s``, the VAD's hang-over at the end of a prompt). A silent call without a word
  has 0 prompts and is not ok.

Norms (:class:`CallNorms`, NORMS.md; configurable per site): answer within 3 rings (电话铃响三声内接听),
greet within 2 s of the connection (电话接通后两秒钟之内问候). Each is judged True/False per call, or
None when the call gives no grounds: ``answer_ok`` is None for outgoing calls and for callers who
gave up within the allowed rings; ``greeting_ok`` is None for unanswered and outgoing calls and for
calls closed within the greeting time without own speech.

:func:`measure_call` measures one finished call from whole timelines. :class:`CallMeter` does the
same while streaming: feed it call states and speech samples as they come; it holds a closed call
until the speech stream has caught up with the hang-up (the analyser runs behind the call source),
then hands out its measures.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from device.calls.state import CallPhase, CallState, Direction, RingCadence

MAX_BLOCK_MS = 1000
"""A speech sample covers at most this much time before it (ms)."""
Interval = tuple[int, int]
"""``[start_ms, end_ms)`` on the agent clock."""


@dataclass(frozen=True, slots=True)
class CallNorms:
    """Call norms (NORMS.md): answer within ``max_rings`` rings, greet within ``greet_within_s`` (s)."""

    max_rings: int = 3
    greet_within_s: float = 2.0
    silent_far_s: float = 0.5
    """Far-end activity (s) below which a call counts as silent."""
    silent_prompts: int = 2
    """Silent call (无声电话): prompts the agent gives before closing..."""
    silent_wait_s: float = 2.0
    """...waiting this long (s) after each one (the last wait is the one before the hang-up)."""
    prompt_gap_s: float = 1.0
    """Pauses in own speech shorter than this (s) stay inside one prompt."""
    wait_tolerance_s: float = 0.3
    """A wait counts as ``silent_wait_s`` from ``silent_wait_s - wait_tolerance_s``: the own-voice VAD
    holds speech on for up to 0.3 s after the last word, which shortens every measured wait."""


def rings_from_time(ringing_s: float, cadence: RingCadence) -> int:
    """Rings heard in ``ringing_s`` seconds of ringing, for a cadence whose first ring starts at 0.

    A ring counts from its onset: a call picked up 0.5 s into ringing heard 1 ring, one picked up
    at 10.5 s with the default 1 s on / 4 s off cadence heard 3 (onsets at 0, 5 and 10 s).
    """
    if ringing_s < 0 or not math.isfinite(ringing_s):
        raise ValueError(f"ringing time must be finite seconds >= 0, got {ringing_s!r}")
    return int(ringing_s // cadence.period_s) + 1


class ActivityTrack:
    """Speech (or far-end activity) samples turned into merged ``[start, end)`` intervals (ms).

    Samples must come in time order; a sample not after the previous one is ignored (counted in
    ``out_of_order``).
    """

    def __init__(self, max_block_ms: int = MAX_BLOCK_MS) -> None:
        self.max_block_ms = max_block_ms
        self.intervals: list[Interval] = []
        self.last_ms: int | None = None
        self.out_of_order = 0

    def add(self, t_ms: int, active: bool) -> None:
        t_ms = int(t_ms)
        prev = self.last_ms
        if prev is not None and t_ms <= prev:
            self.out_of_order += 1
            return
        self.last_ms = t_ms
        if prev is None or not active:
            return
        start = max(prev, t_ms - self.max_block_ms)
        if self.intervals and self.intervals[-1][1] >= start:
            self.intervals[-1] = (self.intervals[-1][0], t_ms)
        else:
            self.intervals.append((start, t_ms))

    def extend(self, samples: Iterable[tuple[int, bool]]) -> ActivityTrack:
        for t_ms, active in samples:
            self.add(t_ms, active)
        return self

    def drop_before(self, t_ms: int) -> None:
        """Forget intervals that ended before ``t_ms`` (bounded memory while streaming)."""
        i = 0
        while i < len(self.intervals) and self.intervals[i][1] < t_ms:
            i += 1
        del self.intervals[:i]

    def within(self, lo: int, hi: int) -> list[Interval]:
        """The intervals clipped to ``[lo, hi)``."""
        return [(max(a, lo), min(b, hi)) for a, b in self.intervals if b > lo and a < hi]


@dataclass(frozen=True, slots=True)
class CallMeasures:
    """The measures of one call (seconds; ``rings`` a count). None = not measured or not applicable."""

    call_id: str | None
    source: str
    direction: Direction | None
    answered: bool
    ringing_ms: int | None
    established_ms: int | None
    closed_ms: int | None
    rings: int | None
    rings_counted: bool
    """True when ``rings`` was counted by the source, False when estimated from time and cadence."""
    ring_time_s: float | None
    """From ringing to answer (or to the end of ringing when not answered)."""
    duration_s: float | None
    """From connection to hang-up."""
    greeting_latency_s: float | None
    own_talk_s: float | None
    longest_own_silence_s: float | None
    far_measured: bool
    far_talk_s: float | None
    longest_mutual_silence_s: float | None
    silent_call: bool | None
    answer_ok: bool | None
    greeting_ok: bool | None
    norms: CallNorms = field(default_factory=CallNorms)
    silent_prompts: int | None = None
    """Silent calls only: own-speech bursts (prompts) between connection and hang-up."""
    silent_min_wait_s: float | None = None
    """Silent calls only: the shortest wait after a prompt (to the next one, or to the hang-up)."""
    silent_call_ok: bool | None = None
    """Silent calls only: the 无声电话 norm followed (see the module doc)."""

    def summary(self) -> dict[str, Any]:
        """Numbers, flags and ids only (no peer, no audio): the per-call summary that may leave the desk."""
        return {"call_id": self.call_id, "source": self.source,
                "direction": str(self.direction) if self.direction else None, "answered": self.answered,
                "rings": self.rings, "rings_counted": self.rings_counted, "ring_time_s": self.ring_time_s,
                "duration_s": self.duration_s, "greeting_latency_s": self.greeting_latency_s,
                "own_talk_s": self.own_talk_s, "longest_own_silence_s": self.longest_own_silence_s,
                "far_talk_s": self.far_talk_s, "longest_mutual_silence_s": self.longest_mutual_silence_s,
                "silent_call": self.silent_call, "silent_prompts": self.silent_prompts,
                "silent_min_wait_s": self.silent_min_wait_s, "silent_call_ok": self.silent_call_ok,
                "answer_ok": self.answer_ok, "greeting_ok": self.greeting_ok}


def _s(ms: float) -> float:
    return round(ms / 1000.0, 3)


def _longest_gap(intervals: list[Interval], lo: int, hi: int) -> int:
    """Longest stretch of ``[lo, hi)`` not covered by the (sorted, clipped) intervals, ms."""
    longest, cursor = 0, lo
    for a, b in sorted(intervals):
        longest = max(longest, a - cursor)
        cursor = max(cursor, b)
    return max(longest, hi - cursor)


def _merged(intervals: list[Interval], bridge_ms: float = 0.0) -> list[Interval]:
    """The intervals, sorted, with overlapping or touching ones joined, and those less than
    ``bridge_ms`` apart too."""
    out: list[Interval] = []
    for s, e in sorted(intervals):
        if out and (s <= out[-1][1] or s - out[-1][1] < bridge_ms):
            out[-1] = (out[-1][0], max(out[-1][1], e))
        else:
            out.append((s, e))
    return out


def _union(a: list[Interval], b: list[Interval]) -> list[Interval]:
    return _merged(a + b)


def prompt_pattern(own: list[Interval], closed_ms: int, norms: CallNorms) -> tuple[int, float | None, bool]:
    """The silent-call pattern of own-speech intervals (sorted, clipped to the call) up to the
    hang-up at ``closed_ms``: (prompts, shortest wait after a prompt in s or None, norm followed)."""
    bursts = _merged(own, norms.prompt_gap_s * 1000.0)
    if not bursts:
        return 0, None, False
    waits = [bursts[i + 1][0] - bursts[i][1] for i in range(len(bursts) - 1)] + [closed_ms - bursts[-1][1]]
    shortest = min(waits)
    need_ms = (norms.silent_wait_s - norms.wait_tolerance_s) * 1000.0
    return len(bursts), _s(max(0, shortest)), len(bursts) >= norms.silent_prompts and shortest >= need_ms


def _measure(call: CallState, own: ActivityTrack, far: ActivityTrack | None, cadence: RingCadence,
             norms: CallNorms) -> CallMeasures:
    if call.phase is not CallPhase.CLOSED or call.closed_ms is None:
        raise ValueError(f"measure a closed call, not one that is {call.phase}")
    ringing, est, closed = call.ringing_ms, call.established_ms, call.closed_ms
    incoming = call.direction is Direction.INCOMING or (call.direction is None and ringing is not None)
    # rings
    ring_end = est if est is not None else closed
    ring_time_ms = ring_end - ringing if ringing is not None and incoming else None
    rings: int | None = None
    counted = False
    if incoming and call.rings is not None:
        rings, counted = call.rings, True
    elif ring_time_ms is not None:
        rings = rings_from_time(max(0, ring_time_ms) / 1000.0, cadence)
    if rings is None or not incoming:
        answer_ok = None
    elif est is not None:
        answer_ok = rings <= norms.max_rings
    else:  # not answered: a fault only when it rang past the norm
        answer_ok = False if rings > norms.max_rings else None
    # the conversation
    greeting = talk = own_silence = far_talk = mutual = None
    silent: bool | None = None
    prompts: int | None = None
    min_wait: float | None = None
    silent_ok: bool | None = None
    greeting_ok: bool | None = None
    duration = None
    if est is not None and closed >= est:
        duration = _s(closed - est)
        own_iv = own.within(est, closed)
        talk = _s(sum(b - a for a, b in own_iv))
        own_silence = _s(_longest_gap(own_iv, est, closed))
        if own_iv:
            greeting = _s(own_iv[0][0] - est)
        if incoming:
            limit_ms = norms.greet_within_s * 1000
            if greeting is not None:
                greeting_ok = greeting <= norms.greet_within_s
            elif closed - est > limit_ms:
                greeting_ok = False
        if far is not None:
            far_iv = far.within(est, closed)
            far_talk = _s(sum(b - a for a, b in far_iv))
            mutual = _s(_longest_gap(_union(own_iv, far_iv), est, closed))
            silent = far_talk < norms.silent_far_s
            if silent:
                prompts, min_wait, silent_ok = prompt_pattern(own_iv, closed, norms)
    return CallMeasures(
        call_id=call.call_id, source=call.source, direction=call.direction, answered=est is not None,
        ringing_ms=ringing, established_ms=est, closed_ms=closed, rings=rings, rings_counted=counted,
        ring_time_s=_s(ring_time_ms) if ring_time_ms is not None else None, duration_s=duration,
        greeting_latency_s=greeting, own_talk_s=talk, longest_own_silence_s=own_silence,
        far_measured=far is not None, far_talk_s=far_talk, longest_mutual_silence_s=mutual,
        silent_call=silent, answer_ok=answer_ok, greeting_ok=greeting_ok, norms=norms,
        silent_prompts=prompts, silent_min_wait_s=min_wait, silent_call_ok=silent_ok)


def measure_call(call: CallState, own_speech: Iterable[tuple[int, bool]],
                 far_end: Iterable[tuple[int, bool]] | None = None, *, cadence: RingCadence | None = None,
                 norms: CallNorms | None = None, max_block_ms: int = MAX_BLOCK_MS) -> CallMeasures:
    """Measure one finished call (``call.phase`` closed) from whole timelines (see the module doc)."""
    own = ActivityTrack(max_block_ms).extend(own_speech)
    far = ActivityTrack(max_block_ms).extend(far_end) if far_end is not None else None
    return _measure(call, own, far, cadence or RingCadence(), norms or CallNorms())


class CallMeter:
    """Streaming :func:`measure_call`: call states and speech samples in, measures of closed calls out.

    - :meth:`call` takes every :class:`CallState` of the source (``events()`` or a listener);
    - :meth:`speech` takes own-speech samples, :meth:`far_end` far-end samples
      (``far_end_measured=True`` says they will come; otherwise the far-end measures are None);
    - or per call, when the far end is measured after the hang-up (a recording read at the close,
      :mod:`device.calls.far_end`): :meth:`expect_far_end` holds the closed call until
      :meth:`far_end_call` brings its samples (None: not measured, its far-end measures stay None),
      or until ``far_wait_ms`` after the hang-up (then not measured);
    - :meth:`finished` returns the measures of closed calls whose speech has caught up with the
      hang-up, or that closed more than ``lag_ms`` before ``now_ms`` (the speech stream stopped).

    Not thread-safe: feed it from one thread (the agent's loop).
    """

    def __init__(self, *, cadence: RingCadence | None = None, norms: CallNorms | None = None,
                 far_end_measured: bool = False, lag_ms: int = 2000, max_block_ms: int = MAX_BLOCK_MS,
                 keep_ms: int = 30_000, far_wait_ms: int = 15_000) -> None:
        self.cadence = cadence or RingCadence()
        self.norms = norms or CallNorms()
        self.far_end_measured = far_end_measured
        self.lag_ms = lag_ms
        self.keep_ms = keep_ms
        """Speech kept between calls (ms): a source may report a call's start after the fact (a
        debounced off-hook, a CTI bridge), and the speech since then must still be there."""
        self.own = ActivityTrack(max_block_ms)
        self.far = ActivityTrack(max_block_ms)
        self.max_block_ms = max_block_ms
        self.far_wait_ms = far_wait_ms
        self._far_wait: set[str] = set()
        self._far_calls: dict[str, ActivityTrack | None] = {}
        self._active: dict[str, CallState] = {}
        self._closed: list[CallState] = []

    def call(self, state: CallState) -> None:
        """Take a transition. A close of a call never seen ringing or established (the source came up
        mid-call) has no timeline and is dropped."""
        if state.call_id is None:
            return
        if state.phase is CallPhase.CLOSED and state.ringing_ms is None and state.established_ms is None:
            self._active.pop(state.call_id, None)
            return
        if state.phase is CallPhase.CLOSED:
            self._active.pop(state.call_id, None)
            self._closed.append(state)
        elif state.active:
            self._active[state.call_id] = state

    def speech(self, t_ms: int, speaking: bool) -> None:
        self.own.add(t_ms, speaking)

    def far_end(self, t_ms: int, active: bool) -> None:
        self.far.add(t_ms, active)

    def expect_far_end(self, call_id: str) -> None:
        """The far end of this call will come through :meth:`far_end_call`: hold its measures until then."""
        self._far_wait.add(call_id)
        while len(self._far_wait) > 64:  # a caller that never delivers cannot grow this
            self._far_wait.pop()

    def far_end_call(self, call_id: str, samples: Iterable[tuple[int, bool]] | None) -> None:
        """The far end of one call as ``(t_ms, active)`` samples; None: not measured."""
        self._far_wait.discard(call_id)
        self._far_calls[call_id] = None if samples is None else ActivityTrack(self.max_block_ms).extend(samples)
        while len(self._far_calls) > 64:
            del self._far_calls[next(iter(self._far_calls))]

    def finished(self, now_ms: int | None = None, *, final: bool = False) -> list[CallMeasures]:
        """Measures of the calls that are done (see the class doc); ``final``: every closed call now
        (shutting down: a far end not delivered yet is not measured)."""
        out: list[CallMeasures] = []
        keep: list[CallState] = []
        for c in self._closed:
            assert c.closed_ms is not None
            cid = c.call_id or ""
            caught_up = self.own.last_ms is not None and self.own.last_ms >= c.closed_ms
            if self.far_end_measured:
                caught_up = caught_up and self.far.last_ms is not None and self.far.last_ms >= c.closed_ms
            lagging = now_ms is not None and now_ms - c.closed_ms >= self.lag_ms
            if cid in self._far_wait and not final and not (now_ms is not None
                                                            and now_ms - c.closed_ms >= self.far_wait_ms):
                keep.append(c)
                continue
            if caught_up or lagging or final:
                self._far_wait.discard(cid)
                far = (self._far_calls.pop(cid, None) if cid in self._far_calls
                       else self.far if self.far_end_measured else None)
                out.append(_measure(c, self.own, far, self.cadence, self.norms))
            else:
                keep.append(c)
        self._closed = keep
        self._forget()
        return out

    def _forget(self) -> None:
        """Drop speech no pending or active call can need."""
        starts = [t for c in (*self._active.values(), *self._closed)
                  for t in (c.established_ms, c.ringing_ms) if t is not None]
        horizon = min(starts) if starts else (self.own.last_ms or 0) - self.keep_ms
        self.own.drop_before(horizon)
        self.far.drop_before(horizon)
