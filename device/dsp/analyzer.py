"""The streaming speech analyser: own-voice VAD, P.56 level, syllable rate, distance, noise, clipping.

One engine serves the live desk agent and the offline analyser, so a recording analysed offline
gives the numbers it gave live. Audio (16 kHz or resampled to it; channel 0 boom, channel 1
ear cup) is cut into ticks of ``emit_interval_s`` (whole 10 ms hops); each tick's hops are
measured in bulk with numpy, then the tick's decisions are made and one :class:`Measurement`
is emitted. Every result depends only on the samples, never on how they were split into
blocks, and all state is bounded (ring buffers and histograms). A DC offset is removed first
(:mod:`device.dsp.dc_offset`); clipping is judged on the samples as they came.

Measures and their standards: :mod:`device.dsp.p56` (ITU-T P.56 method B), :mod:`device.dsp.vad`
(two-mic level-difference VAD; mono with :mod:`device.dsp.periodicity` and the speech model of
:mod:`device.dsp.speech_model`, Silero VAD), :mod:`device.dsp.syllables` (de Jong & Wempe 2009, improved),
:mod:`device.dsp.distance` (inverse-distance law with calibration), :mod:`device.dsp.noise`, and
with ``intonation`` on, :mod:`device.dsp.pitch` (YIN, de Cheveigné & Kawahara 2002) and
:mod:`device.dsp.intonation` (F0 spread in semitones over own speech, the monotone decision).

The intonation path feeds the pitch tracker the boom channel tick by tick and analyses only the hops
the own-voice VAD marked: the intonation meter ignores every other hop, so skipping them changes no
result and saves the F0 of the listening time. Hops are released to the meter at the tick a
tick-by-tick feed releases them, so its live values too are independent of the block size.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Sequence
from dataclasses import dataclass, replace

import numpy as np
import numpy.typing as npt

from device.dsp.dc_offset import DcOffsetRemover
from device.dsp.distance import IldSummary, IldTracker, distance_cm
from device.dsp.errors import DspError
from device.dsp.features import BandEnergies
from device.dsp.frames import SampleQueue, to_float_frames
from device.dsp.hum import HumRemover
from device.dsp.intonation import IntonationMeter, IntonationParams, PitchSpread
from device.dsp.measurement import HOP_S, SAMPLE_RATE_HZ, HeadsetCalibration, Measurement
from device.dsp.noise import CLIP_THRESHOLD, NoiseMeter, level_db
from device.dsp.p56 import N_THRESHOLDS, P56Meter, active_level
from device.dsp.periodicity import HopPeriodicity
from device.dsp.pitch import PitchTrack, PitchTracker
from device.dsp.resample import StreamingResampler
from device.dsp.ring import Ring
from device.dsp.speech_model import SpeechModel, SpeechProbability
from device.dsp.syllables import SyllableNucleusDetector
from device.dsp.vad import OwnVoiceVad, SpeechSegments

FloatArray = npt.NDArray[np.float64]

HOP = round(HOP_S * SAMPLE_RATE_HZ)
"""Samples per hop at the internal rate (160)."""
LEVEL_WINDOW_HOPS = 300
"""Live level: P.56 over the last 3 s of own speech."""
LEVEL_MIN_HOPS = 50
"""Live level: at least 0.5 s of own speech before a level is given."""
RATE_WINDOW_HOPS = 1000
"""Live rate: the last 10 s of speech."""
RATE_MIN_HOPS = 200
"""Live rate: at least 2 s of speech before a rate is given."""
TOTAL_RATE_MIN_S = 2.0
"""Whole stream: at least 2 s of speech before a rate is given (as for the live rate): a second or
two of speech holds a handful of syllables, whose rate is a guess (a 1.8 s cut from the middle of a
podcast gave 326 syllables/min from 7 nuclei in 1.3 s of speech)."""
NUCLEUS_VAD_HOPS = 3
"""A syllable nucleus counts when own voice is active within +-3 hops (30 ms) of it."""
NUCLEUS_MODEL_HOPS = (15, 20)
"""Mono with a speech model: a nucleus counts only when the model's probability reaches
:data:`NUCLEUS_SPEECH_PROBABILITY` somewhere from this many hops before it to this many after (0.15 s,
0.2 s: the model's probability comes up to 32 ms late, and rises over a word's first chunks)..."""
NUCLEUS_SPEECH_PROBABILITY = 0.1
"""...so that the note onsets of music between words (a music bed under speech, hold music before and
after it) are not syllables, while speech keeps its nuclei: of 1528 nuclei of the dev set clean, in two
simulated rooms (1 and 1.5 m) and in pink noise at 5 dB, 1 falls under 0.1 (3 under 0.2); of the
nuclei that a music bed 10-15 dB under the real clips of tests/data adds, 63-100 % do (75 % of them in
all, over four pieces; the detector alone, before the VAD)."""
DECISION_HOPS = 10
"""The own-voice VAD decides at most this many hops at a time, cut at every multiple of it in the
stream: its statistics (floor, gate, modulation, far-field ILD) move between those calls, so this, not
the emit interval, fixes its decisions. 10 hops are the live agent's 0.1 s tick; an emit interval of
a multiple of 0.1 s (the offline analyser's 1 s) or of 0.01, 0.02 or 0.05 s gives the same flags."""
_FLAG_RING = 512
"""Hops of own-voice flags kept for checking late syllable nuclei (5.12 s)."""
_PITCH_GROUP_HOPS = 256
"""Hops of ticks whose pitch is analysed in one batch (their own-voice flags must still be in the
flag ring, with the tracker's few hops of latency)."""


@dataclass(frozen=True, slots=True)
class AnalysisTotals:
    """Whole-stream figures so far.

    ``duration_s``, ``speech_s``: seconds (speech counts gaps < 0.3 s inside utterances);
    ``syllables``: nuclei in own speech; ``rate_spm``: syllables per minute of ``speech_s`` (None
    under :data:`TOTAL_RATE_MIN_S` of speech);
    ``level_dbov``/``activity``: P.56 method B over the whole boom channel (dBov, 0..1);
    ``noise_dbov``: floor between utterances; ``clipping``: share of boom samples at full scale;
    ``distance_cm``: from the median level difference over own-voice hops (None for mono or
    uncalibrated input); ``ild_db``: that median, 100-4000 Hz (None for mono).
    """

    duration_s: float
    speech_s: float
    syllables: int
    rate_spm: float | None
    level_dbov: float | None
    activity: float
    noise_dbov: float | None
    clipping: float
    distance_cm: float | None
    ild_db: float | None = None
    intonation_st: float | None = None
    """F0 spread (10th-90th percentile, semitones) over all own speech; None: intonation off or
    too little voiced speech."""
    intonation_sd_st: float | None = None
    """Standard deviation of the same semitones."""
    f0_median_hz: float | None = None
    """Median F0 of own voiced speech, Hz."""
    monotone_s: float | None = None
    """Own speech (s) decided while the monotone decision was set; None: intonation off."""
    not_speech_s: float = 0.0
    """Mono: seconds of sound that opened the VAD's gate and passed its level, spectrum, modulation and
    voice tests, but that the speech model did not call speech (music and the like): left out of
    ``speech_s``."""


class StreamingAnalyzer:
    """Streaming speech measures for a headset (see the module docstring).

    ``sample_rate_hz``: input rate (resampled to 16 kHz); ``channels``: 1 (boom only) or 2 (boom,
    ear cup); ``calibration``: the headset's, for distance; ``emit_interval_s``: measurements come
    at least this often (0.01 .. 1 s, rounded down to whole 10 ms hops); ``intonation``: True or
    :class:`~device.dsp.intonation.IntonationParams` to measure the F0 spread of own speech and decide
    monotone stretches (off by default: it costs the F0 of every own-speech hop); ``remove_dc``: remove a
    DC offset before every measure (:mod:`device.dsp.dc_offset`; off only to measure what it does);
    ``remove_hum``: notch out mains hum found on the boom, on every channel, after it (:mod:`device.dsp.hum`;
    off by default: its notches load scipy, about 65 MB, over the desk agent's memory budget; offline
    analysis turns it on);
    ``speech_model``: mono only, the VAD also asks this model (:mod:`device.dsp.speech_model`; the
    shipped one is ``device.silero_model.load()``) whether the sound is speech at all (music is not);
    None: the VAD goes without it. ``speech_model_gain_db``: the model hears the boom raised by this much
    (dB; :func:`device.dsp.speech_model.model_gain_db` of a quiet recording's level), the other measures
    as it is.
    """

    def __init__(self, sample_rate_hz: int = 16000, channels: int = 2,
                 calibration: HeadsetCalibration | None = None, emit_interval_s: float = 0.1,
                 intonation: bool | IntonationParams = False, remove_dc: bool = True, remove_hum: bool = False,
                 speech_model: SpeechModel | None = None, speech_model_gain_db: float = 0.0) -> None:
        if channels not in (1, 2):
            raise DspError(f"channels must be 1 (boom) or 2 (boom, ear cup), got {channels}")
        if not isinstance(sample_rate_hz, int | np.integer) or sample_rate_hz <= 0:
            raise DspError(f"sample_rate_hz must be a positive integer, got {sample_rate_hz!r}")
        if not HOP_S <= emit_interval_s <= 1.0:
            raise DspError(f"emit_interval_s must be from {HOP_S} to 1.0 s, got {emit_interval_s}")
        self.sample_rate_hz = int(sample_rate_hz)
        self.channels = channels
        self.calibration = calibration
        self.tick_hops = max(1, int(math.floor(emit_interval_s / HOP_S + 1e-9)))
        self._resampler = (StreamingResampler(self.sample_rate_hz, SAMPLE_RATE_HZ, channels)
                           if self.sample_rate_hz != SAMPLE_RATE_HZ else None)
        self._queue = SampleQueue(channels, self.tick_hops * HOP)
        self._dc = DcOffsetRemover(channels, HOP) if remove_dc else None
        self._hum = HumRemover(channels, SAMPLE_RATE_HZ) if remove_hum else None
        self._p56 = P56Meter(SAMPLE_RATE_HZ, HOP)
        self._bands = BandEnergies(SAMPLE_RATE_HZ, HOP, channels)
        self._periodicity = HopPeriodicity(SAMPLE_RATE_HZ, HOP) if channels == 1 else None
        self._speech = (SpeechProbability(HOP, speech_model, gain_db=speech_model_gain_db)
                        if channels == 1 and speech_model is not None else None)
        self._vad = OwnVoiceVad(channels, reference_level_db=calibration.reference_level_dbov
                                if calibration is not None else None)
        self._segments = SpeechSegments(self._vad.p.max_gap_hops)
        self._ild = IldTracker() if channels == 2 else None
        self._noise = NoiseMeter()
        self._syl = SyllableNucleusDetector(SAMPLE_RATE_HZ)
        delay_s = max(self._syl.MAX_DELAY_S, self._syl.first_decision_s)
        # (nuclei also wait for the VAD's warm-up hops to be released, up to warmup_hops)
        self._nucleus_wait = NUCLEUS_VAD_HOPS if self._speech is None else max(NUCLEUS_VAD_HOPS, NUCLEUS_MODEL_HOPS[1])
        if delay_s / HOP_S + self._nucleus_wait + self.tick_hops + self._vad.p.warmup_hops >= _FLAG_RING:
            raise DspError("the syllable detector's delay exceeds the own-voice flag memory")
        self._flags = np.zeros(_FLAG_RING, dtype=np.bool_)  # own-voice flag of hop h at h % _FLAG_RING
        self._probs = np.zeros(_FLAG_RING)  # mono with a speech model: its probability of hop h, the same way
        # the VAD's warm-up hops released for the nuclei (once a stream, at most VadParams.warmup_hops)
        self._released = np.zeros(0, dtype=np.int64)
        self._pending: list[float] = []  # nucleus times waiting for their VAD context
        # the detector is fed a whole block at once; its nuclei wait here (frame indices) until the
        # tick at which a detector fed tick by tick would have decided them
        self._syl_clock = self._syl.decision_clock()
        self._syl_ahead = np.zeros(0, dtype=np.int64)
        self._level_ring = Ring(LEVEL_WINDOW_HOPS, 2 + N_THRESHOLDS)  # own hops: sq, n, a_j
        self._speech_ring = Ring(RATE_WINDOW_HOPS)  # global hop index of each speech hop
        self._nucleus_ring = Ring(RATE_WINDOW_HOPS)  # global hop index of each counted nucleus
        self._level: float | None = None  # live level (dBov): changes only when own hops come in
        # whole-stream sums
        self._n_in = 0  # input samples fed (input rate)
        self._hops = 0  # hops processed
        self._samples = 0  # internal-rate samples processed (real ones)
        self._speech_hops = 0
        self._syllables = 0
        self._clipped = 0
        self._sq = 0.0
        self._active = np.zeros(N_THRESHOLDS, dtype=np.int64)
        self._flushed = False
        # intonation: F0 of own-voice hops only (the flags ring says which), the meter fed per tick
        self._pitch: PitchTracker | None = None
        self._intonation: IntonationMeter | None = None
        if intonation is not False:
            params = intonation if isinstance(intonation, IntonationParams) else None
            self._intonation = IntonationMeter(params)
            self._pitch = PitchTracker(SAMPLE_RATE_HZ, select=self._own_hops)

    # -- public interface ------------------------------------------------------------------

    @property
    def stream_s(self) -> float:
        """Seconds of audio fed so far."""
        return self._n_in / self.sample_rate_hz

    def feed(self, block: npt.ArrayLike) -> list[Measurement]:
        """Add a block: shape ``(n,)`` or ``(n, channels)``; float32/float64 in [-1, 1] or int16.

        Returns the measurements completed by this block, one per ``emit_interval_s`` of stream.
        """
        if self._flushed:
            raise DspError("feed() after flush(): make a new StreamingAnalyzer for a new stream")
        if self.channels == 2 and np.asarray(block).ndim == 1:
            raise DspError("a 1-D (mono) block was fed to a 2-channel analyser; use channels=1 for mono")
        x = to_float_frames(block, self.channels)
        self._n_in += x.shape[0]
        if self._resampler is not None:
            x = self._resampler.process(x)
        self._queue.push(x)
        return self._run(self._queue.take())

    def flush(self) -> list[Measurement]:
        """End of stream: measure what is left (the last partial tick) and decide late nuclei."""
        if self._flushed:
            return []
        if self._resampler is not None:
            self._queue.push(self._resampler.flush())
        out = self._run(self._queue.take_rest(pad_to_chunk=False), final=True)
        self._flushed = True
        if self._pitch is not None:
            self._feed_meter(self._pitch.flush())
        nuclei = np.concatenate([self._syl_ahead, self._syl.flush_frames()])
        self._syl_ahead = nuclei[:0]
        self._pending.extend(self._syl.frame_times(nuclei).tolist())
        self._resolve_nuclei(final=True)
        return out

    def totals(self) -> AnalysisTotals:
        """Whole-stream figures so far (see :class:`AnalysisTotals`)."""
        speech_s = self._speech_hops * HOP_S
        p56 = active_level(self._sq, self._samples, self._active)
        ild = self._ild.total() if self._ild is not None else None
        pitch = self._intonation.totals() if self._intonation is not None else None
        return AnalysisTotals(
            duration_s=self.stream_s,
            speech_s=speech_s,
            syllables=self._syllables,
            rate_spm=self._syllables / speech_s * 60.0 if speech_s >= TOTAL_RATE_MIN_S else None,
            level_dbov=p56.level_dbov if p56 else None,
            activity=p56.activity if p56 else 0.0,
            noise_dbov=self._noise.total_dbov(),
            clipping=self._clipped / self._samples if self._samples else 0.0,
            distance_cm=self._distance(ild),
            ild_db=ild.speech_db if ild is not None else None,
            intonation_st=pitch.range_st if pitch is not None else None,
            intonation_sd_st=pitch.sd_st if pitch is not None else None,
            f0_median_hz=pitch.median_hz if pitch is not None else None,
            monotone_s=self._intonation.monotone_s if self._intonation is not None else None,
            not_speech_s=self._vad.not_speech_hops * HOP_S,
        )

    @property
    def intonation(self) -> bool:
        """True when the intonation path is on."""
        return self._intonation is not None

    def ild_summary(self) -> IldSummary | None:
        """Whole-stream own-voice level differences (None for mono): what a calibration needs."""
        return self._ild.total() if self._ild is not None else None

    # -- engine ------------------------------------------------------------------------------

    def _own_hops(self, hops: npt.NDArray[np.int64]) -> npt.NDArray[np.bool_]:
        """The own-voice flags of ``hops`` (global indices, all within the flag memory): the pitch
        tracker's selection."""
        flags: npt.NDArray[np.bool_] = self._flags[hops % _FLAG_RING]
        return flags

    def _feed_meter(self, track: PitchTrack, ends: Sequence[int] = ()) -> tuple[
            list[tuple[PitchSpread | None, bool]], npt.NDArray[np.bool_]]:
        """Feed the intonation meter the hops the tracker decided, with their own-voice flags; returns
        the meter's state at each of ``ends`` (hop counts into ``track``) and which hops are voiced
        own speech."""
        assert self._intonation is not None
        own = self._own_hops(track.first_hop + np.arange(track.f0_hz.size, dtype=np.int64))
        states = self._intonation.feed_marked(track.f0_hz, own, ends)
        return states, own & np.isfinite(track.f0_hz)

    def _distance(self, ild: IldSummary | None) -> float | None:
        if ild is None or self.calibration is None:
            return None
        return distance_cm(ild, self.calibration)

    def _run(self, x: FloatArray, final: bool = False) -> list[Measurement]:
        """Measure ``x``: whole ticks, or at the end of the stream (``final``) whatever is left."""
        n = x.shape[0]
        if n == 0:
            return []
        valid = n
        clip = np.abs(x[:, 0]) >= CLIP_THRESHOLD  # of the samples as they came, offset and all
        if self._dc is not None:
            x = self._dc.process(x)
        if self._hum is not None:
            x = self._hum.process(x)
        if final and n % HOP:
            x = np.concatenate([x, np.zeros((HOP - n % HOP, self.channels))])
        hops = x.shape[0] // HOP
        boom = x[:, 0]
        p56 = self._p56.process(boom, valid=valid)
        energies = self._bands.process(x)
        # mono: the boom's periodicity, so that the VAD can tell a voice from noise rising and falling like one
        period = self._periodicity.process(boom) if self._periodicity is not None else None
        # mono: the speech model's probability, so that the VAD can tell speech from music
        prob = self._speech.process(boom) if self._speech is not None else None
        clip_per_hop = np.bincount(np.flatnonzero(clip) // HOP, minlength=hops)
        self._sq += float(p56.sq.sum())
        self._active += p56.active.sum(axis=0)
        self._syl_ahead = np.concatenate([self._syl_ahead, self._syl.feed_frames(boom[:valid])])
        ticks: list[tuple[int, int, int]] = []  # start hop, stop hop, end sample
        for start in range(0, hops, self.tick_hops):
            stop = min(hops, start + self.tick_hops)
            ticks.append((start, stop, min(valid, stop * HOP)))
        out: list[Measurement] = []
        group = max(1, _PITCH_GROUP_HOPS // self.tick_hops)
        for g in range(0, len(ticks), group):
            part = ticks[g: g + group]
            measured = [self._tick(boom[start * HOP: end_sample], energies[start:stop], p56.sq[start:stop],
                                   p56.n[start:stop], p56.active[start:stop], clip_per_hop[start:stop],
                                   None if period is None else period[start:stop],
                                   None if prob is None else prob[start:stop])
                        for start, stop, end_sample in part]
            if self._pitch is not None and self._intonation is not None:
                measured = self._intonation_ticks(boom, part, measured)
            out += measured
        return out

    def _intonation_ticks(self, boom: FloatArray, ticks: list[tuple[int, int, int]],
                          measured: list[Measurement]) -> list[Measurement]:
        """The intonation fields of a group of ticks (start hop, stop hop, end sample in ``boom``),
        whose own-voice flags are set: the pitch tracker analyses the group's hops in one batch, and
        the meter notes its state where each tick ends, at the hops a tick-by-tick feed would have
        completed by then (the same F0s, bit for bit, and the same decisions)."""
        assert self._pitch is not None and self._intonation is not None
        a = ticks[0][0] * HOP
        fed = self._pitch.fed_samples
        track = self._pitch.feed(boom[a: ticks[-1][2]])
        ends = [self._pitch.hops_completed(fed + end_sample - a) - track.first_hop for _, _, end_sample in ticks]
        states, voiced = self._feed_meter(track, ends)
        out: list[Measurement] = []
        start = 0
        for m, end, (spread, monotone) in zip(measured, ends, states, strict=True):
            f0 = tuple(track.f0_hz[start:end][voiced[start:end]].tolist())
            start = end
            out.append(replace(m, intonation_st=spread.range_st if spread is not None else None,
                               monotone=monotone, f0_hz=f0))
        return out

    def _tick(self, boom: FloatArray, energies: FloatArray, sq: FloatArray, n: npt.NDArray[np.int64],
              active: npt.NDArray[np.int64], clipped: npt.NDArray[np.int64],
              period: FloatArray | None, prob: FloatArray | None) -> Measurement:
        k = energies.shape[0]
        h0 = self._hops
        own = self._decide(h0, energies, period, prob)
        slots = (h0 + np.arange(k)) % _FLAG_RING
        self._flags[slots] = own
        if prob is not None:
            self._probs[slots] = prob
        late = self._vad.take_released()
        if late.size:  # the warm-up's own hops: for the nuclei alone (speech time, level and pitch have had them)
            self._released = np.concatenate([self._released, late])
        self._hops += k
        self._samples += int(n.sum())
        # speech time (own hops and bridged gaps) and the live windows
        confirmed = self._segments.update(h0, own)
        self._speech_hops += int(confirmed.size)
        self._speech_ring.push(confirmed.astype(np.float64))
        if own.any():
            self._level_ring.push(np.column_stack([sq[own], n[own], active[own]]))
            self._level = self._live_level()
        if self._ild is not None:
            self._ild.process(energies, own)
        self._noise.add(level_db(sq[~own] / np.maximum(n[~own], 1)))
        clips = int(clipped.sum())
        self._clipped += clips
        # syllable nuclei of the boom channel (decided by now), kept where own voice is active
        through = self._syl_clock.advance(boom.shape[0])
        if self._syl_ahead.size and self._syl_ahead[0] <= through:
            cut = int(np.searchsorted(self._syl_ahead, through, side="right"))
            self._pending.extend(self._syl.frame_times(self._syl_ahead[:cut]).tolist())
            self._syl_ahead = self._syl_ahead[cut:]
        self._resolve_nuclei(final=False)
        live_ild = self._ild.live() if self._ild is not None else None
        return Measurement(
            t_s=self._hops * HOP_S,
            speaking=self._segments.speaking(self._hops - 1),
            speech_s=confirmed.size * HOP_S,
            level_dbov=self._level,
            rate_spm=self._live_rate(),
            distance_cm=self._distance(live_ild),
            noise_dbov=self._noise.live_dbov(),
            clipping=clips / max(1, int(n.sum())),
            ild_db=live_ild.speech_db if live_ild is not None else None,
        )

    def _decide(self, h0: int, energies: FloatArray, period: FloatArray | None,
                prob: FloatArray | None) -> npt.NDArray[np.bool_]:
        """The VAD's own-voice flags of the hops from ``h0``, decided :data:`DECISION_HOPS` at a time
        (cut at every multiple of it in the stream), whatever the tick: the live agent's decisions.
        ``period``, ``prob``: the boom's periodicity and speech probability of the same hops (mono), or None."""
        k = energies.shape[0]
        first = h0 - h0 % DECISION_HOPS + DECISION_HOPS  # the first cut after h0
        if first >= h0 + k:
            return self._vad.process(energies, period, prob)
        cuts = [0, *range(first - h0, k, DECISION_HOPS), k]
        return np.concatenate([self._vad.process(energies[a:b], None if period is None else period[a:b],
                                                 None if prob is None else prob[a:b])
                               for a, b in itertools.pairwise(cuts) if b > a])

    def _resolve_nuclei(self, final: bool) -> None:
        keep: list[float] = []
        # nuclei wait for their VAD context: the hops after them, and the VAD's warm-up hops still held
        held = self._vad.held_since
        wait_from = self._hops if held is None else min(self._hops, held)
        released = self._released
        for t in self._pending:
            h = int(t / HOP_S)
            if h + self._nucleus_wait >= wait_from and not final:
                keep.append(t)
                continue
            lo = max(0, h - NUCLEUS_VAD_HOPS, self._hops - _FLAG_RING)
            hi = min(self._hops, h + NUCLEUS_VAD_HOPS + 1)
            if hi > lo and (self._flags[np.arange(lo, hi) % _FLAG_RING].any()
                            or (released.size > 0 and bool(((released >= lo) & (released < hi)).any()))):
                if self._speech is not None:  # and speech to the model around it (not a note of music)
                    m_lo = max(0, h - NUCLEUS_MODEL_HOPS[0], self._hops - _FLAG_RING)
                    m_hi = min(self._hops, h + NUCLEUS_MODEL_HOPS[1] + 1)
                    if m_hi <= m_lo or self._probs[np.arange(m_lo, m_hi) % _FLAG_RING].max() < NUCLEUS_SPEECH_PROBABILITY:
                        continue
                self._syllables += 1
                self._nucleus_ring.push([float(h)])
        self._pending = keep

    def _live_level(self) -> float | None:
        if len(self._level_ring) < LEVEL_MIN_HOPS:
            return None
        s = self._level_ring.values().sum(axis=0)
        res = active_level(float(s[0]), int(s[1]), s[2:])
        return res.level_dbov if res else None

    def _live_rate(self) -> float | None:
        n = len(self._speech_ring)
        if n < RATE_MIN_HOPS:
            return None
        first = float(self._speech_ring.oldest()[0])
        nuclei = self._nucleus_ring.values()[:, 0]
        count = int(np.count_nonzero(nuclei >= first))
        return count / (n * HOP_S) * 60.0
