"""The error root of the host aggregator. ``host_agent.cli.main`` turns these into exit codes."""

from __future__ import annotations


class HostError(Exception):
    """An error to report as ``headset-host: message`` with exit code 1."""


class UsageError(HostError, ValueError):
    """Bad command-line arguments: exit code 2."""


class ConfigError(HostError, ValueError):
    """An invalid host config; the message names the field.

    ``field`` is the dotted name of the setting (``broker.url``, ``receivers.webhook[0].url``) when the
    error is about one; ``line`` its 1-based line in the config file, when known (as the desk's
    ``device.errors.ConfigError`` and ``mqtt_schema.SchemaError``'s ``field``).
    """

    def __init__(self, message: str, *, field: str | None = None, line: int | None = None) -> None:
        super().__init__(message)
        self.field = field
        self.line = line


class StorageError(HostError, OSError):
    """The history database cannot be opened, migrated or written."""
