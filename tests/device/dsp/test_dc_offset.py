"""A DC offset (an I2S MEMS microphone's, a codec's) changes no measure: real speech from
tests/data/real-speech with a constant offset added gives the same speech time, syllables, level
and noise floor as without, through the whole analyser; and the remover itself."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from device.dsp.analyzer import AnalysisTotals
from device.dsp.dc_offset import DcOffsetRemover
from device.dsp.errors import DspError
from tests.device.dsp.test_streaming import run

DATA = Path(__file__).resolve().parents[2] / "data" / "real-speech"
MANIFEST = json.loads((DATA / "manifest.json").read_text())["clips"]
WAVS = sorted(n for n, c in MANIFEST.items() if "syllables" in c)
FS = 16000


def _totals(x: np.ndarray, channels: int = 1, block: int = 1600) -> AnalysisTotals:
    return run(x, [block], channels=channels).totals()


@pytest.mark.parametrize("name", WAVS)
@pytest.mark.parametrize("offset", [0.01, -0.03])
def test_offset_changes_no_measure(name: str, offset: float) -> None:
    x, rate = sf.read(DATA / name, dtype="float64")
    assert rate == FS
    clean = _totals(x)
    shifted = _totals(x + offset)
    assert shifted.syllables == clean.syllables
    assert abs(shifted.speech_s - clean.speech_s) <= 0.02, (clean.speech_s, shifted.speech_s)
    assert clean.level_dbov is not None and shifted.level_dbov is not None
    assert abs(shifted.level_dbov - clean.level_dbov) <= 0.02, (clean.level_dbov, shifted.level_dbov)
    # the floor between words is the room's, not the offset's (-40 and -30 dBov); timit's clip has
    # too little of it for a floor (under 0.5 s)
    if clean.noise_dbov is not None:
        assert shifted.noise_dbov is not None
        assert abs(shifted.noise_dbov - clean.noise_dbov) <= 0.5, (clean.noise_dbov, shifted.noise_dbov)
    else:
        assert name.startswith("timit") and shifted.noise_dbov is None


def test_offset_on_two_channels_and_any_block_size() -> None:
    x, _ = sf.read(DATA / WAVS[0], dtype="float64")
    stereo = np.column_stack([x, 0.3 * x]) + np.array([0.02, -0.01])
    whole = _totals(stereo, 2, block=stereo.shape[0])
    split = _totals(stereo, 2, block=1234)
    assert (split.speech_s, split.syllables, split.noise_dbov, split.ild_db) == (
        whole.speech_s, whole.syllables, whole.noise_dbov, whole.ild_db)
    assert split.level_dbov == pytest.approx(whole.level_dbov, abs=1e-9)
    assert whole.syllables == _totals(np.column_stack([x, 0.3 * x]), 2).syllables


def test_remover_removes_a_constant_and_keeps_the_voice_band() -> None:
    t = np.arange(2 * FS) / FS
    tone = 0.1 * np.sin(2 * np.pi * 100 * t)  # the lowest voices' fundamental
    x = np.column_stack([tone + 0.05, tone - 0.2])
    out = DcOffsetRemover(2, 160).process(x)
    assert np.abs(out.mean(axis=0)).max() < 1e-4
    # after the first second the 100 Hz tone passes untouched (to 1e-3 of its amplitude)
    assert np.abs(out[FS:] - tone[FS:, None]).max() < 1e-4
    # split into odd blocks, the output is the same bit for bit
    r = DcOffsetRemover(2, 160)
    parts = [r.process(x[i: i + 480]) for i in range(0, x.shape[0], 480)]
    assert np.array_equal(np.concatenate(parts), out)


def test_remover_refuses_a_window_under_two_hops() -> None:
    with pytest.raises(DspError, match="window_hops"):
        DcOffsetRemover(1, 160, window_hops=1)
