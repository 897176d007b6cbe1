"""Message types of the headset coach, schema version 1.

Units live in field names: ``_dbov`` (dB relative to full scale, ITU-T P.56 convention: a
full-scale square wave is 0 dBov), ``_spm`` (syllables per minute), ``_cm``, ``_deg``, ``_s``
(seconds), ``ts`` (milliseconds since the Unix epoch, UTC).

Every desk payload carries ``v`` (schema major version), ``site``, ``desk``, ``boot`` (the desk
unit's boot counter), ``seq`` (monotonic per boot, shared by all kinds) and ``ts``.

Privacy: payloads hold numbers, states and ids only. No field can carry audio samples, spectra or
transcripts: lists are short and typed, strings are short.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Annotated, Any, Literal

import msgspec
from msgspec import Meta

SCHEMA_VERSION = 1
"""Major version: a change that breaks old readers bumps it (and the topic's ``v1``)."""
SCHEMA_MINOR = 2
"""Minor version: adding optional fields, or a new topic kind with its own message type, bumps it;
readers tolerate unknown fields and do not subscribe to kinds they do not know.

1.1: the ``call`` summary (desk → host) and ``cti`` call state (a PBX or softphone bridge → desk)
topics; optional ``call``, ``intonation_st`` and ``monotone`` in ``metrics``; optional
``intonation_st`` and ``monotone_s`` in ``minute``.

1.2: optional ``far_talk_s``, ``silent_prompts``, ``silent_min_wait_s`` and ``silent_call_ok`` in
``call`` (the far end measured from baresip's recordings, and the silent-call norm)."""

# --- shared pieces -------------------------------------------------------------------------------

Id = Annotated[str, Meta(pattern=r"^[a-z0-9-]{1,32}$", description="id: [a-z0-9-]{1,32}")]
Version = Annotated[int, Meta(ge=1, le=1, description="schema major version, 1")]
Boot = Annotated[int, Meta(ge=0, le=2**53, description="desk unit boot counter, persisted")]
Seq = Annotated[int, Meta(ge=0, le=2**53, description="sequence number, monotonic per boot")]
TsMs = Annotated[int, Meta(ge=0, le=2**53, description="milliseconds since the Unix epoch, UTC")]
Dbov = Annotated[float, Meta(ge=-200.0, le=10.0, description="level in dBov")]
Spm = Annotated[float, Meta(ge=0.0, le=1200.0, description="syllables per minute of own speech")]
Cm = Annotated[float, Meta(ge=0.0, le=100.0, description="mouth-to-mic distance in cm")]
Deg = Annotated[float, Meta(ge=-180.0, le=180.0, description="angle in degrees")]
Seconds = Annotated[float, Meta(ge=0.0, le=86400.0, description="duration in seconds")]
MinuteSeconds = Annotated[float, Meta(ge=0.0, le=60.5, description="seconds within one minute")]
Fraction = Annotated[float, Meta(ge=0.0, le=1.0, description="fraction, 0..1")]
Semitones = Annotated[float, Meta(ge=0.0, le=48.0, description="F0 spread in semitones (10th-90th percentile)")]
Count = Annotated[int, Meta(ge=0, le=1000, description="a small count")]
CallRef = Annotated[str, Meta(pattern=r"^[A-Za-z0-9._:@+\-]{1,128}$",
                              description="a call source's opaque call id (no spaces; never a phone number)")]
ShortText = Annotated[str, Meta(max_length=200, description="short text, never speech content")]
Hash = Annotated[str, Meta(pattern=r"^[0-9a-f]{8,64}$", description="hex digest")]
VersionText = Annotated[str, Meta(max_length=40, pattern=r"^[0-9A-Za-z.+\-_]{1,40}$")]


class Cue(StrEnum):
    """A coaching cue the desk shows the agent. Speech cues count own-speech seconds."""

    VOLUME_LOW = "volume_low"
    VOLUME_HIGH = "volume_high"
    PACE_SLOW = "pace_slow"
    PACE_FAST = "pace_fast"
    MIC_CLOSE = "mic_close"
    MIC_FAR = "mic_far"
    POSTURE = "posture"


class Posture(StrEnum):
    UPRIGHT = "upright"
    SLOUCHED = "slouched"
    UNKNOWN = "unknown"


class DeskStatus(StrEnum):
    ONLINE = "online"
    OFFLINE = "offline"
    LOST = "lost"


class PartStatus(StrEnum):
    """Status of one input of the desk unit (audio, headset link)."""

    OK = "ok"
    ERROR = "error"
    NONE = "none"


class EventKind(StrEnum):
    CUE_ON = "cue_on"
    CUE_OFF = "cue_off"
    WORN = "worn"
    DOFFED = "doffed"
    CALIBRATION = "calibration"
    CONFIG_APPLIED = "config_applied"
    CONFIG_REJECTED = "config_rejected"
    HEADSET_CONNECTED = "headset_connected"
    HEADSET_DISCONNECTED = "headset_disconnected"
    AUDIO_ERROR = "audio_error"
    AUDIO_OK = "audio_ok"
    SPOOL_DROPPED = "spool_dropped"
    ERROR = "error"


class CallStatus(StrEnum):
    """The desk's live call state (``metrics.call``): between calls ``idle``."""

    IDLE = "idle"
    RINGING = "ringing"
    ESTABLISHED = "established"


class CallDirection(StrEnum):
    INCOMING = "incoming"
    OUTGOING = "outgoing"


class CtiPhase(StrEnum):
    """A call's phase as a CTI bridge reports it (``cti``)."""

    RINGING = "ringing"
    ESTABLISHED = "established"
    CLOSED = "closed"


class Severity(StrEnum):
    INFO = "info"
    WARNING = "warning"
    CRITICAL = "critical"


class AlertTransition(StrEnum):
    PENDING = "pending"
    FIRING = "firing"
    RESOLVED = "resolved"
    SILENCED = "silenced"
    UNSILENCED = "unsilenced"
    LEVEL_CHANGED = "level_changed"


Capability = Literal["dual-mic", "mono-mic", "imu", "wear", "leds", "headset-led", "button"]


class Versions(msgspec.Struct, frozen=True, forbid_unknown_fields=False):
    agent: VersionText
    schema: VersionText
    firmware: VersionText | None = None


class _Desk(msgspec.Struct, frozen=True, kw_only=True):
    """Header common to every desk payload."""

    v: Version = SCHEMA_VERSION
    site: Id
    desk: Id
    boot: Boot
    seq: Seq
    ts: TsMs


# --- desk → host ---------------------------------------------------------------------------------


class State(_Desk, frozen=True, kw_only=True, tag="state", tag_field="type"):
    """Retained, QoS 1. The birth (``online``), a clean ``offline``, or the ``lost`` last will."""

    status: DeskStatus
    versions: Versions | None = None
    capabilities: Annotated[list[Capability], Meta(max_length=8)] = []
    config_hash: Hash | None = None
    audio: PartStatus = PartStatus.NONE
    headset: PartStatus = PartStatus.NONE
    headset_id: Id | None = None


class Metrics(_Desk, frozen=True, kw_only=True, tag="metrics", tag_field="type"):
    """QoS 0, about every second: a snapshot. Values are ``null`` when not measured."""

    interval_s: Annotated[float, Meta(gt=0.0, le=60.0)] = 1.0
    speaking: bool = False
    speech_s: Annotated[float, Meta(ge=0.0, le=60.0, description="own speech in the interval, s")] = 0.0
    level_dbov: Dbov | None = None
    rate_spm: Spm | None = None
    distance_cm: Cm | None = None
    noise_dbov: Dbov | None = None
    clipping: Fraction = 0.0
    worn: bool | None = None
    posture: Posture = Posture.UNKNOWN
    pitch_deg: Deg | None = None
    roll_deg: Deg | None = None
    cues: Annotated[list[Cue], Meta(max_length=7)] = []
    audio: PartStatus = PartStatus.NONE
    headset: PartStatus = PartStatus.NONE
    # 1.1
    call: CallStatus | None = None
    """The desk's call state; null when the desk has no call source."""
    intonation_st: Semitones | None = None
    """F0 spread over the last 10 s of own speech; null when not measured (off, too little voiced speech)."""
    monotone: bool | None = None
    """The monotone cue; null when intonation is not measured."""


class Event(_Desk, frozen=True, kw_only=True, tag="event", tag_field="type"):
    """QoS 1, spooled on the desk: cue changes, wear, calibration, config, errors."""

    kind: EventKind
    cue: Cue | None = None
    value: float | None = None
    count: Annotated[int, Meta(ge=0)] | None = None
    message: ShortText | None = None


class Minute(_Desk, frozen=True, kw_only=True, tag="minute", tag_field="type"):
    """QoS 1, spooled: the rollup of one wall-clock minute starting at ``minute_ts``."""

    minute_ts: TsMs
    speech_s: MinuteSeconds = 0.0
    level_dbov: Dbov | None = None
    rate_spm: Spm | None = None
    distance_cm: Cm | None = None
    noise_dbov: Dbov | None = None
    cue_s: dict[Cue, MinuteSeconds] = {}
    worn_s: MinuteSeconds = 0.0
    slouched_s: MinuteSeconds = 0.0
    upright_s: MinuteSeconds = 0.0
    # 1.1
    intonation_st: Semitones | None = None
    """Mean live F0 spread over the minute's own speech; null when not measured."""
    monotone_s: MinuteSeconds | None = None
    """Own-speech seconds with the monotone cue on; null when intonation is not measured."""


class Call(_Desk, frozen=True, kw_only=True, tag="call", tag_field="type"):
    """QoS 1, spooled (1.1): the summary of one finished call. Numbers, flags and ids only.

    ``call_id`` is the first 16 hex digits of sha256 of the source's call id (the SIP Call-ID, the
    CTI bridge's id, ``gpio-<ms>``): a PBX can match it, nobody can read a number or URI out of it.
    Times are agent-clock ms; ``null`` = not measured or not applicable (see docs/mqtt.md).
    """

    call_id: Hash
    source: Id
    direction: CallDirection | None = None
    start_ts: TsMs
    """When the call began: ringing, else the connection."""
    end_ts: TsMs
    answered: bool = False
    abandoned: bool = False
    """An incoming call that closed while ringing (the caller gave up, or nobody answered)."""
    rings: Count | None = None
    rings_counted: bool = False
    """True: counted by the source (GPIO ring bursts, CTI); False: from the ringing time and the cadence."""
    ring_s: Seconds | None = None
    greeting_latency_s: Seconds | None = None
    """From the connection to the onset of own speech."""
    talk_s: Seconds | None = None
    """Connected time, from the connection to the hang-up."""
    own_talk_s: Seconds | None = None
    longest_own_silence_s: Seconds | None = None
    silent_call: bool | None = None
    """True when the far end stayed silent; null: the far end's audio is not measured."""
    longest_mutual_silence_s: Seconds | None = None
    far_talk_s: Seconds | None = None
    """(1.2) The far end's speech between connection and hang-up; null: not measured."""
    silent_prompts: Count | None = None
    """(1.2) Silent calls only: the agent's prompts (own-speech bursts)."""
    silent_min_wait_s: Seconds | None = None
    """(1.2) Silent calls only: the shortest wait after a prompt (to the next one, or to the hang-up)."""
    silent_call_ok: bool | None = None
    """(1.2) Silent calls only: the norm followed (at least 2 prompts, each followed by a 2 s wait, then the
    close); null for calls that were not silent or whose far end is not measured."""
    answer_ok: bool | None = None
    greeting_ok: bool | None = None
    max_rings: Count | None = None
    greet_within_s: Seconds | None = None
    """The norms ``answer_ok`` and ``greeting_ok`` were judged against."""
    intonation_st: Semitones | None = None
    """F0 spread over the call's own speech; null when not measured or too little voiced speech."""
    monotone_share: Fraction | None = None
    """Share of the call's own speech with the monotone cue on; null when not measured or no own speech."""
    level_dbov: Dbov | None = None
    rate_spm: Spm | None = None


class Config(msgspec.Struct, frozen=True, kw_only=True, tag="config", tag_field="type"):
    """Retained, QoS 1, to the desk: the desired agent config (validated by the desk itself).

    ``config`` is the same table structure as the agent's TOML file. ``calibrate_posture`` asks the
    desk to take the current head pose as the upright pose (only while the headset is worn).
    """

    v: Version = SCHEMA_VERSION
    site: Id
    desk: Id
    ts: TsMs
    config: dict[str, Any] = {}
    calibrate_posture: bool = False


class Cti(msgspec.Struct, frozen=True, kw_only=True, tag="cti", tag_field="type"):
    """QoS 1, not retained, to the desk (1.1): a call's phase from a PBX or softphone bridge.

    The desk stamps each transition with its own clock when it receives it (``ts`` is the bridge's
    time, for logs). ``rings`` is the bridge's ring count when it has one. A repeated phase of the same
    ``call_id`` is ignored, so a bridge may repeat itself.
    """

    v: Version = SCHEMA_VERSION
    site: Id
    desk: Id
    ts: TsMs
    call_id: CallRef
    phase: CtiPhase
    direction: CallDirection | None = None
    rings: Count | None = None
    reason: ShortText | None = None


# --- host → supervisors --------------------------------------------------------------------------


class Alert(msgspec.Struct, frozen=True, kw_only=True, tag="alert", tag_field="type"):
    """Retained on ``hsc/v1/{site}/alert/{desk}/{rule}`` while firing; cleared by an empty payload."""

    v: Version = SCHEMA_VERSION
    site: Id
    desk: Id
    rule: Id
    severity: Severity = Severity.WARNING
    level: Annotated[int, Meta(ge=1, le=7)] | None = None
    since_ts: TsMs
    ts: TsMs
    value: float | None = None
    summary: ShortText = ""
    silenced: bool = False


class AlertLog(msgspec.Struct, frozen=True, kw_only=True, tag="alert-log", tag_field="type"):
    """One alert transition, on ``hsc/v1/{site}/alert-log``."""

    v: Version = SCHEMA_VERSION
    site: Id
    desk: Id
    rule: Id
    transition: AlertTransition
    severity: Severity = Severity.WARNING
    level: Annotated[int, Meta(ge=1, le=7)] | None = None
    ts: TsMs
    value: float | None = None
    summary: ShortText = ""


DeskMessage = State | Metrics | Event | Minute | Call
Message = State | Metrics | Event | Minute | Call | Config | Cti | Alert | AlertLog
MESSAGE_TYPES: tuple[type[msgspec.Struct], ...] = (State, Metrics, Event, Minute, Call, Config, Cti, Alert,
                                                   AlertLog)
