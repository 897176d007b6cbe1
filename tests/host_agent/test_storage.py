"""History storage on both backends (SQLite and PostgreSQL): migrations keep rows, the dedup key holds
across stores and redeliveries, retention prunes, read-only access, clear errors that never show a
password, and ``[host] db`` URLs checked in the config."""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TypedDict

import pytest

from host_agent.alerts import ActiveAlert, Silence
from host_agent.config import parse_config
from host_agent.errors import ConfigError, StorageError
from host_agent.history import MIGRATIONS, SCHEMA_VERSION, DeskRecord, is_postgres_url, open_store, redact
from host_agent.storage import SqliteStore, migrate
from mqtt_schema import AlertLog, AlertTransition, Call, EventKind, Severity, encode
from tests.conftest import Postgres
from tests.host_agent.conftest import BACKENDS, new_history_db
from tests.host_agent.helpers import T0, Desk, sql_rows

Exec = Callable[[str, tuple[object, ...]], None]


@contextmanager
def raw(db: str, target: int) -> Iterator[Exec]:
    """A plain connection to ``db``, migrated to at least version ``target`` (as an older release left it)."""
    if is_postgres_url(db):
        import psycopg

        from host_agent.history.postgres import migrate as pg_migrate

        with psycopg.connect(db, autocommit=True) as pg:
            pg_migrate(pg, target=target)
            yield lambda sql, args: None if pg.execute(sql.replace("?", "%s"), args) else None
    else:
        conn = sqlite3.connect(db)
        migrate(conn, target=target)
        yield lambda sql, args: None if conn.execute(sql, args) else None
        conn.commit()
        conn.close()


def test_old_version_database_upgrades_without_losing_rows(history_db: str) -> None:
    d = Desk("site1", "d01", clock=lambda: T0)
    ev, mi = d.event(EventKind.DOFFED), d.minute(T0, speech_s=12.0)
    log = AlertLog(site="site1", desk="d01", rule="posture", transition=AlertTransition.FIRING, ts=T0)
    with raw(history_db, target=1) as execute:  # a database written by the first release
        execute("INSERT INTO events VALUES (?,?,?,?,?,?,?)", ("site1", "d01", ev.boot, ev.seq, ev.ts, "doffed", encode(ev)))
        execute("INSERT INTO minutes VALUES (?,?,?,?,?,?)", ("site1", "d01", mi.boot, mi.seq, mi.minute_ts, encode(mi)))
        execute("INSERT INTO alert_log (site, desk, rule, transition, ts, payload) VALUES (?,?,?,?,?,?)",
                ("site1", "d01", "posture", "firing", T0, encode(log)))
    store = open_store(history_db)
    assert store.found_version == 1
    assert store.counts()["events"] == 1 and store.counts()["minutes"] == 1 and store.counts()["alert_log"] == 1
    assert store.events("site1", 0, T0 + 1) == [ev]
    assert store.minutes("site1", 0, T0 + 1) == [mi]
    assert store.alert_logs("site1", 0, T0 + 1) == [log]
    assert not store.add_event(ev)  # the dedup key survived the upgrade
    store.add_silence(Silence("site1", "d01", "posture", T0 + 1000))  # a table from version 2
    store.close()
    assert [r[0] for r in sql_rows(history_db, "SELECT version FROM schema_version ORDER BY version")] == \
        list(range(1, SCHEMA_VERSION + 1))
    again = open_store(history_db)  # nothing left to apply
    assert again.found_version == SCHEMA_VERSION
    again.close()


class AnsweredCallFields(TypedDict):
    call_id: str
    source: str
    answered: bool


class TimedCallFields(TypedDict):
    call_id: str
    source: str
    start_ts: int
    end_ts: int


SILENT_COLS = "far_talk_s, silent_call, longest_mutual_silence_s, silent_prompts, silent_min_wait_s, silent_call_ok"


