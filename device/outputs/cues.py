"""The cue policy: which coaching cues the desk shows, with persistence, hysteresis and a minimum on-time.

Pure logic on an injected clock (seconds, float): no threads, no GPIO, no wall time. The defaults are
the norms of the call-centre training material (see ``docs`` and NORMS): mic 3.5-7.5 cm, cue after 3 s
of speech outside; volume = calibrated target +/- 6 dB, cue after 1.5 s of speech outside; pace 90-160
syllables/min, cue after 10 s of speech outside. The posture cue follows the posture tracker, which
already applied its own timing (30 s beyond 15 degrees forward; clears below 10 degrees held 1 s).

Per speech cue (one side of one band):

- **persistence**: the cue turns on after ``*_persist_s`` seconds of own speech (``Measurement.speech_s``)
  with the value outside the band on its side; in-band evidence restarts the count.
- **hysteresis**: a cue that is on counts towards clearing only while the value is back inside the band
  by the hysteresis margin; ``clear_s`` seconds of such own speech clear it.
- **minimum on-time**: no cue turns off less than ``min_on_s`` (clock seconds) after it turned on, so
  an LED never flickers.
- **hold**: while the agent listens (no own speech), or the value is not measured (``None``), or the
  headset is off, the speech cues neither build up nor clear.
- **priority**: the one RGB LED shows the active cue that comes first in ``priority``.

The **monotone** cue (:class:`MonotoneCue`) follows the intonation meter's decision
(:mod:`device.dsp.intonation`: F0 spread below ``intonation.monotone_st`` for ``monotone_for_s`` of own
speech, cleared at ``clear_st``), which already has its persistence and hysteresis; the cue adds the
minimum on-time and holds while the headset is off. It is not a :class:`mqtt_schema.Cue`: a new member
of that enum would make hosts of schema 1.0 refuse every metrics, event and minute that named it. It
has its own LED and is published in the optional ``monotone`` fields of metrics and minute (schema 1.1).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass, fields
from typing import Any

from device.config import checks as check
from device.dsp.measurement import Measurement
from device.errors import ConfigError
from mqtt_schema import Cue, Posture

DEFAULT_PRIORITY: tuple[Cue, ...] = (
    Cue.MIC_FAR,  # fix the mic first: a far or close mic also makes the level wrong
    Cue.MIC_CLOSE,
    Cue.VOLUME_HIGH,  # shouting (the training material's 声嘶力竭) before too quiet
    Cue.VOLUME_LOW,
    Cue.PACE_FAST,
    Cue.PACE_SLOW,
    Cue.POSTURE,  # posture also has its own LED
)
SPEECH_CUES: tuple[Cue, ...] = (
    Cue.VOLUME_LOW, Cue.VOLUME_HIGH, Cue.PACE_SLOW, Cue.PACE_FAST, Cue.MIC_CLOSE, Cue.MIC_FAR,
)
_EPS = 1e-9


@dataclass(frozen=True)
class CueConfig:
    """Bands (dB, syllables/min, cm), persistence and clearing times (own-speech seconds), min on-time (s)."""

    volume_band_db: float = 6.0
    """Volume band = target level (the calibrated reference, dBov) +/- this many dB."""
    volume_persist_s: float = 1.5
    """Own-speech seconds outside the volume band before the cue."""
    pace_min_spm: float = 90.0
    pace_max_spm: float = 160.0
    pace_persist_s: float = 10.0
    mic_min_cm: float = 3.5
    mic_max_cm: float = 7.5
    mic_persist_s: float = 3.0
    hysteresis_db: float = 2.0
    """A volume cue clears only with the level back inside the band by this many dB."""
    hysteresis_spm: float = 10.0
    hysteresis_cm: float = 0.5
    clear_s: float = 1.0
    """Own-speech seconds back inside (by the hysteresis) before a speech cue clears."""
    min_on_s: float = 5.0
    """Clock seconds a cue stays on at least, whatever happens."""
    priority: tuple[Cue, ...] = DEFAULT_PRIORITY
    """Which cue the one RGB LED shows first; every cue appears once."""

    def __post_init__(self) -> None:
        self._validate("cues")

    def _validate(self, where: str) -> None:
        for f in fields(self):
            if f.name == "priority":
                continue
            value = getattr(self, f.name)
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not _finite(value):
                raise check.fail(f"{where}.{f.name}", f"must be a finite number, got {value!r}")
            if value < 0:
                raise check.fail(f"{where}.{f.name}", f"must not be negative, got {value!r}")
        for name in ("volume_band_db", "pace_min_spm", "mic_min_cm"):
            if getattr(self, name) <= 0:
                raise check.fail(f"{where}.{name}", f"must be a number > 0, got {getattr(self, name)!r}")
        if self.pace_min_spm >= self.pace_max_spm:
            raise check.fail(f"{where}.pace_min_spm", f"must be a number < pace_max_spm ({self.pace_max_spm:g})")
        if self.mic_min_cm >= self.mic_max_cm:
            raise check.fail(f"{where}.mic_min_cm", f"must be a number < mic_max_cm ({self.mic_max_cm:g})")
        # the clearing threshold must stay inside the band, or a cue could never clear
        if self.hysteresis_db >= self.volume_band_db:
            raise check.fail(f"{where}.hysteresis_db", f"must be < volume_band_db ({self.volume_band_db:g})")
        if 2 * self.hysteresis_spm >= self.pace_max_spm - self.pace_min_spm:
            raise ConfigError(f"{where}.hysteresis_spm: must be < half the pace band "
                              f"({(self.pace_max_spm - self.pace_min_spm) / 2:g} spm)", field=f"{where}.hysteresis_spm")
        if 2 * self.hysteresis_cm >= self.mic_max_cm - self.mic_min_cm:
            raise ConfigError(f"{where}.hysteresis_cm: must be < half the mic band "
                              f"({(self.mic_max_cm - self.mic_min_cm) / 2:g} cm)", field=f"{where}.hysteresis_cm")
        if (not isinstance(self.priority, tuple) or sorted(self.priority) != sorted(Cue)
                or len(set(self.priority)) != len(self.priority)):
            raise check.fail(f"{where}.priority", f"must list each cue once ({', '.join(c.value for c in Cue)})")

    @classmethod
    def from_table(cls, table: Mapping[str, Any], where: str = "cues") -> CueConfig:
        """Build from the ``[cues]`` TOML table; missing keys keep their defaults.

        ``priority`` may list only some cues: the rest follow in the default order. Raises
        :class:`ConfigError` naming the field, e.g. ``cues.pace_min_spm: must be a number < pace_max_spm``.
        """
        check.check_keys(check.mapping(table, where), {f.name for f in fields(cls)}, where)
        kwargs: dict[str, Any] = {}
        for key, value in table.items():
            if key == "priority":
                kwargs[key] = _priority(value, f"{where}.priority")
                continue
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not _finite(value):
                raise check.fail(f"{where}.{key}", f"must be a number, got {value!r}")
            kwargs[key] = float(value)
        try:
            return cls(**kwargs)
        except ConfigError as exc:
            raise check.moved(exc, "cues", where) from None


def _priority(value: Any, where: str) -> tuple[Cue, ...]:
    if not isinstance(value, (list, tuple)):
        raise check.fail(f"{where}", f"must be a list of cue names, got {value!r}")
    out: list[Cue] = []
    for item in value:
        try:
            cue = Cue(item)
        except ValueError:
            raise check.fail(f"{where}", f"unknown cue {item!r} (known: {', '.join(c.value for c in Cue)})") from None
        if cue in out:
            raise check.fail(f"{where}", f"cue {cue.value!r} is listed twice")
        out.append(cue)
    out.extend(c for c in DEFAULT_PRIORITY if c not in out)
    return tuple(out)


@dataclass(frozen=True)
class CueChange:
    """A cue turned on or off at clock time ``at_s``; ``value`` is the measured value then (None for posture)."""

    cue: Cue
    on: bool
    at_s: float
    value: float | None


@dataclass
class _CueState:
    on: bool = False
    on_at_s: float = 0.0
    out_s: float = 0.0
    """Own-speech seconds outside the band on this cue's side (while off)."""
    in_s: float = 0.0
    """Own-speech seconds back inside by the hysteresis (while on)."""
    last_value: float | None = None


