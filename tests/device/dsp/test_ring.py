"""Ring buffers and histograms: the fast paths give the same numbers as the plain numpy ones."""

from __future__ import annotations

import numpy as np

from device.dsp.ring import Histogram, Ring, percentile_rows, percentiles_rows


def test_several_percentiles_from_one_partition_equal_numpy() -> None:
    rng = np.random.default_rng(0)
    for n in (1, 2, 3, 10, 999, 1000):
        v = rng.normal(size=(n, 3))
        v[: n // 2, 1] = 0.5  # ties
        pcts = (5.0, 10.0, 50.0, 90.0, 95.0, 100.0, 0.0)
        got = percentiles_rows(v, pcts)
        for pct, g in zip(pcts, got, strict=True):
            np.testing.assert_array_equal(g, np.percentile(v, pct, axis=0))
            np.testing.assert_array_equal(g, percentile_rows(v, pct))


def test_ring_oldest_and_percentiles_follow_the_window() -> None:
    r = Ring(5)
    for k in range(1, 13):
        r.push([float(k)])
        assert r.oldest()[0] == r.values()[0, 0] == max(1, k - 4)
    lo, hi = r.percentiles(0.0, 100.0)
    assert (lo[0], hi[0]) == (8.0, 12.0)


def test_histogram_batches_give_the_counts_of_one_by_one_adds() -> None:
    rng = np.random.default_rng(1)
    batched = Histogram(-40.0, 60.0, 0.05)
    values = [rng.normal(10, 30, size=int(rng.integers(0, 40))) for _ in range(3000)]
    direct = np.zeros_like(batched.counts)
    for v in values:
        batched.add(v)
        idx = np.clip(((v - batched.lo) / batched.step).astype(np.int64), 0, direct.size - 1)
        direct += np.bincount(idx, minlength=direct.size)
        v[:] = 0.0  # the caller may reuse its array: the histogram keeps a copy
    np.testing.assert_array_equal(batched.counts, direct)
    assert batched.total == sum(v.size for v in values)
    assert batched.quantile(0.5) is not None and Histogram(0.0, 1.0, 0.1).quantile(0.5) is None
