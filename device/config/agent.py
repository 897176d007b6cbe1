"""The desk agent's config: ``agent.toml`` (TOML, read with :mod:`tomllib`), every field validated.

Tables (see ``device/agent.example.toml`` for every field with its default):

- ``[desk]`` ``site``, ``desk``: ids ``[a-z0-9-]{1,32}``.
- ``[mqtt]``: :class:`device.config.mqtt_settings.MqttSettings` (written by ``headset-flash provision-desk``).
- ``[audio]`` ``source`` (``alsa:<name>`` or ``file:<path>``), ``loop``, ``speed`` (audio seconds per
  wall second for file sources; default: the time scale), ``block_ms`` (ms of audio per read).
- ``[headset]`` ``port`` (a serial device path, or ``none``), ``baud``, ``forward_led``.
- ``[calibration]`` ``file``: a headset calibration (``headset-agent calibrate``).
- ``[cues]``: :class:`device.outputs.cues.CueConfig`.
- ``[posture]`` ``forward_deg`` (15), ``slouch_s`` (30), ``clear_deg`` (10), ``clear_s`` (1).
- ``[leds]``: :class:`device.outputs.leds.LedPins` (default: the pin map of ``hw/desk_pins.toml``).
- ``[calls]`` ``source`` (``none``, ``gpio``, ``baresip``, ``baresip:HOST:PORT`` or ``mqtt``),
  ``ring_on_s``/``ring_off_s`` (the ring cadence), ``max_rings``, ``greet_within_s`` (the norms),
  ``far_end_dir`` (baresip's ``sndfile`` folder: the far end is measured), ``keep_far_end_audio`` and
  the silent-call norm ``silent_far_s``, ``silent_prompts``, ``silent_wait_s``.
- ``[intonation]`` ``enabled``, ``window_s``, ``monotone_st``, ``clear_st``, ``monotone_for_s``.
- ``[spool]`` ``max_rows``.
- ``[agent]`` ``state_dir``, ``metrics_interval_s``, ``log_level``, ``log_format``.

Errors are :class:`device.errors.ConfigError` naming the field and, for a file, its line:
``agent.toml line 7: posture.forward_deg: must be a number in 1..60, got 'x'``. Unknown keys are
refused with a "did you mean" hint. Nothing else escapes: a file that is not UTF-8 or TOML, nesting
deeper than the parser's recursion limit, integers too large for a float, or a ``~user`` path of
an unknown user are ConfigErrors too. A value from a command-line flag is named by its flag
(``--broker (sets mqtt.url): mqtt.url: ...``) in a :class:`device.errors.FlagError`, a ConfigError that is
also a usage error (exit code 2).

A remote config (``mqtt_schema.Config.config``, the same table structure) is merged over the file
config and validated by the same code (:func:`apply_remote`). The identity and the hardware of the
unit (``desk``, ``mqtt``, ``audio``, ``headset``, ``leds``, ``spool``, ``agent.state_dir``) cannot
be changed remotely; nor can ``calls.source`` (it is wiring).
"""

from __future__ import annotations

import copy
import dataclasses
import hashlib
import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

from device.calls import CallNorms, RingCadence, parse_source
from device.config import checks as check
from device.config.mqtt_settings import KNOWN_KEYS as MQTT_KEYS
from device.config.mqtt_settings import MqttSettings
from device.dsp.errors import DspError
from device.dsp.intonation import IntonationParams
from device.errors import ConfigError, FlagError
from mqtt_schema import SchemaError, check_id
from mqtt_schema.topics import RESERVED_DESK_IDS

T = TypeVar("T")
DEFAULT_STATE_DIR = Path("/var/lib/headset-coach")
DEFAULT_CONFIG_PATH = Path("/etc/headset-coach/agent.toml")
BAUD_RATES = (9600, 19200, 38400, 57600, 115200, 230400, 460800, 921600)
LOG_LEVELS = ("debug", "info", "warning", "error")
LOG_FORMATS = ("json", "kv")
SPEED_RANGE = (0.01, 1000.0)
"""``audio.speed`` (``--speed``): audio seconds per wall second, least and most."""

