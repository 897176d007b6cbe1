"""Telling a PostgreSQL URL from a file path, and showing it without its password."""

from __future__ import annotations

from urllib.parse import urlsplit, urlunsplit

SCHEMES = ("postgresql", "postgres")


def is_postgres_url(db: str) -> bool:
    """True for ``postgresql://...`` (or ``postgres://...``); anything else is a SQLite file path."""
    return db.split("://", 1)[0].lower() in SCHEMES and "://" in db


def redact(db: str) -> str:
    """``db`` as it may be logged: a URL's password becomes ``***``; a path is unchanged."""
    if not is_postgres_url(db):
        return db
    try:
        parts = urlsplit(db)
        if parts.password is None:
            return db
        netloc = parts.netloc.rsplit("@", 1)
        user = netloc[0].split(":", 1)[0]
        return urlunsplit(parts._replace(netloc=f"{user}:***@{netloc[1]}"))
    except ValueError:
        return f"{db.split('://', 1)[0]}://***"
