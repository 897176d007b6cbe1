"""The streaming engine: block-size independence, bounded state, resampling, input checks."""

from __future__ import annotations

import pickle

import numpy as np
import pytest
from scipy.signal import resample_poly

from device.dsp import DspError, HeadsetCalibration, Measurement, StreamingAnalyzer
from device.dsp.resample import StreamingResampler
from tests.device.dsp.test_p56 import MANIFEST, load_clip


def headset_signal(seconds: float, seed: int = 1) -> np.ndarray:
    """Real speech clips in a row on the boom, 10 dB weaker on the ear cup, with a little noise."""
    rng = np.random.default_rng(seed)
    clips = [load_clip(n) for n in sorted(MANIFEST)]
    parts, n = [], 0
    while n < seconds * 16000:
        c = clips[int(rng.integers(len(clips)))]
        parts += [c, np.zeros(int(rng.uniform(0.3, 1.5) * 16000))]
        n += c.size + parts[-1].size
    boom = np.concatenate(parts)[: int(seconds * 16000)]
    ear = boom * 10 ** (-10 / 20)
    noise = rng.standard_normal((boom.size, 2)) * 10 ** (-70 / 20)
    return np.stack([boom, ear], axis=1) + noise


def run(x: np.ndarray, sizes: list[int], **kw: object) -> StreamingAnalyzer:
    a = StreamingAnalyzer(**kw)  # type: ignore[arg-type]
    i, k = 0, 0
    while i < x.shape[0]:
        n = sizes[k % len(sizes)]
        a.feed(x[i: i + n])
        i += n
        k += 1
    a.flush()
    return a


def test_block_size_does_not_change_the_totals() -> None:
    x = headset_signal(20.0)
    cal = HeadsetCalibration(ild_offset_db=10.0)
    ref = run(x, [x.shape[0]], calibration=cal).totals()
    assert ref.speech_s > 5 and ref.syllables > 10 and ref.distance_cm is not None
    for sizes in ([1600], [160], [1, 7, 333, 4000, 0, 12345], [16000 * 3]):
        got = run(x, sizes, calibration=cal).totals()
        assert got.speech_s == ref.speech_s
        assert got.syllables == ref.syllables
        assert got.level_dbov == pytest.approx(ref.level_dbov, abs=1e-9)
        assert got.distance_cm == pytest.approx(ref.distance_cm, abs=1e-9)
        assert got.noise_dbov == ref.noise_dbov


def _series(x: np.ndarray, sizes: list[int], **kw: object) -> list[Measurement]:
    a = StreamingAnalyzer(**kw)  # type: ignore[arg-type]
    out: list[Measurement] = []
    i, k = 0, 0
    while i < x.shape[0]:
        n = sizes[k % len(sizes)]
        out += a.feed(x[i: i + n])
        i += n
        k += 1
    return out + a.flush()


@pytest.mark.parametrize("emit_interval_s", [0.01, 0.1, 0.25, 1.0])
def test_block_size_does_not_change_the_live_measurements(emit_interval_s: float) -> None:
    """Every live measurement (rate included) is the same however the stream is cut: the syllable
    detector sees whole blocks, and its nuclei are released at the tick a tick-by-tick feed would
    have seen them (DecisionClock)."""
    x = headset_signal(25.0, seed=3)
    kw = {"calibration": HeadsetCalibration(ild_offset_db=10.0), "emit_interval_s": emit_interval_s}
    ref = _series(x, [160], **kw)
    rates = [m.rate_spm for m in ref]
    assert sum(r is not None for r in rates) > len(rates) / 3 and len(set(rates)) > 10
    for sizes in ([16000 * 4], [1, 7, 333, 4000, 0, 12345]):
        got = _series(x, sizes, **kw)
        assert len(got) == len(ref)
        for g, r in zip(got, ref, strict=True):
            # counts, flags and the rate exactly; levels to rounding (numpy's FFT of one 10 ms frame
            # and of a batch of frames differ in the last bit)
            assert (g.t_s, g.speaking, g.speech_s, g.rate_spm) == (r.t_s, r.speaking, r.speech_s, r.rate_spm)
            for name in ("level_dbov", "distance_cm", "noise_dbov", "clipping", "ild_db"):
                a, b = getattr(g, name), getattr(r, name)
                assert (a is None) == (b is None) and (a is None or abs(a - b) <= 1e-9), (name, g, r)


