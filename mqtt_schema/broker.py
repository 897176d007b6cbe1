"""The broker connection rules both sides keep: when TLS is on, and which broker of a list comes next.

The desk (``[mqtt]`` of agent.toml) and the host (``[broker]`` of host.toml) name the TLS files alike
(``ca_cert``, ``client_cert``, ``client_key``) and turn TLS on by one rule, :func:`uses_tls`. With a
list of brokers (``urls``, a clustered broker) both move through it by one rule, :class:`BrokerRotation`,
and point their paho client at the next broker with :func:`aim`.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit


def uses_tls(url: str, ca_cert: object | None = None) -> bool:
    """TLS to the broker: an ``mqtts://`` url, or a CA certificate given (then even ``mqtt://`` uses TLS)."""
    return urlsplit(url).scheme == "mqtts" or ca_cert is not None


class BrokerRotation:
    """Which broker of ``urls`` each connect attempt goes to: ``urls[0]`` first, then the next one after
    every failed attempt or lost connection (round robin). Used from paho's network thread only."""

    def __init__(self, urls: tuple[str, ...]) -> None:
        if not urls:
            raise ValueError("no broker url")
        self.urls = urls
        self.index = 0
        self.attempts = 0

    @property
    def current(self) -> str:
        return self.urls[self.index]

    @property
    def following(self) -> str:
        """The url the attempt after the current one goes to."""
        return self.urls[(self.index + 1) % len(self.urls)]

    def next_attempt(self) -> tuple[str, bool]:
        """The url of the next attempt, and whether it differs from the last one."""
        self.attempts += 1
        if self.attempts == 1 or len(self.urls) == 1:
            return self.current, False
        self.index = (self.index + 1) % len(self.urls)
        return self.current, True


def aim(client: Any, host: str, port: int) -> None:
    """Point a paho client's next connect attempt at ``host``:``port`` (call from ``on_pre_connect`` only).

    paho has no public way to change the broker of a client that has connected once (its ``host`` setter
    refuses while a reconnect is in progress), so this sets paho's ``_host`` and ``_port`` (paho 2.1 and
    2.2, pinned by the lock files); :func:`aimable` tells whether a client has them.
    """
    client._host, client._port = host, port


def aimable(client: Any) -> bool:
    """True when ``client`` has the ``_host``/``_port`` that :func:`aim` sets (checked at construction)."""
    return isinstance(getattr(client, "_host", None), str) and isinstance(getattr(client, "_port", None), int)