TABLES: dict[str, frozenset[str] | None] = {
    "desk": frozenset({"site", "desk"}),
    "mqtt": MQTT_KEYS,
    "audio": frozenset({"source", "loop", "speed", "block_ms"}),
    "headset": frozenset({"port", "baud", "forward_led"}),
    "calibration": frozenset({"file"}),
    "cues": None,  # validated by device.outputs.cues.CueConfig
    "posture": frozenset({"forward_deg", "slouch_s", "clear_deg", "clear_s"}),
    "leds": None,  # validated by device.outputs.leds.LedPins
    "calls": frozenset({"source", "ring_on_s", "ring_off_s", "max_rings", "greet_within_s", "far_end_dir",
                        "keep_far_end_audio", "silent_far_s", "silent_prompts", "silent_wait_s"}),
    "intonation": frozenset({"enabled", "window_s", "monotone_st", "clear_st", "monotone_for_s"}),
    "spool": frozenset({"max_rows"}),
    "agent": frozenset({"state_dir", "metrics_interval_s", "log_level", "log_format"}),
}
LOCAL_ONLY: dict[str, frozenset[str] | None] = {
    "desk": None, "mqtt": None, "audio": None, "headset": None, "leds": None, "spool": None,
    "calls": frozenset({"source", "far_end_dir", "keep_far_end_audio"}),
    "agent": frozenset({"state_dir"}),
}
"""Tables (None: the whole table) or keys that a remote config cannot change."""


# --- settings of one table each ------------------------------------------------------------------


@dataclass(frozen=True)
class DeskIds:
    site: str
    desk: str


@dataclass(frozen=True)
class AudioSettings:
    """``source``: ``alsa:<name>`` or ``file:<path>``. ``speed``: audio s per wall s (None: time scale)."""

    source: str = "alsa:default"
    loop: bool = False
    speed: float | None = None
    block_ms: int = 50

    @property
    def kind(self) -> str:
        return self.source.split(":", 1)[0]

    @property
    def target(self) -> str:
        return self.source.split(":", 1)[1]


@dataclass(frozen=True)
class HeadsetSettings:
    """``port``: serial device path (a pty works) or None for no headset; ``baud``: bit/s."""

    port: str | None = "/dev/ttyACM0"
    baud: int = 115200
    forward_led: bool = True


@dataclass(frozen=True)
class PostureSettings:
    """Slouch: more than ``forward_deg`` (deg) forward of upright for ``slouch_s`` (s); clears below
    ``clear_deg`` (deg) held for ``clear_s`` (s)."""

    forward_deg: float = 15.0
    slouch_s: float = 30.0
    clear_deg: float = 10.0
    clear_s: float = 1.0


_CALL_NORMS = CallNorms()
"""The norms' defaults (NORMS.md), which ``[calls]`` may change."""


@dataclass(frozen=True)
class CallSettings:
    """``source``: where call state comes from (:func:`device.calls.open_source`). The ring cadence
    (``ring_on_s`` of ringing, ``ring_off_s`` of silence) counts rings from the ringing time where the
    source cannot count them; the norms: answer within ``max_rings``, greet within ``greet_within_s`` (s).
    ``far_end_dir`` (baresip sources only): the folder baresip's ``sndfile`` module records calls to
    (its ``snd_path``; relative to the config file); set, the far end of each call is measured
    (:mod:`device.calls.far_end`) and the recordings deleted unless ``keep_far_end_audio``. The silent-call
    norm: a call whose far end talked under ``silent_far_s`` (s) is silent, and is handled when the agent
    gave ``silent_prompts`` prompts, each followed by ``silent_wait_s`` (s) of waiting, then closed."""

    source: str = "none"
    ring_on_s: float = 1.0
    ring_off_s: float = 4.0
    max_rings: int = 3
    greet_within_s: float = 2.0
    far_end_dir: str | None = None
    keep_far_end_audio: bool = False
    silent_far_s: float = _CALL_NORMS.silent_far_s
    silent_prompts: int = _CALL_NORMS.silent_prompts
    silent_wait_s: float = _CALL_NORMS.silent_wait_s

    @property
    def cadence(self) -> RingCadence:
        return RingCadence(self.ring_on_s, self.ring_off_s)

    @property
    def norms(self) -> CallNorms:
        return CallNorms(max_rings=self.max_rings, greet_within_s=self.greet_within_s,
                         silent_far_s=self.silent_far_s, silent_prompts=self.silent_prompts,
                         silent_wait_s=self.silent_wait_s)


