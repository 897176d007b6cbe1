"""``HostService``: the whole host in-process (MQTT ingest, processing thread, history, dashboard).

    service = HostService(config, clock).start()
    print(service.dashboard_url)
    ...
    print(service.summary())
    service.stop()

Threads: paho's network thread (only enqueues), one processing thread (decode, state, alerts,
history, publish, acknowledge), the dashboard's HTTP threads (read snapshots; actions go through the
queue), and after a reconnect a short-lived thread that reads the broker's retained alerts.

Durability: a QoS 1 message is acknowledged to the broker only after the transaction holding it
(its history row, or its counted rejection) is committed: see ``host_agent.mqtt_link`` for the
protocol and the broker settings the guarantee needs. While acks are pending the processing thread
commits at the end of every batch, i.e. as soon as the queue is drained or ``BATCH_MAX`` messages
were handled (so under load one commit and one batch of acks covers many messages); otherwise it
commits every ``COMMIT_EVERY_S``.

Retained alerts: at start, and again after every reconnect (a broker restarted without persistence
has forgotten them), the broker's retained alerts are read and made to match the engine: missing
firing alerts are published again, stale ones cleared.
"""

from __future__ import annotations

import functools
import logging
import queue
import socket
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future
from dataclasses import dataclass, field
from typing import Any, TypeVar

from host_agent.alerts import Silence
from host_agent.clock import Clock, ScaledClock
from host_agent.config import BrokerConfig, HostConfig
from host_agent.errors import HostError, UsageError
from host_agent.history import HistoryStore, open_store
from host_agent.mqtt_link import Inbound, MqttLink, read_retained
from host_agent.processor import Processor
from host_agent.scheduler import Scheduler
from host_agent.silences import as_json, check_scope, check_span, expired, extended
from host_agent.stats import render_prometheus
from host_agent.webhook import WebhookReceiver
from mqtt_schema import SchemaError, alert_filter, check_id

log = logging.getLogger("host_agent.service")
T = TypeVar("T")

BATCH_MAX = 2000
FULL_EVAL_EVERY_S = 0.5
SILENCE_POLL_S = 2.0
COMMIT_EVERY_S = 0.2
"""Commit period (s) when no QoS 1 acknowledgement waits for a commit."""
SNAPSHOT_EVERY_S = 0.25
SNAPSHOT_IDLE_S = 10.0
"""The periodic snapshot is built only while someone read one within this many seconds (a dashboard
page, an SSE stream, a test); ``snapshot()`` after a pause gets a fresh one built for it."""
PRUNE_EVERY_S = 3600.0
_STOP = object()


@dataclass(frozen=True)
class HostSummary:
    """What a demo prints at the end."""

    messages_in: int
    accepted: dict[str, int]
    rejected: dict[str, int]
    duplicates: dict[str, int]
    fired: dict[str, int]
    resolved: dict[str, int]
    firing_now: dict[str, int]
    desks: dict[str, int] = field(default_factory=dict)


def default_client_id(sites: tuple[str, ...]) -> str:
    host = "".join(c for c in socket.gethostname().lower() if c.isalnum() or c == "-")[:24] or "host"
    return f"headset-host-{host}-{'-'.join(sites)[:40] or 'all'}"


