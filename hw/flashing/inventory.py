"""The flashing inventory: one SQLite row per board flashed (or failed), exportable as CSV."""

from __future__ import annotations

import csv
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
    result: str
    files_written: int
    detail: str


COLUMNS = tuple(f.name for f in fields(Record))


class Inventory:
    def __init__(self, path: str | Path = DEFAULT_PATH):
        self.path = Path(path)
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self.db = sqlite3.connect(self.path, check_same_thread=False, timeout=10)
            self.db.executescript(SCHEMA)
            self.lock = threading.Lock()  # one connection, shared by the batch's threads
        except (OSError, sqlite3.Error) as exc:
            raise FlashError(f"inventory {self.path} cannot be opened: {exc}") from None

    def add(self, rec: Record) -> None:
        with self.lock, self.db:
            self.db.execute(f"INSERT INTO flashes ({', '.join(COLUMNS)}) VALUES ({', '.join('?' * len(COLUMNS))})",
                            astuple(rec))

    def records(self) -> list[Record]:
        rows = self.db.execute(f"SELECT {', '.join(COLUMNS)} FROM flashes ORDER BY id").fetchall()
        return [Record(*row) for row in rows]

    def write_csv(self, out: TextIO) -> int:
        w = csv.writer(out)
        w.writerow(COLUMNS)
        recs = self.records()
        for r in recs:
            w.writerow(astuple(r))
        return len(recs)

    def close(self) -> None:
        self.db.close()