@dataclass(frozen=True)
class IntonationSettings:
    """Pitch variation of own speech (:mod:`device.dsp.intonation`): the spread over the last
    ``window_s`` s of own speech; the monotone cue after ``monotone_for_s`` s of own speech with the
    spread below ``monotone_st`` (semitones), cleared once it reaches ``clear_st``."""

    enabled: bool = True
    window_s: float = 10.0
    monotone_st: float = 2.5
    clear_st: float = 3.0
    monotone_for_s: float = 10.0

    @property
    def params(self) -> IntonationParams:
        return IntonationParams(window_s=self.window_s, monotone_below_st=self.monotone_st,
                                clear_above_st=self.clear_st, monotone_for_s=self.monotone_for_s)


@dataclass(frozen=True)
class SpoolSettings:
    max_rows: int = 100_000


@dataclass(frozen=True)
class AgentSettings:
    state_dir: Path = DEFAULT_STATE_DIR
    metrics_interval_s: float = 1.0
    log_level: str = "info"
    log_format: str = "json"


@dataclass(frozen=True)
class AgentConfig:
    """The effective config: the file, then command-line overrides, then (at run time) remote config."""

    desk: DeskIds
    mqtt: MqttSettings
    audio: AudioSettings
    headset: HeadsetSettings
    calibration_file: Path | None
    calibration: Any  # device.dsp.HeadsetCalibration | None
    cues: Any  # device.outputs.cues.CueConfig
    posture: PostureSettings
    leds: Any  # device.outputs.leds.LedPins
    spool: SpoolSettings
    agent: AgentSettings
    tables: dict[str, Any] = field(repr=False)
    calls: CallSettings = CallSettings()
    intonation: IntonationSettings = IntonationSettings()
    """The raw tables this config was built from (file + overrides), before any remote config."""
    remote: dict[str, Any] = field(default_factory=dict, repr=False)
    """The remote tables merged over ``tables`` (empty when none applied)."""
    source: str = "<defaults>"
    base_dir: Path | None = None
    """The folder relative paths of the file are resolved against."""

    @property
    def config_hash(self) -> str:
        """sha256 (hex, first 16) of the canonical JSON of the effective config."""
        text = json.dumps(self.effective(), sort_keys=True, separators=(",", ":"), default=str)
        return hashlib.sha256(text.encode()).hexdigest()[:16]

    def effective(self) -> dict[str, Any]:
        """The effective config as plain JSON-able data, defaults filled in."""
        return {
            "desk": dataclasses.asdict(self.desk),
            "mqtt": _plain(self.mqtt),
            "audio": dataclasses.asdict(self.audio),
            "headset": dataclasses.asdict(self.headset),
            "calibration": {"file": None if self.calibration_file is None else str(self.calibration_file)},
            "cues": _plain(self.cues),
            "posture": dataclasses.asdict(self.posture),
            "leds": _plain(self.leds),
            "calls": dataclasses.asdict(self.calls),
            "intonation": dataclasses.asdict(self.intonation),
            "spool": dataclasses.asdict(self.spool),
            "agent": {k: str(v) if isinstance(v, Path) else v for k, v in dataclasses.asdict(self.agent).items()},
        }


def _plain(value: Any) -> Any:
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: _plain(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, Mapping):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    if isinstance(value, Path):
        return str(value)
    if isinstance(value, float | int | str | bool) or value is None:
        return value
    return str(value)


def _located(exc: ConfigError, source: str, index: check.LineIndex | None, overrides: Mapping[str, str]) -> ConfigError:
    """``exc`` with where it comes from: the command-line flag that set its field, or the file and line.

    A :class:`FlagError` (a usage error) when a flag set the field, or when there is no file (``index`` None)
    and the field is one a flag sets (``desk.site`` with no ``--site``): the command line is at fault.
    """
    msg, dotted = str(exc), exc.field or ""
    if dotted in overrides:
        return FlagError(f"{overrides[dotted]} (sets {dotted}): {msg}", field=exc.field)
    if index is None and dotted in OVERRIDE_FLAGS:
        return FlagError(f"{source}: {msg}", field=exc.field)
    line = index.line_of(dotted) if (index is not None and dotted) else None
    where = f"{source} line {line}" if line is not None else source
    return ConfigError(f"{where}: {msg}", field=exc.field, line=line)


