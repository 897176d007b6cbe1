"""Pitch variation over own speech, in semitones, and the monotone decision.

The norm (语调富表达力, 抑扬顿挫: expressive, varied intonation) is measured on the F0 contour of
:mod:`device.dsp.pitch` (YIN, de Cheveigné & Kawahara 2002): the F0 of each voiced hop inside own
speech, in semitones re the speaker's median F0, ``12 log2(F0 / median)``. Semitones make the
variation comparable between low and high voices: the F0 spread of men and women is about the same
in semitones (Traunmüller, H. & Eriksson, A. (1995), "The frequency range of the voice fundamental
in the speech of male and female adults", Stockholm University), and listeners judge liveliness
from F0 excursions on such a log scale (Traunmüller, H. & Eriksson, A. (1995), "The perceptual
evaluation of F0 excursions in speech as evidenced in liveliness estimations", JASA 97(3),
1905-1915).

The variation is the 10th-90th percentile range of those semitones (``range_st``); the standard
deviation (``sd_st``) is given too. The percentile range is the one the decision uses: the tracker's
rare octave errors and creaky hops move the standard deviation a lot (one hop in a hundred an octave
off lifts the SD of a flat voice from 1 st to about 1.6 st) and the percentile range hardly at all.

Windows: the last ``window_s`` seconds of own speech (10 s, as for the speaking rate: Hincks, R.
(2005), "Measures and perceptions of liveliness in student oral presentation speech", System 33(4),
575-591, measured pitch variation over 10-s stretches), and the whole stream (a histogram of
0.02 st bins: bounded state, percentiles and SD exact to a bin).

Monotone: on a fixed grid of own speech (every ``step_s`` seconds of it), the window's range is
compared with ``monotone_below_st``; once it has stayed below for ``monotone_for_s`` seconds of own
speech, :attr:`IntonationMeter.monotone` is set; it clears when the range reaches
``clear_above_st`` (hysteresis: no flicker). Grid points whose window holds less than
``min_voiced_s`` of voiced speech change nothing. Results depend only on the hop sequence, never on
how it is cut into blocks.

Defaults (configurable per site: they are a starting point, not a norm from the training material):
a 10-s window and 10 s of own speech below the threshold before the cue, as for the speaking rate;
``monotone_below_st`` = 2.5 st (10th-90th percentile range; about an SD of 1 st for a normal
spread), clearing at 3 st. The literature gives no agreed monotone cut-off, but it agrees on the
direction of the spread's main factors: it grows with the liveliness of the discourse and is larger
in tone languages (Traunmüller & Eriksson, 1995, first paper above; Keating, P. & Kuo, G. (2012),
"Comparison of speaking fundamental frequency in English and Mandarin", JASA 132(2), 1050-1060).
The real clips set the number: on the 16 real clips of ``tests/data/real-speech`` and the dev set
(read and spontaneous Mandarin and English) the whole-clip range is 5.8-15.7 st, except one flat
read news sentence (AISHELL-1, 3.0 st; Praat 4.3 st). 2.5 st lies below all of them, so ordinary
speech, above all Mandarin with its lexical tones, does not fire the cue; a site that coaches
English-only talkers may raise it.

Units: F0 in Hz, spreads in semitones (st), durations in seconds of own speech (10 ms hops).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from device.dsp.errors import DspError
from device.dsp.measurement import HOP_S
from device.dsp.ring import Ring

FloatArray = npt.NDArray[np.float64]

ST_PER_OCTAVE = 12.0
_HIST_LO_ST = 40.0
"""Lowest histogram edge, semitones re 1 Hz (about 10 Hz)."""
_HIST_HI_ST = 120.0
"""Highest histogram edge, semitones re 1 Hz (about 1 kHz)."""
_HIST_BIN_ST = 0.02
"""Whole-stream histogram bin width, semitones."""


@dataclass(frozen=True, slots=True)
class PitchSpread:
    """F0 variation of a stretch of voiced speech.

    ``voiced_s``: seconds of voiced hops counted; ``median_hz``: their median F0; ``range_st``:
    10th-90th percentile range (the percentiles of :class:`IntonationParams`) in semitones;
    ``sd_st``: standard deviation in semitones; ``low_st``/``high_st``: the two percentiles in
    semitones re the median.
    """

    voiced_s: float
    median_hz: float
    range_st: float
    sd_st: float
    low_st: float
    high_st: float


@dataclass(frozen=True, slots=True)
class IntonationParams:
    """Tuning of :class:`IntonationMeter`: durations in seconds of own speech, spreads in semitones."""

    window_s: float = 10.0
    """Sliding window of own speech for the live variation."""
    min_voiced_s: float = 2.0
    """Voiced hops (in seconds) a window needs before it gives a variation."""
    low_pct: float = 10.0
    high_pct: float = 90.0
    """The percentiles whose difference is ``range_st``."""
    monotone_below_st: float = 2.5
    """Monotone when the window's range stays below this (about SD 1 st for a normal spread)..."""
    monotone_for_s: float = 10.0
    """...for this much own speech (after the window has filled with enough voiced speech)."""
    clear_above_st: float = 3.0
    """The monotone state clears when the window's range reaches this."""
    step_s: float = 0.1
    """Decision grid, seconds of own speech."""

    def __post_init__(self) -> None:
        if not 1.0 <= self.window_s <= 600.0:
            raise DspError(f"window_s must be from 1 to 600 s of own speech, got {self.window_s}")
        if not 0.1 <= self.min_voiced_s <= self.window_s:
            raise DspError(f"min_voiced_s must be from 0.1 s to window_s, got {self.min_voiced_s}")
        if not 0.0 <= self.low_pct < self.high_pct <= 100.0:
            raise DspError(f"percentiles must satisfy 0 <= low_pct < high_pct <= 100, got {self.low_pct}, "
                           f"{self.high_pct}")
        if not 0.0 < self.monotone_below_st <= self.clear_above_st:
            raise DspError(f"need 0 < monotone_below_st <= clear_above_st, got {self.monotone_below_st}, "
                           f"{self.clear_above_st}")
        if self.monotone_for_s < 0.0 or not HOP_S <= self.step_s <= self.window_s:
            raise DspError(f"monotone_for_s must be >= 0 and step_s from {HOP_S} s to window_s, got "
                           f"{self.monotone_for_s}, {self.step_s}")


