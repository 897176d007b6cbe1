"""The host's MQTT connection (paho-mqtt 2.x, callback API version 2).

The paho network thread stays thin: ``on_message`` only hands an :class:`Inbound` (topic, payload,
receive time, and what its acknowledgement needs) to a queue that the processing thread drains.
MQTT 3.1.1 by default (works with amqtt and mosquitto); MQTT 5 when configured, which also allows
shared subscriptions for metrics/event/minute/call.

Acknowledgements (at-least-once into the history database)
    The link runs paho with ``manual_ack=True``: a QoS 1 message is not acknowledged (PUBACK) when
    ``on_message`` returns, but when the processing thread has committed the transaction that holds
    it and calls :meth:`MqttLink.ack`. Until then the broker keeps it in the host's persistent
    session and delivers it again after a reconnect, so a host killed between delivery and commit
    loses nothing; the (desk, boot, seq) key of the history makes the redelivery harmless. Rejected
    messages are acknowledged too, once counted (they are committed as a count, not as a row).
    QoS 0 messages (metrics) are never acknowledged.

    Threads: :meth:`MqttLink.ack` runs on the processing thread. paho's ``ack()`` only appends the
    PUBACK to the client's outgoing deque and wakes the network thread through its socket pair (the
    same path ``publish()`` takes from any thread under ``loop_start()``). A packet id is only valid
    on the connection it arrived on: each connection has a generation, bumped in ``on_disconnect``
    and ``on_connect`` under ``_ack_lock``, and acks of an older generation are dropped (the broker
    redelivers those messages on the new connection, where they are acknowledged again). Acking an
    old packet id on a new connection could acknowledge another, not yet committed message.

    What the guarantee needs from the broker (mosquitto):
    - the host's session must outlive the host: a fixed client id, ``clean_session`` false (3.1.1)
      or a session expiry (5; :data:`SESSION_EXPIRY_S`), and no shorter ``persistent_client_expiration``;
    - ``max_queued_messages 0`` (no limit; the default 1000 drops QoS 1 messages while the host is
      down for long) or a limit above what the desks send while the host is down;
    - to survive a broker restart as well: ``persistence true`` with a ``persistence_location``;
      mosquitto writes its state on a clean stop and every ``autosave_interval`` seconds (default
      1800), so to survive a broker crash (kill -9, power cut) set a short ``autosave_interval``
      (e.g. 1 s), or ``autosave_on_changes true`` with ``autosave_interval 1`` to save after every
      change (costly on a busy floor).

A clustered broker (``[broker] urls``)
    The first connect goes to ``urls[0]``; every later attempt, after a failed connect or a lost
    connection, goes to the next url of the list (round robin), with paho's reconnect backoff (1 s
    doubling to 10 s) in between. paho has no public way to change the broker of a client that has
    connected once (its ``host`` setter refuses while a reconnect is in progress), so
    :func:`mqtt_schema.broker.aim` sets paho's ``_host`` and ``_port`` from ``on_pre_connect`` (paho 2.1 and 2.2; checked
    at construction). On every connect the link subscribes again. The session the host needs (its
    QoS 1 subscriptions and what was queued or unacknowledged) must be held by the whole cluster, not by
    the node that died: with NATS, JetStream replicates it (``mqtt { stream_replicas: 3,
    consumer_replicas: 3 }``, see ``docs/scaling.md``), the node the host moves to answers CONNACK with
    session present and redelivers what was unacknowledged. A CONNACK *without* the session on a
    reconnect is logged as a WARNING and counted in :attr:`MqttLink.sessions_lost`: whatever the old
    node had acknowledged to the desks and not yet delivered is then gone (the desks' spools only resend
    what the broker never acknowledged).

Reading (:class:`BufferedClient`)
    paho reads each packet with three or more ``recv()`` calls (its first byte, its length byte by
    byte, then the rest), and every one releases and retakes the GIL. With the processing thread
    busy, each retake can wait up to the interpreter's switch interval, so under load the network
    thread, not the broker, set the pace. The host's client reads the socket in 64 KiB chunks and
    hands paho its bytes from that buffer: one system call per few hundred messages. ``loop_read``
    returns only with the buffer empty (nothing is left that ``select()`` cannot see), and it refills
    at most ``READ_REFILLS`` times per call, so that paho's loop still writes acknowledgements and
    pings in between.
"""

from __future__ import annotations

import logging
import queue
import ssl
import sys
import threading
import time
from collections.abc import Callable, Iterable
from typing import Any, NamedTuple

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion, MQTTErrorCode
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

from host_agent.config import BrokerConfig
from host_agent.errors import ConfigError, HostError
from mqtt_schema import QOS, DeskKind, desk_filter, shared
from mqtt_schema.broker import BrokerRotation, aim, aimable

