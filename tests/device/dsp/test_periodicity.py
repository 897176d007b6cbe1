"""Per-hop periodicity (device/dsp/periodicity.py) and the mono VAD's voice test that uses it: real
voices read periodic, noise that rises and falls like syllables does not, and a mono file of such
noise is no longer speech."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from device.dsp.features import BAND_INDEX, BandEnergies
from device.dsp.periodicity import HopPeriodicity
from device.offline_analysis import analyze_file
from tests.device.helpers import pink_noise
from tests.device.room_corpus import RATE_HZ, keyboard_clicks

REAL = Path(__file__).resolve().parents[2] / "data" / "real-speech"
WAVS = sorted(name for name in json.loads((REAL / "manifest.json").read_text(encoding="utf-8"))["clips"]
              if name.endswith(".wav"))
FS = RATE_HZ
HOP = 160


def _voiced_share(x: np.ndarray) -> float:
    """Share of the hops within 25 dB of the loud ones (95th percentile) that read 0.5 or more."""
    per = HopPeriodicity(FS, HOP).process(x)
    level = 10 * np.log10(np.maximum(BandEnergies(FS, HOP, 1).process(x[:, None])[:, 0, BAND_INDEX["speech"]], 1e-20))
    loud = level > np.percentile(level, 95) - 25
    return float(np.mean(per[loud] >= 0.5))


def _noises(seconds: float = 20.0) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(4)
    n = int(seconds * FS)
    t = np.arange(n) / FS
    brown = np.cumsum(rng.standard_normal(n))
    brown -= np.convolve(brown, np.ones(801) / 801, mode="same")  # no drift below 20 Hz
    clicks = keyboard_clicks(rng, n)
    am = 1 + 0.9 * np.sin(2 * np.pi * 4 * t)
    out = {"pink 4 Hz": pink_noise(n, rng) * am, "white 4 Hz": rng.standard_normal(n) * am,
           "brown 4 Hz": brown * am, "keyboard clicks": clicks}
    return {k: v / np.sqrt(np.mean(v**2)) * 0.05 for k, v in out.items()}


@pytest.mark.parametrize("name", WAVS)
def test_a_real_voice_reads_periodic(name: str) -> None:
    # measured: 0.50 (new-home) to 0.81 (aishell-0764) of the loud hops; noise below: 0
    x, fs = sf.read(REAL / name, dtype="float64", always_2d=True)
    assert fs == FS
    assert _voiced_share(x[:, 0]) >= 0.45


def test_noise_rising_and_falling_like_syllables_reads_aperiodic() -> None:
    for name, x in _noises().items():
        assert _voiced_share(x) <= 0.01, name


def test_periodicity_does_not_depend_on_block_size() -> None:
    x, _ = sf.read(REAL / WAVS[0], dtype="float64")
    whole = HopPeriodicity(FS, HOP).process(x)
    det = HopPeriodicity(FS, HOP)
    parts = [det.process(x[a: a + 1600]) for a in range(0, x.size - x.size % 1600, 1600)]
    assert np.allclose(np.concatenate(parts), whole[: sum(p.size for p in parts)], atol=1e-12)


def test_a_mono_file_of_syllable_rate_noise_is_not_speech(tmp_path: Path) -> None:
    """Before the voice test the mono VAD took pink noise modulated at 4 Hz for 18.8 s of speech in 20
    s (65 syllables) and keyboard clicks for 2.5 s; Silero finds none in either."""
    for name, x in _noises().items():
        path = tmp_path / "noise.wav"
        sf.write(path, x, FS, subtype="FLOAT")
        report = analyze_file(path)
        assert report["speech_s"] == 0.0 and report["syllables"] == 0, (name, report)