def test_version_3_database_gains_the_silent_call_columns_and_keeps_its_calls(history_db: str) -> None:
    """Migration 4 on a database a 3-version host left (calls stored as 7 columns): the calls stay, read
    back whole from their payloads, with NULL in the new columns; new calls fill them; duplicates still
    are duplicates."""
    kw: AnsweredCallFields = {"call_id": "5f2c0a9e41b7d388", "source": "baresip", "answered": True}
    old = [Call(site="site1", desk="d01", boot=1, seq=1, ts=T0, start_ts=T0 - 90_000, end_ts=T0 - 30_000, **kw),
           Call(site="site1", desk="d01", boot=1, seq=2, ts=T0, start_ts=T0 - 20_000, end_ts=T0 - 1_000,
                silent_call=True, far_talk_s=0.1, silent_prompts=2, silent_min_wait_s=2.2, silent_call_ok=True, **kw)]
    with raw(history_db, target=3) as execute:  # calls written by the release before migration 4
        for c in old:
            execute("INSERT INTO calls VALUES (?,?,?,?,?,?,?)",
                    (c.site, c.desk, c.boot, c.seq, c.start_ts, c.end_ts, encode(c)))
    store = open_store(history_db)
    assert store.found_version == 3
    assert store.counts()["calls"] == 2 and store.calls("site1", 0, T0) == old
    assert not store.add_call(old[0])  # the dedup key survived the upgrade
    assert not store.add_call(old[1])
    new = Call(site="site1", desk="d01", boot=1, seq=3, ts=T0, start_ts=T0 - 500, end_ts=T0, silent_call=True,
               longest_mutual_silence_s=7.5, far_talk_s=0.0, silent_prompts=1, silent_min_wait_s=1.25,
               silent_call_ok=False, **kw)
    assert store.add_call(new)
    store.close()
    got = sql_rows(history_db, f"SELECT seq, {SILENT_COLS} FROM calls ORDER BY seq")
    assert got == [(1, None, None, None, None, None, None),  # old rows stay NULL (not known), nothing made up
                   (2, None, None, None, None, None, None),
                   (3, 0.0, 1, 7.5, 1, 1.25, 0)]
    assert [r[0] for r in sql_rows(history_db, "SELECT version FROM schema_version ORDER BY version")] == \
        list(range(1, SCHEMA_VERSION + 1))
    again = open_store(history_db, readonly=True)
    assert again.found_version == SCHEMA_VERSION and again.calls("site1", 0, T0 + 1) == [*old, new]
    again.close()


def test_a_sqlite_migration_that_fails_midway_leaves_the_previous_version(tmp_path: Path) -> None:
    """Migration 4 is six ALTER TABLEs: one refused (here the last, by an authorizer; in the field a crash
    or a full disk) rolls back those before it, so the database stays at version 3 and upgrades later."""
    db = tmp_path / "h.db"
    conn = sqlite3.connect(db)
    migrate(conn, target=3)
    alters = 0

    def refuse_the_last_alter(action: int, *_: object) -> int:
        nonlocal alters
        if action == sqlite3.SQLITE_ALTER_TABLE:
            alters += 1
            if alters == len(MIGRATIONS[3]):
                return sqlite3.SQLITE_DENY
        return sqlite3.SQLITE_OK

    conn.set_authorizer(refuse_the_last_alter)
    with pytest.raises(sqlite3.DatabaseError, match="not authorized"):
        migrate(conn, target=4)
    conn.set_authorizer(None)
    assert alters == len(MIGRATIONS[3])
    assert [r[1] for r in conn.execute("PRAGMA table_info(calls)")] == \
        ["site", "desk", "boot", "seq", "start_ts", "end_ts", "payload"]
    conn.close()
    assert sql_rows(db, "SELECT MAX(version) FROM schema_version") == [(3,)]
    store = open_store(str(db))  # the next start applies it whole
    assert store.found_version == 3
    store.close()
    assert sql_rows(db, f"SELECT {SILENT_COLS} FROM calls") == []


def test_a_call_without_far_end_audio_stores_null_silent_columns(history_db: str) -> None:
    store = open_store(history_db)
    kw: TimedCallFields = {"call_id": "5f2c0a9e41b7d388", "source": "gpio", "start_ts": T0 - 60_000, "end_ts": T0}
    plain = Call(site="site1", desk="d02", boot=1, seq=1, ts=T0, **kw)
    spoken = Call(site="site1", desk="d03", boot=1, seq=1, ts=T0, silent_call=False, far_talk_s=41.5,
                  longest_mutual_silence_s=3.0, **kw)
    assert store.add_call(plain) and store.add_call(spoken)
    assert not store.add_call(plain)
    assert store.sites() == ["site1"]  # a site known only from its call summaries is known
    store.close()
    assert sql_rows(history_db, f"SELECT desk, {SILENT_COLS} FROM calls ORDER BY desk") == [
        ("d02", None, None, None, None, None, None), ("d03", 41.5, 0, 3.0, None, None, None)]


