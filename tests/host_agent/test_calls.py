"""Call summaries (schema 1.1 ``call``) on the host: subscribed, deduplicated into the ``calls`` history,
the ``slow-answer``, ``late-greeting`` and ``monotone`` rules, and the report's call columns; the 1.2
silent-call fields stored in their columns and counted in the report."""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Callable
from typing import Any

from host_agent.clock import ManualClock
from host_agent.config import HostConfig
from host_agent.history import open_store
from host_agent.mqtt_link import subscriptions
from host_agent.processor import Processor
from host_agent.report import build_report, render_csv, render_table
from host_agent.report_html import render_html
from host_agent.service import HostService
from mqtt_schema import QOS, AlertTransition, Call, DeskKind, encode
from tests.conftest import Mosquitto
from tests.host_agent.conftest import MakeProcessor, settle
from tests.host_agent.helpers import T0, Desk, publisher, sql_rows

MakeHost = Callable[..., HostService]


def call(d: Desk, start_ts: int, **kw: Any) -> Call:
    """A finished, answered call of 60 s starting at ``start_ts``, within the norms unless ``kw`` says not."""
    fields: dict[str, Any] = {"call_id": "5f2c0a9e41b7d388", "source": "mqtt", "start_ts": start_ts,
                              "end_ts": start_ts + 60_000, "answered": True, "rings": 2, "answer_ok": True,
                              "greeting_ok": True, "greeting_latency_s": 1.0, "max_rings": 3,
                              "greet_within_s": 2.0, "monotone_share": 0.0}
    fields.update(kw)
    d.seq += 1
    return Call(site=d.site, desk=d.desk, boot=d.boot, seq=d.seq, ts=fields["end_ts"] + 500, **fields)


def send_call(client: Any, d: Desk, msg: Call) -> None:
    client.publish(d.topic(DeskKind.CALL), encode(msg), qos=QOS["call"]).wait_for_publish(5)


def test_the_host_subscribes_to_calls_shared_when_asked() -> None:
    assert ("hsc/v1/site1/+/call", 1) in subscriptions(("site1",), None)
    assert ("$share/hosts/hsc/v1/site1/+/call", 1) in subscriptions(("site1",), "hosts")


def test_a_call_round_trips_into_the_history_once_even_across_a_restart(
        mosquitto: Mosquitto, make_host: MakeHost, clock: ManualClock, history_db: str) -> None:
    host = make_host(mosquitto.url, db=history_db)
    pub = publisher(mosquitto.port)
    d = Desk("site1", "d01", clock=clock.now_ms)
    c = call(d, T0 - 120_000, answer_ok=False, rings=5)
    for _ in range(3):
        send_call(pub, d, c)
    settle(host, 3)
    s = host.summary()
    assert s.accepted == {"call": 1} and s.duplicates == {"call": 2}
    host.stop()
    host2 = make_host(mosquitto.url, db=history_db)
    send_call(pub, d, c)  # redelivered after a restart: the history's key catches it
    settle(host2, 1)
    assert host2.summary().duplicates == {"call": 1}
    assert sql_rows(history_db, "SELECT site, desk, boot, seq, start_ts, end_ts FROM calls") == [
        ("site1", "d01", 1, c.seq, c.start_ts, c.end_ts)]
    store = open_store(history_db, readonly=True)
    assert store.calls("site1", T0 - 3_600_000, T0) == [c]
    assert store.calls("site9", T0 - 3_600_000, T0) == []
    store.close()
    pub.loop_stop()


def _transitions(p: Processor, rule: str) -> list[AlertTransition]:
    changes = p.evaluate(everything=True)
    p.store.commit()
    return [c.log.transition for c in changes if c.log.rule == rule]


