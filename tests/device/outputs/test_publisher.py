"""The desk publisher against a real mosquitto (and once the embedded amqtt): birth, will, spool, auth."""

from __future__ import annotations

import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.enums import CallbackAPIVersion

from device.config.mqtt_settings import MqttSettings
from device.outputs.publisher import DeskPublisher
from device.outputs.spool import Spool
from mqtt_schema import (
    Config,
    Cue,
    DeskKind,
    DeskStatus,
    DeskTopic,
    Event,
    EventKind,
    Message,
    Metrics,
    PartStatus,
    State,
    Versions,
    decode_topic,
    encode,
)
from tests.conftest import Mosquitto
from tests.waiting import wait_for

REPO = Path(__file__).parents[3]
SITE, DESK = "s1", "d1"
STATE_TOPIC = str(DeskTopic(SITE, DESK, DeskKind.STATE))
CONFIG_TOPIC = str(DeskTopic(SITE, DESK, DeskKind.CONFIG))


class Collector:
    """A real MQTT subscriber that validates every payload with mqtt_schema (persistent session, QoS 1)."""

    def __init__(self, url: str, client_id: str, *, username: str | None = None, password: str | None = None,
                 clean: bool = False) -> None:
        host, port = url.removeprefix("mqtt://").split(":")
        self.messages: list[tuple[str, bool, bytes, Message]] = []
        self.invalid: list[tuple[str, bytes, str]] = []
        self._cond = threading.Condition()
        self.subscribed = threading.Event()
        self.client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=client_id, clean_session=clean)
        if username:
            self.client.username_pw_set(username, password)
        self.client.reconnect_delay_set(1, 1)
        self.client.on_connect = lambda c, u, f, r, p: c.subscribe(f"hsc/v1/{SITE}/#", qos=1)
        self.client.on_subscribe = lambda c, u, mid, r, p: self.subscribed.set()
        self.client.on_message = self._on_message
        self.client.connect(host, int(port))
        self.client.loop_start()
        assert self.subscribed.wait(10), "the collector could not subscribe"

    def _on_message(self, client: mqtt.Client, userdata: Any, msg: mqtt.MQTTMessage) -> None:
        payload = bytes(msg.payload)
        try:
            _, decoded = decode_topic(msg.topic, payload)
        except Exception as exc:
            with self._cond:
                self.invalid.append((msg.topic, payload, str(exc)))
            return
        assert decoded is not None
        with self._cond:
            self.messages.append((msg.topic, bool(msg.retain), payload, decoded))
            self._cond.notify_all()

    def of(self, kind: type[Any]) -> list[Any]:
        with self._cond:
            return [m for _, _, _, m in self.messages if isinstance(m, kind)]

    def wait(self, pred: Callable[[Collector], bool], timeout_s: float, what: str) -> None:
        deadline = time.monotonic() + timeout_s
        with self._cond:
            while not pred(self):
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise AssertionError(f"timed out after {timeout_s} s waiting for {what}; got "
                                         f"{[type(m).__name__ for *_, m in self.messages]}")
                self._cond.wait(min(remaining, 0.2))

    def events(self, boot: int | None = None) -> list[Event]:
        return [e for e in self.of(Event) if boot is None or e.boot == boot]

    def publish(self, topic: str, payload: bytes, retain: bool = True) -> None:
        self.client.publish(topic, payload, qos=1, retain=retain).wait_for_publish(10)

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()
        assert not self.invalid, f"payloads that break the contract: {self.invalid[:3]}"


@pytest.fixture
def collectors() -> Iterator[list[Collector]]:
    made: list[Collector] = []
    yield made
    for c in made:
        c.close()


def make_publisher(url: str, spool_path: Path, boot: int = 1, **kw: Any) -> DeskPublisher:
    settings = MqttSettings(url=url, username=kw.pop("username", None), password=kw.pop("password", None))
    return DeskPublisher(site=SITE, desk=DESK, settings=settings, spool=Spool(spool_path, kw.pop("max_rows", 100_000)),
                         boot=boot, now_ms=lambda: int(time.time() * 1000),
                         versions=Versions(agent="0.1.0", schema="1.0"), capabilities=["dual-mic", "leds"],
                         reconnect_max_s=1, **kw)


