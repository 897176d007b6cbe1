"""The alert engine: pure logic on the floor state and a time you pass in (ms).

Prometheus-like: a rule's condition must hold ``for_s`` (pending) before the alert fires; a firing
alert stays ``keep_firing_for_s`` after its condition clears, then resolves. There is one alert per
(site, desk, rule). A desk that is offline or lost mutes (inhibits) its other alerts: they are frozen,
their retained messages cleared, until it is back. Silences (site, desk, rule, until) mark matching
alerts ``silenced``. Each call to :meth:`AlertEngine.evaluate` returns the transitions it made, each
with the :class:`AlertLog` to publish and the retained :class:`Alert` (or None to clear it).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, replace

from host_agent.config import HostConfig, RuleSpec
from host_agent.floor import DeskState, Floor
from host_agent.rules import (
    DESK_RULES,
    FLOOR_DESK,
    INHIBITING_RULE,
    SITE_RULES,
    Condition,
    is_inhibited,
    noisy_floor,
    site_noise,
)
from mqtt_schema import Alert, AlertLog, AlertTransition, Severity

PENDING, FIRING = "pending", "firing"
AlertKey = tuple[str, str, str]


@dataclass(frozen=True, slots=True)
class Silence:
    """Mute alerts of ``rule`` on ``desk`` of ``site`` until ``until_ms``; ``*`` matches any desk/rule."""

    site: str
    desk: str
    rule: str
    until_ms: int
    created_ms: int = 0
    by: str = ""

    def matches(self, site: str, desk: str, rule: str, now_ms: int) -> bool:
        return (now_ms < self.until_ms and self.site == site and self.desk in ("*", desk)
                and self.rule in ("*", rule))


@dataclass(slots=True)
class ActiveAlert:
    """One pending or firing alert. Times in host-clock ms."""

    site: str
    desk: str
    rule: str
    state: str
    since_ms: int
    last_true_ms: int
    severity: Severity = Severity.WARNING
    fired_ms: int | None = None
    level: int | None = None
    value: float | None = None
    summary: str = ""
    silenced: bool = False
    inhibited: bool = False

    @property
    def visible(self) -> bool:
        return self.state == FIRING and not self.inhibited

    def to_alert(self, now_ms: int) -> Alert:
        return Alert(site=self.site, desk=self.desk, rule=self.rule, severity=self.severity, level=self.level,
                     since_ts=self.since_ms, ts=now_ms, value=self.value, summary=self.summary[:200],
                     silenced=self.silenced)


@dataclass(frozen=True, slots=True)
class Change:
    """One transition: log it; if ``retain`` is set, publish ``alert`` retained (None clears it)."""

    log: AlertLog
    alert: Alert | None
    retain: bool
    snapshot: ActiveAlert


class AlertEngine:
    """Evaluates the rules of a :class:`HostConfig` over a :class:`Floor`. Not thread-safe."""

    def __init__(self, config: HostConfig) -> None:
        self.config = config
        self.alerts: dict[AlertKey, ActiveAlert] = {}
        self.silences: list[Silence] = []
        self.fired: Counter[str] = Counter()
        self.resolved: Counter[str] = Counter()
        rules = [(name, fn, config.rules[name]) for name, fn in DESK_RULES.items() if config.rules[name].enabled]
        # causes first, so that an effect firing in the same pass is already muted
        self._desk_rules = sorted(rules, key=lambda r: not r[2].inhibits)
        self._muters: dict[str, list[str]] = {}
        for name, _, spec in self._desk_rules:
            for muted in spec.inhibits:
                self._muters.setdefault(muted, []).append(name)
        self._site_rules = [config.rules[name] for name in SITE_RULES if config.rules[name].enabled]

    # --- inputs ----------------------------------------------------------------------------------

    def restore(self, alerts: Iterable[ActiveAlert]) -> None:
        """Take back alerts saved before a restart, without logging them again."""
        for a in alerts:
            self.alerts[(a.site, a.desk, a.rule)] = replace(a)

    def set_silences(self, silences: Iterable[Silence]) -> None:
        self.silences = list(silences)

    def silenced(self, site: str, desk: str, rule: str, now_ms: int) -> bool:
        return any(s.matches(site, desk, rule, now_ms) for s in self.silences)

    # --- evaluation ------------------------------------------------------------------------------

    def evaluate(self, floor: Floor, now_ms: int, desks: Iterable[DeskState] | None = None,
                 sites: Iterable[str] | None = None) -> list[Change]:
        """Evaluate ``desks`` (default: all) and site rules of ``sites`` (default: all) at ``now_ms``."""
        out: list[Change] = []
        for d in (floor.desks.values() if desks is None else desks):
            self._evaluate_desk(d, now_ms, out)
        if self._site_rules:
            site_list = sorted({s for s, _ in floor.desks}) if sites is None else sites
            for site in site_list:
                median = site_noise(floor, site, now_ms, self.config.stale_after_s)
                for spec in self._site_rules:
                    self._step(site, FLOOR_DESK, spec, noisy_floor(spec, median), now_ms, out)
        return out

    def muted_by(self, d: DeskState, rule: str) -> str | None:
        """Why ``rule`` is inhibited on desk ``d`` now (the desk is offline or lost, or a firing cause
        such as mic-position for volume), or None."""
        if rule != INHIBITING_RULE and is_inhibited(d):
            return f"desk {d.status.value if d.status else '?'}"
        for cause in self._muters.get(rule, ()):
            c = self.alerts.get((d.site, d.desk, cause))
            if c is not None and c.state == FIRING and not c.inhibited:
                return f"{cause} firing"
        return None

    def _evaluate_desk(self, d: DeskState, now_ms: int, out: list[Change]) -> None:
        for name, fn, spec in self._desk_rules:
            key = (d.site, d.desk, name)
            why = self.muted_by(d, name)
            if why is not None:
                a = self.alerts.get(key)
                if a is not None and not a.inhibited:
                    a.inhibited = True
                    if a.state == FIRING:
                        out.append(self._change(a, AlertTransition.SILENCED, now_ms, f"inhibited: {why}"))
                continue
            a = self.alerts.get(key)
            if a is not None and a.inhibited:
                a.inhibited = False
                if a.state == FIRING:
                    out.append(self._change(a, AlertTransition.UNSILENCED, now_ms, "no longer inhibited"))
            self._step(d.site, d.desk, spec, fn(spec, d, now_ms, self.config), now_ms, out)

    def _step(self, site: str, desk: str, spec: RuleSpec, cond: Condition, now_ms: int,
              out: list[Change]) -> None:
        key = (site, desk, spec.rule)
        a = self.alerts.get(key)
        if cond.active:
            if a is None:
                a = ActiveAlert(site, desk, spec.rule, PENDING, since_ms=now_ms, last_true_ms=now_ms,
                                severity=cond.severity or spec.severity, level=cond.level, value=cond.value, summary=cond.summary,
                                silenced=self.silenced(site, desk, spec.rule, now_ms))
                self.alerts[key] = a
                if spec.for_s > 0:
                    out.append(self._change(a, AlertTransition.PENDING, now_ms))
            old_level = a.level
            a.last_true_ms, a.value, a.level, a.summary = now_ms, cond.value, cond.level, cond.summary
            if a.state == PENDING:
                if now_ms - a.since_ms >= spec.for_s * 1000:
                    a.state, a.fired_ms = FIRING, now_ms
                    a.silenced = self.silenced(site, desk, spec.rule, now_ms)
                    self.fired[spec.rule] += 1
                    out.append(self._change(a, AlertTransition.FIRING, now_ms))
            elif a.level != old_level:
                out.append(self._change(a, AlertTransition.LEVEL_CHANGED, now_ms))
        elif a is not None:
            if a.state == PENDING:
                del self.alerts[key]
                out.append(self._change(a, AlertTransition.RESOLVED, now_ms, "condition cleared before firing",
                                        value=cond.value))
                return
            if now_ms - a.last_true_ms >= spec.keep_firing_for_s * 1000:
                del self.alerts[key]
                self.resolved[spec.rule] += 1
                out.append(self._change(a, AlertTransition.RESOLVED, now_ms, "resolved", value=cond.value))
                return
        if a is not None and a.state == FIRING:
            silenced = self.silenced(site, desk, spec.rule, now_ms)
            if silenced != a.silenced:
                a.silenced = silenced
                out.append(self._change(a, AlertTransition.SILENCED if silenced else AlertTransition.UNSILENCED,
                                        now_ms, "silenced by a supervisor" if silenced else "silence ended"))

    def _change(self, a: ActiveAlert, transition: AlertTransition, now_ms: int, summary: str | None = None,
                value: float | None = None) -> Change:
        log = AlertLog(site=a.site, desk=a.desk, rule=a.rule, transition=transition, severity=a.severity,
                       level=a.level, ts=now_ms, value=a.value if value is None else value,
                       summary=(a.summary if summary is None else summary)[:200])
        if a.state == PENDING:  # pending alerts are never retained
            return Change(log, None, False, replace(a))
        if transition is AlertTransition.RESOLVED or not a.visible:
            return Change(log, None, True, replace(a))
        return Change(log, a.to_alert(now_ms), True, replace(a))

    # --- views -----------------------------------------------------------------------------------

    def firing(self) -> list[ActiveAlert]:
        return [a for a in self.alerts.values() if a.state == FIRING]

    def firing_by_rule(self) -> Counter[str]:
        return Counter(a.rule for a in self.alerts.values() if a.state == FIRING and not a.inhibited)
