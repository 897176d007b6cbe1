"""Active speech level by ITU-T Recommendation P.56 (12/2011), method B, in dBov.

Method B (the "speech voltmeter" of the ITU-T Software Tool Library, ``sv-p56.c``): the
envelope ``q`` is two cascaded one-pole smoothers of ``|x|`` with time constant T = 0.03 s;
a sample is active for threshold ``c_j`` when ``q >= c_j`` or ``q`` was at least ``c_j`` within
the hangover H = 0.2 s before it; ``a_j`` counts active samples. For each threshold,
``A_j = 10 log10(sum x^2 / a_j)`` (dB) and ``C_j = 20 log10(c_j)``; the active speech level is
where ``A - C`` falls to the margin M = 15.9 dB, interpolated between the two thresholds that
bracket it (the STL's ``bin_interp``, tolerance 0.5 dB), and the activity factor is
``sum x^2 / n`` over that level.

dBov: 1.0 is digital full scale, so a full-scale square wave is 0 dBov and a full-scale sine
-3.01 dBov (ITU-T G.100.1). Thresholds are the STL's: one 16-bit quantisation step
(2^-15) up to half full scale, doubling (6.02 dB apart).

Everything the level needs is a sum over samples (``sum x^2``, ``n``, ``a_j``), so the meter
keeps per-hop sums (:class:`P56Hops`): adding hops gives the whole-stream level, and adding
the hops of recent own speech gives a sliding-window level, with bounded state either way.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
from scipy.ndimage import maximum_filter1d
from scipy.signal import lfilter

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]

T_S = 0.03
"""Envelope time constant T (s)."""
H_S = 0.20
"""Hangover H (s)."""
MARGIN_DB = 15.9
"""Margin M between threshold and active speech level (dB)."""
THRESHOLDS = 2.0 ** np.arange(-15, 0, dtype=np.float64)
"""Thresholds c_j, ascending: 2^-15 (one 16-bit step) .. 2^-1, 15 of them (STL ``THRES_NO``)."""
N_THRESHOLDS = len(THRESHOLDS)
_MIN_LOG_OFFSET = 1.0e-20  # the STL's guard against log10(0)
INTERP_TOL_DB = 0.5
"""Tolerance of the STL's binary interpolation (dB)."""


@dataclass(frozen=True, slots=True)
class P56Result:
    """An active speech level (dBov) and activity factor (0..1) by P.56 method B."""

    level_dbov: float
    activity: float
    long_term_dbov: float
    """Plain RMS level of everything measured (dBov)."""


@dataclass(frozen=True, slots=True)
class P56Hops:
    """Per-hop sums of :class:`P56Meter`: ``sq`` (sum of x^2, full-scale units), ``n`` (samples)
    and ``active`` of shape ``(hops, 15)`` (samples active for each threshold c_j)."""

    sq: FloatArray
    n: IntArray
    active: IntArray


def _bin_interp(upcount: float, lwcount: float, upthr: float, lwthr: float, margin: float, tol: float) -> float:
    """The STL's binary interpolation (``bin_interp``, v2.3) of the level where A - C = margin (dB)."""
    if abs((upcount - upthr) - margin) < tol:
        return upcount
    if abs((lwcount - lwthr) - margin) < tol:
        return lwcount
    midcount = (upcount + lwcount) / 2.0
    midthr = (upthr + lwthr) / 2.0
    iterno = 1
    while True:
        diff = (midcount - midthr) - margin
        if abs(diff) <= tol:
            return midcount
        iterno += 1
        if iterno > 20:
            tol *= 1.1
        if diff > tol:
            midcount = (upcount + midcount) / 2.0
            midthr = (upthr + midthr) / 2.0
            lwcount, lwthr = midcount, midthr
        elif diff < -tol:
            midcount = (midcount + lwcount) / 2.0
            midthr = (midthr + lwthr) / 2.0
            upcount, upthr = midcount, midthr


