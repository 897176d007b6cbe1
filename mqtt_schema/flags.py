"""Command-line conventions the three programs (``headset-agent``, ``headset-host``, ``headset-flash``)
keep alike. Each program turns a problem found here into its own usage error (exit code 2)."""

from __future__ import annotations


def empty_flag(*flags: tuple[str, str | None, str]) -> str | None:
    """``"FLAG: WHAT"`` for the first ``(flag, value, what)`` whose value is the empty string, else None.

    An empty value was given, but a truthiness test would take it as not given, and ``Path("")`` is
    ``.``, the current folder. So a path flag is parsed as text (no ``type=Path``), and checked here
    before a file, a board or a broker is touched."""
    for flag, value, what in flags:
        if value == "":
            return f"{flag}: {what}"
    return None
