"""The ``headset-agent`` commands, one module each (see :mod:`device.cli`), and the checks they share."""

from __future__ import annotations

from device.errors import UsageError


def refuse_empty(*flags: tuple[str, str | None, str]) -> None:
    """A :class:`UsageError` ``"FLAG: WHAT"`` for the first ``(flag, value, what)`` whose value is the empty
    string: given, but empty (a truthiness test would take it as not given, and ``Path("")`` is ``.``, the
    current folder). Called before a file is read or written; a path flag is therefore parsed as text
    (no ``type=Path``), so that its empty value reaches this check."""
    for flag, value, what in flags:
        if value == "":
            raise UsageError(f"{flag}: {what}")
