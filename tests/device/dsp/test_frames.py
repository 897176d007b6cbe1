"""device.dsp.frames: input blocks to float frames, and the strided frame view the detectors share."""

from __future__ import annotations

import numpy as np
import pytest

from device.dsp.errors import DspError
from device.dsp.frames import hop_frames, to_float_frames


@pytest.mark.parametrize(("size", "frame", "hop", "n"), [(2000, 400, 160, 10), (1039, 879, 160, 2), (800, 800, 80, 1)])
def test_hop_frames_are_the_sliding_windows_every_hop(size: int, frame: int, hop: int, n: int) -> None:
    x = np.random.default_rng(size).standard_normal(size)
    got = hop_frames(x, frame, hop, n)
    want = np.lib.stride_tricks.sliding_window_view(x, frame)[::hop][:n]
    assert got.shape == (n, frame) and np.array_equal(got, want)
    assert not got.flags.writeable  # a view of the caller's buffer: never written through
    assert np.shares_memory(got, x)


def test_hop_frames_of_no_frames_and_of_too_few_samples() -> None:
    x = np.zeros(1000)
    assert hop_frames(x, 400, 160, 0).shape == (0, 400)
    with pytest.raises(DspError, match=r"5 frames of 400 every 160 need 1040 samples, got shape \(1000,\)"):
        hop_frames(x, 400, 160, 5)
    with pytest.raises(DspError, match="need"):
        hop_frames(np.zeros((1000, 2)), 400, 160, 1)


def test_int16_blocks_are_scaled_as_the_stl_does_and_bad_blocks_are_named() -> None:
    out = to_float_frames(np.array([-32768, 16384], dtype=np.int16), 1)
    assert out.shape == (2, 1) and out[0, 0] == -1.0 and out[1, 0] == 0.5
    with pytest.raises(DspError, match="dtype int32"):
        to_float_frames(np.zeros(4, dtype=np.int32), 1)
    with pytest.raises(DspError, match="NaN or infinite"):
        to_float_frames(np.array([0.0, np.nan]), 1)
