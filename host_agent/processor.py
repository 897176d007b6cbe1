"""The host's processing step: validate a raw MQTT message, apply it, store it, evaluate alerts.

Synchronous and single-threaded (the service runs it on one thread); every raw message gets exactly
one outcome and is counted. A bad payload is counted by reason and logged at most once a minute per
topic; nothing here raises for bad input.

The hot path (a metrics message of a known desk, thousands a second) parses each topic string once
(:class:`_Route` keeps the parsed :class:`DeskTopic` and, once a message on it was valid, its desk),
decodes with the one decoder of the topic's kind (``mqtt_schema.codec.decode_desk``), and marks a
desk for alert evaluation only when something a rule reads changed (``DeskState.rules_changed``);
the service evaluates the whole floor every ``FULL_EVAL_EVERY_S`` for what time alone changes.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable

from host_agent.alerts import AlertEngine, Change
from host_agent.clock import Clock
from host_agent.config import HostConfig
from host_agent.floor import DeskState, Floor
from host_agent.rules import DESK_RULES
from host_agent.stats import INTERNAL_ERROR, Stats
from host_agent.storage import DeskRecord, HistoryStore
from mqtt_schema import (
    QOS,
    AlertLogTopic,
    AlertTopic,
    Call,
    DeskStatus,
    DeskTopic,
    Event,
    Metrics,
    Minute,
    SchemaError,
    State,
    decode_topic,
    encode,
    parse_topic,
)
from mqtt_schema.codec import decode_desk

log = logging.getLogger("host_agent.ingest")
alert_log = logging.getLogger("host_agent.alerts")
"""Every alert transition at INFO (``headset-host run -v`` shows them)."""
LOG_EVERY_S = 60.0
WINDOW_RESTORE_MS = 10 * 60_000
"""On restart, rule windows are seeded from the minute rollups of the last 10 min."""
CALL_RESTORE_MS = 6 * 3_600_000
"""Calls are stored by their start: the windows are seeded from those started in the last 6 h that
ended within the last 10 min."""
Publish = Callable[[str, bytes | None, int, bool], None]
"""(topic, payload or None to clear, qos, retain)."""
QUIET_RULES = frozenset({"volume", "pace", "mic-position", "posture", "break-overrun", "desk-offline",
                         "slow-answer", "late-greeting", "monotone"})
"""The desk rules whose inputs :meth:`Processor._mark_quiet` knows (see there)."""
ROUTES_MAX = 200_000
"""Parsed topic strings kept (about 300 B each); the cache starts over beyond it."""


class _Route:
    """What the processor keeps per desk topic string."""

    __slots__ = ("desk", "topic")

    def __init__(self, topic: DeskTopic) -> None:
        self.topic = topic
        self.desk: DeskState | None = None
        """The floor's desk, set by the first valid message on the topic (never before: a topic
        that only ever carried garbage adds no desk)."""


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
        self._routes: dict[str, _Route] = {}
        self._quiet_known = set(DESK_RULES) <= QUIET_RULES

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
            for c in self.store.calls(site, now - CALL_RESTORE_MS, now):
                if c.end_ts >= now - WINDOW_RESTORE_MS:
                    self.floor.count_call(c, now)

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
        stats = self.stats
        stats.messages_in += 1
        try:
            outcome = self._handle(topic, payload)
        except SchemaError as exc:
            outcome = exc.reason
            stats.rejected[exc.reason] += 1
            self._log_reject(topic, exc)
        except Exception as exc:  # a bug or a storage failure: count it, keep ingesting
            outcome = INTERNAL_ERROR
            stats.rejected[outcome] += 1
            log.exception("failed to process a message on %.200s: %s", topic, exc)
        if recv_ns is not None:
            stats.latency.observe_ns(time.monotonic_ns() - recv_ns)
        return outcome

    def _handle(self, topic: str, payload: bytes) -> str:
        route = self._routes.get(topic)
        if route is None:
            parsed = parse_topic(topic)
            if not isinstance(parsed, DeskTopic):  # alerts (ours, or another host's): validated, not applied
                decode_topic(topic, payload)
                self.stats.ignored[type(parsed).__name__] += 1
                return "ignored"
            if len(self._routes) >= ROUTES_MAX:
                self._routes.clear()
            route = self._routes[topic] = _Route(parsed)
        msg = decode_desk(route.topic, payload)
        now = self.clock.now_ms()
        d = route.desk
        if d is None:
            if not isinstance(msg, (Metrics, State, Event, Minute, Call)):
                self.stats.ignored[route.topic.kind.value] += 1
                return "ignored"
            d = route.desk = self.floor.desk(msg.site, msg.desk)
        if isinstance(msg, Metrics):
            stats = self.stats
            if not self.floor.apply_metrics(msg, now, d):
                stats.superseded["metrics"] += 1
                return "superseded"
            stats.accepted["metrics"] += 1
            if d.rules_changed:  # else nothing a rule reads changed: the periodic full evaluation will do
                d.rules_changed = False
                self.dirty.add(d)
            if d.changed:
                d.changed = False
                self.version += 1
            return "accepted"
        if isinstance(msg, State):
            return self._outcome("state", self.floor.apply_state(msg, now), d, "superseded")
        if isinstance(msg, Event):
            new = self.floor.apply_event(msg, now) and self.store.add_event(msg)
            return self._outcome("event", new, d, "duplicate")
        if isinstance(msg, Minute):
            new = self.floor.accept_minute(msg) and self.store.add_minute(msg)
            return self._outcome("minute", new, d, "duplicate")
        if isinstance(msg, Call):
            new = self.floor.accept_call(msg) and self.store.add_call(msg)
            if new:
                self.floor.count_call(msg, now)
            return self._outcome("call", new, d, "duplicate")
        self.stats.ignored[route.topic.kind.value] += 1
        return "ignored"

    def _outcome(self, kind: str, applied: bool, d: DeskState, otherwise: str) -> str:
        if not applied:
            (self.stats.duplicates if otherwise == "duplicate" else self.stats.superseded)[kind] += 1
            return otherwise
        self.stats.accepted[kind] += 1
        d.rules_changed = False
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
        todo = [d for d in desks if not d.quiet or d in self.dirty] if everything else desks
        changes = self.engine.evaluate(self.floor, now, desks=todo, sites=None if everything else ())
        self.dirty.clear()
        self._mark_quiet(todo, now)
        for c in changes:
            self._emit(c)
        self._save_desks(desks, now)
        if changes:
            self.version += 1
        return changes

    def _mark_quiet(self, evaluated: list[DeskState], now_ms: int) -> None:
        """After an evaluation: mark the desks that time alone cannot give an alert, which the periodic
        evaluation of the whole floor then skips (most of a floor, every 0.5 s).

        A desk is quiet when, after being evaluated, it has no alert (pending or firing) in the engine,
        no break timer, is neither lost nor offline, and no window seconds lie ahead of the clock. Then
        every desk rule was inactive (an active one leaves a pending or firing alert; a muted one needs
        a lost/offline desk or a firing cause, itself an alert of the desk), and stays so as time
        passes: window totals only shrink without an ``add``, ``break-overrun`` needs a break timer,
        ``desk-offline`` (with shifts too) a lost or offline desk. Whatever a message changes of this
        (window seconds, wear, status) marks the desk dirty, and the next evaluation decides again.
        Only for the rules this reasoning covers (:data:`QUIET_RULES`); with any other, never quiet.
        """
        if not self._quiet_known:
            return
        alerted = {(a.site, a.desk) for a in self.engine.alerts.values()}
        lost, offline = DeskStatus.LOST, DeskStatus.OFFLINE
        for d in evaluated:
            d.quiet = (d.off_since_ms is None and d.status is not lost and d.status is not offline
                       and (d.site, d.desk) not in alerted and not d.window.holds_after(now_ms))

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
