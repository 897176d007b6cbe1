"""The error root of the host aggregator. ``host_agent.cli.main`` turns these into exit codes."""

from __future__ import annotations


class HostError(Exception):
    """An error to report as ``headset-host: message`` with exit code 1."""


class UsageError(HostError, ValueError):
    """Bad command-line arguments: exit code 2."""


class ConfigError(HostError, ValueError):
    """An invalid host config; the message names the field."""


class StorageError(HostError, OSError):
    """The history database cannot be opened, migrated or written."""
