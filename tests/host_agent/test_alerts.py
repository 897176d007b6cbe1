"""The alert engine on an injected clock: every default rule, break-overrun boundaries, for,
keep_firing_for, inhibition, silences, dedup and restore."""

from __future__ import annotations

from dataclasses import replace

import pytest

from host_agent.alerts import FIRING, PENDING, AlertEngine, Change, Silence
from host_agent.config import DEFAULT_RULES, HostConfig
from host_agent.floor import Floor
from host_agent.rules import overrun_level
from mqtt_schema import AlertTransition as T
from mqtt_schema import Cue, DeskStatus, EventKind, Posture
from tests.host_agent.helpers import T0, Desk

S = 1000  # ms per second


class Sim:
    """A floor, an engine and a manual time (ms); feeds desk messages through the floor's apply path."""

    def __init__(self, config: HostConfig | None = None) -> None:
        self.config = config or HostConfig()
        self.floor = Floor()
        self.engine = AlertEngine(self.config)
        self.now = T0
        self.log: list[Change] = []

    def desk(self, name: str = "d01", site: str = "site1") -> Desk:
        d = Desk(site, name, clock=lambda: self.now)
        self.floor.apply_state(d.state(), self.now)
        return d

    def eval(self) -> list[Change]:
        changes = self.engine.evaluate(self.floor, self.now)
        self.log.extend(changes)
        return changes

    def run(self, seconds: int, step=None) -> None:  # type: ignore[no-untyped-def]
        """Advance ``seconds`` one second at a time, calling ``step()`` then evaluating each second."""
        for _ in range(seconds):
            self.now += S
            if step is not None:
                step()
            self.eval()

    def transitions(self, rule: str, desk: str = "d01") -> list[T]:
        return [c.log.transition for c in self.log if c.log.rule == rule and c.log.desk == desk]

    def state(self, rule: str, desk: str = "d01", site: str = "site1") -> str | None:
        a = self.engine.alerts.get((site, desk, rule))
        return a.state if a else None


@pytest.mark.parametrize(("over_min", "level"), [
    (0.01, 1), (9.99, 1), (10, 2), (14.99, 2), (15, 3), (19.99, 3), (20, 4), (24.99, 4), (25, 5),
    (29.99, 5), (30, 6), (59.99, 6), (60, 7), (200, 7),
])
def test_overrun_level_table(over_min: float, level: int) -> None:
    assert overrun_level(over_min * 60) == level


@pytest.mark.parametrize(("over_s", "level"), [
    (1, 1), (599, 1), (600, 2), (899, 2), (900, 3), (1199, 3), (1200, 4), (1499, 4), (1500, 5),
    (1799, 5), (1800, 6), (3599, 6), (3600, 7),
])
def test_break_overrun_level_at_each_boundary(over_s: int, level: int) -> None:
    sim = Sim()
    d = sim.desk()
    sim.floor.apply_event(d.event(EventKind.DOFFED), sim.now)
    sim.now += 900 * S  # exactly the allowed break: not yet an overrun
    sim.eval()
    assert sim.state("break-overrun") is None
    sim.now += over_s * S
    sim.eval()
    alert = sim.engine.alerts[("site1", "d01", "break-overrun")]
    assert alert.state == FIRING and alert.level == level
    assert alert.value == pytest.approx(over_s)


def test_break_overrun_climbs_levels_and_resolves_when_worn() -> None:
    sim = Sim()
    d = sim.desk()
    sim.floor.apply_event(d.event(EventKind.DOFFED), sim.now)
    sim.run(900 + 31 * 60)  # 31 min over
    firing = [c for c in sim.log if c.log.transition is T.FIRING]
    assert len(firing) == 1 and firing[0].log.level == 1 and firing[0].alert is not None
    levels = [c.log.level for c in sim.log if c.log.transition is T.LEVEL_CHANGED]
    assert levels == [2, 3, 4, 5, 6]
    assert all(c.retain and c.alert is not None and c.alert.level == c.log.level
               for c in sim.log if c.log.transition is T.LEVEL_CHANGED)
    sim.floor.apply_event(d.event(EventKind.WORN), sim.now)
    sim.run(1)
    last = sim.log[-1]
    assert last.log.transition is T.RESOLVED and last.retain and last.alert is None
    assert sim.engine.fired["break-overrun"] == 1 and sim.engine.resolved["break-overrun"] == 1


def test_allowed_break_is_per_site() -> None:
    sim = Sim(HostConfig(allowed_break_by_site={"site2": 1200.0}))
    a, b = sim.desk("d01", "site1"), sim.desk("d02", "site2")
    for d in (a, b):
        sim.floor.apply_event(d.event(EventKind.DOFFED), sim.now)
    sim.now += 1000 * S
    sim.eval()
    assert sim.state("break-overrun", "d01") == FIRING
    assert sim.state("break-overrun", "d02", "site2") is None
    sim.now += 201 * S
    sim.eval()
    assert sim.state("break-overrun", "d02", "site2") == FIRING


