"""SQLite history: the embedded default.

WAL mode, so reports and the ``silence`` command read and write while the host runs, with
``synchronous=FULL``: a commit is on disk when ``commit()`` returns (the WAL is fsynced), which is what
the host's QoS 1 acknowledgements promise (they are sent only after the commit). The cost is one fsync
per commit; the host batches many messages per commit under load. One connection, shared by the threads
under a lock; writes join one transaction until :meth:`SqliteStore.commit`.
"""

from __future__ import annotations

import sqlite3
import threading
import time
from collections.abc import Sequence
from pathlib import Path

from host_agent.errors import StorageError
from host_agent.history.base import Row, SqlStore
from host_agent.history.migrations import (
    SCHEMA_VERSION,
    SCHEMA_VERSION_TABLE,
    SQLITE,
    foreign_reason,
    newer_message,
    not_ours_message,
    statements,
)


def check_ours(conn: sqlite3.Connection, path: str) -> None:
    """Refuse a database that is not a history, before anything is written to it.

    The rule (:func:`~host_agent.history.migrations.foreign_reason`, the same on PostgreSQL): a database
    with tables but no ``schema_version (version, applied_ms)`` of whole numbers is someone else's; an
    empty database (a new or empty file) is a history to be."""
    tables = sorted(row[0] for row in conn.execute(
        "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite!_%' ESCAPE '!'"))
    columns = {str(row[1]): "INT" in str(row[2]).upper()  # SQLite's rule for an integer column
               for row in conn.execute("PRAGMA table_info(schema_version)")} if "schema_version" in tables else {}
    reason = foreign_reason(tables, columns)
    if reason is None and columns and conn.execute(
            "SELECT COUNT(*) FROM schema_version WHERE typeof(version) != 'integer'").fetchone()[0]:
        reason = "the version column of its schema_version table does not hold whole numbers"
    if reason is not None:
        raise StorageError(not_ours_message(path, reason))


def migrate(conn: sqlite3.Connection, target: int = SCHEMA_VERSION) -> int:
    """Apply the missing migrations up to ``target``; return the version found before."""
    conn.execute(SQLITE.render(SCHEMA_VERSION_TABLE))
    row = conn.execute("SELECT MAX(version) FROM schema_version").fetchone()
    found = int(row[0] or 0)
    if found > SCHEMA_VERSION:
        raise StorageError(newer_message(found))
    for version in range(found + 1, target + 1):
        with conn:  # commits the version, or rolls all of it back: sqlite3 opens no transaction for DDL
            conn.execute("BEGIN")  # itself, so without this a failed migration would leave part of it
            for sql in statements(version, SQLITE):
                conn.execute(sql)
            conn.execute("INSERT INTO schema_version VALUES (?, ?)", (version, int(time.time() * 1000)))
    return found


class SqliteStore(SqlStore):
    """:class:`~host_agent.history.HistoryStore` on SQLite. One writer thread; ``commit()`` batches writes."""

    def __init__(self, path: str | Path, *, readonly: bool = False) -> None:
        self.path = self.name = str(path)
        if self.path != ":memory:" and Path(self.path).is_dir():  # SQLite would say "disk I/O error"
            raise StorageError(f"the history database {self.path} is a directory, not a database file")
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
            if self.path != ":memory:":
                try:
                    check_ours(self._conn, self.path)  # before the WAL pragma, which already changes the file
                except (StorageError, sqlite3.Error):
                    self._conn.close()
                    raise
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

    def _exec(self, sql: str, args: Sequence[object]) -> tuple[int, list[Row]]:
        try:
            with self._lock:
                cur = self._conn.execute(sql, tuple(args))
                return cur.rowcount, cur.fetchall()
        except sqlite3.Error as exc:
            raise StorageError(f"history database {self.path}: {exc}") from None

    def _write(self, sql: str, args: Sequence[object] = ()) -> tuple[int, list[Row]]:
        return self._exec(sql, args)

    def _read(self, sql: str, args: Sequence[object] = ()) -> list[Row]:
        return self._exec(sql, args)[1]

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
