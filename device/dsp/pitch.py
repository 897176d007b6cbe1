"""Streaming fundamental-frequency (F0) tracking for the intonation measure, by YIN.

Method: de Cheveigné, A. & Kawahara, H. (2002), "YIN, a fundamental frequency estimator for speech
and music", JASA 111(4), 1917-1930. For each 10 ms hop, on a frame of ``W + tau_max`` samples:

- step 2, the difference function (eq. 6), computed as eq. 7 from the autocorrelation (eq. 1):
  d_t(tau) = r_t(0) + r_{t+tau}(0) - 2 r_t(tau), with r_t(tau) = sum_{j=t+1}^{t+W} x_j x_{j+tau};
  the cross term r_t(tau) by FFT (one real transform of the window, one of the frame), the energy
  terms by a cumulative sum;
- step 3, the cumulative mean normalised difference (eq. 8):
  d'_t(tau) = 1 if tau = 0, else d_t(tau) / [(1/tau) sum_{j=1}^{tau} d_t(j)];
- step 4, the absolute threshold: the first lag (from the shortest period of the F0 range up) where
  d' dips below ``threshold``, followed down to the bottom of its dip; with no such dip, the global
  minimum of d' in the range;
- step 5, parabolic interpolation of that minimum, on d_t (eq. 6) rather than on d', whose
  normalisation tilts the parabola;
- no step 6 ("best local estimate"): it needs frames after the hop, and the intonation measure
  works on robust percentiles that already shrug off the rare octave error.

Voicing: a hop is voiced when the aperiodicity d'(tau*) (the paper's "aperiodicity" measure, section
IV.D) is below ``voicing_threshold`` and the frame's power is above ``silence_dbov``. The
confidence is 1 - d'(tau*), clipped to 0..1 (1 = perfectly periodic).

Units: input 16 kHz mono floats (1.0 = full scale; other rates are resampled by the caller, e.g.
with :class:`device.dsp.resample.StreamingResampler`); F0 in Hz (NaN when unvoiced); hop ``k`` is
centred on the middle of the stream's samples ``[160 k, 160 k + 160)``, i.e. at ``(k + 0.5) *
10 ms`` (the middle of the samples that d_t compares, for an F0 in the middle of the range), so its index is the analyser's hop index. Every hop depends only on the samples of its own
frame, so the output does not depend on how the stream is cut into blocks. State is bounded: less
than one frame plus one hop of samples (about 52 ms).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from device.dsp.errors import DspError
from device.dsp.frames import hop_frames
from device.dsp.measurement import HOP_S, SAMPLE_RATE_HZ

FloatArray = npt.NDArray[np.float64]

HOP = round(HOP_S * SAMPLE_RATE_HZ)
"""Samples per hop (160)."""
_CHUNK_HOPS = 128
"""Hops analysed per batch of FFTs: bounds the working memory when a long block is fed at once."""


@dataclass(frozen=True, slots=True)
class PitchParams:
    """Tuning of :class:`PitchTracker`. Frequencies in Hz, durations in seconds, levels in dBov."""

    f0_min_hz: float = 60.0
    """Lowest F0 searched (sets tau_max = fs / f0_min)."""
    f0_max_hz: float = 500.0
    """Highest F0 searched (sets tau_min = fs / f0_max)."""
    window_s: float = 0.025
    """Integration window W of eq. 1 (de Cheveigné & Kawahara use 25 ms for speech)."""
    threshold: float = 0.15
    """Absolute threshold of step 4 on d' (the paper: 0.1; 0.15 loses fewer weak voiced frames)."""
    voicing_threshold: float = 0.3
    """A hop is voiced when its aperiodicity d'(tau*) is below this."""
    silence_dbov: float = -65.0
    """A hop is unvoiced when the mean square of its window is below this (dBov: a full-scale square
    wave is 0 dBov)."""

    def __post_init__(self) -> None:
        if not 20.0 <= self.f0_min_hz < self.f0_max_hz <= SAMPLE_RATE_HZ / 4:
            raise DspError(f"F0 range must satisfy 20 <= f0_min_hz < f0_max_hz <= {SAMPLE_RATE_HZ // 4} Hz, got "
                           f"{self.f0_min_hz}..{self.f0_max_hz}")
        if not 0.005 <= self.window_s <= 0.1:
            raise DspError(f"window_s must be from 0.005 to 0.1 s, got {self.window_s}")
        if not 0.0 < self.threshold <= 1.0 or not 0.0 < self.voicing_threshold <= 1.0:
            raise DspError(f"threshold and voicing_threshold must be in (0, 1], got {self.threshold}, "
                           f"{self.voicing_threshold}")


