"""Site security, proven on a real mosquitto configured from `headset-flash provision-desk` and
`provision-host` output, with real paho clients:

- desk A writes its own state/metrics/event/minute and reads its own config, and nothing else: not
  desk B's topics, not alerts, not configs, not B's config (not even through ``#``);
- the host reads its sites' desks and writes alerts, the alert log and desk configs, and nothing of
  another site; a desk cannot do the host's writes;
- the example site broker config (hw/site/mosquitto.conf) runs as written: TLS with client
  certificates as identities, the ACL file, persistence.

A denied publish is dropped silently under MQTT 3.1.1 (checked by a witness that never receives it:
a marker published after it by the same client arrives, and MQTT keeps one client's order), and
answered with reason code 135 "Not authorized" under MQTT 5.
"""

from __future__ import annotations

import functools
import os
import ssl
import subprocess
import threading
import time
import tomllib
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.enums import CallbackAPIVersion
from paho.mqtt.reasoncodes import ReasonCode

from host_agent.mqtt_link import subscriptions
from hw import cli
from hw.flashing.provision import Provisioned, mosquitto_hash, provision_desk, provision_host
from hw.flashing.tls import issue_client_cert
from mqtt_schema import MAX_PAYLOAD_BYTES
from mqtt_schema.topics import AlertLogTopic, AlertTopic, DeskKind, DeskTopic
from tests import real_parts
from tests.conftest import MOSQUITTO, Mosquitto, make_test_ca, wait_for_port
from tests.ports import free_port

pytestmark = pytest.mark.needs("mosquitto")

SITE_CONF = Path(__file__).resolve().parents[2] / "hw" / "site" / "mosquitto.conf"
NOT_AUTHORIZED = 135  # MQTT 5 reason code 0x87
OK = (0, 16)  # PUBACK: success, or MQTT 5's "no matching subscribers" (accepted all the same)
PROTOCOLS = {"3.1.1": mqtt.MQTTv311, "5": mqtt.MQTTv5}
WITNESS, WITNESS_PW = "witness", "witness-secret"  # a test-only user that reads everything
DESK_PUBLISHES = (DeskKind.STATE, DeskKind.METRICS, DeskKind.EVENT, DeskKind.MINUTE)


def desk_topic(desk: str, kind: DeskKind, site: str = "site1") -> str:
    return str(DeskTopic(site, desk, kind))


def wait_until(pred: Callable[[], bool], deadline_s: float = 5.0) -> bool:
    end = time.monotonic() + deadline_s
    while time.monotonic() < end:
        if pred():
            return True
        time.sleep(0.02)
    return pred()


@dataclass(frozen=True)
class Tls:
    ca: Path
    cert: Path | None = None
    key: Path | None = None


