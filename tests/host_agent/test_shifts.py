"""Shift schedules on a ManualClock: desk-offline only inside a site's shifts, with the shift's severity;
shift boundaries, the grace at shift start, weekends, a shift crossing midnight, time zones, DST.

Messages go through the real path (``Processor.handle`` with encoded payloads); the config through
``parse_config`` of the TOML text.
"""

from __future__ import annotations

import tomllib
from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from host_agent.alerts import Change
from host_agent.clock import ManualClock
from host_agent.config import parse_config
from host_agent.processor import Processor
from host_agent.shifts import ShiftSchedule, Span, parse_days
from host_agent.storage import SqliteStore
from mqtt_schema import AlertTransition as T
from mqtt_schema import DeskKind, DeskStatus, EventKind, encode
from tests.host_agent.helpers import Desk

BERLIN = "Europe/Berlin"


def at(text: str, tz: str = BERLIN) -> int:
    """``"2026-11-30 08:00"`` (local time in ``tz``) as epoch ms. 2026-11-30 is a Monday."""
    return int(datetime.fromisoformat(text).replace(tzinfo=ZoneInfo(tz)).timestamp() * 1000)


class Site:
    """A processor with the given host.toml text, a manual clock, and desks sending real payloads."""

    def __init__(self, tmp_path: Path, toml: str, start: str, tz: str = BERLIN) -> None:
        self.config = parse_config(tomllib.loads(toml))
        self.clock = ManualClock(at(start, tz))
        self.store = SqliteStore(tmp_path / "host.db")
        self.p = Processor(self.config, self.clock, self.store)
        self.log: list[Change] = []
        self.desks: dict[tuple[str, str], Desk] = {}

    def desk(self, name: str = "d01", site: str = "site1") -> Desk:
        if (site, name) not in self.desks:
            self.desks[(site, name)] = Desk(site, name, clock=self.clock.now_ms)
        return self.desks[(site, name)]

    def status(self, status: DeskStatus, name: str = "d01", site: str = "site1") -> None:
        d = self.desk(name, site)
        assert self.p.handle(d.topic(DeskKind.STATE), encode(d.state(status))) == "accepted"
        self.eval()

    def eval(self) -> None:
        self.log.extend(self.p.evaluate(everything=True))

    def run_until(self, local: str, tz: str = BERLIN, step_s: float = 10.0) -> None:
        """Advance the clock to ``local`` in steps of ``step_s``, evaluating every step."""
        end = at(local, tz)
        assert end >= self.clock.now_ms()
        while self.clock.now_ms() < end:
            self.clock.set(min(end, self.clock.now_ms() + int(step_s * 1000)))
            self.eval()

    def offline(self, desk: str = "d01", site: str = "site1") -> list[tuple[T, str, str]]:
        """desk-offline transitions so far: (transition, local time hh:mm:ss in Berlin, severity)."""
        return [(c.log.transition, datetime.fromtimestamp(c.log.ts / 1000, ZoneInfo(BERLIN)).strftime("%a %H:%M:%S"),
                 c.log.severity.value)
                for c in self.log if c.log.rule == "desk-offline" and c.log.desk == desk and c.log.site == site]

    def close(self) -> None:
        self.store.close()


OFFICE = """
[shifts]
tz = "Europe/Berlin"
[shifts.site1]
mon-fri = "08:00-17:00"
sat = "09:00-13:00"
severity = "warning"
"""


@pytest.fixture
def office(tmp_path: Path):  # type: ignore[no-untyped-def]
    s = Site(tmp_path, OFFICE, "2026-11-30 07:00")
    yield s
    s.close()


def test_lost_inside_the_shift_fires_with_the_shift_severity(office: Site) -> None:
    office.status(DeskStatus.ONLINE)
    office.run_until("2026-11-30 10:00")
    office.status(DeskStatus.LOST)
    office.run_until("2026-11-30 10:00:29", step_s=1)
    assert office.offline() == [(T.PENDING, "Mon 10:00:00", "warning")]
    office.run_until("2026-11-30 10:00:30", step_s=1)
    assert office.offline()[-1] == (T.FIRING, "Mon 10:00:30", "warning")
    alert = office.p.engine.alerts[("site1", "d01", "desk-offline")]
    assert alert.summary == "desk lost for 30 s during its shift (Mon 08:00-17:00 Europe/Berlin)"
    office.status(DeskStatus.ONLINE)
    assert office.offline()[-1][0] is T.RESOLVED


