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

The envelope filters and the hangover's trailing maximum are computed in plain numpy
(:func:`one_pole_lowpass`, :func:`trailing_max`), exact to rounding against ``scipy.signal.lfilter``
and ``scipy.ndimage.maximum_filter1d``, so that the agent never imports scipy (its import alone
costs the desk unit some 60 MB of memory).
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from device.dsp.errors import DspBlockError, DspParameterError

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]
Int8Array = npt.NDArray[np.int8]

T_S = 0.03
"""Envelope time constant T (s)."""
H_S = 0.20
"""Hangover H (s)."""
MARGIN_DB = 15.9
"""Margin M between threshold and active speech level (dB)."""
THRESHOLDS = 2.0 ** np.arange(-15, 0, dtype=np.float64)
"""Thresholds c_j, ascending: 2^-15 (one 16-bit step) .. 2^-1, 15 of them (STL ``THRES_NO``)."""
N_THRESHOLDS = len(THRESHOLDS)
_MAX_GAIN_LOG = 8.0
"""One-pole filter sub-blocks are short enough that g^-L <= e^8: the running sum stays well scaled."""
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


@functools.lru_cache(maxsize=8)
def _powers(g: float, block: int) -> tuple[FloatArray, FloatArray, FloatArray]:
    """``g^-k``, ``(1 - g) g^k`` and ``g^(k+1)`` for k = 0 .. block - 1 (read-only)."""
    k = np.arange(block, dtype=np.float64)
    out = (g ** -k, (1.0 - g) * g ** k, g ** (k + 1.0))
    for a in out:
        a.setflags(write=False)
    return out


def one_pole_lowpass(x: FloatArray, g: float, y0: float = 0.0, block: int | None = None) -> FloatArray:
    """The one-pole smoother ``y[n] = g y[n-1] + (1 - g) x[n]`` from ``y[-1] = y0`` (1-D, float64).

    The same numbers as ``scipy.signal.lfilter([1 - g], [1, -g], x, zi=[g y0])`` to rounding, in
    numpy: within a sub-block of length L, ``y[n] = g^n (g y_prev + (1 - g) sum_{k<=n} g^-k x[k])``
    (a cumulative sum), and sub-block ends carry over one by one. ``block`` (samples) is the
    sub-block length; it defaults to the longest with ``g^-L <= e^8``. With a fixed ``block`` the
    result is bit-identical however a stream is split into calls at multiples of ``block``.
    Raises :class:`DspParameterError` unless ``0 < g < 1``.
    """
    if not 0.0 < g < 1.0:
        raise DspParameterError(f"one_pole_lowpass needs 0 < g < 1, got {g}")
    n = x.shape[0]
    if block is None:
        block = max(1, int(_MAX_GAIN_LOG / -math.log(g)))
    if n == 0:
        return np.zeros(0)
    rows = -(-n // block)
    pad = rows * block - n
    xr = (np.concatenate([x, np.zeros(pad)]) if pad else x).reshape(rows, block)
    inv, gain, pw = _powers(g, block)
    local = np.cumsum(xr * inv, axis=1)
    local *= gain  # zero-state response within each sub-block
    # carry the last output of each sub-block into the next, in order (one scalar per sub-block)
    ends = local[:, -1].tolist()
    gl = g ** float(block)
    carry = [0.0] * rows
    prev = float(y0)
    for r in range(rows):
        carry[r] = prev
        prev = gl * prev + ends[r]
    y: FloatArray = (local + np.multiply.outer(np.asarray(carry), pw)).reshape(-1)[:n]
    return y


def trailing_max(z: Int8Array, size: int) -> Int8Array:
    """``out[i] = max(z[i : i + size])`` for ``i = 0 .. len(z) - size``: a sliding maximum by the
    van Herk / Gil-Werman method, O(n) whatever the size.

    Outputs go in runs of at most ``size``: for a run starting at ``s``, every window holds the
    tail of ``z[s : s + L]`` (a running maximum from the right), all of ``z[s + L : s + size]``
    (one maximum) and the head of ``z[s + size : s + size + L - 1]`` (a running maximum from the
    left). Equals ``scipy.ndimage.maximum_filter1d(z, size)`` where the window lies inside ``z``.
    Raises :class:`DspParameterError` for ``size < 1``.
    """
    if size < 1:
        raise DspParameterError(f"trailing_max needs size >= 1, got {size}")
    n_out = z.shape[0] - size + 1
    if n_out <= 0:
        return np.zeros(0, dtype=z.dtype)
    out = np.empty(n_out, dtype=z.dtype)
    for s in range(0, n_out, size):
        run = min(size, n_out - s)
        tail = np.maximum.accumulate(z[s: s + run][::-1])[::-1]  # max(z[s + i : s + run])
        if run < size:
            np.maximum(tail, z[s + run: s + size].max(), out=tail)
        out[s] = tail[0]
        if run > 1:  # window i also holds z[s + size : s + size + i]
            np.maximum(tail[1:], np.maximum.accumulate(z[s + size: s + size + run - 1]), out=out[s + 1: s + run])
    return out


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
        self._g = math.exp(-1.0 / (sample_rate_hz * T_S))  # coefficient of smoothing g
        self._p = 0.0  # last p = g p + (1 - g)|x|
        self._q = 0.0  # last q = g q + (1 - g) p
        self._hang = int(math.floor(H_S * sample_rate_hz + 0.5))  # I, hangover in samples
        # k (number of thresholds q reaches) of the last I samples, for the hangover
        self._k_hist = np.zeros(self._hang, dtype=np.int8)
        self._hop_idx = np.zeros(0, dtype=np.int64)  # hop number of each sample of a call (cached)
        # envelope sub-blocks of one hop: bit-identical whatever the number of hops per call
        # (hops of a few samples, as in p56_level, take the default sub-block: equal to rounding)
        self._block = hop if hop >= 64 else None

    def process(self, x: FloatArray, valid: int | None = None) -> P56Hops:
        """Per-hop sums for ``x`` (1-D, a whole number of hops). Only the first ``valid`` samples
        count (the rest is padding at the end of a stream). Raises :class:`DspBlockError` for a part hop."""
        hops = x.shape[0] // self.hop
        if hops * self.hop != x.shape[0]:
            raise DspBlockError(f"P56Meter.process needs whole hops of {self.hop} samples, got {x.shape[0]}")
        if hops == 0:
            return P56Hops(np.zeros(0), np.zeros(0, np.int64), np.zeros((0, N_THRESHOLDS), np.int64))
        p = one_pole_lowpass(np.abs(x), self._g, self._p, block=self._block)
        q = one_pole_lowpass(p, self._g, self._q, block=self._block)
        self._p, self._q = float(p[-1]), float(q[-1])
        k = np.searchsorted(THRESHOLDS, q, side="right").astype(np.int8)  # thresholds with q >= c_j
        # trailing maximum over [n - I, n]: active for c_j while q reached c_j within the hangover
        z = np.concatenate([self._k_hist, k])
        m = trailing_max(z, self._hang + 1)
        self._k_hist = z[-self._hang:].copy()
        n = np.full(hops, self.hop, np.int64)
        if valid is not None and valid < x.shape[0]:
            m[valid:] = 0
            n = np.clip(valid - np.arange(hops) * self.hop, 0, self.hop).astype(np.int64)
        # histogram of m per hop, then a_j = samples with m > j
        if self._hop_idx.shape[0] != x.shape[0]:
            self._hop_idx = np.repeat(np.arange(hops, dtype=np.int64) * (N_THRESHOLDS + 1), self.hop)
        hist = np.bincount(self._hop_idx + m,
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