class Peer:
    """A paho client that records what it receives and the broker's answer to each QoS 1 publish."""

    def __init__(self, port: int, name: str, *, user: str | None = None, password: str | None = None,
                 protocol: str = "3.1.1", tls: Tls | None = None) -> None:
        self.port, self.name = port, name
        self.got: list[tuple[str, bytes]] = []
        self.acks: dict[int, int] = {}
        self.granted: list[int] = []
        self.connack: int | None = None
        self._lock = threading.Lock()
        self._subscribed = threading.Event()
        self._closed = threading.Event()
        self.c = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=f"{name}-{time.monotonic_ns()}",
                             protocol=PROTOCOLS[protocol])
        if user is not None:
            self.c.username_pw_set(user, password)
        if tls is not None:
            self.c.tls_set(ca_certs=str(tls.ca), certfile=str(tls.cert) if tls.cert else None,
                           keyfile=str(tls.key) if tls.key else None)
        self.c.on_connect = self._on_connect
        self.c.on_message = self._on_message
        self.c.on_publish = self._on_publish
        self.c.on_subscribe = self._on_subscribe
        self.c.on_disconnect = self._on_disconnect

    def _on_connect(self, c: mqtt.Client, u: Any, flags: Any, rc: ReasonCode, props: Any = None) -> None:
        self.connack = rc.value

    def _on_message(self, c: mqtt.Client, u: Any, m: mqtt.MQTTMessage) -> None:
        with self._lock:
            self.got.append((m.topic, bytes(m.payload)))

    def _on_publish(self, c: mqtt.Client, u: Any, mid: int, rc: ReasonCode, props: Any = None) -> None:
        self.acks[mid] = rc.value

    def _on_subscribe(self, c: mqtt.Client, u: Any, mid: int, rcs: list[ReasonCode], props: Any = None) -> None:
        self.granted = [r.value for r in rcs]
        self._subscribed.set()

    def _on_disconnect(self, c: mqtt.Client, u: Any, flags: Any, rc: ReasonCode, props: Any = None) -> None:
        self._closed.set()

    def connect(self, deadline_s: float = 5.0) -> bool:
        """True once the broker accepted the connection; False when it refused it (CONNACK failure,
        TLS handshake failure, connection closed before any CONNACK)."""
        try:
            self.c.connect("127.0.0.1", self.port, keepalive=30)
        except (ssl.SSLError, OSError):
            return False
        self.c.loop_start()
        wait_until(lambda: self.connack is not None or self._closed.is_set(), deadline_s)
        return self.connack == 0

    def sub(self, *filters: str) -> list[int]:
        """Subscribe (QoS 1) and return the broker's granted QoS / reason codes."""
        self._subscribed.clear()
        self.c.subscribe([(f, 1) for f in filters])
        assert self._subscribed.wait(5), f"{self.name}: no SUBACK"
        return self.granted

    def pub(self, topic: str, payload: bytes, retain: bool = False) -> int:
        """Publish at QoS 1 and return the broker's PUBACK reason code (always 0 under MQTT 3.1.1)."""
        info = self.c.publish(topic, payload, qos=1, retain=retain)
        info.wait_for_publish(5)
        assert wait_until(lambda: info.mid in self.acks), f"{self.name}: no PUBACK for {topic}"
        return self.acks[info.mid]

    def disconnected(self, deadline_s: float) -> bool:
        """True once the broker has closed the connection (within ``deadline_s``)."""
        return self._closed.wait(deadline_s)

    def received(self) -> list[tuple[str, bytes]]:
        with self._lock:
            return list(self.got)

    def stop(self) -> None:
        self.c.disconnect()
        self.c.loop_stop()


def contains(peer: Peer, message: tuple[str, bytes]) -> bool:
    return message in peer.received()


@dataclass
class Site:
    """A broker with the password file and ACL file made by concatenating provisioning output."""

    broker: Mosquitto
    desks: dict[str, Provisioned]
    host: Provisioned
    other_host: Provisioned
    peers: list[Peer]

    def peer(self, who: Provisioned | str, protocol: str = "3.1.1") -> Peer:
        user, password = (who.username, who.password) if isinstance(who, Provisioned) else (WITNESS, WITNESS_PW)
        p = Peer(self.broker.port, user, user=user, password=password, protocol=protocol)
        assert p.connect(), f"{user} was refused (CONNACK {p.connack})"
        self.peers.append(p)
        return p


@pytest.fixture
def site(tmp_path: Path, mosquitto_factory: Callable[[str], Mosquitto]) -> Iterator[Site]:
    desks = {
        "a": provision_desk("site1", "d01", tmp_path / "d01"),
        "b": provision_desk("site1", "d02", tmp_path / "d02"),
        "c": provision_desk("site2", "d01", tmp_path / "site2-d01"),
    }
    host = provision_host("floor", ["site1"], tmp_path / "host")
    other_host = provision_host("floor2", ["site2"], tmp_path / "host2")
    folders = [p.folder for p in (*desks.values(), host, other_host)]
    passwd = "".join((f / "mosquitto.passwd").read_text() for f in folders)
    acl = "".join((f / "mosquitto.acl").read_text() for f in folders)
    (tmp_path / "passwd").write_text(passwd + f"{WITNESS}:{mosquitto_hash(WITNESS_PW)}\n")
    (tmp_path / "acl").write_text(acl + f"user {WITNESS}\ntopic read #\n")
    broker = mosquitto_factory(f"password_file {tmp_path / 'passwd'}\nacl_file {tmp_path / 'acl'}\n")
    s = Site(broker, desks, host, other_host, [])
    try:
        yield s
    finally:
        for p in s.peers:
            p.stop()


