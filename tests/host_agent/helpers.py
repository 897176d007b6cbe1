"""Desk traffic for host tests, built with mqtt_schema (never hand-written topics or payloads)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion

from mqtt_schema import (
    QOS,
    RETAIN,
    Cue,
    DeskKind,
    DeskStatus,
    DeskTopic,
    Event,
    EventKind,
    Metrics,
    Minute,
    Posture,
    State,
    encode,
)
from tests.waiting import wait_for

T0 = 1_795_000_000_000


@dataclass
class Desk:
    """A simulated desk: builds its messages with a running seq."""

    site: str
    desk: str
    boot: int = 1
    seq: int = 0
    clock: Callable[[], int] = field(default=lambda: T0)

    def _next(self) -> dict[str, object]:
        self.seq += 1
        return {"site": self.site, "desk": self.desk, "boot": self.boot, "seq": self.seq, "ts": self.clock()}

    def state(self, status: DeskStatus = DeskStatus.ONLINE) -> State:
        return State(status=status, **self._next())  # type: ignore[arg-type]

    def metrics(self, *, speech_s: float = 0.0, cues: tuple[Cue, ...] = (), worn: bool | None = True,
                posture: Posture = Posture.UPRIGHT, noise: float | None = -60.0, level: float | None = -26.0) -> Metrics:
        return Metrics(speaking=speech_s > 0, speech_s=speech_s, cues=list(cues), worn=worn, posture=posture,
                       noise_dbov=noise, level_dbov=level if speech_s > 0 else None, rate_spm=120.0 if speech_s else None,
                       **self._next())  # type: ignore[arg-type]

    def event(self, kind: EventKind, cue: Cue | None = None) -> Event:
        return Event(kind=kind, cue=cue, **self._next())  # type: ignore[arg-type]

    def minute(self, minute_ts: int, **kw: object) -> Minute:
        return Minute(minute_ts=minute_ts, **kw, **self._next())  # type: ignore[arg-type]

    def topic(self, kind: DeskKind) -> str:
        return str(DeskTopic(self.site, self.desk, kind))


def publisher(port: int, client_id: str = "test-desks") -> mqtt.Client:
    c = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=client_id)
    c.connect("127.0.0.1", port)
    c.loop_start()
    return c


def send(client: mqtt.Client, desk: Desk, msg: State | Metrics | Event | Minute) -> None:
    kind = msg.__struct_config__.tag
    assert isinstance(kind, str)
    info = client.publish(desk.topic(DeskKind(kind)), encode(msg), qos=QOS[kind], retain=RETAIN[kind])
    if QOS[kind]:
        info.wait_for_publish(5)


class Subscriber:
    """Records every message on some filters (retained included) from a real broker."""

    def __init__(self, port: int, *filters: str) -> None:
        self.messages: list[tuple[str, bytes, bool]] = []
        self.client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=f"sub-{id(self)}")
        self.client.on_message = lambda c, u, m: self.messages.append((m.topic, bytes(m.payload), bool(m.retain)))
        self.client.connect("127.0.0.1", port)
        self.client.loop_start()
        done = []
        self.client.on_subscribe = lambda *a: done.append(1)
        self.client.subscribe([(f, 1) for f in filters])
        wait_for(lambda: done, 5, "subscription")

    def on(self, topic: str) -> list[bytes]:
        return [p for t, p, _ in list(self.messages) if t == topic]

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


def sql_rows(db: str | Path, sql: str, args: tuple[object, ...] = ()) -> list[tuple[Any, ...]]:
    """Rows of ``sql`` (``?`` placeholders) read straight from a history database: a SQLite path or a
    PostgreSQL URL, on a connection of its own (so it sees only what was committed)."""
    from host_agent.history import is_postgres_url

    if is_postgres_url(str(db)):
        import psycopg

        with psycopg.connect(str(db)) as pg:
            return pg.execute(sql.replace("?", "%s"), args).fetchall()
    import sqlite3

    conn = sqlite3.connect(db)
    try:
        return conn.execute(sql, args).fetchall()
    finally:
        conn.close()


Response = tuple[int, dict[str, str], bytes]
"""An HTTP response read off a raw socket: status code, headers (lower-case names), body."""


def read_response(f: Any) -> Response:
    """One HTTP/1.1 response from the buffered socket file ``f`` (Content-Length framed); fails the test
    when the server closed the connection or answered without a status line."""
    status = f.readline()
    assert status, "the server closed the connection"
    assert status.startswith(b"HTTP/1."), f"no status line: {status[:80]!r}"
    code = int(status.split()[1])
    headers: dict[str, str] = {}
    while (line := f.readline()) not in (b"\r\n", b""):
        k, _, v = line.decode("latin-1").partition(":")
        headers[k.strip().lower()] = v.strip()
    return code, headers, f.read(int(headers.get("content-length", "0")))
