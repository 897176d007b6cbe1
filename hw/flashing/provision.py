"""Provisioning a desk unit or a host: its config file (agent.toml or host.toml), broker
credentials and ACL, optionally a TLS client certificate signed by the site CA. Topics come from
mqtt_schema, never formatted here.

Broker identities: ``desk.{site}.{desk}`` and ``host.{name}``. The same string is the password-file
user and the client certificate's CN, so a broker may authenticate by password or, on a TLS listener
with ``use_identity_as_username true``, by certificate (see ``hw/site/mosquitto.conf``); the ACL
lines hold either way.

Every input is checked before anything is written: the ids by the MQTT contract's rule, the broker
URL by the desk agent's own rule (``device.config.mqtt_settings``: ``mqtt://`` or ``mqtts://`` host and
port), the CA (a CA certificate, in date, matching its key). The broker URL is written as given:
with TLS material a plain ``mqtt://`` URL is refused, naming the ``mqtts://`` URL to pass, because
a client certificate means the site runs a TLS listener and a silent rewrite of scheme and port
could point the desk at a listener that does not exist.
"""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import os
import secrets
from dataclasses import dataclass
from pathlib import Path

from device.config.mqtt_settings import DEFAULT_PORTS, MqttSettings
from device.errors import ConfigError
from hw.errors import ProvisionError
from mqtt_schema.errors import SchemaError
from mqtt_schema.topics import DeskKind, alert_filter, alert_log_filter, check_id, desk_filter

PBKDF2_ITERATIONS = 101  # mosquitto_passwd's default for $7$
DESK_PUBLISHES = (DeskKind.STATE, DeskKind.METRICS, DeskKind.EVENT, DeskKind.MINUTE)
CERT_DAYS = 730
DEFAULT_BROKER = "mqtt://localhost:1883"
DEFAULT_TLS_BROKER = "mqtts://localhost:8883"


def mosquitto_hash(password: str, salt: bytes | None = None, iterations: int = PBKDF2_ITERATIONS) -> str:
    """mosquitto's password-file hash: $7$iterations$salt_b64$PBKDF2-HMAC-SHA512(password)_b64."""
    salt = salt if salt is not None else secrets.token_bytes(12)
    digest = hashlib.pbkdf2_hmac("sha512", password.encode(), salt, iterations, 64)
    return f"$7${iterations}${base64.b64encode(salt).decode()}${base64.b64encode(digest).decode()}"


def desk_username(site: str, desk: str) -> str:
    return f"desk.{site}.{desk}"


def host_username(name: str) -> str:
    return f"host.{name}"


def acl_lines(site: str, desk: str) -> list[str]:
    """mosquitto ACL: the desk writes only its own state/metrics/event/minute, reads only its config."""
    user = desk_username(site, desk)
    lines = [f"user {user}"]
    lines += [f"topic write {desk_filter(site, desk, kind)}" for kind in DESK_PUBLISHES]
    lines.append(f"topic read {desk_filter(site, desk, DeskKind.CONFIG)}")
    return lines


def host_acl_lines(name: str, sites: tuple[str, ...]) -> list[str]:
    """mosquitto ACL of a host: per site, read every desk's state/metrics/event/minute, read and write
    every desk's config (the host and facilities set it; retained), read and write the retained alerts
    (the host restores them after a restart) and write the alert log. Nothing outside its sites."""
    lines = [f"user {host_username(name)}"]
    for site in sites:
        lines += [f"topic read {desk_filter(site, '+', kind)}" for kind in DESK_PUBLISHES]
        lines.append(f"topic readwrite {desk_filter(site, '+', DeskKind.CONFIG)}")
        lines.append(f"topic readwrite {alert_filter(site)}")
        lines.append(f"topic write {alert_log_filter(site)}")
    return lines


@dataclass(frozen=True)
class Provisioned:
    folder: Path
    username: str
    password: str
    files: tuple[Path, ...]


def _toml_str(s: str) -> str:
    return '"' + s.replace("\\", "\\\\").replace('"', '\\"') + '"'