def assert_never_delivered(witness: Peer, sender: Peer, denied: list[tuple[str, bytes]], marker_topic: str) -> None:
    """Publish a marker after the denied messages; once it arrives, none of them may have."""
    marker = (marker_topic, f"marker-{time.monotonic_ns()}".encode())
    assert sender.pub(*marker) in OK
    assert wait_until(lambda: marker in witness.received()), f"the witness never got {sender.name}'s marker"
    leaked = [m for m in denied if m in witness.received()]
    assert not leaked, f"{sender.name} published where its ACL forbids: {leaked}"


@pytest.mark.parametrize("protocol", ["3.1.1", "5"])
def test_a_desk_writes_its_own_topics_and_reads_its_own_config(site: Site, protocol: str) -> None:
    witness = site.peer(WITNESS)
    witness.sub("#")
    host = site.peer(site.host)
    desk = site.peer(site.desks["a"], protocol)
    own_config = desk_topic("d01", DeskKind.CONFIG)
    assert host.pub(own_config, b"cfg-1", retain=True) in OK
    assert desk.sub(own_config) == [1]  # granted QoS 1
    assert wait_until(lambda: (own_config, b"cfg-1") in desk.received()), "the retained config"
    assert host.pub(own_config, b"cfg-2", retain=True) in OK
    assert wait_until(lambda: (own_config, b"cfg-2") in desk.received()), "a live config"
    for kind in DESK_PUBLISHES:
        msg = (desk_topic("d01", kind), f"{kind}-{protocol}".encode())
        assert desk.pub(*msg, retain=kind is DeskKind.STATE) in OK, f"{kind} refused"
        assert wait_until(functools.partial(contains, witness, msg)), f"{kind} never arrived"


@pytest.mark.parametrize("protocol", ["3.1.1", "5"])
def test_a_desk_cannot_write_another_desks_topics_alerts_or_configs(site: Site, protocol: str) -> None:
    witness = site.peer(WITNESS)
    witness.sub("#")
    desk = site.peer(site.desks["a"], protocol)
    denied = [(desk_topic("d02", k), b"forged") for k in DeskKind]  # every kind of desk B, config too
    denied += [(desk_topic("d01", k, "site2"), b"forged") for k in DeskKind]  # the same desk id on another site
    denied += [
        (desk_topic("d01", DeskKind.CONFIG), b"self-config"),  # configs come from the host or facilities
        (str(AlertTopic("site1", "d02", "volume")), b"fake alert"),
        (str(AlertTopic("site1", "d01", "posture")), b""),  # clearing its own alert
        (str(AlertLogTopic("site1")), b"fake transition"),
        ("hsc/v1/site1/d01/other", b"outside the contract"),
        ("hsc/v1/site1/d01", b"too short"),
        ("elsewhere", b"outside the tree"),
    ]
    codes = {topic: desk.pub(topic, payload) for topic, payload in denied}
    if protocol == "5":
        assert codes == {t: NOT_AUTHORIZED for t in codes}, codes
    else:
        assert set(codes.values()) == {0}  # 3.1.1 has no way to say no: the broker drops it silently
    assert_never_delivered(witness, desk, denied, desk_topic("d01", DeskKind.EVENT))