def test_newer_database_is_refused(history_db: str) -> None:
    open_store(history_db).close()
    with raw(history_db, target=0) as execute:
        execute("INSERT INTO schema_version VALUES (99, 0)", ())
    with pytest.raises(StorageError, match="newer than this host"):
        open_store(history_db)


def test_round_trips_and_retention(history_db: str) -> None:
    store = open_store(history_db)
    d = Desk("site1", "d01", clock=lambda: T0)
    old = d.event(EventKind.WORN)
    d.clock = lambda: T0 + 100 * 86_400_000
    new = d.event(EventKind.DOFFED)
    assert store.add_event(old) and store.add_event(new) and not store.add_event(new)
    mi = d.minute(T0 + 100 * 86_400_000, speech_s=3.5)
    assert store.add_minute(mi) and not store.add_minute(mi)
    a = ActiveAlert("site1", "d01", "break-overrun", "pending", T0, T0 + 5, Severity.WARNING, None, None, None,
                    "headset off", False)
    store.save_alert(a)
    a = ActiveAlert("site1", "d01", "break-overrun", "firing", T0, T0 + 5, Severity.WARNING, T0 + 1, 3, 912.123456789,
                    "headset off", True)
    store.save_alert(a)  # replaces the pending one
    assert store.active_alerts() == [a]
    store.delete_alert("site1", "d01", "break-overrun")
    assert store.active_alerts() == []
    rec = DeskRecord("site1", "d01", "online", T0, False, T0 - 5)
    store.save_desk(DeskRecord("site1", "d01", None, None, None, None), T0)
    store.save_desk(rec, T0)
    store.save_desk(DeskRecord("site2", "d09", "lost", T0, None, None), T0)
    assert store.desks() == [rec, DeskRecord("site2", "d09", "lost", T0, None, None)]
    assert store.sites() == ["site1", "site2"]
    sid = store.add_silence(Silence("site1", "*", "*", T0 + 10, T0, "me"))
    assert store.silences(T0) == [Silence("site1", "*", "*", T0 + 10, T0, "me")]
    assert store.silences(T0 + 10) == []
    assert store.silence_rows(T0) == [(sid, Silence("site1", "*", "*", T0 + 10, T0, "me"))]
    assert store.set_silence_until(sid, T0 + 20) and not store.set_silence_until(sid + 99, T0)
    assert store.silence_by_id(sid) == Silence("site1", "*", "*", T0 + 20, T0, "me") and store.silence_by_id(0) is None
    logs = [AlertLog(site="site1", desk="d01", rule=r, transition=AlertTransition.FIRING, ts=T0 + i)
            for i, r in enumerate(("posture", "volume", "posture"))]
    for log in logs:
        store.add_alert_log(log)
    assert [x for _, x in store.recent_alert_logs(rule="posture", limit=5)] == [logs[2], logs[0]]
    store.commit()
    assert store.prune(T0 + 90 * 86_400_000) == 5  # the old event, the expired silence, the 3 old transitions
    assert store.events("site1", 0, 2**62) == [new] and store.minutes("site1", 0, 2**62) == [mi]
    store.close()
    assert sql_rows(history_db, "SELECT COUNT(*) FROM events")[0][0] == 1  # committed at close


def test_two_stores_never_insert_the_same_event_twice(history_db: str) -> None:
    """Two hosts (or a host and its restarted self) writing one history: the second insert of an event waits
    for the first transaction, then finds the row and reports a duplicate."""
    a, b = open_store(history_db), open_store(history_db)
    d = Desk("site1", "d01", clock=lambda: T0)
    ev = d.event(EventKind.DOFFED)
    assert a.add_event(ev)  # open transaction, not committed yet
    got: list[bool] = []
    t = threading.Thread(target=lambda: got.append(b.add_event(ev)))
    t.start()
    t.join(0.3)
    assert t.is_alive()  # b waits on a's uncommitted row
    a.commit()
    t.join(10)
    b.commit()
    assert got == [False]
    assert sql_rows(history_db, "SELECT COUNT(*) FROM events")[0][0] == 1
    a.close()
    b.close()