def _semitones(f0_hz: FloatArray) -> FloatArray:
    st: FloatArray = ST_PER_OCTAVE * np.log2(f0_hz)
    return st


def pitch_spread(f0_hz: npt.ArrayLike, low_pct: float = 10.0, high_pct: float = 90.0,
                 min_voiced_s: float = 0.0) -> PitchSpread | None:
    """The F0 variation of a contour (Hz per 10 ms hop; NaN, 0 or negative = unvoiced, skipped).

    None when fewer than ``min_voiced_s`` seconds (or no hops) are voiced. Any F0 track works: this
    is the function the accuracy script applies to ours and to Praat's contours alike."""
    f = np.asarray(f0_hz, dtype=np.float64).ravel()
    f = f[np.isfinite(f) & (f > 0.0)]
    if f.size == 0 or f.size * HOP_S < min_voiced_s:
        return None
    return _spread(_semitones(f), low_pct, high_pct)


def _percentile(a: FloatArray, q: float) -> float:
    """Percentile ``q`` of the sorted array ``a``, numpy's default ("linear") method."""
    pos = q / 100.0 * (a.size - 1)
    i = min(int(math.floor(pos)), a.size - 1)
    j = min(i + 1, a.size - 1)
    t = pos - i
    return float(a[i] + (a[j] - a[i]) * t)


