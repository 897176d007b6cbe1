"""Mouth-to-boom distance (cm) from the boom-to-ear-cup level difference of own voice.

Physics (near field of the mouth as a point source, inverse-distance law): own voice reaches
the boom mic at distance d and the ear-cup mic at r_ear (about 12 cm, fixed by the headset)
behind the head, so the boom-minus-ear-cup level difference is

    ILD(d) = 20 log10(r_ear / d) + S + G    (dB)

with S the head shadow and G the mics' gain mismatch: both unknown, per headset and band, and
both removed by a calibration at a known distance d_cal: ILD(d) = ILD(d_cal) - 20 log10(d / d_cal),
a slope of -20 dB per decade. So d = d_cal * 10^((ILD - ILD_cal) / slope).

Band: the level difference is measured at 100-300 Hz, below the telephone band, where the
customer's voice leaking from the ear speaker into the ear-cup mic (300-3400 Hz, narrowband
telephony) does not reach, where own voice is strong (the fundamental and first harmonics), and
where the head shadow hardly depends on the phoneme. (A band above the telephone band,
3.6-7.6 kHz, was tried: its shadow depends on the spectrum within the band, so the hops that pass
the noise gate changed its median by 1-2 dB between quiet and noisy rooms.) Only hops whose
boom level is well above the band's noise floor count, and the floor's energy is subtracted from
both mics first, so that stationary noise, which gives about 0 dB, does not pull the difference
down. The distance is the median over own-voice hops, per band
(medians from ring buffers live, from histograms over a whole stream), combined as a weighted
geometric mean. Without a calibration there is no distance (None), never a guess.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from device.dsp.features import BAND_INDEX
from device.dsp.measurement import HeadsetCalibration
from device.dsp.noise import FloorTracker, level_db
from device.dsp.ring import Histogram, Ring, median_values

FloatArray = npt.NDArray[np.float64]
BoolArray = npt.NDArray[np.bool_]

DISTANCE_BANDS = ("low",)
"""Bands whose level differences give the distance (see features.BANDS)."""
_IDX = [BAND_INDEX[b] for b in DISTANCE_BANDS]
_SPEECH = BAND_INDEX["speech"]


@dataclass(frozen=True, slots=True)
class DistanceParams:
    """Tuning of :class:`IldTracker` (dB, hops of 10 ms)."""

    boom_snr_db: float = 20.0
    """A band counts in a hop when the boom's band level is this far above its floor..."""
    ear_snr_db: float = 3.0
    """...and the ear cup's this far above its own."""
    live_hops: int = 300
    """Own-voice hops in the live median (3 s)."""
    min_hops: int = 30
    """Fewest usable hops in a band for it to give a distance."""


@dataclass(frozen=True, slots=True)
class IldSummary:
    """Median level differences (dB) of own voice: ``speech`` (100-4000 Hz) and per distance band,
    with the number of hops behind each (None where there were none)."""

    speech_db: float | None
    speech_hops: int
    band_db: tuple[float | None, ...]
    band_hops: tuple[int, ...]


def distance_cm(summary: IldSummary, cal: HeadsetCalibration, min_hops: int = 30) -> float | None:
    """Mouth-to-boom distance (cm) from own-voice level differences through ``cal``; None when no
    band has ``min_hops`` usable hops. Uses the per-band offsets when the calibration has them,
    else the 100-4000 Hz difference and ``cal.ild_offset_db``."""
    slope = cal.ild_slope_db_per_decade
    if slope == 0:
        return None
    logs: list[float] = []
    weights: list[float] = []
    if len(cal.band_offsets_db) == len(DISTANCE_BANDS):
        for med, hops, off in zip(summary.band_db, summary.band_hops, cal.band_offsets_db, strict=True):
            if med is not None and hops >= min_hops:
                logs.append((med - off) / slope)
                weights.append(float(hops))
    elif summary.speech_db is not None and summary.speech_hops >= min_hops:
        logs.append((summary.speech_db - cal.ild_offset_db) / slope)
        weights.append(1.0)
    if not logs:
        return None
    mean_log = sum(lg * w for lg, w in zip(logs, weights, strict=True)) / sum(weights)  # weighted mean
    return float(cal.distance_cm * 10.0 ** mean_log)


class IldTracker:
    """Own-voice level differences, live (last ``live_hops`` own hops) and over the whole stream."""

    def __init__(self, params: DistanceParams | None = None) -> None:
        self.p = params or DistanceParams()
        n = len(DISTANCE_BANDS)
        self._floors = FloorTracker(2 * n)  # boom bands then ear bands
        self._live = Ring(self.p.live_hops, n + 1)  # speech ILD, then band ILDs (NaN: unusable)
        self._hist = [Histogram(-40.0, 60.0, 0.05) for _ in range(n + 1)]
        self._live_summary: IldSummary | None = None  # cache of live(): changes only with own hops

    def process(self, energies: FloatArray, own: BoolArray) -> None:
        """Add the hops of ``energies`` ``(k, 2, bands)``; only ``own`` hops count."""
        lv = level_db(energies[:, :, _IDX].reshape(energies.shape[0], -1))  # (k, boom bands + ear bands)
        n = len(DISTANCE_BANDS)
        floors = self._floors.floor_db
        if own.any():
            sel = lv[own]
            boom, ear = sel[:, :n], sel[:, n:]
            usable = (boom > floors[:n] + self.p.boom_snr_db) & (ear > floors[n:] + self.p.ear_snr_db)
            # subtract the stationary floor's energy from both mics (power spectral subtraction)
            lin = 10.0 ** (sel / 10.0) - 10.0 ** (floors / 10.0)
            clean = level_db(np.maximum(lin, 1e-30))
            band_ild = np.where(usable, clean[:, :n] - clean[:, n:], np.nan)
            e = energies[own]
            speech_ild = level_db(e[:, 0, _SPEECH]) - level_db(e[:, 1, _SPEECH])
            rows = np.column_stack([speech_ild, band_ild])
            self._live.push(rows)
            self._live_summary = None
            for i, h in enumerate(self._hist):
                col = rows[:, i]
                h.add(col[~np.isnan(col)])
        self._floors.update(lv)

    def live(self) -> IldSummary:
        """Medians over the last ``live_hops`` own-voice hops."""
        if self._live_summary is None:
            self._live_summary = self._live_medians()
        return self._live_summary

    def _live_medians(self) -> IldSummary:
        v = self._live.stored()  # medians do not depend on the order
        meds: list[float | None] = []
        counts: list[int] = []
        for i in range(v.shape[1]):
            col = v[:, i]
            col = col[~np.isnan(col)]
            counts.append(int(col.size))
            meds.append(median_values(col) if col.size else None)
        return IldSummary(meds[0], counts[0], tuple(meds[1:]), tuple(counts[1:]))

    def total(self) -> IldSummary:
        """Medians over every own-voice hop of the stream."""
        meds = [h.quantile(0.5) for h in self._hist]
        counts = [h.total for h in self._hist]
        return IldSummary(meds[0], counts[0], tuple(meds[1:]), tuple(counts[1:]))


def ild_at(cal: HeadsetCalibration, d_cm: float) -> float:
    """The 100-4000 Hz level difference (dB) the calibration predicts at ``d_cm``."""
    return cal.ild_offset_db + cal.ild_slope_db_per_decade * math.log10(d_cm / cal.distance_cm)
