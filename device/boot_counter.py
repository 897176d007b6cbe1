"""The desk unit's boot counter: one more on every agent start, persisted across restarts.

Every desk payload carries ``boot``; with ``seq`` (monotonic per boot) it makes the host's
deduplication on (desk, boot, seq) safe across restarts. The file is written atomically (temp file,
fsync, rename, fsync of the folder), so a power cut leaves either the old or the new value.

The first boot of a state folder (a new or replaced desk unit, a re-imaged SD card) is the wall clock
in whole seconds since the Unix epoch, not 1. The host takes a desk's state and metrics only when
their (boot, seq) is newer than the last it applied, and keeps (desk, boot, seq) of stored events:
a replacement unit counting again from 1 at the same desk id was ignored ("superseded") until the
host restarted, and its events could collide with the old unit's. Started from the clock, a new
unit's counter lies above anything an earlier unit at that desk reached (unless that one restarted
more than once a second). A clock before :data:`CLOCK_VALID_FROM_S` is not set (a Pi has no
real-time clock, and before NTP it may think it is 1970): then the counter starts at 1, as before.
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Callable
from pathlib import Path

from device.errors import AgentError

FILE_NAME = "boot"
MAX_BOOT = 2**53
"""The contract's bound on ``boot``."""
CLOCK_VALID_FROM_S = 1_704_067_200
"""2024-01-01 00:00 UTC (s since the epoch): a wall clock before it is taken as not set."""

log = logging.getLogger(__name__)


class BootCounterError(AgentError, ValueError):
    """A boot counter file that cannot be read or written."""


def read_boot(state_dir: Path) -> int | None:
    """The last boot number stored in ``state_dir`` (None when there is none yet)."""
    path = Path(state_dir) / FILE_NAME
    try:
        text = path.read_text(encoding="ascii")
    except FileNotFoundError:
        return None
    except (OSError, UnicodeDecodeError) as exc:
        raise BootCounterError(f"cannot read the boot counter {path}: {exc}") from None
    value = text.strip()
    if not value.isdigit() or int(value) >= MAX_BOOT:
        raise BootCounterError(
            f"the boot counter {path} is corrupt (holds {text[:40]!r}, not a number); "
            "check it, then delete it or write the last known boot number into it"
        )
    return int(value)


def first_boot(now_s: float) -> int:
    """The boot number of a state folder's first start: ``now_s`` (wall clock, s since the epoch) in
    whole seconds, or 1 when that clock is not set (before :data:`CLOCK_VALID_FROM_S`)."""
    if not CLOCK_VALID_FROM_S <= now_s < MAX_BOOT:
        log.warning("the wall clock is not set (%.0f s since 1970): the boot counter starts at 1; a desk unit "
                    "that replaced another at this desk id is ignored by the host until it restarts", now_s)
        return 1
    return int(now_s)


def next_boot(state_dir: Path, clock: Callable[[], float] = time.time) -> int:
    """Increment and persist the boot counter in ``state_dir`` (created if missing); return the new value.

    The first boot is :func:`first_boot` of ``clock()`` (s since the epoch). A corrupt file raises
    :class:`BootCounterError` rather than starting again, which could let the host drop new messages
    as duplicates of old (boot, seq) pairs.
    """
    state_dir = Path(state_dir)
    try:
        state_dir.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise BootCounterError(f"cannot create the state folder {state_dir}: {exc.strerror or exc}") from None
    last = read_boot(state_dir)
    boot = first_boot(clock()) if last is None else last + 1
    if boot >= MAX_BOOT:
        raise BootCounterError(f"the boot counter {state_dir / FILE_NAME} has reached the contract's bound 2**53")
    path = state_dir / FILE_NAME
    tmp = state_dir / f".{FILE_NAME}.{os.getpid()}.tmp"
    try:
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
        try:
            os.write(fd, f"{boot}\n".encode("ascii"))
            os.fsync(fd)
        finally:
            os.close(fd)
        os.replace(tmp, path)
        dir_fd = os.open(state_dir, os.O_RDONLY)
        try:
            os.fsync(dir_fd)
        finally:
            os.close(dir_fd)
    except OSError as exc:
        tmp.unlink(missing_ok=True)
        raise BootCounterError(f"cannot write the boot counter {path}: {exc.strerror or exc}") from None
    return boot
