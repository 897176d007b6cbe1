"""Telling a PostgreSQL URL from a file path, checking it (``host.db`` of host.toml), and showing it
without its password."""

from __future__ import annotations

from urllib.parse import parse_qsl, urlsplit, urlunsplit

from host_agent.errors import ConfigError

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


_PG_PARAMS = frozenset({"sslmode", "sslrootcert", "sslcert", "sslkey", "sslcrl", "connect_timeout",
                        "application_name", "target_session_attrs", "host", "options", "keepalives",
                        "keepalives_idle"})


def check_db(value: str, name: str) -> str:
    """A SQLite file path, or ``postgresql://user:pass@host:port/dbname`` checked here (errors name the
    field and show the URL without its password)."""
    if not value.strip():
        raise ConfigError(f"{name} must be a file path or a postgresql:// URL, not empty", field=name)
    scheme = value.split("://", 1)[0].lower() if "://" in value else ""
    if not scheme:
        return value
    shown = redact(value)
    if not is_postgres_url(value):
        raise ConfigError(f"{name} = {shown!r}: a URL must start with postgresql:// "
                               f"({', '.join(s + '://' for s in SCHEMES)}); a SQLite database is a file path", field=name)
    try:
        parts = urlsplit(value)
        port = parts.port
    except ValueError:
        raise ConfigError(f"{name} = {shown!r}: the port must be a number from 1 to 65535", field=name) from None
    query = dict(parse_qsl(parts.query, keep_blank_values=True))
    unknown = sorted(set(query) - _PG_PARAMS)
    if unknown:
        raise ConfigError(f"{name} = {shown!r}: unknown parameter {unknown[0]!r} "
                               f"(known: {', '.join(sorted(_PG_PARAMS))})", field=name)
    if not parts.hostname and "host" not in query:
        raise ConfigError(f"{name} = {shown!r} names no server: postgresql://user:pass@host:port/dbname", field=name)
    if port == 0:
        raise ConfigError(f"{name} = {shown!r}: the port must be a number from 1 to 65535", field=name)
    dbname = parts.path.lstrip("/")
    if not dbname or "/" in dbname:
        raise ConfigError(f"{name} = {shown!r} names no database: "
                               "postgresql://user:pass@host:port/dbname", field=name)
    if parts.fragment:
        raise ConfigError(f"{name} = {shown!r}: a database URL has no #fragment", field=name)
    return value