def test_doffed_from_metrics_starts_the_break_timer_too() -> None:
    sim = Sim()
    d = sim.desk()
    sim.floor.apply_metrics(d.metrics(worn=False), sim.now)
    sim.now += 901 * S
    sim.eval()
    assert sim.state("break-overrun") == FIRING


@pytest.mark.parametrize(("rule", "cue"), [
    ("volume", Cue.VOLUME_HIGH), ("volume", Cue.VOLUME_LOW), ("pace", Cue.PACE_FAST), ("pace", Cue.PACE_SLOW),
    ("mic-position", Cue.MIC_FAR), ("mic-position", Cue.MIC_CLOSE),
])
def test_speech_cue_rules_fire_after_60_s_of_cued_speech_in_5_min(rule: str, cue: Cue) -> None:
    sim = Sim()
    d = sim.desk()
    # Speech every second, half of each second is speech: 60 s of cued speech takes 120 s.
    sim.run(110, lambda: sim.floor.apply_metrics(d.metrics(speech_s=0.5, cues=(cue,)), sim.now))
    assert sim.state(rule) is None  # 55 s of cued speech
    sim.run(20, lambda: sim.floor.apply_metrics(d.metrics(speech_s=0.5, cues=(cue,)), sim.now))
    assert sim.state(rule) == FIRING
    assert sim.transitions(rule) == [T.FIRING]
    others = {"volume", "pace", "mic-position"} - {rule}
    assert all(sim.state(o) is None for o in others)
    # Silence without the cue: keeps firing while the 5-min window still holds > 60 s, then resolves.
    sim.run(150, lambda: sim.floor.apply_metrics(d.metrics(speech_s=1.0), sim.now))
    assert sim.state(rule) == FIRING
    sim.run(200, lambda: sim.floor.apply_metrics(d.metrics(speech_s=1.0), sim.now))
    assert sim.state(rule) is None and sim.transitions(rule) == [T.FIRING, T.RESOLVED]


def test_cue_while_listening_does_not_count() -> None:
    sim = Sim()
    d = sim.desk()
    sim.run(200, lambda: sim.floor.apply_metrics(d.metrics(speech_s=0.0, cues=(Cue.VOLUME_HIGH,)), sim.now))
    assert sim.state("volume") is None


def test_posture_more_than_5_min_slouched_in_10_min() -> None:
    sim = Sim()
    d = sim.desk()
    slouch = lambda: sim.floor.apply_metrics(d.metrics(posture=Posture.SLOUCHED), sim.now)  # noqa: E731
    upright = lambda: sim.floor.apply_metrics(d.metrics(posture=Posture.UPRIGHT), sim.now)  # noqa: E731
    sim.run(200, slouch)
    sim.run(240, upright)
    sim.run(90, slouch)  # 290 s slouched within 10 min: not yet
    assert sim.state("posture") is None
    sim.run(20, slouch)  # 310 s
    assert sim.state("posture") == FIRING
    sim.run(600, upright)
    assert sim.state("posture") is None
    assert sim.transitions("posture") == [T.FIRING, T.RESOLVED]


def test_posture_does_not_count_when_headset_is_off() -> None:
    sim = Sim()
    d = sim.desk()
    sim.run(400, lambda: sim.floor.apply_metrics(d.metrics(posture=Posture.SLOUCHED, worn=False), sim.now))
    assert sim.state("posture") is None


def test_desk_offline_after_30_s_pending_first() -> None:
    sim = Sim()
    d = sim.desk()
    sim.floor.apply_state(d.state(DeskStatus.LOST), sim.now)
    sim.eval()
    assert sim.state("desk-offline") == PENDING
    sim.run(29)
    assert sim.state("desk-offline") == PENDING
    sim.run(1)
    assert sim.state("desk-offline") == FIRING
    assert sim.engine.alerts[("site1", "d01", "desk-offline")].severity.value == "critical"
    sim.floor.apply_state(d.state(DeskStatus.ONLINE), sim.now)
    sim.run(1)
    assert sim.transitions("desk-offline") == [T.PENDING, T.FIRING, T.RESOLVED]


def test_clean_offline_at_end_of_shift_raises_nothing_and_mutes_the_desk() -> None:
    sim = Sim()
    d = sim.desk()
    sim.floor.apply_event(d.event(EventKind.DOFFED), sim.now)  # headset off, then the agent stops cleanly
    sim.floor.apply_state(d.state(DeskStatus.OFFLINE), sim.now)
    sim.run(4 * 3600)
    assert sim.log == []  # no desk-offline (pending or firing), no break-overrun either
    assert sim.state("desk-offline") is None and sim.state("break-overrun") is None
    # the next shift: the agent starts again, headset on
    sim.floor.apply_state(d.state(DeskStatus.ONLINE), sim.now)
    sim.floor.apply_event(d.event(EventKind.WORN), sim.now)
    sim.run(60)
    assert sim.log == []