# --- the tables ----------------------------------------------------------------------------------


def _desk(t: Mapping[str, Any]) -> DeskIds:
    ids = {}
    for key in ("site", "desk"):
        value = t.get(key)
        if value is None:
            flag = "--site" if key == "site" else "--desk"
            raise check.fail(f"desk.{key}", f"required (set it in [desk] or with {flag})")
        try:
            check_id(value, key)
        except SchemaError as exc:
            raise check.fail(f"desk.{key}", f"{exc}") from None
        ids[key] = value
    if ids["desk"] in RESERVED_DESK_IDS:
        raise check.fail("desk.desk", f"{ids['desk']!r} is a reserved word of the topic tree")
    return DeskIds(ids["site"], ids["desk"])


def _audio(t: Mapping[str, Any], base_dir: Path | None) -> AudioSettings:
    source = check.string(t, "source", "audio", AudioSettings.source)
    assert source is not None
    kind, sep, target = source.partition(":")
    if not sep or kind not in ("alsa", "file") or not target:
        raise check.fail("audio.source", f"must be 'alsa:<device name>' or 'file:<path>', got {source!r}")
    if kind == "file":
        p = check.path(target, base_dir, "audio.source")
        if not p.is_file():
            raise check.fail("audio.source", f"no such audio file {str(p)!r}")
        source = f"file:{p}"
    speed = t.get("speed")
    if speed is not None:
        speed = check.number(t, "speed", "audio", 1.0, *SPEED_RANGE, "x real time")
    return AudioSettings(source=source, loop=check.boolean(t, "loop", "audio", False), speed=speed,
                         block_ms=check.integer(t, "block_ms", "audio", AudioSettings.block_ms, 10, 1000))


def _headset(t: Mapping[str, Any]) -> HeadsetSettings:
    port = check.string(t, "port", "headset", HeadsetSettings.port)
    if port is not None and port.lower() == "none":
        port = None
    baud = check.integer(t, "baud", "headset", HeadsetSettings.baud, 1, 4_000_000)
    if baud not in BAUD_RATES:
        raise check.fail("headset.baud", f"must be one of {', '.join(map(str, BAUD_RATES))}, got {baud}")
    return HeadsetSettings(port=port, baud=baud, forward_led=check.boolean(t, "forward_led", "headset", True))


def _posture(t: Mapping[str, Any]) -> PostureSettings:
    forward = check.number(t, "forward_deg", "posture", 15.0, 1.0, 60.0, " deg")
    clear = check.number(t, "clear_deg", "posture", 10.0, 0.0, 60.0, " deg")
    if clear >= forward:
        raise check.fail("posture.clear_deg", f"must be below posture.forward_deg ({forward:g}), got {clear:g}")
    return PostureSettings(forward_deg=forward, slouch_s=check.number(t, "slouch_s", "posture", 30.0, 0.0, 3600.0, " s"),
                           clear_deg=clear, clear_s=check.number(t, "clear_s", "posture", 1.0, 0.0, 600.0, " s"))