def check_broker_url(url: str, tls: bool) -> MqttSettings:
    """``url`` as the desk agent will read it; :class:`ProvisionError` when the agent would refuse it,
    or when it is plain ``mqtt://`` although ``tls`` (a client certificate) is asked for."""
    try:
        settings = MqttSettings(url=url)
    except ConfigError as exc:
        raise ProvisionError(f"--broker {url!r} is not a broker URL the desk agent accepts ({exc})") from None
    if tls and not settings.tls:
        port = DEFAULT_PORTS["mqtts"] if settings.port == DEFAULT_PORTS["mqtt"] else settings.port
        suggestion = f"mqtts://{settings.host}:{port}"
        raise ProvisionError(f"--broker {url} is plain MQTT, but --ca-cert/--ca-key make a TLS client certificate: "
                             f"pass the broker's TLS listener, e.g. --broker {suggestion}")
    return settings


def tls_and_broker(ca_cert: Path | None, ca_key: Path | None, broker_url: str | None) -> tuple[bool, str]:
    """(TLS asked for, the broker URL to write), refusing what a client could not use: a
    :class:`ProvisionError` naming the flag (``--broker``, ``--ca-cert``/``--ca-key``). The provisioning
    commands call it first, to report these as usage errors."""
    if (ca_cert is None) != (ca_key is None):
        raise ProvisionError("--ca-cert and --ca-key go together")
    tls = ca_cert is not None
    if broker_url is None:
        broker_url = DEFAULT_TLS_BROKER if tls else DEFAULT_BROKER
    check_broker_url(broker_url, tls)
    return tls, broker_url


def _tls_files(user: str, stem: str, ca_cert: Path | None, ca_key: Path | None) -> list[tuple[str, bytes, int]]:
    """(file name, content, mode) of a client key and certificate (CN ``user``) and the CA, or none."""
    if ca_cert is None or ca_key is None:
        return []
    from hw.flashing.tls import issue_client_cert

    key_pem, cert_pem, ca_pem = issue_client_cert(user, ca_cert, ca_key, CERT_DAYS)
    return [(f"{stem}.key", key_pem, 0o600), (f"{stem}.crt", cert_pem, 0o644), ("ca.crt", ca_pem, 0o644)]


def _mkdir(out: Path) -> None:
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise ProvisionError(f"cannot create {out}: {exc.strerror or exc}") from None


def _now() -> str:
    return dt.datetime.now(dt.UTC).isoformat(timespec="seconds")


def provision_desk(site: str, desk: str, out: Path, broker_url: str | None = None,
                   ca_cert: Path | None = None, ca_key: Path | None = None, force: bool = False) -> Provisioned:
    """Write the desk's files into ``out``. ``broker_url``: default ``mqtt://localhost:1883``, or
    ``mqtts://localhost:8883`` with a CA. Raises :class:`ProvisionError` before writing anything
    when an input cannot be used."""
    try:
        check_id(site, "site")
        check_id(desk, "desk")
        desk_filter(site, desk)
    except SchemaError as exc:
        raise ProvisionError(str(exc)) from None
    _, broker_url = tls_and_broker(ca_cert, ca_key, broker_url)
    agent_toml = out / "agent.toml"
    if agent_toml.exists() and not force:
        raise ProvisionError(f"{agent_toml} exists; not overwriting it (use --force to replace its credentials)")
    user = desk_username(site, desk)
    tls_files = _tls_files(user, "desk", ca_cert, ca_key)
    _mkdir(out)
    password = secrets.token_urlsafe(24)
    tls_lines: list[str] = []
    files: list[Path] = []
    for name, data, mode in tls_files:
        _write(out / name, data, mode, files)
    if tls_files:
        tls_lines = ['ca_cert = "ca.crt"', 'client_cert = "desk.crt"', 'client_key = "desk.key"']
    text = "\n".join([
        f"# desk unit {site}/{desk}, provisioned {_now()}",
        "[mqtt]",
        f"url = {_toml_str(broker_url)}",
        f"username = {_toml_str(user)}",
        f"password = {_toml_str(password)}",
        *tls_lines,
        "",
        "[desk]",
        f"site = {_toml_str(site)}",
        f"desk = {_toml_str(desk)}",
        "",
    ])
    _write(agent_toml, text.encode(), 0o600, files)
    _write(out / "mosquitto.passwd", f"{user}:{mosquitto_hash(password)}\n".encode(), 0o600, files)
    _write(out / "mosquitto.acl", ("\n".join(acl_lines(site, desk)) + "\n\n").encode(), 0o644, files)
    return Provisioned(out, user, password, tuple(files))


