"""``[broker] urls`` (a clustered broker): the config checks, and the link's failover order against real
mosquittos: a dead first url is skipped, a lost broker is left for the next, the link subscribes again
there, and a reconnect without the host's session is counted and logged."""

from __future__ import annotations

import logging
import queue
from collections.abc import Callable
from pathlib import Path

import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.enums import CallbackAPIVersion

from host_agent.config import BrokerConfig, load_config, parse_config
from host_agent.errors import ConfigError
from host_agent.mqtt_link import Inbound, MqttLink
from mqtt_schema.broker import BrokerRotation
from tests.conftest import Mosquitto
from tests.ports import free_port
from tests.waiting import wait_for

pytestmark = pytest.mark.needs("mosquitto")


@pytest.mark.parametrize(("broker", "message"), [
    ("urls = []", "broker.urls must be a non-empty list"),
    ('urls = ["tcp://a:1883"]', "broker.urls[0] 'tcp://a:1883' must look like mqtt://host:port"),
    ('urls = ["mqtt://a:1883", "mqtts://b:8883"]', "broker.urls mixes mqtt:// and mqtts://"),
    ('urls = ["mqtt://a", "mqtt://a:1883"]', "broker.urls[1] 'mqtt://a:1883' is the same broker as broker.urls[0]"),
    ('url = "mqtt://c:1883"\nurls = ["mqtt://a:1883"]', "broker.url 'mqtt://c:1883' is not one of broker.urls"),
    ('urls = ["mqtt://a:99999"]', "broker.urls[0] 'mqtt://a:99999' has an invalid port"),
])
def test_bad_urls_name_the_field_and_the_line(tmp_path: Path, broker: str, message: str) -> None:
    p = tmp_path / "host.toml"
    p.write_text(f"[broker]\n{broker}\n[host]\nsites = [\"s1\"]\n", encoding="utf-8")
    with pytest.raises(ConfigError) as err:
        load_config(p)
    assert message in str(err.value)
    assert f"{p}:2:" in str(err.value) or f"{p}:3:" in str(err.value), str(err.value)


def test_urls_set_the_order() -> None:
    cfg = parse_config({"broker": {"urls": ["mqtt://n2:1884", "mqtt://n1"]}}).broker
    assert cfg.broker_urls == ("mqtt://n2:1884", "mqtt://n1") and (cfg.host, cfg.port) == ("n2", 1884)
    assert parse_config({"broker": {"url": "mqtt://one"}}).broker.broker_urls == ("mqtt://one",)
    assert cfg.starting_at("mqtt://n1").broker_urls == ("mqtt://n1", "mqtt://n2:1884")
    assert cfg.starting_at("mqtt://elsewhere") is cfg
    r = BrokerRotation(cfg.broker_urls)
    assert [r.next_attempt()[0] for _ in range(3)] == ["mqtt://n2:1884", "mqtt://n1", "mqtt://n2:1884"]


def _send(url: str, topic: str, payload: bytes) -> None:
    c = mqtt.Client(CallbackAPIVersion.VERSION2, protocol=mqtt.MQTTv311)
    c.connect(*BrokerConfig.endpoint(url))
    c.loop_start()
    try:
        c.publish(topic, payload, qos=1).wait_for_publish(5)
    finally:
        c.disconnect()
        c.loop_stop()


def test_the_link_fails_over_subscribes_again_and_counts_a_lost_session(
        mosquitto_factory: Callable[[str], Mosquitto], caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="host_agent.mqtt")
    dead = f"mqtt://127.0.0.1:{free_port()}"
    b1, b2 = mosquitto_factory(""), mosquitto_factory("")
    inbox: queue.SimpleQueue[Inbound] = queue.SimpleQueue()
    link = MqttLink(BrokerConfig(urls=(dead, b1.url, b2.url), keepalive_s=5), ("s1",), inbox, "host-under-test")
    link.start(timeout_s=20)
    try:
        assert link.current_url == b1.url
        assert any(dead in r.getMessage() and f"trying {b1.url} next" in r.getMessage() for r in caplog.records)
        b1.stop()
        # connects counts first, then the warning is logged (paho's thread): wait for both, not the count alone
        wait_for(lambda: link.connects == 2 and any("has no session for this host" in r.getMessage()
                                                 for r in caplog.records), 20, "the failover to the third broker")
        assert link.current_url == b2.url
        assert link.sessions_lost == 1  # b2 never saw this host: a mosquitto per node shares no session
        wait_for(lambda: not link._pending_subs, 10, "the SUBACK on the new broker")
        _send(b2.url, "hsc/v1/s1/d1/event", b"x")
        got = inbox.get(timeout=10)
        assert got.topic == "hsc/v1/s1/d1/event" and got.qos == 1
        assert link.ack([got]) == 1
    finally:
        link.stop()