def test_offline_or_lost_outside_the_shift_raises_nothing(office: Site) -> None:
    office.clock.set(at("2026-11-30 17:30"))
    office.status(DeskStatus.ONLINE)
    d = office.desk()
    office.p.handle(d.topic(DeskKind.EVENT), encode(d.event(EventKind.DOFFED)))
    office.status(DeskStatus.LOST)  # the agent vanished after the shift
    office.run_until("2026-12-01 07:59:50", step_s=60)
    assert office.offline() == []
    assert office.log == []  # and the desk's other alerts (break-overrun) are muted while it is gone


def test_a_desk_lost_before_the_shift_gets_the_grace_then_for_s(office: Site) -> None:
    office.clock.set(at("2026-11-30 20:00"))
    office.status(DeskStatus.LOST)
    office.run_until("2026-12-01 08:04:50", step_s=60)
    assert office.offline() == []  # shift started at 08:00: 5 min grace to boot
    office.run_until("2026-12-01 08:05:30", step_s=1)
    assert office.offline() == [(T.PENDING, "Tue 08:05:00", "warning"), (T.FIRING, "Tue 08:05:30", "warning")]
    alert = office.p.engine.alerts[("site1", "d01", "desk-offline")]
    assert alert.value == 330  # counted from the start of the shift, not from 20:00 the night before
    assert alert.summary.startswith("desk lost for 5 min during its shift")


def test_a_desk_coming_online_within_the_grace_raises_nothing(office: Site) -> None:
    office.clock.set(at("2026-11-30 06:00"))
    office.status(DeskStatus.OFFLINE)
    office.run_until("2026-11-30 08:03", step_s=30)
    office.status(DeskStatus.ONLINE)
    office.run_until("2026-11-30 12:00", step_s=60)
    assert office.offline() == []


def test_a_desk_going_away_during_the_shift_counts_at_once(office: Site) -> None:
    office.clock.set(at("2026-11-30 08:01"))
    office.status(DeskStatus.ONLINE)
    office.status(DeskStatus.LOST)  # during the grace minutes, but it was online in the shift
    office.run_until("2026-11-30 08:01:30", step_s=1)
    assert [t for t, _, _ in office.offline()] == [T.PENDING, T.FIRING]


def test_a_firing_alert_resolves_when_the_shift_ends(office: Site) -> None:
    office.clock.set(at("2026-11-30 16:50"))
    office.status(DeskStatus.ONLINE)
    office.status(DeskStatus.LOST)
    office.run_until("2026-11-30 16:59:59", step_s=1)
    assert office.offline()[-1][:2] == (T.FIRING, "Mon 16:50:30")
    office.run_until("2026-11-30 17:00", step_s=1)
    assert office.offline()[-1][:2] == (T.RESOLVED, "Mon 17:00:00")
    assert ("site1", "d01", "desk-offline") not in office.p.engine.alerts


def test_clean_offline_inside_the_shift_fires_unless_turned_off(tmp_path: Path) -> None:
    s = Site(tmp_path, OFFICE, "2026-11-30 09:00")
    s.status(DeskStatus.ONLINE)
    s.status(DeskStatus.OFFLINE)  # the agent stopped cleanly, but the desk is expected online
    s.run_until("2026-11-30 09:01", step_s=1)
    assert [t for t, _, _ in s.offline()] == [T.PENDING, T.FIRING]
    assert s.p.engine.alerts[("site1", "d01", "desk-offline")].summary.startswith("desk offline for 1 min during its shift")
    s.close()
    (tmp_path / "q").mkdir()
    quiet = Site(tmp_path / "q", OFFICE.replace('severity = "warning"', "alert_on_offline = false"), "2026-11-30 09:00")
    quiet.status(DeskStatus.ONLINE)
    quiet.status(DeskStatus.OFFLINE)
    quiet.run_until("2026-11-30 12:00", step_s=30)
    assert quiet.offline() == []
    quiet.status(DeskStatus.LOST)  # lost still counts
    quiet.run_until("2026-11-30 12:01", step_s=1)
    assert [(t, sev) for t, _, sev in quiet.offline()] == [(T.PENDING, "critical"), (T.FIRING, "critical")]
    quiet.close()


def test_the_weekend_friday_to_monday(office: Site) -> None:
    office.clock.set(at("2026-12-04 16:00"))  # a Friday
    office.status(DeskStatus.LOST)
    office.run_until("2026-12-07 09:00", step_s=30)  # Monday
    assert [(t, when) for t, when, _ in office.offline()] == [
        (T.PENDING, "Fri 16:00:00"), (T.FIRING, "Fri 16:00:30"), (T.RESOLVED, "Fri 17:00:00"),  # end of Friday
        (T.PENDING, "Sat 09:05:00"), (T.FIRING, "Sat 09:05:30"), (T.RESOLVED, "Sat 13:00:00"),  # Saturday's hours
        # Sunday: no shift, nothing
        (T.PENDING, "Mon 08:05:00"), (T.FIRING, "Mon 08:05:30"),
    ]


