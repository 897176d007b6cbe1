"""PostgreSQL history (``[host] db = "postgresql://user:pass@host:port/dbname"``), for a history that
several hosts share (each follows its own sites) and that outgrows one machine.

psycopg 3 with a :class:`psycopg_pool.ConnectionPool`:

- **Writes** (the host's processing thread) take one connection from the pool at the first write of a
  transaction and give it back at :meth:`PostgresStore.commit`, so a batch of messages is one
  transaction and one round trip to commit. The dedup keys are primary keys and every insert of an
  event or minute is ``INSERT ... ON CONFLICT DO NOTHING``: two hosts, or a redelivery, never store an
  event twice, and ``add_event`` still says whether the row was new.
- **Reads** from the thread with the open transaction use its connection (they see its writes, as on
  SQLite); reads from other threads (reports, the dashboard) take their own pooled connection.
- **A lost connection** (server restart, network) does not lose the batch: the statements of the open
  transaction are kept until it commits, and replayed once on a fresh connection. If that fails too,
  :class:`StorageError` is raised and the statements are kept for the next ``commit()``, so the host's
  QoS 1 acknowledgements (sent only after a successful commit) never cover a lost row. A commit whose
  answer was lost may, in that rare case, apply twice: events and minutes are deduplicated; an alert
  transition may then appear twice in ``alert_log``.
- **Migrations** run in one transaction under an advisory lock, so two hosts starting at once migrate
  once. DDL is transactional in PostgreSQL: a failed migration leaves the previous version.

The password is never shown: messages name the database as :func:`redact` writes it.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Sequence
from typing import Any

import psycopg
from psycopg_pool import ConnectionPool, PoolTimeout

from host_agent.errors import StorageError
from host_agent.history.base import Row, SqlStore
from host_agent.history.migrations import (
    POSTGRES,
    SCHEMA_VERSION,
    SCHEMA_VERSION_TABLE,
    foreign_reason,
    newer_message,
    not_ours_message,
    statements,
)
from host_agent.history.url import redact

log = logging.getLogger("host_agent.history")

MIGRATION_LOCK = 0x68736368  # "hsch": the advisory lock key held while migrating
POOL_MAX = 4
"""Connections per process: the writer, and readers (reports, the dashboard's panels)."""
CONNECT_TIMEOUT_S = 10


_TABLES = """SELECT c.relname FROM pg_catalog.pg_class c JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
    WHERE n.nspname = current_schema() AND c.relkind IN ('r', 'p', 'v', 'm', 'f') ORDER BY c.relname"""
"""The tables (and views) of the schema our tables would be created in: the first of the search path."""
_VERSION_COLUMNS = """SELECT a.attname, a.atttypid::regtype::text FROM pg_catalog.pg_attribute a
    WHERE a.attrelid = to_regclass(format('%I.schema_version', current_schema()))
    AND a.attnum > 0 AND NOT a.attisdropped ORDER BY a.attnum"""
_WHOLE_NUMBER_TYPES = frozenset({"smallint", "integer", "bigint"})


def check_ours(conn: psycopg.Connection[Any], name: str) -> None:
    """Refuse a database that is not a history, before anything is written to it: the rule of
    :func:`~host_agent.history.migrations.foreign_reason`, as on SQLite, applied to the schema the history's
    tables are (or would be) in: ``current_schema()``, the first schema of the search path that exists
    (``public``, or the one ``?options=-c search_path=...`` names). Tables in other schemas do not count."""
    row = conn.execute("SELECT current_schema(), current_setting('search_path')").fetchone()
    if row is None or row[0] is None:  # CREATE TABLE would say "no schema has been selected to create in"
        path = row[1] if row else "?"
        raise StorageError(f"{name} has no schema to keep the history in: none of its search_path ({path or 'empty'}) "
                           "exists; create the schema, or name one with options=-c search_path=SCHEMA")
    tables = [str(r[0]) for r in conn.execute(_TABLES).fetchall()]
    columns = ({str(col): str(kind) in _WHOLE_NUMBER_TYPES for col, kind in conn.execute(_VERSION_COLUMNS).fetchall()}
               if "schema_version" in tables else {})
    reason = foreign_reason(tables, columns)
    if reason is not None:
        raise StorageError(not_ours_message(name, reason))


def migrate(conn: psycopg.Connection[Any], target: int = SCHEMA_VERSION, name: str | None = None) -> int:
    """Apply the missing migrations up to ``target`` (``conn`` in autocommit); return the version found.

    Refuses (:func:`check_ours`) a database that holds other tables than a history's; ``name`` is the
    database as messages show it (default: its name)."""
    with conn.transaction():
        conn.execute("SELECT pg_advisory_xact_lock(%s)", (MIGRATION_LOCK,))
        check_ours(conn, name or f"PostgreSQL database {conn.info.dbname}")
        conn.execute(POSTGRES.render(SCHEMA_VERSION_TABLE))
        row = conn.execute("SELECT MAX(version) FROM schema_version").fetchone()
        found = int(row[0] or 0) if row else 0
        if found > SCHEMA_VERSION:
            raise StorageError(newer_message(found))
        for version in range(found + 1, target + 1):
            for sql in statements(version, POSTGRES):
                conn.execute(sql)  # built from constants, not input
            conn.execute("INSERT INTO schema_version VALUES (%s, %s)", (version, int(time.time() * 1000)))
    return found


def _pg(sql: str) -> str:
    return sql.replace("?", "%s")


class PostgresStore(SqlStore):
    """:class:`~host_agent.history.HistoryStore` on PostgreSQL (see the module doc)."""

    def __init__(self, url: str, *, readonly: bool = False, pool_max: int = POOL_MAX) -> None:
        self.url = url
        self.name = redact(url)
        self.readonly = readonly
        try:
            with psycopg.connect(url, autocommit=True, connect_timeout=CONNECT_TIMEOUT_S) as conn:
                if readonly:
                    check_ours(conn, self.name)
                    row = conn.execute("SELECT MAX(version) FROM schema_version").fetchone()
                    self.found_version = int(row[0] or 0) if row else 0
                    if self.found_version < SCHEMA_VERSION:
                        raise StorageError(f"{self.name} has schema version {self.found_version}; "
                                           "run the host once to upgrade it")
                else:
                    self.found_version = migrate(conn, name=self.name)
        except StorageError:
            raise
        except psycopg.errors.UndefinedTable:
            raise StorageError(f"{self.name} holds no history yet: run the host once with it") from None
        except psycopg.Error as exc:
            raise StorageError(f"cannot open the history database {self.name}: {self._scrub(exc)}") from None
        options = "-c default_transaction_read_only=on" if readonly else ""
        self._pool: ConnectionPool[Any] = ConnectionPool(
            url, min_size=1, max_size=pool_max, open=False, name="hsc-history",
            kwargs={"autocommit": False, "connect_timeout": CONNECT_TIMEOUT_S, "options": options})
        try:
            self._pool.open(wait=True, timeout=CONNECT_TIMEOUT_S)
        except PoolTimeout:
            self._pool.close()
            raise StorageError(f"cannot open a connection pool to {self.name}") from None
        self._lock = threading.RLock()
        self._tx: psycopg.Connection[Any] | None = None
        self._tx_thread = 0
        self._pending: list[tuple[str, Sequence[object]]] = []
        """The statements of the open transaction, replayed on a fresh connection if it was lost."""

    def _scrub(self, exc: BaseException) -> str:
        """The error's message in one line (the server's primary message, without the SQL it quotes),
        without the password."""
        diag = getattr(exc, "diag", None)
        primary = getattr(diag, "message_primary", None) if diag is not None else None
        lines = [line.strip() for line in str(primary or exc).splitlines() if line.strip()]
        text = "; ".join(lines) or type(exc).__name__
        password = psycopg.conninfo.conninfo_to_dict(self.url).get("password")
        return text.replace(str(password), "***") if password else text

    def _error(self, exc: BaseException) -> StorageError:
        return StorageError(f"history database {self.name}: {self._scrub(exc)}")

    # the open transaction ---------------------------------------------------------------------------

    def _begin(self) -> psycopg.Connection[Any]:
        """The open transaction's connection; a fresh one replays the statements of the transaction."""
        if self._tx is None:
            try:
                conn = self._pool.getconn(timeout=CONNECT_TIMEOUT_S)
            except PoolTimeout:
                raise StorageError(f"history database {self.name}: no connection (is the server up?)") from None
            self._tx, self._tx_thread = conn, threading.get_ident()
            for sql, args in self._pending:
                conn.execute(_pg(sql), args)
        return self._tx

    def _drop_tx(self, broken: bool) -> None:
        conn, self._tx = self._tx, None
        if conn is None:
            return
        try:
            if broken:
                conn.close()  # the pool discards a closed connection
            else:
                conn.rollback()
        except psycopg.Error:
            pass
        self._pool.putconn(conn)

    def _write(self, sql: str, args: Sequence[object] = ()) -> tuple[int, list[Row]]:
        return self._in_tx(sql, args, record=True)

    def _in_tx(self, sql: str, args: Sequence[object], *, record: bool) -> tuple[int, list[Row]]:
        with self._lock:
            for attempt in (1, 2):
                try:
                    cur = self._begin().execute(_pg(sql), args)
                    result = cur.rowcount, (cur.fetchall() if cur.description else [])
                    if record:
                        self._pending.append((sql, args))
                    return result
                except psycopg.OperationalError as exc:  # the connection is gone: replay on a new one
                    self._drop_tx(broken=True)
                    if attempt == 2:
                        raise self._error(exc) from None
                    log.warning("history database %s: %s; replaying %d statements on a new connection",
                                self.name, self._scrub(exc), len(self._pending))
                except psycopg.Error as exc:  # the statement failed: PostgreSQL aborted the transaction,
                    self._drop_tx(broken=False)  # which the next write rebuilds without it
                    raise self._error(exc) from None
        raise AssertionError("unreachable")

    def commit(self) -> None:
        with self._lock:
            if self._tx is None and not self._pending:
                return
            for attempt in (1, 2):
                try:
                    self._begin().commit()
                    self._pending.clear()
                    conn, self._tx = self._tx, None
                    if conn is not None:
                        self._pool.putconn(conn)
                    return
                except psycopg.OperationalError as exc:
                    self._drop_tx(broken=True)
                    if attempt == 2:
                        raise self._error(exc) from None
                    log.warning("history database %s: commit failed (%s); replaying %d statements",
                                self.name, self._scrub(exc), len(self._pending))
                except psycopg.Error as exc:
                    self._drop_tx(broken=False)
                    self._pending.clear()
                    raise self._error(exc) from None

    def _read(self, sql: str, args: Sequence[object] = ()) -> list[Row]:
        with self._lock:
            if self._tx is not None and self._tx_thread == threading.get_ident():
                return self._in_tx(sql, args, record=False)[1]  # sees the open transaction's writes
        try:
            with self._pool.connection(timeout=CONNECT_TIMEOUT_S) as conn:
                rows: list[Row] = conn.execute(_pg(sql), args).fetchall()
                return rows
        except PoolTimeout:
            raise StorageError(f"history database {self.name}: no connection (is the server up?)") from None
        except psycopg.Error as exc:
            raise self._error(exc) from None

    def close(self) -> None:
        try:
            self.commit()
        finally:
            with self._lock:
                self._drop_tx(broken=False)
            self._pool.close()
