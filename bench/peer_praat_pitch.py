"""The peer F0 tracker: Praat's "To Pitch (ac)" through praat-parselmouth, sampled on our hop grid.

Boersma, P. (1993), "Accurate short-term analysis of the fundamental frequency and the
harmonics-to-noise ratio of a sampled sound", Proc. IFA 17, 97-110: Praat's autocorrelation method
with its Viterbi path. Run with a 10 ms time step and our F0 range (60-500 Hz by default); every
other setting is Praat's default (voicing threshold 0.45, silence threshold 0.03, octave cost 0.01,
octave-jump cost 0.35, voiced/unvoiced cost 0.14, not "very accurate").

Praat centres its frames in the sound, so its frame times are not our hop centres ``(k + 0.5) *
10 ms``: :func:`praat_f0` samples its contour at our times, linearly in log F0 between the two
nearest frames when both are voiced and from the nearer frame otherwise (voicing = the nearer
frame's).

Used by ``bench/accuracy.py`` (row ``pitch``) and the pitch tests; parselmouth is imported only
when a contour is asked for.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

FloatArray = npt.NDArray[np.float64]


def praat_f0(audio: npt.ArrayLike, fs: int, times_s: npt.ArrayLike, f0_min_hz: float = 60.0,
             f0_max_hz: float = 500.0) -> FloatArray:
    """Praat's F0 (Hz, NaN unvoiced) of mono ``audio`` (floats, 1.0 = full scale) at ``fs`` Hz, at
    ``times_s`` (seconds from the start)."""
    import parselmouth

    pitch = parselmouth.Sound(np.asarray(audio, dtype=np.float64), sampling_frequency=fs).to_pitch_ac(
        time_step=0.01, pitch_floor=f0_min_hz, pitch_ceiling=f0_max_hz)
    xs = np.asarray(pitch.xs(), dtype=np.float64)
    f = np.asarray(pitch.selected_array["frequency"], dtype=np.float64)  # 0 = unvoiced
    t = np.asarray(times_s, dtype=np.float64)
    if xs.size == 0:
        return np.full(t.size, np.nan)
    dt = float(xs[1] - xs[0]) if xs.size > 1 else 0.01
    pos = (t - xs[0]) / dt
    i0 = np.floor(pos).astype(np.int64)
    frac = pos - i0
    a = f[np.clip(i0, 0, xs.size - 1)]
    b = f[np.clip(i0 + 1, 0, xs.size - 1)]
    nearer = np.where(frac < 0.5, a, b)
    both = (a > 0) & (b > 0)
    log_mix = (1.0 - frac) * np.log(np.where(a > 0, a, 1.0)) + frac * np.log(np.where(b > 0, b, 1.0))
    out = np.where(both & (nearer > 0), np.exp(log_mix), nearer)
    out = np.where(out > 0, out, np.nan)
    out[(pos < -0.5) | (pos > xs.size - 0.5)] = np.nan  # outside Praat's frames
    result: FloatArray = out
    return result


def compare(ours_hz: npt.ArrayLike, ref_hz: npt.ArrayLike, gross: float = 0.2) -> dict[str, float | int]:
    """Agreement of two F0 contours on the same hops (Hz, NaN unvoiced).

    ``gpe``: gross pitch error rate, the share of hops both call voiced where the F0s differ by more
    than ``gross`` (20 %) of the reference; ``median_cents``: median |1200 log2(ours / ref)| over the
    other hops both call voiced; ``voicing_agreement``: share of hops with the same voicing decision;
    ``both``/``ours_voiced``/``ref_voiced``/``hops``: counts."""
    o = np.asarray(ours_hz, dtype=np.float64)
    r = np.asarray(ref_hz, dtype=np.float64)
    ov, rv = np.isfinite(o), np.isfinite(r)
    both = ov & rv
    rel = o[both] / r[both]
    fine = np.abs(rel - 1.0) <= gross
    cents = 1200.0 * np.abs(np.log2(rel[fine]))
    return {"hops": int(o.size), "ours_voiced": int(ov.sum()), "ref_voiced": int(rv.sum()), "both": int(both.sum()),
            "gross": int((~fine).sum()), "gpe": float((~fine).mean()) if rel.size else float("nan"),
            "median_cents": float(np.median(cents)) if cents.size else float("nan"),
            "voicing_agreement": float(np.mean(ov == rv)) if o.size else float("nan")}
