"""The desk agent's MQTT side (paho-mqtt 2.x, callback API version 2, MQTT 3.1.1).

Every topic and payload comes from ``mqtt_schema``. Every desk payload carries ``v``, ``site``, ``desk``,
``boot``, ``seq`` (monotonic per boot, one counter for all kinds) and ``ts`` (ms since the epoch).

- ``state`` (retained, QoS 1): a birth ``online`` on every connect, ``offline`` on a clean stop, and the
  last will ``lost`` (retained, QoS 1) when the broker loses the desk.
- ``metrics`` (QoS 0): published only while connected; a snapshot that may be lost.
- ``event`` and ``minute`` (QoS 1): encoded, written to the durable :class:`device.spool.Spool`, then
  published by a worker thread in spool order with a bounded number in flight. A row is deleted only
  after its PUBACK (paho's ``on_publish`` with the mid). Messages in flight when the connection drops
  are retransmitted by paho on reconnect; after a restart the whole spool is replayed from the oldest
  row. Rows keep their original boot, seq and ts, so the host's dedup on (desk, boot, seq) makes any
  redelivery harmless. When the spool evicted rows, an ``Event(kind=spool_dropped, count=N)`` follows
  once connected (one per batch of losses, never one per evicted row).
- ``config`` (retained, to the desk): subscribed on every connect; a valid new payload is handed to
  ``on_config`` (on the worker thread, so keep it quick); an invalid one is logged and answered with
  an ``Event(kind=config_rejected)``.

Threads: paho's network thread runs the callbacks, which only set flags and enqueue (they never raise
and never touch the spool); one worker thread ("desk-publisher") sends spooled rows, deletes acknowledged
ones and handles config. The public methods are thread-safe.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections.abc import Callable
from typing import Any

import msgspec
import paho.mqtt.client as mqtt

from device.errors import ConfigError
from device.mqtt_settings import MqttSettings
from device.spool import Spool, SpoolError
from mqtt_schema import (
    QOS,
    RETAIN,
    Config,
    DeskKind,
    DeskStatus,
    DeskTopic,
    Event,
    EventKind,
    Metrics,
    Minute,
    PartStatus,
    SchemaError,
    State,
    Versions,
    decode_topic,
    encode,
)

log = logging.getLogger("device.publisher")

MAX_INFLIGHT = 32
"""Spooled rows in flight (published, not yet PUBACKed) at most."""
RECONNECT_MIN_S = 1
RECONNECT_MAX_S = 30


class DeskPublisher:
    """Publishes one desk's state, metrics, events and minute rollups; receives its config."""

    def __init__(self, *, site: str, desk: str, settings: MqttSettings, spool: Spool, boot: int,
                 now_ms: Callable[[], int], versions: Versions, capabilities: list[str],
                 on_config: Callable[[Config], None] | None = None, client_id: str | None = None,
                 max_inflight: int = MAX_INFLIGHT, reconnect_max_s: int = RECONNECT_MAX_S) -> None:
        try:
            self._topics = {kind: str(DeskTopic(site, desk, kind)) for kind in DeskKind}
        except SchemaError as exc:
            raise ConfigError(f"desk: {exc}") from None
        if not isinstance(boot, int) or isinstance(boot, bool) or not 0 <= boot <= 2**53:
            raise ValueError(f"boot must be an integer in 0..2**53, got {boot!r}")
        if max_inflight < 1:
            raise ValueError(f"max_inflight must be >= 1, got {max_inflight!r}")
        self.site, self.desk, self.boot = site, desk, boot
        self.settings = settings
        self.spool = spool
        self.now_ms = now_ms
        self.versions = versions
        self.capabilities = list(capabilities)
        self.on_config = on_config
        self.max_inflight = max_inflight
        self.last_error: str | None = None
        """The last connection problem (refused, lost), for status displays; None once connected."""

        self._seq = 0
        self._lock = threading.RLock()  # seq, spool order, state fields; never taken in on_publish
        self._state: dict[str, Any] = {"audio": PartStatus.NONE, "headset": PartStatus.NONE,
                                       "headset_id": None, "config_hash": None, "firmware": versions.firmware}
        self._published_state: dict[str, Any] | None = None
        self._connected = threading.Event()
        self._wake = threading.Event()
        self._stopping = threading.Event()
        self._acks: queue.SimpleQueue[int] = queue.SimpleQueue()
        self._configs: queue.SimpleQueue[bytes] = queue.SimpleQueue()
        self._flushed = threading.Condition()
        self._inflight: dict[int, int] = {}  # mid -> spool row id (worker thread only)
        self._last_sent_id = 0  # worker thread only
        self._last_config: bytes | None = None
        self._worker: threading.Thread | None = None
        self._started = False
        self._stopped = False

        self.client: mqtt.Client = settings.new_client(client_id or f"hsc-desk-{site}-{desk}")
        self.client.max_inflight_messages_set(max_inflight + 16)  # + state messages; our own window is the bound
        self.client.max_queued_messages_set(0)
        self.client.reconnect_delay_set(RECONNECT_MIN_S, max(RECONNECT_MIN_S, reconnect_max_s))
        lost = self._state_message(DeskStatus.LOST)
        self.client.will_set(self._topics[DeskKind.STATE], encode(lost), qos=QOS["state"], retain=True)
        self.client.on_connect = self._on_connect
        self.client.on_disconnect = self._on_disconnect
        self.client.on_publish = self._on_publish
        self.client.on_message = self._on_message

    # --- life cycle -----------------------------------------------------------------------------

    def start(self) -> None:
        """Connect in the background (retrying with backoff until the broker answers) and start the worker."""
        if self._started:
            return
        self._started = True
        try:
            self.client.connect_async(self.settings.host, self.settings.port, keepalive=self.settings.keepalive_s)
        except (OSError, ValueError) as exc:
            raise ConfigError(f"mqtt.url: cannot use {self.settings.url}: {exc}") from None
        self.client.loop_start()
        self._worker = threading.Thread(target=self._run, name="desk-publisher", daemon=True)
        self._worker.start()

    def stop(self, timeout_s: float = 5.0) -> None:
        """Flush the spool (up to ``timeout_s``), publish the retained ``offline`` state, disconnect."""
        if self._stopped:
            return
        self._stopped = True
        deadline = time.monotonic() + timeout_s
        if self._started:
            if self._connected.is_set():
                self.flush(max(0.0, deadline - time.monotonic()))
            try:
                if self._connected.is_set():
                    with self._lock:
                        info = self._publish_state(DeskStatus.OFFLINE)
                    if info is not None:
                        info.wait_for_publish(max(0.1, deadline - time.monotonic()))
            except (RuntimeError, ValueError) as exc:
                log.warning("could not publish the offline state: %s", exc)
            self._stopping.set()
            self._wake.set()
            self.client.disconnect()
            self.client.loop_stop()
            if self._worker is not None:
                self._worker.join(max(1.0, deadline - time.monotonic()))
        self._connected.clear()

    def __enter__(self) -> DeskPublisher:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def connected(self) -> bool:
        return self._connected.is_set()

    @property
    def seq(self) -> int:
        """The last sequence number used in this boot (0 before the first message)."""
        with self._lock:
            return self._seq

    @property
    def inflight(self) -> int:
        """Spooled rows published and not yet acknowledged."""
        return len(self._inflight)

    # --- publishing -----------------------------------------------------------------------------

    def _next(self) -> dict[str, Any]:
        """The header of the next desk payload (call with the lock held)."""
        self._seq += 1
        return {"site": self.site, "desk": self.desk, "boot": self.boot, "seq": self._seq, "ts": int(self.now_ms())}

    def _state_message(self, status: DeskStatus, *, check_only: bool = False) -> State:
        with self._lock:
            s = self._state
            versions = msgspec.structs.replace(self.versions, firmware=s["firmware"])
            header = self._next() if not check_only else {"site": self.site, "desk": self.desk, "boot": self.boot,
                                                           "seq": self._seq, "ts": 0}
            return State(**header, status=status, versions=versions,
                         capabilities=self.capabilities,  # type: ignore[arg-type]
                         config_hash=s["config_hash"], audio=s["audio"], headset=s["headset"],
                         headset_id=s["headset_id"])

    def _publish_state(self, status: DeskStatus) -> mqtt.MQTTMessageInfo | None:
        with self._lock:
            payload = encode(self._state_message(status))
            self._published_state = dict(self._state)
            return self.client.publish(self._topics[DeskKind.STATE], payload, qos=QOS["state"],
                                       retain=RETAIN["state"])

    def set_state(self, *, audio: PartStatus, headset: PartStatus, headset_id: str | None,
                  config_hash: str | None, firmware: str | None) -> None:
        """Update the parts' status; the retained ``state`` is republished when it changed (and connected)."""
        new = {"audio": PartStatus(audio), "headset": PartStatus(headset), "headset_id": headset_id,
               "config_hash": config_hash, "firmware": firmware}
        with self._lock:
            old = self._state
            self._state = new
            try:
                encode(self._state_message(DeskStatus.ONLINE, check_only=True))  # validate before publishing
            except (SchemaError, msgspec.ValidationError) as exc:
                self._state = old
                raise ValueError(f"invalid desk state: {exc}") from None
            if new != self._published_state and self._connected.is_set() and not self._stopped:
                self._publish_state(DeskStatus.ONLINE)

    def metrics(self, **fields: Any) -> None:
        """Publish a ``Metrics`` snapshot (QoS 0, not spooled); dropped while offline."""
        if not self._connected.is_set():
            return
        with self._lock:
            payload = encode(Metrics(**self._next(), **fields))
            self.client.publish(self._topics[DeskKind.METRICS], payload, qos=QOS["metrics"],
                                retain=RETAIN["metrics"])

    def event(self, kind: EventKind, **fields: Any) -> None:
        """Spool an ``Event`` (durable when this returns) and publish it (QoS 1)."""
        with self._lock:
            self._spool_message(DeskKind.EVENT, Event(**self._next(), kind=EventKind(kind), **fields))

    def minute(self, **fields: Any) -> None:
        """Spool a ``Minute`` rollup (durable when this returns) and publish it (QoS 1)."""
        with self._lock:
            self._spool_message(DeskKind.MINUTE, Minute(**self._next(), **fields))

    def _spool_message(self, kind: DeskKind, message: Event | Minute) -> None:
        payload = encode(message)
        self.spool.append(self._topics[kind], payload, QOS[kind.value])
        self._wake.set()

    def _report_dropped(self) -> None:
        """While connected: one ``spool_dropped`` event for the rows the bound evicted (outages evict quietly)."""

        def make(count: int) -> tuple[str, bytes, int]:
            log.warning("the spool was full: %d oldest rows were dropped", count)
            note = Event(**self._next(), kind=EventKind.SPOOL_DROPPED, count=count,
                         message=f"spool bound of {self.spool.max_rows} rows reached")
            return self._topics[DeskKind.EVENT], encode(note), QOS["event"]

        with self._lock:
            self.spool.report_dropped(make)

    def flush(self, timeout_s: float) -> bool:
        """Wait until the spool is empty (every row PUBACKed); False on timeout."""
        deadline = time.monotonic() + timeout_s
        self._wake.set()
        with self._flushed:
            while len(self.spool) > 0:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    return False
                self._flushed.wait(min(remaining, 0.2))
        return True

    # --- the worker -----------------------------------------------------------------------------

    def _run(self) -> None:
        while not self._stopping.is_set():
            self._wake.wait(0.5)
            self._wake.clear()
            try:
                self._handle_configs()
                self._handle_acks()
                if self._connected.is_set():
                    self._report_dropped()
                    self._send_more()
            except SpoolError as exc:
                log.error("spool: %s", exc)
                self._stopping.wait(1.0)
            except Exception:  # the worker must survive anything; log with the traceback
                log.exception("desk publisher worker")
                self._stopping.wait(1.0)
            with self._flushed:
                self._flushed.notify_all()

    def _handle_acks(self) -> None:
        done: list[int] = []
        while True:
            try:
                mid = self._acks.get_nowait()
            except queue.Empty:
                break
            row_id = self._inflight.pop(mid, None)
            if row_id is not None:
                done.append(row_id)
        if done:
            self.spool.delete_many(done)
            self._wake.set()  # room for more

    def _send_more(self) -> None:
        room = self.max_inflight - len(self._inflight)
        if room <= 0:
            return
        for row in self.spool.pending(limit=room, after_id=self._last_sent_id):
            info = self.client.publish(row.topic, row.payload, qos=row.qos, retain=False)
            if info.rc not in (mqtt.MQTT_ERR_SUCCESS, mqtt.MQTT_ERR_NO_CONN):
                log.warning("paho refused to queue spool row %d: %s", row.id, mqtt.error_string(info.rc))
                break
            # NO_CONN: paho keeps the QoS 1 message and sends it on reconnect; the PUBACK still arrives
            self._inflight[info.mid] = row.id
            self._last_sent_id = row.id

    def _handle_configs(self) -> None:
        while True:
            try:
                payload = self._configs.get_nowait()
            except queue.Empty:
                return
            if payload == self._last_config:
                continue  # the retained config again after a reconnect
            self._last_config = payload
            try:
                _, message = decode_topic(self._topics[DeskKind.CONFIG], payload)
            except SchemaError as exc:
                log.warning("refused the config on %s: %s", self._topics[DeskKind.CONFIG], exc)
                self.event(EventKind.CONFIG_REJECTED, message=_short(f"invalid config payload: {exc}"))
                continue
            if not isinstance(message, Config) or self.on_config is None:
                continue
            try:
                self.on_config(message)
            except Exception as exc:
                log.exception("on_config failed")
                self.event(EventKind.CONFIG_REJECTED, message=_short(f"config not applied: {exc}"))

    # --- paho callbacks (network thread): set flags, enqueue, never raise ----------------------

    def _on_connect(self, client: mqtt.Client, userdata: Any, flags: Any, reason: Any, props: Any) -> None:
        try:
            if reason.is_failure:
                self.last_error = f"the broker {self.settings.url} refused the connection: {reason}"
                log.error("%s", self.last_error)
                return
            self.last_error = None
            # the birth goes out before anything the worker sends once it sees "connected"
            self._publish_state(DeskStatus.ONLINE)
            self._connected.set()
            client.subscribe(self._topics[DeskKind.CONFIG], qos=QOS["config"])
            log.info("connected to %s", self.settings.url)
            self._wake.set()
        except Exception:
            log.exception("on_connect")

    def _on_disconnect(self, client: mqtt.Client, userdata: Any, flags: Any, reason: Any, props: Any) -> None:
        try:
            was_connected = self._connected.is_set()
            self._connected.clear()
            if was_connected and reason.is_failure and not self._stopped:  # keep a refusal's reason
                self.last_error = f"lost the broker {self.settings.url}: {reason}"
                log.warning("%s; reconnecting", self.last_error)
        except Exception:
            log.exception("on_disconnect")

    def _on_publish(self, client: mqtt.Client, userdata: Any, mid: int, reason: Any, props: Any) -> None:
        # called with paho's out-message mutex held: only enqueue
        try:
            self._acks.put(mid)
            self._wake.set()
        except Exception:
            log.exception("on_publish")

    def _on_message(self, client: mqtt.Client, userdata: Any, msg: mqtt.MQTTMessage) -> None:
        try:
            if msg.topic == self._topics[DeskKind.CONFIG] and msg.payload:
                self._configs.put(bytes(msg.payload))
                self._wake.set()
        except Exception:
            log.exception("on_message")


def _short(text: str, limit: int = 200) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"
