"""Streaming syllable-nucleus detection for the speaking rate (syllables per minute).

Method: de Jong, N. H. & Wempe, T. (2009), "Praat script to detect syllable nuclei and measure
speech rate automatically", Behavior Research Methods 41(2), 385-390: nuclei are peaks of the
intensity contour that stand out from the surrounding dips by a few dB, lie above a threshold
relative to the speech level, and are voiced. Changes against the original, for Mandarin, whose
tone contours and long vowels give de Jong & Wempe about 1.5x too many nuclei at slow rates:

- the contour is the energy of a sonority band (300-3000 Hz, where vowel formants F1/F2 sit)
  rather than broadband intensity, smoothed over about 50 ms;
- a peak's dip is its topographic prominence (dB above the higher of the minima on either
  side, down to the nearest higher sample, within a bounded window), not only the dip to the
  previous peak;
- nuclei closer than a plausible syllable spacing are merged, keeping the stronger one;
- a peak's dip search is bounded (0.4 s back, 0.25 s ahead: the reporting delay); a side whose
  search ends still falling, with no higher sample found, has no dip yet (a long vowel or a
  phrase-final plateau), and the other side's dip is the prominence;
- a peak with (almost) no dip, where one syllable runs into the next through a sonorant (English
  "suit in", "water all"), still counts when the vowel changes fast: its spectral shape (levels
  of four sub-bands, 300-4000 Hz, relative to the sonority band) differs by >= 5 dB RMS from that
  of the higher peak beyond its dip, no more than 150 ms away and no more than 12 dB higher (a
  nasal or glide onset far under its vowel is a shoulder, not a vowel). A tone contour on one vowel
  keeps the shape, and a slow diphthong glide is further away, so slow Mandarin is not split. (A
  spectral-change cue in the spirit of the spectral-transition measures of syllable and phone
  segmentation, e.g. Furui, S. (1986), "On the role of spectral transition for phoneme perception",
  JASA 80(4), 1016-1025, restricted to the peaks of the sonority contour.)
- the voicing check is the normalised autocorrelation of the frame, corrected for the window
  (Boersma, P. (1993), "Accurate short-term analysis of the fundamental frequency and the
  harmonics-to-noise ratio of a sampled sound", Proc. IFA 17, 97-110), at lags of 2.5-12.5 ms
  (80-400 Hz; for the peak itself, not its dip, down to 65 Hz, so that low and creaky voices pass,
  with 4 dB of prominence when only the low lags are periodic);
- the threshold follows the local speech level and the noise floor of the last few seconds: at
  least ``below_speech_db`` under the speech level, and above the floor by a share of the
  speech-to-floor spread (so that it still passes syllables at 5 dB SNR), not a fixed margin. In
  noise (a spread under about 30 dB) that share can sit 10 dB or more under the speech level's
  95th percentile and drop the weaker syllables of fast conversational speech, so a strongly
  periodic peak (one voice: voicing >= 0.7 within +-20 ms, which stationary noise does not reach;
  babble of a few clear voices can, and over pauses its peaks then count) passes when it is within
  14 dB of the speech level and 5 dB over the floor; de Jong & Wempe's own threshold is 25 dB under
  the speech level, with the voicing check as the guard. In a quiet room (12 dB or more over the
  floor) a clearly periodic (>= 0.9), prominent (>= 2.5 dB) peak passes down to that 25 dB when it
  is within 17 dB of the contour's maximum within +-0.3 s: the soft syllables of a phrase's end or
  of a quiet stretch, not a ripple beside a loud vowel. In noise the same holds from 6 dB over the
  floor for a peak with 4 dB of prominence. Those floor margins of a periodic peak (5 and 6 dB) shrink
  in steady noise to twice the floor's ripple (the contour's 20th minus its 5th percentile), down to
  2 dB: stationary noise barely moves the smoothed contour (ripple 0.5-1.5 dB at 5 dB SNR), so a
  voiced peak 2-3 dB over it is speech, while babble's ripple (2.5-4.5 dB) keeps the margin at 5 dB
  (a threshold set by the noise's own spread, as energy endpointers set theirs: Lamel, L. F.,
  Rabiner, L. R., Rosenberg, A. E. & Wilpon, J. G. (1981), "An improved endpoint detector for
  isolated word recognition", IEEE Trans. ASSP 29(4), 777-785). In the stream's first second the level statistics also
  take the look-ahead frames, so that the first peaks are not judged against a few frames of lead-in;
- in stationary noise (the contour's ripple under 1.5 dB, its floor-to-speech spread under 30 dB) a peak's
  voicing is read net of the noise under it: the normalised autocorrelation at the pitch lag is the
  periodic share of the frame's power (Boersma 1993, the harmonics-to-noise ratio), so noise of the
  floor's power N under a peak of power E scales it by (E - N) / E, and the voicing is divided by that
  (at most 2x, from 2 dB over the floor). At 5 dB SNR a voiced syllable 3-5 dB over the floor read
  0.4-0.65 and failed the periodicity checks; babble, whose floor ripples, is not compensated (its own
  voices are periodic). In the same stationary noise a peak's prominence is read net of the noise too:
  on the contour with 1.5 times the floor's power subtracted, and floored 10 dB under the floor (power
  spectral subtraction with over-subtraction and a spectral floor: Boll, S. F. (1979), "Suppression of
  acoustic noise in speech using spectral subtraction", IEEE Trans. ASSP 27(2), 113-120; Berouti, M.,
  Schwartz, R. & Makhoul, J. (1979), "Enhancement of speech corrupted by acoustic noise", Proc. ICASSP,
  208-211), since the noise's power fills the dips between fast syllables (a dip 3 dB over the floor
  is half noise). The levels themselves (thresholds, floor) stay those of the noisy contour.

Units: times in seconds from the stream start, levels in dB (relative, band energy), rates of
features 100 per second (10 ms hop). State is bounded: a few seconds of frame features.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from device.dsp.errors import DspBlockError, DspParameterError, DspStateError
from device.dsp.frames import hop_frames, window_autocorrelation

FloatArray = npt.NDArray[np.float64]


@dataclass(frozen=True, slots=True)
class SyllableParams:
    """Tuning of :class:`SyllableNucleusDetector`.

    The defaults were tuned on the synthetic corpora's tuning splits and on the tune half of the real
    development set (with pink noise and babble added); the held-out splits and the report half are
    what ``bench/accuracy.py`` reports. Durations in seconds, levels in dB, frequencies in Hz.
    """

    frame_s: float = 0.032
    """Analysis frame length (Hann window)."""
    band_hz: tuple[float, float] = (300.0, 3000.0)
    """Sonority band whose energy is the contour."""
    smooth_s: float = 0.05
    """Width of the triangular smoothing of the contour."""
    min_prominence_db: float = 2.5
    """A nucleus must rise this far above the higher of its two surrounding dips..."""
    weak_prominence_db: float = 1.0
    """...or this far, if its dip holds a consonant (voicing below ``col_voicing``)."""
    col_voicing: float = 0.5
    """Voicing strength under which a dip frame counts as a consonant or a pause."""
    voiced_dip_prominence_db: float = 2.0
    """A peak whose dip is voiced (a nasal, a liquid, a glide: no consonant gap) still counts from this
    prominence, under ``min_prominence_db``, when..."""
    voiced_dip_change_db: float = 2.5
    """...its spectral shape differs this much (as in ``vowel_change_db``) from the neighbouring peak's
    beyond the dip: a new vowel. A ripple of one vowel's level (a tone's contour, a slow talker's long
    vowel) keeps its shape."""
    window_left_s: float = 0.4
    """How far left a dip is searched for."""
    lookahead_s: float = 0.25
    """How far right a dip is searched for; the main part of the reporting delay."""
    min_gap_s: float = 0.08
    """Nuclei closer than this are merged (the stronger is kept)..."""
    close_gap_s: float = 0.07
    """...but two within ``close_gap_level_db`` of each other only when closer than this."""
    close_gap_level_db: float = 10.0
    """Level difference (dB) within which two nuclei are two syllables from ``close_gap_s`` apart."""
    below_speech_db: float = 17.0
    """Threshold below the speech level (de Jong & Wempe's silence threshold: -25 dB)."""
    above_noise_db: float = 12.0
    """Threshold above the noise floor (clean rooms)..."""
    min_above_noise_db: float = 5.0
    """...never less than this (noisy rooms)..."""
    above_noise_share: float = 0.5
    """...and this share of the spread between the floor and the speech level in between."""
    periodic_below_speech_db: float = 14.0
    """In noise, a strongly periodic peak (see ``periodic_voicing``) needs to be only this far under the
    speech level (and ``min_above_noise_db`` over the floor, less in steady noise: see
    ``ripple_margin_k``), even if the floor's share is higher."""
    periodic_voicing: float = 0.7
    """Voicing strength (0..1) that makes a peak strongly periodic: one voice, not noise or babble."""
    min_voicing: float = 0.42
    """Minimum window-corrected normalised autocorrelation at the pitch lag (0..1)."""
    pitch_hz: tuple[float, float] = (80.0, 400.0)
    """Pitch range searched by the voicing check."""
    level_memory_s: float = 5.0
    """Seconds of contour kept for the speech-level and noise-floor estimates."""
    sub_edges_hz: tuple[float, ...] = (300.0, 800.0, 1500.0, 2500.0, 4000.0)
    """Edges of the sub-bands whose levels (relative to the sonority band) are the spectral shape."""
    vowel_change_db: float = 5.0
    """A peak without a dip is still a nucleus if its spectral shape (sub-band levels relative to the
    sonority band, RMS difference in dB) differs this much from the higher neighbouring peak's..."""
    vowel_change_within_s: float = 0.15
    """...which lies at most this far away (a fast change: a new vowel, not a slow glide)..."""
    vowel_change_min_prominence_db: float = 0.1
    """...and it has at least this (small) prominence."""
    vowel_change_max_below_db: float = 12.0
    """...and lies at most this far under that neighbour (a nasal or glide onset far under its vowel is
    a shoulder of the vowel's rise, not a new vowel)."""
    peak_pitch_floor_hz: float = 65.0
    """The voicing check of a peak (not of a dip) searches pitches down to this (low and creaky
    voices)..."""
    creak_prominence_db: float = 4.0
    """...but a peak voiced only under ``pitch_hz[0]`` needs this prominence."""
    deep_below_speech_db: float = 25.0
    """In a quiet room a clearly periodic, prominent peak passes down to this far under the speech
    level (de Jong & Wempe's own threshold), when it is also..."""
    deep_above_noise_db: float = 12.0
    """...this far over the noise floor (a quiet room),..."""
    deep_voicing: float = 0.9
    """...this periodic,..."""
    deep_prominence_db: float = 2.5
    """...this prominent,..."""
    deep_below_local_db: float = 17.0
    """...and at most this far under the contour's maximum within ``deep_local_s`` either side (a
    soft syllable among soft ones, not a ripple beside a loud one)."""
    deep_local_s: float = 0.3
    """Half-width of that neighbourhood."""
    strong_above_noise_db: float = 6.0
    """In noise, such a peak passes from this far over the floor (down to the same 25 dB under the
    speech level) if it is also..."""
    strong_prominence_db: float = 4.0
    """...this prominent (noise-only ripples of the smoothed contour stay under about 2 dB)..."""
    strong_voicing: float = 0.9
    """...and this periodic."""
    ripple_margin_k: float = 2.0
    """In steady noise a periodic peak's margins over the floor (``min_above_noise_db`` and
    ``strong_above_noise_db``, scaled alike) shrink to this many times the floor's ripple: the 20th
    minus the 5th percentile of the contour (dB; about 0.5-1.5 in stationary noise at 5 dB SNR, 2.5-4.5
    in babble, more in a quiet room)..."""
    min_ripple_margin_db: float = 2.0
    """...but not under this."""
    steady_ripple_db: float = 1.5
    """In noise (a floor-to-speech spread under ``noisy_spread_db``) whose ripple is under this (dB:
    stationary noise, not babble), a peak's voicing is compensated for the noise under it: the
    normalised autocorrelation at the pitch lag is the periodic share of the frame's power (Boersma
    1993), and stationary noise of the floor's power dilutes it by (E - N) / E..."""
    noisy_spread_db: float = 30.0
    """...(the spread under which the room counts as noisy)..."""
    voicing_gain_max: float = 2.0
    """...by at most this factor..."""
    voicing_gain_min_db: float = 2.0
    """...for a peak at least this far over the floor (a ripple of the noise itself is not raised)."""
    noise_subtract_share: float = 1.5
    """In the same stationary noise, a peak's prominence is read on the contour with this multiple of
    the floor's power subtracted (spectral subtraction with over-subtraction: Boll 1979, Berouti et al.
    1979; the floor is the contour's 5th percentile, under the noise's mean power), so that the noise
    filling a dip does not hide it; 0 turns it off. Chosen on the dev set's tune half in pink and white
    noise at 20 / 10 / 5 dB SNR, mean of two noise draws: 1.0 / 1.5 / 2.0 gave 7.7 / 7.25 / 7.1 %
    against 8.2 % without (3.0, one draw: 7.6 %); 1.5 and 2.0 swap places from one draw to the other
    (7.3 / 6.9 and 7.2 / 7.3 %), and the smaller subtraction was kept."""
    noise_subtract_floor_db: float = 10.0
    """...a frame is lowered to at most this far under the floor."""
    young_frames: int = 100
    """The ripple margin and the voicing compensation (above) wait until this many frames (1 s) have
    been decided: a lead-in's statistics are too few."""
    young_context_s: float = 2.0
    """Until this much of the stream has been decided, the speech level and the floor are taken over
    the stream's first ``young_context_s`` and the look-ahead past them, which those decisions wait
    for: judged against the few frames of lead-in decided so far (room tone, a click, breaths), their
    ripples and puffs passed as nuclei. With only the look-ahead counted, a lead-in of breaths 40 dB
    under the talker (a read sentence whose recording starts 0.9 s early) still gave two. The
    stream's first nuclei are therefore reported late, by
    :attr:`SyllableNucleusDetector.first_decision_s`."""


class SyllableNucleusDetector:
    """Streaming syllable-nucleus detector, after de Jong & Wempe (2009), improved for Mandarin.

    Feed mono samples (floats in [-1, 1], boom mic) in blocks of any length; each call returns
    the times (s since stream start, float64, increasing) of nuclei decided since the last call.
    Each nucleus is reported once, at most :attr:`MAX_DELAY_S` after it occurs (counting from the
    moment the sample at that time has been fed), except those of the stream's first 2 s, which are
    all reported by :attr:`first_decision_s` of stream time (see ``SyllableParams.young_context_s``).
    :meth:`flush` ends the stream.
    """

    HOP_S = 0.010
    """Feature hop: 10 ms."""
    MAX_DELAY_S: float = 0.45
    """Upper bound of the reporting delay, seconds."""
    _STEP_FRAMES = 10
    """Decisions are made on a fixed grid of 10 hops (100 ms): the output does not depend on how the
    stream is cut into blocks, and the per-call overhead stays low."""

    def __init__(self, sample_rate_hz: int = 16000, *, params: SyllableParams | None = None) -> None:
        if not isinstance(sample_rate_hz, int | np.integer) or not 8000 <= int(sample_rate_hz) <= 192_000:
            raise DspParameterError(f"sample_rate_hz must be an integer from 8000 to 192000, not {sample_rate_hz!r}")
        p = params or SyllableParams()
        self.params = p
        self.sample_rate_hz = fs = int(sample_rate_hz)
        self._hop = round(self.HOP_S * fs)
        self._frame = round(p.frame_s * fs)
        self._nfft = 1 << int(np.ceil(np.log2(2 * self._frame)))
        self._window = np.hanning(self._frame + 2)[1:-1]
        freqs = np.fft.rfftfreq(self._nfft, 1.0 / fs)
        self._band = (freqs >= p.band_hz[0]) & (freqs <= p.band_hz[1])
        edges = np.asarray(p.sub_edges_hz, dtype=np.float64)
        self._sub_matrix = ((freqs[:, None] >= edges[None, :-1]) & (freqs[:, None] < edges[None, 1:])).astype(
            np.float32)
        # the autocorrelation is taken from the spectrum below ~4 kHz only, i.e. at a rate of about
        # 8 kHz (decimation by a power of two): enough for the pitch lag and half the work
        self._decim = 1 << max(0, int(np.floor(np.log2(fs / 8000))))
        self._ac_bins = self._nfft // (2 * self._decim) + 1
        fs_ac = fs / self._decim
        lag_lo = int(np.floor(fs_ac / p.pitch_hz[1]))
        lag_hi = int(np.ceil(fs_ac / min(p.pitch_hz[0], p.peak_pitch_floor_hz)))
        self._n_col_lags = int(np.ceil(fs_ac / p.pitch_hz[0])) - lag_lo + 1
        if lag_hi >= self._frame // (2 * self._decim):
            raise DspParameterError(f"frame_s={p.frame_s} is too short for a pitch of {p.pitch_hz[0]} Hz")
        self._lags = slice(lag_lo, lag_hi + 1)
        # Boersma (1993) eq. 9: divide by the window's own normalised autocorrelation
        self._window_ac = window_autocorrelation(self._window, self._nfft, self._lags, self._decim)
        half = max(1, round(p.smooth_s / self.HOP_S / 2))
        kernel = np.concatenate([np.arange(1, half + 2), np.arange(half, 0, -1)]).astype(np.float64)
        self._kernel = kernel / kernel.sum()
        self._half = half
        self._ctx = half  # frames of context each side of a contour value
        self._left = round(p.window_left_s / self.HOP_S)
        self._right = round(p.lookahead_s / self.HOP_S)
        self._gap = round(p.min_gap_s / self.HOP_S)
        self._close_gap = round(p.close_gap_s / self.HOP_S)
        self._local = round(p.deep_local_s / self.HOP_S)
        self._keep = self._left + self._gap + 2 * half + 4  # frames of context kept before the next decision
        self._level_len = round(p.level_memory_s / self.HOP_S)
        # the stream's first young_context_s are decided once they and their look-ahead are known
        if not 0.0 <= p.young_context_s <= 4.0:
            raise DspParameterError(f"young_context_s must be from 0 to 4 s, not {p.young_context_s!r}")
        self._context_frames = round(p.young_context_s / self.HOP_S)
        self._young_end = self._context_frames + self._right
        self.first_decision_s = (self._young_end + self._ctx + self._STEP_FRAMES) * self.HOP_S + p.frame_s / 2
        """Stream time (s) by which the nuclei of the first ``young_context_s`` have been reported (2.4 s)."""
        delay = p.frame_s / 2 + (self._ctx + self._right + self._STEP_FRAMES) * self.HOP_S
        if delay > self.MAX_DELAY_S:
            raise DspParameterError(f"these parameters delay nuclei {delay:.3f} s, more than {self.MAX_DELAY_S} s")
        self._reset()

    def _reset(self) -> None:
        self._samples = np.zeros(self._frame - self._hop)  # left padding: frame 0 is centred near t=0
        self._pending: list[FloatArray] = []  # blocks fed but not yet framed
        self._pending_n = 0
        self._need = self._STEP_FRAMES * self._hop  # samples to wait for before the next analysis
        self._db = np.zeros(0)  # band energy per frame, dB, frames [first, first + size)
        self._voicing = np.zeros(0)  # voicing strength per frame, same frames
        self._vpeak = np.zeros(0)  # voicing strength with the peak check's lower pitch floor
        self._sub = np.zeros((0, self._sub_matrix.shape[1]))  # sub-band energies per frame, dB
        self._s = np.zeros(0)  # smoothed contour, dB, valid for the first self._s.size frames
        self._first = 0  # global frame index of element 0 of the buffers above
        self._next = 0  # the next frame to decide
        self._last_nucleus = -(10**9)
        self._last_level = 0.0  # contour level (dB) of the last nucleus
        self._level_ring = np.zeros(self._level_len)
        self._level_pos = 0
        self._level_count = 0
        self._ended = False

    @property
    def buffered_frames(self) -> int:
        """Frames of features held (the detector's state grows to a few seconds, then stays)."""
        return int(self._db.size)

    def _frame_time(self, index: npt.NDArray[np.int64]) -> FloatArray:
        # frame k covers input samples [k*hop - (frame-hop), k*hop + hop); its centre is its time
        centre = index.astype(np.float64) * self._hop + self._hop - self._frame / 2
        result: FloatArray = np.maximum(centre, 0.0) / self.sample_rate_hz
        return result

    def frame_times(self, frames: npt.NDArray[np.int64]) -> FloatArray:
        """Times (s since the stream start) of nuclei given as frame indices (see :meth:`feed_frames`)."""
        return self._frame_time(np.asarray(frames, dtype=np.int64))

    def decision_clock(self) -> DecisionClock:
        """A :class:`DecisionClock` for this detector's parameters and sample rate."""
        return DecisionClock(self._frame, self._hop, self._half, self._right, self._STEP_FRAMES, self._young_end)

    def feed(self, samples: npt.ArrayLike) -> FloatArray:
        """Add mono samples (any length); return nuclei times (s) decided by this block."""
        return self._frame_time(self.feed_frames(samples))

    def feed_frames(self, samples: npt.ArrayLike) -> npt.NDArray[np.int64]:
        """:meth:`feed`, returning the nuclei as frame indices (10 ms hops from the stream start)."""
        if self._ended:
            raise DspStateError("feed() after flush(): make a new detector for a new stream")
        x = np.asarray(samples, dtype=np.float64)
        if x.ndim != 1:
            raise DspBlockError(f"samples must be a 1-D mono array, got shape {x.shape}")
        if x.size and not np.all(np.isfinite(x)):
            raise DspBlockError("samples contain NaN or infinity")
        self._pending.append(x)
        self._pending_n += x.size
        if self._pending_n < self._need:
            return np.zeros(0, dtype=np.int64)
        self._samples = np.concatenate([self._samples, *self._pending])
        self._pending, self._pending_n = [], 0
        n_new = (self._samples.size - self._frame) // self._hop + 1
        self._need = (self._STEP_FRAMES - 1) * self._hop + self._frame - (self._samples.size - n_new * self._hop)
        self._analyze(n_new)
        self._smooth(final=False)
        return self._decide_ready(final=False)

    def flush(self) -> FloatArray:
        """End of stream: decide and return the remaining nuclei (s)."""
        return self._frame_time(self.flush_frames())

    def flush_frames(self) -> npt.NDArray[np.int64]:
        """:meth:`flush`, returning the nuclei as frame indices."""
        if self._ended:
            return np.zeros(0, dtype=np.int64)
        self._ended = True
        self._samples = np.concatenate([self._samples, *self._pending, np.zeros(self._frame - self._hop)])
        self._pending, self._pending_n = [], 0
        n_new = (self._samples.size - self._frame) // self._hop + 1
        if n_new > 0:
            self._analyze(n_new)
        if self._db.size == 0:
            return np.zeros(0, dtype=np.int64)
        self._smooth(final=True)
        return self._decide_ready(final=True)

    def _analyze(self, n: int) -> None:
        """Band energy (dB) and voicing strength of the next ``n`` frames (vectorised)."""
        view = hop_frames(self._samples, self._frame, self._hop, n)
        frames = (view * self._window).astype(np.float32)  # single-precision FFTs: half the cost
        self._samples = self._samples[n * self._hop :]
        spec = np.fft.rfft(frames, self._nfft, axis=1)
        power = spec.real**2 + spec.imag**2
        energy = power[:, self._band].sum(axis=1, dtype=np.float64) * (2.0 / self._nfft)
        ac = np.fft.irfft(power[:, : self._ac_bins], self._nfft // self._decim, axis=1)
        r0 = ac[:, 0].astype(np.float64)
        norm = ac[:, self._lags] / np.maximum(r0[:, None], 1e-20) / self._window_ac
        voicing = np.where(r0 > 1e-12, norm[:, : self._n_col_lags].max(axis=1), 0.0).astype(np.float64)
        vpeak = voicing  # the peak's check also searches the lags of the lower pitch floor
        if norm.shape[1] > self._n_col_lags:
            vpeak = np.maximum(voicing, np.where(r0 > 1e-12, norm[:, self._n_col_lags:].max(axis=1), 0.0))
        db = 10.0 * np.log10(np.maximum(energy, 1e-12))
        sub = 10.0 * np.log10(np.maximum((power @ self._sub_matrix).astype(np.float64) * (2.0 / self._nfft), 1e-12))
        if self._first == 0 and self._db.size == 0:  # stream start: edge padding for the smoothing
            c = self._ctx
            self._first = -c
            db = np.concatenate([np.full(c, db[0]), db])
            voicing = np.concatenate([np.zeros(c), voicing])
            vpeak = np.concatenate([np.zeros(c), vpeak])
            sub = np.concatenate([np.repeat(sub[:1], c, axis=0), sub])
        self._db = np.concatenate([self._db, db])
        self._voicing = np.concatenate([self._voicing, voicing])
        self._vpeak = np.concatenate([self._vpeak, vpeak])
        self._sub = np.concatenate([self._sub, sub])

    def _smooth(self, final: bool) -> None:
        """Extend the smoothed contour over the frames whose smoothing window is complete."""
        db = self._db
        h = self._half
        if final:  # stream end: edge padding
            db = np.concatenate([db, np.full(h, db[-1])])
            self._sub = np.concatenate([self._sub, np.repeat(self._sub[-1:], h, axis=0)])
        start = self._s.size  # first frame (buffer index) without a contour value
        lo = max(start, h)
        if db.size - lo - h < 1:
            return
        new = np.convolve(db[lo - h :], self._kernel, mode="valid")
        if start == 0:  # stream start: the edge-padded frames keep their own value
            new = np.concatenate([db[:h], new])
        self._s = np.concatenate([self._s, new])

    def _decide_ready(self, final: bool) -> npt.NDArray[np.int64]:
        """Decide, on the fixed 100 ms grid, every step whose look-ahead has been smoothed; returns the
        nuclei's global frame indices."""
        end = self._first + self._s.size  # global index after the last smoothed frame
        found: list[npt.NDArray[np.int64]] = []
        while True:
            limit = self._next + self._STEP_FRAMES - 1
            # the steps of the stream's first young_context_s also wait for its end and their look-ahead
            if limit + self._right < end and (limit + 1 >= self._context_frames or end >= self._young_end):
                found.append(self._decide(limit, limit + self._right + 1))
            elif final and self._next < end:
                found.append(self._decide(end - 1, end))
            else:
                break
            self._next = limit + 1
        # keep only the context needed later
        drop = max(0, self._next - self._keep - self._first)
        if drop:
            self._db = self._db[drop:]
            self._voicing = self._voicing[drop:]
            self._vpeak = self._vpeak[drop:]
            self._sub = self._sub[drop:]
            self._s = self._s[drop:]
            self._first += drop
        if not found:
            return np.zeros(0, dtype=np.int64)
        result: npt.NDArray[np.int64] = np.concatenate(found)
        return result

    def _decide(self, limit: int, horizon: int) -> npt.NDArray[np.int64]:
        """Decide frames [self._next, limit] (global indices) using the contour before ``horizon``."""
        first = self._first
        s = self._s[: horizon - first]
        v = self._voicing
        lo = max(self._next - first, 0)
        hi = limit - first  # inclusive
        p = self.params
        # level statistics over decided frames: speech level (95th percentile) and noise floor
        self._push_levels(s[lo : hi + 1])
        ring = self._level_ring[: self._level_count]
        if self._level_count < self._context_frames:  # the stream's start: the frames to come count too
            ring = np.concatenate([ring, self._s[hi + 1 : max(horizon, self._young_end) - first]])
        k_floor, k_ripple, k_speech = (int(q * (ring.size - 1)) for q in (0.05, 0.2, 0.95))
        floor, ripple_top, speech = np.partition(ring, (k_floor, k_ripple, k_speech))[[k_floor, k_ripple, k_speech]]
        spread, ripple = float(speech - floor), float(ripple_top - floor)
        above = min(max(p.above_noise_share * spread, p.min_above_noise_db), p.above_noise_db)
        threshold = max(float(speech) - p.below_speech_db, float(floor) + above)
        # a periodic peak's margin over the floor: smaller when the floor is steady (its ripple small), once
        # a second has been decided (the first frames' statistics hold a lead-in and a few look-ahead frames)
        margin = p.min_above_noise_db
        if self._level_count >= p.young_frames:
            margin = min(margin, max(p.min_ripple_margin_db, p.ripple_margin_k * ripple))
        periodic_threshold = max(min(threshold, float(speech) - p.periodic_below_speech_db), float(floor) + margin)
        # in stationary noise, a peak's voicing is read net of the noise under it
        compensate = (self._level_count >= p.young_frames and ripple < p.steady_ripple_db
                      and spread < p.noisy_spread_db)
        strong_above = p.strong_above_noise_db * margin / p.min_above_noise_db
        # clear syllables pass down to deep_below_speech_db, from this far over the floor: quiet rooms, noise
        deep_threshold, strong_threshold = (
            min(periodic_threshold, max(float(speech) - p.deep_below_speech_db, float(floor) + above_floor))
            for above_floor in (p.deep_above_noise_db, strong_above))
        # local maxima of the contour above the threshold (plateaus count once, at their first sample)
        k = np.arange(max(lo, 1), min(hi + self._gap, s.size - 1))
        if k.size == 0:
            return np.zeros(0, dtype=np.int64)
        k = k[(s[k] > s[k - 1]) & (s[k] >= s[k + 1]) & (s[k] > min(deep_threshold, strong_threshold))]
        net: FloatArray | None = None  # the contour net of stationary noise, for the prominences (if any peak)
        if compensate and p.noise_subtract_share > 0.0 and k.size:
            fl = 10.0 ** (float(floor) / 10.0)
            net = 10.0 * np.log10(np.maximum(10.0 ** (s / 10.0) - p.noise_subtract_share * fl,
                                             fl * 10.0 ** (-p.noise_subtract_floor_db / 10.0)))
        candidates: list[tuple[int, float]] = []
        for i in k.tolist():
            vmax = v[max(i - 2, 0) : i + 3].max()
            vext = self._vpeak[max(i - 2, 0) : i + 3].max()
            if compensate and s[i] - floor >= p.voicing_gain_min_db:
                gain = min(p.voicing_gain_max, 1.0 / (1.0 - 10.0 ** (-(float(s[i]) - float(floor)) / 10.0)))
                vmax, vext = min(1.0, vmax * gain), min(1.0, vext * gain)
            if vext < p.min_voicing or (s[i] <= threshold and vmax < p.periodic_voicing):
                continue
            prom, col = self._prominence(s if net is None else net, i)
            if prom < p.creak_prominence_db and vmax < p.min_voicing:
                continue
            if s[i] <= periodic_threshold and (
                    vmax < p.deep_voicing or prom < p.deep_prominence_db
                    or s[max(0, i - self._local) : i + self._local + 1].max() - s[i] > p.deep_below_local_db):
                continue  # under the thresholds above, only a clear syllable in a quiet room passes
            if s[i] <= deep_threshold and (prom < p.strong_prominence_db or vmax < p.strong_voicing):
                continue  # in noise, the same with more prominence
            if prom < p.weak_prominence_db:
                if prom >= p.vowel_change_min_prominence_db and self._vowel_change(s, i, col) >= p.vowel_change_db:
                    candidates.append((i, float(s[i])))
                continue
            if prom < p.min_prominence_db and v[max(col - 1, 0) : col + 2].min() >= p.col_voicing and not (
                    prom >= p.voiced_dip_prominence_db
                    and self._vowel_change(s, i, col) >= p.voiced_dip_change_db):
                continue  # a weak peak needs a consonant (unvoiced or silent frames) in its dip, or a new vowel
            candidates.append((i, float(s[i])))
        accepted: list[int] = []
        for i, level in candidates:
            if i > hi:
                break
            # merge nuclei closer than min_gap: a stronger candidate nearby wins
            if any(abs(c - i) < self._merge_gap(lv, level) and (lv > level or (lv == level and c < i))
                   for c, lv in candidates):
                continue
            if i + first - self._last_nucleus < self._merge_gap(self._last_level, level):
                continue
            accepted.append(i)
            self._last_nucleus = i + first
            self._last_level = level
        return np.asarray(accepted, dtype=np.int64) + first

    def _merge_gap(self, a_db: float, b_db: float) -> int:
        """Frames under which two nuclei at contour levels ``a_db`` and ``b_db`` merge."""
        return self._close_gap if abs(a_db - b_db) <= self.params.close_gap_level_db else self._gap

    def _vowel_change(self, s: FloatArray, i: int, col: int) -> float:
        """RMS difference (dB) between the spectral shapes at the peak ``i`` and at the highest point
        beyond its key col ``col`` (within the search windows)."""
        if col < i:
            a = max(0, i - self._left)
            if col - a < 1:
                return 0.0
            j = a + int(np.argmax(s[a:col]))
        else:
            b = min(s.size, i + 1 + self._right)
            if b - col < 2:
                return 0.0
            j = col + 1 + int(np.argmax(s[col + 1 : b]))
        if abs(j - i) * self.HOP_S > self.params.vowel_change_within_s:
            return 0.0
        if s[j] - s[i] > self.params.vowel_change_max_below_db:
            return 0.0  # a shoulder far under its neighbour (a nasal or glide onset), not a vowel
        d = (self._sub_smoothed(i) - s[i]) - (self._sub_smoothed(j) - s[j])
        return float(np.sqrt(np.mean(d * d)))

    def _sub_smoothed(self, i: int) -> FloatArray:
        """Sub-band levels (dB) at buffer index ``i``, smoothed like the contour (computed only
        where needed: a few peaks per second)."""
        h = self._half
        a, b = i - h, i + h + 1
        seg = self._sub[max(a, 0) : b]
        if a < 0 or seg.shape[0] < b - a:  # at the buffer's edges: edge padding
            seg = np.pad(seg, ((max(0, -a), b - a - seg.shape[0] - max(0, -a)), (0, 0)), mode="edge")
        result: FloatArray = self._kernel @ seg
        return result

    def _prominence(self, s: FloatArray, i: int) -> tuple[float, int]:
        """Topographic prominence (dB) of the peak at ``i`` within the left/right windows, and the
        buffer index of its key col (the higher of the two surrounding minima)."""
        peak = s[i]
        lo = max(0, i - self._left)
        left = s[lo:i][::-1]
        higher_l = np.flatnonzero(left > peak)
        left_seg = left[: higher_l[0]] if higher_l.size else left
        right = s[i + 1 : i + 1 + self._right]
        higher_r = np.flatnonzero(right > peak)
        right_seg = right[: higher_r[0]] if higher_r.size else right
        if left_seg.size == 0 or right_seg.size == 0:
            return 0.0, i
        li = int(np.argmin(left_seg))
        ri = int(np.argmin(right_seg))
        # a side whose search ran to the window's end still falling (its lowest point is the last
        # sample searched, and no higher sample was found) has no known dip yet: a long vowel or a
        # phrase-final plateau longer than the window. The other side's dip decides.
        left_open = higher_l.size == 0 and li == left_seg.size - 1 and lo > 0
        right_open = higher_r.size == 0 and ri == right_seg.size - 1 and i + 1 + self._right <= s.size
        if right_open and not left_open:
            return float(peak - left_seg[li]), i - 1 - li
        if left_open and not right_open:
            return float(peak - right_seg[ri]), i + 1 + ri
        if left_seg[li] >= right_seg[ri]:
            return float(peak - left_seg[li]), i - 1 - li
        return float(peak - right_seg[ri]), i + 1 + ri

    def _push_levels(self, values: FloatArray) -> None:
        n = self._level_ring.size
        values = values[-n:]
        pos = self._level_pos
        end = pos + values.size
        if end <= n:
            self._level_ring[pos:end] = values
        else:
            cut = n - pos
            self._level_ring[pos:] = values[:cut]
            self._level_ring[: end - n] = values[cut:]
        self._level_pos = end % n
        self._level_count = min(n, self._level_count + values.size)


class DecisionClock:
    """When a :class:`SyllableNucleusDetector` fed in blocks decides its nuclei.

    A caller that feeds the detector a long block at once (for speed) but must act on each nucleus
    exactly when a caller feeding the same stream in shorter blocks would have seen it (so that its
    own results do not depend on how the stream was cut) advances this clock by those shorter blocks:
    :meth:`advance` mirrors the detector's own arithmetic (frames analysed in steps of whole
    decision steps, the smoothing's and the look-ahead's context) and returns the last frame
    decided after that block. Frame indices are 10 ms hops from the stream start.
    """

    def __init__(self, frame: int, hop: int, half: int, right: int, step: int, young_end: int) -> None:
        self._frame, self._hop, self._half, self._right, self._step = frame, hop, half, right, step
        self._young_end = young_end
        self._buffered = frame - hop  # samples held by the detector before its next frame (left padding)
        self._pending = 0  # samples fed since the last analysis
        self._need = step * hop
        self._frames = 0  # frames analysed
        self.decided_through = -1
        """The last frame decided so far (-1: none)."""

    def advance(self, n_samples: int) -> int:
        """Account for a block of ``n_samples`` fed to the detector; returns :attr:`decided_through`."""
        self._pending += n_samples
        if self._pending < self._need:
            return self.decided_through
        size = self._buffered + self._pending
        n_new = (size - self._frame) // self._hop + 1
        self._frames += n_new
        self._buffered = size - n_new * self._hop
        self._need = (self._step - 1) * self._hop + self._frame - self._buffered
        self._pending = 0
        end = self._frames - self._half  # frames whose smoothed contour exists
        if end < self._young_end:  # the stream's first young_context_s wait for their look-ahead
            return self.decided_through
        # decision steps end at frames step*m + step - 1 and need ``right`` frames of look-ahead
        last_step = (end - self._right - 1 - (self._step - 1)) // self._step
        self.decided_through = max(self.decided_through, last_step * self._step + self._step - 1)
        return self.decided_through


def detect_nuclei(samples: npt.ArrayLike, sample_rate_hz: int = 16000,
                  params: SyllableParams | None = None) -> FloatArray:
    """Nucleus times (s) of a whole recording: the streaming detector fed in one block."""
    det = SyllableNucleusDetector(sample_rate_hz, params=params)
    out = [det.feed(samples), det.flush()]
    result: FloatArray = np.concatenate(out)
    return result
