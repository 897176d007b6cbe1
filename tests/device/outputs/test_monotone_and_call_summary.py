"""The monotone cue (min on-time, held while doffed), the minute rollup's intonation fields, and the
per-call audio summary (back-fill for a late connection, hashed ids, the contract's ranges)."""

from __future__ import annotations

import hashlib

import numpy as np
import pytest

from device.calls.measures import measure_call
from device.calls.state import CallPhase, CallState, Direction
from device.dsp.measurement import Measurement
from device.outputs.call_summary import CallAudio, call_message_fields, hash_call_id
from device.outputs.cues import MonotoneCue
from device.outputs.rollup import MinuteRollup
from mqtt_schema import Call, Posture, decode, encode

T0 = 1_795_000_000_000


def meas(speech_s: float = 0.1, level: float | None = -26.0, rate: float | None = 120.0,
         st: float | None = 6.0, monotone: bool | None = False, f0: tuple[float, ...] = ()) -> Measurement:
    return Measurement(t_s=0.0, speaking=speech_s > 0, speech_s=speech_s, level_dbov=level, rate_spm=rate,
                       distance_cm=None, noise_dbov=-60.0, clipping=0.0, intonation_st=st, monotone=monotone, f0_hz=f0)


def test_monotone_cue_keeps_its_minimum_on_time_and_holds_while_doffed() -> None:
    cue = MonotoneCue(min_on_s=5.0)
    assert cue.update(0.0, None, True) is None and not cue.on  # intonation off: nothing
    assert cue.update(1.0, True, True) is True
    assert cue.update(2.0, False, True) is None and cue.on  # 1 s on: not yet
    assert cue.update(6.0, False, False) is None and cue.on  # doffed: held
    assert cue.update(6.0, False, True) is False and not cue.on


def test_minute_rollup_counts_monotone_speech_and_averages_the_spread() -> None:
    r = MinuteRollup()
    t = T0 + 1000
    r.add(t, 0.1, meas(0.1, st=2.0), (), True, Posture.UPRIGHT, monotone=True)
    r.add(t + 100, 0.1, meas(0.1, st=4.0), (), True, Posture.UPRIGHT, monotone=False)
    r.add(t + 200, 0.1, meas(0.0, st=9.0), (), True, Posture.UPRIGHT, monotone=True)  # no speech: no weight
    m = r.flush(t + 300)
    assert m is not None and m["monotone_s"] == pytest.approx(0.1) and m["intonation_st"] == pytest.approx(3.0)
    r.add(t, 0.1, meas(st=None, monotone=None), (), True, Posture.UPRIGHT)
    m = r.flush(t + 100)
    assert m is not None and m["monotone_s"] is None and m["intonation_st"] is None  # intonation off: null


def test_call_audio_backfills_a_late_connection_and_keeps_the_call_window() -> None:
    audio = CallAudio()
    rng = np.random.default_rng(0)
    for i in range(1, 101):  # 10 s of measurements, one per 100 ms
        f0 = tuple(150.0 * 2 ** (rng.uniform(-3, 3) / 12) for _ in range(10))
        audio.add(T0 + i * 100, meas(0.1, level=-20.0 if i <= 50 else -30.0, monotone=i > 80, f0=f0), i > 80)
    # the connection at 5 s is reported only now (a debounced hook, a CTI bridge)
    est = CallState(CallPhase.ESTABLISHED, "c1", Direction.INCOMING, T0 + 5000, established_ms=T0 + 5000)
    audio.call(est)
    audio.call(CallState(CallPhase.CLOSED, "c1", Direction.INCOMING, T0 + 9000, established_ms=T0 + 5000,
                         closed_ms=T0 + 9000))
    audio.add(T0 + 10_100, meas(0.1, level=0.0), False)  # after the hang-up: not the call's
    s = audio.take("c1")
    assert s.level_dbov == pytest.approx(-30.0) and s.rate_spm == pytest.approx(120.0)
    assert s.monotone_share == pytest.approx(10 / 40)  # 9.0 s is the last sample in (5, 9]
    assert s.intonation_st is not None and 4.0 < s.intonation_st < 6.0  # uniform +-3 st: p10..p90 = 4.8
    assert len(audio) == 0 and audio.take("c1").level_dbov is None


def test_call_message_fields_are_hashed_and_valid() -> None:
    closed = CallState(CallPhase.CLOSED, "abc@10.0.0.5", Direction.INCOMING, T0 + 20_000, ringing_ms=T0,
                       established_ms=T0 + 12_000, closed_ms=T0 + 20_000, source="baresip")
    m = measure_call(closed, [(T0 + 13_000, False), (T0 + 14_000, True)])
    f = call_message_fields(m, CallAudio().take(None))
    assert f["call_id"] == hashlib.sha256(b"abc@10.0.0.5").hexdigest()[:16] == hash_call_id("abc@10.0.0.5")
    assert f["rings"] == 3 and not f["rings_counted"] and f["answer_ok"] is True and f["greeting_latency_s"] == 1.0
    assert f["start_ts"] == T0 and f["end_ts"] == T0 + 20_000 and f["abandoned"] is False
    c = Call(site="s1", desk="d1", boot=1, seq=1, ts=T0, **f)
    assert decode(encode(c), Call) == c
    unanswered = CallState(CallPhase.CLOSED, "x", Direction.INCOMING, T0 + 30_000, ringing_ms=T0, closed_ms=T0 + 30_000,
                           reason="not-answered", source="gpio", rings=6)
    g = call_message_fields(measure_call(unanswered, []), CallAudio().take("x"))
    assert g["abandoned"] is True and g["answered"] is False and g["answer_ok"] is False and g["talk_s"] is None
