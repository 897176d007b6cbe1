"""The host's processing step: validate a raw MQTT message, apply it, store it, evaluate alerts.

Synchronous and single-threaded (the service runs it on one thread); every raw message gets exactly
one outcome and is counted. A bad payload is counted by reason and logged at most once a minute per
topic; nothing here raises for bad input.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable

from host_agent.alerts import AlertEngine, Change
from host_agent.clock import Clock
from host_agent.config import HostConfig
from host_agent.floor import DeskState, Floor
from host_agent.stats import INTERNAL_ERROR, Stats
from host_agent.storage import DeskRecord, HistoryStore
from mqtt_schema import (
    QOS,
    AlertLogTopic,
    AlertTopic,
    DeskStatus,
    Event,
    Metrics,
    Minute,
    SchemaError,
    State,
    decode_topic,
    encode,
)

log = logging.getLogger("host_agent.ingest")
alert_log = logging.getLogger("host_agent.alerts")
"""Every alert transition at INFO (``headset-host run -v`` shows them)."""
LOG_EVERY_S = 60.0
WINDOW_RESTORE_MS = 10 * 60_000
"""On restart, rule windows are seeded from the minute rollups of the last 10 min."""
Publish = Callable[[str, bytes | None, int, bool], None]
"""(topic, payload or None to clear, qos, retain)."""


class Processor:
    """Floor state, alert engine and history behind one ``handle()`` per message."""

    def __init__(self, config: HostConfig, clock: Clock, store: HistoryStore, publish: Publish | None = None) -> None:
        self.config = config
        self.clock = clock
        self.store = store
        self.publish = publish
        self.floor = Floor()
        self.engine = AlertEngine(config)
        self.stats = Stats()
        self.dirty: set[DeskState] = set()
        self.version = 0
        """Bumped when anything a dashboard shows changed."""
        self._last_log: dict[str, float] = {}
        self.receivers: list[Callable[[Change], object]] = []
        """Called with every alert transition after it is stored (e.g. ``WebhookReceiver.notify``);
        each must return at once. An exception is logged, never raised."""
        self._saved: dict[tuple[str, str], tuple[object, ...]] = {}

    # --- restart ------------------------------------------------------------------------------------

    def restore(self) -> None:
        """Rebuild desks and active alerts from the database (retained state then refreshes desks)."""
        for r in self.store.desks():
            d = self.floor.desk(r.site, r.desk)
            d.status = DeskStatus(r.status) if r.status else None
            d.status_since_ms = r.status_since_ms or 0
            d.worn, d.off_since_ms = r.worn, r.off_since_ms
            self._saved[(r.site, r.desk)] = self._record_key(d)
        self.engine.restore(self.store.active_alerts())
        for a in self.engine.alerts.values():  # muted before the restart: still muted, not logged again
            known = self.floor.desks.get((a.site, a.desk))
            a.inhibited = known is not None and self.engine.muted_by(known, a.rule) is not None
        now = self.clock.now_ms()
        self.engine.set_silences(self.store.silences(now))
        sites = set(self.config.sites) or {site for site, _ in self.floor.desks}
        for site in sorted(sites):
            for m in self.store.minutes(site, now - WINDOW_RESTORE_MS, now):
                self.floor.seed_window(m)

    def reconcile_retained(self, retained: dict[str, bytes]) -> tuple[int, int]:
        """Make the broker's retained alerts match the engine: clear stale ones, publish missing ones.

        Returns (cleared, republished). Stale ones come from alerts resolved while a clear was lost,
        or from a history database that was replaced.
        """
        if self.publish is None:
            return 0, 0
        now = self.clock.now_ms()
        visible = {str(AlertTopic(a.site, a.desk, a.rule)): a for a in self.engine.alerts.values() if a.visible}
        cleared = republished = 0
        for topic, payload in retained.items():
            if payload and topic not in visible:
                self.publish(topic, None, QOS["alert"], True)
                cleared += 1
        for topic, a in visible.items():
            if topic not in retained:
                self.publish(topic, encode(a.to_alert(now)), QOS["alert"], True)
                republished += 1
        if cleared or republished:
            log.info("retained alerts reconciled: %d stale cleared, %d republished", cleared, republished)
        return cleared, republished

    # --- one message --------------------------------------------------------------------------------

    def handle(self, topic: str, payload: bytes, recv_ns: int | None = None) -> str:
        """Process one raw message; return its outcome (``accepted``, ``duplicate``, ... or a reject reason)."""
        self.stats.messages_in += 1
        try:
            outcome = self._handle(topic, payload)
        except SchemaError as exc:
            outcome = exc.reason
            self.stats.rejected[exc.reason] += 1
            self._log_reject(topic, exc)
        except Exception as exc:  # a bug or a storage failure: count it, keep ingesting
            outcome = INTERNAL_ERROR
            self.stats.rejected[outcome] += 1
            log.exception("failed to process a message on %.200s: %s", topic, exc)
        if recv_ns is not None:
            self.stats.latency.observe((time.monotonic_ns() - recv_ns) / 1e9)
        return outcome

    def _handle(self, topic: str, payload: bytes) -> str:
        parsed, msg = decode_topic(topic, payload)
        if isinstance(parsed, (AlertTopic, AlertLogTopic)):
            self.stats.ignored[type(parsed).__name__] += 1
            return "ignored"
        now = self.clock.now_ms()
        if isinstance(msg, Metrics):
            return self._outcome("metrics", self.floor.apply_metrics(msg, now), msg, "superseded")
        if isinstance(msg, State):
            return self._outcome("state", self.floor.apply_state(msg, now), msg, "superseded")
        if isinstance(msg, Event):
            new = self.floor.apply_event(msg, now) and self.store.add_event(msg)
            return self._outcome("event", new, msg, "duplicate")
        if isinstance(msg, Minute):
            new = self.floor.accept_minute(msg) and self.store.add_minute(msg)
            return self._outcome("minute", new, msg, "duplicate")
        self.stats.ignored[parsed.kind.value if hasattr(parsed, "kind") else "other"] += 1
        return "ignored"

    def _outcome(self, kind: str, applied: bool, msg: State | Metrics | Event | Minute, otherwise: str) -> str:
        if not applied:
            (self.stats.duplicates if otherwise == "duplicate" else self.stats.superseded)[kind] += 1
            return otherwise
        self.stats.accepted[kind] += 1
        d = self.floor.desk(msg.site, msg.desk)
        self.dirty.add(d)
        if d.changed:
            d.changed = False
            self.version += 1
        return "accepted"

    def _log_reject(self, topic: str, exc: SchemaError) -> None:
        now = time.monotonic()
        if now - self._last_log.get(topic, -LOG_EVERY_S) >= LOG_EVERY_S:
            if len(self._last_log) > 10_000:
                self._last_log.clear()
            self._last_log[topic] = now
            log.warning("rejected a message on %.200s (%s): %s", topic, exc.reason, str(exc)[:300])

    # --- alerts ---------------------------------------------------------------------------------------

    def evaluate(self, everything: bool = False) -> list[Change]:
        """Evaluate alert rules for the desks touched since last time (or all), publish and store changes."""
        now = self.clock.now_ms()
        desks = list(self.floor.desks.values()) if everything else list(self.dirty)
        changes = self.engine.evaluate(self.floor, now, desks=desks, sites=None if everything else ())
        self.dirty.clear()
        for c in changes:
            self._emit(c)
        self._save_desks(desks, now)
        if changes:
            self.version += 1
        return changes

    def _emit(self, c: Change) -> None:
        a = c.snapshot
        t = c.log
        alert_log.info("alert %s: %s/%s %s severity=%s%s%s: %s", t.transition.value, t.site, t.desk, t.rule,
                       t.severity.value, "" if t.level is None else f" level={t.level}",
                       "" if t.value is None else f" value={t.value:g}", t.summary)
        self.store.add_alert_log(c.log)
        current = self.engine.alerts.get((a.site, a.desk, a.rule))
        if current is not None:
            self.store.save_alert(current)
        else:
            self.store.delete_alert(a.site, a.desk, a.rule)
        for receiver in self.receivers:
            try:
                receiver(c)
            except Exception as exc:  # a receiver's bug must not stop ingest
                alert_log.exception("alert receiver failed: %s", exc)
        if self.publish is None:
            return
        self.publish(str(AlertLogTopic(a.site)), encode(c.log), QOS["alert-log"], False)
        if c.retain:
            topic = str(AlertTopic(a.site, a.desk, a.rule))
            self.publish(topic, encode(c.alert) if c.alert is not None else None, QOS["alert"], True)
            self.stats.alerts_published += 1

    @staticmethod
    def _record_key(d: DeskState) -> tuple[object, ...]:
        return (d.status, d.status_since_ms, d.worn, d.off_since_ms)

    def _save_desks(self, desks: list[DeskState], now_ms: int) -> None:
        for d in desks:
            key = (d.site, d.desk)
            rk = self._record_key(d)
            if self._saved.get(key) != rk:
                self._saved[key] = rk
                self.store.save_desk(DeskRecord(d.site, d.desk, d.status.value if d.status else None,
                                                d.status_since_ms, d.worn, d.off_since_ms), now_ms)

    def refresh_silences(self) -> None:
        self.engine.set_silences(self.store.silences(self.clock.now_ms()))

    # --- views ----------------------------------------------------------------------------------------

    def desks_by_state(self) -> dict[str, int]:
        now = self.clock.now_ms()
        out: dict[str, int] = {s: 0 for s in ("online", "offline", "lost", "stale", "unknown")}
        for d in self.floor.desks.values():
            out[d.view_status(now, self.config.stale_after_s)] += 1
        return out