def _calls(t: Mapping[str, Any], base_dir: Path | None = None) -> CallSettings:
    source = t.get("source", CallSettings.source)
    try:
        kind = parse_source(source, "calls.source")[0]  # a ConfigError naming the field in its message
    except ConfigError as exc:
        raise ConfigError(str(exc), field=exc.field or "calls.source") from None
    far_text = check.string(t, "far_end_dir", "calls", None)
    far_dir = None
    if far_text is not None:
        if kind != "baresip":
            raise check.fail("calls.far_end_dir", f"needs calls.source baresip (whose sndfile module records the "
                             f"far end), got source {source!r}")
        p = check.path(far_text, base_dir, "calls.far_end_dir")
        if not p.is_dir():
            raise check.fail("calls.far_end_dir", f"no such folder {str(p)!r} (baresip's sndfile snd_path)")
        far_dir = str(p)
    on = check.number(t, "ring_on_s", "calls", CallSettings.ring_on_s, 0.1, 10.0, " s")
    off = check.number(t, "ring_off_s", "calls", CallSettings.ring_off_s, 0.1, 30.0, " s")
    try:
        RingCadence(on, off)
    except ValueError as exc:
        raise check.fail("calls.ring_off_s", f"{exc}") from None
    return CallSettings(source=source, ring_on_s=on, ring_off_s=off, far_end_dir=far_dir,
                        keep_far_end_audio=check.boolean(t, "keep_far_end_audio", "calls", False),
                        max_rings=check.integer(t, "max_rings", "calls", CallSettings.max_rings, 1, 20),
                        greet_within_s=check.number(t, "greet_within_s", "calls", CallSettings.greet_within_s,
                                               0.1, 30.0, " s"),
                        silent_far_s=check.number(t, "silent_far_s", "calls", CallSettings.silent_far_s,
                                                  0.1, 10.0, " s"),
                        silent_prompts=check.integer(t, "silent_prompts", "calls", CallSettings.silent_prompts, 1, 10),
                        silent_wait_s=check.number(t, "silent_wait_s", "calls", CallSettings.silent_wait_s,
                                                   0.5, 30.0, " s"))


def _intonation(t: Mapping[str, Any]) -> IntonationSettings:
    below = check.number(t, "monotone_st", "intonation", IntonationSettings.monotone_st, 0.1, 24.0, " st")
    clear = check.number(t, "clear_st", "intonation", max(IntonationSettings.clear_st, below), 0.1, 24.0, " st")
    if clear < below:
        raise check.fail("intonation.clear_st", f"must not be below intonation.monotone_st ({below:g}), got {clear:g}")
    out = IntonationSettings(
        enabled=check.boolean(t, "enabled", "intonation", IntonationSettings.enabled),
        window_s=check.number(t, "window_s", "intonation", IntonationSettings.window_s, 2.0, 600.0, " s"),
        monotone_st=below, clear_st=clear,
        monotone_for_s=check.number(t, "monotone_for_s", "intonation", IntonationSettings.monotone_for_s, 0.0, 3600.0,
                               " s"))
    try:
        out.params  # noqa: B018  # the meter's own checks
    except DspError as exc:
        raise check.fail("intonation", f"{exc}") from None
    return out


def _agent(t: Mapping[str, Any], base_dir: Path | None) -> AgentSettings:
    state_dir = check.string(t, "state_dir", "agent", str(DEFAULT_STATE_DIR))
    assert state_dir is not None
    return AgentSettings(
        state_dir=_state_dir(check.path(state_dir, base_dir, "agent.state_dir")),
        metrics_interval_s=check.number(t, "metrics_interval_s", "agent", 1.0, 0.1, 60.0, " s"),
        log_level=check.choice(t, "log_level", "agent", "info", LOG_LEVELS),
        log_format=check.choice(t, "log_format", "agent", "json", LOG_FORMATS),
    )


def _state_dir(p: Path) -> Path:
    """``p``, unless it or the nearest of its parents that exists is not a folder (a regular file)."""
    for q in (p, *p.parents):
        try:
            if q.is_dir():
                return p
            if q.exists():
                what = "is not a folder" if q == p else f"is under {q}, which is not a folder"
                raise check.fail("agent.state_dir", f"{str(p)!r} {what}")
        except OSError as exc:  # a parent that cannot be searched (permissions)
            raise check.fail("agent.state_dir", f"cannot use {str(p)!r}: {exc.strerror or exc}") from None
    return p


