"""DC offset removal at the front of the analyser.

MEMS microphones on I2S (the SPH0645 on a Raspberry Pi is the known case) and some USB codecs
deliver audio riding on a constant offset, and real recordings carry one too (two clips of the dev
set sit 0.008 and 0.012 of full scale off zero, 23 dB under their speech). An offset is not sound,
but every measure would see it: it is "energy" in the full band (the mono VAD's speech share drops
and weak speech is lost), the noise floor reads the offset instead of the room, and the syllable
detector's autocorrelation reads noise riding on it as perfectly periodic (voicing 1.0).

The offset is estimated per channel as the median of the last ``window_hops`` hop means (a causal
running median over 1 s by default, robust to a click or a plosive whose hop mean is far off; it
follows only changes slower than about a second, far under any voice), refreshed every 0.1 s, and
subtracted from each 10 ms hop. At the stream start the window holds the hops seen so far and the
estimate is refreshed at every hop, so an offset present from the first sample is removed from the
first hop on. Each estimate is the median of the same values however the stream is split into
blocks, so the output does not depend on the block size (bit for bit).

Without it (``bench/accuracy.py --only dcoffset``), an offset of +0.01 of full scale under the real
clips of tests/data changed their speech time by 40 % and their syllables by 27 %, -0.03 by 68 % and
60 % (the mono VAD's speech share), and the P.56 level, measured as the samples came, by up to 3.4 and
11 dB. The P.56 level is measured after the removal too. So the analyser's level departs from the
ITU-T STL's ``actlevel``, which measures the samples as they are, where a recording carries content
under about 0.5 Hz: aishell-0764's quiet stretches wander by about 0.003 of full scale (an ideal 0.5 Hz
high-pass moves its P.56 level by +0.10 dB, as the analyser does), and the STL test vector opens
with a click whose mean the first hops take for an offset (-0.05 dB).
:func:`device.dsp.p56.p56_level` itself measures what it is given and matches the STL to 0.0005 dB.
Units: full-scale amplitude (1.0 = digital full scale); hops of ``hop`` samples.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

from device.dsp.errors import DspError

FloatArray = npt.NDArray[np.float64]


class DcOffsetRemover:
    """Subtracts the running DC offset from ``(n, channels)`` blocks of whole hops (the last block
    of a stream may end with a partial hop).

    The estimate is refreshed every ``refresh_hops`` hops (at global hop indices that are multiples
    of it, from the means up to that hop) and held in between; in the first ``refresh_hops`` hops of
    the stream, at every hop."""

    def __init__(self, channels: int, hop: int, window_hops: int = 100, refresh_hops: int = 10) -> None:
        if window_hops < 2 or hop < 1 or not 1 <= refresh_hops <= window_hops:
            raise DspError(f"window_hops must be 2 or more, hop 1 or more and refresh_hops 1 to window_hops, "
                           f"not {window_hops}, {hop} and {refresh_hops}")
        self.hop = hop
        self.window = window_hops
        self.refresh = refresh_hops
        self._history: FloatArray = np.zeros((0, channels))  # the last (up to) window_hops - 1 hop means
        self._hops = 0  # hops seen (global index of the next hop)
        self._value: FloatArray = np.zeros(channels)  # the offset now (full-scale units)

    def process(self, x: FloatArray) -> FloatArray:
        """``x`` with the offset removed (a new array; ``x`` is not changed)."""
        n = x.shape[0]
        if n == 0:
            return x.copy()
        hop, r = self.hop, self.refresh
        starts = np.arange(0, n, hop)
        counts = np.minimum(n - starts, hop)  # a partial last hop at the end of a stream
        means = np.add.reduceat(x, starts, axis=0) / counts[:, None]
        k = means.shape[0]
        seq = np.concatenate([self._history, means])
        h = self._history.shape[0]  # hop j of this block is seq[h + j]
        g = self._hops + np.arange(k)  # the global hop indices of this block
        steps = np.flatnonzero((g < r) | (g % r == 0)).tolist()  # refreshes (every hop in the first r)
        estimate = np.empty_like(means)  # per hop
        done = 0  # hops given an estimate
        for j in steps:
            estimate[done:j] = self._value
            done = j
            window = seq[max(0, h + j + 1 - self.window): h + j + 1]
            m = window.shape[0]
            part = np.partition(window, [(m - 1) // 2, m // 2], axis=0)
            self._value = (part[(m - 1) // 2] + part[m // 2]) / 2.0  # the median
        estimate[done:] = self._value
        self._hops += k
        self._history = seq[1 - self.window:].copy()  # not a view that holds a long block's means
        out: FloatArray = x - np.repeat(estimate, hop, axis=0)[:n]
        return out
