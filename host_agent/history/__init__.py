"""History storage behind one small interface, :class:`HistoryStore`, on SQLite (the embedded
default, a file path) or PostgreSQL (a ``postgresql://`` URL, for several hosts and one history).

    store = open_store(config.db)          # SqliteStore or PostgresStore
    store.add_event(event); store.commit()

Modules: :mod:`.base` (the protocol and the SQL both backends share), :mod:`.migrations` (the
versioned schema, one logical list for both), :mod:`.sqlite`, :mod:`.postgres` (imported only when a
URL asks for it: psycopg is the optional ``postgres`` extra), :mod:`.url`.
"""

from __future__ import annotations

from host_agent.errors import StorageError
from host_agent.history.base import DeskRecord, HistoryStore, SqlStore
from host_agent.history.migrations import MIGRATIONS, SCHEMA_VERSION
from host_agent.history.sqlite import SqliteStore, migrate
from host_agent.history.url import is_postgres_url, redact


def open_store(db: str, *, readonly: bool = False, sites: tuple[str, ...] = ()) -> SqlStore:
    """The history at ``db``: a ``postgresql://`` URL or a SQLite file path. Raises :class:`StorageError`.

    ``sites``: a host's own sites, when several hosts share the history (see :attr:`SqlStore.scope`).
    """
    store: SqlStore
    if is_postgres_url(db):
        try:
            from host_agent.history.postgres import PostgresStore
        except ImportError as exc:
            raise StorageError(f"{redact(db)} needs the PostgreSQL client ({exc.name} is missing): "
                               "pip install 'headset-coach[postgres]'") from None
        store = PostgresStore(db, readonly=readonly)
    else:
        store = SqliteStore(db, readonly=readonly)
    store.scope = tuple(sites)
    return store


__all__ = ["MIGRATIONS", "SCHEMA_VERSION", "DeskRecord", "HistoryStore", "SqlStore", "SqliteStore", "StorageError",
           "is_postgres_url", "migrate", "open_store", "redact"]
