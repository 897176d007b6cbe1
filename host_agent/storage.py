"""History storage: a small interface (:class:`HistoryStore`) and its SQLite implementation.

SQLite runs in WAL mode so reports and the ``silence`` command read and write while the host runs,
with ``synchronous=FULL``: a commit is on disk when ``commit()`` returns (the WAL is fsynced), which
is what the host's QoS 1 acknowledgements promise (they are sent only after the commit). The cost is
one fsync per commit; the host batches many messages per commit under load.
The schema is versioned: :data:`MIGRATIONS` are applied in order and recorded in ``schema_version``,
so an old database upgrades in place without losing rows. A PostgreSQL store would implement the
same protocol (``INSERT ... ON CONFLICT DO NOTHING`` for the dedup keys).
"""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

import msgspec

from host_agent.alerts import ActiveAlert, Silence
from host_agent.errors import StorageError
from mqtt_schema import AlertLog, Event, Minute, Severity
from mqtt_schema.codec import encode

MIGRATIONS: tuple[tuple[str, ...], ...] = (
    (  # 1: raw history
        """CREATE TABLE events (site TEXT NOT NULL, desk TEXT NOT NULL, boot INTEGER NOT NULL,
             seq INTEGER NOT NULL, ts INTEGER NOT NULL, kind TEXT NOT NULL, payload BLOB NOT NULL,
             PRIMARY KEY (site, desk, boot, seq))""",
        """CREATE TABLE minutes (site TEXT NOT NULL, desk TEXT NOT NULL, boot INTEGER NOT NULL,
             seq INTEGER NOT NULL, minute_ts INTEGER NOT NULL, payload BLOB NOT NULL,
             PRIMARY KEY (site, desk, boot, seq))""",
        "CREATE INDEX minutes_by_time ON minutes (site, minute_ts)",
        """CREATE TABLE alert_log (id INTEGER PRIMARY KEY, site TEXT NOT NULL, desk TEXT NOT NULL,
             rule TEXT NOT NULL, transition TEXT NOT NULL, ts INTEGER NOT NULL, payload BLOB NOT NULL)""",
        "CREATE INDEX alert_log_by_time ON alert_log (site, ts)",
    ),
    (  # 2: what a restarted host and a second process need
        """CREATE TABLE silences (id INTEGER PRIMARY KEY, site TEXT NOT NULL, desk TEXT NOT NULL,
             rule TEXT NOT NULL, until_ms INTEGER NOT NULL, created_ms INTEGER NOT NULL, by TEXT NOT NULL)""",
        """CREATE TABLE active_alerts (site TEXT NOT NULL, desk TEXT NOT NULL, rule TEXT NOT NULL,
             state TEXT NOT NULL, since_ms INTEGER NOT NULL, last_true_ms INTEGER NOT NULL,
             fired_ms INTEGER, severity TEXT NOT NULL, level INTEGER, value REAL, summary TEXT NOT NULL,
             silenced INTEGER NOT NULL, PRIMARY KEY (site, desk, rule))""",
        """CREATE TABLE desks (site TEXT NOT NULL, desk TEXT NOT NULL, status TEXT, status_since_ms INTEGER,
             worn INTEGER, off_since_ms INTEGER, updated_ms INTEGER NOT NULL, PRIMARY KEY (site, desk))""",
        "CREATE INDEX events_by_time ON events (site, ts)",
    ),
)
SCHEMA_VERSION = len(MIGRATIONS)


@dataclass(frozen=True, slots=True)
class DeskRecord:
    """The part of a desk's state that must survive a host restart (host-clock ms)."""

    site: str
    desk: str
    status: str | None
    status_since_ms: int | None
    worn: bool | None
    off_since_ms: int | None


