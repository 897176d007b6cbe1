"""Speech DSP engine of the desk unit: pure numpy (scipy only to resample other input rates) computation on audio arrays.

One module per measure, each naming its standard: :mod:`~device.dsp.p56` (ITU-T P.56 method B
active speech level), :mod:`~device.dsp.vad` (own-voice VAD), :mod:`~device.dsp.syllables`
(syllable nuclei), :mod:`~device.dsp.distance` (mouth-to-mic distance), :mod:`~device.dsp.noise`
(noise floor, clipping); :class:`StreamingAnalyzer` composes them and :func:`calibrate` makes a
:class:`HeadsetCalibration`.
"""

from device.dsp.analyzer import AnalysisTotals, StreamingAnalyzer
from device.dsp.errors import DspError
from device.dsp.ild_calibration import calibrate
from device.dsp.measurement import HOP_S, SAMPLE_RATE_HZ, HeadsetCalibration, Measurement

__all__ = [
    "HOP_S",
    "SAMPLE_RATE_HZ",
    "AnalysisTotals",
    "DspError",
    "HeadsetCalibration",
    "Measurement",
    "StreamingAnalyzer",
    "calibrate",
]
