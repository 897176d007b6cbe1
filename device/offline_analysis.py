"""Offline analysis of one recording through the streaming engine (the same numbers as live).

:func:`analyze_file` reads the file (:mod:`device.inputs.audio_file`), decides what its channels are
(:mod:`device.inputs.channel_layout`: 2-channel recordings are checked over the whole file in the same
pass, and analysed again as mono when the headset reading does not apply, or as one channel when a mix
would cancel), and feeds the :class:`~device.dsp.StreamingAnalyzer`. A mono side whose active speech
level comes out under -45 dBov (:data:`~device.dsp.speech_model.QUIET_LEVEL_DBOV`) is analysed again
with the speech model hearing it raised to that level, since the model hears less and less of quieter
speech. It returns a JSON-ready dict:
file, format, duration_s, speech_s, syllables, rate_spm, level_dbov, activity, noise_dbov,
clipping, distance_cm (None: mono or uncalibrated), ild_db, intonation_st, intonation_sd_st,
f0_median_hz, monotone_s (the agent's own voiced speech: F0 spread in semitones, 10th-90th
percentile and SD, median F0 in Hz, own-speech seconds decided monotone; None below 2 s of voiced
own speech, or with ``intonation=False``), channels (of the file),
sample_rate_hz, layout, warnings (list of text), with ``timeline`` a list of per-second values,
and in the call layout agent_channel, customer_speech_s and overlap_s (seconds). In the call
layout each channel is measured as mono with one measurement per 10 ms hop, so the overlap of the
two talkers' speech is exact to the hop (the agent's figures may then differ by a hop or so from
the same channel analysed alone at the live agent's 100 ms ticks).

Units: seconds, dBov (ITU-T P.56), syllables per minute, cm, dB.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from device import silero_model
from device.dsp import HOP_S, AnalysisTotals, DspError, HeadsetCalibration, Measurement, StreamingAnalyzer
from device.dsp.intonation import IntonationParams
from device.dsp.speech_model import model_gain_db
from device.errors import AudioError, LayoutError
from device.inputs.audio_file import AudioInfo, blocks, probe
from device.inputs.channel_layout import (
    ChannelCheck,
    ChannelReport,
    Layout,
    Plan,
    apply_check,
    no_own_speech_warning,
    resolve,
)

FloatArray = npt.NDArray[np.float64]

OVER_FULL_SCALE = 2.0
"""Float samples beyond this (+6 dB over full scale) are not scaled to +-1.0: warned about."""
TELEPHONE_RATE_HZ = 8000
"""Files sampled under this (Hz) lack part of the 100-4000 Hz speech band: analysed, with a warning."""
NOT_SPEECH_WARN_S = 1.0
"""``analyze`` names the sound the speech model left out of speech time (music) from this many seconds."""
NOISY_GAP_DB = 14.0
"""``analyze`` warns of a noisy recording when the speech's P.56 level is less than this (dB) over the
noise between utterances: about 10 dB SNR or worse. ``bench/noisy_warning.py`` reads the gap on the
15 real clips of tests/data and the dev set, clean and with pink noise or babble added (SNR against
the P.56 level): clean 19.6-71.6 dB, at 20 dB SNR 16.5-23.9, at 10 dB 10.1-14.9 (one short clip in babble
over 14), at 5 dB 7.2-11.8.
Counts and speech time are less accurate there (the README's accuracy table, its noise rows)."""
MAX_SAMPLE = 1e6
"""Samples beyond this magnitude (120 dB over full scale) are not audio: a damaged float file (bytes
read as float32/64 exponents). Such a file is an :class:`AudioError`, not numbers computed from
overflowing sums."""


def _r(x: float | None, nd: int) -> float | None:
    return None if x is None else round(float(x), nd)


OFFLINE_EMIT_S = 1.0
"""Seconds between the engine's measurements in an offline analysis (outside the call layout). The
engine decides own voice 0.1 s at a time whatever the interval (``DECISION_HOPS`` in
:mod:`device.dsp.analyzer`), so the totals, and the live values at the end of each second (the
timeline's rows), are the live agent's at its 0.1 s ticks; a measurement a second instead of ten
saves the per-measurement work (0.1 s ticks: 2.2 times the time over the dev set and the clips of
``tests/data``)."""


class _Timeline:
    """Per-second rows built from the measurements (last value of each second, speech summed)."""

    def __init__(self) -> None:
        self.rows: list[dict[str, Any]] = []
        self._sec = 0
        self._speech = 0.0
        self._clip_n = 0
        self._clip_sum = 0.0
        self._last: Measurement | None = None

    def add(self, ms: list[Measurement]) -> None:
        for m in ms:
            sec = int((m.t_s - 1e-9) // 1.0)
            while sec > self._sec:
                self._close()
            self._speech += m.speech_s
            self._clip_sum += m.clipping
            self._clip_n += 1
            self._last = m

    def _close(self) -> None:
        m = self._last
        self.rows.append({
            "t_s": self._sec,
            "speech_s": round(self._speech, 2),
            "speaking": bool(m.speaking) if m else False,
            "level_dbov": _r(m.level_dbov, 2) if m else None,
            "rate_spm": _r(m.rate_spm, 1) if m else None,
            "distance_cm": _r(m.distance_cm, 2) if m else None,
            "noise_dbov": _r(m.noise_dbov, 2) if m else None,
            "intonation_st": _r(m.intonation_st, 2) if m else None,
            "monotone": m.monotone if m else None,
            "clipping": round(self._clip_sum / self._clip_n, 6) if self._clip_n else 0.0,
        })
        self._sec += 1
        self._speech = 0.0
        self._clip_n = 0
        self._clip_sum = 0.0

    def finish(self) -> list[dict[str, Any]]:
        if self._last is not None and self._last.t_s > self._sec:
            self._close()
        return self.rows


class _Reader:
    """The blocks of a file, reporting progress (0..1 per pass) and the peak magnitude of the first
    pass (full scale 1.0)."""

    def __init__(self, info: AudioInfo, progress: Callable[[float], None] | None) -> None:
        self.info = info
        self.progress = progress
        self.peak = 0.0
        self._pass = 0

    def blocks(self) -> Iterator[FloatArray]:
        """One pass over the file: float64 blocks ``(n, channels)``."""
        done = 0
        for block in blocks(self.info):
            if self._pass == 0 and block.size:
                peak = float(np.max(np.abs(block)))
                if peak > MAX_SAMPLE:
                    at = done + int(np.flatnonzero((np.abs(block) > MAX_SAMPLE).any(axis=1))[0])
                    raise AudioError(f"{self.info.path}: samples reach {peak:.3g} times full scale (first at "
                                     f"{at / self.info.rate_hz:.3f} s): a damaged file, not audio")
                self.peak = max(self.peak, peak)
            yield block
            done += block.shape[0]
            if self.progress is not None:
                self.progress(min(1.0, done / max(1, self.info.frames)))
        self._pass += 1


class _SpeechHops:
    """Which 10 ms hops were speech, from one measurement per hop (``emit_interval_s=HOP_S``): a
    measurement ending at hop h with ``speech_s`` = c hops marks hops h-c+1..h (the own-speech hop and
    the bridged gap just before it)."""

    def __init__(self) -> None:
        self.flags: npt.NDArray[np.bool_] = np.zeros(1 << 12, dtype=np.bool_)
        self.hops = 0

    def add(self, ms: list[Measurement]) -> None:
        for m in ms:
            h = round(m.t_s / HOP_S) - 1
            if h >= self.flags.size:
                self.flags = np.concatenate([self.flags, np.zeros(max(h + 1, self.flags.size), dtype=np.bool_)])
            self.hops = max(self.hops, h + 1)
            c = round(m.speech_s / HOP_S)
            if c > 0:
                self.flags[max(0, h - c + 1): h + 1] = True

    def overlap_s(self, other: _SpeechHops) -> float:
        """Seconds in which both were speech."""
        n = min(self.hops, other.hops)
        return float(np.count_nonzero(self.flags[:n] & other.flags[:n])) * HOP_S


class _CustomerSide:
    """The call layout's second channel: the customer's analyser, and both talkers' speech hops
    (for the overlap). The agent's analyser stays the caller's."""

    def __init__(self, info: AudioInfo, agent_channel: int, calibration: HeadsetCalibration | None,
                 model_gain_db: float = 0.0) -> None:
        self.agent_channel = agent_channel
        # per hop: the overlap to the hop
        self.analyzer = _analyzer(info, 1, calibration, per_hop=True, model_gain_db=model_gain_db)
        self.agent_hops, self.customer_hops = _SpeechHops(), _SpeechHops()

    def feed(self, agent: StreamingAnalyzer, block: FloatArray) -> list[Measurement]:
        """Feed both talkers' channels of ``block``; returns the agent's measurements."""
        ms = agent.feed(block[:, [self.agent_channel]])
        self.agent_hops.add(ms)
        self.customer_hops.add(self.analyzer.feed(block[:, [1 - self.agent_channel]]))
        return ms

    def flush(self, agent_ms: list[Measurement]) -> None:
        """End of stream: ``agent_ms`` are the agent analyser's last measurements."""
        self.agent_hops.add(agent_ms)
        self.customer_hops.add(self.analyzer.flush())

    def fields(self) -> dict[str, Any]:
        """The call layout's extra output: agent_channel, customer_speech_s and overlap_s (s)."""
        return {"agent_channel": self.agent_channel,
                "customer_speech_s": round(self.analyzer.totals().speech_s, 2),
                "overlap_s": round(self.agent_hops.overlap_s(self.customer_hops), 2)}


def _analyzer(info: AudioInfo, channels: int, calibration: HeadsetCalibration | None,
              per_hop: bool = False, intonation: bool | IntonationParams = False,
              model_gain_db: float = 0.0) -> StreamingAnalyzer:
    """The engine for ``info``; ``per_hop``: one measurement per 10 ms hop, else one a second
    (:data:`OFFLINE_EMIT_S`). A mono engine asks the shipped speech model (music is not speech) where it
    can run, raising what the model hears by ``model_gain_db`` (dB). Mains hum is notched out
    (:mod:`device.dsp.hum`; the live agent goes without, for its memory budget)."""
    try:
        return StreamingAnalyzer(info.rate_hz, channels=channels, calibration=calibration,
                                 emit_interval_s=HOP_S if per_hop else OFFLINE_EMIT_S, intonation=intonation,
                                 speech_model=silero_model.load_or_none() if channels == 1 else None,
                                 speech_model_gain_db=model_gain_db, remove_hum=True)
    except DspError as exc:
        raise AudioError(f"{info.path}: {exc}") from exc


@dataclass(frozen=True, slots=True)
class _Pass:
    """What one analysis pass measured: the agent's (or the only) totals, the call layout's customer
    side, and the timeline rows."""

    totals: AnalysisTotals
    customer: _CustomerSide | None
    timeline: list[dict[str, Any]] | None


def _analyze_pass(info: AudioInfo, plan: Plan, calibration: HeadsetCalibration | None, reader: _Reader,
                  timeline: bool, check: ChannelCheck | None, intonation: bool | IntonationParams = True,
                  model_gains_db: tuple[float, float] = (0.0, 0.0)) -> _Pass:
    """One pass over the file with ``plan``; the blocks also go to ``check`` when given.
    ``model_gains_db``: the speech model's gains (dB) for the agent's (or the only) side and the
    customer's."""
    tl = _Timeline() if timeline else None
    customer: _CustomerSide | None = None
    if plan.layout is Layout.CALL:
        analyzer = _analyzer(info, 1, calibration, per_hop=True, intonation=intonation,  # per hop: the overlap
                             model_gain_db=model_gains_db[0])
        customer = _CustomerSide(info, plan.agent_channel or 0, calibration, model_gains_db[1])
    else:
        analyzer = _analyzer(info, 2 if plan.layout is Layout.HEADSET else 1, calibration, intonation=intonation,
                             model_gain_db=model_gains_db[0])
    mix = plan.layout is Layout.MONO and info.channels > 1
    one = plan.channel if mix else None  # mono of one channel (the other is silent) instead of the mix
    try:
        for block in reader.blocks():
            if check is not None:
                check.add(block)
            if customer is not None:
                ms = customer.feed(analyzer, block)
            else:
                if one is not None:
                    ms = analyzer.feed(block[:, one : one + 1])
                else:
                    ms = analyzer.feed(block.mean(axis=1, keepdims=True) if mix else block)
            if tl is not None:
                tl.add(ms)
        ms = analyzer.flush()
        if customer is not None:
            customer.flush(ms)
    except DspError as exc:
        raise AudioError(f"{info.path}: {exc}") from exc
    if tl is not None:
        tl.add(ms)
    return _Pass(analyzer.totals(), customer, tl.finish() if tl is not None else None)


def _quiet_gains(plan: Plan, result: _Pass) -> tuple[float, float]:
    """The speech model's gains (dB) for the agent's (or the only) side and the customer's, from the
    active speech levels a pass measured: non-zero for a mono side quieter than
    :data:`~device.dsp.speech_model.QUIET_LEVEL_DBOV`, where the model hears less speech than there is
    (:mod:`device.dsp.speech_model`)."""
    if plan.layout is Layout.HEADSET or silero_model.load_or_none() is None:
        return (0.0, 0.0)
    customer = result.customer.analyzer.totals().level_dbov if result.customer is not None else None
    return (model_gain_db(result.totals.level_dbov), model_gain_db(customer))


def analyze_file(path: Path, calibration: HeadsetCalibration | None = None, raw_rate_hz: int | None = None,
                 timeline: bool = False, progress: Callable[[float], None] | None = None, *,
                 layout: Layout | None = None, agent_channel: int | None = None,
                 intonation: bool | IntonationParams = True) -> dict[str, Any]:
    """Analyse ``path`` (any container libsndfile reads, or raw s16le with ``raw_rate_hz``).

    ``layout`` None picks by channel count (1: mono, 2: headset, more: mono mixdown, warned);
    ``agent_channel`` is for :attr:`Layout.CALL` (default 0); ``progress`` gets 0..1. Raises
    :class:`AudioError` (unreadable file, bad samples) or :class:`LayoutError` (the layout does not
    fit), each naming the file. ``intonation``: the F0 spread of own speech (the agent's defaults, or
    these parameters; False: not measured).
    """
    info = probe(path, raw_rate_hz)
    try:
        plan = resolve(layout, info.channels, agent_channel)
    except LayoutError as exc:
        raise LayoutError(f"{info.path}: {exc}") from None
    # 2-channel recordings are checked over the whole file while they are analysed; when the check says
    # the headset reading does not apply (identical channels, a louder ear cup), or that a mix would cancel
    # (channels of opposite polarity), the file is analysed again as mono (progress then starts over)
    check = ChannelCheck(info.rate_hz) if info.channels == 2 else None
    reader = _Reader(info, progress)
    result = _analyze_pass(info, plan, calibration, reader, timeline, check, intonation)
    report: ChannelReport | None = None
    if check is not None:
        report = check.report()
        checked = apply_check(plan, report)
        if (checked.layout, checked.channel) != (plan.layout, plan.channel):
            result = _analyze_pass(info, checked, calibration, reader, timeline, None, intonation)
        plan = checked
    gains = _quiet_gains(plan, result)
    if gains != (0.0, 0.0):  # a quiet recording: again, with the speech model hearing it raised
        result = _analyze_pass(info, plan, calibration, reader, timeline, None, intonation, gains)
    t = result.totals
    warnings: list[str] = []
    cut = info.truncation
    if cut is not None:
        warnings.append(f"truncated: its header declares about {cut.declared_s(t.duration_s):.1f} s "
                        f"({cut.declared_bytes} bytes) but the file holds {t.duration_s:.1f} s "
                        f"({cut.actual_bytes} bytes, {100.0 * cut.missing:.0f} % missing); only those "
                        f"{t.duration_s:.1f} s were analysed")
    warnings.extend(plan.warnings)
    if info.rate_hz < TELEPHONE_RATE_HZ:
        warnings.append(f"sample rate {info.rate_hz} Hz is under the telephone band's {TELEPHONE_RATE_HZ} Hz: "
                        f"the speech band above {info.rate_hz // 2} Hz is missing, so speech time and syllables "
                        "are not meaningful")
    if reader.peak == 0.0:
        warnings.append("all samples are zero (digital silence)")
    elif reader.peak > OVER_FULL_SCALE:
        warnings.append(f"samples reach {reader.peak:.4g} ({20 * math.log10(reader.peak):.1f} dB over full scale): "
                        "float samples not scaled to +-1.0? level and clipping are not meaningful")
    if (t.speech_s > 0.0 and t.level_dbov is not None and t.noise_dbov is not None
            and t.level_dbov - t.noise_dbov < NOISY_GAP_DB):  # (no speech: nothing to be less accurate)
        warnings.append(f"noisy: the speech is {t.level_dbov - t.noise_dbov:.1f} dB over the noise between "
                        f"utterances (under {NOISY_GAP_DB:g} dB: about 10 dB SNR or worse), where speech time and "
                        "syllables are less accurate, most in babble")
    if plan.layout is not Layout.HEADSET:  # mono analysers: the speech model's part
        missing = silero_model.unavailable_reason()
        if missing is not None:
            warnings.append(f"speech model unavailable ({missing}): music and other non-speech sound with a pitch "
                            "may count as speech")
        sides = [("", t.not_speech_s)]
        if result.customer is not None:
            sides.append(("customer side: ", result.customer.analyzer.totals().not_speech_s))
        for side, seconds in sides:
            if seconds >= NOT_SPEECH_WARN_S:
                warnings.append(f"{side}{seconds:.1f} s of sound that is not speech to the speech model (music, hold "
                                "music or the like) left out of speech time")
    if plan.layout is Layout.HEADSET:
        note = no_own_speech_warning(report, t.speech_s, t.activity)
        if note is not None:
            warnings.append(note)
    out: dict[str, Any] = {
        "file": str(path),
        "format": info.kind,
        "duration_s": round(t.duration_s, 3),
        "speech_s": round(t.speech_s, 2),
        "syllables": t.syllables,
        "rate_spm": _r(t.rate_spm, 1),
        "level_dbov": _r(t.level_dbov, 2),
        "activity": round(t.activity, 4),
        "noise_dbov": _r(t.noise_dbov, 2),
        "clipping": round(t.clipping, 6),
        "distance_cm": _r(t.distance_cm, 2),
        "ild_db": _r(t.ild_db, 2),
        "intonation_st": _r(t.intonation_st, 2),
        "intonation_sd_st": _r(t.intonation_sd_st, 2),
        "f0_median_hz": _r(t.f0_median_hz, 1),
        "monotone_s": _r(t.monotone_s, 2),
        "channels": info.channels,
        "sample_rate_hz": info.rate_hz,
        "layout": plan.layout.value,
    }
    if result.customer is not None:
        out.update(result.customer.fields())
    out["warnings"] = warnings
    if result.timeline is not None:
        out["timeline"] = result.timeline
    return out
