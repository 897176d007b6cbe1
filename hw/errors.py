"""The error root of the facilities tool. ``hw.cli.main`` turns these into exit codes."""

from __future__ import annotations


class FlashError(Exception):
    """An error to report as ``headset-flash: message`` with exit code 1."""


class UsageError(FlashError, ValueError):
    """Bad command-line arguments: exit code 2."""


class BoardError(FlashError, OSError):
    """A board that does not answer, vanished, or failed verification."""


class ProvisionError(FlashError, ValueError):
    """Provisioning inputs that cannot be used (bad ids, unwritable folder, bad CA)."""
