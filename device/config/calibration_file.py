"""The headset calibration file: a small TOML (read with tomllib, written by hand, atomically).

```toml
# headset calibration (headset-agent calibrate)
model = "demo-headset"
boom_mic_id = ""
ear_mic_id = ""
distance_cm = 5.0               # mouth-to-boom distance during calibration
ild_offset_db = 12.5            # boom-minus-ear-cup level difference of own voice there, 100-4000 Hz
ild_slope_db_per_decade = -20.0 # inverse-distance law
band_offsets_db = [11.8]        # the same per distance band (100-300 Hz)
reference_level_dbov = -26.8    # ITU-T P.56 active speech level of the calibration speech
```
Errors are :class:`device.errors.CalibrationError` naming the file and the field.
"""

from __future__ import annotations

import json
import math
import os
import tempfile
from pathlib import Path
from typing import Any

from device.config.checks import toml_tables
from device.dsp.measurement import HeadsetCalibration
from device.errors import CalibrationError

_FLOATS = {
    "distance_cm": (0.5, 50.0),
    "ild_offset_db": (-60.0, 60.0),
    "ild_slope_db_per_decade": (-60.0, -1.0),
    "reference_level_dbov": (-100.0, 0.0),
}
_STRINGS = ("model", "boom_mic_id", "ear_mic_id")


def _q(s: str) -> str:
    return json.dumps(s, ensure_ascii=False)  # a JSON string is a valid TOML basic string


def dumps(cal: HeadsetCalibration) -> str:
    """The TOML text of ``cal``."""
    bands = ", ".join(repr(float(b)) for b in cal.band_offsets_db)
    return (
        "# headset calibration (headset-agent calibrate)\n"
        f"model = {_q(cal.model)}\n"
        f"boom_mic_id = {_q(cal.boom_mic_id)}\n"
        f"ear_mic_id = {_q(cal.ear_mic_id)}\n"
        f"distance_cm = {float(cal.distance_cm)!r}  # mouth-to-boom distance during calibration\n"
        f"ild_offset_db = {float(cal.ild_offset_db)!r}  # boom-minus-ear-cup level difference, 100-4000 Hz\n"
        f"ild_slope_db_per_decade = {float(cal.ild_slope_db_per_decade)!r}\n"
        f"band_offsets_db = [{bands}]  # per distance band (100-300 Hz)\n"
        f"reference_level_dbov = {float(cal.reference_level_dbov)!r}  # ITU-T P.56 level of the speech\n"
    )


def parse(data: dict[str, Any], source: str) -> HeadsetCalibration:
    """Validate a parsed TOML table; errors name ``source`` and the field."""
    known = set(_FLOATS) | set(_STRINGS) | {"band_offsets_db"}
    unknown = sorted(set(data) - known)
    if unknown:
        raise CalibrationError(f"{source}: unknown field {unknown[0]!r}")
    kw: dict[str, Any] = {}
    for name, (lo, hi) in _FLOATS.items():
        if name not in data:
            if name == "ild_offset_db":
                raise CalibrationError(f"{source}: missing field 'ild_offset_db'")
            continue
        v = data[name]
        if isinstance(v, bool) or not isinstance(v, int | float) or not math.isfinite(v):
            raise CalibrationError(f"{source}: field {name!r} must be a number, got {v!r}")
        if not lo <= v <= hi:
            raise CalibrationError(f"{source}: field {name!r} = {v} is outside {lo}..{hi}")
        kw[name] = float(v)
    for name in _STRINGS:
        if name in data:
            if not isinstance(data[name], str):
                raise CalibrationError(f"{source}: field {name!r} must be a string, got {data[name]!r}")
            kw[name] = data[name]
    if "band_offsets_db" in data:
        bands = data["band_offsets_db"]
        if not isinstance(bands, list) or not all(
                isinstance(b, int | float) and not isinstance(b, bool) and math.isfinite(b) for b in bands):
            raise CalibrationError(f"{source}: field 'band_offsets_db' must be a list of numbers")
        lo, hi = _FLOATS["ild_offset_db"]  # a band offset is the same level difference, per band
        outside = [b for b in bands if not lo <= b <= hi]
        if outside:
            raise CalibrationError(f"{source}: field 'band_offsets_db' has {outside[0]}, outside {lo}..{hi}")
        kw["band_offsets_db"] = tuple(float(b) for b in bands)
    return HeadsetCalibration(**kw)


def load(path: Path) -> HeadsetCalibration:
    """Read and validate a calibration file."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError as exc:
        raise CalibrationError(f"{path}: no such calibration file") from exc
    except (OSError, UnicodeDecodeError) as exc:
        raise CalibrationError(f"{path}: cannot read ({exc})") from exc
    try:
        data = toml_tables(text)
    except ValueError as exc:  # tomllib.TOMLDecodeError is one
        raise CalibrationError(f"{path}: not valid TOML ({exc})") from None
    return parse(data, str(path))


def save(cal: HeadsetCalibration, path: Path, force: bool = False) -> None:
    """Write ``cal`` to ``path`` atomically (temporary file + rename); never overwrites unless ``force``.

    Raises :class:`CalibrationError` naming ``path`` when it exists (without ``force``), is a folder,
    or cannot be written, and when the model or a mic id is not text (undecodable argument bytes).
    """
    if path.exists() and not force:
        raise CalibrationError(f"{path}: already exists (use --force to replace it)")
    if path.is_dir():
        raise CalibrationError(f"{path}: is a directory, not a calibration file")
    try:
        data = dumps(cal).encode("utf-8")
    except UnicodeEncodeError:
        raise CalibrationError(f"{path}: the model name or a mic id is not valid text "
                               "(undecodable bytes in the argument?)") from None
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=str(path.parent))
    except OSError as exc:
        raise CalibrationError(f"{path}: cannot write ({exc.strerror or exc})") from None
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except OSError as exc:
        Path(tmp).unlink(missing_ok=True)
        raise CalibrationError(f"{path}: cannot write ({exc.strerror or exc})") from None
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
