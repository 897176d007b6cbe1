"""The history storage's former home: see :mod:`host_agent.history` (SQLite and PostgreSQL)."""

from __future__ import annotations

from host_agent.history import (
    MIGRATIONS,
    SCHEMA_VERSION,
    DeskRecord,
    HistoryStore,
    SqliteStore,
    migrate,
    open_store,
)

__all__ = ["MIGRATIONS", "SCHEMA_VERSION", "DeskRecord", "HistoryStore", "SqliteStore", "migrate", "open_store"]
