"""ITU-T P.56 method B against the STL reference values and reference signals."""

from __future__ import annotations

import json

import numpy as np
import pytest
import soundfile as sf

from device.dsp.p56 import P56Meter, active_level, p56_level
from tests.conftest import DATA_DIR

REAL = DATA_DIR / "real-speech"
MANIFEST = json.loads((REAL / "manifest.json").read_text())["clips"]


def load_clip(name: str) -> np.ndarray:
    if name.endswith(".s16le"):
        return np.fromfile(REAL / name, dtype="<i2").astype(np.float64) / 32768.0
    x, rate = sf.read(REAL / name, dtype="int16")
    assert rate == 16000
    return np.asarray(x, dtype=np.float64) / 32768.0


@pytest.mark.parametrize("name", sorted(MANIFEST))
def test_real_clips_match_the_stl_to_a_thousandth_of_a_db(name: str) -> None:
    # the STL's actlevel prints 3 decimals (+-0.0005); ours is within 0.0005 dB of it on every clip
    res = p56_level(load_clip(name), 16000)
    assert res is not None
    assert abs(res.level_dbov - MANIFEST[name]["level_dbov"]) <= 0.001
    if "activity_pct" in MANIFEST[name]:
        assert abs(res.activity * 100 - MANIFEST[name]["activity_pct"]) <= 0.001
    if "long_term_dbov" in MANIFEST[name]:
        assert abs(res.long_term_dbov - MANIFEST[name]["long_term_dbov"]) <= 0.001


def test_full_scale_sine_is_minus_3_dbov_and_square_is_0() -> None:
    t = np.arange(3 * 16000) / 16000
    sine = p56_level(np.sin(2 * np.pi * 997 * t), 16000)
    square = p56_level(np.sign(np.sin(2 * np.pi * 997 * t + 0.1)), 16000)
    assert sine is not None and square is not None
    # within 0.04 dB: the envelope's first milliseconds fall below the activity threshold
    assert sine.level_dbov == pytest.approx(-3.01, abs=0.04)
    assert square.level_dbov == pytest.approx(0.0, abs=0.04)
    half = p56_level(0.5 * np.sin(2 * np.pi * 997 * t), 16000)
    assert half is not None and half.level_dbov == pytest.approx(-3.01 - 6.02, abs=0.04)


def test_silence_has_no_level() -> None:
    assert p56_level(np.zeros(16000), 16000) is None


def test_per_hop_sums_do_not_depend_on_block_size() -> None:
    x = load_clip("itu-stl-voice.s16le")
    x = x[: x.size // 160 * 160]
    whole = P56Meter(16000, 160).process(x)
    meter = P56Meter(16000, 160)
    rng = np.random.default_rng(3)
    parts, i = [], 0
    while i < x.size:
        n = int(rng.integers(1, 60)) * 160
        parts.append(meter.process(x[i: i + n]))
        i += n
    active = np.concatenate([p.active for p in parts])
    np.testing.assert_array_equal(active, whole.active)
    np.testing.assert_allclose(np.concatenate([p.sq for p in parts]), whole.sq, rtol=1e-12)
    a = active_level(float(whole.sq.sum()), int(whole.n.sum()), whole.active.sum(axis=0))
    assert a is not None and a.level_dbov == pytest.approx(MANIFEST["itu-stl-voice.s16le"]["level_dbov"], abs=0.01)  # tail < 1 hop cut: -0.009 dB
