"""Fixed-size ring buffers and histograms: the bounded state of the streaming measures."""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

from device.dsp.errors import DspBlockError

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

    def oldest(self) -> FloatArray:
        """The oldest stored row, shape ``(width,)`` (no copy of the ring; the ring is not empty)."""
        row: FloatArray = self._data[self._n % self.capacity if self._n > self.capacity else 0]
        return row

    def percentile(self, pct: float) -> FloatArray:
        """Per-column ``pct`` percentile (0..100) of the stored rows, shape ``(width,)``: the same
        numbers as ``np.percentile(self.values(), pct, axis=0)`` (linear method), without sorting
        into time order first."""
        return percentile_rows(self.stored(), pct)

    def percentiles(self, *pcts: float) -> list[FloatArray]:
        """:meth:`percentile` for each of ``pcts`` from one partial sort (the same numbers)."""
        return percentiles_rows(self.stored(), pcts)

    def clear(self) -> None:
        self._n = 0


def _plan(n: int, pct: float) -> tuple[int, int, float]:
    """Order statistics (lo, hi) and weight of the linear percentile ``pct`` of ``n`` values."""
    vi = (n - 1) * (pct / 100.0)
    lo = min(max(int(np.floor(vi)), 0), n - 1)
    return lo, min(lo + 1, n - 1), vi - lo


def _interpolate(part: FloatArray, lo: int, hi: int, t: float) -> FloatArray:
    """numpy's two-sided linear interpolation between the order statistics ``lo`` and ``hi`` of ``part``."""
    a = part[lo]
    d = part[hi] - a
    out: FloatArray = part[hi] - d * (1.0 - t) if t >= 0.5 else a + d * t
    return out


def percentile_rows(values: FloatArray, pct: float) -> FloatArray:
    """Per-column ``pct`` percentile (0..100) of ``values`` (shape ``(n, width)``, n >= 1, no NaN).

    Bit-identical to ``np.percentile(values, pct, axis=0)`` (method "linear", Hyndman & Fan type 7:
    virtual index ``(n - 1) pct / 100``, numpy's two-sided interpolation formula), with a single
    partial sort (``np.partition``) and none of ``np.percentile``'s general-purpose overhead.
    """
    return percentiles_rows(values, (pct,))[0]


def percentiles_rows(values: FloatArray, pcts: tuple[float, ...]) -> list[FloatArray]:
    """:func:`percentile_rows` for several percentiles at once, from a single ``np.partition``:
    each result is bit-identical to ``percentile_rows(values, pct)`` (the order statistics a
    partition places at its ``kth`` positions are exact, whichever other ``kth`` are asked)."""
    n = values.shape[0]
    if n == 0:
        raise DspBlockError("percentile of no values")
    plan = [_plan(n, pct) for pct in pcts]
    part = np.partition(values, sorted({k for lo, hi, _ in plan for k in (lo, hi)}), axis=0)
    return [_interpolate(part, lo, hi, t) for lo, hi, t in plan]


def median_values(values: FloatArray) -> float:
    """Median of a 1-D array (n >= 1, no NaN): the same number as ``np.median``."""
    return median_and_percentiles(values)[0]


def median_and_percentiles(values: FloatArray, *pcts: float) -> tuple[float, list[float]]:
    """:func:`median_values` and the linear ``pcts`` percentiles (as :func:`percentile_rows`) of a 1-D
    array, from a single ``np.partition`` (the same numbers as each alone)."""
    n = values.shape[0]
    if n == 0:
        raise DspBlockError("median of no values")
    half = n // 2
    middle = [half] if n % 2 else [half - 1, half]
    plan = [_plan(n, pct) for pct in pcts]
    part = np.partition(values, sorted(set(middle) | {k for lo, hi, _ in plan for k in (lo, hi)}))
    median = float(part[half]) if n % 2 else float((part[half - 1] + part[half]) / 2.0)
    return median, [float(_interpolate(part, lo, hi, t)) for lo, hi, t in plan]


class Histogram:
    """Counts of values in fixed bins ``lo .. hi`` of width ``step`` (values outside are clamped).

    Values are binned in batches (up to :attr:`BATCH` values wait in a list), so that adding a
    few values per 10 ms hop costs one list append; every reading bins what waits first.
    """

    BATCH = 8192
    """Values held back before they are binned."""

    def __init__(self, lo: float, hi: float, step: float) -> None:
        self.lo = lo
        self.step = step
        self._counts = np.zeros(int(round((hi - lo) / step)), dtype=np.int64)
        self._waiting: list[FloatArray] = []
        self._n_waiting = 0

    @property
    def counts(self) -> npt.NDArray[np.int64]:
        """Counts per bin (read-only use)."""
        if self._waiting:
            values = np.concatenate(self._waiting)
            self._waiting, self._n_waiting = [], 0
            idx = ((values - self.lo) / self.step).astype(np.int64)
            np.minimum(np.maximum(idx, 0, out=idx), self._counts.size - 1, out=idx)  # clamp (np.clip is slower)
            self._counts += np.bincount(idx, minlength=self._counts.size)
        return self._counts

    @property
    def total(self) -> int:
        return int(self.counts.sum())

    def add(self, values: FloatArray) -> None:
        """Add values (1-D; copied)."""
        if values.size:
            self._waiting.append(np.array(values, dtype=np.float64, copy=True))
            self._n_waiting += values.size
            if self._n_waiting >= self.BATCH:
                _ = self.counts

    def quantile(self, q: float) -> float | None:
        """The value below which a share ``q`` (0..1) of the counts lie (bin centre), None if empty."""
        counts = self.counts
        total = int(counts.sum())
        if total == 0:
            return None
        i = int(np.searchsorted(np.cumsum(counts), q * total, side="left"))
        return self.lo + (min(i, counts.size - 1) + 0.5) * self.step
