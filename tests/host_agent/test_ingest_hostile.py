"""Hostile MQTT payloads through a real mosquitto to a real host: each gets exactly one counted outcome by
the contract's reason, is logged, never crashes the host or changes what is stored; and the dedup window
keeps a boot's last sequence number apart from the next boot's first."""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from pathlib import Path

import pytest

from host_agent.clock import ManualClock
from host_agent.service import HostService
from mqtt_schema import Call, DeskKind, Event, EventKind, Minute, encode
from tests.conftest import Mosquitto
from tests.host_agent.conftest import settle
from tests.host_agent.helpers import T0, Desk, publisher, send, sql_rows

MakeHost = Callable[..., HostService]
EVENT = "hsc/v1/site1/d01/event"


def _event(**fields: object) -> bytes:
    doc: dict[str, object] = {"v": 1, "site": "site1", "desk": "d01", "boot": 1, "seq": 900, "ts": T0, "kind": "worn"}
    doc.update(fields)
    return json.dumps(doc).encode()


HOSTILE: list[tuple[str, str, bytes, str]] = [
    ("invalid-json", EVENT, b"{bad", "malformed-json"),
    ("not-utf8", EVENT, b'{"v": 1, "site": "\xff\xfe"}', "malformed-json"),
    ("empty", EVENT, b"", "empty"),
    ("64-kib", EVENT, b'{"v": 1, "pad": "' + b"x" * 65536 + b'"}', "too-large"),
    ("1-mib", EVENT, b"x" * (1 << 20), "too-large"),
    ("deep-array", EVENT, b"[" * 8000 + b"]" * 8000, "invalid-field"),
    ("deep-object", EVENT, b'{"a":' * 2000 + b"1" + b"}" * 2000, "malformed-json"),
    ("deep-extra-field", EVENT, _event()[:-1] + b', "x": ' + b"[" * 5000 + b"]" * 5000 + b"}", "malformed-json"),
    ("nan-literal", EVENT, _event().replace(b'"ts": %d' % T0, b'"ts": NaN'), "malformed-json"),
    ("infinity-literal", EVENT, _event().replace(b'"ts": %d' % T0, b'"ts": -Infinity'), "malformed-json"),
    ("number-as-text", EVENT, _event(seq="900"), "invalid-field"),
    ("float-for-int", EVENT, _event(seq=900.5), "invalid-field"),
    ("1e400", EVENT, _event().replace(b'"seq": 900', b'"seq": 1e400'), "invalid-field"),
    ("5000-digits", EVENT, _event().replace(b'"seq": 900', b'"seq": ' + b"9" * 5000), "invalid-field"),
    ("negative-seq", EVENT, _event(seq=-1), "invalid-field"),
    ("ts-past-2^53", EVENT, _event(ts=2**53 + 1), "invalid-field"),
    ("unknown-kind", EVENT, _event(kind="explode"), "invalid-field"),
    ("missing-boot", EVENT, json.dumps({"v": 1, "site": "site1", "desk": "d01", "seq": 1, "ts": T0,
                                         "kind": "worn"}).encode(), "missing-field"),
    ("array", EVENT, b"[]", "invalid-field"),
    ("desk-of-another-topic", EVENT, _event(desk="d02"), "desk-mismatch"),
    ("upper-case-desk-topic", "hsc/v1/site1/D01/event", _event(desk="D01"), "invalid"),
    ("40-char-desk-topic", f"hsc/v1/site1/{'d' * 40}/event", _event(desk="d" * 40), "invalid"),
    ("non-ascii-desk-topic", "hsc/v1/site1/d\u00e901/event", _event(desk="d\u00e901"), "invalid"),
    ("garbage-state", "hsc/v1/site1/d01/state", b"\x00\x01\x02", "malformed-json"),
    ("garbage-minute", "hsc/v1/site1/d01/minute", b'{"v": 1}', "missing-field"),
    ("garbage-call", "hsc/v1/site1/d01/call", b"null", "invalid-field"),
]


