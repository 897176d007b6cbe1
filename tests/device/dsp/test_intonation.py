"""Pitch variation in semitones and the monotone decision: known contours, the tracker end to end on
flat and lively synthetic voices, the real clips, streaming (block-size independence, bounded state)
and input checks."""

from __future__ import annotations

import numpy as np
import pytest

from device.dsp.errors import DspError
from device.dsp.intonation import IntonationMeter, IntonationParams, pitch_spread
from device.dsp.pitch import track_pitch

from .test_pitch import FS, _harmonic, _real_clips


def _contour(seconds: float, swing_st: float, median_hz: float = 150.0, voiced_share: float = 0.6,
             seed: int = 0) -> np.ndarray:
    """Per-hop F0 (Hz): a random walk of intonation phrases swinging about +-swing_st/2 around the median,
    with unvoiced gaps (NaN)."""
    rng = np.random.default_rng(seed)
    n = round(seconds * 100)
    st = swing_st / 2 * np.sin(2 * np.pi * np.arange(n) / rng.uniform(80, 140))
    f: np.ndarray = median_hz * 2 ** (st / 12)
    f[rng.random(n) > voiced_share] = np.nan
    return f


def test_spread_of_known_contours() -> None:
    assert pitch_spread(np.full(300, np.nan)) is None
    flat = pitch_spread(np.full(300, 200.0))
    assert flat is not None and flat.range_st == 0.0 and flat.sd_st < 1e-9 and flat.median_hz == pytest.approx(200.0)
    # uniform in semitones over 0..12 st re 100 Hz: p10..p90 = 9.6 st, SD = 12 / sqrt(12)
    f = 100.0 * 2 ** (np.linspace(0, 12, 10001) / 12)
    s = pitch_spread(f)
    assert s is not None
    assert s.range_st == pytest.approx(9.6, abs=1e-3)
    assert s.sd_st == pytest.approx(12 / np.sqrt(12), rel=1e-3)
    assert s.median_hz == pytest.approx(100.0 * 2 ** 0.5, rel=1e-6)
    assert s.low_st == pytest.approx(-4.8, abs=1e-3) and s.high_st == pytest.approx(4.8, abs=1e-3)
    assert s.voiced_s == pytest.approx(100.01)
    # on a flat voice (SD 1 st) the range shrugs off 1 % of octave errors; the SD does not
    g = 150.0 * 2 ** (np.random.default_rng(0).standard_normal(10000) / 12)
    a = pitch_spread(g)
    g[::100] *= 2
    b = pitch_spread(g)
    assert a is not None and b is not None
    assert abs(b.range_st - a.range_st) < 0.1 and b.sd_st - a.sd_st > 0.5
    # unvoiced (NaN, 0) hops are skipped; too little voiced speech gives None
    assert pitch_spread([0.0, np.nan, 150.0], min_voiced_s=0.02) is None


def test_monotone_fires_after_the_stretch_and_clears_on_lively_speech() -> None:
    p = IntonationParams()
    m = IntonationMeter(p)
    flat = _contour(40.0, swing_st=1.5)
    own = np.ones(flat.size, dtype=bool)
    fired_at = None
    for i in range(0, flat.size, 10):
        m.feed(flat[i: i + 10], own[i: i + 10])
        if m.monotone and fired_at is None:
            fired_at = m.own_speech_s
    assert fired_at is not None
    # the window needs min_voiced_s of voiced speech (about 3.3 s at 60 % voicing), then monotone_for_s
    assert p.monotone_for_s < fired_at < p.monotone_for_s + 4.0, fired_at
    w = m.window()
    assert w is not None and w.range_st < p.monotone_below_st
    assert m.monotone_stretches == 1 and m.monotone_s == pytest.approx(40.0 - fired_at + 0.1, abs=0.2)
    lively = _contour(20.0, swing_st=8.0, seed=1)
    m.feed(lively, np.ones(lively.size, dtype=bool))
    assert not m.monotone
    assert m.monotone_stretches == 1
    tot = m.totals()
    assert tot is not None and tot.voiced_s == pytest.approx(0.6 * 60.0, rel=0.05)


