"""Pull every file of a board into a folder on this machine (read only on the board).

The folder must be empty or absent, unless ``force`` (then files of the same name are replaced;
other files in it stay). Paths keep the board's folders (``lib/x.py`` -> ``OUT/lib/x.py``). Each file
is written to ``NAME.part`` and renamed when complete, so an interrupted backup leaves no file that
looks whole and is not. The board is left as it was found (see :mod:`hw.flashing.verify`).
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

from hw.errors import BoardError, FlashError
from hw.flashing.manifest import sha256
from hw.flashing.session import BoardSession
from hw.flashing.verify import Progress, leave_as_found

PROGRESS_BYTES = 16 * 1024  # a progress line per this many bytes read of a big file


@dataclass
class BackupResult:
    port: str
    out: Path
    board_id: str = ""
    files: list[tuple[str, int, str]] = field(default_factory=list)  # (path, bytes, sha256)

    @property
    def total_bytes(self) -> int:
        return sum(n for _p, n, _h in self.files)


def check_out_folder(out: Path, force: bool) -> None:
    """Refuse (before the board is touched) a folder that is a file or already holds files."""
    if out.exists() and not out.is_dir():
        raise FlashError(f"{out} exists and is not a folder")
    if out.is_dir() and any(out.iterdir()) and not force:
        raise FlashError(f"{out} is not empty; pass --force to overwrite the files in it, or name a new folder")


def target(out: Path, name: str) -> Path:
    """``out/name``, refusing a board path that would leave ``out`` (``..``, an absolute path)."""
    parts = Path(name).parts
    if not parts or Path(name).is_absolute() or any(p in ("..", ".") for p in parts):
        raise BoardError(f"the board lists a file named {name!r}, which cannot be stored safely")
    return out.joinpath(*parts)


def backup_board(port: str, out: Path, force: bool = False, connect_timeout_s: float = 10.0,
                 progress: Progress | None = None) -> BackupResult:
    """Copy every file of the board at ``port`` into ``out``; raise :class:`FlashError` on failure."""
    check_out_folder(out, force)
    res = BackupResult(port, out)
    with BoardSession(port, timeout_s=connect_timeout_s) as board:
        if progress:
            progress(port, 0, 1, "connecting")
        board.enter_raw()
        has_main = False
        try:
            ident = board.identity()
            has_main = ident.has_main
            res.board_id = board.unique_id()
            files = board.walk()
            total = max(1, len(files))
            for i, (name, size) in enumerate(files, start=1):
                dest = target(out, name)

                shown = [0]

                def tick(done: int, of: int, i: int = i, name: str = name, shown: list[int] = shown) -> None:
                    if progress and done - shown[0] >= PROGRESS_BYTES and done < of:  # big files only
                        shown[0] = done
                        progress(port, i - 1, total, f"reading {name} {done}/{of} B")

                if progress:
                    progress(port, i - 1, total, f"reading {name} ({size} B)")
                data = board.read_file(name, tick)
                if data is None:  # deleted since the listing
                    continue
                try:
                    dest.parent.mkdir(parents=True, exist_ok=True)
                    part = dest.with_name(dest.name + ".part")
                    part.write_bytes(data)
                    os.replace(part, dest)
                except OSError as exc:
                    raise FlashError(f"cannot write {dest}: {exc.strerror or exc}") from None
                res.files.append((name, len(data), sha256(data)))
                if progress:
                    progress(port, i, total, f"saved {name} ({len(data)} B)")
        finally:
            leave_as_found(board, has_main)
    return res
