"""The desk agent's broker settings: the ``[mqtt]`` table of ``agent.toml``.

``headset-flash provision-desk`` (hw/flashing/provision.py) writes this table: ``url``
(``mqtt://host:port`` or ``mqtts://host:port``), ``username``, ``password`` and, for TLS, ``ca_cert``,
``client_cert`` and ``client_key`` (paths relative to the config file's folder). Times are seconds.

A clustered broker (several nodes, e.g. a NATS cluster, see ``docs/scaling.md``) is given as ``urls``, a
list tried in order: the first connect goes to ``urls[0]``, and every later attempt, after a failed
connect or a lost connection, to the next one (round robin), with the publisher's reconnect backoff
between attempts. All urls share one scheme (TLS is one setting for all) and the credentials. ``url``
may stay beside ``urls`` only when it is one of them; ``--broker`` on the command line replaces the list.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from device.config import checks as check
from device.errors import ConfigError
from mqtt_schema.broker import aimable, uses_tls

DEFAULT_PORTS = {"mqtt": 1883, "mqtts": 8883}
DEFAULT_URL = "mqtt://localhost:1883"
MAX_URLS = 16
"""Brokers in ``urls`` at most."""
KNOWN_KEYS = frozenset({"url", "urls", "username", "password", "ca_cert", "client_cert", "client_key", "keepalive_s"})


@dataclass(frozen=True)
class MqttSettings:
    """Where and how the desk agent reaches the broker."""

    url: str = "mqtt://localhost:1883"
    """The broker (with ``urls``: the first of them, for tools that talk to one broker)."""
    username: str | None = None
    password: str | None = None
    ca_cert: Path | None = None
    client_cert: Path | None = None
    client_key: Path | None = None
    keepalive_s: int = 30
    urls: tuple[str, ...] = ()
    """The brokers of a cluster, tried in this order (empty: ``url`` alone). ``url`` is then the first."""

    def __post_init__(self) -> None:
        _parse_url(self.url, "mqtt.url")
        if self.urls:
            check_urls(self.urls, "mqtt.urls")
            if self.url not in self.urls:
                if self.url != DEFAULT_URL:
                    raise check.fail("mqtt.url", f"{self.url!r} is not one of mqtt.urls; set only mqtt.urls")
                object.__setattr__(self, "url", self.urls[0])
        if not isinstance(self.keepalive_s, int) or isinstance(self.keepalive_s, bool) or not (
            5 <= self.keepalive_s <= 3600
        ):
            raise check.fail("mqtt.keepalive_s", f"must be an integer number of seconds in 5..3600, got {self.keepalive_s!r}")
        if self.password is not None and self.username is None:
            raise check.fail("mqtt.password", "set without mqtt.username")
        if (self.client_cert is None) != (self.client_key is None):
            raise ConfigError("mqtt.client_cert and mqtt.client_key go together", field="mqtt.client_cert")

    @property
    def host(self) -> str:
        return _parse_url(self.url, "mqtt.url")[1]

    @property
    def port(self) -> int:
        return _parse_url(self.url, "mqtt.url")[2]

    @property
    def broker_urls(self) -> tuple[str, ...]:
        """Every broker to try, in order (``urls``, or ``url`` alone)."""
        return self.urls or (self.url,)

    @staticmethod
    def endpoint(url: str) -> tuple[str, int]:
        """(host, port) of one broker url."""
        _, host, port = _parse_url(url, "mqtt.urls")
        return host, port

    @property
    def tls(self) -> bool:
        """True for an ``mqtts://`` url (or when a CA certificate is given): the rule of
        :func:`mqtt_schema.broker.uses_tls`, which the host keeps too."""
        return uses_tls(self.url, self.ca_cert)

    def new_client(self, client_id: str = "", *, clean_session: bool = True) -> Any:
        """A paho 2.x client (callback API version 2, MQTT 3.1.1) with these credentials and TLS set.

        Raises :class:`ConfigError` when the TLS files cannot be used.
        """
        import ssl

        import paho.mqtt.client as mqtt
        from paho.mqtt.enums import CallbackAPIVersion

        client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=client_id, protocol=mqtt.MQTTv311,
                             clean_session=clean_session)
        if self.username:
            client.username_pw_set(self.username, self.password)
        if self.tls:
            try:
                client.tls_set(ca_certs=str(self.ca_cert) if self.ca_cert else None,
                               certfile=str(self.client_cert) if self.client_cert else None,
                               keyfile=str(self.client_key) if self.client_key else None,
                               cert_reqs=ssl.CERT_REQUIRED)
            except (OSError, ssl.SSLError, ValueError) as exc:
                files = ", ".join(f"{name} {path}" for name, path in (
                    ("ca_cert", self.ca_cert), ("client_cert", self.client_cert), ("client_key", self.client_key)) if path)
                raise check.fail("mqtt", f"cannot set up TLS with {files or 'the system CA certificates'}: {exc}") from None
        return client

    @classmethod
    def from_table(cls, table: Mapping[str, Any], where: str = "mqtt", base_dir: Path | None = None) -> MqttSettings:
        """Build from a TOML table; relative certificate paths are resolved against ``base_dir``.

        Raises :class:`ConfigError` naming the field (``mqtt.url: ...``).
        """
        check.check_keys(check.mapping(table, where), KNOWN_KEYS, where)
        url = table.get("url", cls.url)
        if not isinstance(url, str):
            raise check.fail(f"{where}.url", f"must be a string like mqtt://host:1883, got {url!r}")
        _parse_url(url, f"{where}.url")
        urls: tuple[str, ...] = ()
        if "urls" in table:
            raw = table["urls"]
            if not isinstance(raw, list | tuple) or not raw:
                raise ConfigError(f'{where}.urls: must be a non-empty list of broker urls like '
                                  f'["mqtt://node1:1883", "mqtt://node2:1883"], got {raw!r}', field=f"{where}.urls")
            urls = check_urls(raw, f"{where}.urls")
            if "url" in table and url not in urls:
                raise ConfigError(f"{where}.url: {url!r} is not one of {where}.urls; set only {where}.urls "
                                  "(they are tried in their order)", field=f"{where}.url")
            url = urls[0]
        username = check.string(table, "username", where, None)
        password = check.string(table, "password", where, None)
        if password is not None and username is None:
            raise check.fail(f"{where}.password", f"set without {where}.username")
        paths: dict[str, Path | None] = {}
        for key in ("ca_cert", "client_cert", "client_key"):
            text = check.string(table, key, where, None)
            if text is None:
                paths[key] = None
                continue
            try:
                p = Path(text).expanduser()
            except RuntimeError:  # "~user" of a user this system does not have
                raise check.fail(f"{where}.{key}", f"cannot expand {text!r}: no such user") from None
            if not p.is_absolute() and base_dir is not None:
                p = base_dir / p
            if not p.is_file():
                raise check.fail(f"{where}.{key}", f"no such file {str(p)!r}")
            paths[key] = p
        if (paths["client_cert"] is None) != (paths["client_key"] is None):
            raise ConfigError(f"{where}.client_cert and {where}.client_key go together", field=f"{where}.client_cert")
        keepalive = table.get("keepalive_s", 30)
        if not isinstance(keepalive, int) or isinstance(keepalive, bool) or not (5 <= keepalive <= 3600):
            raise check.fail(f"{where}.keepalive_s", f"must be an integer number of seconds in 5..3600, got {keepalive!r}")
        return cls(url=url, username=username, password=password, ca_cert=paths["ca_cert"],
                   client_cert=paths["client_cert"], client_key=paths["client_key"], keepalive_s=keepalive, urls=urls)


def _parse_url(url: str, where: str) -> tuple[str, str, int]:
    """(scheme, host, port) of ``mqtt://host[:port]`` or ``mqtts://host[:port]``."""
    if not isinstance(url, str):
        raise check.fail(f"{where}", f"must be a string like mqtt://host:1883, got {url!r}")
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError as exc:
        raise check.fail(f"{where}", f"{url!r} is not a valid url ({exc})") from None
    if parts.scheme not in DEFAULT_PORTS:
        raise check.fail(f"{where}", f"{url!r} must start with mqtt:// or mqtts://")
    if not parts.hostname:
        raise check.fail(f"{where}", f"{url!r} has no host")
    if parts.path not in ("", "/") or parts.query or parts.fragment or parts.username or parts.password:
        raise check.fail(f"{where}", f"{url!r} must be only scheme://host:port (credentials go in username/password)")
    if port == 0:  # not "the default port": no broker listens on port 0
        raise check.fail(f"{where}", f"{url!r} has port 0: give a port from 1 to 65535, or none for the default")
    return parts.scheme, parts.hostname, port or DEFAULT_PORTS[parts.scheme]


