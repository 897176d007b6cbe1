"""Per-minute rollups: the fields of ``mqtt_schema.Minute`` for each wall-clock minute.

Reports are built from these, so they must be exact even when live metrics were dropped. Each sample
covers the interval ``(now_ms - dt_s, now_ms]``; an interval that crosses a minute boundary is split
between the two minutes in proportion, so a minute never holds more than 60 s.

Units: seconds (``_s``), dBov, syllables per minute (``_spm``), cm. Means over speech are weighted by
own-speech seconds; levels (``level_dbov``, ``noise_dbov``) are averaged in the power domain
(``10*log10(sum(w * 10**(L/10)) / sum(w))``), rate and distance linearly. ``noise_dbov`` is weighted by
clock seconds. ``cue_s`` counts own-speech seconds for the speech cues and clock seconds for posture;
``monotone_s`` own-speech seconds with the monotone cue on, ``intonation_st`` the speech-weighted mean
of the live F0 spread (both None when the measurement carries no intonation).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

from device.dsp.measurement import Measurement
from mqtt_schema import Cue, Posture

MINUTE_MS = 60_000
# the contract's ranges (mqtt_schema.messages): values outside are clamped, never refused here
_DBOV = (-200.0, 10.0)
_SPM = (0.0, 1200.0)
_CM = (0.0, 100.0)
_ST = (0.0, 48.0)


@dataclass
class _Acc:
    minute_ts: int
    seconds: float = 0.0
    speech_s: float = 0.0
    level_w: float = 0.0
    level_pow: float = 0.0
    rate_w: float = 0.0
    rate_sum: float = 0.0
    dist_w: float = 0.0
    dist_sum: float = 0.0
    noise_w: float = 0.0
    noise_pow: float = 0.0
    cue_s: dict[Cue, float] = field(default_factory=dict)
    worn_s: float = 0.0
    slouched_s: float = 0.0
    upright_s: float = 0.0
    intonation: bool = False
    into_w: float = 0.0
    into_sum: float = 0.0
    monotone_s: float = 0.0

    def fields(self) -> dict[str, Any]:
        return {
            "minute_ts": self.minute_ts,
            "speech_s": _sec(self.speech_s),
            "level_dbov": _clamp(_db(self.level_pow / self.level_w), _DBOV) if self.level_w > 0 else None,
            "rate_spm": _clamp(self.rate_sum / self.rate_w, _SPM) if self.rate_w > 0 else None,
            "distance_cm": _clamp(self.dist_sum / self.dist_w, _CM) if self.dist_w > 0 else None,
            "noise_dbov": _clamp(_db(self.noise_pow / self.noise_w), _DBOV) if self.noise_w > 0 else None,
            "cue_s": {c: _sec(s) for c, s in self.cue_s.items() if s > 0},
            "worn_s": _sec(self.worn_s),
            "slouched_s": _sec(self.slouched_s),
            "upright_s": _sec(self.upright_s),
            "intonation_st": _clamp(self.into_sum / self.into_w, _ST) if self.into_w > 0 else None,
            "monotone_s": _sec(self.monotone_s) if self.intonation else None,
        }


def _db(power: float) -> float:
    return 10.0 * math.log10(power) if power > 0 else _DBOV[0]


def _clamp(value: float, bounds: tuple[float, float]) -> float:
    return min(max(value, bounds[0]), bounds[1])


def _sec(value: float) -> float:
    return round(min(max(value, 0.0), 60.0), 3)


def _finite(value: float | None) -> bool:
    return value is not None and math.isfinite(value)


class MinuteRollup:
    """Accumulates samples and returns a finished minute's fields when the wall-clock minute changes."""

    def __init__(self) -> None:
        self._acc: _Acc | None = None

    def add(self, now_ms: int, dt_s: float, m: Measurement | None, cues: tuple[Cue, ...], worn: bool | None,
            posture: Posture, monotone: bool = False) -> dict[str, Any] | None:
        """Add the interval of ``dt_s`` seconds ending at ``now_ms`` (ms since the epoch).

        ``m.speech_s`` is the own speech in the interval; ``cues`` the active cues; ``worn`` and ``posture``
        their state over the interval; ``monotone`` the monotone cue. Returns the finished minute's fields when this sample closes one.
        """
        if not math.isfinite(dt_s) or dt_s < 0:
            raise ValueError(f"dt_s must be a finite number of seconds >= 0, got {dt_s!r}")
        dt_ms = dt_s * 1000.0
        start_ms = now_ms - dt_ms
        minute_ts = ((now_ms - 1) // MINUTE_MS) * MINUTE_MS  # (start, end]: a sample ending on a boundary is the old minute's
        finished: dict[str, Any] | None = None
        acc = self._acc
        if acc is not None and acc.minute_ts != minute_ts:
            if acc.minute_ts < minute_ts and start_ms < minute_ts and dt_ms > 0:
                # the interval crosses into the new minute: the old one gets its share (at most its own end)
                share = min(1.0, (min(minute_ts, acc.minute_ts + MINUTE_MS) - start_ms) / dt_ms)
                if share > 0:
                    self._add(acc, share, dt_s, m, cues, worn, posture, monotone)
            finished = acc.fields()
            acc = None
        if acc is None:
            acc = self._acc = _Acc(minute_ts)
        share = 1.0 if dt_ms <= 0 else min(1.0, (now_ms - max(start_ms, minute_ts)) / dt_ms)
        self._add(acc, share, dt_s, m, cues, worn, posture, monotone)
        return finished

    @staticmethod
    def _add(acc: _Acc, share: float, dt_s: float, m: Measurement | None, cues: tuple[Cue, ...],
             worn: bool | None, posture: Posture, monotone: bool = False) -> None:
        t = dt_s * share
        acc.seconds += t
        speech = (m.speech_s * share) if m is not None and m.speech_s > 0 else 0.0
        acc.speech_s += speech
        if m is not None:
            if speech > 0:
                if _finite(m.level_dbov):
                    assert m.level_dbov is not None
                    acc.level_w += speech
                    acc.level_pow += speech * 10.0 ** (m.level_dbov / 10.0)
                if _finite(m.rate_spm):
                    assert m.rate_spm is not None
                    acc.rate_w += speech
                    acc.rate_sum += speech * m.rate_spm
                if _finite(m.distance_cm):
                    assert m.distance_cm is not None
                    acc.dist_w += speech
                    acc.dist_sum += speech * m.distance_cm
                if _finite(m.intonation_st):
                    assert m.intonation_st is not None
                    acc.into_w += speech
                    acc.into_sum += speech * m.intonation_st
                if monotone:
                    acc.monotone_s += speech
            if m.monotone is not None:
                acc.intonation = True
            if _finite(m.noise_dbov) and t > 0:
                assert m.noise_dbov is not None
                acc.noise_w += t
                acc.noise_pow += t * 10.0 ** (m.noise_dbov / 10.0)
        for cue in cues:
            acc.cue_s[cue] = acc.cue_s.get(cue, 0.0) + (t if cue is Cue.POSTURE else speech)
        if worn:
            acc.worn_s += t
        if posture is Posture.SLOUCHED:
            acc.slouched_s += t
        elif posture is Posture.UPRIGHT:
            acc.upright_s += t

    def flush(self, now_ms: int) -> dict[str, Any] | None:
        """Close the current (partial) minute, e.g. at shutdown; None when nothing was added."""
        acc, self._acc = self._acc, None
        return acc.fields() if acc is not None else None

    @property
    def minute_ts(self) -> int | None:
        """Start (ms) of the minute being accumulated, None when empty."""
        return self._acc.minute_ts if self._acc is not None else None