@pytest.mark.parametrize("protocol", ["3.1.1", "5"])
def test_a_desk_cannot_read_another_desks_config_or_topics(site: Site, protocol: str) -> None:
    host = site.peer(site.host)
    b_config, a_config = desk_topic("d02", DeskKind.CONFIG), desk_topic("d01", DeskKind.CONFIG)
    assert host.pub(b_config, b"b-secret-retained", retain=True) in OK
    desk_b = site.peer(site.desks["b"])
    assert desk_b.pub(desk_topic("d02", DeskKind.STATE), b"b-state", retain=True) in OK
    desk = site.peer(site.desks["a"], protocol)
    # B's config by name, then every topic by wildcard; retained messages come with each SUBACK
    desk.sub(b_config)
    desk.sub("hsc/v1/site1/+/config", "hsc/#", "#")
    assert host.pub(a_config, b"a-retained", retain=True) in OK
    assert wait_until(lambda: (a_config, b"a-retained") in desk.received())
    # live messages: B's config, B's own publications, alerts; then a marker to the desk's own config
    assert host.pub(b_config, b"b-secret-live", retain=True) in OK
    assert host.pub(str(AlertTopic("site1", "d02", "volume")), b"alert", retain=True) in OK
    for kind in DESK_PUBLISHES:
        assert desk_b.pub(desk_topic("d02", kind), b"b-live") in OK
    assert desk_b.pub(desk_topic("d02", DeskKind.EVENT), b"b-done") in OK
    assert host.pub(a_config, b"a-marker", retain=True) in OK
    assert wait_until(lambda: (a_config, b"a-marker") in desk.received())
    foreign = [(t, p) for t, p in desk.received() if t != a_config]
    assert not foreign, f"desk d01 read what is not its own: {foreign}"


@pytest.mark.parametrize("protocol", ["3.1.1", "5"])
def test_the_host_reads_its_sites_and_writes_alerts_and_configs(site: Site, protocol: str) -> None:
    witness = site.peer(WITNESS)
    witness.sub("#")
    host = site.peer(site.host, protocol)
    # the filters the real host subscribes to (ordinary, and shared under MQTT 5)
    filters = [f for f, _ in subscriptions(("site1",), "hosts" if protocol == "5" else None)]
    assert host.sub(*filters) == [1] * len(filters)
    assert host.sub("hsc/v1/site1/alert/#") == [1]  # the host reads its retained alerts back
    desk_a, desk_c = site.peer(site.desks["a"]), site.peer(site.desks["c"])
    sent = [(desk_topic("d01", k), f"a-{k}".encode()) for k in DESK_PUBLISHES]
    for m in sent:
        desk_a.pub(*m)
    for k in DESK_PUBLISHES:  # site2 is not the host's
        desk_c.pub(desk_topic("d01", k, "site2"), b"site2")
    desk_c.pub(desk_topic("d01", DeskKind.EVENT, "site2"), b"site2-done")
    assert wait_until(lambda: (desk_topic("d01", DeskKind.EVENT, "site2"), b"site2-done") in witness.received())
    assert wait_until(lambda: all(m in host.received() for m in sent)), host.received()
    assert not [t for t, _ in host.received() if "/site2/" in t], "the host read another site"

    allowed = [
        (str(AlertTopic("site1", "d01", "volume")), b"firing", True),
        (str(AlertLogTopic("site1")), b"transition", False),
        (desk_topic("d01", DeskKind.CONFIG), b"cfg", True),
        (desk_topic("d02", DeskKind.CONFIG), b"cfg", True),
    ]
    for topic, payload, retain in allowed:
        assert host.pub(topic, payload, retain) in OK, f"the host may publish to {topic}"
        assert wait_until(functools.partial(contains, witness, (topic, payload))), topic
    alert = str(AlertTopic("site1", "d01", "volume"))
    assert wait_until(lambda: (alert, b"firing") in host.received()), "the host reads its retained alert back"
    assert host.pub(alert, b"", retain=True) in OK  # resolved: cleared by an empty retained payload

    denied = [
        (desk_topic("d01", DeskKind.STATE), b"forged desk state"),  # the host never speaks for a desk
        (desk_topic("d01", DeskKind.EVENT), b"forged event"),
        (str(AlertTopic("site2", "d01", "volume")), b"other site"),
        (str(AlertLogTopic("site2")), b"other site"),
        (desk_topic("d01", DeskKind.CONFIG, "site2"), b"other site"),
    ]
    codes = [host.pub(t, p) for t, p in denied]
    assert codes == ([NOT_AUTHORIZED] * len(denied) if protocol == "5" else [0] * len(denied))
    assert_never_delivered(witness, host, denied, str(AlertLogTopic("site1")))