class HistoryStore(Protocol):
    """What the host needs from its history database."""

    def add_event(self, event: Event) -> bool: ...
    def add_minute(self, minute: Minute) -> bool: ...
    def add_alert_log(self, log: AlertLog) -> None: ...
    def save_alert(self, alert: ActiveAlert) -> None: ...
    def delete_alert(self, site: str, desk: str, rule: str) -> None: ...
    def active_alerts(self) -> list[ActiveAlert]: ...
    def save_desk(self, record: DeskRecord, now_ms: int) -> None: ...
    def desks(self) -> list[DeskRecord]: ...
    def sites(self) -> list[str]: ...
    def add_silence(self, silence: Silence) -> int: ...
    def silences(self, now_ms: int) -> list[Silence]: ...
    def silence_rows(self, now_ms: int) -> list[tuple[int, Silence]]: ...
    def silence_by_id(self, silence_id: int) -> Silence | None: ...
    def set_silence_until(self, silence_id: int, until_ms: int) -> bool: ...
    def recent_alert_logs(self, *, site: str | None = None, desk: str | None = None, rule: str | None = None,
                          limit: int = 50) -> list[tuple[int, AlertLog]]: ...
    def minutes(self, site: str, start_ms: int, end_ms: int) -> list[Minute]: ...
    def events(self, site: str, start_ms: int, end_ms: int) -> list[Event]: ...
    def alert_logs(self, site: str, start_ms: int, end_ms: int) -> list[AlertLog]: ...
    def prune(self, before_ms: int) -> int: ...
    def commit(self) -> None: ...
    def close(self) -> None: ...


def migrate(conn: sqlite3.Connection, target: int = SCHEMA_VERSION) -> int:
    """Apply the missing migrations up to ``target``; return the version found before."""
    conn.execute("CREATE TABLE IF NOT EXISTS schema_version (version INTEGER NOT NULL, applied_ms INTEGER)")
    row = conn.execute("SELECT MAX(version) FROM schema_version").fetchone()
    found = int(row[0] or 0)
    if found > SCHEMA_VERSION:
        raise StorageError(f"the database has schema version {found}, newer than this host's {SCHEMA_VERSION}")
    for version in range(found + 1, target + 1):
        with conn:
            for sql in MIGRATIONS[version - 1]:
                conn.execute(sql)
            conn.execute("INSERT INTO schema_version VALUES (?, CAST(strftime('%s','now') AS INTEGER) * 1000)",
                         (version,))
    return found


_event_dec = msgspec.json.Decoder(Event)
_minute_dec = msgspec.json.Decoder(Minute)
_log_dec = msgspec.json.Decoder(AlertLog)


