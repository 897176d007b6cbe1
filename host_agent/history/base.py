"""The storage interface (:class:`HistoryStore`) and the SQL both backends share (:class:`SqlStore`).

Every statement is written once, with ``?`` placeholders, in the SQL that SQLite (3.35 and later) and
PostgreSQL both accept: ``INSERT ... ON CONFLICT DO NOTHING`` on the dedup keys, ``ON CONFLICT (...) DO
UPDATE`` for the rows that are replaced, ``RETURNING id``. A backend supplies two primitives,
:meth:`SqlStore._write` (inside the open transaction; :meth:`commit` ends it) and :meth:`SqlStore._read`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Protocol

import msgspec

from host_agent.alerts import ActiveAlert, Silence
from mqtt_schema import AlertLog, Call, Event, Minute, Severity
from mqtt_schema.codec import encode

Row = tuple[Any, ...]


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
    """What the host needs from its history database.

    Writes join one transaction that :meth:`commit` makes durable; ``add_event``, ``add_minute`` and
    ``add_call`` return whether the row was new (False for a duplicate of its (site, desk, boot, seq)).
    """

    def add_event(self, event: Event) -> bool: ...
    def add_minute(self, minute: Minute) -> bool: ...
    def add_call(self, call: Call) -> bool: ...
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
    def calls(self, site: str, start_ms: int, end_ms: int) -> list[Call]: ...
    def alert_logs(self, site: str, start_ms: int, end_ms: int) -> list[AlertLog]: ...
    def prune(self, before_ms: int) -> int: ...
    def commit(self) -> None: ...
    def close(self) -> None: ...


_event_dec = msgspec.json.Decoder(Event)
_minute_dec = msgspec.json.Decoder(Minute)
_log_dec = msgspec.json.Decoder(AlertLog)
_call_dec = msgspec.json.Decoder(Call)

TABLES = ("events", "minutes", "calls", "alert_log", "silences", "active_alerts", "desks")
_SILENCE_COLS = 'site, desk, rule, until_ms, created_ms, "by"'


_CALL_COLS = ("site, desk, boot, seq, start_ts, end_ts, payload, far_talk_s, silent_call, longest_mutual_silence_s, "
              "silent_prompts, silent_min_wait_s, silent_call_ok")
"""The columns ``add_call`` writes, by name (the table has grown since migration 3)."""
_CALL_ARGS = ",".join("?" * len(_CALL_COLS.split(",")))


def _flag(v: bool | None) -> int | None:
    """A nullable flag as the INTEGER 0/1 both backends store (PostgreSQL does not cast a boolean)."""
    return None if v is None else int(v)


def _silence(s: Any, d: Any, r: Any, u: Any, c: Any, b: Any) -> Silence:
    return Silence(str(s), str(d), str(r), int(u), int(c), str(b))


class SqlStore:
    """:class:`HistoryStore` over two primitives a backend implements."""

    name: str
    """The database as it may be shown (a path, or a URL without its password)."""
    found_version: int
    """The schema version the database had when it was opened (0: a new database)."""
    scope: tuple[str, ...] = ()
    """The sites of a host that shares the history with others (``open_store(db, sites=...)``): what a
    host restores and lists (desks, active alerts, silences, sites, the alert history) is of these sites
    only. Empty: every site (the ``report`` and ``silence`` commands)."""

    def _in_scope(self, sql: str, args: Sequence[object] = (), *, where: bool = True) -> tuple[str, tuple[object, ...]]:
        """``sql`` restricted to :attr:`scope` (``where``: the statement has no WHERE clause yet)."""
        if not self.scope:
            return sql, tuple(args)
        cond = f"site IN ({','.join('?' * len(self.scope))})"
        return f"{sql} {'WHERE' if where else 'AND'} {cond}", (*args, *self.scope)

    def _write(self, sql: str, args: Sequence[object] = ()) -> tuple[int, list[Row]]:
        """Run a statement in the open transaction: (rows changed, rows returned)."""
        raise NotImplementedError

    def _read(self, sql: str, args: Sequence[object] = ()) -> list[Row]:
        raise NotImplementedError

    def commit(self) -> None:
        raise NotImplementedError

    def close(self) -> None:
        raise NotImplementedError

    @staticmethod
    def _order(q: tuple[str, tuple[object, ...]], by: str) -> tuple[str, tuple[object, ...]]:
        return f"{q[0]} ORDER BY {by}", q[1]

    # writes (the host's processing thread) ------------------------------------------------------

    def add_event(self, event: Event) -> bool:
        n, _ = self._write("INSERT INTO events VALUES (?,?,?,?,?,?,?) ON CONFLICT DO NOTHING",
                           (event.site, event.desk, event.boot, event.seq, event.ts, event.kind.value, encode(event)))
        return n == 1

    def add_minute(self, minute: Minute) -> bool:
        n, _ = self._write("INSERT INTO minutes VALUES (?,?,?,?,?,?) ON CONFLICT DO NOTHING",
                           (minute.site, minute.desk, minute.boot, minute.seq, minute.minute_ts, encode(minute)))
        return n == 1

    def add_call(self, call: Call) -> bool:
        """Store a call summary once (False: a duplicate of its (site, desk, boot, seq), left as stored).

        Besides the payload, the silent-call fields (schema 1.2; migration 4) get columns: seconds as
        floats, flags as 0/1, ``None`` (NULL) where the desk did not measure them."""
        n, _ = self._write(f"INSERT INTO calls ({_CALL_COLS}) VALUES ({_CALL_ARGS}) "
                           "ON CONFLICT DO NOTHING",
                           (call.site, call.desk, call.boot, call.seq, call.start_ts, call.end_ts, encode(call),
                            call.far_talk_s, _flag(call.silent_call), call.longest_mutual_silence_s,
                            call.silent_prompts, call.silent_min_wait_s, _flag(call.silent_call_ok)))
        return n == 1

    def add_alert_log(self, log: AlertLog) -> None:
        self._write("INSERT INTO alert_log (site, desk, rule, transition, ts, payload) VALUES (?,?,?,?,?,?)",
                    (log.site, log.desk, log.rule, log.transition.value, log.ts, encode(log)))

    def save_alert(self, a: ActiveAlert) -> None:
        self._write("INSERT INTO active_alerts VALUES (?,?,?,?,?,?,?,?,?,?,?,?) ON CONFLICT (site, desk, rule) "
                    "DO UPDATE SET state=excluded.state, since_ms=excluded.since_ms, "
                    "last_true_ms=excluded.last_true_ms, fired_ms=excluded.fired_ms, severity=excluded.severity, "
                    "level=excluded.level, value=excluded.value, summary=excluded.summary, "
                    "silenced=excluded.silenced",
                    (a.site, a.desk, a.rule, a.state, a.since_ms, a.last_true_ms, a.fired_ms, a.severity.value,
                     a.level, a.value, a.summary, int(a.silenced)))

    def delete_alert(self, site: str, desk: str, rule: str) -> None:
        self._write("DELETE FROM active_alerts WHERE site=? AND desk=? AND rule=?", (site, desk, rule))

    def save_desk(self, r: DeskRecord, now_ms: int) -> None:
        self._write("INSERT INTO desks VALUES (?,?,?,?,?,?,?) ON CONFLICT (site, desk) DO UPDATE SET "
                    "status=excluded.status, status_since_ms=excluded.status_since_ms, worn=excluded.worn, "
                    "off_since_ms=excluded.off_since_ms, updated_ms=excluded.updated_ms",
                    (r.site, r.desk, r.status, r.status_since_ms, None if r.worn is None else int(r.worn),
                     r.off_since_ms, now_ms))

    def add_silence(self, s: Silence) -> int:
        _, rows = self._write(f"INSERT INTO silences ({_SILENCE_COLS}) VALUES (?,?,?,?,?,?) RETURNING id",
                              (s.site, s.desk, s.rule, s.until_ms, s.created_ms, s.by))
        return int(rows[0][0])

    def prune(self, before_ms: int) -> int:
        """Delete history older than ``before_ms``; return the rows deleted."""
        n = 0
        for sql in ("DELETE FROM events WHERE ts < ?", "DELETE FROM minutes WHERE minute_ts < ?",
                    "DELETE FROM calls WHERE start_ts < ?",
                    "DELETE FROM alert_log WHERE ts < ?", "DELETE FROM silences WHERE until_ms < ?"):
            n += self._write(sql, (before_ms,))[0]
        return n

    def set_silence_until(self, silence_id: int, until_ms: int) -> bool:
        """Move a silence's end (expire or extend it); False if there is no such silence."""
        return self._write("UPDATE silences SET until_ms = ? WHERE id = ?", (until_ms, silence_id))[0] == 1

    # reads ------------------------------------------------------------------------------------------

    def active_alerts(self) -> list[ActiveAlert]:
        return [ActiveAlert(str(site), str(desk), str(rule), str(state), int(since), int(last_true),
                            Severity(str(sev)), None if fired is None else int(fired),
                            None if level is None else int(level), None if value is None else float(value),
                            str(summary), bool(silenced))
                for site, desk, rule, state, since, last_true, fired, sev, level, value, summary, silenced
                in self._read(*self._order(self._in_scope(
                    "SELECT site, desk, rule, state, since_ms, last_true_ms, fired_ms, severity, level, value, summary, "
                    "silenced FROM active_alerts"), "site, desk, rule"))]

    def sites(self) -> list[str]:
        """Every site the history holds anything of (desks, minute rollups, events, calls), sorted."""
        got = sorted(str(r[0]) for r in self._read(
            "SELECT site FROM desks UNION SELECT site FROM minutes UNION SELECT site FROM events "
            "UNION SELECT site FROM calls"))
        return [s for s in got if s in self.scope] if self.scope else got

    def desks(self) -> list[DeskRecord]:
        return [DeskRecord(str(s), str(d), None if st is None else str(st), None if since is None else int(since),
                           None if worn is None else bool(worn), None if off is None else int(off))
                for s, d, st, since, worn, off in self._read(*self._order(self._in_scope(
                    "SELECT site, desk, status, status_since_ms, worn, off_since_ms FROM desks"), "site, desk"))]

    def silences(self, now_ms: int) -> list[Silence]:
        return [_silence(*r) for r in self._read(*self._order(self._in_scope(
            f"SELECT {_SILENCE_COLS} FROM silences WHERE until_ms > ?", (now_ms,), where=False), "id"))]

    def minutes(self, site: str, start_ms: int, end_ms: int) -> list[Minute]:
        return [_minute_dec.decode(p) for (p,) in self._read(
            "SELECT payload FROM minutes WHERE site=? AND minute_ts>=? AND minute_ts<? "
            "ORDER BY minute_ts, desk, boot, seq", (site, start_ms, end_ms))]

    def events(self, site: str, start_ms: int, end_ms: int) -> list[Event]:
        return [_event_dec.decode(p) for (p,) in self._read(
            "SELECT payload FROM events WHERE site=? AND ts>=? AND ts<? ORDER BY ts, seq, desk, boot",
            (site, start_ms, end_ms))]

    def calls(self, site: str, start_ms: int, end_ms: int) -> list[Call]:
        """The call summaries of ``site`` that started in [start_ms, end_ms) (desk clock), by start."""
        return [_call_dec.decode(p) for (p,) in self._read(
            "SELECT payload FROM calls WHERE site=? AND start_ts>=? AND start_ts<? ORDER BY start_ts, desk, boot, seq",
            (site, start_ms, end_ms))]

    def alert_logs(self, site: str, start_ms: int, end_ms: int) -> list[AlertLog]:
        return [_log_dec.decode(p) for (p,) in self._read(
            "SELECT payload FROM alert_log WHERE site=? AND ts>=? AND ts<? ORDER BY id", (site, start_ms, end_ms))]

    def counts(self) -> dict[str, int]:
        """Rows per table (for tests and the ``run`` banner)."""
        return {t: int(self._read(f"SELECT COUNT(*) FROM {t}")[0][0]) for t in TABLES}

    # silences by id, and the alert history, for `silence list/expire/extend` and the dashboard ------

    def silence_rows(self, now_ms: int) -> list[tuple[int, Silence]]:
        """(id, silence) of the silences still running at ``now_ms``, the soonest to end first."""
        return [(int(i), _silence(*r)) for i, *r in self._read(*self._order(self._in_scope(
            f"SELECT id, {_SILENCE_COLS} FROM silences WHERE until_ms > ?", (now_ms,), where=False), "until_ms, id"))]

    def silence_by_id(self, silence_id: int) -> Silence | None:
        for r in self._read(*self._in_scope(f"SELECT {_SILENCE_COLS} FROM silences WHERE id = ?", (silence_id,),
                                            where=False)):
            return _silence(*r)
        return None

    def recent_alert_logs(self, *, site: str | None = None, desk: str | None = None, rule: str | None = None,
                          limit: int = 50) -> list[tuple[int, AlertLog]]:
        """(id, transition) of the newest ``limit`` alert transitions matching the filters, newest first."""
        where = [f"{col} = ?" for col, v in (("site", site), ("desk", desk), ("rule", rule)) if v is not None]
        args: list[object] = [v for v in (site, desk, rule) if v is not None]
        if self.scope:
            where.append(f"site IN ({','.join('?' * len(self.scope))})")
            args.extend(self.scope)
        sql = ("SELECT id, payload FROM alert_log" + (" WHERE " + " AND ".join(where) if where else "")
               + " ORDER BY id DESC LIMIT ?")
        return [(int(i), _log_dec.decode(p)) for i, p in self._read(sql, (*args, limit))]
