"""The host on a real mosquitto: ingest, validation, dedup, snapshots, alerts published, history,
restart mid-firing, sites, MQTT 5 shared subscriptions, amqtt. The tests of what the history keeps
(acks after commit, dedup across a restart, restore after a restart) run on SQLite and PostgreSQL."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from host_agent.clock import ManualClock
from host_agent.embedded_broker import EmbeddedBroker
from host_agent.service import HostService
from mqtt_schema import (
    Alert,
    AlertLog,
    AlertLogTopic,
    AlertTopic,
    AlertTransition,
    DeskKind,
    DeskStatus,
    EventKind,
    alert_filter,
    alert_log_filter,
    decode,
)
from tests.conftest import Mosquitto
from tests.host_agent.conftest import settle
from tests.host_agent.helpers import Desk, Subscriber, publisher, send, sql_rows
from tests.waiting import wait_for

MakeHost = Callable[..., HostService]


def _transitions(sub: Subscriber, site: str = "site1") -> list[tuple[str, str, AlertTransition]]:
    logs = [decode(p, AlertLog) for p in sub.on(str(AlertLogTopic(site)))]
    return [(log.desk, log.rule, log.transition) for log in logs]


def test_break_overrun_alert_is_published_retained_then_cleared(
        mosquitto: Mosquitto, make_host: MakeHost, clock: ManualClock) -> None:
    host = make_host(mosquitto.url)
    sub = Subscriber(mosquitto.port, alert_filter("site1"), alert_log_filter("site1"))
    pub = publisher(mosquitto.port)
    d = Desk("site1", "d01", clock=clock.now_ms)
    send(pub, d, d.state())
    send(pub, d, d.metrics())
    send(pub, d, d.event(EventKind.DOFFED))
    settle(host, 3)
    clock.advance(15 * 60 + 5)
    host.sync()
    topic = str(AlertTopic("site1", "d01", "break-overrun"))
    wait_for(lambda: sub.on(topic), 5, "the retained alert")
    alert = decode(sub.on(topic)[-1], Alert)
    assert alert.level == 1 and alert.desk == "d01" and not alert.silenced
    # A late subscriber gets it retained.
    late = Subscriber(mosquitto.port, alert_filter("site1"))
    wait_for(lambda: late.on(topic), 5, "the retained alert for a late subscriber")
    send(pub, d, d.event(EventKind.WORN))
    settle(host, 4)
    wait_for(lambda: sub.on(topic)[-1] == b"", 5, "the alert cleared with an empty payload")
    wait_for(lambda: ("d01", "break-overrun", AlertTransition.RESOLVED) in _transitions(sub), 5, "resolved log")
    assert _transitions(sub) == [("d01", "break-overrun", AlertTransition.FIRING),
                                 ("d01", "break-overrun", AlertTransition.RESOLVED)]
    summary = host.summary()
    assert summary.fired == {"break-overrun": 1} and summary.resolved == {"break-overrun": 1}
    assert summary.accepted == {"state": 1, "metrics": 1, "event": 2}
    for c in (sub, late):
        c.close()


def test_invalid_messages_are_counted_by_reason_and_never_stop_ingest(
        mosquitto: Mosquitto, make_host: MakeHost, clock: ManualClock) -> None:
    host = make_host(mosquitto.url)
    pub = publisher(mosquitto.port)
    d = Desk("site1", "d01", clock=clock.now_ms)
    other = Desk("site1", "d02", clock=clock.now_ms)
    bad = [
        (d.topic(DeskKind.METRICS), b"{not json"),
        (d.topic(DeskKind.EVENT), b""),
        (d.topic(DeskKind.STATE), b'{"type": "state"}'),
        (d.topic(DeskKind.MINUTE), __import__("mqtt_schema").encode(other.minute(0))),  # desk mismatch
        (d.topic(DeskKind.METRICS), b'{"type":"metrics","v":1,"site":"site1","desk":"d01","boot":1,"seq":-5,"ts":1}'),
    ]
    for topic, payload in bad:
        pub.publish(topic, payload, qos=1).wait_for_publish(5)
    send(pub, d, d.state())
    settle(host, len(bad) + 1)
    s = host.summary()
    assert s.messages_in == len(bad) + 1
    assert s.rejected == {"malformed-json": 1, "empty": 1, "missing-field": 1, "desk-mismatch": 1,
                          "invalid-field": 1}
    assert s.accepted == {"state": 1}
    text = host.metrics_text()
    assert 'hsc_host_messages_rejected_total{reason="desk-mismatch"} 1' in text
    assert "hsc_host_messages_in_total 6" in text


def test_qos1_messages_are_acknowledged_after_the_commit_rejected_ones_too(
        mosquitto: Mosquitto, make_host: MakeHost, clock: ManualClock, history_db: str) -> None:
    host = make_host(mosquitto.url, db=history_db)
    link = host.link
    assert link is not None and link.client._manual_ack  # paho sends no PUBACK on its own
    pub = publisher(mosquitto.port)
    d = Desk("site1", "d01", clock=clock.now_ms)
    send(pub, d, d.event(EventKind.DOFFED))
    send(pub, d, d.event(EventKind.WORN))
    pub.publish(d.topic(DeskKind.EVENT), b"{not json", qos=1).wait_for_publish(5)  # rejected, counted, acked
    send(pub, d, d.metrics())  # QoS 0: nothing to acknowledge
    settle(host, 4)
    assert host.summary().rejected == {"malformed-json": 1}
    assert (link.acks_sent, link.acks_dropped) == (3, 0)
    assert sql_rows(history_db, "SELECT COUNT(*) FROM events") == [(2,)]
    host.stop()
    # The broker got every ack: the same session, resumed, redelivers none of them.
    host2 = make_host(mosquitto.url, db=history_db)
    send(pub, d, d.event(EventKind.CALIBRATION))
    wait_for(lambda: host2.summary().accepted.get("event") == 1, 5, "the new event")
    host2.sync()
    s = host2.summary()
    assert s.messages_in == 1 and s.duplicates == {} and s.rejected == {}


def test_events_and_minutes_are_deduplicated_even_across_a_restart(
        mosquitto: Mosquitto, make_host: MakeHost, clock: ManualClock, history_db: str) -> None:
    host = make_host(mosquitto.url, db=history_db)
    pub = publisher(mosquitto.port)
    d = Desk("site1", "d01", clock=clock.now_ms)
    ev = d.event(EventKind.CALIBRATION)
    mi = d.minute(clock.now_ms() - 60_000, speech_s=20.0)
    for msg in (ev, ev, mi, mi, ev):
        send(pub, d, msg)
    settle(host, 5)
    s = host.summary()
    assert s.accepted == {"event": 1, "minute": 1} and s.duplicates == {"event": 2, "minute": 1}
    host.stop()
    host2 = make_host(mosquitto.url, db=history_db)
    send(pub, d, ev)
    send(pub, d, mi)
    settle(host2, 2)
    assert host2.summary().duplicates == {"event": 1, "minute": 1}
    assert sql_rows(history_db, "SELECT COUNT(*) FROM events") == [(1,)]
    assert sql_rows(history_db, "SELECT COUNT(*) FROM minutes") == [(1,)]


def test_state_snapshots_apply_newer_only_but_lost_always(
        mosquitto: Mosquitto, make_host: MakeHost, clock: ManualClock) -> None:
    host = make_host(mosquitto.url)
    pub = publisher(mosquitto.port)
    d = Desk("site1", "d01", clock=clock.now_ms)
    old_online = d.state(DeskStatus.ONLINE)
    old_lost = d.state(DeskStatus.LOST)
    newest = d.state(DeskStatus.ONLINE)
    send(pub, d, newest)
    send(pub, d, old_online)  # older: ignored
    settle(host, 2)
    assert host.summary().desks["online"] == 1
    send(pub, d, old_lost)  # older, but lost always applies
    settle(host, 3)
    s = host.summary()
    assert s.desks["lost"] == 1 and s.accepted["state"] == 2
    assert host.processor is not None and host.processor.stats.superseded["state"] == 1


def test_restart_mid_firing_rebuilds_state_without_a_second_firing(
        mosquitto: Mosquitto, make_host: MakeHost, clock: ManualClock, history_db: str) -> None:
    sub = Subscriber(mosquitto.port, alert_log_filter("site1"))
    host = make_host(mosquitto.url, db=history_db)
    pub = publisher(mosquitto.port)
    d = Desk("site1", "d01", clock=clock.now_ms)
    send(pub, d, d.state())
    send(pub, d, d.event(EventKind.DOFFED))
    settle(host, 2)
    clock.advance(16 * 60)
    host.sync()
    assert host.summary().firing_now == {"break-overrun": 1}
    host.stop()
    clock.advance(10 * 60)  # the host was down 10 min: the break went on (now 11 min over: level 2)
    host2 = make_host(mosquitto.url, db=history_db)
    settle(host2, 1)  # the retained state
    clock.advance(1)
    host2.sync()
    assert host2.summary().firing_now == {"break-overrun": 1}
    assert host2.summary().fired == {}
    wait_for(lambda: AlertTransition.LEVEL_CHANGED in [t for *_, t in _transitions(sub)], 5, "level change")
    assert [t for *_, t in _transitions(sub)] == [AlertTransition.FIRING, AlertTransition.LEVEL_CHANGED]
    send(pub, d, d.event(EventKind.WORN))
    settle(host2, 2)
    wait_for(lambda: len(_transitions(sub)) == 3, 5, "the resolution")
    assert _transitions(sub)[-1][2] is AlertTransition.RESOLVED
    rows = sql_rows(history_db, "SELECT transition FROM alert_log ORDER BY id")
    assert [r[0] for r in rows] == ["firing", "level_changed", "resolved"]


def test_lost_last_will_raises_desk_offline_and_mutes_other_alerts(
        mosquitto: Mosquitto, make_host: MakeHost, clock: ManualClock) -> None:
    host = make_host(mosquitto.url)
    sub = Subscriber(mosquitto.port, alert_filter("site1"))
    pub = publisher(mosquitto.port)
    d = Desk("site1", "d01", clock=clock.now_ms)
    send(pub, d, d.state())
    send(pub, d, d.event(EventKind.DOFFED))
    settle(host, 2)
    clock.advance(16 * 60)
    host.sync()
    overrun = str(AlertTopic("site1", "d01", "break-overrun"))
    wait_for(lambda: sub.on(overrun), 5, "break-overrun alert")
    send(pub, d, d.state(DeskStatus.LOST))
    settle(host, 3)
    clock.advance(31)
    host.sync()
    offline = str(AlertTopic("site1", "d01", "desk-offline"))
    wait_for(lambda: sub.on(offline), 5, "desk-offline alert")
    wait_for(lambda: sub.on(overrun)[-1] == b"", 5, "muted break-overrun cleared")
    assert decode(sub.on(offline)[-1], Alert).severity.value == "critical"
    assert host.summary().firing_now == {"desk-offline": 1}


def test_only_configured_sites_are_ingested(mosquitto: Mosquitto, make_host: MakeHost, clock: ManualClock) -> None:
    host = make_host(mosquitto.url, sites=("site1", "site3"))
    pub = publisher(mosquitto.port)
    for site in ("site1", "site2", "site3"):
        d = Desk(site, "d01", clock=clock.now_ms)
        send(pub, d, d.state())
    settle(host, 2)
    host.sync()
    assert host.processor is not None
    assert sorted(host.processor.floor.desks) == [("site1", "d01"), ("site3", "d01")]


def test_mqtt5_shared_subscription_still_reads_retained_state(
        mosquitto: Mosquitto, make_host: MakeHost, clock: ManualClock) -> None:
    pub = publisher(mosquitto.port)
    d = Desk("site1", "d01", clock=clock.now_ms)
    send(pub, d, d.state())  # retained before the host starts
    host = make_host(mosquitto.url, broker={"protocol": "5", "shared_group": "hosts"})
    send(pub, d, d.metrics())
    send(pub, d, d.event(EventKind.DOFFED))
    settle(host, 3)
    assert host.summary().accepted == {"state": 1, "metrics": 1, "event": 1}


def test_works_with_the_embedded_amqtt_broker(make_host: MakeHost, clock: ManualClock) -> None:
    with EmbeddedBroker() as broker:
        host = make_host(broker.url)
        pub = publisher(broker.port)
        d = Desk("site1", "d01", clock=clock.now_ms)
        send(pub, d, d.state())
        send(pub, d, d.event(EventKind.DOFFED))
        settle(host, 2)
        clock.advance(20 * 60)
        host.sync()
        assert host.summary().firing_now == {"break-overrun": 1}
        pub.disconnect()
        host.stop()


def test_unreachable_broker_is_a_clear_error(tmp_path: Path, clock: ManualClock) -> None:
    from host_agent.errors import HostError
    from tests.host_agent.conftest import host_config
    from tests.ports import free_port

    cfg = host_config(f"mqtt://127.0.0.1:{free_port()}", tmp_path / "h.db")
    with pytest.raises(HostError, match="could not connect"):
        HostService(cfg, clock, connect_timeout_s=1.5).start()


def test_restart_seeds_rule_windows_from_recent_minute_rollups(
        mosquitto: Mosquitto, make_host: MakeHost, clock: ManualClock, history_db: str) -> None:
    from mqtt_schema import Cue

    host = make_host(mosquitto.url, db=history_db)
    pub = publisher(mosquitto.port)
    d = Desk("site1", "d01", clock=clock.now_ms)
    send(pub, d, d.state())
    now = clock.now_ms()
    for k in range(4, 0, -1):  # four minutes with 20 s of fast speech each: 80 s > 60 s in 5 min
        send(pub, d, d.minute(now - k * 60_000, speech_s=40.0, cue_s={Cue.PACE_FAST: 20.0}))
    settle(host, 5)
    assert host.summary().firing_now == {}  # live metrics drive the window; minutes only seed a restart
    host.stop()
    host2 = make_host(mosquitto.url, db=history_db)
    settle(host2, 1)
    assert host2.summary().firing_now == {"pace": 1}


def test_example_config_loads() -> None:
    from host_agent.config import load_config

    cfg = load_config(Path(__file__).resolve().parents[2] / "host_agent" / "host.example.toml")
    assert cfg.sites == ("site1",) and cfg.rules["posture"].threshold == 300


def test_start_clears_stale_retained_alerts_and_republishes_missing_ones(
        mosquitto: Mosquitto, make_host: MakeHost, clock: ManualClock) -> None:
    from mqtt_schema import encode

    pub = publisher(mosquitto.port)
    stale = str(AlertTopic("site1", "d09", "posture"))
    pub.publish(stale, encode(Alert(site="site1", desk="d09", rule="posture", since_ts=clock.now_ms(),
                                    ts=clock.now_ms())), qos=1, retain=True).wait_for_publish(5)
    d = Desk("site1", "d01", clock=clock.now_ms)
    host = make_host(mosquitto.url)
    send(pub, d, d.state())
    send(pub, d, d.event(EventKind.DOFFED))
    settle(host, 2)
    clock.advance(16 * 60)
    host.sync()
    host.stop()
    live = str(AlertTopic("site1", "d01", "break-overrun"))
    pub.publish(live, b"", qos=1, retain=True).wait_for_publish(5)  # the retained alert got lost
    make_host(mosquitto.url)
    sub = Subscriber(mosquitto.port, alert_filter("site1"))
    wait_for(lambda: sub.on(live), 5, "the firing alert republished")
    assert decode(sub.on(live)[-1], Alert).rule == "break-overrun"
    assert sub.on(stale) == []  # cleared: no retained message left for a new subscriber
    sub.close()


def test_restart_while_a_desk_is_lost_keeps_its_alerts_muted_without_new_transitions(
        mosquitto: Mosquitto, make_host: MakeHost, clock: ManualClock, history_db: str) -> None:
    host = make_host(mosquitto.url, db=history_db)
    pub = publisher(mosquitto.port)
    d = Desk("site1", "d01", clock=clock.now_ms)
    send(pub, d, d.state())
    send(pub, d, d.event(EventKind.DOFFED))
    settle(host, 2)
    clock.advance(16 * 60)
    host.sync()
    send(pub, d, d.state(DeskStatus.LOST))
    settle(host, 3)
    clock.advance(31)
    host.sync()
    host.stop()
    before = sql_rows(history_db, "SELECT rule, transition FROM alert_log ORDER BY id")
    assert before == [("break-overrun", "firing"), ("break-overrun", "silenced"), ("desk-offline", "pending"),
                      ("desk-offline", "firing")]
    host2 = make_host(mosquitto.url, db=history_db)
    settle(host2, 1)
    clock.advance(5)
    host2.sync()
    after = sql_rows(history_db, "SELECT rule, transition FROM alert_log ORDER BY id")
    assert after == before
    assert host2.summary().firing_now == {"desk-offline": 1}