def test_lost_after_a_clean_offline_still_raises_desk_offline() -> None:
    sim = Sim()
    d = sim.desk()
    sim.floor.apply_state(d.state(DeskStatus.OFFLINE), sim.now)
    sim.run(60)
    sim.floor.apply_state(d.state(DeskStatus.LOST), sim.now)  # a last will after all: the agent crashed
    sim.run(31)
    assert sim.transitions("desk-offline") == [T.PENDING, T.FIRING]
    assert sim.engine.alerts[("site1", "d01", "desk-offline")].summary == "desk lost for 31 s"


def test_short_outage_resolves_from_pending_without_firing() -> None:
    sim = Sim()
    d = sim.desk()
    sim.floor.apply_state(d.state(DeskStatus.LOST), sim.now)
    sim.run(10)
    sim.floor.apply_state(d.state(DeskStatus.ONLINE), sim.now)
    sim.run(1)
    assert sim.transitions("desk-offline") == [T.PENDING, T.RESOLVED]
    assert sim.engine.fired["desk-offline"] == 0 and sim.engine.resolved["desk-offline"] == 0
    assert not any(c.retain for c in sim.log)


def test_lost_desk_mutes_its_other_alerts_and_unmutes_on_return() -> None:
    sim = Sim()
    d = sim.desk()
    sim.floor.apply_event(d.event(EventKind.DOFFED), sim.now)
    sim.run(1000)
    assert sim.state("break-overrun") == FIRING
    sim.floor.apply_state(d.state(DeskStatus.LOST), sim.now)
    sim.run(1)
    muted = sim.log[-2:]
    assert [c.log.transition for c in muted] == [T.PENDING, T.SILENCED] or \
        [c.log.transition for c in muted] == [T.SILENCED, T.PENDING]
    silenced = next(c for c in muted if c.log.transition is T.SILENCED)
    assert silenced.retain and silenced.alert is None and "inhibited" in silenced.log.summary
    assert sim.engine.firing_by_rule().get("break-overrun", 0) == 0
    sim.run(700)  # the break goes on (13 min over), but no level change is published while lost
    assert T.LEVEL_CHANGED not in sim.transitions("break-overrun")
    sim.floor.apply_state(d.state(DeskStatus.ONLINE), sim.now)
    sim.run(1)
    back = [c for c in sim.log if c.log.rule == "break-overrun"][-2:]
    assert back[0].log.transition is T.UNSILENCED and back[0].alert is not None
    assert back[1].log.transition is T.LEVEL_CHANGED and back[1].log.level == 2  # the timer kept running
    assert sim.engine.fired["break-overrun"] == 1


def test_silence_marks_alert_silenced_then_expires() -> None:
    sim = Sim()
    d = sim.desk()
    sim.floor.apply_event(d.event(EventKind.DOFFED), sim.now)
    sim.run(905)
    sim.engine.set_silences([Silence("site1", "d01", "break-overrun", sim.now + 60 * S)])
    sim.run(1)
    c = sim.log[-1]
    assert c.log.transition is T.SILENCED and c.alert is not None and c.alert.silenced
    sim.run(60)
    c = sim.log[-1]
    assert c.log.transition is T.UNSILENCED and c.alert is not None and not c.alert.silenced


def test_wildcard_silence_covers_a_new_alert_from_its_start() -> None:
    sim = Sim()
    d = sim.desk()
    sim.engine.set_silences([Silence("site1", "*", "*", sim.now + 3600 * S)])
    sim.floor.apply_event(d.event(EventKind.DOFFED), sim.now)
    sim.run(905)
    firing = [c for c in sim.log if c.log.transition is T.FIRING]
    assert len(firing) == 1 and firing[0].alert is not None and firing[0].alert.silenced
    assert T.SILENCED not in sim.transitions("break-overrun")


def test_one_alert_per_desk_and_rule_however_often_evaluated() -> None:
    sim = Sim()
    d = sim.desk()
    sim.floor.apply_event(d.event(EventKind.DOFFED), sim.now)
    sim.now += 1000 * S
    for _ in range(50):
        sim.eval()
    assert sim.transitions("break-overrun") == [T.FIRING]
    assert len([a for a in sim.engine.alerts.values() if a.rule == "break-overrun"]) == 1