def test_slow_answer_and_late_greeting_fire_and_resolve_on_the_window(history_db: str, clock: ManualClock,
                                                                     make_processor: MakeProcessor) -> None:
    p = make_processor(HostConfig(db=history_db, sites=("site1",)), history_db)
    d = Desk("site1", "d01")
    topic = d.topic(DeskKind.CALL)
    ok = call(d, T0 - 61_000)
    assert p.handle(topic, encode(ok)) == "accepted"
    assert _transitions(p, "slow-answer") == [] and _transitions(p, "late-greeting") == []
    slow = call(d, T0 - 61_000, answer_ok=False, rings=6)
    assert p.handle(topic, encode(slow)) == "accepted"
    assert p.handle(topic, encode(slow)) == "duplicate"
    assert _transitions(p, "slow-answer") == [AlertTransition.FIRING]
    firing = p.engine.alerts[("site1", "d01", "slow-answer")]
    assert firing.value == 1.0 and "1 call(s)" in firing.summary
    late = call(d, T0 - 61_000, greeting_ok=False, greeting_latency_s=3.4)
    assert p.handle(topic, encode(late)) == "accepted"
    assert _transitions(p, "late-greeting") == [AlertTransition.FIRING]
    clock.advance(300)
    assert _transitions(p, "slow-answer") == []  # still within the 10 min window
    clock.advance(310)  # the calls ended more than 10 min ago
    resolved = [(c.log.rule, c.log.transition) for c in p.evaluate(everything=True)]
    assert sorted(resolved) == [("late-greeting", AlertTransition.RESOLVED), ("slow-answer", AlertTransition.RESOLVED)]
    p.store.commit()
    assert p.stats.accepted["call"] == 3 and p.stats.duplicates["call"] == 1
    # a restarted host seeds its windows from the calls stored in the last 10 min
    clock.set(T0 + 60_000)
    p.store.close()
    p2 = make_processor(HostConfig(db=history_db, sites=("site1",)), history_db)
    p2.restore()
    assert _transitions(p2, "slow-answer") == [AlertTransition.FIRING]
    p2.store.close()


def test_slow_answer_needs_threshold_calls(make_processor: MakeProcessor) -> None:
    from dataclasses import replace

    from host_agent.config import DEFAULT_RULES

    rules = dict(DEFAULT_RULES)
    rules["slow-answer"] = replace(rules["slow-answer"], threshold=2)
    p = make_processor(HostConfig(rules=rules))
    d = Desk("site1", "d01")
    p.handle(d.topic(DeskKind.CALL), encode(call(d, T0 - 61_000, answer_ok=False)))
    assert _transitions(p, "slow-answer") == []
    p.handle(d.topic(DeskKind.CALL), encode(call(d, T0 - 61_000, answer_ok=False)))
    assert _transitions(p, "slow-answer") == [AlertTransition.FIRING]
    p.store.close()


def test_monotone_fires_after_a_minute_of_monotone_speech(clock: ManualClock, make_processor: MakeProcessor) -> None:
    p = make_processor(HostConfig(sites=("site1",)))
    d = Desk("site1", "d01", clock=clock.now_ms)
    from mqtt_schema import Metrics

    def metrics(monotone: bool) -> bytes:
        d.seq += 1
        return encode(Metrics(site="site1", desk="d01", boot=1, seq=d.seq, ts=clock.now_ms(), speaking=True,
                              speech_s=1.0, worn=True, monotone=monotone, intonation_st=1.0))

    for _ in range(60):
        clock.advance(1)
        p.handle(d.topic(DeskKind.METRICS), metrics(True))
    assert _transitions(p, "monotone") == []  # 60 s: not above the threshold yet
    clock.advance(1)
    p.handle(d.topic(DeskKind.METRICS), metrics(True))
    assert _transitions(p, "monotone") == [AlertTransition.FIRING]
    clock.advance(700)
    p.handle(d.topic(DeskKind.METRICS), metrics(False))
    assert _transitions(p, "monotone") == [AlertTransition.RESOLVED]
    p.store.close()


