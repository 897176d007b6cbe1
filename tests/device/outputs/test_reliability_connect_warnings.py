"""Issue 13, desk agent: why the broker cannot be reached is logged (not authorised, TLS), rate-limited.
Real mosquitto brokers (a password file, a TLS listener) and the real DeskPublisher; the rate limit on
an injected clock."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from device.config.mqtt_settings import MqttSettings
from device.outputs.publisher import ConnectWarnings, DeskPublisher
from device.outputs.spool import Spool
from mqtt_schema import EventKind, Versions
from tests.conftest import Mosquitto
from tests.waiting import wait_for

SITE, DESK = "s1", "d1"


class Warnings(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.fields: list[dict[str, Any]] = []

    def emit(self, record: logging.LogRecord) -> None:
        if record.getMessage().startswith("cannot reach the MQTT broker"):
            self.fields.append(dict(getattr(record, "fields", {})))


@pytest.fixture
def warned() -> Iterator[Warnings]:
    handler = Warnings()
    logger = logging.getLogger("device.publisher")
    logger.addHandler(handler)
    yield handler
    logger.removeHandler(handler)


def publisher(settings: MqttSettings, spool: Path, client_id: str) -> DeskPublisher:
    return DeskPublisher(site=SITE, desk=DESK, settings=settings, spool=Spool(spool), boot=1,
                         now_ms=lambda: int(time.time() * 1000), versions=Versions(agent="0.1.0", schema="1.0"),
                         capabilities=[], client_id=client_id, reconnect_max_s=1)


def test_the_warning_comes_first_then_after_1_2_4_s_at_most_once_a_minute_and_a_new_cause_at_once() -> None:
    now = [100.0]
    w = ConnectWarnings(monotonic=lambda: now[0])
    logged: list[tuple[float, int]] = []
    while now[0] < 100.0 + 600:  # ten minutes of attempts every 0.5 s
        covered = w.failed("connection refused")
        if covered is not None:
            logged.append((now[0] - 100.0, covered))
        now[0] += 0.5
    times = [t for t, _ in logged]
    assert times[:6] == [0.0, 1.0, 3.0, 7.0, 15.0, 31.0]
    gaps = [b - a for a, b in zip(times, times[1:], strict=False)]
    assert max(gaps) == 60.0 and gaps[-1] == 60.0
    assert sum(c for _, c in logged) <= w.failures == 1200  # every attempt counted once, none twice
    assert w.failed("DNS lookup of 'x' failed") is not None  # a new cause: at once
    assert w.failed("DNS lookup of 'x' failed") is None
    attempts, outage_s = w.connected() or (0, 0.0)
    assert attempts == 1202 and outage_s == pytest.approx(600.0)
    assert w.connected() is None and w.failed("connection refused") == 1  # reset: the next outage warns at once


def test_not_authorised_is_named(mosquitto_factory: Callable[[str], Mosquitto], tmp_path: Path,
                                 warned: Warnings) -> None:
    from hw.flashing.provision import mosquitto_hash

    pw = tmp_path / "passwd"
    pw.write_text(f"desk.s1.d1:{mosquitto_hash('right-pass')}\n")
    broker = mosquitto_factory(f"allow_anonymous false\npassword_file {pw}\n")
    pub = publisher(MqttSettings(url=broker.url, username="desk.s1.d1", password="wrong-pass"),
                    tmp_path / "spool.db", "wrong")
    pub.start()
    try:
        pub.event(EventKind.WORN)
        first = wait_for(lambda: warned.fields, 10, "the warning")[0]
    finally:
        pub.stop(timeout_s=0.5)
    assert first["broker"] == broker.url
    assert "not authorised" in first["error"] and "mqtt.username" in first["error"], first
    assert len(pub.spool) == 1  # kept for when the credentials are fixed


def test_a_tls_failure_is_named(mosquitto_factory: Callable[[str], Mosquitto], tmp_path: Path,
                                warned: Warnings) -> None:
    from tests.conftest import make_test_ca, wait_for_port
    from tests.ports import free_port

    site = make_test_ca(tmp_path / "site", "site ca")
    other = make_test_ca(tmp_path / "other", "some other ca")
    tls_port = free_port()
    mosquitto_factory(f"listener {tls_port} 127.0.0.1\ncafile {site.ca_cert}\ncertfile {site.server_cert}\n"
                      f"keyfile {site.server_key}\nallow_anonymous true\n")
    wait_for_port(tls_port)
    url = f"mqtts://127.0.0.1:{tls_port}"
    pub = publisher(MqttSettings(url=url, ca_cert=other.ca_cert), tmp_path / "spool.db", "untrusting")
    pub.start()
    try:
        first = wait_for(lambda: warned.fields, 10, "the warning")[0]
        t_stop = time.monotonic()
    finally:
        pub.stop(timeout_s=5.0)
    assert time.monotonic() - t_stop < 1.0  # not connected: the stop does not wait for the timeout
    assert first["broker"] == url and first["error"].startswith("TLS failure"), first
    assert "certificate" in first["error"]