log = logging.getLogger("host_agent.mqtt")
SESSION_EXPIRY_S = 86_400
READ_CHUNK = 65_536
"""Bytes asked of the socket per ``recv()``."""
READ_REFILLS = 16
"""Chunks read per ``loop_read()`` call at most (1 MiB) before paho's loop gets to write."""


class BufferedClient(mqtt.Client):
    """paho's client with its socket reads served from a 64 KiB buffer (see the module docstring).

    It hooks paho's private ``_sock_recv`` (paho 2.1 and 2.2). Should a paho release stop calling it,
    the buffer stays empty and the client reads as plain paho does: slower, never wrong.
    """

    _rbuf: bytes = b""
    _rpos: int = 0
    _rsock: object = None
    _refills: int = 0
    _draining: bool = False

    def _sock_recv(self, bufsize: int) -> bytes:
        if self._rsock is not self._sock:  # a new connection: nothing of the old one may be served
            self._rsock, self._rbuf, self._rpos = self._sock, b"", 0
        buf, pos = self._rbuf, self._rpos
        if pos >= len(buf):
            if not self._draining:
                return super()._sock_recv(bufsize)
            if self._refills <= 0:
                raise BlockingIOError  # paho keeps its partial packet; select() sees the socket readable
            self._refills -= 1
            buf = super()._sock_recv(READ_CHUNK)
            if len(buf) <= bufsize:
                self._rbuf, self._rpos = b"", 0
                return buf
            self._rbuf, pos = buf, 0
        end = pos + bufsize
        self._rpos = end
        return buf[pos:end]

    def loop_read(self, max_packets: int = 1) -> MQTTErrorCode:
        self._draining, self._refills = True, READ_REFILLS
        try:
            rc = super().loop_read(max_packets)
            while rc == mqtt.MQTT_ERR_SUCCESS and self._sock is not None and self._rpos < len(self._rbuf):
                rc = super().loop_read(1)
            return rc
        finally:
            self._draining = False


def subscriptions(sites: tuple[str, ...], shared_group: str | None) -> list[tuple[str, int]]:
    """(filter, qos) for every site (``+`` when none): state always ordinary, the rest shared if asked."""
    out: list[tuple[str, int]] = []
    for site in sites or ("+",):
        out.append((desk_filter(site, "+", DeskKind.STATE), QOS["state"]))
        for kind in (DeskKind.METRICS, DeskKind.EVENT, DeskKind.MINUTE, DeskKind.CALL):
            f = desk_filter(site, "+", kind)
            out.append((shared(shared_group, f) if shared_group else f, QOS[kind.value]))
    return out


class Inbound(NamedTuple):
    """One message from the broker, as the processing thread receives it."""

    topic: str
    payload: bytes
    recv_ns: int
    """``time.monotonic_ns()`` at receipt."""
    mid: int = 0
    """The packet id to acknowledge (QoS 1 only)."""
    qos: int = 0
    generation: int = 0
    """The connection it arrived on (see the module docstring)."""


def _check_aimable(client: mqtt.Client) -> None:
    if not aimable(client):
        raise HostError("this paho-mqtt has no _host/_port: [broker] urls (failover) needs paho-mqtt 2.1 or 2.2")


def make_client(cfg: BrokerConfig, client_id: str, persistent: bool, *, manual_ack: bool = False) -> mqtt.Client:
    """A paho client with the config's protocol, credentials and TLS (``manual_ack``: see the module doc)."""
    v5 = cfg.protocol == "5"
    client = BufferedClient(CallbackAPIVersion.VERSION2, client_id=client_id,
                            protocol=mqtt.MQTTv5 if v5 else mqtt.MQTTv311,
                            clean_session=None if v5 else not persistent, manual_ack=manual_ack)
    if cfg.username:
        client.username_pw_set(cfg.username, cfg.password)
    if cfg.tls:
        try:
            client.tls_set(ca_certs=cfg.ca_cert, certfile=cfg.client_cert, keyfile=cfg.client_key,
                           cert_reqs=ssl.CERT_REQUIRED)
        except (OSError, ValueError) as exc:  # ssl.SSLError is an OSError: a file that is no certificate or key
            files = ", ".join(f"broker.{name} {path}" for name, path in (
                ("ca_cert", cfg.ca_cert), ("client_cert", cfg.client_cert), ("client_key", cfg.client_key)) if path)
            raise ConfigError(f"cannot set up TLS with {files or 'the system CA certificates'}: {exc}") from None
        client.tls_insecure_set(cfg.tls_insecure)
    return client


