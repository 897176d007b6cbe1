"""Per-call measures on constructed timelines: rings, greeting latency, talk time, silences, norms."""

from __future__ import annotations

import pytest

from device.calls.measures import CallMeter, CallNorms, measure_call, rings_from_time
from device.calls.state import CallPhase, CallState, Direction, RingCadence

T0 = 1_795_000_000_000
HOP = 10


def hops(start_ms: int, end_ms: int, speech: list[tuple[float, float]], hop: int = HOP) -> list[tuple[int, bool]]:
    """Analyser-like samples every ``hop`` ms from ``start_ms`` to ``end_ms``: a block is speech when its
    end lies inside one of ``speech`` (seconds after T0, [a, b))."""
    out = []
    for t in range(start_ms, end_ms + 1, hop):
        s = (t - T0) / 1000
        out.append((t, any(a < s <= b for a, b in speech)))
    return out


def incoming(ring_s: float | None, est_s: float | None, closed_s: float, rings: int | None = None) -> CallState:
    def ms(s: float | None) -> int | None:
        return None if s is None else T0 + int(s * 1000)

    return CallState(CallPhase.CLOSED, "c1", Direction.INCOMING, ms(closed_s) or 0, ringing_ms=ms(ring_s),
                     established_ms=ms(est_s), closed_ms=ms(closed_s), rings=rings, source="test")


def test_rings_from_time_counts_ring_onsets() -> None:
    cad = RingCadence()  # 1 s on, 4 s off: onsets at 0, 5, 10, 15 s
    assert [rings_from_time(s, cad) for s in (0.0, 0.5, 4.99, 5.0, 10.5, 14.99, 15.0)] == [1, 1, 1, 2, 3, 3, 4]
    assert rings_from_time(2.9, RingCadence(1.0, 2.0)) == 1
    assert rings_from_time(3.0, RingCadence(1.0, 2.0)) == 2
    with pytest.raises(ValueError):
        rings_from_time(-1, cad)


def test_answered_on_the_third_ring_and_greeted_in_1_2_s() -> None:
    # rings from 0 s, answered at 11 s (3rd ring), greeting at 12.2-14 s, customer talk, agent again 20-25 s
    call = incoming(0.0, 11.0, 30.0)
    m = measure_call(call, hops(T0, T0 + 31_000, [(12.2, 14.0), (20.0, 25.0)]))
    assert m.answered and m.rings == 3 and not m.rings_counted
    assert m.ring_time_s == 11.0
    assert m.greeting_latency_s == pytest.approx(1.2, abs=0.011)
    assert m.own_talk_s == pytest.approx(1.8 + 5.0, abs=0.02)
    assert m.longest_own_silence_s == pytest.approx(20.0 - 14.0, abs=0.02)
    assert m.duration_s == 19.0
    assert m.answer_ok is True and m.greeting_ok is True
    # no far end: not measured, never guessed
    assert m.far_measured is False and m.silent_call is None and m.longest_mutual_silence_s is None
    assert set(m.summary()) >= {"rings", "greeting_latency_s", "own_talk_s", "silent_call"}


def test_slow_answer_and_late_greeting_fail_the_norms() -> None:
    call = incoming(0.0, 16.0, 40.0)  # picked up on the 4th ring
    m = measure_call(call, hops(T0, T0 + 40_000, [(18.5, 30.0)]))
    assert m.rings == 4 and m.answer_ok is False
    assert m.greeting_latency_s == pytest.approx(2.5, abs=0.011)
    assert m.greeting_ok is False


def test_counted_rings_win_over_the_estimate() -> None:
    call = incoming(0.0, 11.0, 20.0, rings=2)  # a slower line cadence than configured
    m = measure_call(call, hops(T0, T0 + 20_000, [(11.5, 15.0)]))
    assert m.rings == 2 and m.rings_counted and m.answer_ok is True