NIGHT = """
[shifts.site1]
tz = "Asia/Shanghai"
mon-thu = "08:00-16:00"
fri = "22:00-06:00"
grace_s = 0
"""


def test_a_shift_crossing_midnight(tmp_path: Path) -> None:
    sh = "Asia/Shanghai"
    s = Site(tmp_path, NIGHT, "2026-12-04 21:00", tz=sh)  # Friday evening in Shanghai
    s.status(DeskStatus.LOST)
    s.run_until("2026-12-04 21:59:50", tz=sh, step_s=10)
    assert s.offline() == []
    s.run_until("2026-12-05 05:59:59", tz=sh, step_s=10)  # through midnight: the alert keeps firing
    log = [(c.log.transition, datetime.fromtimestamp(c.log.ts / 1000, ZoneInfo(sh)).strftime("%a %H:%M:%S"))
           for c in s.log if c.log.rule == "desk-offline"]
    assert log == [(T.PENDING, "Fri 22:00:00"), (T.FIRING, "Fri 22:00:30")]
    assert s.p.engine.alerts[("site1", "d01", "desk-offline")].summary.endswith("(Fri 22:00-06:00 Asia/Shanghai)")
    s.run_until("2026-12-05 06:00", tz=sh, step_s=1)  # Saturday 06:00: the night shift ended
    s.run_until("2026-12-07 07:59:50", tz=sh, step_s=300)  # the rest of the weekend: nothing
    log = [(c.log.transition, datetime.fromtimestamp(c.log.ts / 1000, ZoneInfo(sh)).strftime("%a %H:%M:%S"))
           for c in s.log if c.log.rule == "desk-offline"]
    assert log[2:] == [(T.RESOLVED, "Sat 06:00:00")]
    s.close()


def test_schedules_by_time_zone_and_sites_without_one(tmp_path: Path) -> None:
    toml = """
    [shifts]
    tz = "America/New_York"
    [shifts.site1]
    mon-fri = "09:00-17:00"
    [shifts.site2]
    tz = "Asia/Shanghai"
    mon-fri = "09:00-17:00"
    """
    s = Site(tmp_path, toml, "2026-11-30 10:00", tz="Asia/Shanghai")  # Mon 10:00 Shanghai = Sun 21:00 New York
    for site in ("site1", "site2", "site3"):
        s.status(DeskStatus.LOST, site=site)
        s.status(DeskStatus.OFFLINE, name="d02", site=site)
    s.run_until("2026-11-30 10:01", tz="Asia/Shanghai", step_s=1)
    fired = sorted((c.log.site, c.log.desk) for c in s.log if c.log.transition is T.FIRING)
    # site1: Sunday night in New York, off shift. site2: in shift, both lost and offline.
    # site3 has no schedule: as without shifts, lost fires (at any hour) and a clean offline does not.
    assert fired == [("site2", "d01"), ("site2", "d02"), ("site3", "d01")]
    s.close()


def test_schedule_spans_touching_make_one_shift_and_dst_is_wall_time() -> None:
    split = ShiftSchedule("s", BERLIN, (Span(0, 8 * 60, 12 * 60), Span(0, 12 * 60, 17 * 60)))
    assert split.shift_at(at("2026-11-30 12:00")) == (at("2026-11-30 08:00"), at("2026-11-30 17:00"))
    assert split.shift_at(at("2026-11-30 17:00")) is None and split.shift_at(at("2026-11-30 07:59")) is None
    night_then_day = ShiftSchedule("s", BERLIN, (Span(6, 22 * 60, 8 * 60), Span(0, 8 * 60, 16 * 60)))
    assert night_then_day.shift_at(at("2026-11-30 12:00")) == (at("2026-11-29 22:00"), at("2026-11-30 16:00"))
    # 2026-03-29, a Sunday, has 23 hours in Berlin: the shift follows the wall clock
    whole = ShiftSchedule("s", BERLIN, (Span(6, 0, 1440),))
    start, end = whole.shift_at(at("2026-03-29 12:00")) or (0, 0)
    assert (start, end) == (at("2026-03-29 00:00"), at("2026-03-30 00:00")) and end - start == 23 * 3600_000
    assert whole.shift_at(at("2026-03-30 00:00")) is None


@pytest.mark.parametrize(("key", "days"), [("mon", [0]), ("mon-fri", [0, 1, 2, 3, 4]), ("fri-mon", [4, 5, 6, 0]),
                                          ("daily", [0, 1, 2, 3, 4, 5, 6]), ("SAT", [5])])
def test_day_keys(key: str, days: list[int]) -> None:
    assert parse_days(key) == days