class HostService:
    """The host aggregator, startable in-process. ``start()`` returns self; ``stop()`` is idempotent."""

    def __init__(self, config: HostConfig, clock: Clock | None = None, *, store: HistoryStore | None = None,
                 client_id: str | None = None, connect_timeout_s: float = 10.0) -> None:
        self.config = config
        self.clock: Clock = clock or ScaledClock()
        self._store = store
        self.client_id = client_id or config.broker.client_id or default_client_id(config.sites)
        self.connect_timeout_s = connect_timeout_s
        self.inbox: queue.SimpleQueue[Any] = queue.SimpleQueue()
        self.processor: Processor | None = None
        self.link: MqttLink | None = None
        self.dashboard: Any = None
        self._thread: threading.Thread | None = None
        self._stop = threading.Event()
        self._snapshot: dict[str, Any] = {"desks": [], "alerts": [], "now": 0}
        self._snapshot_version = 0
        self._snapshot_read = time.monotonic()
        self._snapshots_made = 0
        """Snapshots computed (processing thread); ``_snapshot_made`` is the number of the one installed."""
        self._snapshot_made = 0
        self._snapshot_changed = threading.Condition()
        """Notified when a snapshot is installed (and by :meth:`wake_viewers`)."""
        self.error: BaseException | None = None
        self._unacked: list[Inbound] = []
        """Handled since the last commit; acknowledged after the next one (processing thread only)."""
        self._scan_lock = threading.Lock()
        self._scan_again = False
        self._scan_thread: threading.Thread | None = None
        self.webhooks: list[WebhookReceiver] = []
        """``[[receivers.webhook]]``: each gets every alert transition from the processing thread."""

    # --- lifecycle ----------------------------------------------------------------------------------

    def start(self) -> HostService:
        store = self._store or open_store(self.config.db, sites=self.config.sites)  # shared history: its sites
        self._store = store
        self.processor = Processor(self.config, self.clock, store, publish=self._publish)
        self.webhooks = [WebhookReceiver(w).start() for w in self.config.webhooks]
        self.processor.receivers.extend(w.notify for w in self.webhooks)
        self.processor.restore()
        self._build_snapshot()
        self._thread = threading.Thread(target=self._run, name="host-processing", daemon=True)
        self._thread.start()
        self.link = MqttLink(self.config.broker, self.config.sites, self.inbox, self.client_id,
                             on_reconnect=self._rescan_retained)
        try:
            self.link.start(self.connect_timeout_s)
            retained = read_retained(self._broker_now(), self._alert_filters(), self._scan_client_id)
            self.call(functools.partial(self._reconcile, retained))
            if self.config.dashboard.enabled:
                from host_agent.dashboard import Dashboard

                self.dashboard = Dashboard(self, self.config.dashboard).start()
                for w in self.webhooks:
                    w.external_url = self.dashboard.url
        except BaseException:
            self.stop()
            raise
        return self

    def stop(self) -> None:
        if self.dashboard is not None:
            self.dashboard.stop()
            self.dashboard = None
        if self.link is not None:
            if self._thread is not None and self._thread.is_alive():
                try:  # commit and acknowledge what arrived, so that the broker need not redeliver it
                    self.call(self._commit, timeout_s=10)
                except Exception as exc:
                    log.warning("could not commit before disconnecting: %s", exc)
            self.link.stop()
            self.link = None
        scan = self._scan_thread
        if scan is not None:
            scan.join(timeout=15)
        if self._thread is not None:
            self.inbox.put(_STOP)  # after every message already received
            self._thread.join(timeout=30)
            self._thread = None
        for w in self.webhooks:  # after the last evaluation: its transitions get their chance
            w.close()
        if self._store is not None:
            self._store.close()
            self._store = None

    def __enter__(self) -> HostService:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def dashboard_url(self) -> str | None:
        return self.dashboard.url if self.dashboard is not None else None

    # --- the processing thread ------------------------------------------------------------------------

    def _publish(self, topic: str, payload: bytes | None, qos: int, retain: bool) -> None:
        if self.link is not None:
            self.link.publish(topic, payload, qos, retain)

    def _run(self) -> None:
        p = self.processor
        assert p is not None and self._store is not None
        store = self._store
        jobs = Scheduler(time.monotonic(), {"silences": SILENCE_POLL_S, "full-eval": FULL_EVAL_EVERY_S,
                                            "commit": COMMIT_EVERY_S, "prune": PRUNE_EVERY_S,
                                            "snapshot": SNAPSHOT_EVERY_S}, due_at_start=("prune",))
        snap_version = -1
        carry: Any = None
        while not self._stop.is_set():
            item, carry = carry, None
            if item is None:
                try:
                    item = self.inbox.get(timeout=0.05)
                except queue.Empty:
                    item = None
            try:
                n = 0
                while item is not None:
                    if n == BATCH_MAX:  # evaluate and commit now and then under load; keep the order
                        carry = item
                        break
                    if item is _STOP:
                        self._stop.set()
                        break
                    if isinstance(item, Inbound):
                        p.handle(item.topic, item.payload, item.recv_ns)
                        if item.qos:
                            self._unacked.append(item)
                    else:
                        item()
                    n += 1
                    try:
                        item = self.inbox.get_nowait()
                    except queue.Empty:
                        item = None
                now = time.monotonic()
                if jobs.due("silences", now):
                    p.refresh_silences()
                if jobs.due("full-eval", now):
                    p.evaluate(everything=True)
                elif p.dirty:
                    p.evaluate()
                if jobs.due("commit", now) or self._unacked:  # acks wait for the commit: never later
                    jobs.ran("commit", now)
                    self._commit()
                if jobs.due("prune", now):
                    store.prune(self.clock.now_ms() - int(self.config.retention_days * 86_400_000))
                since_snap = jobs.since("snapshot", now)
                if ((p.version != snap_version and since_snap >= SNAPSHOT_EVERY_S) or since_snap >= 1.0) \
                        and now - self._snapshot_read < SNAPSHOT_IDLE_S:  # nobody looking: no 6,000-desk copies
                    jobs.ran("snapshot", now)
                    snap_version = p.version
                    self._build_snapshot()
            except Exception as exc:  # keep ingesting; a storage error is logged and retried
                self.error = exc
                log.exception("processing failed: %s", exc)
                time.sleep(0.5)
        try:  # everything received before stop() is processed and stored
            p.evaluate(everything=True)
            self._commit()
        except Exception as exc:
            self.error = exc
            log.exception("final commit failed: %s", exc)

    def _commit(self) -> None:
        """Commit the history, then acknowledge the QoS 1 messages it holds (processing thread only).

        If the commit raises, nothing is acknowledged: the acks wait for the next successful commit.
        """
        assert self._store is not None
        self._store.commit()
        unacked, self._unacked = self._unacked, []
        link = self.link
        if link is not None and unacked:
            link.ack(unacked)

    # --- retained alerts after a reconnect ----------------------------------------------------------

    @property
    def _scan_client_id(self) -> str:
        return f"{self.client_id}-scan"[:64]

    def _broker_now(self) -> BrokerConfig:
        """The broker config with the node the link is on first (``[broker] urls``)."""
        link = self.link
        return self.config.broker.starting_at(link.current_url if link is not None else None)

    def _alert_filters(self) -> list[str]:
        return [alert_filter(site) for site in self.config.sites or ("+",)]

    def _rescan_retained(self) -> None:
        """On paho's network thread after a reconnect: read the retained alerts on another thread."""
        with self._scan_lock:
            if self._scan_thread is not None and self._scan_thread.is_alive():
                self._scan_again = True  # a reconnect during a scan: scan once more after it
                return
            self._scan_thread = threading.Thread(target=self._scan_retained, name="host-retained-scan",
                                                 daemon=True)
            self._scan_thread.start()

    def _scan_retained(self) -> None:
        while True:
            try:
                retained = read_retained(self._broker_now(), self._alert_filters(), self._scan_client_id)
            except HostError as exc:  # the broker went again: the next reconnect scans again
                log.warning("could not read the retained alerts after a reconnect: %s", exc)
            else:
                self.inbox.put(functools.partial(self._reconcile, retained))
            with self._scan_lock:
                if not self._scan_again or self._stop.is_set():
                    self._scan_thread = None
                    return
                self._scan_again = False

    def _reconcile(self, retained: dict[str, bytes]) -> None:
        if self.processor is not None:
            self.processor.reconcile_retained(retained)

    def call(self, fn: Callable[[], T], timeout_s: float = 10.0) -> T:
        """Run ``fn`` on the processing thread (after everything queued before it); return its result."""
        fut: Future[T] = Future()

        def task() -> None:
            try:
                fut.set_result(fn())
            except BaseException as exc:  # handed back to the caller
                fut.set_exception(exc)

        self.inbox.put(task)
        return fut.result(timeout_s)

    def sync(self, timeout_s: float = 10.0, evaluate: bool = True) -> None:
        """Wait until every message received so far is processed, alerts evaluated (by default), history committed."""
        assert self.processor is not None
        p = self.processor
        assert self._store is not None

        def done() -> None:
            if evaluate:
                p.evaluate(everything=True)
            self._commit()
            self._build_snapshot()

        self.call(done, timeout_s)

    # --- actions ------------------------------------------------------------------------------------

    def silence(self, site: str, desk: str, rule: str, for_s: float, by: str = "") -> Silence:
        """Silence ``rule`` (or ``*``) on ``desk`` (or ``*``) of ``site`` for ``for_s`` seconds of host time."""
        try:
            check_id(site, "site")
            if desk != "*":
                check_id(desk, "desk")
            if rule != "*":
                check_id(rule, "rule")
        except SchemaError as exc:
            raise UsageError(str(exc)) from None
        if rule != "*" and rule not in self.config.rules:
            raise UsageError(f"unknown rule {rule!r} (known: {', '.join(self.config.rules)})")
        if not 0 < for_s <= 7 * 86400:
            raise UsageError(f"silence duration {for_s} s must be between 0 and 7 days")
        p, store = self.processor, self._store
        if p is None or store is None:
            raise HostError("the host is not running")

        def add() -> Silence:
            now = self.clock.now_ms()
            s = Silence(site, desk, rule, now + int(for_s * 1000), now, by[:64])
            store.add_silence(s)
            self._commit()
            p.refresh_silences()
            p.evaluate(everything=True)
            self._build_snapshot()
            return s

        return self.call(add)

    # --- silences by id, alert history (the dashboard's panels) ---------------------------------------

    def add_silence(self, site: str, desk: str, rule: str, for_s: float, *, by: str = "",
                    everything: bool = False) -> dict[str, Any]:
        """:meth:`silence` with the checks of ``headset-host silence`` (see :mod:`host_agent.silences`):
        a known site and desk, and ``everything`` for a whole site. Returns the silence with its id."""
        check_span(for_s, "the silence duration")
        p, store = self.processor, self._store
        if p is None or store is None:
            raise HostError("the host is not running")

        def add() -> dict[str, Any]:
            check_scope(site, desk, rule, everything=everything, rules=self.config.rules,
                        known_sites=set(self.config.sites) | {s for s, _ in p.floor.desks} | set(store.sites()),
                        known_desks=set(p.floor.desks) | {(r.site, r.desk) for r in store.desks()})
            now = self.clock.now_ms()
            s = Silence(site, desk, rule, now + int(for_s * 1000), now, by[:64])
            sid = store.add_silence(s)
            self._silences_changed()
            return as_json(sid, s, now)

        return self.call(add)

    def silences(self) -> list[dict[str, Any]]:
        """The running silences with their ids, the soonest to end first."""
        store = self._store
        if store is None:
            raise HostError("the host is not running")

        def rows() -> list[dict[str, Any]]:
            now = self.clock.now_ms()
            return [as_json(i, s, now) for i, s in store.silence_rows(now)]

        return self.call(rows)

    def change_silence(self, silence_id: int, extend_s: float | None = None) -> dict[str, Any]:
        """End silence ``silence_id`` now (``extend_s`` None), or move its end ``extend_s`` seconds later."""
        store = self._store
        if store is None:
            raise HostError("the host is not running")

        def change() -> dict[str, Any]:
            now = self.clock.now_ms()
            old = store.silence_by_id(silence_id)
            s = expired(silence_id, old, now) if extend_s is None else extended(silence_id, old, now, extend_s)
            store.set_silence_until(silence_id, s.until_ms)
            self._silences_changed()
            return as_json(silence_id, s, now)

        return self.call(change)

    def _silences_changed(self) -> None:
        """After a silence was written (processing thread): commit, apply, show."""
        assert self.processor is not None
        self._commit()
        self.processor.refresh_silences()
        self.processor.evaluate(everything=True)
        self._build_snapshot()

    def alert_history(self, *, site: str | None = None, desk: str | None = None, rule: str | None = None,
                      limit: int = 50) -> list[dict[str, Any]]:
        """The newest ``limit`` alert transitions (from the history database), newest first."""
        store = self._store
        if store is None:
            raise HostError("the host is not running")
        rows = self.call(lambda: store.recent_alert_logs(site=site, desk=desk, rule=rule, limit=limit))
        return [{"id": i, "site": a.site, "desk": a.desk, "rule": a.rule, "transition": a.transition.value,
                 "ts": a.ts, "severity": a.severity.value, "level": a.level, "value": a.value, "summary": a.summary}
                for i, a in rows]

    # --- views ----------------------------------------------------------------------------------------

    def _build_snapshot(self) -> None:
        made = self._make_snapshot()
        if made is not None:
            self._install_snapshot(*made)

    def _make_snapshot(self) -> tuple[int, dict[str, Any]] | None:
        """(build number, a new snapshot), computed on the processing thread without any lock."""
        p = self.processor
        if p is None:
            return None
        self._snapshots_made += 1
        now = self.clock.now_ms()
        stale = self.config.stale_after_s
        desks = [d.snapshot(now, stale) for d in p.floor.desks.values()]
        desks.sort(key=lambda d: (str(d["site"]), str(d["desk"])))
        alerts = [
            {"site": a.site, "desk": a.desk, "rule": a.rule, "state": a.state, "severity": a.severity.value,
             "level": a.level, "since_ms": a.since_ms, "value": a.value, "summary": a.summary,
             "silenced": a.silenced, "inhibited": a.inhibited}
            for a in p.engine.alerts.values()
        ]
        alerts.sort(key=lambda a: (a["state"] != "firing", str(a["site"]), str(a["desk"]), str(a["rule"])))
        snap = {"now": now, "desks": desks, "alerts": alerts,
                "sites": sorted({str(d["site"]) for d in desks} | set(self.config.sites)),
                "stats": {"messages_in": p.stats.messages_in, "rejected": p.stats.rejected_total}}
        return self._snapshots_made, snap

    def _install_snapshot(self, made: int, snap: dict[str, Any]) -> None:
        with self._snapshot_changed:
            if made <= self._snapshot_made:
                return  # a newer one was installed meanwhile
            self._snapshot, self._snapshot_made = snap, made
            self._snapshot_version += 1
            self._snapshot_changed.notify_all()

    def snapshot(self) -> tuple[int, dict[str, Any]]:
        """(version, the latest dashboard snapshot)."""
        now = time.monotonic()
        idle = now - self._snapshot_read >= SNAPSHOT_IDLE_S
        self._snapshot_read = now
        if idle and self._thread is not None and self._thread.is_alive() \
                and threading.current_thread() is not self._thread:
            try:  # the periodic builds had stopped: have one made now; installed here, because the
                # caller may hold _snapshot_changed (wait_for_change does) and the processing thread would wait
                made = self.call(self._make_snapshot)
                if made is not None:
                    self._install_snapshot(*made)
            except Exception as exc:  # a busy or stopping host: the last one will do
                log.debug("snapshot on demand failed: %s", exc)
        with self._snapshot_changed:
            return self._snapshot_version, self._snapshot

    def wait_for_change(self, seen: int, timeout_s: float) -> tuple[int, dict[str, Any]]:
        """:class:`~host_agent.floor_view.FloorView`: the first snapshot whose version is not ``seen``, or
        the current one after ``timeout_s`` seconds (sooner after :meth:`wake_viewers`)."""
        with self._snapshot_changed:
            version, snap = self.snapshot()
            if version == seen:
                self._snapshot_changed.wait(timeout_s)
                version, snap = self.snapshot()
        return version, snap

    def wake_viewers(self) -> None:
        """Wake every :meth:`wait_for_change` now."""
        with self._snapshot_changed:
            self._snapshot_changed.notify_all()

    def rule_names(self) -> list[str]:
        """The configured alert rules, by name."""
        return list(self.config.rules)

    def metrics_text(self) -> str:
        """Prometheus text, computed on the processing thread while it runs."""
        p = self.processor
        if p is None:
            return ""
        if self._thread is not None and self._thread.is_alive():
            return self.call(self._metrics_text)
        return self._metrics_text()

    def _metrics_text(self) -> str:
        p = self.processor
        assert p is not None
        return render_prometheus(p.stats, p.desks_by_state(), p.engine.firing_by_rule(), p.engine.fired,
                                 p.engine.resolved, self.config.rules, self.inbox.qsize(), receivers=self.webhooks)

    def summary(self) -> HostSummary:
        p = self.processor
        if p is None:
            raise HostError("the host was never started")
        s = p.stats
        return HostSummary(s.messages_in, dict(s.accepted), dict(s.rejected), dict(s.duplicates),
                           dict(p.engine.fired), dict(p.engine.resolved), dict(p.engine.firing_by_rule()),
                           p.desks_by_state())