def provision_host(name: str, sites: list[str] | tuple[str, ...], out: Path, broker_url: str | None = None,
                   ca_cert: Path | None = None, ca_key: Path | None = None, force: bool = False) -> Provisioned:
    """Write a host's files into ``out``: ``host.toml`` ([broker] with its credentials, [host] sites),
    ``mosquitto.passwd``, ``mosquitto.acl`` (:func:`host_acl_lines`) and, with a CA, ``host.key``,
    ``host.crt`` and ``ca.crt``. Raises :class:`ProvisionError` before writing anything when an input
    cannot be used, or when any of these files exists and ``force`` is false."""
    try:
        check_id(name, "host name")
        for site in sites:
            check_id(site, "site")
    except SchemaError as exc:
        raise ProvisionError(str(exc)) from None
    sites = tuple(dict.fromkeys(sites))
    if not sites:
        raise ProvisionError("name at least one --site the host follows")
    tls, broker_url = tls_and_broker(ca_cert, ca_key, broker_url)
    names = ["host.toml", "mosquitto.passwd", "mosquitto.acl"] + (["host.key", "host.crt", "ca.crt"] if tls else [])
    existing = [str(out / n) for n in names if (out / n).exists()]
    if existing and not force:
        verb = "exists" if len(existing) == 1 else "exist"
        raise ProvisionError(f"{', '.join(existing)} {verb}; not overwriting (use --force to replace the host's "
                             "credentials)")
    user = host_username(name)
    tls_files = _tls_files(user, "host", ca_cert, ca_key)
    _mkdir(out)
    password = secrets.token_urlsafe(24)
    files: list[Path] = []
    for file_name, data, mode in tls_files:
        _write(out / file_name, data, mode, files)
    folder = out.resolve()
    # host_agent reads the broker's TLS files as given (not relative to host.toml): write absolute paths
    tls_lines = [f"ca_cert = {_toml_str(str(folder / 'ca.crt'))}",
                 f"client_cert = {_toml_str(str(folder / 'host.crt'))}",
                 f"client_key = {_toml_str(str(folder / 'host.key'))}"] if tls_files else []
    text = "\n".join([
        f"# host {name} for site(s) {', '.join(sites)}, provisioned {_now()}",
        "# add [dashboard], [rules] and [breaks] as needed (docs/host.md)",
        "[broker]",
        f"url = {_toml_str(broker_url)}",
        f"username = {_toml_str(user)}",
        f"password = {_toml_str(password)}",
        *tls_lines,
        "",
        "[host]",
        f"sites = [{', '.join(_toml_str(s) for s in sites)}]",
        "",
    ])
    _write(out / "host.toml", text.encode(), 0o600, files)
    _write(out / "mosquitto.passwd", f"{user}:{mosquitto_hash(password)}\n".encode(), 0o600, files)
    _write(out / "mosquitto.acl", ("\n".join(host_acl_lines(name, sites)) + "\n\n").encode(), 0o644, files)
    return Provisioned(out, user, password, tuple(files))


def _write(path: Path, data: bytes, mode: int, files: list[Path]) -> None:
    tmp = path.with_name(path.name + ".tmp")
    try:
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode)
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        os.replace(tmp, path)
    except OSError as exc:
        raise ProvisionError(f"cannot write {path}: {exc.strerror or exc}") from None
    files.append(path)
