"""Fixed-size ring buffers and histograms: the bounded state of the streaming measures."""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

FloatArray = npt.NDArray[np.float64]


class Ring:
    """The last ``capacity`` rows of a stream of rows of ``width`` floats (oldest first on read)."""

    def __init__(self, capacity: int, width: int = 1) -> None:
        self.capacity = capacity
        self._data = np.zeros((capacity, width))
        self._n = 0  # rows ever pushed

    def __len__(self) -> int:
        return min(self._n, self.capacity)

    def push(self, rows: npt.ArrayLike) -> None:
        """Append rows (shape ``(k, width)`` or ``(k,)`` for width 1)."""
        r = np.asarray(rows, dtype=np.float64).reshape(-1, self._data.shape[1])
        k = r.shape[0]
        if k == 0:
            return
        if k >= self.capacity:
            r = r[-self.capacity:]
            self._n += k - self.capacity
            k = self.capacity
        start = self._n % self.capacity
        end = start + k
        if end <= self.capacity:
            self._data[start:end] = r
        else:
            cut = self.capacity - start
            self._data[start:] = r[:cut]
            self._data[: end - self.capacity] = r[cut:]
        self._n += k

    def values(self) -> FloatArray:
        """The stored rows, oldest first, shape ``(len, width)`` (a copy when wrapped)."""
        if self._n <= self.capacity:
            return self._data[: self._n]
        start = self._n % self.capacity
        return np.concatenate([self._data[start:], self._data[:start]])

    def stored(self) -> FloatArray:
        """The stored rows in storage order (not oldest first; no copy): for order-free statistics."""
        return self._data[: len(self)]

    def percentile(self, pct: float) -> FloatArray:
        """Per-column ``pct`` percentile (0..100) of the stored rows, shape ``(width,)``: the same
        numbers as ``np.percentile(self.values(), pct, axis=0)`` (linear method), without sorting
        into time order first."""
        return percentile_rows(self.stored(), pct)

    def clear(self) -> None:
        self._n = 0


def percentile_rows(values: FloatArray, pct: float) -> FloatArray:
    """Per-column ``pct`` percentile (0..100) of ``values`` (shape ``(n, width)``, n >= 1, no NaN).

    Bit-identical to ``np.percentile(values, pct, axis=0)`` (method "linear", Hyndman & Fan type 7:
    virtual index ``(n - 1) pct / 100``, numpy's two-sided interpolation formula), with a single
    partial sort (``np.partition``) and none of ``np.percentile``'s general-purpose overhead.
    """
    n = values.shape[0]
    if n == 0:
        raise ValueError("percentile of no values")
    vi = (n - 1) * (pct / 100.0)
    lo = min(max(int(np.floor(vi)), 0), n - 1)
    hi = min(lo + 1, n - 1)
    t = vi - lo
    part = np.partition(values, [lo, hi] if hi != lo else [lo], axis=0)
    a = part[lo]
    b = part[hi]
    d = b - a
    out: FloatArray = b - d * (1.0 - t) if t >= 0.5 else a + d * t
    return out


def median_values(values: FloatArray) -> float:
    """Median of a 1-D array (n >= 1, no NaN): the same number as ``np.median``."""
    n = values.shape[0]
    if n == 0:
        raise ValueError("median of no values")
    half = n // 2
    if n % 2:
        return float(np.partition(values, half)[half])
    part = np.partition(values, [half - 1, half])
    return float((part[half - 1] + part[half]) / 2.0)


class Histogram:
    """Counts of values in fixed bins ``lo .. hi`` of width ``step`` (values outside are clamped)."""

    def __init__(self, lo: float, hi: float, step: float) -> None:
        self.lo = lo
        self.step = step
        self.counts = np.zeros(int(round((hi - lo) / step)), dtype=np.int64)

    @property
    def total(self) -> int:
        return int(self.counts.sum())

    def add(self, values: FloatArray) -> None:
        if values.size:
            idx = ((values - self.lo) / self.step).astype(np.int64)
            np.minimum(np.maximum(idx, 0, out=idx), self.counts.size - 1, out=idx)  # clamp (np.clip is slower)
            self.counts += np.bincount(idx, minlength=self.counts.size)

    def quantile(self, q: float) -> float | None:
        """The value below which a share ``q`` (0..1) of the counts lie (bin centre), None if empty."""
        total = self.total
        if total == 0:
            return None
        i = int(np.searchsorted(np.cumsum(self.counts), q * total, side="left"))
        return self.lo + (min(i, self.counts.size - 1) + 0.5) * self.step