@pytest.mark.parametrize("protocol", ["3.1.1", "5"])
def test_a_desk_cannot_do_the_hosts_writes(site: Site, protocol: str) -> None:
    witness = site.peer(WITNESS)
    witness.sub("#")
    desk = site.peer(site.desks["a"], protocol)
    host_writes = [
        (str(AlertTopic("site1", "d01", "volume")), b"firing"),
        (str(AlertTopic("site1", "d02", "desk-offline")), b"firing"),
        (str(AlertLogTopic("site1")), b"transition"),
        (desk_topic("d01", DeskKind.CONFIG), b"cfg"),
        (desk_topic("d02", DeskKind.CONFIG), b"cfg"),
    ]
    codes = [desk.pub(t, p) for t, p in host_writes]
    assert codes == ([NOT_AUTHORIZED] * len(host_writes) if protocol == "5" else [0] * len(host_writes))
    assert_never_delivered(witness, desk, host_writes, desk_topic("d01", DeskKind.STATE))
    # nor may it subscribe its way to what the host reads (the witness shows d02 did publish)
    desk.sub("hsc/v1/site1/+/event")
    desk_b = site.peer(site.desks["b"])
    desk_b.pub(desk_topic("d02", DeskKind.EVENT), b"b")
    desk.pub(desk_topic("d01", DeskKind.EVENT), b"own")
    assert wait_until(lambda: (desk_topic("d02", DeskKind.EVENT), b"b") in witness.received())
    assert wait_until(lambda: (desk_topic("d01", DeskKind.EVENT), b"own") in witness.received())
    assert desk.received() == []


def test_a_host_of_another_site_sees_nothing_of_this_one(site: Site) -> None:
    other = site.peer(site.other_host)
    other.sub("hsc/#")
    desk_a = site.peer(site.desks["a"])
    desk_c = site.peer(site.desks["c"])
    desk_a.pub(desk_topic("d01", DeskKind.EVENT), b"site1")
    desk_c.pub(desk_topic("d01", DeskKind.EVENT, "site2"), b"site2")
    assert wait_until(lambda: (desk_topic("d01", DeskKind.EVENT, "site2"), b"site2") in other.received())
    assert all("/site2/" in t for t, _ in other.received()), other.received()


def test_a_wrong_password_is_refused(site: Site) -> None:
    p = Peer(site.broker.port, "bad", user=site.desks["a"].username, password="not-it")
    assert not p.connect()
    p.c.loop_stop()
    anonymous = Peer(site.broker.port, "anonymous")
    assert not anonymous.connect()
    anonymous.c.loop_stop()


# --- the example site broker config, run as written ------------------------------------------------

EXAMPLE_PATHS = (
    "/etc/mosquitto/certs/ca.crt",
    "/etc/mosquitto/certs/server.crt",
    "/etc/mosquitto/certs/server.key",
    "/etc/mosquitto/headset-coach.acl",
    "/var/lib/mosquitto/",
    "/var/log/mosquitto/mosquitto.log",
)


