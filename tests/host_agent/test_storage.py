"""History storage: migrations keep rows, retention prunes, read-only access, clear errors."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from host_agent.alerts import ActiveAlert, Silence
from host_agent.errors import StorageError
from host_agent.storage import SCHEMA_VERSION, DeskRecord, SqliteStore, migrate
from mqtt_schema import AlertLog, AlertTransition, EventKind, Severity, encode
from tests.host_agent.helpers import T0, Desk


def test_old_version_database_upgrades_without_losing_rows(tmp_path: Path) -> None:
    path = tmp_path / "old.db"
    d = Desk("site1", "d01", clock=lambda: T0)
    ev, mi = d.event(EventKind.DOFFED), d.minute(T0, speech_s=12.0)
    conn = sqlite3.connect(path)
    assert migrate(conn, target=1) == 0  # a database written by the first release
    conn.execute("INSERT INTO events VALUES (?,?,?,?,?,?,?)", ("site1", "d01", ev.boot, ev.seq, ev.ts, "doffed", encode(ev)))
    conn.execute("INSERT INTO minutes VALUES (?,?,?,?,?,?)", ("site1", "d01", mi.boot, mi.seq, mi.minute_ts, encode(mi)))
    log = AlertLog(site="site1", desk="d01", rule="posture", transition=AlertTransition.FIRING, ts=T0)
    conn.execute("INSERT INTO alert_log (site, desk, rule, transition, ts, payload) VALUES (?,?,?,?,?,?)",
                 ("site1", "d01", "posture", "firing", T0, encode(log)))
    conn.commit()
    conn.close()
    store = SqliteStore(path)
    assert store.found_version == 1
    assert store.counts()["events"] == 1 and store.counts()["minutes"] == 1 and store.counts()["alert_log"] == 1
    assert store.events("site1", 0, T0 + 1) == [ev]
    assert store.minutes("site1", 0, T0 + 1) == [mi]
    assert store.alert_logs("site1", 0, T0 + 1) == [log]
    assert not store.add_event(ev)  # the dedup key survived the upgrade
    store.add_silence(Silence("site1", "d01", "posture", T0 + 1000))  # a table from version 2
    store.close()
    with sqlite3.connect(path) as c:
        assert [r[0] for r in c.execute("SELECT version FROM schema_version ORDER BY version")] == \
            list(range(1, SCHEMA_VERSION + 1))


def test_newer_database_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "future.db"
    SqliteStore(path).close()
    with sqlite3.connect(path) as c:
        c.execute("INSERT INTO schema_version VALUES (99, 0)")
    with pytest.raises(StorageError, match="newer than this host"):
        SqliteStore(path)


def test_round_trips_and_retention(tmp_path: Path) -> None:
    store = SqliteStore(tmp_path / "h.db")
    d = Desk("site1", "d01", clock=lambda: T0)
    old = d.event(EventKind.WORN)
    d.clock = lambda: T0 + 100 * 86_400_000
    new = d.event(EventKind.DOFFED)
    assert store.add_event(old) and store.add_event(new) and not store.add_event(new)
    a = ActiveAlert("site1", "d01", "break-overrun", "firing", T0, T0 + 5, Severity.WARNING, T0 + 1, 3, 912.5,
                    "headset off", True)
    store.save_alert(a)
    assert store.active_alerts() == [a]
    store.delete_alert("site1", "d01", "break-overrun")
    assert store.active_alerts() == []
    rec = DeskRecord("site1", "d01", "online", T0, False, T0 - 5)
    store.save_desk(rec, T0)
    assert store.desks() == [rec]
    store.add_silence(Silence("site1", "*", "*", T0 + 10, T0, "me"))
    assert store.silences(T0) == [Silence("site1", "*", "*", T0 + 10, T0, "me")]
    assert store.silences(T0 + 10) == []
    assert store.prune(T0 + 90 * 86_400_000) == 2  # the old event and the expired silence
    assert store.events("site1", 0, 2**62) == [new]
    store.close()


def test_read_only_open_of_a_missing_database_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(StorageError, match="cannot open the history database"):
        SqliteStore(tmp_path / "none.db", readonly=True)
