"""The broker connection rules both sides keep: when TLS is on.

The desk (``[mqtt]`` of agent.toml) and the host (``[broker]`` of host.toml) name the TLS files alike
(``ca_cert``, ``client_cert``, ``client_key``) and turn TLS on by one rule, :func:`uses_tls`.
"""

from __future__ import annotations

from urllib.parse import urlsplit


def uses_tls(url: str, ca_cert: object | None = None) -> bool:
    """TLS to the broker: an ``mqtts://`` url, or a CA certificate given (then even ``mqtt://`` uses TLS)."""
    return urlsplit(url).scheme == "mqtts" or ca_cert is not None
