"""A day of history for report tests: minute rollups, wear events and alert transitions."""

from __future__ import annotations

import datetime as dt
import random

from host_agent.history import HistoryStore
from mqtt_schema import AlertLog, AlertTransition, Cue, EventKind
from tests.host_agent.helpers import Desk

DAY = dt.date(2026, 11, 20)
DAY_MS = int(dt.datetime.combine(DAY, dt.time(), dt.UTC).timestamp() * 1000)
H = 3_600_000


def fill_day(store: HistoryStore, seed: int = 7) -> dict[str, list[tuple[float, float]]]:
    """Three desks 08:00-17:00 with different habits; return {desk: [(speech_s, level_dbov)]} for checks."""
    rng = random.Random(seed)
    truth: dict[str, list[tuple[float, float]]] = {}
    profiles = {
        "d01": {"level": -26.0, "rate": 120.0, "cues": {}},
        "d02": {"level": -14.0, "rate": 185.0, "cues": {Cue.VOLUME_HIGH: 0.4, Cue.PACE_FAST: 0.5}},
        "d03": {"level": -33.0, "rate": 100.0, "cues": {Cue.MIC_FAR: 0.3, Cue.VOLUME_LOW: 0.2}},
    }
    for name, prof in profiles.items():
        d = Desk("site1", name, clock=lambda: DAY_MS)
        for minute in range(8 * 60, 17 * 60):
            if 12 * 60 <= minute < 12 * 60 + 30:
                continue  # lunch: nothing
            t = DAY_MS + minute * 60_000
            speech = round(rng.uniform(5, 40), 1)
            level = round(float(prof["level"]) + rng.uniform(-3, 3), 1)  # type: ignore[arg-type]
            cues = {c: round(speech * f, 1) for c, f in prof["cues"].items()}  # type: ignore[attr-defined]
            slouched = 60.0 if name == "d03" and minute % 3 == 0 else 0.0
            store.add_minute(d.minute(t, speech_s=speech, level_dbov=level, rate_spm=float(prof["rate"]),  # type: ignore[arg-type]
                                      cue_s=cues, worn_s=60.0, slouched_s=slouched, upright_s=60.0 - slouched))
            truth.setdefault(name, []).append((speech, level))
    # d02 takes a 40 min break at 15:00 (25 min over a 15 min allowance: level 5); d01 a short one.
    for name, start_h, minutes in (("d02", 15, 40), ("d01", 10, 12)):
        d = Desk("site1", name, boot=2, clock=lambda: DAY_MS)
        t0 = DAY_MS + start_h * H
        d.clock = lambda t0=t0: t0  # type: ignore[misc]
        store.add_event(d.event(EventKind.DOFFED))
        d.clock = lambda t0=t0, m=minutes: t0 + m * 60_000  # type: ignore[misc]
        store.add_event(d.event(EventKind.WORN))
    for desk, rule, at in (("d02", "volume", 9), ("d02", "pace", 11), ("d02", "break-overrun", 15), ("d03", "posture", 14)):
        for tr in (AlertTransition.FIRING, AlertTransition.RESOLVED):
            store.add_alert_log(AlertLog(site="site1", desk=desk, rule=rule, transition=tr, ts=DAY_MS + at * H))
    store.commit()
    return truth
