"""The desk config's checks, each kind once: tables, unknown keys (with a "did you mean"), numbers and
integers in a range, booleans, strings, choices, paths. Used by :mod:`device.config.agent`,
:mod:`device.config.mqtt_settings`, :class:`device.outputs.cues.CueConfig` and
:class:`device.outputs.leds.LedPins`.

Each raises :class:`device.errors.ConfigError` with ``field`` set to the dotted name of the setting
(``posture.forward_deg``) and a message that starts with it (``posture.forward_deg: must be a number in
1..60 deg, got 'x'``); :func:`device.config.agent.load_config` adds the file and line from ``field``.
Where a key is in the file: :class:`LineIndex`. TLS to the broker is on by the contract's rule,
:func:`mqtt_schema.broker.uses_tls` (the host's too).
"""

from __future__ import annotations

import difflib
import math
import re
import tomllib
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from device.errors import ConfigError


def toml_tables(text: str) -> dict[str, Any]:
    """The tables of a TOML document; ValueError naming what is wrong (tomllib's own message, or the
    nesting that tomllib meets with a RecursionError: a file nested thousands deep)."""
    try:
        return tomllib.loads(text)
    except RecursionError:
        raise ValueError("arrays or tables nested too deeply") from None


def fail(field: str, reason: str) -> ConfigError:
    """``ConfigError("field: reason", field=field)``."""
    return ConfigError(f"{field}: {reason}", field=field)


def moved(exc: ConfigError, old: str, new: str) -> ConfigError:
    """``exc`` of a table checked under the name ``old`` (``cues``), named as ``new`` (``config.cues``)."""
    if new == old or exc.field is None or not (exc.field == old or exc.field.startswith(old + ".")):
        return exc
    return ConfigError(new + str(exc).removeprefix(old), field=new + exc.field[len(old):], line=exc.line)


def hint(key: str, known: frozenset[str] | set[str]) -> str:
    close = difflib.get_close_matches(key, sorted(known), n=1, cutoff=0.6)
    return f" (did you mean {close[0]!r}?)" if close else f" (known: {', '.join(sorted(known))})"


def check_keys(table: Mapping[str, Any], known: frozenset[str] | set[str], where: str) -> None:
    """Every key of ``table`` is one of ``known``; else the first unknown one, with a "did you mean"."""
    for key in table:
        if key not in known:
            raise fail(f"{where}.{key}", f"unknown key{hint(key, known)}")


def mapping(value: Any, where: str) -> Mapping[str, Any]:
    """``value``, which must be a TOML table (the table ``where``)."""
    if not isinstance(value, Mapping):
        raise fail(where, f"must be a table ([{where}]), got {type(value).__name__}")
    return value


def table(tables: Mapping[str, Any], name: str) -> Mapping[str, Any]:
    """The table ``name`` of ``tables`` (empty when absent)."""
    return mapping(tables.get(name, {}), name)


def number(t: Mapping[str, Any], key: str, where: str, default: float, lo: float, hi: float,
            unit: str = "") -> float:
    value = t.get(key, default)
    # an int is finite (and may be too large for math.isfinite); the range check comes first for it
    if isinstance(value, bool) or not isinstance(value, int | float) or not (
            isinstance(value, int) or math.isfinite(value)) or not (lo <= value <= hi):
        raise fail(f"{where}.{key}", f"must be a number in {lo:g}..{hi:g}{unit}, got {short(value)}")
    return float(value)


def short(value: Any, limit: int = 80) -> str:
    """``repr(value)``, cut to ``limit`` characters (a 400-digit integer is not a message)."""
    try:
        text = repr(value)
    except (ValueError, RecursionError):  # int too large to print, or nested too deep
        return f"a {type(value).__name__}"
    return text if len(text) <= limit else text[: limit - 3] + "..."


def integer(t: Mapping[str, Any], key: str, where: str, default: int, lo: int, hi: int) -> int:
    value = t.get(key, default)
    if isinstance(value, bool) or not isinstance(value, int) or not (lo <= value <= hi):
        raise fail(f"{where}.{key}", f"must be an integer in {lo}..{hi}, got {value!r}")
    return value


def boolean(t: Mapping[str, Any], key: str, where: str, default: bool) -> bool:
    value = t.get(key, default)
    if not isinstance(value, bool):
        raise fail(f"{where}.{key}", f"must be true or false, got {value!r}")
    return value


def string(t: Mapping[str, Any], key: str, where: str, default: str | None) -> str | None:
    value = t.get(key, default)
    if value is None:
        return None
    if not isinstance(value, str) or not value.strip():
        raise fail(f"{where}.{key}", f"must be a non-empty string, got {value!r}")
    return value


def choice(t: Mapping[str, Any], key: str, where: str, default: str, choices: tuple[str, ...]) -> str:
    value = t.get(key, default)
    if value not in choices:
        raise fail(f"{where}.{key}", f"must be one of {', '.join(choices)}, got {value!r}")
    return str(value)


def path(text: str, base_dir: Path | None, where: str = "path") -> Path:
    try:
        p = Path(text).expanduser()
    except RuntimeError as exc:  # "~someone" of an unknown user, or no home directory
        raise fail(where, f"cannot expand {text!r} ({exc})") from None
    if not p.is_absolute() and base_dir is not None:
        p = base_dir / p
    return p


# --- where a key is in the file ------------------------------------------------------------------

_HEADER_RE = re.compile(r"^\s*\[\s*([A-Za-z0-9_.\-\" ]+?)\s*\]\s*(#.*)?$")
_KEY_RE = re.compile(r"^\s*([A-Za-z0-9_\-\"'.]+)\s*=")


class LineIndex:
    """Maps ``table.key`` (and ``table``) to its 1-based line in a TOML text (best effort)."""

    def __init__(self, text: str = "") -> None:
        self.lines: dict[str, int] = {}
        table = ""
        for i, line in enumerate(text.splitlines(), 1):
            m = _HEADER_RE.match(line)
            if m and not line.lstrip().startswith("[["):
                table = m.group(1).replace('"', "").replace(" ", "")
                self.lines.setdefault(table, i)
                continue
            m = _KEY_RE.match(line)
            if m:
                key = m.group(1).strip("\"'")
                self.lines.setdefault(f"{table}.{key}" if table else key, i)

    def line_of(self, dotted: str) -> int | None:
        """The line of ``dotted`` or of its longest prefix that is in the file."""
        parts = dotted.split(".")
        for n in range(len(parts), 0, -1):
            line = self.lines.get(".".join(parts[:n]))
            if line is not None:
                return line
        return None
