"""Compare the firmware files on a board with the manifest by SHA-256, without writing anything.

The board's hashes are computed on the board (mpremote's ``fs_hashfile``: hashlib over the file);
nothing is written, renamed or removed. The board is interrupted for the raw REPL and left as it
was found: soft-reset when it has a main.py (its firmware runs again), else at the friendly REPL.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from hw.errors import FlashError
from hw.flashing.manifest import Manifest, sha256
from hw.flashing.session import BoardSession

Progress = Callable[[str, int, int, str], None]  # (port, step, total steps, text)

OK, DIFFERS, MISSING = "ok", "differs", "missing"


@dataclass(frozen=True)
class FileCheck:
    name: str
    status: str  # ok | differs | missing
    expected: str  # SHA-256 hex of the manifest's file
    got: str | None  # the board's, None when missing


@dataclass
class VerifyResult:
    port: str
    board_id: str = ""
    micropython: str = ""
    firmware: str = ""  # FW_VERSION in the board's hs_app.py, "" if none
    files: list[FileCheck] = field(default_factory=list)
    error: str = ""  # the board could not be checked (then ``files`` may be partial)

    @property
    def problems(self) -> list[FileCheck]:
        return [f for f in self.files if f.status != OK]

    @property
    def ok(self) -> bool:
        return not self.error and not self.problems


def verify_board(port: str, manifest: Manifest, connect_timeout_s: float = 10.0,
                 progress: Progress | None = None) -> VerifyResult:
    res = VerifyResult(port)
    total = len(manifest.files) + 2

    def say(step: int, text: str) -> None:
        if progress:
            progress(port, step, total, text)

    try:
        with BoardSession(port, timeout_s=connect_timeout_s) as board:
            say(1, "connecting")
            board.enter_raw()
            has_main = False
            try:
                ident = board.identity()
                res.micropython, res.firmware, has_main = ident.micropython, ident.firmware, ident.has_main
                res.board_id = board.unique_id()
                for i, (name, data) in enumerate(manifest.files, start=2):
                    say(i, f"hashing {name}")
                    got = board.file_sha(name)
                    want = sha256(data)
                    status = MISSING if got is None else (OK if got == want else DIFFERS)
                    res.files.append(FileCheck(name, status, want, got))
            except FlashError as exc:
                res.error = str(exc)
            leave_as_found(board, has_main)
            say(total, "done" if not res.error else "failed")
    except FlashError as exc:
        res.error = res.error or str(exc)
    return res


def leave_as_found(board: BoardSession, has_main: bool) -> None:
    """Out of the raw REPL (restarting main.py when there is one); a board that vanished stays so."""
    if board.in_raw:
        try:
            board.leave(restart=has_main)
        except FlashError:
            pass
