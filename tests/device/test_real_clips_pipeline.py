"""The whole analyser (own-voice VAD gating the syllable nuclei, P.56 on the boom channel) on the
real speech clips: what ``headset-agent analyze`` reports must meet the issue's tolerances."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from device.analysis import analyse_file

DATA = Path(__file__).resolve().parents[1] / "data" / "real-speech"
MANIFEST = json.loads((DATA / "manifest.json").read_text())["clips"]
WAVS = sorted(name for name, clip in MANIFEST.items() if "syllables" in clip)


@pytest.mark.parametrize("name", WAVS)
def test_real_clip_syllables_and_level_through_the_pipeline(name: str) -> None:
    clip = MANIFEST[name]
    out = analyse_file(DATA / name)
    assert abs(out["syllables"] - clip["syllables"]) <= 2, (out["syllables"], clip["syllables"])
    assert out["level_dbov"] == pytest.approx(clip["level_dbov"], abs=0.5)
    assert 0.5 * out["duration_s"] < out["speech_s"] <= out["duration_s"]
    assert out["distance_cm"] is None  # mono: never a guess


def test_stl_vector_through_the_pipeline() -> None:
    clip = MANIFEST["itu-stl-voice.s16le"]
    out = analyse_file(DATA / "itu-stl-voice.s16le", raw_rate_hz=16000)
    assert out["level_dbov"] == pytest.approx(clip["level_dbov"], abs=0.5)
    assert out["activity"] * 100 == pytest.approx(clip["activity_pct"], abs=2.0)
