"""The demo's desks: what each virtual agent does, and which alert it must raise.

Times are fractions of the demo's duration, so the same story plays at any ``--duration``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from host_agent.demo.cti import CallStory
from host_agent.demo.speech import AGENT_LINES, Segment

CALM_WPM = 80
FAST_WPM = 190


def _talk(speed_wpm: int = CALM_WPM, gain_db: float = 0.0, distance_cm: float = 5.0) -> list[Segment]:
    """A call: the agent speaks each line, then listens to the customer for a while."""
    out: list[Segment] = []
    for i, line in enumerate(AGENT_LINES):
        out.append(Segment(say=line, speed_wpm=speed_wpm, gain_db=gain_db, distance_cm=distance_cm))
        out.append(Segment(pause_s=1.0 + 0.5 * (i % 3)))
    return out


def _brisk_talk(lines: tuple[str, ...] = AGENT_LINES) -> list[Segment]:
    """The call desks' talk: pauses under a second, so that a call answered at any moment hears the agent
    within the 2 s greeting norm."""
    out: list[Segment] = []
    for line in lines:
        out.append(Segment(say=line, speed_wpm=CALM_WPM))
        out.append(Segment(pause_s=0.7))
    return out


def flat(line: str) -> str:
    """A pinyin line with every syllable in the first (high, level) tone: a flat, monotone reading."""
    return re.sub(r"[1-5]", "1", line)


FLAT_LINES = tuple(flat(line) for line in AGENT_LINES[:2])
"""Two lines read without any pitch movement (about 0.7 semitones of F0 spread, against about 4 for the
toned lines): the monotone desk's voice."""


def _late_talk() -> list[Segment]:
    """Lines with a 10 s wait after each: a call answered as a line ends hears nothing for seconds."""
    out: list[Segment] = []
    for line in AGENT_LINES:
        out.append(Segment(say=line, speed_wpm=CALM_WPM))
        out.append(Segment(pause_s=10.0))
    return out


@dataclass(frozen=True)
class PostureStep:
    """From ``at`` (fraction of the run) on: head pitch/roll (degrees) and whether the headset is worn."""

    at: float
    pitch_deg: float = 2.0
    roll_deg: float = 0.0
    worn: bool = True


@dataclass(frozen=True)
class Scenario:
    name: str
    description: str
    expect_rule: str
    """The host alert rule this desk must fire (ids from host_agent's default rules)."""
    audio: tuple[Segment, ...] = ()
    """Played in a loop. ``audio_after`` replaces it from ``audio_switch_at`` on."""
    audio_after: tuple[Segment, ...] = ()
    audio_switch_at: float = 1.0
    posture: tuple[PostureStep, ...] = (PostureStep(0.0),)
    unplug_at: float | None = None
    """The desk unit dies (kill -9) at this fraction, and comes back at ``replug_at``."""
    replug_at: float | None = None
    seed: int = 0
    calls: CallStory | None = None
    """Calls from the demo's PBX bridge (:mod:`host_agent.demo.cti`; the desk's ``[calls] source = "mqtt"``);
    None: the desk has no call source."""
    extra: dict[str, str] = field(default_factory=dict)


SCENARIOS: tuple[Scenario, ...] = (
    Scenario("calm", "a calm agent whose desk unit is unplugged mid-run, so it goes lost",
             expect_rule="desk-offline", audio=tuple(_talk()), unplug_at=0.35, replug_at=0.7, seed=1),
    Scenario("loud", "an agent who gets too loud, then calms down", expect_rule="volume",
             audio=tuple(_talk(gain_db=13.0)), audio_after=tuple(_talk()), audio_switch_at=0.45, seed=2),
    Scenario("fast", "a fast talker who slows down later", expect_rule="pace",
             audio=tuple(_talk(speed_wpm=FAST_WPM)), audio_after=tuple(_talk()), audio_switch_at=0.45, seed=3),
    Scenario("far-mic", "a mic pushed too far from the lips, then put back", expect_rule="mic-position",
             audio=tuple(_talk(distance_cm=13.0)), audio_after=tuple(_talk()), audio_switch_at=0.45, seed=4),
    Scenario("slouch", "an agent who slouches, then sits up", expect_rule="posture",
             audio=tuple(_talk()),
             posture=(PostureStep(0.0), PostureStep(0.08, pitch_deg=26.0), PostureStep(0.6, pitch_deg=3.0)),
             seed=5),
    Scenario("long-break", "a long break, so the break-overrun level climbs", expect_rule="break-overrun",
             audio=tuple(_talk()),
             posture=(PostureStep(0.0), PostureStep(0.03, worn=False), PostureStep(0.85, worn=True)),
             seed=6),
    # call desks: a PBX bridge on their cti topic rings them (host_agent.demo.cti); bad calls until mid-run
    Scenario("slow-phone", "a phone left ringing: calls answered after 6 rings, then at the first ring",
             expect_rule="slow-answer", audio=tuple(_brisk_talk()), calls=CallStory(rings=6, good_from=0.45), seed=7),
    Scenario("late-greet", "calls answered at once, but the greeting comes seconds later; prompt from mid-run",
             expect_rule="late-greeting", audio=tuple(_late_talk()),
             calls=CallStory(greeting="late", good_from=0.45, long_pauses=True), seed=8),
    Scenario("monotone", "a flat, monotone voice on every call, then a lively one", expect_rule="monotone",
             audio=tuple(_brisk_talk(FLAT_LINES)), audio_after=tuple(_brisk_talk()), audio_switch_at=0.4,
             calls=CallStory(), seed=9),
)


def calibration_segments() -> tuple[Segment, ...]:
    """What an agent reads for the headset calibration: every line, calmly, at 5 cm."""
    return tuple(_talk())


def pick(n: int) -> list[Scenario]:
    """The first ``n`` scenarios, cycling (with new seeds) when more desks than stories are asked for."""
    out = []
    for i in range(n):
        base = SCENARIOS[i % len(SCENARIOS)]
        out.append(base if i < len(SCENARIOS) else Scenario(**{**base.__dict__, "seed": base.seed + 100 * i}))
    return out


def by_name(names: tuple[str, ...] | list[str]) -> list[Scenario]:
    """The scenarios named, in that order; :class:`ValueError` naming the unknown ones."""
    known = {s.name: s for s in SCENARIOS}
    unknown = [n for n in names if n not in known]
    if unknown:
        raise ValueError(f"unknown demo stories {unknown}; known: {sorted(known)}")
    return [known[n] for n in names]