@dataclass(frozen=True, slots=True)
class PitchTrack:
    """Per-hop output of :class:`PitchTracker`: ``f0_hz`` (NaN when unvoiced), ``confidence``
    (0..1, 1 - aperiodicity, given for unvoiced hops too) and the global index of the first hop."""

    first_hop: int
    f0_hz: FloatArray
    confidence: FloatArray

    @property
    def times_s(self) -> FloatArray:
        """Centre of each hop, seconds since the stream start."""
        t: FloatArray = (np.arange(self.f0_hz.size, dtype=np.float64) + (self.first_hop + 0.5)) * HOP_S
        return t

    @property
    def voiced(self) -> npt.NDArray[np.bool_]:
        v: npt.NDArray[np.bool_] = np.isfinite(self.f0_hz)
        return v


def _fast_size(n: int) -> int:
    """The smallest 2^a or 3 * 2^a >= n (pocketfft is fastest on these: on this project's 668-sample
    frames a 768-point transform takes about 25 % less time than the 675-point one)."""
    pow2 = 1 << (n - 1).bit_length()
    three = 3 * (1 << max(0, (-(-n // 3) - 1).bit_length()))
    return min(pow2, three)


class PitchTracker:
    """Streaming YIN F0 tracker (see the module docstring).

    Feed 16 kHz mono samples in blocks of any length; each call returns a :class:`PitchTrack` of the
    hops completed by that block (possibly none). Hop ``k`` is returned once the samples up to
    ``160 k + 80 + (W + tau_max) / 2`` have been fed (about 26 ms after its centre with the default
    parameters). :meth:`flush` ends the stream: the last hops are analysed with zeros after the end,
    up to the last whole hop.

    ``select``: optional, called with the global indices of the hops about to be analysed; hops it
    answers False for are not analysed (F0 NaN, confidence 0). The analyser uses it to skip the hops
    outside own speech, whose F0 nobody uses: the other hops come out exactly as without it.
    """

    def __init__(self, sample_rate_hz: int = SAMPLE_RATE_HZ, *, params: PitchParams | None = None,
                 select: Callable[[npt.NDArray[np.int64]], npt.NDArray[np.bool_]] | None = None) -> None:
        if sample_rate_hz != SAMPLE_RATE_HZ:
            raise DspError(f"PitchTracker works at {SAMPLE_RATE_HZ} Hz, got {sample_rate_hz!r}: resample first "
                           "(device.dsp.resample.StreamingResampler)")
        p = params or PitchParams()
        self.params = p
        self.select = select
        fs = SAMPLE_RATE_HZ
        self._w = round(p.window_s * fs)  # W, samples
        self._tau_min = max(2, int(math.floor(fs / p.f0_max_hz)))
        self._tau_max = int(math.ceil(fs / p.f0_min_hz))
        if self._tau_max >= self._w * 4:
            raise DspError(f"window_s={p.window_s} s is too short for f0_min_hz={p.f0_min_hz} Hz")
        self._frame = self._w + self._tau_max + 1  # samples x_t .. x_{t+W+tau_max} (tau_max + 1 for step 5)
        self._nfft = _fast_size(self._frame)
        # d_t(tau) compares x_t..x_{t+W} with x_{t+tau}..x_{t+tau+W}: its time is the middle of
        # x_t..x_{t+W+tau}. The hop centre is put there for the geometric-mean F0 of the range (the
        # middle of the range in semitones), within half a tau_max of every F0 of the range.
        tau_mid = SAMPLE_RATE_HZ / math.sqrt(p.f0_min_hz * p.f0_max_hz)
        self._centre = round((self._w + tau_mid) / 2)  # frame sample at the hop centre
        self._pad = self._centre - HOP // 2  # left padding: frame k starts at sample 160 k + 80 - centre
        self._silence = 10.0 ** (p.silence_dbov / 10.0)
        self._taus = np.arange(1, self._tau_max + 2, dtype=np.float64)  # tau = 1 .. tau_max + 1
        self._reset()

    def _reset(self) -> None:
        self._buf: FloatArray = np.zeros(self._pad)
        self._next_hop = 0
        self._fed = 0
        self._ended = False

    @property
    def latency_s(self) -> float:
        """Seconds from a hop's centre until the sample that completes its frame."""
        return (self._frame - self._centre) / SAMPLE_RATE_HZ

    @property
    def fed_samples(self) -> int:
        """Samples fed so far."""
        return self._fed

    def hops_completed(self, fed_samples: int) -> int:
        """How many hops :meth:`feed` has returned once ``fed_samples`` samples have been fed in all
        (however they were cut into blocks)."""
        return max(0, (self._pad + fed_samples - self._frame) // HOP + 1)

    @property
    def buffered_samples(self) -> int:
        """Samples held (bounded: less than one frame plus one hop)."""
        return int(self._buf.size)

    def feed(self, samples: npt.ArrayLike) -> PitchTrack:
        """Add mono samples (any length, floats, 1.0 = full scale); return the hops they complete."""
        if self._ended:
            raise DspError("feed() after flush(): make a new PitchTracker for a new stream")
        x = np.asarray(samples, dtype=np.float64)
        if x.ndim != 1:
            raise DspError(f"samples must be a 1-D mono array, got shape {x.shape}")
        if x.size and not np.all(np.isfinite(x)):
            raise DspError("samples contain NaN or infinity")
        self._fed += x.size
        self._buf = np.concatenate([self._buf, x])
        n = (self._buf.size - self._frame) // HOP + 1 if self._buf.size >= self._frame else 0
        return self._run(n)

    def flush(self) -> PitchTrack:
        """End of stream: the hops up to the last whole hop of the input (zeros after the end)."""
        if self._ended:
            return PitchTrack(self._next_hop, np.zeros(0), np.zeros(0))
        self._ended = True
        n = self._fed // HOP - self._next_hop
        if n <= 0:
            return PitchTrack(self._next_hop, np.zeros(0), np.zeros(0))
        need = (n - 1) * HOP + self._frame
        self._buf = np.concatenate([self._buf, np.zeros(max(0, need - self._buf.size))])
        return self._run(n)

    def _run(self, n: int) -> PitchTrack:
        first = self._next_hop
        if n <= 0:
            return PitchTrack(first, np.zeros(0), np.zeros(0))
        f0 = np.empty(n)
        conf = np.empty(n)
        frames = hop_frames(self._buf, self._frame, HOP, n)
        if self.select is None:
            for a in range(0, n, _CHUNK_HOPS):
                f0[a: a + _CHUNK_HOPS], conf[a: a + _CHUNK_HOPS] = self._analyze(frames[a: a + _CHUNK_HOPS])
        else:
            want = np.flatnonzero(np.asarray(self.select(np.arange(first, first + n, dtype=np.int64)), dtype=np.bool_))
            f0.fill(np.nan)
            conf.fill(0.0)
            for a in range(0, want.size, _CHUNK_HOPS):
                rows = want[a: a + _CHUNK_HOPS]
                f0[rows], conf[rows] = self._analyze(frames[rows])
        self._buf = self._buf[n * HOP:]
        self._next_hop += n
        return PitchTrack(first, f0, conf)

    def _analyze(self, frames: FloatArray) -> tuple[FloatArray, FloatArray]:
        """F0 (Hz, NaN unvoiced) and confidence of each frame (rows), vectorised."""
        p = self.params
        w, tau_max, nfft = self._w, self._tau_max, self._nfft
        m = frames.shape[0]
        # eq. 1 by FFT: r_t(tau) = sum_{j<W} x_j x_{j+tau}, tau = 0 .. tau_max + 1 (no wrap: nfft >= frame)
        spec_w = np.fft.rfft(frames[:, :w], nfft, axis=1)
        spec_f = np.fft.rfft(frames, nfft, axis=1)
        r = np.fft.irfft(np.conj(spec_w) * spec_f, nfft, axis=1)[:, : tau_max + 2]
        # energies r_{t+tau}(0) = sum_{j=tau}^{tau+W-1} x_j^2 by a cumulative sum
        c = np.empty((m, frames.shape[1] + 1))
        c[:, 0] = 0.0
        np.cumsum(frames * frames, axis=1, out=c[:, 1:])
        energy = c[:, w: w + tau_max + 2] - c[:, : tau_max + 2]  # column tau
        # eq. 7: d_t(tau) = r_t(0) + r_{t+tau}(0) - 2 r_t(tau), tau = 1 .. tau_max + 1 (>= 0 up to rounding)
        d = np.maximum(energy[:, :1] + energy[:, 1:] - 2.0 * r[:, 1:], 0.0)
        # eq. 8: d'_t(tau) = d_t(tau) / ((1/tau) sum_{j=1}^{tau} d_t(j))
        mean = np.cumsum(d, axis=1) / self._taus
        dn = np.where(mean > 0.0, d / np.where(mean > 0.0, mean, 1.0), 1.0)
        # step 4, on tau = tau_min .. tau_max (columns of d/dn are tau - 1)
        lo, hi = self._tau_min - 1, tau_max - 1  # inclusive column range
        seg = dn[:, lo: hi + 1]
        below = seg < p.threshold
        has = below.any(axis=1)
        start = np.argmax(below, axis=1)  # first column under the threshold
        # follow the dip down: the first column from ``start`` on where d' rises again
        after = (seg[:, 1:] > seg[:, :-1]) & (np.arange(seg.shape[1] - 1)[None, :] >= start[:, None])
        stop = np.where(after.any(axis=1), np.argmax(after, axis=1), seg.shape[1] - 1)
        pick = np.where(has, stop, np.argmin(seg, axis=1)) + lo  # column in d/dn (tau - 1)
        rows = np.arange(m)
        aperiodicity = dn[rows, pick]
        # step 5: parabolic interpolation of d_t around the chosen lag
        ia = np.maximum(pick - 1, 0)
        ib = pick + 1  # <= tau_max (column tau_max exists: tau = tau_max + 1)
        ya, yb, yc = d[rows, ia], d[rows, pick], d[rows, ib]
        den = ya - 2.0 * yb + yc
        shift = np.where(den > 0.0, 0.5 * (ya - yc) / np.where(den > 0.0, den, 1.0), 0.0)
        tau = pick + 1 + np.clip(shift, -0.5, 0.5)
        power = energy[:, 0] / w  # mean square of the window
        # dBov: a full-scale square wave (mean square 1) is 0 dBov
        voiced = (aperiodicity < p.voicing_threshold) & (power > self._silence)
        f0 = np.where(voiced, SAMPLE_RATE_HZ / tau, np.nan)
        confidence = np.where(power > self._silence, np.clip(1.0 - aperiodicity, 0.0, 1.0), 0.0)
        return f0, confidence


def track_pitch(samples: npt.ArrayLike, sample_rate_hz: int = SAMPLE_RATE_HZ,
                params: PitchParams | None = None) -> PitchTrack:
    """F0 per hop of a whole recording (16 kHz mono): the streaming tracker fed in one block."""
    tr = PitchTracker(sample_rate_hz, params=params)
    a = tr.feed(samples)
    b = tr.flush()
    return PitchTrack(0, np.concatenate([a.f0_hz, b.f0_hz]), np.concatenate([a.confidence, b.confidence]))
