"""Offline analysis of one recording through the streaming engine (the same numbers as live).

:func:`analyse_file` returns a JSON-ready dict: file, duration_s, speech_s, syllables, rate_spm,
level_dbov, activity, noise_dbov, clipping, distance_cm (None: mono or uncalibrated), ild_db,
channels, sample_rate_hz, and with ``timeline`` a list of per-second values.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from device.audio_file import blocks, probe
from device.dsp import DspError, HeadsetCalibration, Measurement, StreamingAnalyzer
from device.errors import AudioError


def _r(x: float | None, nd: int) -> float | None:
    return None if x is None else round(float(x), nd)


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


def analyse_file(path: Path, calibration: HeadsetCalibration | None = None, raw_rate_hz: int | None = None,
                 timeline: bool = False, progress: Callable[[float], None] | None = None) -> dict[str, Any]:
    """Analyse ``path`` (WAV/FLAC, or raw s16le with ``raw_rate_hz``); raises :class:`AudioError`."""
    info = probe(path, raw_rate_hz)
    try:
        analyzer = StreamingAnalyzer(info.rate_hz, channels=info.channels, calibration=calibration)
    except DspError as exc:
        raise AudioError(f"{path}: {exc}") from exc
    tl = _Timeline() if timeline else None
    for block in blocks(info):
        ms = analyzer.feed(block)
        if tl is not None:
            tl.add(ms)
        if progress is not None:
            progress(analyzer.stream_s / info.duration_s)
    ms = analyzer.flush()
    if tl is not None:
        tl.add(ms)
    t = analyzer.totals()
    out: dict[str, Any] = {
        "file": str(path),
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
        "channels": info.channels,
        "sample_rate_hz": info.rate_hz,
    }
    if tl is not None:
        out["timeline"] = tl.finish()
    return out
