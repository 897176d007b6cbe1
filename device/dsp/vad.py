"""Own-voice voice activity detection (VAD) for a two-microphone headset, per 10 ms hop.

Two channels (channel 0 boom mic near the mouth, channel 1 outward-facing ear-cup mic about
12 cm from the mouth behind the head shadow): the agent's own voice reaches the boom much
louder than the ear cup (near field, 1/r: about +5 to +15 dB), while neighbours one or two
metres away reach both mics at almost the same level (far field: about 0 dB, plus the mics' gain
mismatch). A hop is own speech when the boom's 100-4000 Hz level is well above its noise floor
*and* its boom-minus-ear-cup level difference (ILD) is well above that of far-field sound (learned
from weak hops, below the speech gate), or somewhat above it while the hop is as loud as the
wearer's recent own speech (a boom moved away from the mouth; "somewhat" is at least the far-field
ILDs' own spread, so that a crowd of neighbours as loud as the wearer's softer speech does not pass on
its ILD's wander) (dual-microphone level-difference VAD in
the manner of Jeub, M. et al. (2011), "Noise reduction for dual-microphone mobile phones
exploiting power level differences", ICASSP).

Mono: the level above the noise floor, a speech spectrum (most energy in 100-4000 Hz, not
rumble or hiss), a voice in it (a pitch in a share of the louder gate-opening hops, from
:mod:`device.dsp.periodicity`: noise rising and falling like syllables, or keyboard clicks, has none)
and speech to a neural speech detector (a share of the same hops that Silero VAD, in
:mod:`device.dsp.speech_model`, calls speech: music, loud, modulated and full of pitches, passes every
test above and not this one; the model decides whether the sound is speech, the energy gate still
decides where; and once the model hears the talker clearly, at least half of those hops, a hop is
speech only where the model calls it speech), which cannot tell a neighbour's voice from the agent's by
its spectrum. It can by its level: the boom is 5 cm from the wearer's lips and a metre or more from
anyone else, so a neighbour is far under the wearer. A hop more than 18 dB under the speech level (the 95th percentile below) counts
only within 0.5 s after an own hop that is not: the wearer's soft stretches (word tails, unstressed
syllables, consonants) lie between loud ones, while 8 neighbours 20 dB under the wearer had gone on
opening the gate through the wearer's pauses (+27 % of speech time in the ``pauses`` row of
``bench/accuracy.py``). A hysteresis in level and time, as energy endpointers use for the ends of an
utterance (Lamel et al. 1981, below). Neighbours 10 dB or less under the wearer reach within 18 dB of
the speech level and pass that rule; in the wearer's pauses the model calls two thirds of their hops
at 10 dB SNR (a third to a half at 5 dB) not speech, and those go. Only the two channels tell the rest
apart.

The gate adapts to the room: it is a share of the spread between the noise floor (5th percentile of
the last 10 s of hop levels) and the speech level (95th percentile), between ``min_gate_db`` and
``gate_db``, so that speech at about 5 dB SNR still opens it (in the manner of the adaptive
thresholds of energy VADs that track both the noise and the speech level, e.g. ITU-T G.729 Annex B
and Sohn, J., Kim, N. S. & Sung, W. (1999), "A statistical model-based voice activity detection",
IEEE Signal Process. Lett. 6(1), 1-3, which track noise statistics instead of a fixed gate).
A fixed gate over the floor threw away most speech at 5-10 dB SNR. While the floor is steady (its
ripple, the 20th minus the 5th percentile of those levels, under 2 dB: stationary noise, not babble,
whose ripple is 2.5-4.5 dB at 5 dB SNR) the share is smaller, 0.18 instead of 0.25: no peak of such
noise reaches it, and the soft onsets and endings of speech under the higher gate are kept.

Speech is modulated: the syllables make its level rise and fall by 10 dB or more several times a
second (the 4 Hz modulation of speech: Houtgast, T. & Steeneken, H. J. M. (1985), "A review of the
MTF concept in room acoustics and its use for estimating speech intelligibility in auditoria",
JASA 77(3), 1069-1077). Tones, beeps, hum and stationary noise are not: their level above the gate
is steady. So a hop is speech only while the spread (90th minus 10th percentile) of the levels of
the last ``modulation_hops`` hops that opened the gate is at least ``min_modulation_db``.

In a noisy room (the floor-to-speech spread under 30 dB, where the gate sits a few dB over the floor)
the noise's own level fluctuations open the gate now and then: pink noise at 5 dB SNR puts one hop in
ten over a 3 dB gate, mostly one at a time, and in the pauses between utterances those lone hops,
bridged, had turned 1-2 s pauses into speech (+14 to +22 % of speech time, mono and two-channel). So
there the first own hop of a run (the hop before it was not own) counts only within 0.15 s of the last
own hop: a lone hop far from speech is dropped, a run of two or more counts from its second hop (a
minimum-duration rule of energy endpointers, as in Lamel, L. F., Rabiner, L. R., Rosenberg, A. E. &
Wilpon, J. G. (1981), "An improved endpoint detector for isolated word recognition", IEEE Trans. ASSP
29(4), 777-785).

Segments: gaps shorter than 0.3 s between own-speech hops are bridged and count as speech.
Units: dB, hops of 10 ms.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from device.dsp.features import BAND_INDEX
from device.dsp.noise import FloorTracker, level_db
from device.dsp.ring import Ring, median_and_percentiles, percentiles_rows

FloatArray = npt.NDArray[np.float64]
BoolArray = npt.NDArray[np.bool_]
IntArray = npt.NDArray[np.int64]

_SPEECH = BAND_INDEX["speech"]
_TOTAL = BAND_INDEX["total"]


@dataclass(frozen=True, slots=True)
class VadParams:
    """Tuning of :class:`OwnVoiceVad` (dB unless stated)."""

    gate_db: float = 12.0
    """Boom speech-band level above its noise floor for a hop to count as speech (clean rooms)..."""
    min_gate_db: float = 3.0
    """...never less than this, in a noisy room..."""
    gate_share: float = 0.25
    """...and this share of the spread between the floor and the speech level in between..."""
    steady_gate_share: float = 0.18
    """...or this share while the floor is steady, its ripple (20th minus 5th percentile of the same
    hop levels) under ``steady_ripple_db``: stationary noise (0.5-2 dB at 5 dB SNR, against 2.5-4.5 dB
    for babble), where the soft edges of speech are lost under the higher gate and no noise peak
    reaches it."""
    steady_ripple_db: float = 2.0
    """Ripple (dB) under which the floor counts as steady."""
    steady_min_hops: int = 100
    """Hops (1 s) of levels needed before the ripple is judged."""
    speech_percentile: float = 95.0
    """Percentile of the last 10 s of boom levels taken as the speech level."""
    min_modulation_db: float = 5.0
    """Spread (90th - 10th percentile, dB) of recent gate-opening levels below which the sound is
    steady (tone, hum, stationary noise), not speech."""
    modulation_hops: int = 100
    """Recent gate-opening hops whose levels show the modulation (1 s of sound)."""
    min_modulation_hops: int = 10
    """Gate-opening hops needed before modulation is judged (0.1 s of sound); until then nothing is
    speech. With 5, the spread of a quiet stream's first hops was one click's (timit's lead-in near
    -85 dBov, with a click at -71 dBov, opened the 3 dB gate of a young stream once no DC offset held
    the speech share down)."""
    ild_margin_db: float = 4.0
    """Own voice: ILD at least this far above the far-field ILD."""
    ild_margin_loud_db: float = 1.0
    """Own voice also when the ILD is this far above the far-field ILD (or, if more, the far-field ILDs'
    own spread: their ``far_spread_percentile`` minus their median) and the hop is loud..."""
    loud_db: float = 14.0
    """...within this of the wearer's voice level: the calibration's reference level, else the loud
    part (90th percentile) of the wearer's clearly-own hops, once there are ``min_own_hops``."""
    clear_margin_db: float = 7.0
    """Hops this far above the far-field ILD are clearly own: they teach the wearer's level."""
    min_own_hops: int = 100
    own_window_hops: int = 1000
    """Own-speech hops remembered for the wearer's level (10 s)."""
    far_ild_limit_db: float = 3.0
    """The learned far-field ILD is kept within +-this: a mic gain mismatch (in a quiet room the weak
    hops are the tails of own speech, whose ILD is not far-field)."""
    far_spread_percentile: float = 90.0
    """Percentile of the far-field ILDs whose distance over their median is their spread..."""
    far_spread_min_hops: int = 50
    """...once this many are stored."""
    far_window_hops: int = 1500
    """Hops of far-field ILDs remembered (weak hops: above the floor, below the speech gate)."""
    mono_speech_share: float = 0.5
    """Mono: minimum share of the hop's energy in the speech band, 100-4000 Hz."""
    mono_anchor_below_speech_db: float = 18.0
    """Mono: a hop more than this under the speech level (the same 95th percentile) is own speech only..."""
    mono_anchor_reach_hops: int = 50
    """...within this many hops (0.5 s) after an own hop that is not: the soft parts of the wearer's
    speech (word tails, unstressed syllables, consonants) lie between loud ones, while neighbours go on
    talking, 20 dB under the wearer, through the wearer's pauses."""
    mono_voiced_periodicity: float = 0.5
    """Mono, with the boom's periodicity given (:mod:`device.dsp.periodicity`): a gate-opening hop at
    least this periodic is voiced..."""
    mono_min_voiced_share: float = 0.1
    """...and the sound is speech only while at least this share of the louder half of the recent
    gate-opening hops (the modulation test's hops) is voiced: a voice has a pitch in its vowels (50-85 %
    of the hops within 25 dB of the loud ones on the real clips of tests/data and the dev set), while
    noise rising and falling like syllables (pink, white or brown noise modulated at 3-6 Hz, keyboard
    clicks: 0 %) has none; before this, such noise in a mono file was 90 % speech. The louder half, since
    in noise at 5 dB SNR the noise's own peaks at the gate dilute the share (over all of them, the VAD in
    pink noise at 5 dB lost 11 % of its speech time against 7 %). Babble, voices, passes (50 %)."""
    mono_speech_probability: float = 0.5
    """Mono, with the speech model's probabilities given (:mod:`device.dsp.speech_model`): a gate-opening
    hop the model gives at least this is speech to it (Silero's own threshold)..."""
    mono_min_speech_share: float = 0.1
    """...and the sound is speech only while at least this share of the louder half of the recent
    gate-opening hops is: on real speech, clean or at 5 dB SNR in pink noise or babble, 88-100 %; on 10 s
    windows of 13 pieces of real music, 0-2 % (music is loud, modulated and has pitches, so it passes
    every other test here: 30 s excerpts read as 0.4-29.9 s of speech). Not higher: a talker 1.5 m from
    the microphone in a reverberant room (RT60 0.8 s) reads 0.01-0.7 over the first 3 s, and 0.3 lost
    2 more syllables there, and at 1 m."""
    mono_speech_min_hops: int = 50
    """The speech model's test applies once this many gate-opening hops are stored (0.5 s of sound): the
    model's probability rises over its first chunks of a stream (the first 0.3 s of the ITU-T test vector
    were lost without this), and more slowly in a reverberant room."""
    mono_warmup_speech_probability: float = 0.05
    """Mono, with the speech model, before its share test applies (``mono_speech_min_hops``): a hop is own
    speech only where the model gives at least this. Not 0.5: the model's probability rises over a stream's
    first chunks (the ITU-T test vector's first 60 own hops: 10 % under 0.09, 3 % under 0.05); but music
    reads under it from the start (the first 60 gate-opening hops of two pieces: 79-100 % under 0.05),
    where the stream's first 0.5 s of music had passed (the ``music`` row alone 0.82 -> 0.07 s, framed
    +0.00..+0.64 -> +0.01..+0.39 s; a room-tone lead-in, ``funasr-asr-example``, also goes: the dev set's
    speech time against P.56 4.9 -> 4.5 %; ``tests/data`` 7.1 -> 7.3 %, the ITU-T vector's first weak
    hops; every syllable count unchanged)."""
    mono_hop_model_share: float = 0.5
    """Mono, with the speech model: once its share (``mono_min_speech_share``'s) reaches this, the model
    hears the talker clearly, and from then on a hop is own speech only where the model itself calls it
    speech (``mono_speech_probability``). Neighbours talking in the wearer's pauses open the gate and pass every
    test above (they are voices, and 10 dB or less under the wearer they reach the anchor level): 8
    neighbours at 10 / 5 dB SNR had added 34 / 33 % to the speech time of the ``pauses`` row, and the model
    called 64-69 / 32-56 % of those added hops not speech (against 0-1.3 % of the hops own in both the clean
    and the noisy scene). Not where the share is lower: a talker 1.5 m away in a reverberant room, whom the
    model hears late and faintly, lost syllables with the test always on (the ``reverb`` row at 1.5 m
    16.6 -> 17.8 %, one clip 5 syllables fewer; from a share of 0.3 17.6 %, of 0.5 unchanged). Once on, the
    test stays on until the share falls under ``mono_min_speech_share`` (the sound is then not speech at all):
    when speech gives way to music, the music's hops fill the share's window, and between 0.5 and 0.1 music
    after speech had passed as speech (the ``music`` row framed: +0.30 to +1.14 s, +1 to +6 syllables;
    with the hysteresis +0.00 to +0.64 s, +1 to +3; neighbours in the pauses at 10 / 5 dB 7.4 / 20.3 ->
    3.9 / 17.1 %; the rooms, dev and noise rows unchanged). Nor while the floor is steady
    (``steady_ripple_db``): stationary noise has no voices in it, and there the test only took the wearer's
    weak syllables (the dev set in pink noise at 10 / 5 dB SNR 8.4 / 7.3 -> 9.1 / 8.0 %; skipped there,
    8.7 / 7.3 %)."""
    max_gap_hops: int = 30
    """Gaps between own-speech hops shorter than this (0.3 s) are bridged."""
    noisy_spread_db: float = 30.0
    """A floor-to-speech spread (dB) under this is a noisy room: there a lone gate-opening hop..."""
    lone_hop_reach_hops: int = 15
    """...counts only within this many hops (0.15 s) of the last own hop."""
    warmup_hops: int = 50
    """At the stream's start nothing is speech until the modulation test has its hops: the hops
    that were own voice but for that test, up to this many (0.5 s) before the first hop it passes,
    are released then (:meth:`OwnVoiceVad.take_released`) for the syllable nuclei, which wait for them
    (:attr:`OwnVoiceVad.held_since`)."""


