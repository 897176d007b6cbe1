"""Noise floor between utterances (dBov) and clipping share.

Noise floor: a low percentile of the levels of 10 ms hops without own speech, in the manner of
minimum statistics (Martin, R. (2001), "Noise power spectral density estimation based on optimal
smoothing and minimum statistics", IEEE Trans. Speech Audio Process. 9(5), 504-512), with the
minimum replaced by a percentile over a few seconds, which is robust to single quiet hops.
The whole-stream figure comes from a histogram of those hop levels (bounded state).

Clipping: the share of boom samples at digital full scale (|x| >= 32767/32768).
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

from device.dsp.ring import Histogram, Ring

FloatArray = npt.NDArray[np.float64]

FLOOR_DBOV = -120.0
"""Levels are floored here (digital silence)."""
CLIP_THRESHOLD = 32767.0 / 32768.0
"""A sample at or beyond this magnitude is at full scale (the largest positive 16-bit code)."""


def level_db(energy: npt.ArrayLike) -> FloatArray:
    """Mean-square energy (full-scale units) to dBov, floored at :data:`FLOOR_DBOV`."""
    e = np.asarray(energy, dtype=np.float64)
    out: FloatArray = 10.0 * np.log10(np.maximum(e, 10.0 ** (FLOOR_DBOV / 10.0)))
    return out


class FloorTracker:
    """Running floor of one or more level series (dB): the ``percentile`` of the last ``window``
    hops, all hops included (minimum statistics). Used to gate the VAD; updated per call.

    With ``top_percentile``, :attr:`top_db` is that (high) percentile of the same hops, e.g. the
    speech level, and with ``ripple_percentile`` :attr:`ripple_db` is that (low) percentile minus the
    floor, how much the floor itself moves (dB); both None until the first update."""

    def __init__(self, width: int, window_hops: int = 1000, percentile: float = 5.0,
                 initial_db: float = -90.0, top_percentile: float | None = None,
                 ripple_percentile: float | None = None) -> None:
        self._ring = Ring(window_hops, width)
        self._pct = percentile
        self._top_pct = top_percentile
        self._ripple_pct = ripple_percentile
        self.floor_db: FloatArray = np.full(width, initial_db)
        self.top_db: FloatArray | None = None
        self.ripple_db: FloatArray | None = None

    def __len__(self) -> int:
        """Hops in the window."""
        return len(self._ring)

    def update(self, levels_db: FloatArray) -> FloatArray:
        """Add hop levels (shape ``(k, width)``) and return the new floor (shape ``(width,)``)."""
        self._ring.push(levels_db)
        if len(self._ring):
            extra = [q for q in (self._top_pct, self._ripple_pct) if q is not None]
            got = self._ring.percentiles(self._pct, *extra)
            self.floor_db = got[0]
            rest = iter(got[1:])
            if self._top_pct is not None:
                self.top_db = next(rest)
            if self._ripple_pct is not None:
                self.ripple_db = next(rest) - self.floor_db
        return self.floor_db


class NoiseMeter:
    """Noise floor between utterances: levels (dBov) of hops without own speech.

    ``live_dbov()``: the ``percentile`` of the last ``window_hops`` such hops; ``total_dbov()``:
    the same percentile over the whole stream (histogram with 0.1 dB bins).
    """

    MIN_HOPS = 50
    """At least 0.5 s of non-speech before a floor is reported."""

    def __init__(self, window_hops: int = 3000, percentile: float = 20.0) -> None:
        self._ring = Ring(window_hops)
        self._hist = Histogram(FLOOR_DBOV, 10.0, 0.1)
        self._q = percentile / 100.0
        self._live: float | None = None

    def add(self, levels_db: FloatArray) -> None:
        """Add the levels (dBov) of hops without own speech."""
        if levels_db.size:
            self._ring.push(levels_db)
            self._hist.add(levels_db)
            if len(self._ring) >= self.MIN_HOPS:
                self._live = float(self._ring.percentile(self._q * 100.0)[0])

    def live_dbov(self) -> float | None:
        return self._live

    def total_dbov(self) -> float | None:
        if self._hist.total < self.MIN_HOPS:
            return None
        return self._hist.quantile(self._q)