def unique_events(events: list[Event]) -> dict[tuple[int, int], Event]:
    """Dedup on (boot, seq) like the host, checking that duplicates are the very same message."""
    out: dict[tuple[int, int], Event] = {}
    for e in events:
        key = (e.boot, e.seq)
        assert out.setdefault(key, e) == e, f"two different messages share (boot, seq) {key}"
    return out


def test_birth_state_metrics_and_clean_stop(mosquitto: Mosquitto, tmp_path: Path,
                                            collectors: list[Collector]) -> None:
    live = Collector(mosquitto.url, "live")
    collectors.append(live)
    pub = make_publisher(mosquitto.url, tmp_path / "spool.db", boot=7)
    pub.start()
    wait_for(lambda: pub.connected, 10, "the publisher to connect")
    pub.metrics(speaking=True, speech_s=0.5, level_dbov=-24.0, cues=[Cue.PACE_FAST])
    pub.event(EventKind.WORN)
    pub.set_state(audio=PartStatus.OK, headset=PartStatus.OK, headset_id="hs-0042", config_hash="abcdef12",
                  firmware="1.3.0")
    pub.set_state(audio=PartStatus.OK, headset=PartStatus.OK, headset_id="hs-0042", config_hash="abcdef12",
                  firmware="1.3.0")  # unchanged: no new state message
    pub.minute(minute_ts=60_000, speech_s=12.5, cue_s={Cue.PACE_FAST: 3.0})
    assert pub.flush(10)
    live.wait(lambda c: len(c.of(State)) >= 2 and bool(c.events()) and bool(c.of(Metrics)), 10, "state, event, metrics")

    late = Collector(mosquitto.url, "late", clean=True)  # the retained birth (updated) reaches late subscribers
    collectors.append(late)
    late.wait(lambda c: bool(c.of(State)), 10, "the retained state")
    (retained,) = late.of(State)
    assert retained.status is DeskStatus.ONLINE and retained.boot == 7
    assert (retained.headset_id, retained.config_hash, retained.versions.firmware) == ("hs-0042", "abcdef12", "1.3.0")
    assert retained.capabilities == ["dual-mic", "leds"]

    pub.stop()
    live.wait(lambda c: c.of(State)[-1].status is DeskStatus.OFFLINE, 10, "the offline state")
    states = live.of(State)
    assert [s.status for s in states] == [DeskStatus.ONLINE, DeskStatus.ONLINE, DeskStatus.OFFLINE]
    everything = [m for *_, m in live.messages]
    seqs = [m.seq for m in everything]  # type: ignore[union-attr]
    # one counter for all kinds: no gaps, no repeats (seq 1 is the will, which was never sent); spooled kinds
    # go out after the direct ones, so only each kind's own order is the publishing order
    assert sorted(seqs) == list(range(2, 2 + len(seqs)))
    for kind in (State, Metrics, Event):
        mine = [m.seq for m in everything if isinstance(m, kind)]
        assert mine == sorted(mine)
    assert {type(m).__name__ for m in everything} == {"State", "Metrics", "Event", "Minute"}
    assert len(pub.spool) == 0
    pub.stop()  # idempotent


def test_metrics_are_dropped_while_offline(tmp_path: Path, mosquitto: Mosquitto) -> None:
    mosquitto.stop()
    pub = make_publisher(mosquitto.url, tmp_path / "spool.db")
    pub.start()
    try:
        seq = pub.seq
        pub.metrics(speaking=False)
        assert pub.seq == seq and len(pub.spool) == 0
        pub.event(EventKind.DOFFED)
        assert len(pub.spool) == 1 and pub.seq == seq + 1  # events are spooled instead
    finally:
        pub.stop(timeout_s=0.5)