class SiteBroker:
    """mosquitto started from hw/site/mosquitto.conf, its paths and port replaced (nothing else)."""

    def __init__(self, work: Path, paths: dict[str, Path], port: int) -> None:
        text = SITE_CONF.read_text()
        for p in EXAMPLE_PATHS:
            assert p in text, f"the example no longer names {p}: update this test"
            text = text.replace(p, str(paths[p]) + ("/" if p.endswith("/") else ""))
        assert "\nlistener 8883\n" in text
        self.port = port
        text = text.replace("\nlistener 8883\n", f"\nlistener {self.port} 127.0.0.1\n", 1)
        if os.geteuid() == 0:  # as root, mosquitto would drop to a user that cannot read pytest's tmp
            text += "\nuser root\n"
        self.conf = work / "mosquitto.conf"
        self.conf.write_text(text)
        self.log = paths["/var/log/mosquitto/mosquitto.log"]
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        assert MOSQUITTO is not None
        self.proc = subprocess.Popen([MOSQUITTO, "-c", str(self.conf)], stdout=subprocess.DEVNULL,
                                     stderr=subprocess.PIPE)
        try:
            wait_for_port(self.port)
        except TimeoutError:
            self.stop()
            raise RuntimeError(f"mosquitto did not start from the example: "
                               f"{self.log.read_text()[-2000:] if self.log.exists() else '(no log)'}") from None

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.proc = None


def _tls_of(folder: Path, toml_name: str) -> tuple[str, Tls]:
    """The broker URL and TLS files that a provisioned agent.toml or host.toml names."""
    doc = tomllib.loads((folder / toml_name).read_text())
    if "mqtt" in doc:
        m = doc["mqtt"]
        return m["url"], Tls(folder / m["ca_cert"], folder / m["client_cert"], folder / m["client_key"])
    b = doc["broker"]
    return b["url"], Tls(Path(b["ca_cert"]), Path(b["client_cert"]), Path(b["client_key"]))