def test_hostile_payloads_are_counted_by_reason_and_change_nothing_stored(
        mosquitto: Mosquitto, make_host: MakeHost, clock: ManualClock, tmp_path: Path,
        caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.WARNING)
    host = make_host(mosquitto.url)
    pub = publisher(mosquitto.port)
    d = Desk("site1", "d01", clock=clock.now_ms)
    send(pub, d, d.state())
    send(pub, d, d.event(EventKind.WORN))
    settle(host, 2)
    db = tmp_path / "host.db"
    stored = sql_rows(db, "SELECT * FROM events ORDER BY boot, seq")
    assert len(stored) == 1
    for name, topic, payload, reason in HOSTILE:
        before = host.summary()
        pub.publish(topic, payload, qos=1).wait_for_publish(5)
        settle(host, before.messages_in + 1, evaluate=False)
        after = host.summary()
        assert after.messages_in == before.messages_in + 1, name
        grew = {r: n - before.rejected.get(r, 0) for r, n in after.rejected.items() if n != before.rejected.get(r, 0)}
        assert grew == {reason: 1}, (name, grew)
        assert after.accepted == before.accepted, name
    host.sync()
    assert sql_rows(db, "SELECT * FROM events ORDER BY boot, seq") == stored  # nothing stored changed
    n = host.summary().messages_in
    send(pub, d, d.event(EventKind.DOFFED))  # and the host still ingests
    settle(host, n + 1)
    assert len(sql_rows(db, "SELECT * FROM events")) == 2
    pub.disconnect()
    messages = [r.getMessage() for r in caplog.records]
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR]  # no traceback
    for topic in {t for _, t, *_ in HOSTILE}:  # logged with the topic and the reason (at most once a minute a topic)
        assert any(m.startswith(f"rejected a message on {topic} (") for m in messages), topic


def test_a_far_future_or_past_timestamp_is_stored_but_never_moves_the_break_timer(
        mosquitto: Mosquitto, make_host: MakeHost, clock: ManualClock, tmp_path: Path) -> None:
    """The desk's clock is its own: its events are kept as sent, but a ``doffed`` dated in year 287396 (or
    1970) starts the break at its receipt, not then."""
    host = make_host(mosquitto.url)
    pub = publisher(mosquitto.port)
    d = Desk("site1", "d01", clock=clock.now_ms)
    send(pub, d, d.state())
    for ts in (2**53, 0):
        d.clock = lambda ts=ts: ts  # type: ignore[misc]
        send(pub, d, d.event(EventKind.DOFFED))
        send(pub, d, d.event(EventKind.WORN))
    d.clock = lambda: 2**53
    send(pub, d, d.event(EventKind.DOFFED))
    settle(host, 6)
    clock.advance(5)
    host.sync()
    desk = next(x for x in host.snapshot()[1]["desks"] if x["desk"] == "d01")
    assert desk["worn"] is False and desk["off_s"] == 5.0
    assert [r[0] for r in sql_rows(tmp_path / "host.db", "SELECT ts FROM events ORDER BY seq")] == [2**53, 2**53, 0, 0, 2**53]
    pub.disconnect()


@pytest.mark.parametrize("kind", [DeskKind.EVENT, DeskKind.MINUTE, DeskKind.CALL])
def test_the_last_seq_of_a_boot_does_not_hide_the_next_boots_first_message(
        mosquitto: Mosquitto, make_host: MakeHost, clock: ManualClock, tmp_path: Path, kind: DeskKind) -> None:
    """The dedup window keyed (boot, seq) as ``boot << 53 | seq``: seq 2**53 (the contract's largest) of boot b
    had the key of seq 0 of boot b + 1, so that message was counted a duplicate, acknowledged and lost."""
    host = make_host(mosquitto.url)
    pub = publisher(mosquitto.port)
    sent = []
    for boot, seq in ((0, 2**53), (1, 0), (2, 2**53), (3, 0), (3, 1)):
        d = Desk("site1", "d01", boot=boot, seq=seq - 1, clock=clock.now_ms)
        msg: Event | Minute | Call
        if kind is DeskKind.EVENT:
            msg = d.event(EventKind.WORN)
        elif kind is DeskKind.MINUTE:
            msg = d.minute(T0 - 60_000, speech_s=3.0)
        else:
            msg = Call(site="site1", desk="d01", boot=boot, seq=seq, ts=T0, call_id="5f2c0a9e41b7d388", source="gpio",
                       start_ts=T0 - 60_000, end_ts=T0)
        assert (msg.boot, msg.seq) == (boot, seq)
        pub.publish(str(d.topic(kind)), encode(msg), qos=1).wait_for_publish(5)
        sent.append((boot, seq))
    settle(host, len(sent))
    s = host.summary()
    assert s.accepted.get(kind.value) == len(sent) and not s.duplicates.get(kind.value)
    table = {"event": "events", "minute": "minutes", "call": "calls"}[kind.value]
    assert sql_rows(tmp_path / "host.db", f"SELECT boot, seq FROM {table} ORDER BY boot, seq") == sent
    pub.publish(str(Desk("site1", "d01").topic(kind)), encode(msg), qos=1).wait_for_publish(5)  # a real redelivery
    settle(host, len(sent) + 1)
    assert host.summary().duplicates.get(kind.value) == 1
    pub.disconnect()
