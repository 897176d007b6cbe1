"""The host's ingest under fuzzed payloads through a real mosquitto and a real ``headset-host run``.

CI runs ``bench/fuzz.py`` short (a few thousand payloads per kind, fixed seed); the bench runs it with
100,000 per kind. Every payload must get exactly one counted outcome, under the reason the contract
gives, and the host process must stay up and keep accepting valid messages.
"""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

from mqtt_schema import DeskKind, DeskTopic, SchemaError, decode_topic
from tests.conftest import Mosquitto

SCRIPT = Path(__file__).resolve().parents[2] / "bench" / "fuzz.py"
COUNT = 2500
SEED = 13


def _bench() -> ModuleType:
    spec = importlib.util.spec_from_file_location("bench_fuzz", SCRIPT)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["bench_fuzz"] = module
    spec.loader.exec_module(module)
    return module


def test_every_fuzzed_payload_through_the_broker_gets_one_counted_outcome(mosquitto: Mosquitto) -> None:
    out = subprocess.run([sys.executable, str(SCRIPT), "--count", str(COUNT), "--seed", str(SEED),
                          "--broker-port", str(mosquitto.port), "--json"],
                         capture_output=True, text=True, timeout=240)
    assert out.returncode in (0, 1), out.stderr[-3000:]
    report: dict[str, Any] = json.loads(out.stdout)
    assert [k["kind"] for k in report["kinds"]] == ["state", "metrics", "event", "minute"]
    for k in report["kinds"]:
        assert k["sent"] == COUNT
        assert k["unaccounted"] == 0, k
        assert k["counted"] == COUNT, k
        assert k["reason_mismatch"] == {}, k
        assert k["crashes"] == 0
        assert k["accepted"] > 0 and sum(k["rejected"].values()) > COUNT // 2
        # the generator reached every category, and the host saw the interesting rejects
        assert {"deep-nesting", "invalid-utf8", "large-body", "id-mismatch", "wrong-type", "huge-value"} <= set(
            k["categories"])
        assert {"site-mismatch", "desk-mismatch", "too-large", "malformed-json", "invalid-field"} <= set(k["rejected"])
    assert report["host_alive_after"] is True
    assert report["host_exit_code"] == 0, "headset-host run did not stop cleanly on SIGTERM"
    assert report["ok"] is True


def test_the_generator_is_reproducible_from_its_seed() -> None:
    bench = _bench()
    a = [(i.topic, i.payload) for i in bench._items(DeskKind.EVENT, 300, 7)]
    b = [(i.topic, i.payload) for i in bench._items(DeskKind.EVENT, 300, 7)]
    c = [(i.topic, i.payload) for i in bench._items(DeskKind.EVENT, 300, 8)]
    assert a == b and a != c
    big = [i for i in bench._items(DeskKind.MINUTE, 2000, 7) if i.category == "large-body"]
    assert any(len(i.payload) > 16 * 1024 for i in big) and any(len(i.payload) <= 16 * 1024 for i in big)


def test_deeply_nested_json_is_a_schema_error_not_a_recursion_error() -> None:
    topic = str(DeskTopic("site1", "d01", DeskKind.METRICS))
    payload = b'{"type":"metrics","site":"site1","desk":"d01","boot":1,"seq":1,"ts":1,"x":' + b"[" * 5000 + \
        b"]" * 5000 + b"}"
    with pytest.raises(SchemaError):
        decode_topic(topic, payload)
