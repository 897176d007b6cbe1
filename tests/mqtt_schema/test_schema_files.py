"""The checked-in JSON Schemas match the code, and docs/mqtt.md's examples are valid."""

from __future__ import annotations

import json
import re
from pathlib import Path

import jsonschema
import pytest

from mqtt_schema import decode_topic
from mqtt_schema.json_schema import SCHEMA_DIR, build_schemas, schema_diff, stale_schemas, write_schemas

DOC = Path(__file__).parents[2] / "docs" / "mqtt.md"
EXAMPLE_RE = re.compile(r"^### (\S+) \(`([^`]+)`\)\n\n```json\n(.*?)\n```", re.M | re.S)


def test_checked_in_schemas_match_the_code() -> None:
    diff = schema_diff()
    assert not diff, f"schemas are stale; regenerate with `python -m mqtt_schema.json_schema`. What differs:\n{diff}"
    assert not stale_schemas()


def test_the_stale_schema_message_shows_a_unified_diff(tmp_path: Path) -> None:
    write_schemas(tmp_path)
    path = tmp_path / "minute.schema.json"
    path.write_text(path.read_text(encoding="utf-8").replace('"speech_s"', '"speaking_s"', 1), encoding="utf-8")
    (tmp_path / "old.schema.json").write_text("{}", encoding="utf-8")
    diff = schema_diff(tmp_path)
    assert "--- checked-in/minute.schema.json" in diff and "+++ code/minute.schema.json" in diff
    lines = diff.splitlines()
    assert any(x.startswith("-") and '"speaking_s"' in x for x in lines)
    assert any(x.startswith("+") and '"speech_s"' in x for x in lines)
    assert "stray file with no message type: old.schema.json" in diff
    assert "metrics.schema.json" not in diff


def test_stale_schema_is_detected(tmp_path: Path) -> None:
    for name, doc in build_schemas().items():
        (tmp_path / name).write_text(json.dumps(doc))
    assert stale_schemas(tmp_path), "a differently rendered file must count as stale"


def examples() -> list[tuple[str, str, str]]:
    found = EXAMPLE_RE.findall(DOC.read_text(encoding="utf-8"))
    assert len(found) >= 7
    return found


@pytest.mark.parametrize(("kind", "topic", "payload"), examples(), ids=lambda x: str(x)[:20])
def test_doc_examples_validate(kind: str, topic: str, payload: str) -> None:
    _, message = decode_topic(topic, payload.encode())
    assert message is not None
    schema = json.loads((SCHEMA_DIR / f"{kind}.schema.json").read_text())
    jsonschema.Draft202012Validator(schema).validate(json.loads(payload))


def test_every_message_type_has_a_doc_example() -> None:
    assert {kind for kind, _, _ in examples()} == {name.removesuffix(".schema.json") for name in build_schemas()}


def test_json_schema_rejects_what_the_decoder_rejects() -> None:
    schema = json.loads((SCHEMA_DIR / "metrics.schema.json").read_text())
    bad = {"type": "metrics", "v": 1, "site": "site1", "desk": "d01", "boot": 1, "seq": 1, "ts": 1,
           "level_dbov": 99.0}
    assert not jsonschema.Draft202012Validator(schema).is_valid(bad)