def active_level(sq: float, n: int, active: npt.ArrayLike) -> P56Result | None:
    """P.56 method B level from sums: ``sq`` = sum of x^2, ``n`` samples, ``active[j]`` = a_j.

    Returns None for silence (no activity, or activity below the margin at the lowest threshold),
    as the STL does (it prints -100 dBov there).
    """
    a = np.asarray(active, dtype=np.float64)
    if n <= 0 or a.shape != (N_THRESHOLDS,) or a[0] <= 0:
        return None
    long_term = 10.0 * math.log10(sq / n + _MIN_LOG_OFFSET)
    c_db = 20.0 * np.log10(THRESHOLDS + _MIN_LOG_OFFSET)
    a_db0 = 10.0 * math.log10(sq / a[0] + _MIN_LOG_OFFSET)
    if a_db0 - c_db[0] < MARGIN_DB:
        return None
    for j in range(1, N_THRESHOLDS):
        if a[j] <= 0:
            continue
        a_db = 10.0 * math.log10(sq / a[j] + _MIN_LOG_OFFSET)
        if a_db - c_db[j] <= MARGIN_DB:  # Delta_j <= M: interpolate between j-1 and j
            am_db = 10.0 * math.log10(sq / a[j - 1] + _MIN_LOG_OFFSET)
            level = _bin_interp(a_db, am_db, float(c_db[j]), float(c_db[j - 1]), MARGIN_DB, INTERP_TOL_DB)
            activity = min(1.0, 10.0 ** ((long_term - level) / 10.0))
            return P56Result(level, activity, long_term)
    return None


class P56Meter:
    """Streaming P.56 method B front end: per-hop sums for a mono stream (boom channel).

    Feed whole hops of ``hop`` samples at ``sample_rate_hz``; results are identical whatever
    the number of hops per call (the envelope filters and the hangover carry their state).
    """

    def __init__(self, sample_rate_hz: int, hop: int) -> None:
        self.hop = hop
        g = math.exp(-1.0 / (sample_rate_hz * T_S))  # coefficient of smoothing g
        self._b = np.array([1.0 - g])
        self._a = np.array([1.0, -g])
        self._zp = np.zeros(1)  # state of p = g p + (1 - g)|x|
        self._zq = np.zeros(1)  # state of q = g q + (1 - g) p
        self._hang = int(math.floor(H_S * sample_rate_hz + 0.5))  # I, hangover in samples
        # k (number of thresholds q reaches) of the last I samples, for the hangover
        self._k_hist = np.zeros(self._hang, dtype=np.int8)

    def process(self, x: FloatArray, valid: int | None = None) -> P56Hops:
        """Per-hop sums for ``x`` (1-D, a whole number of hops). Only the first ``valid`` samples
        count (the rest is padding at the end of a stream)."""
        hops = x.shape[0] // self.hop
        if hops * self.hop != x.shape[0]:
            raise ValueError(f"P56Meter.process needs whole hops of {self.hop} samples, got {x.shape[0]}")
        if hops == 0:
            return P56Hops(np.zeros(0), np.zeros(0, np.int64), np.zeros((0, N_THRESHOLDS), np.int64))
        p, self._zp = lfilter(self._b, self._a, np.abs(x), zi=self._zp)
        q, self._zq = lfilter(self._b, self._a, p, zi=self._zq)
        k = np.searchsorted(THRESHOLDS, q, side="right").astype(np.int8)  # thresholds with q >= c_j
        # trailing maximum over [n - I, n]: active for c_j while q reached c_j within the hangover
        z = np.concatenate([self._k_hist, k])
        size = self._hang + 1
        right = size - 1 - size // 2
        m = maximum_filter1d(z, size=size, mode="nearest")[self._hang - right: z.shape[0] - right]
        self._k_hist = z[-self._hang:].copy()
        n = np.full(hops, self.hop, np.int64)
        if valid is not None and valid < x.shape[0]:
            m[valid:] = 0
            n = np.clip(valid - np.arange(hops) * self.hop, 0, self.hop).astype(np.int64)
        # histogram of m per hop, then a_j = samples with m > j
        hop_idx = np.repeat(np.arange(hops), self.hop)
        hist = np.bincount(hop_idx * (N_THRESHOLDS + 1) + m.astype(np.int64),
                           minlength=hops * (N_THRESHOLDS + 1)).reshape(hops, N_THRESHOLDS + 1)
        ge = np.cumsum(hist[:, ::-1], axis=1)[:, ::-1]  # ge[:, v] = samples with m >= v
        sq = np.einsum("ij,ij->i", x.reshape(hops, self.hop), x.reshape(hops, self.hop))
        return P56Hops(sq, n, ge[:, 1:].astype(np.int64))


def p56_level(x: npt.ArrayLike, sample_rate_hz: int) -> P56Result | None:
    """Active speech level of a whole mono signal (floats, 1.0 = full scale) by P.56 method B."""
    arr = np.asarray(x, dtype=np.float64).ravel()
    meter = P56Meter(sample_rate_hz, 1)
    hops = meter.process(arr) if arr.size else None
    if hops is None:
        return None
    return active_level(float(hops.sq.sum()), int(hops.n.sum()), hops.active.sum(axis=0))
