"""Per-hop periodicity of one channel: is there a voice (a pitch) in the last 32 ms?

The normalised autocorrelation of a Hann-windowed 32 ms frame ending at each 10 ms hop, corrected
for the window's own autocorrelation (Boersma, P. (1993), "Accurate short-term analysis of the
fundamental frequency and the harmonics-to-noise ratio of a sampled sound", Proc. IFA 17, 97-110),
at its highest over lags of 2.5-12.5 ms (pitch 80-400 Hz). It is taken from the 300-4000 Hz part of
the power spectrum only, with half of the band's spectral tilt taken out (a straight line fitted to
the log power against log frequency; spectral flattening before the autocorrelation, as pitch
detectors whiten their input, e.g. Rabiner, L. R. (1977), "On the use of autocorrelation analysis
for pitch detection", IEEE Trans. ASSP 25(1), 24-33, on spectrum flattening and centre clipping):
pink or brown noise, most of whose power lies in the lowest few hundred hertz, is strongly correlated
over a few milliseconds and would read as voiced, while a voice's harmonics keep the peak at its
pitch period. Half the tilt, not all of it: flattened completely, the noisy top of the band weighs
as much as the harmonics below it, and vowels in noise at 5 dB SNR read unvoiced.

On the real clips of tests/data and the dev set, 50-85 % of the hops within 25 dB of the loud ones
read 0.5 or more; on pink, white and brown noise modulated at 3-6 Hz, and on keyboard-like clicks,
none do; on 8-talker babble 50 % do (voices).

Units: sample rate in Hz, hops in samples, periodicity 0-1 (a share of the frame's band power).
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

from device.dsp.errors import DspParameterError
from device.dsp.frames import hop_frames, window_autocorrelation

FloatArray = npt.NDArray[np.float64]

FRAME_S = 0.032
"""Frame length, seconds: two and a half periods of an 80 Hz voice."""
BAND_HZ = (300.0, 4000.0)
"""Part of the spectrum the autocorrelation is taken from (Hz)."""
PITCH_HZ = (80.0, 400.0)
"""Pitch range searched (Hz)."""
TILT_SHARE = 0.5
"""Share of the band's fitted spectral tilt (log power per log frequency) taken out before the
autocorrelation."""


class HopPeriodicity:
    """Streaming per-hop periodicity of a mono signal at ``sample_rate_hz``, hops of ``hop`` samples.

    :meth:`process` takes whole hops and returns one value per hop (the frame of 32 ms ending at the
    hop's end); results do not depend on how the stream is split into calls.
    """

    def __init__(self, sample_rate_hz: int, hop: int) -> None:
        if not 8000 <= sample_rate_hz <= 192_000 or hop <= 0:
            raise DspParameterError(f"periodicity needs a rate of 8-192 kHz and a hop > 0, not {sample_rate_hz}, {hop}")
        self.hop = hop
        self.frame = round(FRAME_S * sample_rate_hz)
        self._nfft = 1 << int(np.ceil(np.log2(2 * self.frame)))
        self._window = np.hanning(self.frame + 2)[1:-1]
        freqs = np.fft.rfftfreq(self._nfft, 1.0 / sample_rate_hz)
        self._bins = np.flatnonzero((freqs >= BAND_HZ[0]) & (freqs <= min(BAND_HZ[1], sample_rate_hz / 2)))
        log_f = np.log(freqs[self._bins])
        design = np.column_stack([np.ones(self._bins.size), log_f])
        self._slope = np.linalg.pinv(design)[1]  # least-squares slope of log power against log frequency
        self._log_f = log_f - log_f.mean()
        lag_lo = int(np.floor(sample_rate_hz / PITCH_HZ[1]))
        lag_hi = int(np.ceil(sample_rate_hz / PITCH_HZ[0]))
        self._lags = slice(lag_lo, lag_hi + 1)
        self._window_ac = window_autocorrelation(self._window, self._nfft, self._lags)
        self._history = np.zeros(self.frame - hop)  # the samples before the next hop's frame

    def process(self, x: FloatArray) -> FloatArray:
        """Periodicity (0-1) of each whole hop of ``x`` (mono samples, floats)."""
        hops = x.shape[0] // self.hop
        if hops == 0:
            return np.zeros(0)
        z = np.concatenate([self._history, x[: hops * self.hop]])
        self._history = z[z.size - (self.frame - self.hop):]
        view = hop_frames(z, self.frame, self.hop, hops)
        spec = np.fft.rfft(view * self._window, self._nfft, axis=1)
        band = spec.real[:, self._bins] ** 2 + spec.imag[:, self._bins] ** 2
        slope = np.log(np.maximum(band, 1e-30)) @ self._slope  # per hop
        band = band * np.exp(-TILT_SHARE * slope[:, None] * self._log_f[None, :])
        power = np.zeros((hops, self._nfft // 2 + 1))
        power[:, self._bins] = band
        ac = np.fft.irfft(power, self._nfft, axis=1)
        r0 = ac[:, 0]
        norm = ac[:, self._lags] / np.maximum(r0[:, None], 1e-30) / self._window_ac
        out: FloatArray = np.where(r0 > 1e-14, np.clip(norm.max(axis=1), 0.0, 1.0), 0.0)
        return out
