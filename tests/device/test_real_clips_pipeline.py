"""The whole analyser (own-voice VAD gating the syllable nuclei, P.56 on the boom channel) on the
real speech clips: what ``headset-agent analyze`` reports must meet the issue's tolerances."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from device.dsp.p56 import p56_level
from device.dsp.syllables import SyllableNucleusDetector
from device.offline_analysis import analyze_file
from tests.device.helpers import at_snr, pink_noise

DATA = Path(__file__).resolve().parents[1] / "data" / "real-speech"
MANIFEST = json.loads((DATA / "manifest.json").read_text())["clips"]
WAVS = sorted(name for name, clip in MANIFEST.items() if "syllables" in clip)


LEVEL_VS_STL_DB = {
    # the analyser removes a DC offset first (device/dsp/dc_offset.py), the STL measures the samples
    # as they are: aishell-0764's quiet stretches wander under 0.5 Hz (an ideal 0.5 Hz high-pass
    # moves its P.56 level by +0.10 dB, as here); the STL vector opens with a click whose mean the
    # first two hops take for an offset (measured -0.052 dB, and +0.52 %-points of activity)
    "aishell-BAC009S0764W0121.wav": (0.10, 0.006),
    "itu-stl-voice.s16le": (-0.05, 0.006),
}
"""Clip: (analyser level - STL actlevel, tolerance) in dB, where they differ; else (0, 0.006)."""


@pytest.mark.parametrize("name", WAVS)
def test_real_clip_syllables_and_level_through_the_pipeline(name: str) -> None:
    clip = MANIFEST[name]
    out = analyze_file(DATA / name)
    assert abs(out["syllables"] - clip["syllables"]) <= 1, (out["syllables"], clip["syllables"])
    shift, tol = LEVEL_VS_STL_DB.get(name, (0.0, 0.006))  # the analyser reports 0.01 dB steps
    assert out["level_dbov"] == pytest.approx(clip["level_dbov"] + shift, abs=tol)
    assert 0.5 * out["duration_s"] < out["speech_s"] <= out["duration_s"]
    assert out["distance_cm"] is None  # mono: never a guess


@pytest.mark.parametrize("name", WAVS)
def test_the_own_voice_gate_keeps_the_nuclei_in_speech_and_drops_those_in_noise(name: str) -> None:
    """The analyser counts a nucleus of the syllable detector only where own voice is active. Judged
    independently of our VAD, by the clip's ITU-T STL P.56 active level: a nucleus is in speech when a
    10 ms hop within +-30 ms of it is within 20 dB of that level. The pipeline must count exactly those
    (new-home-in-the-stars opens with 0.7 s of room noise, ~30 dB down, in which the detector finds a
    nucleus at 0.18 s: the gate must drop it, and no other). Where a clip opens with room noise only
    about 10 dB under its speech, the level criterion cannot tell, and the speech onset is hand-marked
    (``speech_onset_s`` in the manifest: aishell-0764's first 0.4 s are noise, in which the detector
    finds two nuclei; aishell-0724 opens with 0.45 s of noise and hum about 20 dB down, where the
    level criterion is borderline and the detector finds a ripple at 14 ms)."""
    clip = MANIFEST[name]
    x, rate = sf.read(DATA / name, dtype="float64")
    assert rate == 16000 and x.ndim == 1
    det = SyllableNucleusDetector(rate)
    nuclei = np.concatenate([det.feed(x), det.flush()])
    hops = x[: x.size // 160 * 160].reshape(-1, 160)
    hop_db = 10 * np.log10(np.mean(hops ** 2, axis=1) + 1e-12)
    loud = hop_db > clip["level_dbov"] - 20.0
    onset = MANIFEST[name].get("speech_onset_s", 0.0)
    in_speech = [t >= onset and bool(loud[max(0, int(t / 0.01) - 3): int(t / 0.01) + 4].any()) for t in nuclei]
    assert analyze_file(DATA / name)["syllables"] == sum(in_speech), (nuclei, in_speech)


def test_stl_vector_through_the_pipeline() -> None:
    clip = MANIFEST["itu-stl-voice.s16le"]
    out = analyze_file(DATA / "itu-stl-voice.s16le", raw_rate_hz=16000)
    shift, tol = LEVEL_VS_STL_DB["itu-stl-voice.s16le"]
    assert out["level_dbov"] == pytest.approx(clip["level_dbov"] + shift, abs=tol)
    assert out["activity"] * 100 == pytest.approx(clip["activity_pct"] + 0.52, abs=0.01)  # reported to 1e-4


def test_real_speech_in_stationary_noise_keeps_its_syllables(tmp_path: Path) -> None:
    """The four real clips one after another (15 s, 47 syllables, each at the same RMS), with pink
    noise at 10 and 5 dB SNR against their P.56 level, three noise draws each. In noise the detector's
    floor-based threshold sits close under the speech level; strongly periodic peaks within 14 dB of
    it still count (syllables.py): with this and the retune beside it the total error went from 9.9 %
    to 5.7 % at 10 dB and from 13.5 % to 9.2 % at 5 dB (ours before, same audio); the creaky-voice
    check and the rest of the next round took it to 5.0 % and 7.8 %, and the floor margin set by the
    floor's ripple (a periodic peak 2 dB over a steady floor counts) to 5.0 % and 5.7 %, and the voicing
    read net of stationary noise to 2.1 % and 2.8 %, then 2.1 % at both. The prominence read net of the
    noise (``noise_subtract_share``) costs these read clips at 5 dB: 2.1 → 7.1 % (+3, +5, +2: weak peaks
    of read Mandarin whose dips the subtraction deepens), for the dev set's fast conversational speech in
    pink noise (bench/accuracy.py --only devnoise: 11.0 / 10.3 → 9.4 / 7.3 % at 10 / 5 dB). Two nuclei 70 ms
    apart at similar levels counting as two syllables (``close_gap_s``) cost them again: 2.1 / 7.1 →
    2.1 / 9.2 % (+4, +6, +3 at 5 dB), for the dev set in pink noise 9.4 → 8.4 % at 10 dB. No peer here: the
    accuracy script (bench/accuracy.py --only devnoise) puts de Jong & Wempe beside ours on the dev set."""
    parts = []
    for name in WAVS:
        x, rate = sf.read(DATA / name, dtype="float64", always_2d=True)
        assert rate == 16000
        parts.append(x[:, 0] / np.sqrt(np.mean(x[:, 0] ** 2)) * 0.05)
    speech = np.concatenate(parts)
    truth = sum(MANIFEST[name]["syllables"] for name in WAVS)
    p56 = p56_level(speech, 16000)
    assert p56 is not None
    level_db = p56.level_dbov
    errors: dict[int, list[int]] = {}
    for snr_db in (10, 5):
        for seed in range(3):
            noise = pink_noise(speech.size, np.random.default_rng(seed))
            noise *= 10 ** ((level_db - snr_db - 10 * np.log10(np.mean(noise**2))) / 20)
            path = tmp_path / f"pink{snr_db}-{seed}.wav"
            sf.write(path, speech + noise, 16000, subtype="FLOAT")
            errors.setdefault(snr_db, []).append(analyze_file(path)["syllables"] - truth)
    total = {snr: 100.0 * sum(map(abs, e)) / (3 * truth) for snr, e in errors.items()}
    assert total[10] <= 2.5, errors
    assert total[5] <= 9.5, errors  # 9.2 % since the close merge distance (7.1 % before, 2.1 % before the net prominence)


def test_a_noisy_recording_is_named_in_the_warnings_and_a_clean_one_is_not(tmp_path: Path) -> None:
    """``analyze`` warns when the speech is under 14 dB over the noise between utterances (about 10 dB
    SNR or worse), where its counts are less accurate; at 20 dB SNR and clean it stays quiet."""
    x, rate = sf.read(DATA / "timit-LDC93S1.wav", dtype="float64")
    p56 = p56_level(x, rate)
    assert p56 is not None
    noise = pink_noise(x.size, np.random.default_rng(7))
    warned: dict[str, list[str]] = {}
    for name, snr_db in (("clean", None), ("snr20", 20.0), ("snr10", 10.0), ("snr5", 5.0)):
        y = x if snr_db is None else at_snr(x, noise, p56.level_dbov, snr_db)
        path = tmp_path / f"{name}.wav"
        sf.write(path, y, rate, subtype="FLOAT")
        out = analyze_file(path)
        warned[name] = [w for w in out["warnings"] if w.startswith("noisy: ")]
        gap = out["level_dbov"] - out["noise_dbov"]
        if warned[name]:
            assert warned[name] == [f"noisy: the speech is {gap:.1f} dB over the noise between utterances (under 14 dB: "
                                    "about 10 dB SNR or worse), where speech time and syllables are less accurate, "
                                    "most in babble"]
    assert not warned["clean"] and not warned["snr20"] and warned["snr10"] and warned["snr5"], warned