def test_speech_before_connection_counts_as_an_immediate_greeting() -> None:
    # the agent is already speaking when the line connects (speech 9..12 s, connect at 10 s)
    m = measure_call(incoming(0.0, 10.0, 20.0), hops(T0, T0 + 20_000, [(9.0, 12.0)]))
    assert m.greeting_latency_s == 0.0 and m.greeting_ok is True
    assert m.own_talk_s == pytest.approx(2.0, abs=0.02)  # only the part inside the call
    assert m.longest_own_silence_s == pytest.approx(8.0, abs=0.02)


def test_speech_only_before_connection_is_no_greeting() -> None:
    m = measure_call(incoming(0.0, 10.0, 20.0), hops(T0, T0 + 20_000, [(3.0, 9.5)]))
    assert m.greeting_latency_s is None and m.greeting_ok is False
    assert m.own_talk_s == 0.0 and m.longest_own_silence_s == 10.0


def test_no_speech_before_hang_up() -> None:
    m = measure_call(incoming(0.0, 3.0, 13.0), hops(T0, T0 + 13_000, []))
    assert m.greeting_latency_s is None and m.greeting_ok is False
    assert m.own_talk_s == 0.0 and m.longest_own_silence_s == 10.0
    # the caller hung up 1.5 s after connection: too soon to judge the greeting
    short = measure_call(incoming(0.0, 3.0, 4.5), hops(T0, T0 + 5_000, []))
    assert short.greeting_latency_s is None and short.greeting_ok is None


def test_hang_up_while_ringing() -> None:
    gave_up = measure_call(incoming(0.0, None, 8.0), hops(T0, T0 + 8_000, [(1.0, 2.0)]))
    assert not gave_up.answered and gave_up.rings == 2 and gave_up.ring_time_s == 8.0
    assert gave_up.answer_ok is None  # the caller gave up within 3 rings: no fault
    assert gave_up.greeting_latency_s is None and gave_up.own_talk_s is None and gave_up.greeting_ok is None
    ignored = measure_call(incoming(0.0, None, 21.0, rings=5), [])
    assert ignored.rings == 5 and ignored.answer_ok is False  # rang past the norm, never answered


def test_outgoing_call_has_no_rings_or_greeting_norm() -> None:
    call = CallState(CallPhase.CLOSED, "o1", Direction.OUTGOING, T0 + 9000, ringing_ms=T0, established_ms=T0 + 4000,
                     closed_ms=T0 + 9000)
    m = measure_call(call, hops(T0, T0 + 9000, [(4.5, 6.0)]))
    assert m.rings is None and m.answer_ok is None and m.greeting_ok is None
    assert m.greeting_latency_s == pytest.approx(0.5, abs=0.011)


def test_far_end_gives_mutual_silence_and_the_silent_call_flag() -> None:
    call = incoming(0.0, 2.0, 20.0)
    own = hops(T0, T0 + 20_000, [(3.0, 5.0), (12.0, 13.0)])
    far = hops(T0, T0 + 20_000, [(6.0, 9.0)])
    m = measure_call(call, own, far)
    assert m.far_measured and m.far_talk_s == pytest.approx(3.0, abs=0.02)
    assert m.silent_call is False
    assert m.longest_own_silence_s == pytest.approx(7.0, abs=0.02)  # 5..12 s
    assert m.longest_mutual_silence_s == pytest.approx(7.0, abs=0.02)  # 13..20 s
    # a silent call: the far end never speaks; the agent prompts at 3 s and 7 s, then closes at 11 s
    silent = measure_call(incoming(0.0, 2.0, 11.0), hops(T0, T0 + 11_000, [(3.0, 4.0), (6.0, 7.0)]),
                          hops(T0, T0 + 11_000, []))
    assert silent.silent_call is True and silent.far_talk_s == 0.0
    assert silent.longest_mutual_silence_s == pytest.approx(4.0, abs=0.02)


