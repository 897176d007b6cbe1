"""Syllable-nucleus detector: accuracy on held-out synthetic Mandarin and on real speech, streaming
behaviour (block-size independence, delay, bounded state) and input checks."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
from scipy.signal import resample_poly

from device.dsp.p56 import p56_level
from device.dsp.syllables import SyllableNucleusDetector, SyllableParams, detect_nuclei
from tests.device.helpers import at_snr, pink_noise

from .mandarin_corpus import Clip, babble_bed, build_corpus
from .mandarin_corpus import mandarin_corpus as mandarin_corpus

REAL = Path(__file__).resolve().parents[2] / "data" / "real-speech"
REAL_CLIPS = {
    name: entry
    for name, entry in json.loads((REAL / "manifest.json").read_text(encoding="utf-8"))["clips"].items()
    if name.endswith(".wav") and "syllables" in entry
}


def _read(path: Path) -> tuple[np.ndarray, int]:
    audio, fs = sf.read(path, dtype="float64", always_2d=True)
    return audio[:, 0], int(fs)


def _count(clip: Clip) -> int:
    audio, fs = _read(clip.path)
    return int(detect_nuclei(audio, fs).size)


def test_mandarin_mape_at_most_10_percent(mandarin_corpus: list[Clip]) -> None:
    errors = [abs(_count(c) - c.syllables) / c.syllables for c in mandarin_corpus]
    assert {c.rate for c in mandarin_corpus} >= {80, 250}
    assert min(c.snr_db for c in mandarin_corpus) >= 12.0
    mape = 100.0 * float(np.mean(errors))
    assert mape <= 10.0, f"syllable-count MAPE {mape:.1f} % on {len(errors)} clips (issue limit 10 %)"
    assert mape <= 4.3, f"syllable-count MAPE {mape:.1f} % on {len(errors)} clips"  # 3.9 % since the first 2 s count


def test_slow_mandarin_is_not_overcounted(mandarin_corpus: list[Clip]) -> None:
    # de Jong & Wempe count about 1.5x too many syllables here; we count 1.09x (300 for 275)
    slow = [c for c in mandarin_corpus if c.rate <= 100]
    counted = sum(_count(c) for c in slow)
    truth = sum(c.syllables for c in slow)
    assert 0.9 <= counted / truth <= 1.1, f"slow Mandarin: {counted} nuclei for {truth} syllables"


def test_nuclei_fall_inside_the_sentences(mandarin_corpus: list[Clip]) -> None:
    outside = total = 0
    for clip in mandarin_corpus:
        if clip.noise == "babble":
            continue  # babble may hold real voiced peaks; the analyser's VAD drops those
        audio, fs = _read(clip.path)
        t = detect_nuclei(audio, fs)
        inside = np.zeros(t.size, dtype=bool)
        for a, b in clip.sentences_s:
            inside |= (t >= a) & (t <= b)
        outside += int((~inside).sum())
        total += t.size
    assert total > 0
    assert outside <= 0.01 * total, f"{outside} of {total} nuclei in the pauses (white/pink noise)"


@pytest.mark.parametrize("name", sorted(REAL_CLIPS))
def test_real_clip_within_one_syllable(name: str) -> None:
    # the issue asks for +-2 syllables; the detector reaches +-1 (syllables running into each other
    # without an intensity dip, "suit in", "water all", are found by the vowel-change cue). Counted
    # from the manifest's hand-marked speech onset (speech_onset_s): before it, the detector alone may
    # find nuclei in room noise (aishell-0764 opens with 0.4 s of noise only 10 dB under its speech,
    # aishell-0724 with 0.45 s of noise and hum); the analyser's own-voice
    # gate drops those (tests/device/test_real_clips_pipeline.py).
    audio, fs = _read(REAL / name)
    t = detect_nuclei(audio, fs)
    got = int(np.count_nonzero(t >= REAL_CLIPS[name].get("speech_onset_s", 0.0)))
    truth = REAL_CLIPS[name]["syllables"]
    assert abs(got - truth) <= 2, f"{name}: {got} nuclei, {truth} syllables (issue limit +-2)"
    assert abs(got - truth) <= 1, f"{name}: {got} nuclei, {truth} syllables"


def test_a_lead_in_of_room_tone_gives_no_nuclei() -> None:
    # new-home opens with 0.6 s of room tone and a click before its first word. In the stream's first
    # second the level statistics also see the look-ahead; judged against the few lead-in frames
    # decided so far, two ripples of the room tone passed as nuclei before
    audio, fs = _read(REAL / "new-home-in-the-stars.wav")
    t = detect_nuclei(audio, fs)
    assert np.count_nonzero(t < 0.6) == 0, t
    assert t.size == REAL_CLIPS["new-home-in-the-stars.wav"]["syllables"], t


def test_a_new_vowel_over_a_voiced_dip_counts_from_2_db() -> None:
    # aishell-0764 at 1.63 s: a peak 2.46 dB over a voiced dip (no consonant gap), under the 2.5 dB a
    # weak peak needs; its spectral shape differs from its neighbour's, so it is a new vowel, and the
    # clip reads 13 of 13 (12 without the cue). One vowel's level rippling keeps its shape: slow
    # synthetic Mandarin stays within 10 % (test_slow_mandarin_is_not_overcounted)
    name = "aishell-BAC009S0764W0121.wav"
    audio, fs = _read(REAL / name)
    onset = REAL_CLIPS[name]["speech_onset_s"]
    with_cue = detect_nuclei(audio, fs)
    without = detect_nuclei(audio, fs, SyllableParams(voiced_dip_prominence_db=99.0))
    assert np.count_nonzero(with_cue >= onset) == REAL_CLIPS[name]["syllables"] == 13
    assert np.count_nonzero(without >= onset) == 12
    added = np.setdiff1d(np.round(with_cue, 2), np.round(without, 2))
    assert added.size == 1 and abs(added[0] - 1.63) < 0.02, added


def test_breaths_before_the_first_word_are_judged_against_it() -> None:
    # a recording that starts a second early can hold breaths or lip noise 30-40 dB under the talker;
    # judged against the lead-in alone (with only the look-ahead), their puffs passed as nuclei. Here:
    # new-home's own room tone for 1 s with two puffs (its loudest 120 ms, Hann-windowed, 35 dB down)
    audio, fs = _read(REAL / "new-home-in-the-stars.wav")
    h = fs // 100
    tone = audio[: int(0.5 * fs)]  # room tone only (its first word starts at 0.6 s)
    energy = np.convolve((audio[: audio.size // h * h].reshape(-1, h) ** 2).mean(axis=1), np.ones(12), "valid")
    k = int(np.argmax(energy)) * h
    puff = audio[k : k + 12 * h] * np.hanning(12 * h) * 10 ** (-35 / 20)
    quiet = np.concatenate([tone, tone])
    lead = quiet.copy()
    for at_s in (0.25, 0.6):
        lead[int(at_s * fs) : int(at_s * fs) + puff.size] += puff
    t = detect_nuclei(np.concatenate([lead, audio]), fs)
    assert np.count_nonzero(t < 1.0 + 0.6) == 0, t
    np.testing.assert_array_equal(t, detect_nuclei(np.concatenate([quiet, audio]), fs))
    assert abs(t.size - REAL_CLIPS["new-home-in-the-stars.wav"]["syllables"]) <= 1, t


def test_english_speech_mape_at_most_10_percent() -> None:
    # espeak-ng en-us, hand-counted syllables, same rates, noises and SNRs as the Mandarin corpus;
    # never used for tuning
    clips = build_corpus("test", seed=11, language="en")
    errors = np.array([(_count(c) - c.syllables) / c.syllables for c in clips])
    mape = 100.0 * float(np.mean(np.abs(errors)))
    assert mape <= 10.0, f"English syllable-count MAPE {mape:.1f} % on {len(errors)} clips"
    assert mape <= 2.7, f"English syllable-count MAPE {mape:.1f} %"  # 2.3 % since the first 2 s count together
    slow = [c for c in clips if c.rate <= 100]
    counted, truth = sum(_count(c) for c in slow), sum(c.syllables for c in slow)
    assert 0.9 <= counted / truth <= 1.1, f"slow English: {counted} nuclei for {truth} syllables"


def test_streaming_output_does_not_depend_on_block_size(mandarin_corpus: list[Clip]) -> None:
    audio, fs = _read(mandarin_corpus[len(mandarin_corpus) // 2].path)
    whole = detect_nuclei(audio, fs)
    det = SyllableNucleusDetector(fs)
    rng = np.random.default_rng(5)
    parts, i = [], 0
    while i < audio.size:
        n = int(rng.integers(0, 4000))
        parts.append(det.feed(audio[i : i + n]))
        i += n
    parts.append(det.flush())
    streamed = np.concatenate(parts)
    assert whole.size > 10
    np.testing.assert_array_equal(streamed, whole)
    assert np.all(np.diff(streamed) > 0)
    assert streamed.dtype == np.float64


def test_nuclei_are_reported_within_max_delay(mandarin_corpus: list[Clip]) -> None:
    audio, fs = _read(mandarin_corpus[-1].path)
    det = SyllableNucleusDetector(fs)
    assert det.MAX_DELAY_S <= 0.5
    assert det.first_decision_s <= 2.5
    block = fs // 100  # 10 ms blocks, as a sound card delivers them
    lateness: list[float] = []
    first: list[float] = []  # when the nuclei of the stream's first 2 s came
    start_s = det.params.young_context_s
    for start in range(0, audio.size, block):
        now_s = min(start + block, audio.size) / fs
        for t in det.feed(audio[start : start + block]):
            if t < start_s:
                first.append(now_s)
            else:
                lateness.append(now_s - t)
    assert len(lateness) > 10
    assert max(lateness) <= det.MAX_DELAY_S
    assert min(lateness) >= 0.0
    assert all(now <= det.first_decision_s for now in first), first


@pytest.mark.parametrize("fs", [8000, 16000, 44100])
def test_decision_clock_says_when_a_block_fed_detector_decides(mandarin_corpus: list[Clip], fs: int) -> None:
    """Fed in blocks of any size, the detector decides exactly the frames its DecisionClock says:
    every nucleus returned lies after the previous block's decided_through and at or before this
    block's, and by then nothing before decided_through is still to come."""
    audio, src_fs = _read(mandarin_corpus[1].path)
    if fs != src_fs:
        audio = resample_poly(audio, fs, src_fs)
    whole = SyllableNucleusDetector(fs)
    all_frames = np.concatenate([whole.feed_frames(audio), whole.flush_frames()])
    det = SyllableNucleusDetector(fs)
    clock = det.decision_clock()
    rng = np.random.default_rng(fs)
    i, before, seen = 0, -1, 0
    while i < audio.size:
        n = int(rng.integers(0, fs // 3))
        got = det.feed_frames(audio[i: i + n])
        i += n
        through = clock.advance(n)
        assert np.all(got > before) and np.all(got <= through), (before, through, got)
        seen += got.size
        assert seen == int(np.count_nonzero(all_frames <= through))
        before = through
    np.testing.assert_array_equal(det.frame_times(all_frames), detect_nuclei(audio, fs))
    assert all_frames.size > 20


def test_state_stays_bounded_on_a_long_stream(mandarin_corpus: list[Clip]) -> None:
    audio, fs = _read(mandarin_corpus[0].path)
    det = SyllableNucleusDetector(fs)
    sizes = []
    for _ in range(6):  # about 2-5 minutes of speech in 1 s blocks
        for start in range(0, audio.size, fs):
            det.feed(audio[start : start + fs])
        sizes.append(det.buffered_frames)
    assert max(sizes) <= 200  # frames of 10 ms: two seconds at most
    assert sizes[-1] <= sizes[0] + 100


def test_other_sample_rates_give_the_same_count() -> None:
    audio, fs = _read(REAL / "aishell-BAC009S0724W0121.wav")
    assert fs == 16000
    base = detect_nuclei(audio, fs).size
    for rate, up, down in ((8000, 1, 2), (44100, 441, 160), (48000, 3, 1)):
        got = detect_nuclei(resample_poly(audio, up, down), rate).size
        assert abs(got - base) <= 1, f"{rate} Hz: {got} nuclei, {base} at 16 kHz"


def test_silence_and_unvoiced_noise_give_no_nuclei() -> None:
    rng = np.random.default_rng(3)
    fs = 16000
    assert detect_nuclei(np.zeros(5 * fs), fs).size == 0
    white = 0.1 * rng.standard_normal(10 * fs)
    bursts = white * (np.sin(2 * np.pi * 4 * np.arange(10 * fs) / fs) > 0)  # 4 Hz on/off, like syllables
    assert detect_nuclei(white, fs).size == 0
    assert detect_nuclei(bursts, fs).size <= 2


def test_a_voiced_syllable_train_is_counted_once_per_syllable() -> None:
    # 5 syllables/s for 4 s: a 120 Hz pulse train with a formant-like band, raised-cosine envelopes
    fs = 16000
    t = np.arange(4 * fs) / fs
    source = np.sign(np.sin(2 * np.pi * 120 * t)) * (0.5 + 0.5 * np.sin(2 * np.pi * 700 * t))
    envelope = np.sin(np.pi * 5 * t) ** 4  # 20 humps of 200 ms
    got = detect_nuclei(0.2 * source * envelope, fs)
    assert 19 <= got.size <= 21, got


def _voiced(f0_hz: float, n: int, fs: int = 16000) -> np.ndarray:
    """A pulse-train-like voiced source at ``f0_hz`` with a formant-like band near 700 Hz."""
    t = np.arange(n) / fs
    source: np.ndarray = np.sign(np.sin(2 * np.pi * f0_hz * t)) * (0.5 + 0.5 * np.sin(2 * np.pi * 700 * t))
    return source


def _humps(count: int, rate_hz: float = 5.0, fs: int = 16000) -> np.ndarray:
    """``count`` raised-cosine syllable envelopes at ``rate_hz`` per second."""
    t = np.arange(int(count / rate_hz * fs)) / fs
    envelope: np.ndarray = np.sin(np.pi * rate_hz * t) ** 4
    return envelope


@pytest.mark.parametrize("f0_hz", [66.0, 70.0])
def test_a_low_or_creaky_voice_is_counted(f0_hz: float) -> None:
    # a deep male voice and creak sit under 80 Hz: the peak's voicing check searches down to 65 Hz
    # (with an 80 Hz floor, as before, none of these 20 syllables counted)
    fs = 16000
    got = detect_nuclei(0.2 * _voiced(f0_hz, 4 * fs) * _humps(20), fs)
    assert 19 <= got.size <= 21, got


def test_a_long_phrase_final_vowel_is_counted() -> None:
    # a short syllable, a consonant, then a 0.7 s vowel fading by 4 dB: longer than the 0.25 s
    # look-ahead, so the right-hand dip search ends still falling; the left dip decides (the bounded
    # search alone found 4 of these 8 syllables)
    fs = 16000
    rng = np.random.default_rng(1)
    parts = []
    for _ in range(4):
        short = _voiced(120, int(0.15 * fs)) * np.hanning(int(0.15 * fs))
        consonant = 0.01 * rng.standard_normal(int(0.08 * fs))
        n = int(0.7 * fs)
        ramp = int(0.02 * fs)
        env = 10 ** (-np.linspace(0, 4, n) / 20)
        env[:ramp] *= np.linspace(0, 1, ramp)
        env[-ramp:] *= np.linspace(1, 0, ramp)
        parts += [short, consonant, _voiced(120, n) * env, np.zeros(int(0.5 * fs))]
    got = detect_nuclei(0.2 * np.concatenate(parts), fs)
    assert got.size == 8, got


def test_soft_syllables_in_a_quiet_room_are_counted() -> None:
    # phrases of 10 syllables, every other phrase 20 dB softer, in a quiet room: the soft ones are
    # more than 17 dB under the speech level but clear (periodic, prominent, among their like), so
    # they pass down to de Jong & Wempe's 25 dB (before: only the 20 loud ones counted)
    fs = 16000
    loud = _voiced(120, 2 * fs) * _humps(10)
    pause = np.zeros(int(0.6 * fs))
    x = 0.2 * np.concatenate([pause, loud, pause, 0.1 * loud, pause, loud, pause, 0.1 * loud, pause])
    x += 1e-4 * np.random.default_rng(2).standard_normal(x.size)
    got = detect_nuclei(x, fs)
    assert got.size == 40, got


def test_clear_soft_syllables_in_stationary_noise_are_counted() -> None:
    # the same phrases, the soft ones 15 dB softer, in pink noise: the soft syllables sit 15 dB under
    # the speech level and about 8 dB over the floor, under the periodic threshold (14 dB); periodic,
    # prominent peaks pass from 6 dB over the floor (before: 36 of the 40)
    fs = 16000
    loud = _voiced(120, 2 * fs) * _humps(10)
    pause = np.zeros(int(0.6 * fs))
    soft = 10 ** (-15 / 20) * loud
    x = 0.2 * np.concatenate([pause, loud, pause, soft, pause, loud, pause, soft, pause])
    pink = pink_noise(x.size, np.random.default_rng(5))
    got = detect_nuclei(x + pink * 0.01 / np.sqrt(np.mean(pink**2)), fs)  # noise at -40 dB RMS
    assert got.size == 40, got


def test_bad_input_is_refused_with_a_reason() -> None:
    det = SyllableNucleusDetector()
    with pytest.raises(ValueError, match="mono"):
        det.feed(np.zeros((100, 2)))
    with pytest.raises(ValueError, match="NaN"):
        det.feed(np.array([0.0, np.nan]))
    with pytest.raises(ValueError, match="sample_rate_hz"):
        SyllableNucleusDetector(1000)
    det.flush()
    with pytest.raises(RuntimeError, match="flush"):
        det.feed(np.zeros(10))


def _real_speech_at_snr(noise: np.ndarray, snr_db: float, speech: np.ndarray) -> np.ndarray:
    p56 = p56_level(speech, 16000)
    assert p56 is not None
    return at_snr(speech, noise, p56.level_dbov, snr_db)


def test_voicing_is_read_net_of_stationary_noise_only() -> None:
    """The real clips one after another in pink noise at 5 dB SNR: a peak's voicing, diluted by the noise
    under it, is compensated (syllables.py, ``voicing_gain_max``), and peaks that the noise had made
    aperiodic count again, at the clean speech's syllables, not in its pauses. Measured (the detector
    alone, 47 syllables): 4, 4, 3 more nuclei on the 3 noise draws, each within 0.16 s of a nucleus of the
    clean clips; the whole analyser's error in the same noise: tests/device/test_real_clips_pipeline.py.
    In babble (its floor ripples) and clean nothing changes."""
    parts = []
    for name in sorted(REAL_CLIPS):
        x, fs = _read(REAL / name)
        assert fs == 16000
        parts.append(x / np.sqrt(np.mean(x**2)) * 0.05)
    speech = np.concatenate(parts)
    clean = detect_nuclei(speech, 16000)
    off = SyllableParams(voicing_gain_max=1.0)
    for seed in range(3):
        noisy = _real_speech_at_snr(pink_noise(speech.size, np.random.default_rng(seed)), 5.0, speech)
        got, before = detect_nuclei(noisy, 16000), detect_nuclei(noisy, 16000, off)
        new = np.array([t for t in got if np.min(np.abs(before - t)) > 0.03])
        assert got.size - before.size >= 3 and new.size >= 3, (seed, got.size, before.size)
        assert max(np.min(np.abs(clean - t)) for t in new) <= 0.2, new
    babble = babble_bed(np.random.default_rng(3), 20.0)[: speech.size]
    for x in (speech, _real_speech_at_snr(babble, 5.0, speech)):
        assert np.array_equal(detect_nuclei(x, 16000), detect_nuclei(x, 16000, off))


def test_prominence_is_read_net_of_stationary_noise_only() -> None:
    """TIMIT's fast read sentence ("... dark suit in greasy wash water all year", 13 syllables) in pink
    noise at 3 dB SNR, six draws: the noise's power fills the dips between its syllables, so without the
    subtraction (``noise_subtract_share`` 0) the detector loses 13 syllables over the six draws (2-3 a
    draw); read on the contour net of the noise it loses 5 (0-1 a draw). Clean and in babble (whose
    floor ripples) nothing changes."""
    x, fs = _read(REAL / "timit-LDC93S1.wav")
    truth = REAL_CLIPS["timit-LDC93S1.wav"]["syllables"]
    off = SyllableParams(noise_subtract_share=0.0)
    p56 = p56_level(x, fs)
    assert p56 is not None
    lost_on = lost_off = 0
    for seed in range(6):
        noisy = at_snr(x, pink_noise(x.size, np.random.default_rng(seed)), p56.level_dbov, 3.0)
        lost_on += truth - detect_nuclei(noisy, fs).size
        lost_off += truth - detect_nuclei(noisy, fs, off).size
    assert lost_on <= 5 and lost_off >= 12, (lost_on, lost_off)
    babble = babble_bed(np.random.default_rng(3), 5.0)[: x.size]
    for y in (x, at_snr(x, babble, p56.level_dbov, 5.0)):
        assert np.array_equal(detect_nuclei(y, fs), detect_nuclei(y, fs, off))