def _spread(st: FloatArray, low_pct: float, high_pct: float) -> PitchSpread:
    # one sort and three interpolations: np.percentile's own overhead is ten times a 1000-hop sort
    a = np.sort(st)
    med, lo, hi = (_percentile(a, q) for q in (50.0, low_pct, high_pct))
    return PitchSpread(st.size * HOP_S, float(2.0 ** (med / ST_PER_OCTAVE)), float(hi - lo), float(np.std(st)),
                       float(lo - med), float(hi - med))


class IntonationMeter:
    """Streaming pitch variation over own speech, sliding and whole-stream, with the monotone decision.

    Feed per-hop F0 (Hz, NaN when unvoiced, e.g. :attr:`device.dsp.pitch.PitchTrack.f0_hz`) with the
    own-speech flag of the same hops; hops outside own speech are ignored, so the windows count own
    speech only. State is bounded: the window's hops and a fixed histogram.
    """

    def __init__(self, params: IntonationParams | None = None) -> None:
        p = params or IntonationParams()
        self.params = p
        self._window = Ring(max(1, round(p.window_s / HOP_S)))  # semitones re 1 Hz, NaN unvoiced
        self._voiced_in_window = 0
        self._min_voiced = max(1, round(p.min_voiced_s / HOP_S))
        self._step = max(1, round(p.step_s / HOP_S))
        self._own_hops = 0  # own-speech hops fed
        n_bins = round((_HIST_HI_ST - _HIST_LO_ST) / _HIST_BIN_ST)
        self._hist = np.zeros(n_bins, dtype=np.int64)
        self._n = 0  # voiced own-speech hops in the histogram
        self._low_run = 0  # own-speech hops of the current stretch below the threshold
        self.monotone = False
        """The monotone decision (see the module docstring)."""
        self.monotone_s = 0.0
        """Own speech (s) decided while :attr:`monotone` was set."""
        self.monotone_stretches = 0
        """How often :attr:`monotone` has been set."""
        self.decided: PitchSpread | None = None
        """The window's variation at the last grid point (None before one had enough voiced speech):
        what the decision saw, for a live display that needs no extra computation."""

    @property
    def own_speech_s(self) -> float:
        """Own speech fed so far, seconds."""
        return self._own_hops * HOP_S

    def feed(self, f0_hz: npt.ArrayLike, own: npt.ArrayLike) -> None:
        """Add hops: ``f0_hz`` (Hz, NaN unvoiced) and ``own`` (True where own-voice speech), same length."""
        self.feed_marked(f0_hz, own, ())

    def feed_marked(self, f0_hz: npt.ArrayLike, own: npt.ArrayLike,
                    marks: Sequence[int]) -> list[tuple[PitchSpread | None, bool]]:
        """:meth:`feed`, noting :attr:`decided` and :attr:`monotone` after the first ``m`` hops for
        each ``m`` of ``marks`` (increasing, 0 to the number of hops): the state separate calls,
        one per stretch between marks, would have left (the analyser's ticks, fed in one call)."""
        f = np.asarray(f0_hz, dtype=np.float64)
        o = np.asarray(own)
        if f.ndim != 1 or o.shape != f.shape:
            raise DspError(f"f0_hz and own must be 1-D arrays of the same length, got shapes {f.shape} and {o.shape}")
        if o.dtype != np.bool_:
            raise DspError(f"own must be a boolean array (one flag per hop), got dtype {o.dtype}")
        if np.any(f[np.isfinite(f)] <= 0.0) or np.any(np.isinf(f)):
            raise DspError("f0_hz must be positive Hz or NaN (unvoiced)")
        counts = np.concatenate([[0], np.cumsum(o)])  # own hops among the first m hops
        if any(not 0 <= m <= f.size for m in marks) or any(b < a for a, b in zip(marks, marks[1:], strict=False)):
            raise DspError(f"marks must increase from 0 to {f.size}, got {list(marks)}")
        at = [int(counts[m]) for m in marks]  # the marks as positions among the own hops
        st = _semitones(f[o])  # NaN stays NaN
        self._add_total(st[np.isfinite(st)])
        noted: list[tuple[PitchSpread | None, bool]] = []
        i = k = 0
        while True:
            while k < len(at) and at[k] == i:
                noted.append((self.decided, self.monotone))
                k += 1
            if i >= st.size:
                break
            n = min(self._step - self._own_hops % self._step, st.size - i)
            if k < len(at):
                n = min(n, at[k] - i)
            self._push(st[i: i + n])
            i += n
            if self._own_hops % self._step == 0:
                self._decide()
        return noted

    def _push(self, st: FloatArray) -> None:
        if st.size == 0:
            return
        cap = self._window.capacity
        if len(self._window) + st.size > cap:  # hops about to fall out of the window
            out = len(self._window) + st.size - cap
            old = self._window.values()[:out, 0]
            self._voiced_in_window -= int(np.isfinite(old).sum())
        self._window.push(st)
        self._voiced_in_window += int(np.isfinite(st[-cap:]).sum())
        self._own_hops += st.size

    def _decide(self) -> None:
        p = self.params
        s = self.window()
        self.decided = s
        if s is None:
            return
        if s.range_st < p.monotone_below_st:
            self._low_run += self._step
            if not self.monotone and self._low_run * HOP_S >= p.monotone_for_s - 1e-9:
                self.monotone = True
                self.monotone_stretches += 1
        elif s.range_st >= p.clear_above_st:
            self._low_run = 0
            self.monotone = False
        if self.monotone:
            self.monotone_s += self._step * HOP_S

    def _add_total(self, st: FloatArray) -> None:
        if st.size == 0:
            return
        self._n += st.size
        idx = np.clip(((st - _HIST_LO_ST) / _HIST_BIN_ST).astype(np.int64), 0, self._hist.size - 1)
        self._hist += np.bincount(idx, minlength=self._hist.size)

    def window(self) -> PitchSpread | None:
        """The variation over the last ``window_s`` of own speech (None: too little voiced speech)."""
        if self._voiced_in_window < self._min_voiced:
            return None
        v = self._window.stored()[:, 0]
        return _spread(v[np.isfinite(v)], self.params.low_pct, self.params.high_pct)

    def totals(self) -> PitchSpread | None:
        """The variation over all own speech so far (percentiles to 0.02 st; None: too little voiced)."""
        p = self.params
        if self._n < self._min_voiced:
            return None
        cum = np.cumsum(self._hist)
        med, lo, hi = (self._hist_percentile(cum, q) for q in (50.0, p.low_pct, p.high_pct))
        # the SD from the bin centres (integer counts: exactly the same for any split of the stream;
        # the binning adds at most (0.02 st)^2 / 12 to the variance)
        centres = _HIST_LO_ST + (np.arange(self._hist.size) + 0.5) * _HIST_BIN_ST
        nz = np.flatnonzero(self._hist)
        w = self._hist[nz].astype(np.float64)
        mean = float(w @ centres[nz]) / self._n
        sd = math.sqrt(max(float(w @ (centres[nz] - mean) ** 2) / self._n, 0.0))
        return PitchSpread(self._n * HOP_S, 2.0 ** (med / ST_PER_OCTAVE), hi - lo, sd, lo - med, hi - med)

    def _hist_percentile(self, cum: npt.NDArray[np.int64], q: float) -> float:
        """Percentile ``q`` (semitones re 1 Hz) from the histogram, linear within the bin."""
        target = q / 100.0 * self._n
        k = int(np.searchsorted(cum, target, side="left"))
        k = min(k, cum.size - 1)
        before = float(cum[k - 1]) if k > 0 else 0.0
        in_bin = float(self._hist[k])
        frac = (target - before) / in_bin if in_bin > 0 else 0.5
        return _HIST_LO_ST + (k + min(max(frac, 0.0), 1.0)) * _HIST_BIN_ST