def build(tables: Mapping[str, Any], base_dir: Path | None = None, remote: Mapping[str, Any] | None = None,
          source: str = "<defaults>") -> AgentConfig:
    """Validate ``tables`` (with ``remote`` merged over them) and build an :class:`AgentConfig`.

    Raises :class:`ConfigError` whose message starts with the dotted field name.
    """
    from device.outputs.cues import CueConfig
    from device.outputs.leds import LedPins

    if not isinstance(tables, Mapping):
        raise check.fail("config", f"must be a table, got {type(tables).__name__}")
    merged = merge(tables, remote or {})
    for name in merged:
        if name not in TABLES:
            raise check.fail(f"{name}", f"unknown table{check.hint(name, set(TABLES))}")
    for name, known in TABLES.items():
        t = check.table(merged, name)
        if known is not None:
            check.check_keys(t, known, name)
    cal_t = check.table(merged, "calibration")
    cal_text = check.string(cal_t, "file", "calibration", None)
    calibration_file = check.path(cal_text, base_dir, "calibration.file") if cal_text else None
    calibration = None
    if calibration_file is not None:
        from device.config import calibration_file as cal_file
        from device.errors import CalibrationError

        # the promised name is load_calibration; the module ships it as load
        loader = getattr(cal_file, "load_calibration", None) or cal_file.load
        try:
            calibration = loader(calibration_file)
        except CalibrationError as exc:
            raise check.fail("calibration.file", f"{exc}") from None
    leds_t = merged.get("leds")
    spool_t = check.table(merged, "spool")
    return AgentConfig(
        desk=_desk(check.table(merged, "desk")),
        mqtt=_guarded("mqtt", lambda: MqttSettings.from_table(check.table(merged, "mqtt"), where="mqtt",
                                                              base_dir=base_dir)),
        audio=_audio(check.table(merged, "audio"), base_dir),
        headset=_headset(check.table(merged, "headset")),
        calibration_file=calibration_file,
        calibration=calibration,
        cues=_guarded("cues", lambda: CueConfig.from_table(check.table(merged, "cues"), where="cues")),
        posture=_posture(check.table(merged, "posture")),
        leds=LedPins.default() if leds_t is None else _guarded(
            "leds", lambda: LedPins.from_table(check.table(merged, "leds"), where="leds")),
        spool=SpoolSettings(max_rows=check.integer(spool_t, "max_rows", "spool", SpoolSettings.max_rows, 100, 10_000_000)),
        agent=_agent(check.table(merged, "agent"), base_dir),
        calls=_calls(check.table(merged, "calls"), base_dir),
        intonation=_intonation(check.table(merged, "intonation")),
        tables=copy.deepcopy(dict(tables)),
        remote=copy.deepcopy(dict(remote or {})),
        source=source,
        base_dir=base_dir,
    )


def _guarded(table: str, make: Callable[[], T]) -> T:
    """``make()``, with what a table's own validation lets through turned into a ConfigError naming it.

    OverflowError: an integer too large for a float (``math.isfinite(10**400)``); RuntimeError: a
    ``~user`` path of an unknown user.
    """
    try:
        return make()
    except (OverflowError, RuntimeError) as exc:
        raise check.fail(f"{table}", f"invalid value ({exc})") from None


def merge(base: Mapping[str, Any], over: Mapping[str, Any]) -> dict[str, Any]:
    """``over`` merged into a copy of ``base``: tables merge key by key, other values replace."""
    out: dict[str, Any] = copy.deepcopy(dict(base))
    for key, value in over.items():
        if isinstance(value, Mapping) and isinstance(out.get(key), Mapping):
            out[key] = merge(out[key], value)
        else:
            out[key] = copy.deepcopy(value)
    return out


# --- loading -------------------------------------------------------------------------------------

OVERRIDE_FLAGS: dict[str, str] = {
    "desk.site": "--site", "desk.desk": "--desk", "mqtt.url": "--broker", "audio.source": "--audio",
    "audio.loop": "--loop", "audio.speed": "--speed", "headset.port": "--headset", "agent.state_dir": "--state-dir",
    "calibration.file": "--calibration", "agent.log_level": "--log-level", "agent.log_format": "--log-format",
}


