"""Demo speech: without espeak-ng the bundled clips (under 2 MB) carry every scenario; with it, they
match what espeak-ng says today."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from host_agent.demo import audio
from host_agent.demo.scenarios import SCENARIOS, calibration_segments
from host_agent.demo.speech import BUNDLED_DIR, RATE_HZ, clip_name, speak
from host_agent.errors import HostError


def test_bundled_clips_stay_small() -> None:
    total = sum(p.stat().st_size for p in BUNDLED_DIR.glob("*.flac"))
    assert 0 < total < 2 * 1024 * 1024, total


def test_every_scenario_renders_from_the_bundle_without_espeak(tmp_path: Path,
                                                               monkeypatch: pytest.MonkeyPatch) -> None:
    empty = tmp_path / "bin"
    empty.mkdir()
    monkeypatch.setenv("PATH", str(empty))  # no espeak-ng on this PATH
    files = audio.prepare(list(SCENARIOS), run_s=600.0, directory=tmp_path / "cache")
    assert set(files) == {s.name for s in SCENARIOS}
    for name, path in files.items():
        data, rate = sf.read(path, dtype="float32", always_2d=True)
        assert rate == RATE_HZ and data.shape[1] == 2, name
        assert len(data) >= 20 * RATE_HZ, name  # at least one whole call; the agent loops it
        assert np.sqrt(np.mean(data[:, 0] ** 2)) > 1e-3, f"{name}: silent boom channel"
    with pytest.raises(HostError, match="espeak-ng is not installed"):
        speak("zhe4 ju4 hua4 mei2 you3 lu4 yin1", 80)


@pytest.mark.needs("espeak-ng")
def test_bundle_matches_espeak_today() -> None:
    seg = calibration_segments()[0]
    assert seg.say
    bundled = BUNDLED_DIR / clip_name(seg.say, seg.speed_wpm, "cmn-latn-pinyin", 50)
    assert bundled.exists(), "regenerate with python -m host_agent.demo.bundle"
    fresh = speak(seg.say, seg.speed_wpm)
    clip = sf.read(bundled, dtype="float32")[0]
    assert abs(len(fresh) - len(clip)) <= RATE_HZ // 10  # same line, same rate: same length within 0.1 s