def test_report_call_columns(history_db: str) -> None:
    day = dt.date(2026, 11, 20)
    t8 = int(dt.datetime(2026, 11, 20, 8, tzinfo=dt.UTC).timestamp() * 1000)
    store = open_store(history_db)
    d1, d2 = Desk("site1", "d01"), Desk("site1", "d02")
    for c in (call(d1, t8, greeting_latency_s=1.0),
              call(d1, t8 + 600_000, answer_ok=False, rings=5, greeting_latency_s=3.0, greeting_ok=False,
                   monotone_share=0.25),
              call(d1, t8 + 1_200_000, answer_ok=None, greeting_latency_s=2.0, monotone_share=None),
              call(d1, t8 + 1_800_000, answered=False, abandoned=True, answer_ok=None, greeting_ok=None,
                   greeting_latency_s=None, monotone_share=None),
              call(d2, t8 - 86_400_000),  # the day before
              call(d2, t8 + 60_000, monotone_share=0.5)):
        assert store.add_call(c)
    store.commit()
    rep = build_report(store, "site1", day)
    rows = {r.key: r.as_dict() for r in rep.rows}
    assert rows["d01"]["calls"] == 4 and rows["d02"]["calls"] == 1
    assert rows["d01"]["answered_within_rings"] == 0.5  # 1 of the 2 judged calls
    assert rows["d01"]["median_greeting_s"] == 2.0
    assert rows["d01"]["monotone_call_share"] == 0.5  # 1 of the 2 calls with intonation measured
    assert rows["d02"]["answered_within_rings"] == 1.0 and rows["d02"]["monotone_call_share"] == 1.0
    table = render_table(rep)
    assert "calls" in table.splitlines()[1] and "50%" in table
    csv_rows = render_csv(rep).splitlines()
    assert csv_rows[0].endswith("calls,answered_within_rings,median_greeting_s,monotone_call_share,"
                                "silent_calls,silent_calls_ok")
    assert csv_rows[1].endswith(",4,0.5,2.0,0.5,,")  # no far end measured: no silent-call figures
    assert json.loads(json.dumps(rep.as_dict()))["rows"][0]["calls"] == 4
    html = render_html(rep)
    assert "answered in time" in html and "2.0 s" in html
    assert store.prune(t8) == 1  # the day-before call goes with retention
    store.close()


SILENT_COLS = "far_talk_s, silent_call, longest_mutual_silence_s, silent_prompts, silent_min_wait_s, silent_call_ok"