def test_measurements_come_every_emit_interval() -> None:
    x = headset_signal(5.0)
    a = StreamingAnalyzer(emit_interval_s=0.1)
    ms = a.feed(x[:16000])
    assert len(ms) == 10
    assert [m.t_s for m in ms] == pytest.approx([0.1 * (i + 1) for i in range(10)])
    assert a.stream_s == pytest.approx(1.0)
    ms = a.feed(x[16000:16100])  # less than a tick: nothing yet
    assert ms == []
    ms = a.feed(x[16100:])
    ms += a.flush()
    assert ms[-1].t_s == pytest.approx(5.0, abs=0.011)


def test_state_does_not_grow_with_stream_length() -> None:
    block = headset_signal(60.0)
    sizes = []
    a = StreamingAnalyzer(calibration=HeadsetCalibration())
    for minute in range(10):
        a.feed(block)
        if minute in (0, 9):
            sizes.append(len(pickle.dumps(a)))
    assert sizes[1] <= sizes[0] * 1.05, sizes


def test_streaming_resampler_equals_resample_poly() -> None:
    rng = np.random.default_rng(2)
    for rate in (48000, 44100, 8000):
        x = rng.standard_normal((rate + 123, 2))
        r = StreamingResampler(rate, 16000, 2)
        parts, i = [], 0
        while i < x.shape[0]:
            n = int(rng.integers(0, 3000))
            parts.append(r.process(x[i: i + n]))
            i += n
        parts.append(r.flush())
        np.testing.assert_allclose(np.concatenate(parts), resample_poly(x, 16000, rate, axis=0), atol=1e-9)


def test_other_rates_give_the_same_level() -> None:
    x = headset_signal(12.0)
    ref = run(x, [1600]).totals()
    x48 = resample_poly(x, 3, 1, axis=0)
    got = run(x48, [4800], sample_rate_hz=48000).totals()
    assert got.duration_s == pytest.approx(ref.duration_s)
    assert got.level_dbov == pytest.approx(ref.level_dbov, abs=0.2)
    assert got.speech_s == pytest.approx(ref.speech_s, rel=0.05)


def test_int16_and_float_input_agree() -> None:
    x = headset_signal(6.0)
    xi = np.round(x * 32768).clip(-32768, 32767).astype(np.int16)
    a = run(xi, [1600]).totals()
    b = run(xi.astype(np.float32) / 32768, [1600]).totals()
    assert a.level_dbov == pytest.approx(b.level_dbov, abs=1e-4)


def test_bad_input_is_named() -> None:
    a = StreamingAnalyzer()
    with pytest.raises(DspError, match="mono"):
        a.feed(np.zeros(100))
    with pytest.raises(DspError, match="shape"):
        a.feed(np.zeros((100, 3)))
    with pytest.raises(DspError, match="dtype"):
        a.feed(np.zeros((100, 2), dtype=np.int32))
    with pytest.raises(DspError, match="NaN"):
        a.feed(np.full((100, 2), np.nan))
    with pytest.raises(DspError, match="channels"):
        StreamingAnalyzer(channels=3)


def test_clipping_share_and_mono_gives_no_distance() -> None:
    x = headset_signal(6.0)[:, 0].copy()
    x[:1600] = 1.0  # 0.1 s at full scale
    a = run(x, [1600], channels=1, calibration=HeadsetCalibration())
    t = a.totals()
    assert t.clipping == pytest.approx(1600 / x.size, rel=0.01)
    assert t.distance_cm is None and t.ild_db is None