class SqliteStore:
    """:class:`HistoryStore` on SQLite. One writer thread; ``commit()`` batches writes."""

    def __init__(self, path: str | Path, *, readonly: bool = False) -> None:
        self.path = str(path)
        if self.path != ":memory:" and not readonly:
            folder = Path(self.path).parent
            try:
                folder.mkdir(parents=True, exist_ok=True)
            except OSError as exc:
                why = "it exists and is not a folder" if isinstance(exc, FileExistsError) else exc.strerror or exc
                raise StorageError(f"cannot create the folder {folder} of the history database {self.path}: "
                                   f"{why}") from None
        try:
            uri = f"file:{self.path}?mode=ro" if readonly else self.path
            self._conn = sqlite3.connect(uri, uri=readonly, check_same_thread=False, timeout=10,
                                         isolation_level="DEFERRED")
            if not readonly:
                self._conn.execute("PRAGMA journal_mode=WAL")
                self._conn.execute("PRAGMA synchronous=FULL")
                self.found_version = migrate(self._conn)
            else:
                row = self._conn.execute("SELECT MAX(version) FROM schema_version").fetchone()
                self.found_version = int(row[0] or 0)
                if self.found_version < SCHEMA_VERSION:
                    raise StorageError(f"{self.path} has schema version {self.found_version}; "
                                       "run the host once to upgrade it")
        except StorageError:
            raise
        except (sqlite3.Error, OSError) as exc:
            raise StorageError(f"cannot open the history database {self.path}: {exc}") from None
        self._lock = threading.Lock()

    # writes (the host's processing thread) ------------------------------------------------------

    def _exec(self, sql: str, args: Iterable[object] = ()) -> sqlite3.Cursor:
        try:
            with self._lock:
                return self._conn.execute(sql, tuple(args))
        except sqlite3.Error as exc:
            raise StorageError(f"history database {self.path}: {exc}") from None

    def add_event(self, event: Event) -> bool:
        cur = self._exec("INSERT OR IGNORE INTO events VALUES (?,?,?,?,?,?,?)",
                         (event.site, event.desk, event.boot, event.seq, event.ts, event.kind.value, encode(event)))
        return cur.rowcount == 1

    def add_minute(self, minute: Minute) -> bool:
        cur = self._exec("INSERT OR IGNORE INTO minutes VALUES (?,?,?,?,?,?)",
                         (minute.site, minute.desk, minute.boot, minute.seq, minute.minute_ts, encode(minute)))
        return cur.rowcount == 1

    def add_alert_log(self, log: AlertLog) -> None:
        self._exec("INSERT INTO alert_log (site, desk, rule, transition, ts, payload) VALUES (?,?,?,?,?,?)",
                   (log.site, log.desk, log.rule, log.transition.value, log.ts, encode(log)))

    def save_alert(self, a: ActiveAlert) -> None:
        self._exec("INSERT OR REPLACE INTO active_alerts VALUES (?,?,?,?,?,?,?,?,?,?,?,?)",
                   (a.site, a.desk, a.rule, a.state, a.since_ms, a.last_true_ms, a.fired_ms, a.severity.value,
                    a.level, a.value, a.summary, int(a.silenced)))

    def delete_alert(self, site: str, desk: str, rule: str) -> None:
        self._exec("DELETE FROM active_alerts WHERE site=? AND desk=? AND rule=?", (site, desk, rule))

    def save_desk(self, r: DeskRecord, now_ms: int) -> None:
        self._exec("INSERT OR REPLACE INTO desks VALUES (?,?,?,?,?,?,?)",
                   (r.site, r.desk, r.status, r.status_since_ms, None if r.worn is None else int(r.worn),
                    r.off_since_ms, now_ms))

    def add_silence(self, s: Silence) -> int:
        cur = self._exec("INSERT INTO silences (site, desk, rule, until_ms, created_ms, by) VALUES (?,?,?,?,?,?)",
                         (s.site, s.desk, s.rule, s.until_ms, s.created_ms, s.by))
        return int(cur.lastrowid or 0)

    def prune(self, before_ms: int) -> int:
        """Delete history older than ``before_ms``; return the rows deleted."""
        n = 0
        for sql in ("DELETE FROM events WHERE ts < ?", "DELETE FROM minutes WHERE minute_ts < ?",
                    "DELETE FROM alert_log WHERE ts < ?", "DELETE FROM silences WHERE until_ms < ?"):
            n += self._exec(sql, (before_ms,)).rowcount
        return n

    def commit(self) -> None:
        try:
            with self._lock:
                self._conn.commit()
        except sqlite3.Error as exc:
            raise StorageError(f"history database {self.path}: {exc}") from None

    def close(self) -> None:
        try:
            self.commit()
        finally:
            self._conn.close()

    # reads ------------------------------------------------------------------------------------------

    def _rows(self, sql: str, args: Iterable[object] = ()) -> Iterator[tuple[object, ...]]:
        yield from self._exec(sql, args).fetchall()

    def active_alerts(self) -> list[ActiveAlert]:
        out = []
        for r in self._rows("SELECT * FROM active_alerts"):
            site, desk, rule, state, since, last_true, fired, sev, level, value, summary, silenced = r
            out.append(ActiveAlert(str(site), str(desk), str(rule), str(state), int(since), int(last_true),  # type: ignore[call-overload]
                                   Severity(str(sev)), fired, level, value, str(summary), bool(silenced)))  # type: ignore[arg-type]
        return out

    def sites(self) -> list[str]:
        """Every site the history holds anything of (desks, minute rollups, events), sorted."""
        return sorted(str(r[0]) for r in self._rows(
            "SELECT site FROM desks UNION SELECT site FROM minutes UNION SELECT site FROM events"))

    def desks(self) -> list[DeskRecord]:
        return [DeskRecord(str(s), str(d), st, since, None if worn is None else bool(worn), off)  # type: ignore[arg-type]
                for s, d, st, since, worn, off in self._rows(
                    "SELECT site, desk, status, status_since_ms, worn, off_since_ms FROM desks")]

    def silences(self, now_ms: int) -> list[Silence]:
        return [Silence(str(s), str(d), str(r), int(u), int(c), str(b))  # type: ignore[call-overload]
                for s, d, r, u, c, b in self._rows(
                    "SELECT site, desk, rule, until_ms, created_ms, by FROM silences WHERE until_ms > ?", (now_ms,))]

    def minutes(self, site: str, start_ms: int, end_ms: int) -> list[Minute]:
        return [_minute_dec.decode(p) for (p,) in self._rows(  # type: ignore[arg-type]
            "SELECT payload FROM minutes WHERE site=? AND minute_ts>=? AND minute_ts<? ORDER BY minute_ts",
            (site, start_ms, end_ms))]

    def events(self, site: str, start_ms: int, end_ms: int) -> list[Event]:
        return [_event_dec.decode(p) for (p,) in self._rows(  # type: ignore[arg-type]
            "SELECT payload FROM events WHERE site=? AND ts>=? AND ts<? ORDER BY ts, seq", (site, start_ms, end_ms))]

    def alert_logs(self, site: str, start_ms: int, end_ms: int) -> list[AlertLog]:
        return [_log_dec.decode(p) for (p,) in self._rows(  # type: ignore[arg-type]
            "SELECT payload FROM alert_log WHERE site=? AND ts>=? AND ts<? ORDER BY id", (site, start_ms, end_ms))]

    def counts(self) -> dict[str, int]:
        """Rows per table (for tests and the ``run`` banner)."""
        return {t: int(self._conn.execute(f"SELECT COUNT(*) FROM {t}").fetchone()[0])
                for t in ("events", "minutes", "alert_log", "silences", "active_alerts", "desks")}

    # silences by id, and the alert history, for `silence list/expire/extend` and the dashboard ------

    def silence_rows(self, now_ms: int) -> list[tuple[int, Silence]]:
        """(id, silence) of the silences still running at ``now_ms``, the soonest to end first."""
        return [(int(i), Silence(str(s), str(d), str(r), int(u), int(c), str(b)))  # type: ignore[call-overload]
                for i, s, d, r, u, c, b in self._rows(
                    "SELECT id, site, desk, rule, until_ms, created_ms, by FROM silences WHERE until_ms > ? "
                    "ORDER BY until_ms, id", (now_ms,))]

    def silence_by_id(self, silence_id: int) -> Silence | None:
        for s, d, r, u, c, b in self._rows(
                "SELECT site, desk, rule, until_ms, created_ms, by FROM silences WHERE id = ?", (silence_id,)):
            return Silence(str(s), str(d), str(r), int(u), int(c), str(b))  # type: ignore[call-overload]
        return None

    def set_silence_until(self, silence_id: int, until_ms: int) -> bool:
        """Move a silence's end (expire or extend it); False if there is no such silence."""
        return self._exec("UPDATE silences SET until_ms = ? WHERE id = ?", (until_ms, silence_id)).rowcount == 1

    def recent_alert_logs(self, *, site: str | None = None, desk: str | None = None, rule: str | None = None,
                          limit: int = 50) -> list[tuple[int, AlertLog]]:
        """(id, transition) of the newest ``limit`` alert transitions matching the filters, newest first."""
        where = [f"{col} = ?" for col, v in (("site", site), ("desk", desk), ("rule", rule)) if v is not None]
        args: list[object] = [v for v in (site, desk, rule) if v is not None]
        sql = ("SELECT id, payload FROM alert_log" + (" WHERE " + " AND ".join(where) if where else "")
               + " ORDER BY id DESC LIMIT ?")
        return [(int(i), _log_dec.decode(p)) for i, p in self._rows(sql, (*args, limit))]  # type: ignore[call-overload, arg-type]
