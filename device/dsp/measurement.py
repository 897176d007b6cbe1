"""Value types produced by the streaming speech analyser (the interface of ``device.dsp``).

Units: seconds (``_s``), dBov (``_dbov``; ITU-T P.56, full-scale square wave = 0 dBov),
syllables per minute of own speech (``_spm``), centimetres (``_cm``), dB (``_db``).
"""

from __future__ import annotations

from dataclasses import dataclass

SAMPLE_RATE_HZ = 16_000
"""Internal processing rate; other input rates are resampled."""
HOP_S = 0.010
"""Analysis hop: 10 ms."""


@dataclass(frozen=True, slots=True)
class HeadsetCalibration:
    """Per-headset calibration made at a known mouth-to-boom distance.

    ``ild_offset_db``: boom-minus-ear-cup level difference (dB) of own voice at ``distance_cm``.
    ``ild_slope_db_per_decade``: change of that difference per decade of distance (negative: the
    difference shrinks as the mic moves away). ``reference_level_dbov``: the agent's voice level
    (P.56, boom) during calibration, the centre of the default volume band.
    """

    distance_cm: float = 5.0
    ild_offset_db: float = 0.0
    ild_slope_db_per_decade: float = -20.0
    reference_level_dbov: float = -26.0
    boom_mic_id: str = ""
    ear_mic_id: str = ""
    model: str = ""
    band_offsets_db: tuple[float, ...] = ()
    """Own-voice level differences (dB) at ``distance_cm`` in the distance bands of
    ``device.dsp.distance.DISTANCE_BANDS`` (100-300 Hz), outside the telephone band where far-end
    leakage into the ear cup sits. Empty: only ``ild_offset_db`` (100-4000 Hz) is used."""


@dataclass(frozen=True, slots=True)
class Measurement:
    """One output of :class:`device.dsp.StreamingAnalyzer`, emitted at least every 100 ms.

    Values are ``None`` when they are not measured (no speech in the window yet, mono input or
    no calibration for distance), never a guess.
    """

    t_s: float
    """Stream time at the end of the measured block, seconds from the stream start."""
    speaking: bool
    """Own voice active at the end of the block."""
    speech_s: float
    """Seconds of own speech since the previous measurement."""
    level_dbov: float | None
    """Active speech level (P.56 method B, boom channel) over the last ~3 s of own speech."""
    rate_spm: float | None
    """Syllable nuclei per minute over the last ~10 s of own speech."""
    distance_cm: float | None
    """Mouth-to-boom distance over recent own-voice frames; None for mono or uncalibrated input."""
    noise_dbov: float | None
    """Noise floor between utterances (boom channel)."""
    clipping: float
    """Fraction of samples at full scale since the previous measurement, 0..1."""
    ild_db: float | None = None
    """Boom-minus-ear-cup level difference of recent own-voice frames (dB); None for mono."""
    intonation_st: float | None = None
    """F0 spread (10th-90th percentile, semitones) over the last ~10 s of own speech
    (:mod:`device.dsp.intonation`); None when intonation is off or too little speech was voiced."""
    monotone: bool | None = None
    """The intonation meter's monotone decision; None when intonation is off."""
    f0_hz: tuple[float, ...] = ()
    """F0 (Hz) of the voiced own-speech hops the pitch tracker decided during this measurement (at
    most a tick's worth, about 26 ms behind it): for spreads over stretches such as a call. Stays on
    the desk, like every sample-level value."""
