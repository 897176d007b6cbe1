"""The peer syllable counter: de Jong & Wempe (2009) syllable nuclei on Praat's engine (parselmouth).

De Jong, N. H. & Wempe, T. (2009), "Praat script to detect syllable nuclei and measure speech rate
automatically", Behavior Research Methods 41(2), 385-390 (script version of 2010-09-17), run with
parselmouth calls: intensity (min pitch 50 Hz), threshold at the 0.99 quantile - 25 dB, peaks of
the intensity contour above it, a dip of more than 2 dB to the next peak, a voiced pitch value
(To Pitch (ac), 30-450 Hz) at the peak, and the peak inside a "sounding" interval of
To TextGrid (silences) (minimum pause 0.3 s).

Used by ``bench/bench_syllables.py`` and ``bench/accuracy.py``. Needs the ``bench`` extra
(praat-parselmouth); it is imported only when a count is asked for, so scripts can run without it.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt


def have_parselmouth() -> bool:
    """True when praat-parselmouth can be imported."""
    try:
        import parselmouth  # noqa: F401
    except ImportError:
        return False
    return True


def de_jong_wempe(audio: npt.NDArray[np.float64], fs: int, silence_db: float = -25.0, min_dip_db: float = 2.0,
                  min_pause_s: float = 0.3) -> int:
    """Voiced syllable nuclei in mono ``audio`` (float, 1.0 = full scale) at ``fs`` Hz, by de Jong &
    Wempe (2009) on Praat via parselmouth. ``silence_db``: threshold below the 0.99 intensity
    quantile (dB); ``min_dip_db``: dip needed between two peaks (dB); ``min_pause_s``: seconds."""
    import parselmouth
    from parselmouth.praat import call

    sound = parselmouth.Sound(audio, sampling_frequency=fs)
    intensity = sound.to_intensity(minimum_pitch=50.0, subtract_mean=True)
    min_int = call(intensity, "Get minimum", 0, 0, "Parabolic")
    max_int = call(intensity, "Get maximum", 0, 0, "Parabolic")
    max99 = call(intensity, "Get quantile", 0, 0, 0.99)
    threshold = max(max99 + silence_db, min_int)
    silence_threshold = silence_db - (max_int - max99)
    textgrid = call(intensity, "To TextGrid (silences)", silence_threshold, min_pause_s, 0.1, "silent", "sounding")
    # peaks of the intensity contour, as a sound made from the intensity
    contour = call(call(intensity, "Down to Matrix"), "To Sound (slice)", 1)
    peaks = call(contour, "To PointProcess (extrema)", "Left", "yes", "no", "Sinc70")
    times = [call(peaks, "Get time from index", i + 1) for i in range(call(peaks, "Get number of points"))]
    kept = [(t, v) for t in times if (v := call(contour, "Get value at time", t, "Cubic")) > threshold]
    # a peak counts when the intensity dips more than min_dip_db before the next peak
    valid = []
    if kept:
        cur_t, cur_v = kept[0]
        for p in range(len(kept) - 1):
            nxt_t = kept[p + 1][0]
            dip = call(intensity, "Get minimum", cur_t, nxt_t, "None")
            if abs(cur_v - dip) > min_dip_db:
                valid.append(kept[p][0])
            cur_t = nxt_t
            cur_v = call(contour, "Get value at time", nxt_t, "Cubic")
    pitch = call(sound, "To Pitch (ac)", 0.02, 30, 4, "no", 0.03, 0.25, 0.01, 0.35, 0.25, 450)
    count = 0
    for t in valid:
        interval = call(textgrid, "Get interval at time", 1, t)
        label = call(textgrid, "Get label of interval", 1, interval)
        f0 = call(pitch, "Get value at time", t, "Hertz", "Linear")
        if label == "sounding" and not np.isnan(f0):
            count += 1
    return count