@dataclass(frozen=True)
class _Measure:
    low: Cue
    high: Cue
    get: Callable[[Measurement], float | None]
    persist: Callable[[CueConfig], float]
    hysteresis: Callable[[CueConfig], float]


_MEASURES: tuple[_Measure, ...] = (
    _Measure(Cue.VOLUME_LOW, Cue.VOLUME_HIGH, lambda m: m.level_dbov,
             lambda c: c.volume_persist_s, lambda c: c.hysteresis_db),
    _Measure(Cue.PACE_SLOW, Cue.PACE_FAST, lambda m: m.rate_spm,
             lambda c: c.pace_persist_s, lambda c: c.hysteresis_spm),
    _Measure(Cue.MIC_CLOSE, Cue.MIC_FAR, lambda m: m.distance_cm,
             lambda c: c.mic_persist_s, lambda c: c.hysteresis_cm),
)


def _finite(value: float) -> bool:
    """A finite number that fits a float (an int like 10**400 does not)."""
    try:
        return math.isfinite(value)
    except OverflowError:
        return False


class CuePolicy:
    """Decides the cues from measurements, posture and wear, on an injected clock (seconds)."""

    def __init__(self, config: CueConfig, target_level_dbov: float = -26.0) -> None:
        if not isinstance(config, CueConfig):
            raise TypeError(f"config must be a CueConfig, got {type(config).__name__}")
        self._check_target(target_level_dbov)
        self.config = config
        self.target_level_dbov = float(target_level_dbov)
        self._states: dict[Cue, _CueState] = {cue: _CueState() for cue in Cue}
        self._last_now_s: float | None = None

    @staticmethod
    def _check_target(level: float) -> None:
        if isinstance(level, bool) or not isinstance(level, (int, float)) or not -100.0 <= level <= 0.0:
            raise ConfigError(f"target level must be a number of dBov in -100..0, got {level!r}")

    # --- configuration ----------------------------------------------------------------------------

    def set_target(self, level_dbov: float) -> None:
        """A new calibrated target level (dBov); the active cues stay and are judged by the new band."""
        self._check_target(level_dbov)
        self.target_level_dbov = float(level_dbov)

    def reconfigure(self, config: CueConfig) -> None:
        """Apply a new config; the active cues stay on and clear under the new bands."""
        if not isinstance(config, CueConfig):
            raise TypeError(f"config must be a CueConfig, got {type(config).__name__}")
        self.config = config

    def band(self) -> tuple[float, float]:
        """The volume band (low, high) in dBov."""
        return (self.target_level_dbov - self.config.volume_band_db,
                self.target_level_dbov + self.config.volume_band_db)

    def _bands(self) -> dict[Cue, tuple[float, float]]:
        c = self.config
        lo, hi = self.band()
        return {Cue.VOLUME_LOW: (lo, hi), Cue.PACE_SLOW: (c.pace_min_spm, c.pace_max_spm),
                Cue.MIC_CLOSE: (c.mic_min_cm, c.mic_max_cm)}

    # --- the decision -------------------------------------------------------------------------------

    def update(self, now_s: float, m: Measurement | None, posture: Posture, worn: bool | None) -> list[CueChange]:
        """Feed the latest measurement (or None), posture and wear at clock time ``now_s``; return the changes.

        ``m.speech_s`` (own-speech seconds since the previous measurement) drives the speech cues; a
        value of None in ``m`` is no evidence either way. With ``worn`` False the speech cues hold and
        the posture cue goes off (after its minimum on-time, like every off).
        """
        if not math.isfinite(now_s):
            raise ValueError(f"now_s must be a finite number of seconds, got {now_s!r}")
        if self._last_now_s is not None and now_s < self._last_now_s:
            raise ValueError(f"the clock went backwards: {now_s} s after {self._last_now_s} s")
        self._last_now_s = now_s
        cfg = self.config
        changes: list[CueChange] = []
        bands = self._bands()
        speech_s = m.speech_s if m is not None and worn is not False else 0.0
        for measure in _MEASURES:
            lo, hi = bands[measure.low]
            low, high = self._states[measure.low], self._states[measure.high]
            value = measure.get(m) if m is not None and speech_s > 0 else None
            if value is not None and math.isfinite(value):
                h = measure.hysteresis(cfg)
                _accumulate(low, speech_s, value, outside=value < lo, back_inside=value >= lo + h)
                _accumulate(high, speech_s, value, outside=value > hi, back_inside=value <= hi - h)
            persist = measure.persist(cfg)
            # offs first, so that the opposite cue of the same band can turn on in the same update
            for cue, st in ((measure.low, low), (measure.high, high)):
                if st.on and st.in_s + _EPS >= cfg.clear_s and now_s - st.on_at_s + _EPS >= cfg.min_on_s:
                    changes.append(self._set(cue, st, False, now_s))
            for cue, st, other in ((measure.low, low, high), (measure.high, high, low)):
                if not st.on and not other.on and st.out_s + _EPS >= persist:
                    changes.append(self._set(cue, st, True, now_s))
        pst = self._states[Cue.POSTURE]
        slouched = posture is Posture.SLOUCHED and worn is not False
        if slouched and not pst.on:
            changes.append(self._set(Cue.POSTURE, pst, True, now_s))
        elif not slouched and pst.on and now_s - pst.on_at_s + _EPS >= cfg.min_on_s:
            changes.append(self._set(Cue.POSTURE, pst, False, now_s))
        return changes

    @staticmethod
    def _set(cue: Cue, st: _CueState, on: bool, now_s: float) -> CueChange:
        st.on = on
        st.out_s = 0.0
        st.in_s = 0.0
        if on:
            st.on_at_s = now_s
        return CueChange(cue, on, now_s, st.last_value if cue is not Cue.POSTURE else None)

    # --- views --------------------------------------------------------------------------------------

    @property
    def active(self) -> tuple[Cue, ...]:
        """The cues that are on, in priority order."""
        return tuple(c for c in self.config.priority if self._states[c].on)

    @property
    def top(self) -> Cue | None:
        """The cue the RGB LED shows: the first active one in priority order."""
        active = self.active
        return active[0] if active else None

    def is_on(self, cue: Cue) -> bool:
        return self._states[cue].on


class MonotoneCue:
    """The monotone cue on an injected clock (seconds): on with the meter's decision, off with it but
    not before ``min_on_s`` (no flicker); held while the headset is off or no decision is given."""

    def __init__(self, min_on_s: float = CueConfig.min_on_s) -> None:
        self.min_on_s = min_on_s
        self.on = False
        self.on_at_s = 0.0

    def update(self, now_s: float, monotone: bool | None, worn: bool | None) -> bool | None:
        """Feed the meter's decision at ``now_s``; the new state when it changed, else None."""
        if monotone is None or worn is False:
            return None
        if monotone and not self.on:
            self.on, self.on_at_s = True, now_s
            return True
        if not monotone and self.on and now_s - self.on_at_s + _EPS >= self.min_on_s:
            self.on = False
            return False
        return None


def _accumulate(st: _CueState, speech_s: float, value: float, *, outside: bool, back_inside: bool) -> None:
    st.last_value = value
    if st.on:
        st.in_s = st.in_s + speech_s if back_inside else 0.0
    else:
        st.out_s = st.out_s + speech_s if outside else 0.0