def read_retained(cfg: BrokerConfig, filters: list[str], client_id: str, quiet_s: float = 0.3,
                  timeout_s: float = 10.0) -> dict[str, bytes]:
    """The retained messages under ``filters`` (read until ``quiet_s`` passes without one)."""
    got: dict[str, bytes] = {}
    last = [time.monotonic()]
    subscribed = threading.Event()
    client = make_client(cfg, client_id, persistent=False)

    def on_connect(c: mqtt.Client, u: Any, f: Any, reason: Any, p: Any) -> None:
        if not reason.is_failure:
            c.subscribe([(f, 1) for f in filters])

    def on_subscribe(c: mqtt.Client, u: Any, mid: int, reasons: Any, p: Any) -> None:
        last[0] = time.monotonic()
        subscribed.set()

    def on_message(c: mqtt.Client, u: Any, m: mqtt.MQTTMessage) -> None:
        if m.retain:
            got[m.topic] = bytes(m.payload)
            last[0] = time.monotonic()

    client.on_connect, client.on_subscribe, client.on_message = on_connect, on_subscribe, on_message
    errors: list[str] = []
    for url in cfg.broker_urls:  # the first that answers (cfg.starting_at() puts the link's node first)
        try:
            client.connect(*BrokerConfig.endpoint(url), keepalive=cfg.keepalive_s)
            break
        except (OSError, ValueError) as exc:
            errors.append(f"{url}: {exc}")
    else:
        raise HostError(f"cannot reach the broker {'; '.join(errors)}")
    client.loop_start()
    try:
        if not subscribed.wait(timeout_s):
            raise HostError(f"could not read retained messages from {cfg.url} in {timeout_s:g} s")
        end = time.monotonic() + timeout_s
        while time.monotonic() - last[0] < quiet_s and time.monotonic() < end:
            time.sleep(0.02)
        return dict(got)
    finally:
        client.disconnect()
        client.loop_stop()


