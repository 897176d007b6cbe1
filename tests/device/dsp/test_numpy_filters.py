"""The numpy filters that keep scipy off the agent's import path, against scipy itself.

P.56's envelope (:func:`one_pole_lowpass` vs ``scipy.signal.lfilter``), its hangover
(:func:`trailing_max` vs ``scipy.ndimage.maximum_filter1d``), and the ring statistics
(``percentile_rows``/``median_values`` vs ``np.percentile``/``np.median``), on random input and on
real speech; and a clean interpreter that imports the agent and runs the 16 kHz analyser without
loading scipy.
"""

from __future__ import annotations

import math
import subprocess
import sys

import numpy as np
import pytest
from scipy.ndimage import maximum_filter1d
from scipy.signal import lfilter

from device.dsp.p56 import H_S, T_S, THRESHOLDS, P56Meter, one_pole_lowpass, trailing_max
from device.dsp.ring import Ring, median_values, percentile_rows
from tests.conftest import DATA_DIR

REAL = DATA_DIR / "real-speech"
ROOT = DATA_DIR.parents[1]  # the project (tests/data -> project)
G16 = math.exp(-1.0 / (16000 * T_S))  # P.56's smoothing coefficient at 16 kHz
HANG16 = int(math.floor(H_S * 16000 + 0.5))


def speech() -> np.ndarray:
    return np.fromfile(REAL / "itu-stl-voice.s16le", dtype="<i2").astype(np.float64) / 32768.0


def scipy_one_pole(x: np.ndarray, g: float, y0: float) -> np.ndarray:
    y, _ = lfilter([1.0 - g], [1.0, -g], x, zi=[g * y0])
    return np.asarray(y)


def scipy_trailing_max(z: np.ndarray, size: int) -> np.ndarray:
    right = size - 1 - size // 2  # maximum_filter1d's window is centred: shift it to trail
    return np.asarray(maximum_filter1d(z, size=size, mode="nearest")[size - 1 - right: z.shape[0] - right])


@pytest.mark.parametrize("g", [G16, 0.5, math.exp(-1.0 / (48000 * T_S)), 0.9999])
@pytest.mark.parametrize("block", [None, 1, 160, 1000])
def test_one_pole_equals_lfilter_on_random_input(g: float, block: int | None) -> None:
    rng = np.random.default_rng(7)
    for n in (1, 2, 159, 160, 161, 4801, 48000):
        x = rng.standard_normal(n) * rng.choice([1e-4, 1.0])
        y0 = float(rng.uniform(-1, 1))
        ref = scipy_one_pole(x, g, y0)
        got = one_pole_lowpass(x, g, y0, block=block)
        assert got.shape == ref.shape
        np.testing.assert_allclose(got, ref, rtol=0, atol=1e-9 * max(1.0, float(np.abs(x).max())))


def test_p56_envelope_equals_lfilter_cascade_on_speech() -> None:
    x = speech()
    p_ref = scipy_one_pole(np.abs(x), G16, 0.0)
    q_ref = scipy_one_pole(p_ref, G16, 0.0)
    for block in (None, 160):
        p = one_pole_lowpass(np.abs(x), G16, 0.0, block=block)
        q = one_pole_lowpass(p, G16, 0.0, block=block)
        np.testing.assert_allclose(p, p_ref, rtol=1e-9, atol=1e-15)
        np.testing.assert_allclose(q, q_ref, rtol=1e-9, atol=1e-15)
    assert q_ref.max() > 0.01  # real speech, not silence


def test_one_pole_is_bit_identical_across_splits_at_block_multiples() -> None:
    x = np.abs(speech()[: 160 * 400])
    whole = one_pole_lowpass(x, G16, 0.0, block=160)
    rng = np.random.default_rng(1)
    parts, i, y0 = [], 0, 0.0
    while i < x.size:
        n = int(rng.integers(1, 40)) * 160
        part = one_pole_lowpass(x[i: i + n], G16, y0, block=160)
        y0 = float(part[-1])
        parts.append(part)
        i += n
    np.testing.assert_array_equal(np.concatenate(parts), whole)


