"""Fixtures for the hardware tests: virtual MicroPython boards (they need node and MicroPython's wasm build)."""

from __future__ import annotations

import re
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeAlias

import pytest

if TYPE_CHECKING:
    from hw.virtual_headset.board import VirtualBoard

needs_micropython = pytest.mark.needs("micropython")

BoardFactory: TypeAlias = Callable[..., "VirtualBoard"]
"""The ``board_factory`` fixture: ``make(name, **kwargs)`` starts a VirtualBoard."""
FirmwareDir: TypeAlias = Callable[[str], Path]
"""The ``firmware_dir`` fixture: ``make(version)`` gives a firmware directory of that version."""


@pytest.fixture
def board_factory(tmp_path: Path) -> Iterator[BoardFactory]:
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
        if b.firmware_errors:  # shown with a failing test's output: why a board went quiet or vanished
            print(f"virtual board {b.link_path}: firmware errors: {b.firmware_errors}", file=sys.stderr)
        b.stop()


@pytest.fixture
def firmware_dir(tmp_path: Path) -> FirmwareDir:
    """``make(version)``: a copy of hw/firmware whose hs_app.py says FW_VERSION = version (for
    rollouts and the fleet view: a "newer" manifest, or boards with older firmware)."""
    from hw.flashing.manifest import FIRMWARE_DIR

    def make(version: str) -> Path:
        d = tmp_path / f"firmware-{version}"
        d.mkdir()
        for src in FIRMWARE_DIR.glob("*.py"):
            text = src.read_text(encoding="utf-8")
            if src.name == "hs_app.py":
                assert 'FW_VERSION = "' in text
                text = re.sub(r'^FW_VERSION = "[^"]+"', f'FW_VERSION = "{version}"', text, count=1, flags=re.M)
            (d / src.name).write_text(text, encoding="utf-8")
        return d

    return make


def flash(work: Path, *ports: Path, extra: tuple[str, ...] = ()) -> int:
    """``headset-flash flash`` of ``ports`` as operator alice, site s1, desk d07, with the inventory
    ``inv.sqlite`` in ``work``; returns the exit code."""
    from hw import cli

    args = ["flash", "--inventory", str(work / "inv.sqlite"), "--operator", "alice", "--site", "s1", "--desk", "d07"]
    for p in ports:
        args += ["--port", str(p)]
    return cli.main(args + list(extra))


@pytest.fixture(scope="module")
def flashed_board(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[VirtualBoard, Path]]:
    """One board flashed (operator alice, site s1, desk d07, inventory ``inv.sqlite`` in the returned
    directory) and running, shared by a module's tests of commands refused before the board is touched:
    each of them checks the board and the inventory are as it found them, so one flash serves them all
    (a flash takes about 3 s of MicroPython under Node)."""
    from hw.virtual_headset.board import VirtualBoard

    work = tmp_path_factory.mktemp("flashed")
    board = VirtualBoard(work / "tty-b0", work / "fs-b0")
    board.start()
    try:
        assert flash(work, board.link_path) == 0
        yield board, work
    finally:
        if board.firmware_errors:
            print(f"virtual board {board.link_path}: firmware errors: {board.firmware_errors}", file=sys.stderr)
        board.stop()