def test_last_will_is_lost_when_the_agent_is_killed(mosquitto: Mosquitto, tmp_path: Path,
                                                   collectors: list[Collector]) -> None:
    live = Collector(mosquitto.url, "live")
    collectors.append(live)
    child = subprocess.Popen([sys.executable, "-m", "tests.device.outputs.desk_child", mosquitto.url,
                              str(tmp_path / "spool.db"), "5", "3", "--wait-connected"],
                             cwd=REPO, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    try:
        assert child.stdout is not None
        assert child.stdout.readline().strip() == "spooled"
        assert child.stdout.readline().strip() == "connected"
        live.wait(lambda c: len(c.events(5)) == 3, 10, "the child's events")
        assert [s.status for s in live.of(State)] == [DeskStatus.ONLINE]
    finally:
        child.kill()  # SIGKILL: no clean disconnect, the broker must publish the will
        child.wait(10)
        for stream in (child.stdin, child.stdout):
            if stream is not None:
                stream.close()
    live.wait(lambda c: c.of(State)[-1].status is DeskStatus.LOST, 15, "the lost will")
    late = Collector(mosquitto.url, "late", clean=True)
    collectors.append(late)
    late.wait(lambda c: bool(c.of(State)), 10, "the retained will")
    (lost,) = late.of(State)
    assert lost.status is DeskStatus.LOST and lost.boot == 5 and late.messages[0][1]


def test_events_survive_a_broker_stop_and_start(mosquitto: Mosquitto, tmp_path: Path,
                                                collectors: list[Collector]) -> None:
    sub = Collector(mosquitto.url, "counter")  # persistent session: the broker keeps its queue over restarts
    collectors.append(sub)
    pub = make_publisher(mosquitto.url, tmp_path / "spool.db", boot=3)
    pub.start()
    try:
        wait_for(lambda: pub.connected, 10, "the publisher to connect")
        for i in range(40):
            pub.event(EventKind.CUE_ON, cue=Cue.VOLUME_HIGH, value=float(i))
        mosquitto.stop()  # mid-stream: some of these are in flight
        wait_for(lambda: not pub.connected, 10, "the publisher to notice")
        for i in range(40, 80):
            pub.event(EventKind.CUE_OFF, cue=Cue.VOLUME_HIGH, value=float(i))
        assert len(pub.spool) >= 40
        mosquitto.start()
        for i in range(80, 100):
            pub.event(EventKind.CUE_ON, cue=Cue.MIC_FAR, value=float(i))
        assert pub.flush(30), f"{len(pub.spool)} rows still spooled"
        try:
            sub.wait(lambda c: len(unique_events(c.events(3))) >= 100, 20, "all 100 events")
        except AssertionError:
            have = {e.value for e in sub.events(3)}
            log = (mosquitto.workdir / "mosquitto.log").read_text()[-3000:]
            raise AssertionError(f"missing {sorted(set(map(float, range(100))) - have)}; broker log:\n{log}") from None
    finally:
        pub.stop()
    got = unique_events(sub.events(3))
    assert len(got) == 100, "none lost, and no extra ones"
    assert sorted(e.value or 0.0 for e in got.values()) == [float(i) for i in range(100)]
    in_order = [e.seq for e in sub.events(3)]
    first_seen = list(dict.fromkeys(in_order))
    assert first_seen == sorted(first_seen), "delivered in spool order"


def test_spool_is_replayed_after_a_kill_9(mosquitto: Mosquitto, tmp_path: Path,
                                         collectors: list[Collector]) -> None:
    spool = tmp_path / "spool.db"
    mosquitto.stop()  # the broker is down while the agent spools, then the agent dies
    child = subprocess.Popen([sys.executable, "-m", "tests.device.outputs.desk_child", mosquitto.url, str(spool),
                              "11", "25"], cwd=REPO, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    try:
        assert child.stdout is not None
        assert child.stdout.readline().strip() == "spooled"
    finally:
        child.kill()
        child.wait(10)
        for stream in (child.stdin, child.stdout):
            if stream is not None:
                stream.close()
    mosquitto.start()
    sub = Collector(mosquitto.url, "counter")
    collectors.append(sub)
    pub = make_publisher(mosquitto.url, spool, boot=12)  # the restarted agent: next boot, same spool
    pub.start()
    try:
        assert pub.flush(20)
        sub.wait(lambda c: len(c.events(11)) >= 25, 10, "the replayed events")
    finally:
        pub.stop()
    old = sub.events(11)
    assert [e.value for e in old] == [float(i) for i in range(25)], "replayed in order, with the old boot"
    assert [e.seq for e in old] == sorted(e.seq for e in old)
    assert all(s.boot == 12 for s in sub.of(State))


def test_a_full_spool_reports_what_it_dropped(mosquitto: Mosquitto, tmp_path: Path,
                                             collectors: list[Collector]) -> None:
    mosquitto.stop()
    pub = make_publisher(mosquitto.url, tmp_path / "spool.db", max_rows=5)
    pub.start()
    try:
        for i in range(12):
            pub.event(EventKind.CUE_ON, cue=Cue.PACE_SLOW, value=float(i))
        assert len(pub.spool) == 5
        mosquitto.start()
        sub = Collector(mosquitto.url, "counter")
        collectors.append(sub)
        assert pub.flush(20)
        sub.wait(lambda c: any(e.kind is EventKind.SPOOL_DROPPED for e in c.events()), 10, "spool_dropped")
        sub.wait(lambda c: len(c.events()) >= 6, 10, "the kept events")
    finally:
        pub.stop()
    events = sub.events()
    (note,) = [e for e in events if e.kind is EventKind.SPOOL_DROPPED]
    kept = [e.value for e in events if e.kind is EventKind.CUE_ON]
    assert note.count == 12 - 5 and kept == [float(i) for i in range(7, 12)]


def test_password_auth(mosquitto_factory: Callable[[str], Mosquitto], tmp_path: Path,
                       collectors: list[Collector]) -> None:
    from hw.flashing.provision import mosquitto_hash

    pw = tmp_path / "passwd"
    pw.write_text(f"desk.s1.d1:{mosquitto_hash('right-pass')}\nwatcher:{mosquitto_hash('watch')}\n")
    broker = mosquitto_factory(f"allow_anonymous false\npassword_file {pw}\n")
    sub = Collector(broker.url, "watcher", username="watcher", password="watch")
    collectors.append(sub)

    wrong = make_publisher(broker.url, tmp_path / "wrong.db", username="desk.s1.d1", password="wrong-pass",
                           client_id="wrong")
    wrong.start()
    try:
        wrong.event(EventKind.WORN)
        wait_for(lambda: wrong.last_error is not None, 10, "the refusal")
        assert "refused" in (wrong.last_error or "") and not wrong.connected
        assert not wrong.flush(0.5) and len(wrong.spool) == 1  # kept for when the credentials are fixed
    finally:
        wrong.stop(timeout_s=0.5)

    right = make_publisher(broker.url, tmp_path / "right.db", username="desk.s1.d1", password="right-pass")
    right.start()
    try:
        right.event(EventKind.WORN)
        assert right.flush(10)
        sub.wait(lambda c: bool(c.events()), 10, "the event")
    finally:
        right.stop()


def test_remote_config_is_handed_over_and_bad_ones_are_refused(mosquitto: Mosquitto, tmp_path: Path,
                                                              collectors: list[Collector]) -> None:
    sub = Collector(mosquitto.url, "host")
    collectors.append(sub)
    got: list[Config] = []
    applied = threading.Event()

    def on_config(cfg: Config) -> None:
        got.append(cfg)
        applied.set()

    desired = Config(site=SITE, desk=DESK, ts=1_700_000_000_000, config={"cues": {"pace_max_spm": 150}})
    sub.publish(CONFIG_TOPIC, encode(desired))  # retained before the desk connects
    pub = make_publisher(mosquitto.url, tmp_path / "spool.db", on_config=on_config)
    pub.start()
    try:
        assert applied.wait(10), "on_config was not called"
        assert got == [desired]
        sub.publish(CONFIG_TOPIC, b'{"type": "config", "site": "s1", "desk": "other", "ts": 1}')
        sub.wait(lambda c: any(e.kind is EventKind.CONFIG_REJECTED for e in c.events()), 10, "config_rejected")
        (rejected,) = [e for e in sub.events() if e.kind is EventKind.CONFIG_REJECTED]
        assert "desk" in (rejected.message or "")
        assert got == [desired]
        assert [t for t, *_ in sub.invalid] == [CONFIG_TOPIC]  # the collector saw the bad payload it sent
        sub.invalid.clear()
    finally:
        pub.stop()


def test_embedded_amqtt_broker(tmp_path: Path, collectors: list[Collector]) -> None:
    from host_agent.embedded_broker import EmbeddedBroker

    broker = EmbeddedBroker().start()
    try:
        sub = Collector(broker.url, "amqtt-sub", clean=True)
        collectors.append(sub)
        pub = make_publisher(broker.url, tmp_path / "spool.db", boot=2)
        pub.start()
        for i in range(30):
            pub.event(EventKind.CUE_ON, cue=Cue.MIC_CLOSE, value=float(i))
        assert pub.flush(20)
        sub.wait(lambda c: len(unique_events(c.events(2))) == 30, 10, "30 events over amqtt")
        pub.stop()
        sub.wait(lambda c: bool(c.of(State)) and c.of(State)[-1].status is DeskStatus.OFFLINE, 10, "offline")
        assert sorted(e.value or 0.0 for e in unique_events(sub.events(2)).values()) == [float(i) for i in range(30)]
        sub.close()
        collectors.remove(sub)
    finally:
        broker.stop()


def test_mutual_tls_with_what_provision_desk_writes(mosquitto_factory: Callable[[str], Mosquitto], tmp_path: Path,
                                                    collectors: list[Collector]) -> None:
    """provision-desk's agent.toml (client cert from the site CA) -> MqttSettings -> a broker that demands certs."""
    import tomllib

    from hw.flashing.provision import provision_desk
    from tests.conftest import make_test_ca, wait_for_port
    from tests.ports import free_port

    pki = make_test_ca(tmp_path, "site ca")
    ca, ca_key, server_cert, server_key = pki.ca_cert, pki.ca_key, pki.server_cert, pki.server_key
    tls_port = free_port()
    broker = mosquitto_factory(f"listener {tls_port} 127.0.0.1\ncafile {ca}\ncertfile {server_cert}\n"
                               f"keyfile {server_key}\nrequire_certificate true\nallow_anonymous true\n")
    wait_for_port(tls_port)
    sub = Collector(broker.url, "watcher")  # on the broker's plain listener
    collectors.append(sub)
    desk_dir = tmp_path / "desk"
    provision_desk(SITE, DESK, desk_dir, broker_url=f"mqtts://127.0.0.1:{tls_port}", ca_cert=ca, ca_key=ca_key)
    table = tomllib.loads((desk_dir / "agent.toml").read_text())["mqtt"]
    settings = MqttSettings.from_table(table, base_dir=desk_dir)
    assert settings.tls and settings.client_cert == desk_dir / "desk.crt"
    pub = DeskPublisher(site=SITE, desk=DESK, settings=settings, spool=Spool(tmp_path / "spool.db"), boot=4,
                        now_ms=lambda: int(time.time() * 1000), versions=Versions(agent="0.1.0", schema="1.0"),
                        capabilities=[], reconnect_max_s=1)
    pub.start()
    try:
        pub.event(EventKind.CALIBRATION, message="tls")
        assert pub.flush(15), f"not delivered over TLS: {pub.last_error}"
        sub.wait(lambda c: any(e.kind is EventKind.CALIBRATION for e in c.events(4)), 10, "the event over TLS")
    finally:
        pub.stop()
    no_cert = MqttSettings(url=settings.url, ca_cert=settings.ca_cert)  # the broker demands a client certificate
    refused = DeskPublisher(site=SITE, desk=DESK, settings=no_cert, spool=Spool(tmp_path / "refused.db"), boot=5,
                            now_ms=lambda: int(time.time() * 1000), versions=Versions(agent="0.1.0", schema="1.0"),
                            capabilities=[], client_id="no-cert", reconnect_max_s=1)
    refused.start()
    try:
        refused.event(EventKind.CALIBRATION, message="no cert")
        assert not refused.flush(2) and not refused.connected
    finally:
        refused.stop(timeout_s=0.5)



class HeldSubackBroker:
    """A minimal MQTT 3.1.1 broker on a real socket that answers CONNECT, PUBLISH (QoS 1) and PINGREQ at once
    but holds every SUBACK until :meth:`release` (what a slow or busy broker does between the CONNACK and
    the SUBACK). One client at a time; packets are parsed from their fixed header."""

    def __init__(self) -> None:
        import socket

        self.server = socket.create_server(("127.0.0.1", 0))
        self.url = f"mqtt://127.0.0.1:{self.server.getsockname()[1]}"
        self.held: list[tuple[int, str]] = []  # (packet id, topic filter) of SUBSCRIBEs not yet answered
        self._conn: Any = None
        self._lock = threading.Lock()
        threading.Thread(target=self._serve, daemon=True).start()

    def _read(self, n: int) -> bytes:
        out = b""
        while len(out) < n:
            chunk = self._conn.recv(n - len(out))
            if not chunk:
                raise ConnectionError("closed")
            out += chunk
        return out

    def _serve(self) -> None:
        self._conn, _ = self.server.accept()
        try:
            while True:
                head = self._read(1)[0]
                length, mult = 0, 1
                while True:
                    b = self._read(1)[0]
                    length += (b & 0x7F) * mult
                    mult *= 128
                    if not b & 0x80:
                        break
                body = self._read(length)
                kind = head >> 4
                with self._lock:
                    if kind == 1:  # CONNECT
                        self._conn.sendall(b"\x20\x02\x00\x00")
                    elif kind == 3 and (head >> 1) & 3:  # PUBLISH, QoS 1: PUBACK with its packet id
                        tlen = int.from_bytes(body[:2], "big")
                        self._conn.sendall(b"\x40\x02" + body[2 + tlen: 4 + tlen])
                    elif kind == 8:  # SUBSCRIBE: held
                        flen = int.from_bytes(body[2:4], "big")
                        self.held.append((int.from_bytes(body[:2], "big"), body[4: 4 + flen].decode()))
                    elif kind == 12:  # PINGREQ
                        self._conn.sendall(b"\xd0\x00")
        except (ConnectionError, OSError):
            pass

    def release(self, refuse: str | None = None) -> None:
        """Send the held SUBACKs: QoS 1 granted, or 0x80 (failure) for a filter that ends with ``refuse``."""
        with self._lock:
            for mid, topic in self.held:
                code = b"\x80" if refuse is not None and topic.endswith(refuse) else b"\x01"
                self._conn.sendall(b"\x90\x03" + mid.to_bytes(2, "big") + code)
            self.held.clear()

    def close(self) -> None:
        self.server.close()
        if self._conn is not None:
            self._conn.close()


@pytest.mark.parametrize("refused", [False, True])
def test_cti_counts_as_ready_only_once_the_broker_grants_the_subscription(tmp_path: Path, refused: bool) -> None:
    """``cti_ready`` follows the broker's SUBACK for the cti topic, not the CONNACK: a bridge's message sent
    between the two would be lost, so the mqtt call source must not count as connected yet. A refused
    subscription (0x80) keeps it False while the desk stays connected."""
    broker = HeldSubackBroker()
    pub = make_publisher(broker.url, tmp_path / "spool.db", on_cti=lambda msg: None)
    pub.start()
    try:
        wait_for(lambda: pub.connected, 10, "connected (CONNACK)")
        wait_for(lambda: any(t.endswith("/cti") for _, t in broker.held), 10, "the cti SUBSCRIBE")
        time.sleep(0.3)
        assert pub.connected and not pub.cti_ready  # connected, but the subscription is not granted yet
        broker.release(refuse="/cti" if refused else None)
        if refused:
            time.sleep(0.5)
            assert pub.connected and not pub.cti_ready
        else:
            wait_for(lambda: pub.cti_ready, 10, "cti ready after the SUBACK")
    finally:
        pub.stop(timeout_s=1)
        broker.close()