def test_a_host_sharing_the_history_restores_and_lists_only_its_sites(history_db: str) -> None:
    """Two hosts, one history: desks, active alerts, silences and the alert history of the other host's
    sites stay with it (a host that restored them would raise and publish alerts for desks it does not follow)."""
    store = open_store(history_db)
    for site in ("north", "east"):
        store.save_desk(DeskRecord(site, "d01", "online", T0, True, None), T0)
        store.save_alert(ActiveAlert(site, "d01", "posture", "firing", T0, T0, Severity.WARNING, T0, None, None, "", False))
        store.add_silence(Silence(site, "d01", "*", T0 + 10, T0, "me"))
        store.add_alert_log(AlertLog(site=site, desk="d01", rule="posture", transition=AlertTransition.FIRING, ts=T0))
    store.close()
    mine = open_store(history_db, sites=("north", "south"))
    assert [r.site for r in mine.desks()] == ["north"] and [a.site for a in mine.active_alerts()] == ["north"]
    assert [s.site for s in mine.silences(T0)] == ["north"] and [s.site for _, s in mine.silence_rows(T0)] == ["north"]
    assert mine.sites() == ["north"] and [a.site for _, a in mine.recent_alert_logs()] == ["north"]
    assert mine.silence_by_id(1) is not None and mine.silence_by_id(2) is None  # 2 is east's
    assert mine.recent_alert_logs(site="east") == []
    mine.close()
    every = open_store(history_db, readonly=True)  # report and silence: every site
    assert every.sites() == ["east", "north"] and len(every.desks()) == 2
    every.close()


