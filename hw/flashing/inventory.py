"""The flashing inventory: one SQLite row per board flashed (or failed), exportable as CSV or JSON.

An inventory written before the ``model`` column existed gets it (empty) when opened. The inventory has
no schema-version table: it is the ``flashes`` table. A SQLite file that has tables but no ``flashes``
table with the inventory's columns is someone else's database, and is refused without being changed.
"""

from __future__ import annotations

import csv
import json
import os
import sqlite3
import threading
from dataclasses import astuple, dataclass, fields
from pathlib import Path
from typing import TextIO

from hw.errors import FlashError

DEFAULT_PATH = Path(os.environ.get("HSC_INVENTORY", Path.home() / ".local/share/headset-coach/inventory.sqlite"))

SCHEMA = """
CREATE TABLE IF NOT EXISTS flashes (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    time TEXT NOT NULL,          -- UTC, ISO 8601
    board_id TEXT NOT NULL,      -- machine.unique_id() in hex, '' when unreadable
    port TEXT NOT NULL,
    fw_hash TEXT NOT NULL,       -- Manifest.fw_hash
    fw_version TEXT NOT NULL,
    micropython TEXT NOT NULL,
    operator TEXT NOT NULL,
    site TEXT NOT NULL,
    desk TEXT NOT NULL,
    model TEXT NOT NULL DEFAULT '',  -- headset model id from the device config, '' when not set
    result TEXT NOT NULL,        -- ok | failed
    files_written INTEGER NOT NULL,
    detail TEXT NOT NULL         -- self-test values, or the error
)
"""


@dataclass(frozen=True)
class Record:
    time: str
    board_id: str
    port: str
    fw_hash: str
    fw_version: str
    micropython: str
    operator: str
    site: str
    desk: str
    model: str
    result: str
    files_written: int
    detail: str


COLUMNS = tuple(f.name for f in fields(Record))
FIRST_COLUMNS = frozenset({"id", *COLUMNS} - {"model"})
"""The columns of the first release's ``flashes`` table: every inventory this tool wrote has them."""


class Inventory:
    def __init__(self, path: str | Path = DEFAULT_PATH, *, create: bool = True):
        """Open (or, with ``create``, create) the inventory at ``path``. Without ``create`` a path that
        does not exist is a :class:`FlashError` and nothing is created (a read-only listing)."""
        self.path = Path(path)
        if self.path.is_dir():  # SQLite would say "unable to open database file"
            raise FlashError(f"inventory {self.path} is a directory, not a database file")
        if not create and not self.path.exists():
            raise FlashError(f"no inventory at {self.path}: nothing has been flashed with it yet")
        try:
            if create:
                self.path.parent.mkdir(parents=True, exist_ok=True)
            self.db = sqlite3.connect(self.path, check_same_thread=False, timeout=10)
            try:
                self._check_ours()
            except BaseException:
                self.db.close()
                raise
            self.db.executescript(SCHEMA)
            have = {row[1] for row in self.db.execute("PRAGMA table_info(flashes)")}
            if "model" not in have:  # an inventory from before the model column
                with self.db:
                    self.db.execute("ALTER TABLE flashes ADD COLUMN model TEXT NOT NULL DEFAULT ''")
            self.lock = threading.Lock()  # one connection, shared by the batch's threads
        except (OSError, sqlite3.Error) as exc:
            raise FlashError(f"inventory {self.path} cannot be opened: {exc}") from None

    def _check_ours(self) -> None:
        """Refuse, before anything is written, a database that has tables but no inventory."""
        tables = sorted(row[0] for row in self.db.execute(
            "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite!_%' ESCAPE '!'"))
        if not tables:
            return  # a new or empty file: the inventory is created in it
        if "flashes" not in tables:
            raise FlashError(f"{self.path} is not a flashing inventory (its tables: {', '.join(tables[:5])}"
                             f"{', ...' if len(tables) > 5 else ''}; no flashes table): refusing to change it")
        missing = FIRST_COLUMNS - {row[1] for row in self.db.execute("PRAGMA table_info(flashes)")}
        if missing:
            raise FlashError(f"{self.path} is not a flashing inventory: its flashes table has no "
                             f"{', '.join(sorted(missing))} column(s): refusing to change it")

    def add(self, rec: Record) -> None:
        with self.lock, self.db:
            self.db.execute(f"INSERT INTO flashes ({', '.join(COLUMNS)}) VALUES ({', '.join('?' * len(COLUMNS))})",
                            astuple(rec))

    def records(self, site: str | None = None, model: str | None = None, latest: bool = False) -> list[Record]:
        """Rows in the order they were recorded. ``latest``: only each board's most recent row (rows
        without a board id, boards that never answered, are left out); ``site``/``model`` filter
        after that, so ``latest`` + ``site`` is where each board is now, not where it once was."""
        where, params = [], []
        if latest:
            where.append("id IN (SELECT MAX(id) FROM flashes WHERE board_id != '' GROUP BY board_id)")
        for column, value in (("site", site), ("model", model)):
            if value is not None:
                where.append(f"{column} = ?")
                params.append(value)
        sql = f"SELECT {', '.join(COLUMNS)} FROM flashes" + (f" WHERE {' AND '.join(where)}" if where else "")
        with self.lock:
            rows = self.db.execute(sql + " ORDER BY id", params).fetchall()
        return [Record(*row) for row in rows]

    def write_csv(self, out: TextIO, records: list[Record] | None = None) -> int:
        """CSV with a header row (the column names); every row unless ``records`` are given."""
        recs = self.records() if records is None else records
        w = csv.writer(out)
        w.writerow(COLUMNS)
        for r in recs:
            w.writerow(astuple(r))
        return len(recs)

    def write_json(self, out: TextIO, records: list[Record] | None = None) -> int:
        """A JSON array of objects keyed by the column names."""
        recs = self.records() if records is None else records
        json.dump([dict(zip(COLUMNS, astuple(r), strict=True)) for r in recs], out, indent=1, ensure_ascii=False)
        out.write("\n")
        return len(recs)

    def close(self) -> None:
        self.db.close()
