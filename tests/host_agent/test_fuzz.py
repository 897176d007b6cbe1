"""Hypothesis-fuzzed payloads on every topic: the host never crashes and counts every message."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from host_agent.clock import ManualClock
from host_agent.config import HostConfig
from host_agent.processor import Processor
from host_agent.service import HostService
from host_agent.storage import SqliteStore
from mqtt_schema import AlertLogTopic, AlertTopic, DeskKind, DeskTopic, encode
from tests.conftest import Mosquitto
from tests.host_agent.conftest import MakeProcessor, settle
from tests.host_agent.helpers import T0, Desk, publisher

TOPICS = [str(DeskTopic("site1", "d01", k)) for k in DeskKind] + [
    str(AlertTopic("site1", "d01", "posture")), str(AlertLogTopic("site1")),
    "hsc/v1/site1/d01", "hsc/v1/site1/d01/unknown", "hsc/v2/site1/d01/state", "hsc/v1/SITE/d01/state",
    "hsc/v1/site1/alert/metrics", "",
]
_desk = Desk("site1", "d01", clock=lambda: T0)
VALID = [encode(m) for m in (_desk.state(), _desk.metrics(speech_s=0.5), _desk.minute(T0, speech_s=3.0))]

json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-2**60, 2**60) | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=10), inner, max_size=5),
    max_leaves=20,
)


@st.composite
def mutated(draw: st.DrawFn) -> bytes:
    """A valid payload with one field replaced, removed or added."""
    doc = json.loads(draw(st.sampled_from(VALID)))
    key = draw(st.sampled_from(sorted(doc)))
    action = draw(st.sampled_from(["replace", "delete", "add"]))
    if action == "replace":
        doc[key] = draw(json_values)
    elif action == "delete":
        del doc[key]
    else:
        doc[draw(st.text(max_size=8))] = draw(json_values)
    return json.dumps(doc).encode()


payloads = st.one_of(st.binary(max_size=200), json_values.map(lambda v: json.dumps(v).encode()), mutated(),
                     st.sampled_from(VALID))


@pytest.fixture(scope="module")
def processor(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Processor]:
    store = SqliteStore(tmp_path_factory.mktemp("fuzz") / "fuzz.db")
    yield Processor(HostConfig(), ManualClock(T0), store)
    store.close()


@settings(max_examples=600, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(topic=st.sampled_from(TOPICS) | st.text(max_size=60), payload=payloads)
def test_any_payload_on_any_topic_gets_exactly_one_counted_outcome(processor: Processor, topic: str,
                                                                    payload: bytes) -> None:
    before_in, before_handled = processor.stats.messages_in, processor.stats.handled_total
    outcome = processor.handle(topic, payload)
    processor.evaluate(everything=True)
    assert outcome != "internal-error"
    assert processor.stats.messages_in == before_in + 1
    assert processor.stats.handled_total == before_handled + 1


def test_fuzzed_batch_through_the_broker_is_fully_counted(
        mosquitto: Mosquitto, make_host: Callable[..., HostService], tmp_path: Path) -> None:
    host = make_host(mosquitto.url)
    pub = publisher(mosquitto.port)
    desk_topics = [str(DeskTopic("site1", "d01", k)) for k in (DeskKind.STATE, DeskKind.METRICS, DeskKind.EVENT,
                                                                DeskKind.MINUTE)]
    sent = []

    @settings(max_examples=150, deadline=None, database=None)
    @given(topic=st.sampled_from(desk_topics), payload=payloads)
    def publish(topic: str, payload: bytes) -> None:
        pub.publish(topic, payload, qos=1).wait_for_publish(5)
        sent.append(topic)

    publish()
    settle(host, len(sent), deadline_s=20)
    s = host.summary()
    assert s.messages_in == len(sent)
    assert "internal-error" not in s.rejected
    assert sum(s.accepted.values()) + sum(s.rejected.values()) + sum(s.duplicates.values()) + \
        host.processor.stats.superseded.total() == len(sent)  # type: ignore[union-attr]
    pub.disconnect()


def test_rejects_are_logged_once_a_minute_per_topic(caplog: pytest.LogCaptureFixture,
                                                    make_processor: MakeProcessor) -> None:
    p = make_processor()
    store = p.store
    a, b = str(DeskTopic("site1", "d01", DeskKind.METRICS)), str(DeskTopic("site1", "d02", DeskKind.METRICS))
    with caplog.at_level("WARNING", logger="host_agent.ingest"):
        for _ in range(5):
            p.handle(a, b"{broken")
        p.handle(b, b"[]")
    records = [r.getMessage() for r in caplog.records]
    assert len(records) == 2
    assert a in records[0] and "malformed-json" in records[0]
    assert b in records[1]
    assert p.stats.rejected_total == 6
    store.close()


def test_metrics_text_is_well_formed_prometheus(make_processor: MakeProcessor) -> None:
    import re

    from host_agent.stats import render_prometheus

    p = make_processor()
    store = p.store
    for payload in VALID + [b"{", b"", b'{"type":"metrics"}']:
        p.handle(str(DeskTopic("site1", "d01", DeskKind.METRICS)), payload, recv_ns=0)
    text = render_prometheus(p.stats, p.desks_by_state(), p.engine.firing_by_rule(), p.engine.fired,
                             p.engine.resolved, HostConfig().rules, 0)
    sample = re.compile(r'^[a-z_]+(\{[a-z_]+="[^"\\\n]*"(,[a-z_]+="[^"\\\n]*")*\})? -?[0-9.e+]+$')
    families = set()
    for line in text.splitlines():
        if line.startswith("# TYPE "):
            families.add(line.split()[2])
        elif not line.startswith("# HELP "):
            assert sample.match(line), line
    assert {"hsc_host_messages_in_total", "hsc_host_messages_rejected_total", "hsc_host_desks",
            "hsc_host_alerts_firing", "hsc_host_ingest_latency_seconds"} <= families
    buckets = [int(m.group(1)) for m in re.finditer(r'_bucket\{le="[^"]+"\} (\d+)', text)]
    assert buckets == sorted(buckets) and buckets[-1] == 6  # cumulative, +Inf = count
    assert "hsc_host_ingest_latency_seconds_count 6" in text
    store.close()