@pytest.mark.parametrize("emit_interval_s", [0.01, 0.1, 1.0])
def test_room_noise_before_the_first_word_is_not_speech(emit_interval_s: float) -> None:
    """Mono: the VAD gates on the level above the noise floor; the first hops (no floor yet) are
    judged against a floor seeded from themselves, so a stream that opens with 1 s of steady
    speech-band room noise (-50 dBov) is not taken for speech before the first word."""
    rng = np.random.default_rng(5)
    spec = np.fft.rfft(rng.standard_normal(16000))
    f = np.fft.rfftfreq(16000, 1 / 16000)
    noise = np.fft.irfft(np.where((f > 300) & (f < 3000), spec, 0), 16000)
    noise *= 10 ** (-50 / 20) / np.sqrt(np.mean(noise ** 2))
    speech = load_clip("timit-LDC93S1.wav")
    x = np.concatenate([noise, speech + rng.standard_normal(speech.size) * 10 ** (-70 / 20)])
    a = StreamingAnalyzer(channels=1, emit_interval_s=emit_interval_s)
    ms = a.feed(x) + a.flush()
    assert not any(m.speaking for m in ms if m.t_s <= 1.0)
    assert any(m.speaking for m in ms if m.t_s > 1.0)
    assert a.totals().speech_s <= speech.size / 16000


@pytest.mark.parametrize("emit_interval_s", [0.01, 0.1, 1.0])
def test_intonation_path_is_independent_of_the_block_size(emit_interval_s: float) -> None:
    """The F0 spread, the monotone decision and the per-tick F0 of own speech come out the same
    however the stream is cut (the pitch tracker is fed tick by tick), and the other measures are
    those of the analyser without intonation."""
    x = headset_signal(25.0, seed=4)
    kw = {"emit_interval_s": emit_interval_s, "intonation": True}
    ref = _series(x, [160], **kw)
    spreads = [m.intonation_st for m in ref]
    assert sum(s is not None for s in spreads) > len(spreads) / 3
    assert all(m.monotone is False for m in ref)  # real lively speech
    assert sum(len(m.f0_hz) for m in ref) > 500
    for sizes in ([16000 * 4], [1, 7, 333, 4000, 0, 12345]):
        got = _series(x, sizes, **kw)
        assert len(got) == len(ref)
        for g, r in zip(got, ref, strict=True):
            assert (g.t_s, g.speaking, g.monotone) == (r.t_s, r.speaking, r.monotone)
            assert g.f0_hz == r.f0_hz and g.intonation_st == r.intonation_st
    plain = _series(x, [1600], emit_interval_s=emit_interval_s)
    for p, r in zip(plain, ref, strict=True):
        assert (p.t_s, p.speaking, p.speech_s, p.rate_spm) == (r.t_s, r.speaking, r.speech_s, r.rate_spm)
        assert p.intonation_st is None and p.monotone is None and p.f0_hz == ()


