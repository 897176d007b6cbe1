"""The desk unit's boot counter: one more on every agent start, persisted across restarts.

Every desk payload carries ``boot``; with ``seq`` (monotonic per boot) it makes the host's
deduplication on (desk, boot, seq) safe across restarts. The file is written atomically (temp file,
fsync, rename, fsync of the folder), so a power cut leaves either the old or the new value.
"""

from __future__ import annotations

import os
from pathlib import Path

from device.errors import AgentError

FILE_NAME = "boot"
MAX_BOOT = 2**53
"""The contract's bound on ``boot``."""


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


def next_boot(state_dir: Path) -> int:
    """Increment and persist the boot counter in ``state_dir`` (created if missing); return the new value.

    The first boot is 1. A corrupt file raises :class:`BootCounterError` rather than restarting at 1,
    which would let the host drop new messages as duplicates of old (boot, seq) pairs.
    """
    state_dir = Path(state_dir)
    try:
        state_dir.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise BootCounterError(f"cannot create the state folder {state_dir}: {exc.strerror or exc}") from None
    boot = (read_boot(state_dir) or 0) + 1
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
