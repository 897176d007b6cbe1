"""The ``headset-agent`` commands, one module each (see :mod:`device.cli`), and the checks they share."""

from __future__ import annotations

from device.errors import UsageError
from mqtt_schema.flags import empty_flag


def refuse_empty(*flags: tuple[str, str | None, str]) -> None:
    """:func:`mqtt_schema.flags.empty_flag` as a :class:`UsageError` (``"FLAG: WHAT"``)."""
    problem = empty_flag(*flags)
    if problem is not None:
        raise UsageError(problem)
