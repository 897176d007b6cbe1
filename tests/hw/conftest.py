"""Fixtures for the hardware tests: virtual MicroPython boards (skipped without node/MicroPython)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from hw.virtual_headset.micropython import MicroPythonUnavailable, find_micropython


def _have_micropython() -> str | None:
    try:
        find_micropython()
    except MicroPythonUnavailable as exc:
        return str(exc)
    return None


NO_MICROPYTHON = _have_micropython()
needs_micropython = pytest.mark.skipif(NO_MICROPYTHON is not None, reason=f"MicroPython wasm: {NO_MICROPYTHON}")


@pytest.fixture
def board_factory(tmp_path: Path) -> Iterator[Callable[..., Any]]:
    """Start VirtualBoards: ``make(name, **kwargs)``; all are stopped at the end."""
    from hw.virtual_headset.board import VirtualBoard

    boards: list[VirtualBoard] = []

    def make(name: str = "b0", **kwargs: Any) -> VirtualBoard:
        b = VirtualBoard(tmp_path / f"tty-{name}", tmp_path / f"fs-{name}", **kwargs)
        b.start()
        boards.append(b)
        return b

    yield make
    for b in boards:
        b.stop()
