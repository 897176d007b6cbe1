"""Firmware version numbers compared as versions, not as strings ("1.10.0" is newer than "1.9.2").

Accepted: ``MAJOR[.MINOR[.PATCH...]]`` with an optional leading ``v`` and an optional pre-release
suffix (``1.2.0-rc1``, ``1.2.0rc1``, ``1.2.0.dev3``, ``1.2.0-beta.2``), which sorts before the release
itself; build metadata after ``+`` is ignored. Missing parts are zeros ("1.2" == "1.2.0").
"""

from __future__ import annotations

import re
from functools import total_ordering

_RE = re.compile(r"v?(\d+(?:\.\d+)*)(?:[-.]?([a-z]+)\.?(\d*))?(?:\+[0-9a-z.\-_]*)?", re.I)
# pre-release kinds, oldest first; a release (no suffix) sorts after all of them
_PRE = {"dev": 0, "a": 1, "alpha": 1, "b": 2, "beta": 2, "c": 3, "pre": 3, "rc": 3, "preview": 3}


@total_ordering
class FirmwareVersion:
    """A parsed version; ``FirmwareVersion.parse("1.10.0") > FirmwareVersion.parse("1.9.2")``."""

    __slots__ = ("text", "_key")

    def __init__(self, text: str, key: tuple[tuple[int, ...], tuple[int, int]]):
        self.text = text
        self._key = key

    @classmethod
    def parse(cls, text: str) -> FirmwareVersion:
        """Raise ``ValueError`` naming the text when it is no version number."""
        m = _RE.fullmatch(text.strip())
        if not m or (m.group(2) and m.group(2).lower() not in _PRE):
            raise ValueError(f"{text!r} is not a version number (like 1.2.0 or 1.2.0-rc1)")
        release = tuple(int(x) for x in m.group(1).split("."))
        while len(release) > 1 and release[-1] == 0:
            release = release[:-1]
        pre = (_PRE[m.group(2).lower()], int(m.group(3) or 0)) if m.group(2) else (99, 0)
        return cls(text, (release, pre))

    def __eq__(self, other: object) -> bool:
        return isinstance(other, FirmwareVersion) and self._key == other._key

    def __lt__(self, other: FirmwareVersion) -> bool:
        return self._key < other._key

    def __hash__(self) -> int:
        return hash(self._key)

    def __repr__(self) -> str:
        return f"FirmwareVersion({self.text!r})"

    def __str__(self) -> str:
        return self.text


def is_older(version: str | None, than: str) -> bool | None:
    """True when ``version`` is older than ``than``; None when it is unknown or unreadable (not
    guessed either way). ``than`` must be a version number (ValueError otherwise)."""
    target = FirmwareVersion.parse(than)
    if not version:
        return None
    try:
        return FirmwareVersion.parse(version) < target
    except ValueError:
        return None