def test_sparse_samples_and_a_stalled_stream() -> None:
    # samples every 100 ms (the analyser's slowest rate) give the same answer to within one block
    m = measure_call(incoming(0.0, 5.0, 15.0), hops(T0, T0 + 15_000, [(6.0, 8.0)], hop=100))
    assert m.greeting_latency_s == pytest.approx(1.0, abs=0.101)
    assert m.own_talk_s == pytest.approx(2.0, abs=0.101)
    # the stream stops for 8 s while speaking: only the last MAX_BLOCK_MS of that block counts as speech
    samples = [(T0 + 5000, False), (T0 + 5500, True), (T0 + 13_500, True), (T0 + 15_000, False)]
    stalled = measure_call(incoming(0.0, 5.0, 15.0), samples)
    assert stalled.own_talk_s == pytest.approx(0.5 + 1.0, abs=0.001)


def test_norms_are_configurable() -> None:
    call = incoming(0.0, 11.0, 30.0)
    m = measure_call(call, hops(T0, T0 + 30_000, [(13.5, 20.0)]), norms=CallNorms(max_rings=2, greet_within_s=3.0))
    assert m.answer_ok is False and m.greeting_ok is True


def test_closing_a_call_that_is_not_closed_is_refused() -> None:
    with pytest.raises(ValueError):
        measure_call(CallState(CallPhase.ESTABLISHED, "x", Direction.INCOMING, T0, established_ms=T0), [])


def test_meter_waits_for_the_speech_stream_to_catch_up() -> None:
    meter = CallMeter()
    samples = hops(T0, T0 + 20_000, [(1.0, 4.0), (12.5, 16.0)])
    ringing = CallState(CallPhase.RINGING, "c9", Direction.INCOMING, T0 + 10_000, ringing_ms=T0 + 10_000)
    est = CallState(CallPhase.ESTABLISHED, "c9", Direction.INCOMING, T0 + 11_000, ringing_ms=T0 + 10_000,
                    established_ms=T0 + 11_000)
    closed = CallState(CallPhase.CLOSED, "c9", Direction.INCOMING, T0 + 17_000, ringing_ms=T0 + 10_000,
                       established_ms=T0 + 11_000, closed_ms=T0 + 17_000, reason="hangup")
    for t, s in samples[:1000]:  # up to 10 s
        meter.speech(t, s)
    meter.call(ringing)
    meter.call(est)
    meter.call(closed)  # the call source is ahead of the analyser
    for t, s in samples[1000:1500]:  # up to 15 s
        meter.speech(t, s)
    assert meter.finished() == []
    for t, s in samples[1500:]:
        meter.speech(t, s)
    (m,) = meter.finished()
    assert m.call_id == "c9" and m.rings == 1
    assert m.greeting_latency_s == pytest.approx(1.5, abs=0.011)
    assert m.own_talk_s == pytest.approx(3.5, abs=0.02)
    assert meter.finished() == []
    # speech before the call was forgotten once no call needed it
    assert all(b >= T0 + 10_000 for _, b in meter.own.intervals)


def test_meter_gives_up_waiting_when_speech_stops() -> None:
    meter = CallMeter(lag_ms=2000)
    meter.speech(T0, False)
    meter.call(CallState(CallPhase.CLOSED, "c2", Direction.INCOMING, T0 + 5000, ringing_ms=T0,
                         established_ms=T0 + 1000, closed_ms=T0 + 5000))
    assert meter.finished(now_ms=T0 + 6000) == []
    (m,) = meter.finished(now_ms=T0 + 7000)
    assert m.greeting_latency_s is None and m.greeting_ok is False


def test_meter_drops_a_call_it_only_saw_closing() -> None:
    meter = CallMeter()
    meter.call(CallState(CallPhase.CLOSED, "late", Direction.INCOMING, T0, closed_ms=T0, reason="hangup"))
    meter.speech(T0 + 100, False)
    assert meter.finished(now_ms=T0 + 60_000) == []
