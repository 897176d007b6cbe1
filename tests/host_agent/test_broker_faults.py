"""The host against a real broker's faults and access control: restarts, outages, passwords, TLS."""

from __future__ import annotations

import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest

from host_agent.clock import ManualClock
from host_agent.errors import HostError
from host_agent.service import HostService
from mqtt_schema import EventKind
from tests.conftest import Mosquitto, make_test_ca
from tests.host_agent.conftest import host_config, settle
from tests.host_agent.helpers import Desk, publisher, send, wait_until

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
    wait_until(lambda: host.link is not None and host.link.connected.is_set(), 20, "the host to reconnect")
    pub = publisher(mosquitto.port, client_id="desks-2")
    wait_until(lambda: pub.is_connected(), 5, "publisher connected")
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
    from tests.conftest import free_port

    ca, cert, key = _certs(tmp_path)
    tls_port = free_port()
    broker = mosquitto_factory(f"user root\nlistener {tls_port} 127.0.0.1\ncafile {ca}\ncertfile {cert}\nkeyfile {key}\n"
                               "allow_anonymous true\n")
    host = make_host(f"mqtts://127.0.0.1:{tls_port}", broker={"tls_ca": str(ca)})
    d = Desk("site1", "d01", clock=clock.now_ms)
    pub = publisher(broker.port)  # the desk uses the plain listener of the same broker
    send(pub, d, d.state())
    settle(host, 1)
    assert host.summary().accepted == {"state": 1}
    (tmp_path / "other").mkdir()
    other_ca, _, _ = _certs(tmp_path / "other")  # a CA that did not sign the broker's certificate
    cfg = host_config(f"mqtts://127.0.0.1:{tls_port}", tmp_path / "o.db", broker={"tls_ca": str(other_ca)})
    with pytest.raises(HostError, match="could not connect"):
        HostService(cfg, clock, client_id="wrong-ca", connect_timeout_s=3).start()
