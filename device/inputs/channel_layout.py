"""Which channel of a recording is what: layout resolution and the whole-file channel checks.

Layouts (``headset-agent analyze --layout``):

- ``headset``: channel 0 boom mic, channel 1 ear-cup mic (what the desk records); the default
  for 2-channel input.
- ``call``: a stereo call recording, the agent on ``agent_channel`` and the customer on the
  other channel; each is analysed as mono.
- ``mono``: all channels mixed down (mean); the default for 1 channel, and for more than 2 (with a
  warning).

Two-channel recordings are checked over the whole file before they are analysed as a headset.
Identical channels (a mono recording saved as stereo), an ear cup louder than the boom in speech (a
stereo music or podcast file, or swapped channels) and two channels about as loud that carry the
same sound (a produced stereo file: coherence of the speech band at least ``COHERENT_ABOVE``) fall
back to mono with a warning, whatever layout was asked for, instead of a silent 0 s of own speech.
Two channels carrying the same sound with opposite polarity (coherence at most ``INVERTED_BELOW``: a
channel's wiring inverted, or a "wide stereo" effect) cancel in a mix: whatever layout was asked for,
mono included, the louder channel is analysed alone, warned (a call recording is warned about).
Two channels about as loud and little alike (coherence under ``APART_BELOW``: a room or spaced-pair
recording, or a headset whose wearer did not speak; a talking wearer puts the boom 8-14 dB ahead in
the loud frames) fall back to mono, warned, when the layout was picked by the channel count; with
``--layout headset`` asked for, or channels more alike (a boom far from the mouth), the headset
reading stands, warned. Units: dB, Hz, seconds.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from enum import StrEnum

import numpy as np
import numpy.typing as npt

from device.errors import LayoutError

FloatArray = npt.NDArray[np.float64]

SPEECH_BAND_HZ = (150.0, 4000.0)
"""Band of the speech-weighted channel levels (above mains hum and its leakage)."""
FRAME_S = 0.04
"""Frames of the speech-weighted levels: 40 ms, Hann window (25 Hz bins: 50/60 Hz hum stays below
the band)."""
ACTIVE_RANGE_DB = 30.0
"""Speech weighting: frames within this of the loud frames (95th percentile of frame levels) count."""
IDENTICAL_BELOW_DB = -40.0
"""Channels are identical when their difference is this far below their level (lossy codecs of a
dual-mono file stay far below it; two real mics are near 0 dB)."""
EAR_LOUDER_DB = 3.0
"""An ear cup louder than the boom by more than this (speech-weighted) is not a headset recording."""
COHERENT_ABOVE = 0.9
"""Channels carry the same sound when the energy-weighted mean of their per-frame correlation (speech
band, zero lag, active frames) is at least this: a produced stereo file is near 1.0; a headset's two
mics, 12 cm apart with the head between, about 0.3-0.4 in simulated rooms (own voice and neighbours)."""
INVERTED_BELOW = -0.5
"""Channels carry the same sound with opposite polarity when their coherence is at most this: their mix
keeps 1 + coherence of a channel's power in the speech band or less (a polarity-inverted copy: -1.0, a mix
of nothing; two spaced microphones, one of them inverted, -0.4 in a test). Uninverted microphone pairs
read over -0.15 (spaced pairs, the tests) and headsets 0.3 or more (simulated rooms)."""
APART_BELOW = 0.6
"""Two channels about as loud and less alike than this (coherence) are two microphones apart in a room
(a spaced pair: -0.12 to 0.18 in the tests), or a headset whose wearer did not speak (0.30-0.57 in
simulated rooms). A boom pushed 10-15 cm from the mouth also brings the ear cup within 3 dB of it, but its
two mics stay 0.65-0.75 alike (simulated rooms): that stays a headset."""
BALANCED_WITHIN_DB = 3.0
"""The ear cup within this of the boom in speech is no sign of a wearer talking: over the loud frames a
talking wearer puts the boom 8-14 dB ahead (simulated rooms, own voice at 5 cm with two neighbours and
the mics' gain mismatch of +-3 dB), neighbours alone -0.4..+0.7 dB."""
SILENT_BELOW_DB = 60.0
"""A channel this far (or more) under the other in speech is silent: a mono recording in one side of a
stereo file. The other channel is then analysed alone (a mix would read 6 dB low)."""
NO_OWN_SPEECH_ACTIVITY = 0.05
"""A headset analysis with no own speech while the boom's P.56 activity is at least this is reported."""


class Layout(StrEnum):
    """What the channels of a recording are (see the module docstring)."""

    MONO = "mono"
    HEADSET = "headset"
    CALL = "call"


@dataclass(frozen=True, slots=True)
class Plan:
    """How to analyse a recording: ``layout``, ``agent_channel`` (call layout only) and the
    ``warnings`` so far (without the file name)."""

    layout: Layout
    agent_channel: int | None = None
    warnings: tuple[str, ...] = ()
    asked: bool = False
    """The layout was asked for (``--layout``), not picked by the channel count."""
    channel: int | None = None
    """Mono only: analyse this channel alone instead of the mix of all (the other one is silent)."""

    def warn(self, text: str, layout: Layout | None = None, channel: int | None = None) -> Plan:
        """This plan with ``text`` added to the warnings (and ``layout`` and the mono ``channel`` instead, if
        given)."""
        return replace(self, layout=layout or self.layout, warnings=(*self.warnings, text),
                       channel=channel if channel is not None else self.channel)


def resolve(requested: Layout | None, channels: int, agent_channel: int | None = None) -> Plan:
    """The plan for a recording of ``channels`` channels; raises :class:`LayoutError` when the
    requested layout cannot fit (the message has no file name: the caller adds it)."""
    if requested is not None:
        return replace(_resolve(requested, channels, agent_channel), asked=True)
    return _resolve(requested, channels, agent_channel)


def _resolve(requested: Layout | None, channels: int, agent_channel: int | None) -> Plan:
    if requested is None:
        if channels <= 2:
            return Plan(Layout.MONO if channels == 1 else Layout.HEADSET)
        return Plan(Layout.MONO).warn(f"{channels} channels: mixed down to mono (use --layout to choose)")
    if requested is Layout.MONO:
        return Plan(Layout.MONO)
    if requested is Layout.HEADSET:
        if channels == 1:
            return Plan(Layout.MONO).warn("1 channel (no ear cup): analysed as mono")
        if channels > 2:
            raise LayoutError(f"the headset layout needs 2 channels (boom, ear cup), the file has {channels}: "
                              "use --layout mono")
        return Plan(Layout.HEADSET)
    agent = 0 if agent_channel is None else agent_channel
    if not 0 <= agent < channels:
        raise LayoutError(f"--agent-channel {agent} is out of range: the file has {channels} channel(s) "
                          f"(0..{channels - 1})")
    if channels != 2:
        raise LayoutError(f"the call layout needs 2 channels (agent, customer), the file has {channels}")
    return Plan(Layout.CALL, agent_channel=agent)


@dataclass(frozen=True, slots=True)
class ChannelReport:
    """Whole-file comparison of channels 0 and 1.

    ``difference_db``: level of (channel 0 - channel 1) relative to the channels' mean level, dB
    (None for digital silence); ``ear_minus_boom_db``: channel 1 minus channel 0 level, dB, in the
    speech band over the active frames (None when there are none); ``coherence``: the per-frame
    correlation of the two channels in the speech band at zero lag (-1..1), averaged over the
    active frames weighted by their energy (None when there are none).
    """

    difference_db: float | None
    ear_minus_boom_db: float | None
    coherence: float | None = None

    @property
    def identical(self) -> bool:
        """The two channels carry the same signal (a mono recording saved as stereo)."""
        return self.difference_db is not None and self.difference_db < IDENTICAL_BELOW_DB

    @property
    def silent_channel(self) -> int | None:
        """The channel (0 or 1) that is silent in speech while the other is not (None: neither)."""
        d = self.ear_minus_boom_db
        if d is None or abs(d) < SILENT_BELOW_DB:
            return None
        return 1 if d < 0 else 0

    @property
    def inverted(self) -> bool:
        """The two channels carry the same sound with opposite polarity (see ``INVERTED_BELOW``)."""
        return self.coherence is not None and self.coherence <= INVERTED_BELOW

    @property
    def louder_channel(self) -> int:
        """The channel (0 or 1) louder in speech (0 when unknown or equal)."""
        return 1 if self.ear_minus_boom_db is not None and self.ear_minus_boom_db > 0 else 0

    @property
    def balanced(self) -> bool:
        """The ear cup is about as loud as the boom in speech: no wearer talking into the boom."""
        d = self.ear_minus_boom_db
        return d is not None and abs(d) <= BALANCED_WITHIN_DB

    @property
    def apart(self) -> bool:
        """The two channels are little alike (see ``APART_BELOW``): microphones apart in a room."""
        return self.coherence is not None and self.coherence < APART_BELOW

    @property
    def coherent(self) -> bool:
        """The two channels carry the same sound (a produced stereo file), which a headset's boom and
        ear cup, 12 cm apart with the head between, never do."""
        return self.coherence is not None and self.coherence >= COHERENT_ABOVE


class ChannelCheck:
    """Accumulates :class:`ChannelReport` over blocks ``(n, 2)`` at ``rate_hz`` (bounded work per
    block; 24 bytes per 40 ms frame are kept for the speech weighting and the coherence)."""

    def __init__(self, rate_hz: int) -> None:
        self.rate_hz = rate_hz
        self.frame = max(1, round(FRAME_S * rate_hz))
        freqs = np.fft.rfftfreq(self.frame, 1.0 / rate_hz)
        self._band = (freqs >= SPEECH_BAND_HZ[0]) & (freqs <= SPEECH_BAND_HZ[1])
        self._window = np.hanning(self.frame).reshape(1, -1, 1)  # little leakage of hum and hiss into the band
        self._rest: FloatArray = np.zeros((0, 2))
        self._frames: list[FloatArray] = []  # speech-band energy of each channel and their cross term, (k, 3)
        self._sq = 0.0  # sum of squares of both channels
        self._diff_sq = 0.0  # sum of squares of channel 0 - channel 1

    def add(self, block: FloatArray) -> None:
        """Add the next samples, shape ``(n, 2)``, full scale 1.0."""
        self._sq += float(np.square(block).sum())
        self._diff_sq += float(np.square(block[:, 0] - block[:, 1]).sum())
        x = np.concatenate([self._rest, block]) if self._rest.shape[0] else block
        k = x.shape[0] // self.frame
        self._rest = x[k * self.frame:].copy()
        if k:
            frames = x[: k * self.frame].reshape(k, self.frame, 2)
            spec = np.fft.rfft(frames * self._window, axis=1)[:, self._band, :]
            energy = np.square(np.abs(spec)).sum(axis=1)
            cross = (spec[:, :, 0] * np.conj(spec[:, :, 1])).real.sum(axis=1)
            self._frames.append(np.column_stack([energy, cross]))

    def report(self) -> ChannelReport:
        """The comparison over everything added so far."""
        difference: float | None = None  # digital silence: neither identical nor different
        if self._sq > 0:
            difference = 10.0 * math.log10(self._diff_sq / (self._sq / 2.0)) if self._diff_sq > 0 else -math.inf
        f = np.concatenate(self._frames) if self._frames else np.zeros((0, 3))
        e, cross = f[:, :2], f[:, 2]
        louder = np.max(e, axis=1) if e.shape[0] else np.zeros(0)
        if not (louder > 0).any():
            return ChannelReport(difference, None)
        level = 10.0 * np.log10(np.maximum(louder, 1e-30))
        active = level > float(np.percentile(level, 95.0)) - ACTIVE_RANGE_DB
        boom, ear = (float(v) for v in e[active].sum(axis=0))
        both = e[active].sum(axis=1)
        corr = cross[active] / np.sqrt(np.maximum(e[active, 0] * e[active, 1], 1e-60))
        coherence = float(np.sum(corr * both) / np.sum(both))
        return ChannelReport(difference, 10.0 * math.log10(max(ear, 1e-30) / max(boom, 1e-30)), coherence)


def apply_check(plan: Plan, report: ChannelReport) -> Plan:
    """``plan`` after the channel check: any plan but a call's falls back to mono of the louder channel when
    the two carry the same sound with opposite polarity; a headset plan falls back to mono of the other
    channel when one is silent, and to mono for identical channels, a louder ear cup, or two channels about as loud that carry the same sound, and, unless the headset
    layout was asked for, for any two channels about as loud (asked for: warned); a call plan with a
    silent side, identical channels, or two carrying the same sound about as loud, is warned about."""
    silent = report.silent_channel
    if report.inverted and silent is None:
        assert report.coherence is not None
        about = f"coherence {report.coherence:.2f}"
        if plan.layout is Layout.CALL:
            return plan.warn(f"channels 0 and 1 carry the same sound with opposite polarity ({about}): one recording "
                             "in both channels, one of them inverted? agent and customer cannot be told apart")
        if plan.channel is None:
            keep = report.louder_channel
            return plan.warn(f"channels 0 and 1 carry the same sound with opposite polarity ({about}: one channel's "
                             f"wiring inverted?), which a mix would cancel; analysed channel {keep} alone as mono",
                             Layout.MONO, channel=keep)
    if plan.layout is Layout.CALL:
        if silent is not None:
            side = "agent" if silent == plan.agent_channel else "customer"
            return plan.warn(f"channel {silent} ({side}) is silent ({SILENT_BELOW_DB:g} dB or more under the other in "
                             f"speech): a mono recording in one side of a stereo file?")
        if report.identical:
            return plan.warn("channels 0 and 1 are identical (a mono recording saved as stereo?): "
                             "agent and customer cannot be told apart")
        if report.balanced and report.coherent:
            assert report.coherence is not None
            return plan.warn(f"channels 0 and 1 carry the same sound about as loud (coherence {report.coherence:.2f}: "
                             "both talkers mixed into each channel?): agent and customer cannot be told apart")
        return plan
    if plan.layout is not Layout.HEADSET:
        return plan
    if silent is not None:
        other = 1 - silent
        name = "the boom" if silent == 0 else "the ear cup"
        return plan.warn(f"channel {silent} ({name}) is silent ({SILENT_BELOW_DB:g} dB or more under channel {other} in "
                         f"speech): a mono recording in one side of a stereo file? analysed channel {other} alone as "
                         "mono", Layout.MONO, channel=other)
    if report.identical:
        return plan.warn("channels 0 and 1 are identical (a mono recording saved as stereo?); analysed as mono "
                         "— use --layout mono", Layout.MONO)
    d = report.ear_minus_boom_db
    if d is not None and d > EAR_LOUDER_DB:
        return plan.warn(f"ear-cup channel (1) is {d:.1f} dB louder than the boom (0) in speech: not a headset "
                         "recording, or channels swapped? analysed as mono (channels mixed) — use --layout mono, "
                         "or --layout call for a call recording", Layout.MONO)
    if report.balanced:
        assert d is not None
        about = f"ear cup {d:+.1f} dB re boom in speech" + (
            f", coherence {report.coherence:.2f}" if report.coherence is not None else "")
        if report.coherent:
            return plan.warn(f"channels 0 and 1 carry the same sound about as loud ({about}): a stereo recording, "
                             "not a headset's boom and ear cup; analysed as mono (channels mixed) — use --layout "
                             "mono, or --layout call for a call recording", Layout.MONO)
        if not plan.asked and report.apart:
            return plan.warn(f"the ear cup is about as loud as the boom ({about}): no wearer talking into the "
                             "boom — a room or stereo recording rather than a headset? analysed as mono (channels "
                             "mixed: everyone's speech) — use --layout headset for the wearer's own speech only",
                             Layout.MONO)
        return plan.warn(f"the ear cup is about as loud as the boom ({about}): the wearer hardly spoke, the boom is "
                         "far from the mouth, or this is not a headset recording — use --layout mono for everyone's "
                         "speech")
    return plan


def no_own_speech_warning(report: ChannelReport | None, speech_s: float, activity: float) -> str | None:
    """A warning for a headset analysis that found no own speech although the boom was active
    (P.56 ``activity`` 0..1), unless the channel check has already explained it."""
    if speech_s > 0 or activity < NO_OWN_SPEECH_ACTIVITY or (report is not None and report.balanced):
        return None
    d = report.ear_minus_boom_db if report is not None else None
    ild = f"ear cup {d:+.1f} dB re boom" if d is not None else "ear cup about as loud as the boom"
    return (f"no own speech found although the boom channel is active (P.56 activity {activity * 100:.0f} %, "
            f"{ild}): a room, far-field or stereo recording rather than a headset? use --layout mono")
