"""Fixtures for the hardware tests: virtual MicroPython boards (they need node and MicroPython's wasm build)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

needs_micropython = pytest.mark.needs("micropython")


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
