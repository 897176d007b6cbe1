"""The desk agent's MQTT side (paho-mqtt 2.x, callback API version 2, MQTT 3.1.1).

Every topic and payload comes from ``mqtt_schema``. Every desk payload carries ``v``, ``site``, ``desk``,
``boot``, ``seq`` (monotonic per boot, one counter for all kinds) and ``ts`` (ms since the epoch).

- ``state`` (retained, QoS 1): a birth ``online`` on every connect, ``offline`` on a clean stop, and the
  last will ``lost`` (retained, QoS 1) when the broker loses the desk.
- ``metrics`` (QoS 0): published only while connected; a snapshot that may be lost.
- ``event``, ``minute`` and ``call`` (QoS 1): encoded, written to the durable :class:`device.outputs.spool.Spool`, then
  published by a worker thread in spool order with a bounded number in flight. A row is deleted only
  after its PUBACK (paho's ``on_publish`` with the mid). Messages in flight when the connection drops
  are retransmitted by paho on reconnect; after a restart the whole spool is replayed from the oldest
  row. Rows keep their original boot, seq and ts, so the host's dedup on (desk, boot, seq) makes any
  redelivery harmless. When the spool evicted rows, an ``Event(kind=spool_dropped, count=N)`` follows
  once connected (one per batch of losses, never one per evicted row).
- ``config`` (retained, to the desk): subscribed on every connect; a valid new payload is handed to
  ``on_config`` (on the worker thread, so keep it quick); an invalid one is logged and answered with
  an ``Event(kind=config_rejected)``.
- ``cti`` (to the desk, schema 1.1): subscribed on every connect when ``on_cti`` is given (the ``mqtt``
  call source), which counts as connected (:attr:`DeskPublisher.cti_ready`) only once the broker has
  granted that subscription (its SUBACK): a bridge's message sent between the CONNACK and the SUBACK
  would not be delivered; each valid payload goes to ``on_cti`` on the worker thread, in arrival order. An invalid
  one is logged (the first of each reason at WARNING, the rest at DEBUG), counted in ``cti_rejected``
  and dropped: a bridge's mistake is no event of the desk.

A clustered broker (``[mqtt] urls``, :class:`mqtt_schema.broker.BrokerRotation`): the first connect goes
to ``urls[0]``, every later attempt (after a failed connect or a lost connection) to the next url, round
robin, with the same backoff between attempts; ``current_url`` is the broker in use, and every log line
about the connection names it. After a failover the spool's unacknowledged rows go to the new broker
(paho retransmits those in flight; the rest follow in spool order), so nothing the old broker had not
PUBACKed is lost; what it had PUBACKed is the cluster's to keep (see ``docs/scaling.md``).

An unreachable broker is retried by paho with backoff (``RECONNECT_MIN_S`` .. ``reconnect_max_s``). It
is logged as a WARNING naming the broker url and the cause (connection refused, DNS failure, TLS
failure, timed out, not authorised): on the first failure, then again after 1, 2, 4 ... s of failures,
at most once per ``WARN_MAX_INTERVAL_S`` (a different cause is logged at once). Connecting again after
failures is logged at INFO with the number of failed attempts and the outage's length. ``stop()``
never waits for a connect that cannot succeed: the network thread is given at most
``STOP_OFFLINE_WAIT_S`` when not connected, and the spool keeps unsent rows for the next start.

Threads: paho's network thread runs the callbacks, which only set flags and enqueue (they never raise
and never touch the spool); one worker thread ("desk-publisher") sends spooled rows, deletes acknowledged
ones and handles config. The public methods are thread-safe.
"""

from __future__ import annotations

import logging
import queue
import socket
import ssl
import sys
import threading
import time
from collections.abc import Callable
from typing import Any

import msgspec
import paho.mqtt.client as mqtt

