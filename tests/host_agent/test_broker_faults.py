"""The host against a real broker's faults and access control: restarts (with and without
persistence: retained alerts come back), outages, passwords, TLS."""

from __future__ import annotations

import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest

from host_agent.clock import ManualClock
from host_agent.errors import HostError
from host_agent.service import HostService
from mqtt_schema import Alert, AlertTopic, DeskStatus, EventKind, alert_filter, decode
from tests.conftest import Mosquitto, make_test_ca
from tests.host_agent.conftest import host_config, settle
from tests.host_agent.helpers import Desk, Subscriber, publisher, send
from tests.waiting import wait_for

MakeHost = Callable[..., HostService]


def test_host_reconnects_after_a_broker_restart(mosquitto: Mosquitto, make_host: MakeHost, clock: ManualClock) -> None:
    host = make_host(mosquitto.url)
    d = Desk("site1", "d01", clock=clock.now_ms)
    pub = publisher(mosquitto.port)
    send(pub, d, d.state())
    settle(host, 1)
    pub.disconnect()
    mosquitto.restart()
    assert host.link is not None
    wait_for(lambda: host.link is not None and host.link.connected.is_set(), 20, "the host to reconnect")
    pub = publisher(mosquitto.port, client_id="desks-2")
    wait_for(lambda: pub.is_connected(), 5, "publisher connected")
    send(pub, d, d.event(EventKind.DOFFED))
    settle(host, 2, deadline_s=15)
    assert host.summary().accepted == {"state": 1, "event": 1}


def test_events_published_while_the_host_is_down_arrive_when_it_is_back(
        mosquitto: Mosquitto, make_host: MakeHost, clock: ManualClock) -> None:
    host = make_host(mosquitto.url)
    host.stop()  # its persistent session stays on the broker
    pub = publisher(mosquitto.port)
    d = Desk("site1", "d01", clock=clock.now_ms)
    for kind in (EventKind.DOFFED, EventKind.WORN, EventKind.CALIBRATION):
        send(pub, d, d.event(kind))
    host2 = make_host(mosquitto.url)
    settle(host2, 3)
    assert host2.summary().accepted == {"event": 3}


def test_password_protected_broker(mosquitto_factory: Callable[[str], Mosquitto], make_host: MakeHost,
                                   tmp_path: Path) -> None:
    pw = tmp_path / "passwd"
    pw.touch()
    subprocess.run(["mosquitto_passwd", "-b", str(pw), "host", "s3cret-pass"], check=True)
    # "user root": as root, mosquitto drops to user mosquitto, who cannot read pytest's 0700 tmp folders.
    broker = mosquitto_factory(f"user root\npassword_file {pw}\nallow_anonymous false\n")
    host = make_host(broker.url, broker={"username": "host", "password": "s3cret-pass"})
    assert host.link is not None and host.link.connected.is_set()
    cfg = host_config(broker.url, tmp_path / "other.db", broker={"username": "host", "password": "wrong"})
    with pytest.raises(HostError, match="could not connect.*(Not authorized|Bad user name or password)"):
        HostService(cfg, ManualClock(), client_id="intruder", connect_timeout_s=3).start()


def _certs(d: Path) -> tuple[Path, Path, Path]:
    pki = make_test_ca(d)
    return pki.ca_cert, pki.server_cert, pki.server_key


def test_tls_broker(mosquitto_factory: Callable[[str], Mosquitto], make_host: MakeHost, tmp_path: Path,
                    clock: ManualClock) -> None:
    from tests.ports import free_port

    ca, cert, key = _certs(tmp_path)
    tls_port = free_port()
    broker = mosquitto_factory(f"user root\nlistener {tls_port} 127.0.0.1\ncafile {ca}\ncertfile {cert}\nkeyfile {key}\n"
                               "allow_anonymous true\n")
    host = make_host(f"mqtts://127.0.0.1:{tls_port}", broker={"ca_cert": str(ca)})
    d = Desk("site1", "d01", clock=clock.now_ms)
    pub = publisher(broker.port)  # the desk uses the plain listener of the same broker
    send(pub, d, d.state())
    settle(host, 1)
    assert host.summary().accepted == {"state": 1}
    (tmp_path / "other").mkdir()
    other_ca, _, _ = _certs(tmp_path / "other")  # a CA that did not sign the broker's certificate
    cfg = host_config(f"mqtts://127.0.0.1:{tls_port}", tmp_path / "o.db", broker={"ca_cert": str(other_ca)})
    with pytest.raises(HostError, match="could not connect"):
        HostService(cfg, clock, client_id="wrong-ca", connect_timeout_s=3).start()


@pytest.mark.parametrize("persistence", [False, True])
def test_firing_alerts_are_retained_again_after_a_broker_restart(
        persistence: bool, mosquitto_factory: Callable[[str], Mosquitto], make_host: MakeHost,
        clock: ManualClock) -> None:
    # A later "persistence false" line overrides the fixture's "persistence true": the restarted
    # broker has forgotten every retained message and session.
    broker = mosquitto_factory("" if persistence else "persistence false\n")
    host = make_host(broker.url)
    pub = publisher(broker.port)
    lost, back = Desk("site1", "d01", clock=clock.now_ms), Desk("site1", "d02", clock=clock.now_ms)
    for d in (lost, back):
        send(pub, d, d.state())
        send(pub, d, d.state(DeskStatus.LOST))
    settle(host, 4)
    clock.advance(31)
    host.sync()
    send(pub, back, back.state())  # d02 is back: its desk-offline resolves and is cleared
    settle(host, 5)
    firing = str(AlertTopic("site1", "d01", "desk-offline"))
    resolved = str(AlertTopic("site1", "d02", "desk-offline"))
    before = Subscriber(broker.port, alert_filter("site1"))
    wait_for(lambda: before.on(firing), 5, "the retained desk-offline alert")
    before.close()
    pub.disconnect()
    pub.loop_stop()

    broker.restart()
    assert host.link is not None
    wait_for(lambda: host.link is not None and host.link.connects >= 2, 20, "the host to reconnect")
    first = Subscriber(broker.port, alert_filter("site1"))
    wait_for(lambda: first.on(firing), 10, "the desk-offline alert on alert/# again")
    first.close()
    late = Subscriber(broker.port, alert_filter("site1"))  # a dashboard or pager that starts now
    wait_for(lambda: late.on(firing), 5, "the desk-offline alert retained for a late subscriber")
    late.close()
    topic_msgs = [(p, r) for t, p, r in late.messages if t == firing]
    assert topic_msgs[0][1], "delivered as a retained message"
    alert = decode(topic_msgs[-1][0], Alert)
    assert alert.desk == "d01" and alert.severity.value == "critical"
    # nothing cleared wrongly, nothing stale brought back
    assert all(p for t, p, _ in first.messages + late.messages if t == firing)
    assert not [p for t, p, _ in late.messages if t == resolved and p]
    _, snap = host.snapshot()
    assert [(a["desk"], a["rule"], a["state"]) for a in snap["alerts"]] == [("d01", "desk-offline", "firing")]