def test_marked_feed_notes_the_state_separate_feeds_would_leave() -> None:
    """feed_marked (the analyser's ticks in one call) gives, at each mark, the decided window and the
    monotone flag that one feed per stretch between marks gives, and the same meter state after."""
    track = np.concatenate([_contour(30.0, swing_st=1.5), _contour(15.0, swing_st=8.0, seed=2)])
    own = np.random.default_rng(3).random(track.size) < 0.8
    marks = list(range(0, track.size, 7)) + [track.size]
    one, many = IntonationMeter(), IntonationMeter()
    noted = one.feed_marked(track, own, marks)
    expected = []
    for a, b in zip([0, *marks], marks, strict=False):
        many.feed(track[a:b], own[a:b])
        expected.append((many.decided, many.monotone))
    assert noted == expected
    assert any(mono for _, mono in noted) and not noted[-1][1]  # it fired, then cleared
    assert (one.monotone_s, one.monotone_stretches, one.totals()) == (many.monotone_s, many.monotone_stretches,
                                                                      many.totals())
    with pytest.raises(DspError, match="marks"):
        IntonationMeter().feed_marked(track[:10], own[:10], [5, 3])


def test_hops_outside_own_speech_are_ignored() -> None:
    flat = _contour(30.0, swing_st=1.0)
    lively = _contour(30.0, swing_st=10.0, seed=2)
    # a neighbour's lively voice interleaved with own flat speech: only own hops count
    f = np.empty(2 * flat.size)
    f[0::2], f[1::2] = flat, lively
    own = np.zeros(f.size, dtype=bool)
    own[0::2] = True
    m = IntonationMeter()
    m.feed(f, own)
    ref = IntonationMeter()
    ref.feed(flat, np.ones(flat.size, dtype=bool))
    assert m.monotone and m.window() == ref.window() and m.own_speech_s == pytest.approx(30.0)


def test_streaming_is_block_size_independent_and_totals_match_the_offline_spread() -> None:
    f = np.concatenate([_contour(25.0, 1.0, seed=3), _contour(15.0, 6.0, seed=4), _contour(30.0, 2.0, seed=5)])
    own = np.random.default_rng(6).random(f.size) < 0.8
    whole = IntonationMeter()
    whole.feed(f, own)
    rng = np.random.default_rng(7)
    for _ in range(3):
        m = IntonationMeter()
        i = 0
        while i < f.size:
            n = int(rng.integers(0, 400))
            m.feed(f[i: i + n], own[i: i + n])
            i += n
        assert (m.monotone, m.monotone_s, m.monotone_stretches) == (whole.monotone, whole.monotone_s,
                                                                     whole.monotone_stretches)
        assert m.window() == whole.window() and m.totals() == whole.totals()
    assert whole.monotone_stretches >= 1
    offline = pitch_spread(f[own])
    tot = whole.totals()
    assert offline is not None and tot is not None
    assert tot.range_st == pytest.approx(offline.range_st, abs=0.04)  # 0.02 st histogram bins
    assert tot.median_hz == pytest.approx(offline.median_hz, rel=0.002)
    assert tot.sd_st == pytest.approx(offline.sd_st, abs=0.01)
    assert whole._window.capacity == 1000  # bounded: 10 s of hops


def test_tracker_and_meter_end_to_end_on_synthetic_voices() -> None:
    def voice(swing_st: float, seconds: float = 30.0) -> np.ndarray:
        n = int(seconds * FS)
        t = np.arange(n) / FS
        f = 140.0 * 2 ** (swing_st / 2 * np.sin(2 * np.pi * t / 1.3) / 12)
        x = _harmonic(f)
        x[(t % 0.5) > 0.35] = 0.0  # syllable-like gaps
        return x

    for swing, expect in ((1.0, True), (8.0, False)):
        track = track_pitch(voice(swing))
        m = IntonationMeter()
        m.feed(track.f0_hz, np.ones(track.f0_hz.size, dtype=bool))
        assert m.monotone is expect, (swing, m.window())


def test_real_clips_are_not_monotone() -> None:
    # whole-clip ranges 3.0-13.2 st (ours; Praat 4.3-12.7): all above the default threshold
    for name, x in _real_clips():
        s = pitch_spread(track_pitch(x).f0_hz)
        assert s is not None and s.range_st > IntonationParams().monotone_below_st, (name, s)


def test_bad_input_is_named() -> None:
    m = IntonationMeter()
    with pytest.raises(DspError, match="same length"):
        m.feed(np.zeros(3), np.ones(2, dtype=bool))
    with pytest.raises(DspError, match="boolean"):
        m.feed(np.full(3, 100.0), np.ones(3))
    with pytest.raises(DspError, match="positive Hz or NaN"):
        m.feed(np.array([100.0, -5.0]), np.ones(2, dtype=bool))
    with pytest.raises(DspError, match="window_s"):
        IntonationParams(window_s=0.1)
    with pytest.raises(DspError, match="percentiles"):
        IntonationParams(low_pct=90.0, high_pct=10.0)
    with pytest.raises(DspError, match="clear_above_st"):
        IntonationParams(monotone_below_st=4.0, clear_above_st=3.0)