def test_intonation_totals_equal_the_meter_fed_the_whole_track_and_state_stays_bounded() -> None:
    """Totals: the analyser's spread equals the IntonationMeter fed the whole-file F0 track with the
    analyser's own-voice flags (skipping non-own hops changes nothing); any cut gives the same."""
    from device.dsp.intonation import IntonationMeter
    from device.dsp.pitch import track_pitch

    x = headset_signal(20.0, seed=6)
    ref = run(x, [x.shape[0]], intonation=True, emit_interval_s=0.01)
    t = ref.totals()
    assert t.intonation_st is not None and t.f0_median_hz is not None and t.monotone_s == 0.0
    for sizes in ([160], [1, 7, 333, 4000, 0, 12345]):
        got = run(x, sizes, intonation=True, emit_interval_s=0.01).totals()
        assert (got.intonation_st, got.intonation_sd_st, got.f0_median_hz, got.monotone_s) == (
            t.intonation_st, t.intonation_sd_st, t.f0_median_hz, t.monotone_s)
    # the own-voice VAD flag of every hop, from a hop-by-hop run without intonation
    b = StreamingAnalyzer(emit_interval_s=0.01)
    own: list[bool] = []
    for i in range(0, x.shape[0], 160):
        b.feed(x[i: i + 160])
        own.append(bool(b._flags[(b._hops - 1) % b._flags.size]))
    track = track_pitch(x[:, 0])
    meter = IntonationMeter()
    n = min(track.f0_hz.size, len(own))
    meter.feed(track.f0_hz[:n], np.array(own[:n]))
    whole = meter.totals()
    assert whole is not None and whole.range_st == pytest.approx(t.intonation_st, abs=1e-9)
    assert whole.median_hz == pytest.approx(t.f0_median_hz, rel=1e-9)
    sizes = []
    c = StreamingAnalyzer(intonation=True)
    for minute in range(4):
        c.feed(x)
        if minute in (0, 3):
            sizes.append(len(pickle.dumps(c)))
    assert sizes[1] <= sizes[0] * 1.05, sizes


def _pink(n: int, rng: np.random.Generator) -> np.ndarray:
    spec = np.fft.rfft(rng.standard_normal(n))
    spec[1:] /= np.sqrt(np.arange(1, spec.size))
    spec[0] = 0.0
    y: np.ndarray = np.fft.irfft(spec, n)
    return y / float(np.sqrt(np.mean(y ** 2)))


@pytest.mark.parametrize("noisy", [False, True], ids=["clean", "pink-5dB"])
@pytest.mark.parametrize("channels", [1, 2])
def test_one_measurement_a_second_decides_as_the_live_ticks_do(channels: int, noisy: bool) -> None:
    """The offline analyser's 1 s interval and the live agent's 0.1 s ticks: the same own-voice
    decisions (the VAD decides 10 hops at a time whatever the interval), so the same totals and, at
    every whole second, the same live values. In pink noise at 5 dB SNR the VAD's noisy-room rules
    are in play too."""
    x = headset_signal(30.0, seed=3)
    if noisy:
        rms = np.sqrt(np.mean(x[:, 0] ** 2))
        x = x + np.stack([_pink(x.shape[0], np.random.default_rng(k)) for k in (1, 2)], axis=1) * rms * 10 ** (-5 / 20)
    x = x[:, :channels]
    kw = {"channels": channels, "intonation": True,
          "calibration": HeadsetCalibration(ild_offset_db=10.0) if channels == 2 else None}
    live = _series(x, [1600], emit_interval_s=0.1, **kw)
    second = _series(x, [1600], emit_interval_s=1.0, **kw)
    a_live, a_second = (run(x, [1600], emit_interval_s=e, **kw).totals() for e in (0.1, 1.0))
    assert a_live.speech_s > 10 and a_live.syllables > 30
    assert (a_second.speech_s, a_second.syllables, a_second.noise_dbov, a_second.monotone_s) == (
        a_live.speech_s, a_live.syllables, a_live.noise_dbov, a_live.monotone_s)
    for f in ("level_dbov", "activity", "distance_cm", "ild_db", "intonation_st", "f0_median_hz"):
        assert getattr(a_second, f) == pytest.approx(getattr(a_live, f), abs=1e-9), f
    at = {round(m.t_s, 2): m for m in live}
    assert len(second) == 30
    for m in second:
        ref = at[round(m.t_s, 2)]
        assert (m.speaking, m.rate_spm, m.noise_dbov, m.monotone) == (
            ref.speaking, ref.rate_spm, ref.noise_dbov, ref.monotone), m.t_s
        for f in ("level_dbov", "distance_cm", "ild_db", "intonation_st"):
            assert getattr(m, f) == pytest.approx(getattr(ref, f), abs=1e-9), (m.t_s, f)
    speech_live = sum(m.speech_s for m in live)
    assert sum(m.speech_s for m in second) == pytest.approx(speech_live, abs=1e-9)
