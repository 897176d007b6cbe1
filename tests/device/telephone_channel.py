"""A telephone channel for tests and benchmarks: a recording as it reaches a call-centre recorder.

The channel band-limits to the telephone band of ITU-T G.712 (300-3400 Hz), at 8 kHz, and the
caller then writes the samples as G.711 µ-law or A-law. Band edges, causal (minimum-phase, as a real
channel's filters are), 8th-order Butterworth:

- high-pass at 250 Hz: -0.2 dB at 300 Hz, -16 dB at 200 Hz, -64 dB at 100 Hz (mains hum and the
  voice's fundamental under 250 Hz are gone, as G.712 asks);
- low-pass at 3500 Hz: -0.2 dB at 3400 Hz, -16 dB at 3600 Hz.

Units: Hz, samples as floats in [-1, 1].
"""

from __future__ import annotations

from fractions import Fraction

import numpy as np
import numpy.typing as npt
from scipy.signal import butter, resample_poly, sosfilt

FloatArray = npt.NDArray[np.float64]

TELEPHONE_RATE_HZ = 8000
BAND_HZ = (250.0, 3500.0)
"""Butterworth corner frequencies of the channel's high-pass and low-pass (Hz)."""
ORDER = 8


def telephone_band(x: FloatArray, rate_hz: int) -> FloatArray:
    """``x`` (mono, at ``rate_hz``) through the telephone channel: 8 kHz samples, clipped to [-1, 1]."""
    step = Fraction(TELEPHONE_RATE_HZ, int(rate_hz))
    y = resample_poly(np.asarray(x, dtype=np.float64), step.numerator, step.denominator)
    for kind, corner in (("high", BAND_HZ[0]), ("low", BAND_HZ[1])):
        y = sosfilt(butter(ORDER, corner, btype=kind, fs=TELEPHONE_RATE_HZ, output="sos"), y)
    out: FloatArray = np.clip(y, -1.0, 1.0)
    return out
