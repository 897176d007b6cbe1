"""``[mqtt] urls`` (a clustered broker): the config checks, and the publisher's failover order against real
mosquittos (one stopped for real; the desk must move to the next url and its spool must follow)."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from device.config.agent import load_config
from device.config.mqtt_settings import MqttSettings
from device.errors import ConfigError
from device.outputs.publisher import DeskPublisher
from device.outputs.spool import Spool
from mqtt_schema import EventKind, Versions
from mqtt_schema.broker import BrokerRotation
from tests.conftest import Mosquitto
from tests.ports import free_port
from tests.waiting import wait_for

pytestmark = pytest.mark.needs("mosquitto")


def _toml(tmp_path: Path, mqtt: str) -> Path:
    p = tmp_path / "agent.toml"
    p.write_text(f'[desk]\nsite = "s1"\ndesk = "d1"\n[mqtt]\n{mqtt}\n', encoding="utf-8")
    return p


@pytest.mark.parametrize(("mqtt", "message"), [
    ("urls = []", "mqtt.urls: must be a non-empty list"),
    ('urls = "mqtt://a:1883"', "mqtt.urls: must be a non-empty list"),
    ('urls = ["http://a:1883"]', "mqtt.urls[0]: 'http://a:1883' must start with mqtt:// or mqtts://"),
    ('urls = ["mqtt://a:1883", "mqtts://b:8883"]', "mqtt.urls: mixes mqtt:// and mqtts://"),
    ('urls = ["mqtt://a", "mqtt://a:1883"]', "mqtt.urls[1]: 'mqtt://a:1883' is the same broker as mqtt.urls[0]"),
    ('url = "mqtt://c:1883"\nurls = ["mqtt://a:1883"]', "mqtt.url: 'mqtt://c:1883' is not one of mqtt.urls"),
    ("urls = [1883]", "mqtt.urls[0]: must be a string"),
])
def test_bad_urls_name_the_field_and_the_line(tmp_path: Path, mqtt: str, message: str) -> None:
    with pytest.raises(ConfigError) as err:
        load_config(_toml(tmp_path, mqtt))
    assert message in str(err.value)
    assert " line " in str(err.value)  # located in the file


def test_urls_set_the_order_and_the_first_is_the_url(tmp_path: Path) -> None:
    cfg = load_config(_toml(tmp_path, 'urls = ["mqtt://n2:1883", "mqtt://n1"]\nurl = "mqtt://n1"'))
    assert cfg.mqtt.broker_urls == ("mqtt://n2:1883", "mqtt://n1")
    assert cfg.mqtt.url == "mqtt://n2:1883" and (cfg.mqtt.host, cfg.mqtt.port) == ("n2", 1883)
    assert load_config(_toml(tmp_path, 'url = "mqtt://one:1884"')).mqtt.broker_urls == ("mqtt://one:1884",)
    # --broker names one broker: it replaces the file's list
    flagged = load_config(_toml(tmp_path, 'urls = ["mqtt://n1", "mqtt://n2"]'), {"mqtt.url": "mqtt://other:1"})
    assert flagged.mqtt.broker_urls == ("mqtt://other:1",)


def test_rotation_goes_round_the_list() -> None:
    r = BrokerRotation(("a", "b", "c"))
    assert [r.next_attempt() for _ in range(5)] == [("a", False), ("b", True), ("c", True), ("a", True), ("b", True)]
    one = BrokerRotation(("a",))
    assert [one.next_attempt() for _ in range(3)] == [("a", False)] * 3


def _publisher(tmp_path: Path, urls: tuple[str, ...]) -> DeskPublisher:
    return DeskPublisher(site="s1", desk="d1", settings=MqttSettings(urls=urls, keepalive_s=5),
                         spool=Spool(tmp_path / "spool.db"), boot=1, now_ms=lambda: int(time.time() * 1000),
                         versions=Versions(agent="1.0.0", schema="1.0"), capabilities=[], reconnect_max_s=2)


def test_a_dead_first_broker_is_skipped_and_a_lost_one_is_left_for_the_next(
        tmp_path: Path, mosquitto_factory: Callable[[str], Mosquitto], caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="device.publisher")
    dead = f"mqtt://127.0.0.1:{free_port()}"  # nothing listens there
    b1, b2 = mosquitto_factory(""), mosquitto_factory("")
    pub = _publisher(tmp_path, (dead, b1.url, b2.url))
    pub.start()
    try:
        wait_for(lambda: pub.connected, 15, "a connection")
        assert pub.current_url == b1.url
        assert any("cannot reach the MQTT broker" in r.getMessage() and dead in r.getMessage()
                   and f"trying {b1.url} next" in r.getMessage() for r in caplog.records)
        b1.stop()  # for real: the desk must move on to b2 (not wait for b1)
        wait_for(lambda: pub.connected and pub.current_url == b2.url, 15, "the failover to the third broker")
        pub.event(EventKind.WORN)
        assert pub.flush(10), "the spooled event was not acknowledged by the new broker"
        assert any(r.getMessage() == f"connected to {b2.url}" or b2.url in r.getMessage() and "connected" in
                   r.getMessage() for r in caplog.records)
    finally:
        pub.stop()
