"""An independent witness of the whole chain: a plain paho subscriber that keeps every payload.

It knows nothing of our decoder: payloads are checked against the checked-in JSON Schemas with the
``jsonschema`` package, so a bug shared by the desk's encoder and the host's decoder still shows.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import jsonschema
import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion

SCHEMA_DIR = Path(__file__).resolve().parents[2] / "mqtt_schema" / "schemas"

MAX_LIST = 8
"""No payload list is longer than this: a spectrum or a block of samples would be."""
MAX_TEXT = 200
"""No payload string is longer than this: a transcript or base64 audio would be."""
MAX_PAYLOAD = 4096
"""Desk and alert payloads are small numbers-only documents (the contract's hard limit is 16 KiB)."""


@dataclass(frozen=True)
class Captured:
    topic: str
    payload: bytes
    retain: bool
    qos: int

    def doc(self) -> dict[str, Any]:
        value = json.loads(self.payload)
        assert isinstance(value, dict), f"{self.topic}: payload is not a JSON object"
        return value


@dataclass
class Capture:
    """Subscribes to ``hsc/v1/#`` with QoS 1 on a persistent session before the chain starts."""

    url: str
    client_id: str = "system-test-witness"
    messages: list[Captured] = field(default_factory=list)
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _client: mqtt.Client | None = None

    def start(self, deadline_s: float = 10.0) -> Capture:
        parts = urlsplit(self.url)
        client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=self.client_id, clean_session=False)
        subscribed = threading.Event()

        def on_connect(c: mqtt.Client, _u: object, _f: object, rc: Any, _p: object = None) -> None:
            c.subscribe("hsc/v1/#", qos=1)

        def on_subscribe(*_a: object) -> None:
            subscribed.set()

        def on_message(_c: mqtt.Client, _u: object, msg: mqtt.MQTTMessage) -> None:
            with self._lock:
                self.messages.append(Captured(msg.topic, bytes(msg.payload), bool(msg.retain), int(msg.qos)))

        client.on_connect = on_connect
        client.on_subscribe = on_subscribe
        client.on_message = on_message
        client.connect(parts.hostname or "127.0.0.1", parts.port or 1883, keepalive=30)
        client.loop_start()
        if not subscribed.wait(deadline_s):
            raise TimeoutError(f"the witness could not subscribe on {self.url}")
        self._client = client
        return self

    def stop(self) -> None:
        if self._client is not None:
            self._client.disconnect()
            self._client.loop_stop()
            self._client = None

    def snapshot(self) -> list[Captured]:
        with self._lock:
            return list(self.messages)

    def wait_quiet(self, quiet_s: float = 1.0, deadline_s: float = 15.0) -> None:
        """Wait until no message arrived for ``quiet_s`` (the chain drained), within a deadline."""
        end = time.monotonic() + deadline_s
        last = -1
        since = time.monotonic()
        while time.monotonic() < end:
            n = len(self.snapshot())
            if n != last:
                last, since = n, time.monotonic()
            elif time.monotonic() - since >= quiet_s:
                return
            time.sleep(0.1)


def schemas() -> dict[str, jsonschema.Draft202012Validator]:
    out = {}
    for path in sorted(SCHEMA_DIR.glob("*.schema.json")):
        doc = json.loads(path.read_text())
        out[path.name.removesuffix(".schema.json")] = jsonschema.Draft202012Validator(doc)
    return out


def kind_of(topic: str) -> str:
    """The message type a topic carries: ``hsc/v1/site/desk/metrics`` -> metrics, alert topics too."""
    parts = topic.split("/")
    if len(parts) == 4 and parts[3] == "alert-log":
        return "alert-log"
    if len(parts) == 6 and parts[3] == "alert":
        return "alert"
    return parts[-1]


def walk(value: Any, path: str = "$") -> Iterator[tuple[str, Any]]:
    yield path, value
    if isinstance(value, dict):
        for k, v in value.items():
            yield from walk(v, f"{path}.{k}")
    elif isinstance(value, list):
        for i, v in enumerate(value):
            yield from walk(v, f"{path}[{i}]")


def audio_like(doc: Any) -> list[str]:
    """Places in a payload that could carry audio, spectra or transcripts: long lists or long strings."""
    bad = []
    for path, v in walk(doc):
        if isinstance(v, list) and len(v) > MAX_LIST:
            bad.append(f"{path}: a list of {len(v)}")
        if isinstance(v, str) and len(v) > MAX_TEXT:
            bad.append(f"{path}: a string of {len(v)} characters")
    return bad