_RUN_GAP_HOPS = 3
"""Held warm-up hops count as the first word's start only up to gaps of this many hops (30 ms): a
breath or click before a pause is not released."""


class OwnVoiceVad:
    """Raw own-voice decision per hop from band energies ``(k, channels, bands)`` (features.BANDS)."""

    def __init__(self, channels: int, params: VadParams | None = None,
                 reference_level_db: float | None = None) -> None:
        self.channels = channels
        self.p = params or VadParams()
        self._floor = FloorTracker(1, top_percentile=self.p.speech_percentile, ripple_percentile=20.0)
        # the last gate-opening hops: level (dB); mono also 1 if voiced and 1 if speech to the speech model
        # (1 where the periodicity or the probabilities are not given): two channels keep the level alone
        self._gate_levels = Ring(self.p.modulation_hops, 3 if channels == 1 else 1)
        self.voiced_share = 1.0
        """Mono: the share of the louder half of the recent gate-opening hops that is voiced (1.0 until
        measured)."""
        self.speech_share = 1.0
        """Mono: the share of the same hops that the speech model calls speech (1.0 until measured)."""
        self.not_speech_hops = 0
        """Mono: gate-opening hops that passed every other test but that the speech model did not call
        speech (music and the like), since the stream's start."""
        self._hop_test = False  # mono: the per-hop model test is on (VadParams.mono_hop_model_share)
        self.gate_db = self.p.gate_db
        self.modulation_db = 0.0
        self._started = False  # the floor has been seeded by the first hops
        self._far = Ring(self.p.far_window_hops)
        self.far_ild_db = 0.0
        self._own_levels = Ring(self.p.own_window_hops)
        self._reference = reference_level_db
        # the wearer's voice level (dB): calibrated, else learned; +inf while unknown
        self.own_level_db = reference_level_db if reference_level_db is not None else float("inf")
        self.last_ild_db: FloatArray = np.zeros(0)
        self.far_spread_db = 0.0  # the far-field ILDs' spread over their median (dB)
        self._hops = 0  # hops processed
        self._modulated = False  # the modulation test has passed once
        self._held: list[int] = []  # warm-up hops (global indices) own but for the modulation test
        self._released: list[int] = []  # released warm-up hops not yet taken
        self._prev_own = False  # the last hop's own flag before the lone-hop rule
        self._last_own = -(10 ** 9)  # global index of the last own hop after it
        self._last_anchor = -(10 ** 9)  # mono: global index of the last own hop near the speech level

    def take_released(self) -> IntArray:
        """The hops (global indices) released since the last call: own voice but for the modulation
        test, in the stream's warm-up (``VadParams.warmup_hops``); they are not in the flags
        :meth:`process` returned."""
        out = np.asarray(self._released, dtype=np.int64)
        self._released = []
        return out

    @property
    def held_since(self) -> int | None:
        """The oldest warm-up hop held for release (global index), or None: syllable nuclei from there
        on wait until the modulation test passes (the hops are released) or the hold runs out."""
        return self._held[0] if self._held else None

    @property
    def floor_db(self) -> float:
        """Noise floor of the boom speech band (dB re full scale)."""
        return float(self._floor.floor_db[0])

    def process(self, energies: FloatArray, periodicity: FloatArray | None = None,
                speech_probability: FloatArray | None = None) -> BoolArray:
        """Own-voice flags for the hops of ``energies`` (decided against the floor so far).

        The first call has no floor yet: it is seeded from that call's own hops, so the stream's
        first hops are not all "above the floor" (noise before the first word flagged as speech).
        ``periodicity``: the boom's periodicity per hop (mono: a sound with no voice in it is not
        speech; ignored with two channels, whose level difference tells the wearer).
        ``speech_probability``: the speech model's probability per hop (mono: a sound it does not call
        speech, such as music, is not speech; ignored with two channels).
        """
        p = self.p
        boom = level_db(energies[:, 0, _SPEECH])
        seeded = not self._started and boom.size > 0
        if seeded:
            self._floor.update(boom.reshape(-1, 1))
            self._started = True
        floor = float(self._floor.floor_db[0])
        noisy = False
        steady = False
        if self._floor.top_db is not None:  # the speech level of the same 10 s
            speech_level = float(self._floor.top_db[0])
            ripple = self._floor.ripple_db
            steady = (ripple is not None and len(self._floor) >= p.steady_min_hops
                      and float(ripple[0]) < p.steady_ripple_db)
            gate_share = p.steady_gate_share if steady else p.gate_share
            self.gate_db = min(max(gate_share * (speech_level - floor), p.min_gate_db), p.gate_db)
            noisy = speech_level - floor < p.noisy_spread_db
        opened = boom > floor + self.gate_db
        # mono: a sound with no pitch in it (noise rising and falling like syllables, clicks) is not speech,
        # nor one the speech model does not call speech (music)
        mono = self.channels == 1
        voice_test = mono and periodicity is not None
        model_test = mono and speech_probability is not None
        if opened.any():  # the spread and the shares change only when gate-opening levels come in
            if mono:
                voiced = periodicity[opened] >= p.mono_voiced_periodicity if periodicity is not None else True
                speech = (speech_probability[opened] >= p.mono_speech_probability
                          if speech_probability is not None else True)
                self._gate_levels.push(np.column_stack(np.broadcast_arrays(boom[opened], voiced, speech)))
            else:
                self._gate_levels.push(boom[opened])
            if len(self._gate_levels) >= p.min_modulation_hops:
                rows = self._gate_levels.stored()
                lo, hi = (v[0] for v in percentiles_rows(rows[:, :1], (10.0, 90.0)))
                self.modulation_db = float(hi - lo)
                if voice_test or model_test:  # the louder half: vowels, not the noise's peaks at the gate
                    loud = rows[rows[:, 0] >= np.median(rows[:, 0])]
                    self.voiced_share = float(loud[:, 1].mean())
                    self.speech_share = float(loud[:, 2].mean())
                    if self.speech_share >= p.mono_hop_model_share:
                        self._hop_test = True
                    elif self.speech_share < p.mono_min_speech_share:
                        self._hop_test = False
        # a steady sound (tone, hum, stationary noise) opens the gate but is not speech
        speechlike = self.modulation_db >= p.min_modulation_db
        if voice_test:  # (a modulation, measured, means the shares are measured too)
            speechlike = speechlike and self.voiced_share >= p.mono_min_voiced_share
        if (model_test and speechlike and len(self._gate_levels) >= p.mono_speech_min_hops
                and self.speech_share < p.mono_min_speech_share):
            speechlike = False
            self.not_speech_hops += int(opened.sum())
        energetic = opened if speechlike else np.zeros_like(opened)
        if self.channels >= 2:
            ild = boom - level_db(energies[:, 1, _SPEECH])
            self.last_ild_db = ild
            excess = ild - self.far_ild_db
            # clearly own (near-field level difference), or a smaller difference while as loud as
            # the wearer's recent own speech (the boom moved away: the difference shrinks, the
            # voice stays far louder than neighbours a metre or more away)
            # the smaller margin of a loud hop is at least the far-field ILDs' own spread: 8 neighbours at 5 dB
            # SNR are as loud as the wearer's softer speech, and their ILD wanders 1-2 dB over its median
            loud_margin = max(p.ild_margin_loud_db, self.far_spread_db)
            voice: BoolArray = (excess > p.ild_margin_db) | ((excess > loud_margin) & (boom > self.own_level_db - p.loud_db))
            own: BoolArray = energetic & voice
            # far-field level difference: weak sounds (below the speech gate) are distant sources
            weak = (boom > floor + 3.0) & ~opened
            if weak.any():
                self._far.push(ild[weak])
                spread = len(self._far) >= p.far_spread_min_hops
                mid, high = median_and_percentiles(self._far.stored()[:, 0],
                                                   *((p.far_spread_percentile,) if spread else ()))
                self.far_ild_db = min(max(mid, -p.far_ild_limit_db), p.far_ild_limit_db)
                if spread:
                    self.far_spread_db = high[0] - mid
            clear = energetic & (excess > p.clear_margin_db)
            if clear.any() and self._reference is None:
                self._own_levels.push(boom[clear])
                if len(self._own_levels) >= p.min_own_hops:
                    self.own_level_db = float(self._own_levels.percentile(90.0)[0])
        else:
            share = energies[:, 0, _SPEECH] / np.maximum(energies[:, 0, _TOTAL], 1e-30)
            voice = share >= p.mono_speech_share
            own = energetic & voice
            if speech_probability is not None:
                own = self._model_hops(own, speech_probability, steady)
        if not seeded:
            self._floor.update(boom.reshape(-1, 1))
        if not self._modulated:  # the stream's warm-up only: nothing on the hot path after it
            self._warm_up(self._hops, opened & voice, own)
        if self.channels == 1 and self._floor.top_db is not None:
            own = self._drop_far_from_loud(own, boom, float(self._floor.top_db[0]) - p.mono_anchor_below_speech_db)
        return self._drop_lone_hops(own, noisy)

    def _model_hops(self, own: BoolArray, speech_probability: FloatArray, steady: bool) -> BoolArray:
        """Mono: ``own`` without the hops the speech model does not call speech, where its call per hop
        applies: before its share test (``mono_warmup_speech_probability``), and once it hears the talker
        clearly unless the floor is ``steady`` (``mono_hop_model_share``)."""
        p = self.p
        if len(self._gate_levels) < p.mono_speech_min_hops:
            threshold = p.mono_warmup_speech_probability
        elif self._hop_test and not steady:
            threshold = p.mono_speech_probability
        else:
            return own
        out: BoolArray = own & (speech_probability >= threshold)
        return out

    def _drop_far_from_loud(self, own: BoolArray, boom: FloatArray, anchor_db: float) -> BoolArray:
        """Mono: ``own`` without the hops under ``anchor_db`` (dB) that lie more than
        ``mono_anchor_reach_hops`` after the last own hop at or over it (neighbours talking on after the
        wearer stopped)."""
        idx = self._hops + np.arange(own.size, dtype=np.int64)
        anchor = own & (boom >= anchor_db)
        last = np.maximum.accumulate(np.where(anchor, idx, self._last_anchor))
        if own.size:
            self._last_anchor = int(last[-1])
        out: BoolArray = own & (anchor | (idx - last <= self.p.mono_anchor_reach_hops))
        return out

    def _warm_up(self, h0: int, voice: BoolArray, own: BoolArray) -> None:
        """Until the modulation test first passes, hold the hops that were own voice but for it (the
        last ``warmup_hops``); when it passes, release those that run into its first own hop (gaps up
        to ``_RUN_GAP_HOPS``, within ``warmup_hops``): a recording cut at its first word, whose first
        0.1-0.3 s open the gate before the test has its 10 hops and a 5 dB spread. ``h0``: the global
        index of the first hop of ``voice`` and ``own``."""
        w = self.p.warmup_hops
        if own.any():
            self._modulated = True
            first = h0 + int(np.flatnonzero(own)[0])
            run: list[int] = []  # the held hops that run into the first own hop (its word's start)
            for h in reversed(self._held):
                if h < first - w or (run[-1] if run else first) - h > _RUN_GAP_HOPS:
                    break
                run.append(h)
            self._released += run[::-1]
            self._held = []
            return
        self._held.extend((h0 + np.flatnonzero(voice)).tolist())
        end = h0 + voice.size
        self._held = [h for h in self._held if h >= end - w]

    def _drop_lone_hops(self, own: BoolArray, noisy: bool) -> BoolArray:
        """``own`` without the hops that open the gate alone far from the last own hop (in a noisy room)."""
        h0 = self._hops
        self._hops += own.size
        if own.size == 0:
            return own
        out = own.copy()
        if noisy:
            before = np.concatenate([[self._prev_own], own[:-1]])
            last = self._last_own
            for s in np.flatnonzero(own & ~before).tolist():  # the first hop of each run
                kept = np.flatnonzero(out[:s])
                if kept.size:
                    last = max(last, h0 + int(kept[-1]))
                if h0 + s - last > self.p.lone_hop_reach_hops:
                    out[s] = False
        self._prev_own = bool(own[-1])
        kept = np.flatnonzero(out)
        if kept.size:
            self._last_own = h0 + int(kept[-1])
        return out


class SpeechSegments:
    """Bridges gaps shorter than ``max_gap_hops`` between own-speech hops.

    :meth:`update` returns the global indices of hops newly confirmed as speech: the own-speech
    hops of this call plus any bridged gap before them (which may lie in earlier calls).
    """

    def __init__(self, max_gap_hops: int = 30) -> None:
        self.max_gap = max_gap_hops
        self.last_own = -(10 ** 9)  # global index of the last own-speech hop

    def update(self, first_hop: int, own: BoolArray) -> IntArray:
        idx = first_hop + np.flatnonzero(own).astype(np.int64)
        if idx.size == 0:
            return idx
        prev = np.concatenate([[self.last_own], idx[:-1]])
        gaps = idx - prev - 1
        bridge = np.flatnonzero((gaps > 0) & (gaps < self.max_gap))
        self.last_own = int(idx[-1])
        if bridge.size == 0:
            return idx
        parts = [idx] + [np.arange(prev[i] + 1, idx[i], dtype=np.int64) for i in bridge]
        return np.sort(np.concatenate(parts))

    def speaking(self, hop: int) -> bool:
        """Own speech at ``hop`` or within the bridging gap before it."""
        return hop - self.last_own < self.max_gap
