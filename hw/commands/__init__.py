"""The ``headset-flash`` commands, one module each (see :mod:`hw.cli`), and the checks they share."""

from __future__ import annotations

import math

from hw.errors import UsageError
from mqtt_schema.errors import SchemaError
from mqtt_schema.flags import empty_flag
from mqtt_schema.topics import check_id

MAX_WAIT_S = 3600.0
"""The longest a timeout flag may be: an hour (longer is a typo, and NaN or inf is never a wait)."""


def check_seconds(flag: str, value: float, most: float = MAX_WAIT_S) -> float:
    """``value`` of a seconds flag (``--connect-timeout 10``) if it is finite, more than 0 and at most
    ``most``; else :class:`UsageError` naming the flag. Called before a board or a file is touched."""
    if not (math.isfinite(value) and 0 < value <= most):
        raise UsageError(f"{flag} must be a number of seconds more than 0 and at most {most:g}, not {value:g}")
    return value


def refuse_empty(*flags: tuple[str, str | None, str]) -> None:
    """:func:`mqtt_schema.flags.empty_flag` as a :class:`UsageError` (``"FLAG: WHAT"``)."""
    problem = empty_flag(*flags)
    if problem is not None:
        raise UsageError(problem)


def check_ids(*flags: tuple[str, str | None]) -> None:
    """Each ``(flag, value)`` an id (a value of None: the flag was not given), or a :class:`UsageError`
    naming the flag (a bad command-line value)."""
    for flag, value in flags:
        if value is None:
            continue
        try:
            check_id(value, flag)
        except SchemaError as exc:
            raise UsageError(str(exc)) from None
