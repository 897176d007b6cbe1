"""Minute rollups: wall-clock minutes, split intervals, speech-weighted power means, cue and posture seconds."""

from __future__ import annotations

import math
from typing import Any

import pytest

from device.dsp.measurement import Measurement
from device.outputs.rollup import MINUTE_MS, MinuteRollup
from mqtt_schema import Cue, Minute, Posture, decode, encode

T0 = 1_700_000_040_000  # a minute start (ms since the epoch)
assert T0 % MINUTE_MS == 0


def meas(speech_s: float, level: float | None = -26.0, rate: float | None = 120.0, dist: float | None = 5.0,
         noise: float | None = -60.0) -> Measurement:
    return Measurement(t_s=0.0, speaking=speech_s > 0, speech_s=speech_s, level_dbov=level, rate_spm=rate,
                       distance_cm=dist, noise_dbov=noise, clipping=0.0)


def as_message(fields: dict[str, Any]) -> Minute:
    """The rollup's fields must make a valid contract message."""
    return decode(encode(Minute(site="s1", desk="d1", boot=1, seq=1, ts=T0, **fields)), Minute)


def run(rollup: MinuteRollup, start_ms: int, seconds: float, step_s: float, **kw: Any) -> list[dict[str, Any]]:
    out = []
    n = round(seconds / step_s)
    for i in range(1, n + 1):
        done = rollup.add(start_ms + round(i * step_s * 1000), step_s, kw.get("m"), kw.get("cues", ()),
                          kw.get("worn", True), kw.get("posture", Posture.UPRIGHT))
        if done is not None:
            out.append(done)
    return out


def test_one_minute_closes_when_the_next_begins() -> None:
    r = MinuteRollup()
    assert run(r, T0, 60.0, 0.1, m=meas(0.05)) == []  # the last sample ends exactly at the boundary
    (done,) = run(r, T0 + MINUTE_MS, 0.1, 0.1, m=meas(0.05))
    msg = as_message(done)
    assert msg.minute_ts == T0
    assert msg.speech_s == pytest.approx(30.0)
    assert msg.worn_s == pytest.approx(60.0) and msg.upright_s == pytest.approx(60.0) and msg.slouched_s == 0
    assert (msg.level_dbov, msg.rate_spm, msg.distance_cm, msg.noise_dbov) == pytest.approx((-26.0, 120.0, 5.0, -60.0))
    assert r.minute_ts == T0 + MINUTE_MS


def test_an_interval_across_the_boundary_is_split() -> None:
    r = MinuteRollup()
    r.add(T0 + 59_000, 59.0, meas(59.0), (Cue.POSTURE,), True, Posture.SLOUCHED)
    done = r.add(T0 + MINUTE_MS + 400, 1.0, meas(1.0), (Cue.POSTURE,), True, Posture.SLOUCHED)
    assert done is not None
    assert done["speech_s"] == pytest.approx(59.6) and done["slouched_s"] == pytest.approx(59.6)
    assert done["cue_s"] == {Cue.POSTURE: pytest.approx(59.6)}
    rest = r.flush(T0 + MINUTE_MS + 400)
    assert rest is not None and rest["minute_ts"] == T0 + MINUTE_MS
    assert rest["speech_s"] == pytest.approx(0.4) and rest["worn_s"] == pytest.approx(0.4)
    assert r.flush(T0 + MINUTE_MS + 500) is None


def test_means_are_speech_weighted_and_levels_in_the_power_domain() -> None:
    r = MinuteRollup()
    samples = [(3.0, -20.0, 100.0, 4.0, -50.0), (1.0, -30.0, 180.0, 8.0, -70.0), (0.0, -90.0, 999.0, 50.0, -70.0)]
    t = T0
    for speech, level, rate, dist, noise in samples:
        t += 5_000
        r.add(t, 5.0, meas(speech, level, rate, dist, noise), (), True, Posture.UPRIGHT)
    done = r.flush(t)
    assert done is not None
    w = sum(s[0] for s in samples)
    power = sum(s * 10 ** (lv / 10) for s, lv, *_ in samples if s > 0) / w
    assert done["level_dbov"] == pytest.approx(10 * math.log10(power))
    assert done["level_dbov"] > (-20.0 * 3 - 30.0) / 4  # louder than the dB average: power, not dB
    assert done["rate_spm"] == pytest.approx(sum(s * rt for s, _, rt, *_ in samples) / w)
    assert done["distance_cm"] == pytest.approx(sum(s * d for s, _, _, d, _ in samples) / w)
    noise_power = sum(10 ** (n / 10) for *_, n in samples) / len(samples)  # equal clock seconds each
    assert done["noise_dbov"] == pytest.approx(10 * math.log10(noise_power))
    as_message(done)


def test_cue_seconds_count_speech_for_speech_cues_and_clock_time_for_posture() -> None:
    r = MinuteRollup()
    cues = (Cue.VOLUME_HIGH, Cue.POSTURE)
    run(r, T0, 10.0, 0.5, m=meas(0.2), cues=cues, posture=Posture.SLOUCHED)
    run(r, T0 + 10_000, 10.0, 0.5, m=meas(0.0), cues=cues, worn=False, posture=Posture.UNKNOWN)
    done = r.flush(T0 + 20_000)
    assert done is not None
    assert done["cue_s"] == {Cue.VOLUME_HIGH: pytest.approx(4.0), Cue.POSTURE: pytest.approx(20.0)}
    assert done["worn_s"] == pytest.approx(10.0) and done["slouched_s"] == pytest.approx(10.0)
    assert done["upright_s"] == 0.0
    as_message(done)


def test_unmeasured_values_stay_null() -> None:
    r = MinuteRollup()
    run(r, T0, 5.0, 1.0, m=meas(1.0, level=None, rate=None, dist=None, noise=None))
    run(r, T0 + 5_000, 5.0, 1.0, m=None, worn=None, posture=Posture.UNKNOWN)
    done = r.flush(T0 + 10_000)
    assert done is not None
    assert (done["level_dbov"], done["rate_spm"], done["distance_cm"], done["noise_dbov"]) == (None, None, None, None)
    assert done["speech_s"] == pytest.approx(5.0) and done["worn_s"] == pytest.approx(5.0)
    as_message(done)


def test_bad_interval_is_refused() -> None:
    with pytest.raises(ValueError, match="dt_s"):
        MinuteRollup().add(T0, -1.0, None, (), None, Posture.UNKNOWN)
