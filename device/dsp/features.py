"""Per-hop short-time band energies of one or two channels (the front end of VAD and distance).

A Hann-windowed 20 ms frame (320 samples at 16 kHz) is taken every 10 ms hop, ending at the
end of each hop (so hop ``h`` looks at hops ``h - 1`` and ``h``; the stream's first frame repeats
hop 0, so that a steady sound does not read lower there: half zeros had seeded the VAD's floor under
a hum), and its power spectrum is summed in bands. Band energies are mean-square amplitudes in
full-scale units (1.0 = full scale), so ``10 log10(E)`` is in dBov for a broadband signal.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

FloatArray = npt.NDArray[np.float64]


@dataclass(frozen=True, slots=True)
class Band:
    """A frequency band ``lo_hz`` <= f < ``hi_hz``."""

    name: str
    lo_hz: float
    hi_hz: float


BANDS: tuple[Band, ...] = (
    Band("speech", 100.0, 4000.0),  # own-voice VAD level difference
    Band("sonorant", 300.0, 3000.0),  # mono VAD: where vowel formants sit
    Band("total", 0.0, 8000.0),
    Band("low", 100.0, 300.0),  # distance: below the telephone band (far-end leakage is 300-3400 Hz)
    Band("high", 3600.0, 7600.0),  # distance: above the telephone band
)
BAND_INDEX = {b.name: i for i, b in enumerate(BANDS)}


class BandEnergies:
    """Streaming per-hop band energies for ``channels`` channels at ``sample_rate_hz``.

    :meth:`process` takes whole hops ``(k * hop, channels)`` and returns ``(k, channels, bands)``;
    results do not depend on how the stream is split into calls.
    """

    def __init__(self, sample_rate_hz: int, hop: int, channels: int, bands: tuple[Band, ...] = BANDS) -> None:
        self.hop = hop
        self.channels = channels
        self.frame = 2 * hop
        window = np.hanning(self.frame + 2)[1:-1]  # periodic-ish Hann without zero end points
        self._window = window
        freqs = np.fft.rfftfreq(self.frame, 1.0 / sample_rate_hz)
        # band matrix; normalised so that a full-band signal's energies are its mean square
        norm = 2.0 / (self.frame * float(np.sum(window ** 2)))
        mat = np.zeros((freqs.size, len(bands)))
        for i, b in enumerate(bands):
            mat[(freqs >= b.lo_hz) & (freqs < b.hi_hz), i] = norm
        self._mat = mat
        self._prev: FloatArray | None = None  # the last hop (the first half of the next frame)

    def process(self, x: FloatArray) -> FloatArray:
        """Band energies (mean square, full-scale units) per hop, channel and band."""
        hops = x.shape[0] // self.hop
        if self._prev is None:  # stream start: the first frame repeats the first hop, not half zeros
            if hops == 0:
                return np.zeros((0, self.channels, self._mat.shape[1]))
            self._prev = x[: self.hop]
        z = np.concatenate([self._prev, x[: hops * self.hop]])
        self._prev = z[-self.hop:].copy()
        # channels first and contiguous; frame h = hops h - 1 and h side by side: (channels, hops, frame)
        zr = np.ascontiguousarray(z.T).reshape(self.channels, hops + 1, self.hop)
        frames = np.concatenate([zr[:, :-1], zr[:, 1:]], axis=2)
        frames *= self._window
        spec = np.fft.rfft(frames, axis=-1)
        power = spec.real ** 2 + spec.imag ** 2
        out: FloatArray = np.ascontiguousarray((power @ self._mat).transpose(1, 0, 2))
        return out
