"""The telephone channel of the tests and ``bench/accuracy.py``: the G.712 band its docstring states."""

from __future__ import annotations

import numpy as np
import pytest

from tests.device.telephone_channel import TELEPHONE_RATE_HZ, telephone_band


@pytest.mark.parametrize(("freq_hz", "lo_db", "hi_db"), [
    (100.0, -80.0, -60.0), (200.0, -17.0, -14.0), (300.0, -0.5, 0.1), (1000.0, -0.1, 0.1),
    (3400.0, -0.5, 0.1), (3600.0, -18.0, -14.0),
])
def test_the_channel_passes_300_to_3400_hz_and_stops_the_rest(freq_hz: float, lo_db: float, hi_db: float) -> None:
    """A tone's gain through the channel (dB), measured on its last second: the filters' settled output."""
    rate = 16000
    t = np.arange(3 * rate) / rate
    y = telephone_band(0.5 * np.sin(2 * np.pi * freq_hz * t), rate)
    assert y.size == 3 * TELEPHONE_RATE_HZ
    gain_db = 20 * np.log10(np.sqrt(np.mean(y[-TELEPHONE_RATE_HZ:] ** 2)) / (0.5 / np.sqrt(2)))
    assert lo_db <= gain_db <= hi_db, gain_db