def test_a_sqlite_file_that_is_no_history_is_refused_and_left_as_it_was(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """Someone else's SQLite file (tables, but no schema_version) named as the history: refused with its
    name by the host, report and silence, and not one byte changed (no WAL switch, no tables added)."""
    from host_agent.cli import main

    db = tmp_path / "other.db"
    conn = sqlite3.connect(db)
    conn.execute("CREATE TABLE foo (x)")
    conn.execute("INSERT INTO foo VALUES (1)")
    conn.commit()
    conn.close()
    before = db.read_bytes()
    for readonly in (False, True):
        with pytest.raises(StorageError, match=f"^{db} is not a history database of headset-host .*foo"):
            open_store(str(db), readonly=readonly)
    for argv in (["silence", "list", "--db", str(db)], ["silence", "add", "--db", str(db), "--site", "s1", "--all"],
                 ["report", "--db", str(db), "--site", "s1", "--date", "2026-11-22"]):
        assert main(argv) == 1
        err = capsys.readouterr().err
        assert err == f"headset-host: {db} is not a history database of headset-host (its tables: foo; " \
                      "no schema_version table): refusing to change it\n"
    assert db.read_bytes() == before and sorted(p.name for p in tmp_path.iterdir()) == ["other.db"]


def _pg_relations(url: str) -> list[tuple[str, str, int]]:
    """(schema, table, rows) of every table and view outside PostgreSQL's own schemas, sorted."""
    import psycopg
    from psycopg import sql

    with psycopg.connect(url, autocommit=True) as conn:
        names = conn.execute(
            "SELECT n.nspname, c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
            "WHERE c.relkind IN ('r', 'p', 'v', 'm') AND n.nspname NOT IN ('pg_catalog', 'information_schema') "
            "AND n.nspname NOT LIKE 'pg!_%' ESCAPE '!' ORDER BY 1, 2").fetchall()
        counts = [conn.execute(sql.SQL("SELECT COUNT(*) FROM {}").format(sql.Identifier(schema, table))).fetchone()
                  for schema, table in names]
        return [(schema, table, row[0] if row else -1) for (schema, table), row in zip(names, counts, strict=True)]


@pytest.mark.needs("postgresql")
def test_a_postgres_database_or_schema_that_is_no_history_is_refused_and_left_as_it_was(
        postgresql: Postgres, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """The SQLite rule on PostgreSQL: a database (its public schema), or a schema named with
    ``options=-c search_path=...``, that holds someone else's tables is refused by the host, report and
    silence with its name (never its password), and not one table or row is added to it."""
    import psycopg

    from host_agent.cli import main

    db = postgresql.create_database()
    with psycopg.connect(db, autocommit=True) as conn:
        conn.execute("CREATE TABLE foo (x INTEGER)")
        conn.execute("INSERT INTO foo VALUES (1)")
        conn.execute("CREATE SCHEMA crm")
        conn.execute("CREATE TABLE crm.customers (id INTEGER)")
        conn.execute("CREATE TABLE crm.orders (id INTEGER)")
        conn.execute("CREATE SCHEMA hist")  # empty: a history to be
    before = _pg_relations(db)
    crm = db + "?options=-c%20search_path%3Dcrm"
    cases = [(db, "its tables: foo; no schema_version table"),
             (crm, "its tables: customers, orders; no schema_version table")]
    for url, reason in cases:
        message = f"{redact(url)} is not a history database of headset-host ({reason}): refusing to change it"
        for readonly in (False, True):
            with pytest.raises(StorageError) as err:
                open_store(url, readonly=readonly)
            assert str(err.value) == message
        config = tmp_path / "host.toml"
        config.write_text(f'[broker]\nurl = "mqtt://127.0.0.1:9"\n[host]\ndb = "{url}"\n[dashboard]\nenabled = false\n')
        for argv in (["silence", "list", "--db", url], ["silence", "add", "--db", url, "--site", "s1", "--all"],
                     ["report", "--db", url, "--site", "s1", "--date", "2026-11-22"], ["run", "--config", str(config)]):
            assert main(argv) == 1, argv
            err_text = capsys.readouterr().err
            assert err_text.endswith(f"headset-host: {message}\n"), (argv, err_text)
            assert postgresql.password not in err_text
    assert _pg_relations(db) == before
    store = open_store(db + "?options=-c%20search_path%3Dhist")  # an empty schema of the same database is ours
    assert store.found_version == 0
    store.close()
    assert [(s, t) for s, t, _ in _pg_relations(db) if s == "hist"] == [("hist", t) for t in sorted(
        ("schema_version", "events", "minutes", "calls", "alert_log", "silences", "active_alerts", "desks"))]
    assert [r for r in _pg_relations(db) if r[0] != "hist"] == before


@pytest.mark.needs("postgresql")
def test_postgres_errors_are_one_line_naming_the_problem(
        postgresql: Postgres, capsys: pytest.CaptureFixture[str]) -> None:
    """A search path that names no schema, and a user without rights on the schema: one line each (the SQL
    that failed and psycopg's ``LINE 1: ... ^`` were printed under it), never the password."""
    import psycopg

    from host_agent.cli import main

    db = postgresql.create_database()
    with psycopg.connect(db, autocommit=True) as conn:
        conn.execute("CREATE ROLE reader LOGIN PASSWORD 'reader-pw-77'")
        conn.execute("REVOKE CREATE ON SCHEMA public FROM PUBLIC")
    nowhere = db + "?options=-c%20search_path%3Dnope"
    reader = db.replace(f"{postgresql.user}:{postgresql.password}@", "reader:reader-pw-77@")
    for url, message in (
            (nowhere, f"{redact(nowhere)} has no schema to keep the history in: none of its search_path (nope) exists; "
                      "create the schema, or name one with options=-c search_path=SCHEMA"),
            (reader, f"cannot open the history database {redact(reader)}: permission denied for schema public")):
        assert main(["silence", "list", "--db", url]) == 1
        assert capsys.readouterr().err == f"headset-host: {message}\n"
    assert _pg_relations(db) == []


@pytest.mark.parametrize("backend", BACKENDS)
def test_a_schema_version_table_of_another_tool_is_no_history(
        backend: str, tmp_path: Path, request: pytest.FixtureRequest, capsys: pytest.CaptureFixture[str]) -> None:
    """An old Flyway's ``schema_version`` (a text version, no applied_ms) is not ours: refused with a message,
    nothing added. It was read as our version ('1.2': a traceback; '2': migrations 3 and 4 added our calls
    table to the other database)."""
    from host_agent.cli import main

    db = new_history_db(backend, tmp_path, request)
    ddl = ("CREATE TABLE schema_version (installed_rank INTEGER, version VARCHAR(50), description TEXT)",
           "CREATE TABLE customers (id INTEGER)")
    reason = "its schema_version table has no applied_ms column (its columns: installed_rank, version, description)"
    for version in ("1.2", "2"):
        if is_postgres_url(db):
            import psycopg

            db = new_history_db(backend, tmp_path, request)
            with psycopg.connect(db, autocommit=True) as conn:
                for sql in ddl:
                    conn.execute(sql)
                conn.execute("INSERT INTO schema_version VALUES (1, %s, 'init')", (version,))
            before: object = _pg_relations(db)
        else:
            db = str(tmp_path / f"flyway-{version}.db")
            lite = sqlite3.connect(db)
            for sql in ddl:
                lite.execute(sql)
            lite.execute("INSERT INTO schema_version VALUES (1, ?, 'init')", (version,))
            lite.commit()
            lite.close()
            before = Path(db).read_bytes()
        message = f"{redact(db)} is not a history database of headset-host ({reason}): refusing to change it"
        for readonly in (False, True):
            with pytest.raises(StorageError) as err:
                open_store(db, readonly=readonly)
            assert str(err.value) == message
        assert main(["silence", "list", "--db", db]) == 1
        assert capsys.readouterr().err == f"headset-host: {message}\n"
        after = _pg_relations(db) if is_postgres_url(db) else Path(db).read_bytes()
        assert after == before


def test_a_schema_version_with_versions_that_are_not_whole_numbers_is_no_history(tmp_path: Path) -> None:
    db = tmp_path / "odd.db"
    conn = sqlite3.connect(db)
    conn.execute("CREATE TABLE schema_version (version INTEGER NOT NULL, applied_ms INTEGER)")
    conn.execute("INSERT INTO schema_version VALUES ('1.2', 0)")  # SQLite stores it as a REAL
    conn.commit()
    conn.close()
    with pytest.raises(StorageError, match=r"\(the version column of its schema_version table does not hold whole "
                                           r"numbers\): refusing to change it$"):
        open_store(str(db))


@pytest.mark.needs("postgresql")
@pytest.mark.parametrize("version", range(SCHEMA_VERSION + 1))
def test_every_postgres_history_this_host_ever_wrote_still_opens(postgresql: Postgres, version: int) -> None:
    """The refusal above never hits a history: one at each version (0: a start that stopped after the
    schema_version table), one where a DBA added a view of their own, and an empty database."""
    import psycopg

    from host_agent.history.postgres import migrate as pg_migrate

    db = postgresql.create_database()
    with psycopg.connect(db, autocommit=True) as conn:
        pg_migrate(conn, target=version)
        if version:
            conn.execute("CREATE VIEW dba_report AS SELECT COUNT(*) AS n FROM events")
    store = open_store(db)
    assert store.found_version == version
    store.close()
    assert sql_rows(db, "SELECT MAX(version) FROM schema_version") == [(SCHEMA_VERSION,)]
    empty = postgresql.create_database()
    store = open_store(empty)
    assert store.found_version == 0
    store.close()


def test_a_folder_named_as_the_history_is_named_as_such(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """Not SQLite's "disk I/O error" or "unable to open database file"; nothing is made in the folder."""
    from host_agent.cli import main

    folder = tmp_path / "hist"
    folder.mkdir()
    message = f"the history database {folder} is a directory, not a database file"
    for readonly in (False, True):
        with pytest.raises(StorageError, match=f"^{message}$"):
            open_store(str(folder), readonly=readonly)
    for argv in (["silence", "list", "--db", str(folder)], ["report", "--db", str(folder), "--site", "s1"]):
        assert main(argv) == 1
        assert capsys.readouterr().err == f"headset-host: {message}\n"
    assert list(folder.iterdir()) == []


@pytest.mark.parametrize("version", range(SCHEMA_VERSION + 1))
def test_every_sqlite_history_this_host_ever_wrote_still_opens(tmp_path: Path, version: int) -> None:
    """A history at each version (0: a start that stopped between the schema_version table and migration 1),
    an empty file and a new path are all this host's: opened and migrated, not refused."""
    db = tmp_path / f"v{version}.db"
    conn = sqlite3.connect(db)
    migrate(conn, target=version)
    conn.close()
    store = open_store(str(db))
    assert store.found_version == version
    store.close()
    empty = tmp_path / "empty.db"
    empty.touch()
    for path in (empty, tmp_path / "new" / "host.db"):
        store = open_store(str(path))
        assert store.found_version == 0
        store.close()
        assert sql_rows(path, "SELECT MAX(version) FROM schema_version") == [(SCHEMA_VERSION,)]


def test_read_only_open_of_a_missing_database_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(StorageError, match="cannot open the history database"):
        SqliteStore(tmp_path / "none.db", readonly=True)


@pytest.mark.needs("postgresql")
def test_postgres_errors_name_the_database_without_its_password(postgresql: Postgres) -> None:
    empty = postgresql.create_database()
    with pytest.raises(StorageError, match="holds no history yet") as err:
        open_store(empty, readonly=True)
    assert postgresql.password not in str(err.value) and ":***@" in str(err.value)
    wrong = empty.replace(postgresql.password, "not-the-password")
    with pytest.raises(StorageError, match="password authentication failed") as err:
        open_store(wrong)
    assert "not-the-password" not in str(err.value) and redact(wrong) in str(err.value)
    store = open_store(empty)
    ro = open_store(empty, readonly=True)
    with pytest.raises(StorageError, match="read-only"):
        ro.add_silence(Silence("site1", "*", "*", T0 + 10, T0, "me"))
    ro.close()
    store.close()


@pytest.mark.needs("postgresql")
def test_postgres_lost_connection_replays_the_open_transaction(postgresql: Postgres) -> None:
    """The server drops the writer's connection mid-batch: the batch is replayed on a new connection, so a
    commit (after which the host acknowledges QoS 1 messages) never covers a lost row."""
    db = postgresql.create_database()
    store = open_store(db)
    d = Desk("site1", "d01", clock=lambda: T0)
    first = [d.event(EventKind.WORN) for _ in range(3)]
    assert all(store.add_event(e) for e in first)
    import psycopg

    with psycopg.connect(db, autocommit=True) as admin:
        n = admin.execute("SELECT COUNT(pg_terminate_backend(pid)) FROM pg_stat_activity "
                          "WHERE datname = current_database() AND pid <> pg_backend_pid()").fetchone()
    assert n is not None and n[0] >= 1
    second = [d.event(EventKind.DOFFED) for _ in range(2)]
    assert all(store.add_event(e) for e in second)
    assert not store.add_event(first[0])  # the replayed batch still deduplicates
    store.commit()
    assert store.events("site1", 0, 2**62) == first + second
    store.close()


@pytest.mark.parametrize(("db", "words"), [
    ("postgres://u:pw@db.example/hist", None),
    ("postgresql://u:pw@db.example:5433/hist?sslmode=verify-full&application_name=h1", None),
    ("postgresql:///hist?host=/run/postgresql", None),
    ("mysql://u:pw@h/x", "must start with postgresql://"),
    ("postgresql://u:secret9@h:99999/x", "port"),
    ("postgresql://u:secret9@h:port/x", "port"),
    ("postgresql://u:secret9@h:5432/", "names no database"),
    ("postgresql://u:secret9@h:5432/a/b", "names no database"),
    ("postgresql://u:secret9@/x", "names no server"),
    ("postgresql://u:secret9@h/x?sslmod=require", "unknown parameter 'sslmod'"),
    ("  ", "not empty"),
])
def test_config_db_takes_a_checked_postgres_url(db: str, words: str | None) -> None:
    doc = {"host": {"db": db}}
    if words is None:
        assert parse_config(doc).db == db
        return
    with pytest.raises(ConfigError, match=words) as err:
        parse_config(doc)
    assert str(err.value).startswith("host.db") and "secret9" not in str(err.value)
    assert getattr(err.value, "field", None) == "host.db"


def test_redact_hides_only_the_password() -> None:
    assert redact("postgresql://hsc:pw@127.0.0.1:5432/h") == "postgresql://hsc:***@127.0.0.1:5432/h"
    assert redact("postgresql://hsc@127.0.0.1/h") == "postgresql://hsc@127.0.0.1/h"
    assert redact("/var/lib/headset-coach/host.db") == "/var/lib/headset-coach/host.db"
