"""The durable spool: events and minute rollups are written here before they are published.

SQLite in WAL mode with ``synchronous=FULL``: every ``append`` that returns has been fsynced to the
write-ahead log, so neither ``kill -9`` nor a power cut loses it (``NORMAL`` would survive a process
crash but may roll back the last commits on a power cut, which is the case this spool exists for).
A row is deleted only after the broker acknowledged it (PUBACK); a delete that is lost in a crash
only causes a redelivery with the same (boot, seq), which the host deduplicates.

The spool is bounded: past ``max_rows`` the oldest rows are evicted in the same transaction as the
append, and the count of evicted rows is kept in the database until :meth:`Spool.take_dropped`
reads it, so the "rows dropped" event survives a restart too. Row ids come from ``AUTOINCREMENT`` and
are never reused, so "rows after id N" is the replay order.

A file that is not a valid SQLite database is moved aside (``<name>.corrupt-<time>``, never
deleted) and a new spool is started; ``Spool.moved_aside`` then names the old file.
"""

from __future__ import annotations

import logging
import sqlite3
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path

from device.errors import AgentError

log = logging.getLogger("device.spool")

SCHEMA_VERSION = 1
_SCHEMA = """
CREATE TABLE IF NOT EXISTS rows (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    topic TEXT NOT NULL,
    payload BLOB NOT NULL,
    qos INTEGER NOT NULL CHECK (qos IN (0, 1, 2))
);
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value INTEGER NOT NULL);
INSERT OR IGNORE INTO meta (key, value) VALUES ('dropped', 0);
"""


class SpoolError(AgentError, OSError):
    """The spool database cannot be opened, read or written."""


@dataclass(frozen=True, slots=True)
class SpoolRow:
    """One spooled message: ``payload`` is the encoded mqtt_schema message, published to ``topic``."""

    id: int
    topic: str
    payload: bytes
    qos: int


