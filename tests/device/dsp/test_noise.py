"""The running noise floor: floor, speech level and ripple are percentiles of the same window of hop levels."""

from __future__ import annotations

import numpy as np

from device.dsp.noise import FloorTracker


def test_floor_top_and_ripple_are_the_windows_percentiles() -> None:
    rng = np.random.default_rng(3)
    ft = FloorTracker(1, window_hops=300, top_percentile=95.0, ripple_percentile=20.0)
    assert ft.top_db is None and ft.ripple_db is None and len(ft) == 0
    seen = np.zeros(0)
    for k in range(7):
        levels = rng.normal(-50.0 + 3 * k, 4.0, size=(100, 1))
        ft.update(levels)
        seen = np.concatenate([seen, levels[:, 0]])[-300:]
        assert len(ft) == seen.size
        assert ft.floor_db[0] == np.percentile(seen, 5.0)
        assert ft.top_db is not None and ft.top_db[0] == np.percentile(seen, 95.0)
        assert ft.ripple_db is not None
        assert ft.ripple_db[0] == np.percentile(seen, 20.0) - np.percentile(seen, 5.0)


def test_a_steady_floor_has_a_small_ripple_and_a_fluctuating_one_a_large_one() -> None:
    rng = np.random.default_rng(4)
    steady, moving = (FloorTracker(1, ripple_percentile=20.0) for _ in range(2))
    steady.update(rng.normal(-60.0, 0.8, size=(1000, 1)))  # stationary noise: levels within a dB or two
    moving.update(rng.normal(-60.0, 4.0, size=(1000, 1)))  # babble: levels swing with the voices
    assert steady.ripple_db is not None and moving.ripple_db is not None
    assert steady.ripple_db[0] < 1.0 < 2.0 < moving.ripple_db[0]
