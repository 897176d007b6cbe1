"""JSON Schema export of the message types (checked in under ``mqtt_schema/schemas/``)."""

from __future__ import annotations

import difflib
import json
from pathlib import Path
from typing import Any

import msgspec

from mqtt_schema.messages import MESSAGE_TYPES, SCHEMA_MINOR, SCHEMA_VERSION

SCHEMA_DIR = Path(__file__).parent / "schemas"


def schema_name(type_: type[msgspec.Struct]) -> str:
    """File stem of a type's schema: its tag, e.g. ``metrics`` or ``alert-log``."""
    return str(type_.__struct_config__.tag)


def build_schemas() -> dict[str, dict[str, Any]]:
    """One self-contained JSON Schema (draft 2020-12) per message type, keyed by file name."""
    out: dict[str, dict[str, Any]] = {}
    for type_ in MESSAGE_TYPES:
        (schema,), components = msgspec.json.schema_components([type_], ref_template="#/$defs/{name}")
        doc: dict[str, Any] = {
            "$schema": "https://json-schema.org/draft/2020-12/schema",
            "$id": f"hsc/v{SCHEMA_VERSION}/{schema_name(type_)}.schema.json",
            "title": f"headset coach {schema_name(type_)} v{SCHEMA_VERSION}.{SCHEMA_MINOR}",
            **schema,
            "$defs": components,
        }
        out[f"{schema_name(type_)}.schema.json"] = doc
    return out


def render(doc: dict[str, Any]) -> str:
    return json.dumps(doc, indent=2, sort_keys=True, ensure_ascii=False) + "\n"


def write_schemas(directory: Path = SCHEMA_DIR) -> list[Path]:
    """Write every schema file; returns the paths written."""
    directory.mkdir(parents=True, exist_ok=True)
    written = []
    for name, doc in build_schemas().items():
        path = directory / name
        path.write_text(render(doc), encoding="utf-8")
        written.append(path)
    return written


def _checked_in_and_exported(directory: Path) -> list[tuple[str, str | None, str]]:
    """(file name, checked-in text or None when missing, text the code exports) per message type."""
    out = []
    for name, doc in build_schemas().items():
        path = directory / name
        out.append((name, path.read_text(encoding="utf-8") if path.exists() else None, render(doc)))
    return out


def stale_schemas(directory: Path = SCHEMA_DIR) -> list[str]:
    """Names of checked-in schema files that differ from the code (or are missing)."""
    return [name for name, old, new in _checked_in_and_exported(directory) if old != new]


def schema_diff(directory: Path = SCHEMA_DIR) -> str:
    """A unified diff from the checked-in schema files to what the code exports now ("" if none),
    plus a line per stray file that no message type exports."""
    parts: list[str] = []
    pairs = _checked_in_and_exported(directory)
    for name, old, new in pairs:
        parts.extend(difflib.unified_diff((old or "").splitlines(keepends=True), new.splitlines(keepends=True),
                                          f"checked-in/{name}", f"code/{name}"))
    on_disk = {p.name for p in directory.glob("*.schema.json")}
    for stray in sorted(on_disk - {name for name, _, _ in pairs}):
        parts.append(f"stray file with no message type: {stray}\n")
    return "".join(parts)


if __name__ == "__main__":
    for p in write_schemas():
        print(p)