def test_the_example_site_config_runs_tls_with_certificates_acl_and_persistence(tmp_path: Path) -> None:
    real_parts.require("mosquitto")
    text = SITE_CONF.read_text()
    for directive in ("require_certificate true", "use_identity_as_username true", "allow_anonymous false",
                      "persistence true", "autosave_interval", "acl_file", "max_packet_size 65536"):
        assert f"\n{directive}" in text, f"the example lacks {directive}"
    ca = make_test_ca(tmp_path / "ca", "site1 ca")
    port = free_port()
    url = f"mqtts://127.0.0.1:{port}"
    for args in (["provision-desk", "--site", "site1", "--desk", "d01", "--out", str(tmp_path / "d01")],
                 ["provision-desk", "--site", "site1", "--desk", "d02", "--out", str(tmp_path / "d02")],
                 ["provision-host", "--name", "floor", "--site", "site1", "--out", str(tmp_path / "host")]):
        assert cli.main([*args, "--ca-cert", str(ca.ca_cert), "--ca-key", str(ca.ca_key), "--broker", url]) == 0
    acl = tmp_path / "site.acl"
    acl.write_text("".join((tmp_path / d / "mosquitto.acl").read_text() for d in ("d01", "d02", "host")))
    (tmp_path / "db").mkdir()
    broker = SiteBroker(tmp_path, {
        "/etc/mosquitto/certs/ca.crt": ca.ca_cert,
        "/etc/mosquitto/certs/server.crt": ca.server_cert,
        "/etc/mosquitto/certs/server.key": ca.server_key,
        "/etc/mosquitto/headset-coach.acl": acl,
        "/var/lib/mosquitto/": tmp_path / "db",
        "/var/log/mosquitto/mosquitto.log": tmp_path / "mosquitto.log",
    }, port)
    broker.start()
    peers: list[Peer] = []

    def peer(name: str, **kw: Any) -> Peer:
        p = Peer(port, name, **kw)
        peers.append(p)
        return p

    try:
        desk_url, desk_tls = _tls_of(tmp_path / "d01", "agent.toml")
        host_url, host_tls = _tls_of(tmp_path / "host", "host.toml")
        assert desk_url == host_url == url
        host = peer("host", tls=host_tls, protocol="5")
        assert host.connect(), f"the provisioned host was refused (CONNACK {host.connack})"
        host.sub("hsc/v1/site1/+/state", "hsc/v1/site1/+/event")
        # the desk connects with its certificate alone: the CN is its identity, no password needed
        desk = peer("desk", tls=desk_tls, protocol="5")
        assert desk.connect(), f"the provisioned desk was refused over TLS (CONNACK {desk.connack})"
        state = (desk_topic("d01", DeskKind.STATE), b"online")
        assert desk.pub(*state, retain=True) in OK
        assert wait_until(lambda: state in host.received())
        # the ACL binds the certificate's identity: d01 cannot write d02's topics or alerts
        assert desk.pub(desk_topic("d02", DeskKind.STATE), b"forged") == NOT_AUTHORIZED
        assert desk.pub(str(AlertTopic("site1", "d01", "volume")), b"fake") == NOT_AUTHORIZED
        # a user name claimed in CONNECT does not override the certificate's
        claimer = peer("claimer", tls=desk_tls, protocol="5", user="host.floor", password="anything")
        assert claimer.connect()
        assert claimer.pub(str(AlertTopic("site1", "d01", "volume")), b"fake") == NOT_AUTHORIZED
        # the host's retained config for d01 survives a broker restart (persistence true)
        config = desk_topic("d01", DeskKind.CONFIG)
        assert host.pub(config, b"cfg-before-restart", retain=True) in OK

        # the largest message of the contract passes; a packet over max_packet_size is dropped and its
        # sender disconnected (MQTT 3.1.1: the broker cannot tell the client the limit beforehand)
        biggest = (desk_topic("d01", DeskKind.EVENT), b"x" * MAX_PAYLOAD_BYTES)
        host.sub(desk_topic("d01", DeskKind.EVENT))
        assert desk.pub(*biggest) in OK
        assert wait_until(lambda: biggest in host.received()), "a 16 KiB message was not delivered"
        flooder = peer("flooder", tls=desk_tls, protocol="3.1.1")
        assert flooder.connect()
        huge = (desk_topic("d01", DeskKind.EVENT), b"y" * (1 << 20))
        flooder.c.publish(*huge, qos=0)
        assert flooder.disconnected(5.0), "a 1 MiB packet did not disconnect its sender"
        flooder.stop()
        assert desk.pub(*state, retain=True) in OK  # the broker and the desk's session are fine
        assert not any(m == huge for m in host.received()), "a 1 MiB packet was delivered"

        # refused: no client certificate, a certificate of another CA, plain MQTT on the TLS port
        assert not peer("no-cert", tls=Tls(ca.ca_cert), protocol="5").connect()
        rogue_ca = make_test_ca(tmp_path / "rogue", "rogue ca")
        key_pem, cert_pem, _ = issue_client_cert("desk.site1.d01", rogue_ca.ca_cert, rogue_ca.ca_key, 1)
        (tmp_path / "rogue.key").write_bytes(key_pem)
        (tmp_path / "rogue.crt").write_bytes(cert_pem)
        rogue = peer("rogue", tls=Tls(ca.ca_cert, tmp_path / "rogue.crt", tmp_path / "rogue.key"), protocol="5")
        assert not rogue.connect(), "a certificate of another CA with a desk's CN was accepted"
        assert not peer("plain", user="desk.site1.d01", password="x").connect()

        for p in peers:
            p.stop()
        peers.clear()
        broker.stop()
        broker.start()
        desk = peer("desk-again", tls=desk_tls)
        assert desk.connect()
        desk.sub(config)
        assert wait_until(lambda: (config, b"cfg-before-restart") in desk.received()), "retained config lost"
    finally:
        for p in peers:
            p.stop()
        broker.stop()