class MqttLink:
    """Connects, subscribes on every (re)connect, feeds ``inbox``, acknowledges what was committed
    and publishes alerts.

    ``on_reconnect`` (optional) is called on paho's network thread after every successful connect
    but the first, once the subscriptions are sent; it must only hand work to another thread.
    """

    def __init__(self, cfg: BrokerConfig, sites: tuple[str, ...], inbox: queue.SimpleQueue[Any],
                 client_id: str, on_reconnect: Callable[[], None] | None = None) -> None:
        self.cfg = cfg
        self.sites = sites
        self.inbox = inbox
        self.on_reconnect = on_reconnect
        self.connected = threading.Event()
        self.subscribed = threading.Event()
        self.connect_error: str | None = None
        self.connects = 0
        """Successful connects so far (1 after the first)."""
        self.acks_sent = 0
        self.acks_dropped = 0
        """Acks of messages from an earlier connection, not sent (the broker redelivers those)."""
        self.sessions_lost = 0
        """Reconnects on which the broker had no session for the host (see the module docstring)."""
        self._generation = 0
        self._ack_lock = threading.Lock()
        self._pending_subs: set[int] = set()
        self.rotation = BrokerRotation(cfg.broker_urls)
        self.client = make_client(cfg, client_id, persistent=True, manual_ack=True)
        _check_aimable(self.client)
        self.client.on_pre_connect = self._on_pre_connect
        self.client.on_connect_fail = self._on_connect_fail
        self.client.max_inflight_messages_set(100)
        self.client.max_queued_messages_set(0)
        self.client.reconnect_delay_set(1, 10)
        self.client.on_connect = self._on_connect
        self.client.on_disconnect = self._on_disconnect
        self.client.on_subscribe = self._on_subscribe
        self.client.on_message = self._on_message

    def start(self, timeout_s: float = 10.0) -> None:
        props = None
        kwargs: dict[str, Any] = {}
        if self.cfg.protocol == "5":
            props = Properties(PacketTypes.CONNECT)  # type: ignore[no-untyped-call]
            props.SessionExpiryInterval = SESSION_EXPIRY_S
            kwargs["clean_start"] = False
        try:
            self.client.connect_async(self.cfg.host, self.cfg.port, keepalive=self.cfg.keepalive_s,
                                      properties=props, **kwargs)
        except (OSError, ValueError) as exc:
            raise HostError(f"cannot reach the broker {self.cfg.url}: {exc}") from None
        self.client.loop_start()
        if not self.subscribed.wait(timeout_s):
            self.stop()
            why = self.connect_error or "no answer"
            tried = ", ".join(self.cfg.broker_urls)
            raise HostError(f"could not connect and subscribe to the broker {tried} in {timeout_s:g} s: {why}")

    def stop(self) -> None:
        try:
            self.client.disconnect()
        finally:
            self.client.loop_stop()
            self.connected.clear()

    def publish(self, topic: str, payload: bytes | None, qos: int, retain: bool) -> None:
        self.client.publish(topic, payload if payload is not None else b"", qos=qos, retain=retain)

    def ack(self, messages: Iterable[Inbound]) -> int:
        """Acknowledge ``messages`` (committed, or rejected and counted); return the acks sent.

        Call it from the processing thread after the commit. QoS 0 messages are skipped, and so are
        messages of an earlier connection (counted in ``acks_dropped``).
        """
        sent = 0
        with self._ack_lock:  # on_connect/on_disconnect cannot bump the generation meanwhile
            generation = self._generation
            for m in messages:
                if m.qos == 0:
                    continue
                if m.generation != generation:
                    self.acks_dropped += 1
                    continue
                self.client.ack(m.mid, m.qos)
                sent += 1
            self.acks_sent += sent
        return sent

    @property
    def current_url(self) -> str:
        """The broker the link is connected to (or trying)."""
        return self.rotation.current

    # --- paho callbacks (network thread: keep them thin) ------------------------------------------

    def _on_pre_connect(self, client: mqtt.Client, userdata: Any) -> None:
        try:
            url, moved = self.rotation.next_attempt()
            if moved:
                aim(client, *BrokerConfig.endpoint(url))
                log.log(logging.INFO if self.connects else logging.DEBUG, "trying the broker %s (%d of %d)", url,
                        self.rotation.index + 1, len(self.rotation.urls))
        except Exception as exc:  # never raise into paho's loop
            log.exception("choosing the next broker failed: %s", exc)

    def _on_connect_fail(self, client: mqtt.Client, userdata: Any) -> None:
        # paho calls this inside its ``except OSError`` around the connect: the exception is the current one
        try:
            exc = sys.exc_info()[1]
            self.connect_error = f"{self.current_url}: {exc or 'connection failed'}"
            more = f"; trying {self.rotation.urls[(self.rotation.index + 1) % len(self.rotation.urls)]} next" \
                if len(self.rotation.urls) > 1 else "; retrying"
            log.warning("cannot reach the broker %s: %s%s", self.current_url, exc or "connection failed", more)
        except Exception as err:  # never raise into paho's loop
            log.exception("on_connect_fail: %s", err)

    def _on_connect(self, client: mqtt.Client, userdata: Any, flags: Any, reason: Any, props: Any) -> None:
        url = self.current_url
        if reason.is_failure:
            self.connect_error = str(reason)
            log.error("broker %s refused the connection: %s", url, reason)
            return
        with self._ack_lock:
            self._generation += 1
        self.connects += 1
        self.connected.set()
        if self.connects > 1 and not getattr(flags, "session_present", True):
            self.sessions_lost += 1
            log.warning("the broker %s has no session for this host: QoS 1 messages it had accepted from the "
                        "desks and not yet delivered are lost (a cluster must replicate sessions, see "
                        "docs/scaling.md)", url)
        subs = subscriptions(self.sites, self.cfg.shared_group)
        result, mid = client.subscribe(subs)
        if result == mqtt.MQTT_ERR_SUCCESS and mid is not None:
            self._pending_subs.add(mid)
        log.info("connected to %s, subscribed to %d filters", url, len(subs))
        if self.connects > 1 and self.on_reconnect is not None:
            try:
                self.on_reconnect()
            except Exception as exc:  # never raise into paho's loop
                log.exception("reconnect hook failed: %s", exc)

    def _on_subscribe(self, client: mqtt.Client, userdata: Any, mid: int, reasons: Any, props: Any) -> None:
        failed = [r for r in reasons if getattr(r, "is_failure", False)]
        if failed:
            self.connect_error = f"subscription refused: {failed[0]}"
            log.error("broker refused a subscription: %s", failed)
            return
        self._pending_subs.discard(mid)
        self.subscribed.set()

    def _on_disconnect(self, client: mqtt.Client, userdata: Any, flags: Any, reason: Any, props: Any) -> None:
        with self._ack_lock:  # before paho's reconnect() drops its outgoing packets
            self._generation += 1
        self.connected.clear()
        if reason.is_failure:
            log.warning("lost the broker %s (%s); reconnecting", self.current_url, reason)

    def _on_message(self, client: mqtt.Client, userdata: Any, msg: mqtt.MQTTMessage) -> None:
        try:
            topic = msg.topic
        except UnicodeDecodeError:
            topic = msg._topic.decode("utf-8", "replace")  # counted as a bad topic downstream
        self.inbox.put(Inbound(topic, bytes(msg.payload), time.monotonic_ns(), msg.mid, msg.qos, self._generation))
