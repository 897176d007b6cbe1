"""Posture and wear traces that a virtual headset replays: segments of constant pitch/roll/worn.

Times are seconds of headset time from boot; pitch and roll in degrees (+ = head forward,
+ = right ear down). Between segments the fake IMU ramps over 0.5 s, as a head moves.
"""

from __future__ import annotations

import csv
import io
import json
import math
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from hw.errors import FlashError

Segment = tuple[float, float, float, float, bool]


class TraceError(FlashError, ValueError):
    """A trace file or segment list that cannot be replayed."""


def _num(value: Any, what: str) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise TraceError(f"{what}: expected a finite number, got {value!r}")
    return float(value)


def _worn(value: Any, what: str) -> bool:
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.strip().lower() in ("1", "true", "yes", "on", "0", "false", "no", "off"):
        return value.strip().lower() in ("1", "true", "yes", "on")
    if isinstance(value, int) and value in (0, 1):
        return bool(value)
    raise TraceError(f"{what}: worn must be true/false, got {value!r}")


class HeadsetTrace:
    """An ordered list of segments (t0_s, t1_s, pitch_deg, roll_deg, worn)."""

    def __init__(self, segments: Iterable[Segment]):
        self.segments: list[Segment] = list(segments)
        if not self.segments:
            raise TraceError("a trace needs at least one segment")
        prev_end = None
        for i, (t0, t1, pitch, roll, _) in enumerate(self.segments):
            if t1 <= t0:
                raise TraceError(f"segment {i}: ends at {t1} s, not after its start {t0} s")
            if prev_end is not None and abs(t0 - prev_end) > 1e-9:
                raise TraceError(f"segment {i}: starts at {t0} s, previous ended at {prev_end} s (gap or overlap)")
            if not (-90.0 <= pitch <= 90.0 and -90.0 <= roll <= 90.0):
                raise TraceError(f"segment {i}: pitch/roll must be within -90..90 degrees")
            prev_end = t1

    @classmethod
    def from_segments(cls, items: Iterable[tuple[float, float, Mapping[str, Any]]]) -> HeadsetTrace:
        """[(t0_s, t1_s, dict(pitch=deg, roll=deg, worn=bool)), ...]; missing keys: 0, 0, True."""
        segs: list[Segment] = []
        for i, item in enumerate(items):
            try:
                t0, t1, values = item
            except (TypeError, ValueError):
                raise TraceError(f"segment {i}: expected (t0, t1, dict(pitch=, roll=, worn=))") from None
            unknown = set(values) - {"pitch", "roll", "worn"}
            if unknown:
                raise TraceError(f"segment {i}: unknown keys {sorted(unknown)}")
            segs.append((
                _num(t0, f"segment {i} t0"),
                _num(t1, f"segment {i} t1"),
                _num(values.get("pitch", 0.0), f"segment {i} pitch"),
                _num(values.get("roll", 0.0), f"segment {i} roll"),
                _worn(values.get("worn", True), f"segment {i}"),
            ))
        return cls(segs)

    @classmethod
    def from_file(cls, path: str | Path) -> HeadsetTrace:
        """A JSON file {"segments": [{"t0":, "t1":, "pitch":, "roll":, "worn":}, ...]} or a CSV
        file with the header t0,t1,pitch,roll,worn."""
        p = Path(path)
        try:
            text = p.read_text(encoding="utf-8")
        except OSError as exc:
            raise TraceError(f"cannot read trace {p}: {exc.strerror or exc}") from None
        if p.suffix.lower() == ".json" or text.lstrip().startswith("{"):
            try:
                doc = json.loads(text)
            except ValueError as exc:
                raise TraceError(f"trace {p} is not valid JSON: {exc}") from None
            rows = doc.get("segments") if isinstance(doc, dict) else None
            if not isinstance(rows, list):
                raise TraceError(f"trace {p}: expected an object with a 'segments' list")
        else:
            reader = csv.DictReader(io.StringIO(text))
            if reader.fieldnames is None or not {"t0", "t1"} <= set(reader.fieldnames):
                raise TraceError(f"trace {p}: a CSV trace needs the header t0,t1,pitch,roll,worn")
            rows = []
            for row in reader:
                conv: dict[str, Any] = {}
                for key, value in row.items():
                    if key in ("t0", "t1", "pitch", "roll"):
                        try:
                            conv[key] = float(value)
                        except (TypeError, ValueError):
                            raise TraceError(f"trace {p} line {reader.line_num}: {key}={value!r} is not a number") from None
                    elif key == "worn":
                        conv[key] = value
                rows.append(conv)
        items = []
        for i, row in enumerate(rows):
            if not isinstance(row, dict) or "t0" not in row or "t1" not in row:
                raise TraceError(f"trace {p}: segment {i} needs t0 and t1")
            items.append((row["t0"], row["t1"], {k: v for k, v in row.items() if k not in ("t0", "t1")}))
        return cls.from_segments(items)

    @classmethod
    def scenario(cls, name: str) -> HeadsetTrace:
        """A named demo/training scenario: see SCENARIOS."""
        try:
            items = SCENARIOS[name]
        except KeyError:
            raise TraceError(f"unknown scenario {name!r} (choose from {', '.join(SCENARIOS)})") from None
        return cls.from_segments(items)

    @property
    def duration_s(self) -> float:
        return self.segments[-1][1]

    def to_json(self) -> str:
        return json.dumps({"segments": [
            {"t0": s[0], "t1": s[1], "pitch": s[2], "roll": s[3], "worn": s[4]} for s in self.segments]})

    def as_lists(self) -> list[list[Any]]:
        """The segment form the firmware-side fake HAL takes."""
        return [list(s) for s in self.segments]


SCENARIOS: dict[str, list[tuple[float, float, dict[str, Any]]]] = {
    # Sits upright for an hour, small natural movements.
    "upright": [
        (0.0, 600.0, dict(pitch=3.0, roll=1.0, worn=True)),
        (600.0, 1200.0, dict(pitch=5.0, roll=-2.0, worn=True)),
        (1200.0, 3600.0, dict(pitch=2.0, roll=0.0, worn=True)),
    ],
    # Upright, then slouches forward for two minutes (beyond the 15 deg cue), sits up, slouches again.
    "slouch": [
        (0.0, 60.0, dict(pitch=2.0, roll=0.0, worn=True)),
        (60.0, 180.0, dict(pitch=25.0, roll=3.0, worn=True)),
        (180.0, 240.0, dict(pitch=4.0, roll=0.0, worn=True)),
        (240.0, 600.0, dict(pitch=22.0, roll=-4.0, worn=True)),
        (600.0, 3600.0, dict(pitch=3.0, roll=0.0, worn=True)),
    ],
    # Works for a minute, takes the headset off for 16 minutes (a level-3 break overrun), returns.
    "long-break": [
        (0.0, 60.0, dict(pitch=3.0, roll=0.0, worn=True)),
        (60.0, 1020.0, dict(pitch=0.0, roll=0.0, worn=False)),
        (1020.0, 3600.0, dict(pitch=3.0, roll=0.0, worn=True)),
    ],
}
