"""The host config's checks, each kind once: ids, numbers in a range, strings, booleans, tables,
unknown keys, severities, readable files, broker urls, and where a setting is in the file
(:func:`line_of`). Each raises :class:`host_agent.errors.ConfigError` with ``field`` set to the dotted
name of the setting (``shifts.site1.mon-fri``, ``receivers.webhook[0].url``), which
:func:`host_agent.config.load_config` turns into a line number.

TLS to the broker is on by the contract's rule, :func:`mqtt_schema.broker.uses_tls` (the desk's too).
"""

from __future__ import annotations

import math
import re
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from host_agent.errors import ConfigError
from mqtt_schema import SchemaError, Severity, check_id

MAX_BROKER_URLS = 16
"""Brokers in ``broker.urls`` at most."""


def endpoint(url: str) -> tuple[str, int]:
    """(host, port) of one broker url (1883, or 8883 for ``mqtts``, when it names no port)."""
    parts = urlsplit(url)
    return parts.hostname or "127.0.0.1", parts.port or (8883 if parts.scheme == "mqtts" else 1883)


def ident(value: object, name: str) -> str:
    if not isinstance(value, str):
        raise ConfigError(f"{name} must be a string id, not {value!r}", field=name)
    try:
        return check_id(value, name)
    except SchemaError:
        raise ConfigError(f"{name} {value!r} is not a valid id: it must match [a-z0-9-]{{1,32}}", field=name) from None


def number(value: object, name: str, lo: float | None = None, hi: float | None = None) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ConfigError(f"{name} must be a number, not {value!r}", field=name)
    if isinstance(value, float) and math.isnan(value):  # NaN passes every range comparison
        raise ConfigError(f"{name} must be a number, not nan", field=name)
    if (lo is not None and value < lo) or (hi is not None and value > hi):
        raise ConfigError(f"{name} = {value} is out of range [{lo}, {hi}]", field=name)
    return float(value)


def string(value: object, name: str) -> str:
    if not isinstance(value, str):
        raise ConfigError(f"{name} must be a string, not {value!r}", field=name)
    return value


def boolean(value: object, name: str) -> bool:
    if not isinstance(value, bool):
        raise ConfigError(f"{name} must be true or false, not {value!r}", field=name)
    return value


def table(value: object, name: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise ConfigError(f"{name} must be a table, not {value!r}", field=name)
    return value


def no_unknown(table: dict[str, Any], known: set[str], prefix: str) -> None:
    for key in table:
        if key not in known:
            raise ConfigError(f"{prefix}{key} is not a known setting (known: {', '.join(sorted(known))})", field=prefix + str(key))


def severity(value: object, name: str) -> Severity:
    try:
        return Severity(str(value)) if isinstance(value, str) else Severity("?")
    except ValueError:
        raise ConfigError(f"{name} must be one of info, warning, critical, not {value!r}", field=name) from None


def broker_url(value: object, name: str) -> str:
    url = string(value, name)
    parts = urlsplit(url)
    if parts.scheme not in ("mqtt", "mqtts") or not parts.hostname:
        raise ConfigError(f"{name} {url!r} must look like mqtt://host:port or mqtts://host:port", field=name)
    try:
        parts.port  # noqa: B018 - raises on a bad port
    except ValueError:
        raise ConfigError(f"{name} {url!r} has an invalid port", field=name) from None
    return url


def broker_urls(value: object) -> tuple[str, ...]:
    """``broker.urls``: 1..``MAX_BROKER_URLS`` distinct broker urls of one scheme."""
    name = "broker.urls"
    if not isinstance(value, list) or not value:
        raise ConfigError(f'{name} must be a non-empty list of broker urls like '
                               f'["mqtt://node1:1883", "mqtt://node2:1883"], not {value!r}', field=name)
    if len(value) > MAX_BROKER_URLS:
        raise ConfigError(f"{name} lists {len(value)} brokers; at most {MAX_BROKER_URLS}", field=name)
    urls = tuple(broker_url(u, f"{name}[{i}]") for i, u in enumerate(value))
    seen: dict[tuple[str, int], int] = {}
    for i, u in enumerate(urls):
        ep = endpoint(u)
        if ep in seen:
            raise ConfigError(f"{name}[{i}] {u!r} is the same broker as {name}[{seen[ep]}]", field=name)
        seen[ep] = i
    if len({urlsplit(u).scheme for u in urls}) > 1:
        raise ConfigError(f"{name} mixes mqtt:// and mqtts:// urls; TLS is one setting for every "
                               "broker of the list, so use one scheme", field=name)
    return urls


def readable_file(value: object, name: str, base_dir: Path | None) -> str:
    """A file path that can be opened for reading; relative paths are relative to the config file."""
    p = Path(string(value, name)).expanduser()
    if base_dir is not None and not p.is_absolute():
        p = base_dir / p
    try:
        with p.open("rb"):
            pass
    except OSError as exc:
        raise ConfigError(f"{name}: cannot read {p}: {exc.strerror or exc}", field=name) from None
    return str(p)


# --- where a setting is in the file -----------------------------------------------------------------

_HEADER = re.compile(r"^\s*(\[\[?)\s*([^\[\]]+?)\s*\]\]?\s*(?:#.*)?$")
_KEY = re.compile(r"""^\s*((?:"[^"]*"|'[^']*'|[A-Za-z0-9_\-]+)(?:\s*\.\s*(?:"[^"]*"|'[^']*'|[A-Za-z0-9_\-]+))*)\s*=""")


def _dotted(raw: str) -> str:
    parts = re.findall(r""""([^"]*)"|'([^']*)'|([A-Za-z0-9_\-]+)""", raw)
    return ".".join(a or b or c for a, b, c in parts)


def line_of(text: str, field_name: str) -> int | None:
    """The 1-based line of ``field_name`` (``shifts.site1.mon-fri``, ``receivers.webhook[0].url``,
    ``host.sites[2]``) in TOML ``text``: its key, else the nearest enclosing table or key. None when
    it is not in the text (a default)."""
    lines: dict[str, int] = {}
    table = ""
    counts: dict[str, int] = {}
    for n, line in enumerate(text.splitlines(), 1):
        m = _HEADER.match(line)
        if m:
            name = _dotted(m.group(2))
            if m.group(1) == "[[":
                i = counts.get(name, 0)
                counts[name] = i + 1
                table = f"{name}[{i}]"
            else:
                table = name
            lines.setdefault(table, n)
            continue
        k = _KEY.match(line)
        if k:
            lines.setdefault(f"{table}.{_dotted(k.group(1))}" if table else _dotted(k.group(1)), n)
    f = field_name
    while f:
        if f in lines:
            return lines[f]
        if f.endswith("]") and "[" in f:
            f = f[:f.rindex("[")]
        else:
            f = f.rpartition(".")[0]
    return None