def load_config(path: Path | str | None = None, overrides: Mapping[str, Any] | None = None) -> AgentConfig:
    """Load ``path`` (None: no file, defaults only) with ``overrides`` (``{"mqtt.url": ..., ...}``,
    from command-line flags) on top. Relative paths in the file are relative to its folder; those
    from flags to the current folder.

    Raises :class:`ConfigError` naming the field and the line; for a value from a flag, or one a flag must
    give where there is no file, a :class:`FlagError` (a usage error) naming the flag.
    """
    tables: dict[str, Any] = {}
    index: check.LineIndex | None = None
    base_dir: Path | None = None
    source = "command line"
    if path is not None:
        p = Path(path)
        source = str(p)
        try:
            text = p.read_text(encoding="utf-8")
        except FileNotFoundError:
            raise ConfigError(f"config file {p} does not exist") from None
        except (OSError, UnicodeDecodeError) as exc:
            raise ConfigError(f"cannot read config file {p}: {exc}") from None
        try:
            tables = check.toml_tables(text)
        except ValueError as exc:  # tomllib.TOMLDecodeError is one
            raise ConfigError(f"{p}: not valid TOML: {exc}") from None
        index = check.LineIndex(text)
        base_dir = p.resolve().parent
    flags: dict[str, str] = {}
    for dotted, value in (overrides or {}).items():
        if value is None:
            continue
        table, _, key = dotted.partition(".")
        flag = OVERRIDE_FLAGS.get(dotted, dotted)
        if isinstance(value, Path):
            value = _flag_path(str(value), dotted, flag)
        elif dotted in ("audio.source",) and isinstance(value, str) and value.startswith("file:"):
            value = "file:" + _flag_path(value[5:], dotted, flag)
        elif dotted == "calibration.file" or dotted == "agent.state_dir":
            value = _flag_path(value, dotted, flag)
        sub = tables.setdefault(table, {})
        if not isinstance(sub, dict):
            raise ConfigError(f"{source}: {table}: must be a table, got {type(sub).__name__}", field=table)
        sub[key] = value
        if dotted == "mqtt.url":
            sub.pop("urls", None)  # --broker names the one broker: it replaces the file's list
        flags[dotted] = flag
    try:
        return build(tables, base_dir=base_dir, source=source)
    except ConfigError as exc:
        raise _located(exc, source, index, flags) from None


def _flag_path(text: str, dotted: str, flag: str) -> str:
    """``text``, a path given by ``flag`` (which sets ``dotted``), made absolute against the current folder.
    An empty one stays empty, for the field's own check to refuse (it is not the current folder); a
    ``~user`` of an unknown user is a :class:`FlagError`."""
    if not text:
        return text
    try:
        return str(Path(text).expanduser().resolve())
    except RuntimeError as exc:  # "~someone" of an unknown user, or no home directory
        raise FlagError(f"{flag} (sets {dotted}): {dotted}: cannot expand {text!r} ({exc})", field=dotted) from None


def apply_remote(current: AgentConfig, remote: Mapping[str, Any]) -> AgentConfig:
    """A new config: ``remote`` (a remote ``Config.config``) merged over ``current``'s file tables.

    Refuses changes to the local-only tables and keys (identity and hardware) and anything that
    fails validation, with a :class:`ConfigError` whose message starts with ``config.<field>``.
    ``current`` is never modified.
    """
    try:
        return _apply_remote(current, remote)
    except RecursionError:  # comparing, copying or merging a table nested thousands deep
        raise check.fail("config", "tables or arrays nested too deeply") from None


def _apply_remote(current: AgentConfig, remote: Mapping[str, Any]) -> AgentConfig:
    if not isinstance(remote, Mapping):
        raise check.fail("config", f"must be a table, got {type(remote).__name__}")
    base = current.tables
    for name, value in remote.items():
        if name not in LOCAL_ONLY:
            continue
        local = LOCAL_ONLY[name]
        if not isinstance(value, Mapping):
            raise check.fail(f"config.{name}", f"must be a table, got {type(value).__name__}")
        mine = base.get(name, {}) if isinstance(base.get(name), Mapping) else {}
        for key, v in value.items():
            if (local is None or key in local) and mine.get(key, _MISSING) != v:
                raise check.fail(f"config.{name}.{key}", "cannot be changed remotely (set it in the desk's agent.toml)")
    try:
        return build(base, base_dir=current.base_dir, remote=remote, source="remote config")
    except ConfigError as exc:
        raise ConfigError(f"config.{exc}", field=f"config.{exc.field}" if exc.field else None) from None


_MISSING = object()