def test_silent_calls_are_stored_and_reported_per_desk(
        mosquitto: Mosquitto, make_host: MakeHost, clock: ManualClock, history_db: str) -> None:
    """Over the broker into the history's silent-call columns, and from there into every report format:
    d01 measures the far end (two silent calls, one handled per the norm, one spoken call); d02 does not
    (every silent field null): its silent-call figures are "-" / null / empty, not 0."""
    host = make_host(mosquitto.url, db=history_db)
    pub = publisher(mosquitto.port)
    d1, d2 = Desk("site1", "d01", clock=clock.now_ms), Desk("site1", "d02", clock=clock.now_ms)
    t = T0 - 3_600_000
    silent_ok = call(d1, t, silent_call=True, far_talk_s=0.2, longest_mutual_silence_s=5.5, silent_prompts=2,
                     silent_min_wait_s=2.4, silent_call_ok=True, monotone_share=None)
    silent_bad = call(d1, t + 120_000, silent_call=True, far_talk_s=0.0, longest_mutual_silence_s=9.0,
                      silent_prompts=1, silent_min_wait_s=0.8, silent_call_ok=False, monotone_share=None)
    spoken = call(d1, t + 240_000, silent_call=False, far_talk_s=38.5, longest_mutual_silence_s=2.5)
    unmeasured = call(d2, t + 60_000)
    for c in (silent_ok, silent_bad, spoken, silent_bad, unmeasured):  # silent_bad twice: stored once
        send_call(pub, d1 if c.desk == "d01" else d2, c)
    settle(host, 5)
    assert host.summary().accepted == {"call": 4} and host.summary().duplicates == {"call": 1}
    host.stop()
    pub.loop_stop()
    assert sql_rows(history_db, f"SELECT desk, seq, {SILENT_COLS} FROM calls ORDER BY desk, seq") == [
        ("d01", silent_ok.seq, 0.2, 1, 5.5, 2, 2.4, 1),
        ("d01", silent_bad.seq, 0.0, 1, 9.0, 1, 0.8, 0),
        ("d01", spoken.seq, 38.5, 0, 2.5, None, None, None),
        ("d02", unmeasured.seq, None, None, None, None, None, None)]
    store = open_store(history_db, readonly=True)
    day = dt.datetime.fromtimestamp(t / 1000, dt.UTC).date()
    rep = build_report(store, "site1", day)
    store.close()
    rows = {r.key: r.as_dict() for r in rep.rows}
    assert rows["d01"]["calls"] == 3 and rows["d01"]["silent_calls"] == 2 and rows["d01"]["silent_calls_ok"] == 1
    assert rows["d02"]["calls"] == 1 and rows["d02"]["silent_calls"] is None and rows["d02"]["silent_calls_ok"] is None
    as_json = json.loads(json.dumps(rep.as_dict()))["rows"]
    assert [(r["key"], r["silent_calls"], r["silent_calls_ok"]) for r in as_json] == [("d01", 2, 1), ("d02", None, None)]
    table = render_table(rep).splitlines()
    head = table[1].split()
    assert head[-1] == "silent"
    cells = {line.split()[0]: line for line in table[2:]}
    assert cells["d01"].endswith("2 (1 ok)") and cells["d02"].endswith("  -")
    csv_rows = render_csv(rep).splitlines()
    assert csv_rows[0].endswith(",silent_calls,silent_calls_ok")
    assert csv_rows[1].startswith("d01,") and csv_rows[1].endswith(",3,1.0,1.0,0.0,2,1")
    assert csv_rows[2].startswith("d02,") and csv_rows[2].endswith(",1,1.0,1.0,0.0,,")
    html = render_html(rep)
    assert "<th>silent calls</th>" in html and '2 · <span class="bad">1 per norm</span>' in html


def test_report_silent_calls_all_per_norm_none_silent_and_no_calls(history_db: str) -> None:
    """A desk whose silent calls all followed the norm, one whose measured calls were all spoken (0, not -),
    and one with minute rollups but no calls."""
    from host_agent.report import Row

    store = open_store(history_db)
    t8 = int(dt.datetime(2026, 11, 20, 8, tzinfo=dt.UTC).timestamp() * 1000)
    d1, d2, d3 = Desk("site1", "d01"), Desk("site1", "d02"), Desk("site1", "d03")
    for c in (call(d1, t8, silent_call=True, silent_prompts=2, silent_min_wait_s=2.0, silent_call_ok=True),
              call(d1, t8 + 1, silent_call=None),  # this call's recording was missing: not counted either way
              call(d2, t8, silent_call=False, far_talk_s=12.0)):
        assert store.add_call(c)
    store.add_minute(d3.minute(t8, speech_s=10.0))
    store.commit()
    rep = build_report(store, "site1", dt.date(2026, 11, 20))
    store.close()
    rows = {r.key: r for r in rep.rows}
    assert (rows["d01"].silent_calls, rows["d01"].silent_calls_ok, rows["d01"].calls) == (1, 1, 2)
    assert (rows["d02"].silent_calls, rows["d02"].silent_calls_ok) == (0, 0)
    assert (rows["d03"].silent_calls, rows["d03"].silent_calls_ok) == (None, None)
    cells = {line.split()[0]: line for line in render_table(rep).splitlines()[2:]}
    assert cells["d01"].endswith("1 (1 ok)") and cells["d02"].endswith(" 0") and cells["d03"].endswith(" -")
    html = render_html(rep)
    assert '1 · <span class="ok">1 per norm</span>' in html
    assert Row("x").as_dict()["silent_calls"] is None
