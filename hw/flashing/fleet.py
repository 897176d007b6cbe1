"""The fleet as the broker holds it: every desk's retained ``state`` message, read once.

``read_states`` subscribes to ``hsc/v1/{site|+}/+/state`` (mqtt_schema's filter), takes what the
broker delivers (the retained messages come right after the subscription is acknowledged) until no
message has arrived for ``quiet_s`` seconds, and disconnects. Threads: paho's network thread runs
the callbacks, which only decode and store under a lock and never raise; a payload the contract
refuses is kept as a rejection (topic and reason) and otherwise ignored. Times are seconds; a
state's ``ts`` is milliseconds since the Unix epoch, UTC.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from device.config.mqtt_settings import MqttSettings
from hw.errors import FlashError
from hw.flashing.versions import is_older
from mqtt_schema.codec import decode_topic
from mqtt_schema.errors import SchemaError
from mqtt_schema.messages import State
from mqtt_schema.topics import DeskKind, desk_filter


@dataclass
class FleetRead:
    states: dict[tuple[str, str], State] = field(default_factory=dict)  # (site, desk) -> newest state
    rejected: list[tuple[str, str]] = field(default_factory=list)  # (topic, reason)


@dataclass(frozen=True)
class DeskRow:
    site: str
    desk: str
    status: str
    headset_id: str | None
    firmware: str | None  # the headset firmware version the desk reported
    agent: str | None  # the desk agent's version
    last_seen_ms: int  # the state's ts
    config_hash: str | None
    firmware_older: bool | None  # older than the manifest; None when unknown

    def as_json(self) -> dict[str, Any]:
        return {"site": self.site, "desk": self.desk, "status": self.status, "headset_id": self.headset_id,
                "firmware": self.firmware, "firmware_older": self.firmware_older, "agent": self.agent,
                "last_seen_ms": self.last_seen_ms, "last_seen": iso_utc(self.last_seen_ms),
                "config_hash": self.config_hash}


def iso_utc(ts_ms: int) -> str:
    return datetime.fromtimestamp(ts_ms / 1000, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def desk_rows(read: FleetRead, latest_firmware: str) -> list[DeskRow]:
    """One row per desk, sorted by site and desk; firmware compared as versions with the manifest's."""
    rows = []
    for (site, desk), s in sorted(read.states.items()):
        fw = s.versions.firmware if s.versions else None
        rows.append(DeskRow(site, desk, s.status.value, s.headset_id, fw, s.versions.agent if s.versions else None,
                            s.ts, s.config_hash, is_older(fw, latest_firmware)))
    return rows


def read_states(settings: MqttSettings, site: str | None = None, *, quiet_s: float = 0.5,
                timeout_s: float = 10.0) -> FleetRead:
    """Every desk's state (of ``site``, or all sites) on the broker; raise :class:`FlashError` when
    the broker cannot be reached or refuses us."""
    read = FleetRead()
    lock = threading.Lock()
    connected = threading.Event()
    subscribed = threading.Event()
    refused: list[str] = []
    last = [time.monotonic()]
    topic_filter = desk_filter(site or "+", "+", DeskKind.STATE)

    def on_connect(client: Any, userdata: Any, flags: Any, reason: Any, props: Any) -> None:
        if reason.is_failure:
            refused.append(str(reason))
        else:
            client.subscribe(topic_filter, qos=1)
        connected.set()

    def on_subscribe(client: Any, userdata: Any, mid: Any, reasons: Any, props: Any) -> None:
        if any(r.is_failure for r in reasons):
            refused.append(f"subscription to {topic_filter} refused ({reasons[0]})")
        last[0] = time.monotonic()
        subscribed.set()

    def on_message(client: Any, userdata: Any, msg: Any) -> None:
        last[0] = time.monotonic()
        try:
            _topic, state = decode_topic(msg.topic, msg.payload)
            if not isinstance(state, State):
                raise SchemaError(f"not a state message on {msg.topic}")
        except SchemaError as exc:
            with lock:
                read.rejected.append((msg.topic, str(exc)))
            return
        except Exception as exc:  # a callback never raises into paho's thread
            with lock:
                read.rejected.append((msg.topic, f"{type(exc).__name__}: {exc}"))
            return
        key = (state.site, state.desk)
        with lock:
            old = read.states.get(key)
            if old is None or (state.boot, state.seq) >= (old.boot, old.seq):
                read.states[key] = state

    client = settings.new_client()
    client.on_connect = on_connect
    client.on_subscribe = on_subscribe
    client.on_message = on_message
    try:
        client.connect(settings.host, settings.port, keepalive=max(10, int(timeout_s) + 5))
    except OSError as exc:
        raise FlashError(f"cannot connect to the broker {settings.url}: {exc.strerror or exc}") from None
    client.loop_start()
    try:
        end = time.monotonic() + timeout_s
        if not connected.wait(timeout_s):
            raise FlashError(f"the broker {settings.url} did not answer within {timeout_s:g} s")
        if refused:
            raise FlashError(f"the broker {settings.url} refused the connection: {refused[0]}")
        if not subscribed.wait(max(0.0, end - time.monotonic())):
            raise FlashError(f"the broker {settings.url} did not acknowledge the subscription within {timeout_s:g} s")
        if refused:
            raise FlashError(f"the broker {settings.url}: {refused[0]}")
        while time.monotonic() < end:
            idle = time.monotonic() - last[0]
            if idle >= quiet_s:
                break
            time.sleep(min(0.05, quiet_s - idle))
    finally:
        client.disconnect()
        client.loop_stop()
    with lock:
        return FleetRead(dict(read.states), list(read.rejected))