@pytest.mark.parametrize("size", [1, 2, 3, 160, HANG16 + 1, 5000])
def test_trailing_max_equals_maximum_filter1d_on_random_input(size: int) -> None:
    rng = np.random.default_rng(size)
    for n in (size, size + 1, 2 * size - 1, 2 * size + 3, 3 * size + 1600, 20000):
        for lo, hi in ((0, 2), (0, 16), (-128, 128)):
            z = rng.integers(lo, hi, n).astype(np.int8)
            np.testing.assert_array_equal(trailing_max(z, size), scipy_trailing_max(z, size))
    x = rng.standard_normal(4 * size + 7)  # floats too
    np.testing.assert_array_equal(trailing_max(x, size), scipy_trailing_max(x, size))  # type: ignore[arg-type]


def test_trailing_max_of_the_p56_hangover_on_speech() -> None:
    x = speech()
    q = scipy_one_pole(scipy_one_pole(np.abs(x), G16, 0.0), G16, 0.0)
    k = np.searchsorted(THRESHOLDS, q, side="right").astype(np.int8)
    z = np.concatenate([np.zeros(HANG16, np.int8), k])
    m = trailing_max(z, HANG16 + 1)
    np.testing.assert_array_equal(m, scipy_trailing_max(z, HANG16 + 1))
    assert len(set(m.tolist())) > 5  # the speech spans many thresholds


def test_too_short_input_and_bad_arguments() -> None:
    assert trailing_max(np.zeros(3, np.int8), 4).shape == (0,)
    assert one_pole_lowpass(np.zeros(0), 0.5).shape == (0,)
    with pytest.raises(ValueError, match="size >= 1"):
        trailing_max(np.zeros(3, np.int8), 0)
    with pytest.raises(ValueError, match="0 < g < 1"):
        one_pole_lowpass(np.ones(3), 1.0)


def scipy_p56_active(x: np.ndarray, hop: int) -> np.ndarray:
    """Per-hop a_j of P.56 method B computed with scipy (the meter's former implementation)."""
    q = scipy_one_pole(scipy_one_pole(np.abs(x), G16, 0.0), G16, 0.0)
    k = np.searchsorted(THRESHOLDS, q, side="right").astype(np.int8)
    m = scipy_trailing_max(np.concatenate([np.zeros(HANG16, np.int8), k]), HANG16 + 1)
    per_hop = m.reshape(-1, hop)
    return np.stack([(per_hop > j).sum(axis=1) for j in range(len(THRESHOLDS))], axis=1)


def test_p56_meter_activity_equals_the_scipy_computation() -> None:
    x = speech()
    x = x[: x.size // 160 * 160]
    got = P56Meter(16000, 160).process(x)
    np.testing.assert_array_equal(got.active, scipy_p56_active(x, 160))


def test_ring_percentile_and_median_equal_numpy() -> None:
    rng = np.random.default_rng(5)
    for _ in range(300):
        n, w = int(rng.integers(1, 2000)), int(rng.integers(1, 3))
        v = rng.standard_normal((n, w)) * 20 - 60
        if rng.random() < 0.5:
            v = np.round(v, 1)  # ties
        for pct in (0.0, 5.0, 20.0, 50.0, 90.0, 100.0):
            np.testing.assert_array_equal(percentile_rows(v, pct), np.percentile(v, pct, axis=0))
        assert median_values(v[:, 0]) == float(np.median(v[:, 0]))
    ring = Ring(100, 2)
    ring.push(rng.standard_normal((257, 2)))  # wrapped: storage order is not time order
    np.testing.assert_array_equal(ring.percentile(20.0), np.percentile(ring.values(), 20.0, axis=0))
    with pytest.raises(ValueError, match="no values"):
        percentile_rows(np.zeros((0, 1)), 5.0)
    with pytest.raises(ValueError, match="no values"):
        median_values(np.zeros(0))


def test_agent_at_16_khz_never_imports_scipy() -> None:
    code = (
        "import sys, numpy as np\n"
        "import device.service, device.dsp, device.offline_analysis\n"
        "from device.dsp import StreamingAnalyzer\n"
        "a = StreamingAnalyzer(16000, 2)\n"
        "x = np.random.default_rng(0).standard_normal((32000, 2)) * 0.1\n"
        "a.feed(x); a.flush(); a.totals()\n"
        "print(sorted(m for m in sys.modules if m.split('.')[0] == 'scipy'))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "[]"