from device.config.mqtt_settings import MqttSettings, check_aimable
from device.errors import ConfigError
from device.logs import kv
from device.outputs.spool import Spool, SpoolError
from mqtt_schema import (
    QOS,
    RETAIN,
    Call,
    Config,
    Cti,
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
from mqtt_schema.broker import BrokerRotation, aim

log = logging.getLogger("device.publisher")

MAX_INFLIGHT = 32
"""Spooled rows in flight (published, not yet PUBACKed) at most."""
RECONNECT_MIN_S = 1
"""Seconds paho waits before the first reconnect attempt (doubling up to ``reconnect_max_s``)."""
RECONNECT_MAX_S = 30
WARN_MIN_INTERVAL_S = 1.0
"""Seconds after a "broker unreachable" warning before the next one (doubling per warning)."""
WARN_MAX_INTERVAL_S = 60.0
"""Seconds between "broker unreachable" warnings at most, for a long outage with one cause."""
STOP_OFFLINE_WAIT_S = 0.5
"""Seconds ``stop()`` waits for paho's network thread when not connected (it may be blocked in a
TCP connect or a DNS lookup; it is a daemon thread and is left behind)."""


def describe_connect_error(exc: BaseException | None, host: str, port: int) -> str:
    """A short cause of a failed TCP/TLS connect, for site IT: refused, DNS, TLS, timed out, other."""
    if exc is None:
        return "connection failed"
    if isinstance(exc, socket.gaierror):
        return f"DNS lookup of {host!r} failed: {exc.strerror or exc}"
    if isinstance(exc, ConnectionRefusedError):
        return f"connection refused: nothing listens on {host} port {port}"
    if isinstance(exc, ssl.SSLCertVerificationError):
        return f"TLS failure: the broker's certificate was refused: {exc.verify_message or exc}"
    if isinstance(exc, ssl.SSLError):
        return f"TLS failure: {exc.reason or exc}"
    if isinstance(exc, TimeoutError):
        return f"connection to {host} port {port} timed out"
    if isinstance(exc, OSError) and exc.strerror:
        return f"cannot connect to {host} port {port}: {exc.strerror}"
    return f"cannot connect to {host} port {port}: {type(exc).__name__}: {exc}"


def describe_refusal(reason: Any) -> str:
    """A CONNACK refusal (paho ``ReasonCode``), with a hint for the usual ones."""
    text = str(reason)
    low = text.lower()
    if "authori" in low or "user name or password" in low or "bad username" in low:
        return (f"the broker refused the connection: not authorised ({text}); check mqtt.username and "
                "mqtt.password, or the client certificate")
    if "identifier" in low:
        return f"the broker refused the connection: the client id was rejected ({text})"
    return f"the broker refused the connection: {text}"


class ConnectWarnings:
    """When to log "broker unreachable": the first failure, then after 1, 2, 4 ... s, at most once per
    ``max_interval_s`` while the cause stays the same; a new cause at once. Not thread-safe (paho's
    network thread is its only caller). Times in seconds of ``monotonic``."""

    def __init__(self, *, min_interval_s: float = WARN_MIN_INTERVAL_S, max_interval_s: float = WARN_MAX_INTERVAL_S,
                 monotonic: Callable[[], float] = time.monotonic) -> None:
        self.min_interval_s = min_interval_s
        self.max_interval_s = max_interval_s
        self.monotonic = monotonic
        self.failures = 0
        """Failed attempts since the last successful connect."""
        self._since_s: float | None = None
        self._next_s = 0.0
        self._interval_s = min_interval_s
        self._cause: str | None = None
        self._unlogged = 0

    def failed(self, cause: str, same_as: str | None = None) -> int | None:
        """Count a failed attempt; the number of attempts the warning covers, or None: do not log now.

        ``same_as``: what counts as the same cause (default: ``cause``); with a list of brokers, the cause
        without the broker's name, so that rotating through dead brokers is one cause, not a new one each time.
        """
        now = self.monotonic()
        self.failures += 1
        self._unlogged += 1
        if self._since_s is None:
            self._since_s = now
        key = cause if same_as is None else same_as
        if key == self._cause and now < self._next_s:
            return None
        self._cause = key
        self._next_s = now + self._interval_s
        self._interval_s = min(self.max_interval_s, self._interval_s * 2)
        covered, self._unlogged = self._unlogged, 0
        return covered

    def connected(self) -> tuple[int, float] | None:
        """Reset; (failed attempts, seconds since the first) when there were failures, else None."""
        if self._since_s is None:
            return None
        out = (self.failures, self.monotonic() - self._since_s)
        self.failures, self._since_s, self._cause, self._unlogged = 0, None, None, 0
        self._interval_s, self._next_s = self.min_interval_s, 0.0
        return out


class DeskPublisher:
    """Publishes one desk's state, metrics, events and minute rollups; receives its config."""

    def __init__(self, *, site: str, desk: str, settings: MqttSettings, spool: Spool, boot: int,
                 now_ms: Callable[[], int], versions: Versions, capabilities: list[str],
                 on_config: Callable[[Config], None] | None = None, client_id: str | None = None,
                 max_inflight: int = MAX_INFLIGHT, reconnect_max_s: int = RECONNECT_MAX_S,
                 on_cti: Callable[[Cti], object] | None = None) -> None:
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
        self.on_cti = on_cti
        self.cti_rejected: dict[str, int] = {}
        """Refused CTI payloads by reason (``SchemaError.reason``)."""
        self.max_inflight = max_inflight
        self.last_error: str | None = None
        """The last connection problem (refused, lost), for status displays; None once connected."""
        self.warnings = ConnectWarnings()
        self.rotation = BrokerRotation(settings.broker_urls)
        """Which broker of ``settings.broker_urls`` the client is on or trying (paho's network thread)."""

        self._seq = 0
        self._lock = threading.RLock()  # seq, spool order, state fields; never taken in on_publish
        self._state: dict[str, Any] = {"audio": PartStatus.NONE, "headset": PartStatus.NONE,
                                       "headset_id": None, "config_hash": None, "firmware": versions.firmware}
        self._published_state: dict[str, Any] | None = None
        self._connected = threading.Event()
        self._cti_granted = threading.Event()  # the broker's SUBACK for the cti topic on this connection
        self._cti_mid: int | None = None
        self._wake = threading.Event()
        self._stopping = threading.Event()
        self._acks: queue.SimpleQueue[int] = queue.SimpleQueue()
        self._configs: queue.SimpleQueue[bytes] = queue.SimpleQueue()
        self._ctis: queue.SimpleQueue[bytes] = queue.SimpleQueue()
        self._flushed = threading.Condition()
        self._inflight: dict[int, int] = {}  # mid -> spool row id (worker thread only)
        self._last_sent_id = 0  # worker thread only
        self._last_config: bytes | None = None
        self._spool_errors = 0  # SpoolErrors the worker met (a full disk: acknowledged rows cannot be deleted)
        self._worker: threading.Thread | None = None
        self._started = False
        self._stopped = False

        self.client: mqtt.Client = settings.new_client(client_id or f"hsc-desk-{site}-{desk}")
        self.client.max_inflight_messages_set(max_inflight + 16)  # + state messages; our own window is the bound
        self.client.max_queued_messages_set(0)
        self.client.reconnect_delay_set(RECONNECT_MIN_S, max(RECONNECT_MIN_S, reconnect_max_s))
        lost = self._state_message(DeskStatus.LOST)
        self.client.will_set(self._topics[DeskKind.STATE], encode(lost), qos=QOS["state"], retain=True)
        check_aimable(self.client)
        self.client.on_pre_connect = self._on_pre_connect
        self.client.on_connect = self._on_connect
        self.client.on_connect_fail = self._on_connect_fail
        self.client.on_disconnect = self._on_disconnect
        self.client.on_publish = self._on_publish
        self.client.on_message = self._on_message
        self.client.on_subscribe = self._on_subscribe

    # --- life cycle -----------------------------------------------------------------------------

    def start(self) -> None:
        """Connect in the background (retrying with backoff until the broker answers) and start the worker."""
        if self._started:
            return
        self._started = True
        try:
            self.client.connect_async(self.settings.host, self.settings.port, keepalive=self.settings.keepalive_s)
        except (OSError, ValueError) as exc:
            raise ConfigError(f"mqtt.url: cannot use {self.current_url}: {exc}") from None
        self.client.loop_start()
        self._worker = threading.Thread(target=self._run, name="desk-publisher", daemon=True)
        self._worker.start()

    def stop(self, timeout_s: float = 5.0) -> bool:
        """Flush the spool (up to ``timeout_s`` s), publish the retained ``offline`` state, disconnect.

        While connected this takes up to ``timeout_s`` s; when not connected it neither flushes nor
        waits for a connect (about ``STOP_OFFLINE_WAIT_S`` s): unsent rows stay in the spool for the next
        start. Returns True when ``offline`` was published and acknowledged, False otherwise (idempotent:
        False on a second call).
        """
        if self._stopped:
            return False
        self._stopped = True
        deadline = time.monotonic() + timeout_s
        offline = False
        if self._started:
            if self._connected.is_set():
                self.flush(max(0.0, deadline - time.monotonic()))
            try:
                if self._connected.is_set():
                    with self._lock:
                        info = self._publish_state(DeskStatus.OFFLINE)
                    if info is not None:
                        info.wait_for_publish(max(0.1, deadline - time.monotonic()))
                        offline = info.is_published()
            except (RuntimeError, ValueError) as exc:
                log.warning("could not publish the offline state: %s", exc)
            if not offline:
                log.warning("the offline state was not published", extra=kv(broker=self.current_url,
                                                                           error=self.last_error))
            connected = self._connected.is_set()
            self._stopping.set()
            self._wake.set()
            self.client.disconnect()
            self._stop_network(max(0.1, deadline - time.monotonic()) if connected else STOP_OFFLINE_WAIT_S)
            if self._worker is not None:
                self._worker.join(max(0.5, deadline - time.monotonic()) if connected else STOP_OFFLINE_WAIT_S)
        self._connected.clear()
        return offline

    def _stop_network(self, timeout_s: float) -> None:
        """Stop paho's network thread, waiting at most ``timeout_s`` s for it.

        Without a connection the thread may be blocked in a TCP connect (paho's 5 s connect timeout) or
        a DNS lookup; it is a daemon thread that ends by itself once that returns, so it is left behind
        rather than hold up the stop.
        """
        stopper = threading.Thread(target=self.client.loop_stop, name="desk-publisher-stop", daemon=True)
        stopper.start()
        stopper.join(timeout_s)
        if stopper.is_alive():
            log.info("the MQTT network thread is still busy connecting; not waiting for it",
                     extra=kv(broker=self.current_url, waited_s=round(timeout_s, 2)))

    def __enter__(self) -> DeskPublisher:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def connected(self) -> bool:
        return self._connected.is_set()

    @property
    def cti_ready(self) -> bool:
        """Connected, and the broker has granted the ``cti`` subscription (SUBACK): a bridge's message
        is delivered from now on. False without ``on_cti``."""
        return self._connected.is_set() and self._cti_granted.is_set()

    @property
    def current_url(self) -> str:
        """The broker the publisher is connected to, or trying next (one of ``settings.broker_urls``)."""
        return self.rotation.current

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

    def event(self, kind: EventKind, **fields: Any) -> int:
        """Spool an ``Event`` (durable when this returns) and publish it (QoS 1); return its seq.

        Raises :class:`SpoolError` when the spool cannot store it (the seq is then used by nothing).
        """
        with self._lock:
            return self._spool_message(DeskKind.EVENT, Event(**self._next(), kind=EventKind(kind), **fields))

    def minute(self, **fields: Any) -> int:
        """Spool a ``Minute`` rollup (durable when this returns) and publish it (QoS 1); return its seq.

        Raises :class:`SpoolError` when the spool cannot store it.
        """
        with self._lock:
            return self._spool_message(DeskKind.MINUTE, Minute(**self._next(), **fields))

    def call(self, **fields: Any) -> int:
        """Spool a ``Call`` summary (durable when this returns) and publish it (QoS 1); return its seq.

        Raises :class:`SpoolError` when the spool cannot store it, :class:`SchemaError` for a bad field.
        """
        with self._lock:
            return self._spool_message(DeskKind.CALL, Call(**self._next(), **fields))

    def _spool_message(self, kind: DeskKind, message: Event | Minute | Call) -> int:
        payload = encode(message)
        self.spool.append(self._topics[kind], payload, QOS[kind.value])
        self._wake.set()
        return message.seq

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
        """Wait up to ``timeout_s`` s until the spool is empty (every row PUBACKed and deleted).

        False on timeout, or at once when the worker meets a spool error meanwhile (a full disk: the
        rows stay, and are redelivered with the same (boot, seq) at the next start).
        """
        deadline = time.monotonic() + timeout_s
        errors = self._spool_errors
        self._wake.set()
        with self._flushed:
            while len(self.spool) > 0:
                remaining = deadline - time.monotonic()
                if remaining <= 0 or self._spool_errors != errors:
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
                self._handle_ctis()
                self._handle_acks()
                if self._connected.is_set():
                    self._report_dropped()
                    self._send_more()
            except SpoolError as exc:
                self._spool_errors += 1
                log.error("spool: %s", exc)
                with self._flushed:
                    self._flushed.notify_all()
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

    def _handle_ctis(self) -> None:
        topic = self._topics[DeskKind.CTI]
        while True:
            try:
                payload = self._ctis.get_nowait()
            except queue.Empty:
                return
            try:
                _, message = decode_topic(topic, payload)
            except SchemaError as exc:
                first = exc.reason not in self.cti_rejected
                self.cti_rejected[exc.reason] = self.cti_rejected.get(exc.reason, 0) + 1
                log.log(logging.WARNING if first else logging.DEBUG, "refused a CTI message on %s: %s", topic,
                        _short(str(exc)), extra=kv(reason=exc.reason, field=exc.field))
                continue
            if isinstance(message, Cti) and self.on_cti is not None:
                try:
                    self.on_cti(message)
                except Exception:
                    log.exception("on_cti failed")

    # --- paho callbacks (network thread): set flags, enqueue, never raise ----------------------

    def _connect_failed(self, cause: str, same_as: str | None = None) -> None:
        """Record a failed connect attempt; log it when :class:`ConnectWarnings` says so."""
        url = self.current_url
        self.last_error = f"the broker {url}: {cause}"
        covered = self.warnings.failed(cause, same_as)
        if covered is not None:
            more = f"; trying {self.rotation.following} next" if len(self.rotation.urls) > 1 else "; retrying"
            log.warning("cannot reach the MQTT broker %s: %s%s", url, cause, more,
                        extra=kv(broker=url, error=cause, attempts=self.warnings.failures,
                                 attempts_since_last_warning=covered))

    def _on_pre_connect(self, client: mqtt.Client, userdata: Any) -> None:
        # paho calls this before every connect attempt (the first too), on its network thread
        try:
            url, moved = self.rotation.next_attempt()
            if moved:
                aim(client, *MqttSettings.endpoint(url))
                log.log(logging.INFO if self.warnings.failures == 0 else logging.DEBUG,
                        "trying the MQTT broker %s (%d of %d)", url, self.rotation.index + 1,
                        len(self.rotation.urls), extra=kv(broker=url))
        except Exception:
            log.exception("on_pre_connect")

    def _on_connect_fail(self, client: mqtt.Client, userdata: Any) -> None:
        # paho calls this inside its ``except OSError`` around the connect: the exception is the current one
        try:
            exc = sys.exc_info()[1]
            host, port = MqttSettings.endpoint(self.current_url)
            same = describe_connect_error(exc, "*", 0) if len(self.rotation.urls) > 1 else None
            self._connect_failed(describe_connect_error(exc, host, port), same)
        except Exception:
            log.exception("on_connect_fail")

    def _on_connect(self, client: mqtt.Client, userdata: Any, flags: Any, reason: Any, props: Any) -> None:
        try:
            if reason.is_failure:
                self._connect_failed(describe_refusal(reason))
                return
            self.last_error = None
            # the birth goes out before anything the worker sends once it sees "connected"
            self._publish_state(DeskStatus.ONLINE)
            self._connected.set()
            client.subscribe(self._topics[DeskKind.CONFIG], qos=QOS["config"])
            if self.on_cti is not None:
                self._cti_granted.clear()
                self._cti_mid = client.subscribe(self._topics[DeskKind.CTI], qos=QOS["cti"])[1]
            outage = self.warnings.connected()
            url = self.current_url
            if outage is None:
                log.info("connected to %s", url, extra=kv(broker=url))
            else:
                log.info("connected to the MQTT broker %s again after %d failed attempts in %.1f s",
                         url, outage[0], outage[1],
                         extra=kv(broker=url, failed_attempts=outage[0], outage_s=round(outage[1], 1)))
            self._wake.set()
        except Exception:
            log.exception("on_connect")

    def _on_subscribe(self, client: mqtt.Client, userdata: Any, mid: int, reasons: Any, props: Any) -> None:
        try:
            if mid == self._cti_mid:
                if any(r.is_failure for r in reasons):
                    log.warning("the broker refused the subscription to %s: %s", self._topics[DeskKind.CTI],
                                ", ".join(str(r) for r in reasons))
                else:
                    self._cti_granted.set()
        except Exception:
            log.exception("on_subscribe")

    def _on_disconnect(self, client: mqtt.Client, userdata: Any, flags: Any, reason: Any, props: Any) -> None:
        try:
            was_connected = self._connected.is_set()
            self._connected.clear()
            self._cti_granted.clear()
            if was_connected and reason.is_failure and not self._stopped:  # keep a refusal's reason
                self.last_error = f"lost the broker {self.current_url}: {reason}"
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
            elif msg.topic == self._topics[DeskKind.CTI] and self.on_cti is not None:
                self._ctis.put(bytes(msg.payload))
                self._wake.set()
        except Exception:
            log.exception("on_message")


def _short(text: str, limit: int = 200) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"
