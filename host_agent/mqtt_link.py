"""The host's MQTT connection (paho-mqtt 2.x, callback API version 2).

The paho network thread stays thin: ``on_message`` only hands (topic, payload, receive time) to a
queue that the processing thread drains. MQTT 3.1.1 by default (works with amqtt and mosquitto);
MQTT 5 when configured, which also allows shared subscriptions for metrics/event/minute.
"""

from __future__ import annotations

import logging
import queue
import ssl
import threading
import time
from typing import Any

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

from host_agent.config import BrokerConfig
from host_agent.errors import HostError
from mqtt_schema import QOS, DeskKind, desk_filter, shared

log = logging.getLogger("host_agent.mqtt")
SESSION_EXPIRY_S = 86_400


def subscriptions(sites: tuple[str, ...], shared_group: str | None) -> list[tuple[str, int]]:
    """(filter, qos) for every site (``+`` when none): state always ordinary, the rest shared if asked."""
    out: list[tuple[str, int]] = []
    for site in sites or ("+",):
        out.append((desk_filter(site, "+", DeskKind.STATE), QOS["state"]))
        for kind in (DeskKind.METRICS, DeskKind.EVENT, DeskKind.MINUTE):
            f = desk_filter(site, "+", kind)
            out.append((shared(shared_group, f) if shared_group else f, QOS[kind.value]))
    return out


def make_client(cfg: BrokerConfig, client_id: str, persistent: bool) -> mqtt.Client:
    """A paho client with the config's protocol, credentials and TLS."""
    v5 = cfg.protocol == "5"
    client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=client_id,
                         protocol=mqtt.MQTTv5 if v5 else mqtt.MQTTv311,
                         clean_session=None if v5 else not persistent)
    if cfg.username:
        client.username_pw_set(cfg.username, cfg.password)
    if cfg.tls:
        client.tls_set(ca_certs=cfg.tls_ca, certfile=cfg.tls_cert, keyfile=cfg.tls_key, cert_reqs=ssl.CERT_REQUIRED)
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
    try:
        client.connect(cfg.host, cfg.port, keepalive=cfg.keepalive_s)
    except (OSError, ValueError) as exc:
        raise HostError(f"cannot reach the broker {cfg.url}: {exc}") from None
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
    """Connects, subscribes on every (re)connect, feeds ``inbox`` and publishes alerts."""

    def __init__(self, cfg: BrokerConfig, sites: tuple[str, ...], inbox: queue.SimpleQueue[Any],
                 client_id: str) -> None:
        self.cfg = cfg
        self.sites = sites
        self.inbox = inbox
        self.connected = threading.Event()
        self.subscribed = threading.Event()
        self.connect_error: str | None = None
        self._pending_subs: set[int] = set()
        self.client = make_client(cfg, client_id, persistent=True)
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
            raise HostError(f"could not connect and subscribe to the broker {self.cfg.url} in {timeout_s:g} s: {why}")

    def stop(self) -> None:
        try:
            self.client.disconnect()
        finally:
            self.client.loop_stop()
            self.connected.clear()

    def publish(self, topic: str, payload: bytes | None, qos: int, retain: bool) -> None:
        self.client.publish(topic, payload if payload is not None else b"", qos=qos, retain=retain)

    # --- paho callbacks (network thread: keep them thin) ------------------------------------------

    def _on_connect(self, client: mqtt.Client, userdata: Any, flags: Any, reason: Any, props: Any) -> None:
        if reason.is_failure:
            self.connect_error = str(reason)
            log.error("broker %s refused the connection: %s", self.cfg.url, reason)
            return
        self.connected.set()
        subs = subscriptions(self.sites, self.cfg.shared_group)
        result, mid = client.subscribe(subs)
        if result == mqtt.MQTT_ERR_SUCCESS and mid is not None:
            self._pending_subs.add(mid)
        log.info("connected to %s, subscribed to %d filters", self.cfg.url, len(subs))

    def _on_subscribe(self, client: mqtt.Client, userdata: Any, mid: int, reasons: Any, props: Any) -> None:
        failed = [r for r in reasons if getattr(r, "is_failure", False)]
        if failed:
            self.connect_error = f"subscription refused: {failed[0]}"
            log.error("broker refused a subscription: %s", failed)
            return
        self._pending_subs.discard(mid)
        self.subscribed.set()

    def _on_disconnect(self, client: mqtt.Client, userdata: Any, flags: Any, reason: Any, props: Any) -> None:
        self.connected.clear()
        if reason.is_failure:
            log.warning("lost the broker %s (%s); reconnecting", self.cfg.url, reason)

    def _on_message(self, client: mqtt.Client, userdata: Any, msg: mqtt.MQTTMessage) -> None:
        try:
            topic = msg.topic
        except UnicodeDecodeError:
            topic = msg._topic.decode("utf-8", "replace")  # counted as a bad topic downstream
        self.inbox.put((topic, msg.payload, time.monotonic_ns()))