def test_noisy_floor_uses_the_site_median_for_10_min() -> None:
    sim = Sim()
    desks = [sim.desk(f"d0{i}") for i in range(3)]

    def feed(noises: list[float]) -> None:
        for d, n in zip(desks, noises, strict=True):
            sim.floor.apply_metrics(d.metrics(noise=n), sim.now)

    sim.run(700, lambda: feed([-70, -70, -30]))  # one loud desk: the median is quiet
    assert sim.state("noisy-floor", "floor") is None
    sim.run(600, lambda: feed([-70, -40, -30]))  # pending from the first of these seconds: 599 s
    assert sim.state("noisy-floor", "floor") == PENDING
    sim.run(1, lambda: feed([-70, -40, -30]))
    alert = sim.engine.alerts[("site1", "floor", "noisy-floor")]
    assert alert.state == FIRING and alert.value == -40.0


def test_keep_firing_for_holds_a_flapping_alert() -> None:
    rules = dict(DEFAULT_RULES)
    rules["desk-offline"] = replace(rules["desk-offline"], for_s=0, keep_firing_for_s=20)
    sim = Sim(HostConfig(rules=rules))
    d = sim.desk()
    for _ in range(3):  # lost 5 s, back 10 s: shorter than keep_firing_for, so one alert
        sim.floor.apply_state(d.state(DeskStatus.LOST), sim.now)
        sim.run(5)
        sim.floor.apply_state(d.state(DeskStatus.ONLINE), sim.now)
        sim.run(10)
    assert sim.transitions("desk-offline") == [T.FIRING]
    sim.run(11)
    assert sim.transitions("desk-offline") == [T.FIRING, T.RESOLVED]


def test_restored_firing_alert_does_not_fire_again() -> None:
    sim = Sim()
    d = sim.desk()
    sim.floor.apply_event(d.event(EventKind.DOFFED), sim.now)
    sim.run(1000)
    saved = list(sim.engine.alerts.values())
    fresh = AlertEngine(sim.config)
    fresh.restore(saved)
    sim.now += S
    assert [c.log.transition for c in fresh.evaluate(sim.floor, sim.now)] == []
    assert fresh.firing()[0].rule == "break-overrun"


def test_disabled_rule_never_fires() -> None:
    rules = dict(DEFAULT_RULES)
    rules["break-overrun"] = replace(rules["break-overrun"], enabled=False)
    sim = Sim(HostConfig(rules=rules))
    d = sim.desk()
    sim.floor.apply_event(d.event(EventKind.DOFFED), sim.now)
    sim.run(2000)
    assert sim.transitions("break-overrun") == []


def test_mic_position_mutes_the_volume_alert_it_causes() -> None:
    """A mic pushed away also makes the voice quiet at the mic: one cause, one alert for the supervisor."""
    sim = Sim()
    d = sim.desk()
    both = (Cue.MIC_FAR, Cue.VOLUME_LOW)
    sim.run(130, lambda: sim.floor.apply_metrics(d.metrics(speech_s=0.5, cues=both), sim.now))
    assert sim.state("mic-position") == FIRING
    assert sim.state("volume") is None and sim.transitions("volume") == []
    # The mic is put back but the agent still speaks too quietly: now the volume alert is news.
    sim.run(400, lambda: sim.floor.apply_metrics(d.metrics(speech_s=0.5, cues=(Cue.VOLUME_LOW,)), sim.now))
    assert sim.state("mic-position") is None
    assert sim.state("volume") == FIRING and sim.transitions("volume") == [T.FIRING]


def test_a_volume_alert_already_firing_is_muted_while_its_cause_fires_then_comes_back() -> None:
    sim = Sim()
    d = sim.desk()
    sim.run(130, lambda: sim.floor.apply_metrics(d.metrics(speech_s=0.5, cues=(Cue.VOLUME_LOW,)), sim.now))
    assert sim.state("volume") == FIRING
    sim.run(130, lambda: sim.floor.apply_metrics(d.metrics(speech_s=0.5, cues=(Cue.MIC_FAR, Cue.VOLUME_LOW)),
                                                sim.now))
    assert sim.state("mic-position") == FIRING
    assert sim.transitions("volume") == [T.FIRING, T.SILENCED]
    assert sim.engine.alerts[("site1", "d01", "volume")].inhibited
    sim.run(400, lambda: sim.floor.apply_metrics(d.metrics(speech_s=0.5, cues=(Cue.VOLUME_LOW,)), sim.now))
    assert sim.state("mic-position") is None
    assert sim.transitions("volume") == [T.FIRING, T.SILENCED, T.UNSILENCED]


def test_inhibits_can_be_turned_off_in_config() -> None:
    from host_agent.config import parse_config

    cfg = parse_config({"rules": {"mic-position": {"inhibits": []}}})
    sim = Sim(cfg)
    d = sim.desk()
    sim.run(130, lambda: sim.floor.apply_metrics(d.metrics(speech_s=0.5, cues=(Cue.MIC_FAR, Cue.VOLUME_LOW)),
                                                sim.now))
    assert sim.state("mic-position") == FIRING and sim.state("volume") == FIRING