def check_urls(urls: object, where: str) -> tuple[str, ...]:
    """A valid ``urls`` list as a tuple: 1..``MAX_URLS`` distinct broker urls of one scheme.

    Raises :class:`ConfigError` naming the entry (``mqtt.urls[1]: ...``).
    """
    if not isinstance(urls, list | tuple) or not urls:
        raise check.fail(f"{where}", f"must be a non-empty list of broker urls, got {urls!r}")
    if len(urls) > MAX_URLS:
        raise check.fail(f"{where}", f"{len(urls)} brokers; at most {MAX_URLS}")
    seen: dict[tuple[str, int], int] = {}
    schemes: set[str] = set()
    for i, u in enumerate(urls):
        scheme, host, port = _parse_url(u, f"{where}[{i}]")
        if (host, port) in seen:
            raise ConfigError(f"{where}[{i}]: {u!r} is the same broker as {where}[{seen[(host, port)]}]", field=f"{where}")
        seen[(host, port)] = i
        schemes.add(scheme)
    if len(schemes) > 1:
        raise ConfigError(f"{where}: mixes mqtt:// and mqtts:// urls; TLS is one setting for every broker of "
                          "the list, so use one scheme", field=f"{where}")
    return tuple(urls)


def check_aimable(client: Any) -> None:
    """Raise :class:`ConfigError` when this paho has no ``_host``/``_port`` to aim
    (:func:`mqtt_schema.broker.aim`)."""
    if not aimable(client):
        raise check.fail("mqtt.urls", "this paho-mqtt has no _host/_port; broker failover needs paho-mqtt 2.1 or 2.2")