class Spool:
    """A bounded, durable FIFO of (topic, payload, qos) rows. Thread-safe; a context manager."""

    def __init__(self, path: Path, max_rows: int = 100_000, *, recover_corrupt: bool = True) -> None:
        """Open (or create) the spool at ``path``.

        ``max_rows``: the bound (at least 1). ``recover_corrupt``: move a corrupt file aside and start
        a new spool (True) or raise :class:`SpoolError` (False).
        """
        if not isinstance(max_rows, int) or isinstance(max_rows, bool) or max_rows < 1:
            raise ValueError(f"max_rows must be a positive integer, got {max_rows!r}")
        self.path = Path(path)
        self.max_rows = max_rows
        self.moved_aside: Path | None = None
        self._lock = threading.Lock()
        self._closed = False
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise SpoolError(f"cannot create the spool folder {self.path.parent}: {exc.strerror or exc}") from None
        try:
            self._db = self._open()
        except sqlite3.DatabaseError as exc:
            if not recover_corrupt or isinstance(exc, sqlite3.OperationalError) and not _is_corruption(exc):
                raise SpoolError(f"cannot open the spool {self.path}: {exc}") from None
            self.moved_aside = self._move_aside()
            log.error("the spool %s was corrupt (%s); moved it aside to %s and started a new one",
                      self.path, exc, self.moved_aside)
            try:
                self._db = self._open()
            except sqlite3.DatabaseError as exc2:
                raise SpoolError(f"cannot create a new spool at {self.path}: {exc2}") from None
        self._count = int(self._db.execute("SELECT COUNT(*) FROM rows").fetchone()[0])
        self._maybe_dropped = bool(self._db.execute("SELECT value FROM meta WHERE key = 'dropped'").fetchone()[0])

    def _open(self) -> sqlite3.Connection:
        db = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False, timeout=10.0)
        try:
            mode = db.execute("PRAGMA journal_mode=WAL").fetchone()[0]
            if str(mode).lower() != "wal":
                raise SpoolError(f"the spool {self.path} cannot use WAL mode (got {mode!r})")
            db.execute("PRAGMA synchronous=FULL")
            db.executescript(_SCHEMA)
            check = db.execute("PRAGMA quick_check").fetchone()[0]
            if check != "ok":
                raise sqlite3.DatabaseError(f"integrity check failed: {check}")
            version = int(db.execute("PRAGMA user_version").fetchone()[0])
            if version == 0:
                db.execute(f"PRAGMA user_version={SCHEMA_VERSION}")
            elif version != SCHEMA_VERSION:
                raise SpoolError(f"the spool {self.path} has schema version {version}; this agent reads {SCHEMA_VERSION}")
        except BaseException:
            db.close()
            raise
        return db

    def _move_aside(self) -> Path:
        stamp = time.strftime("%Y%m%dT%H%M%S")
        target = self.path.with_name(f"{self.path.name}.corrupt-{stamp}")
        n = 1
        while target.exists():
            target = self.path.with_name(f"{self.path.name}.corrupt-{stamp}-{n}")
            n += 1
        try:
            self.path.rename(target)
            for suffix in ("-wal", "-shm"):
                side = self.path.with_name(self.path.name + suffix)
                if side.exists():
                    side.rename(target.with_name(target.name + suffix))
        except OSError as exc:
            raise SpoolError(f"the spool {self.path} is corrupt and cannot be moved aside: {exc.strerror or exc}") from None
        return target

    # --- the FIFO ----------------------------------------------------------------------------------

    def append(self, topic: str, payload: bytes, qos: int = 1, *, evict: bool = True) -> int:
        """Store a row durably (fsynced when this returns) and return its id.

        Past the bound the oldest rows are evicted (and counted for :meth:`take_dropped`); ``evict=False``
        lets this one row exceed the bound (the note that reports a loss must not cause another).
        """
        if not isinstance(topic, str) or not topic:
            raise ValueError(f"topic must be a non-empty string, got {topic!r}")
        if not isinstance(payload, (bytes, bytearray, memoryview)):
            raise ValueError(f"payload must be bytes, got {type(payload).__name__}")
        if qos not in (0, 1, 2):
            raise ValueError(f"qos must be 0, 1 or 2, got {qos!r}")
        with self._lock:
            db = self._conn()
            try:
                db.execute("BEGIN IMMEDIATE")
                cur = db.execute("INSERT INTO rows (topic, payload, qos) VALUES (?, ?, ?)", (topic, bytes(payload), qos))
                row_id = int(cur.lastrowid or 0)
                excess = self._count + 1 - self.max_rows
                if excess > 0 and evict:
                    deleted = db.execute(
                        "DELETE FROM rows WHERE id IN (SELECT id FROM rows ORDER BY id LIMIT ?)", (excess,)
                    ).rowcount
                    db.execute("UPDATE meta SET value = value + ? WHERE key = 'dropped'", (deleted,))
                    self._maybe_dropped = True
                else:
                    deleted = 0
                db.execute("COMMIT")
            except sqlite3.Error as exc:
                self._rollback(db)
                raise SpoolError(f"cannot append to the spool {self.path}: {exc}") from None
            self._count += 1 - deleted
            return row_id

    def pending(self, limit: int = 100, after_id: int = 0) -> list[SpoolRow]:
        """Up to ``limit`` rows with an id greater than ``after_id``, oldest first."""
        with self._lock:
            try:
                cur = self._conn().execute(
                    "SELECT id, topic, payload, qos FROM rows WHERE id > ? ORDER BY id LIMIT ?", (after_id, limit)
                )
                return [SpoolRow(int(i), str(t), bytes(p), int(q)) for i, t, p, q in cur.fetchall()]
            except sqlite3.Error as exc:
                raise SpoolError(f"cannot read the spool {self.path}: {exc}") from None

    def delete(self, row_id: int) -> None:
        """Delete one row (after its PUBACK). A missing row (evicted, or deleted before) is fine."""
        self.delete_many((row_id,))

    def delete_many(self, row_ids: Iterable[int]) -> int:
        """Delete several rows in one transaction; return how many existed."""
        ids = [(int(i),) for i in row_ids]
        if not ids:
            return 0
        with self._lock:
            db = self._conn()
            try:
                db.execute("BEGIN IMMEDIATE")
                before = db.total_changes
                db.executemany("DELETE FROM rows WHERE id = ?", ids)
                deleted = db.total_changes - before
                db.execute("COMMIT")
            except sqlite3.Error as exc:
                self._rollback(db)
                raise SpoolError(f"cannot delete from the spool {self.path}: {exc}") from None
            self._count -= deleted
            return deleted

    def take_dropped(self) -> int:
        """Rows evicted (oldest first) past ``max_rows`` since the last call; resets the count."""
        return self._reset_dropped(None)

    def report_dropped(self, make: Callable[[int], tuple[str, bytes, int]]) -> int:
        """Turn the dropped count into one row, atomically: ``make(count)`` gives (topic, payload, qos).

        The row is appended without eviction and the count reset in the same transaction, so a crash
        loses neither the count nor the report. Returns the count (0: nothing was appended).
        """
        return self._reset_dropped(make)

    def _reset_dropped(self, make: Callable[[int], tuple[str, bytes, int]] | None) -> int:
        """Read and zero the dropped count in one transaction, appending ``make(count)``'s row if given."""
        with self._lock:
            db = self._conn()
            if not self._maybe_dropped:
                return 0
            try:
                db.execute("BEGIN IMMEDIATE")
                n = int(db.execute("SELECT value FROM meta WHERE key = 'dropped'").fetchone()[0])
                if n:
                    if make is not None:
                        topic, payload, qos = make(n)
                        db.execute("INSERT INTO rows (topic, payload, qos) VALUES (?, ?, ?)",
                                   (topic, bytes(payload), qos))
                    db.execute("UPDATE meta SET value = 0 WHERE key = 'dropped'")
                db.execute("COMMIT")
            except BaseException as exc:
                self._rollback(db)
                if isinstance(exc, sqlite3.Error):
                    raise SpoolError(f"cannot update the spool {self.path}: {exc}") from None
                raise
            self._maybe_dropped = False
            if n and make is not None:
                self._count += 1
            return n

    def __len__(self) -> int:
        with self._lock:
            return self._count

    @property
    def closed(self) -> bool:
        """True once :meth:`close` was called."""
        return self._closed

    def close(self) -> None:
        """Close the database (idempotent)."""
        with self._lock:
            if not self._closed:
                self._closed = True
                self._db.close()

    def __enter__(self) -> Spool:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _conn(self) -> sqlite3.Connection:
        if self._closed:
            raise SpoolError(f"the spool {self.path} is closed")
        return self._db

    @staticmethod
    def _rollback(db: sqlite3.Connection) -> None:
        try:
            if db.in_transaction:
                db.execute("ROLLBACK")
        except sqlite3.Error:
            pass


def _is_corruption(exc: sqlite3.Error) -> bool:
    text = str(exc).lower()
    return "not a database" in text or "malformed" in text or "corrupt" in text
