"""Per-headset calibration from a two-channel recording of own speech at a known distance.

The boom-minus-ear-cup level difference of own voice at the known distance d_cal (the median
over own-voice hops, 100-4000 Hz and per distance band) fixes the head shadow and gain mismatch
of the headset; :mod:`device.dsp.distance` then maps level differences to distances with the
inverse-distance slope of -20 dB per decade. The reference voice level is the recording's
ITU-T P.56 active speech level (boom channel, dBov).
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

from device.dsp.analyzer import StreamingAnalyzer
from device.dsp.distance import DISTANCE_BANDS
from device.dsp.errors import DspError
from device.dsp.measurement import HeadsetCalibration

MIN_SPEECH_S = 3.0
"""Own speech needed for a calibration (s)."""
MIN_BAND_HOPS = 100
"""Usable own-voice hops a distance band needs to get its own offset (1 s)."""
DISTANCE_RANGE_CM = (0.5, 50.0)


def calibrate(audio: npt.ArrayLike, sample_rate_hz: int, distance_cm: float, *, model: str = "",
              boom_mic_id: str = "", ear_mic_id: str = "", block_s: float = 1.0) -> HeadsetCalibration:
    """Make a :class:`HeadsetCalibration` from ``audio`` (shape ``(n, 2)``: boom, ear cup) of the
    wearer speaking with the boom ``distance_cm`` from the lips.

    Raises :class:`DspError` for mono input, a distance outside 0.5..50 cm, or less than 3 s of
    own speech (the reason is in the message).
    """
    arr = np.asarray(audio)
    if arr.ndim == 1 or (arr.ndim == 2 and arr.shape[1] == 1):
        raise DspError("calibration needs 2 channels (boom and ear-cup mics); the recording is mono")
    if arr.ndim != 2 or arr.shape[1] != 2:
        raise DspError(f"calibration needs audio of shape (n, 2), got {arr.shape}")
    if not DISTANCE_RANGE_CM[0] <= distance_cm <= DISTANCE_RANGE_CM[1]:
        raise DspError(f"distance_cm must be from {DISTANCE_RANGE_CM[0]} to {DISTANCE_RANGE_CM[1]} cm, "
                       f"got {distance_cm}")
    analyzer = StreamingAnalyzer(sample_rate_hz, channels=2)
    step = max(1, int(block_s * sample_rate_hz))
    for i in range(0, arr.shape[0], step):
        analyzer.feed(arr[i: i + step])
    analyzer.flush()
    totals = analyzer.totals()
    ild = analyzer.ild_summary()
    if totals.speech_s < MIN_SPEECH_S or ild is None or ild.speech_db is None:
        raise DspError(f"the recording has {totals.speech_s:.1f} s of own speech; a calibration needs at "
                       f"least {MIN_SPEECH_S:.0f} s (speak close to the boom, in a quiet room)")
    bands: tuple[float, ...] = ()
    if all(m is not None and n >= MIN_BAND_HOPS for m, n in zip(ild.band_db, ild.band_hops, strict=True)):
        bands = tuple(round(float(m), 3) for m in ild.band_db if m is not None)
    assert len(bands) in (0, len(DISTANCE_BANDS))
    return HeadsetCalibration(
        distance_cm=float(distance_cm),
        ild_offset_db=round(float(ild.speech_db), 3),
        ild_slope_db_per_decade=-20.0,
        reference_level_dbov=round(totals.level_dbov, 2) if totals.level_dbov is not None else -26.0,
        boom_mic_id=boom_mic_id,
        ear_mic_id=ear_mic_id,
        model=model,
        band_offsets_db=bands,
    )
