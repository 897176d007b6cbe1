"""Flash many boards at once (a thread per board), with a progress line per board on stderr,
going on past failures, and a summary table at the end."""

from __future__ import annotations

import sys
import threading
from collections.abc import Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from typing import Any, TextIO

from hw.flashing.flasher import FlashResult, flash_board
from hw.flashing.inventory import Inventory, Record
from hw.flashing.manifest import Manifest

BAR = 20


class ProgressPrinter:
    """A progress bar per board on stderr: `port  [#####.....] 5/24 writing hs_app.py`.

    On a terminal each board keeps one line that is redrawn in place; otherwise (logs, CI) every
    step is a new line. Thread-safe.
    """

    def __init__(self, out: TextIO | None = None):
        self.out = out
        self.lock = threading.Lock()
        self.width = 0
        self.lines: dict[str, str] = {}

    def __call__(self, port: str, step: int, total: int, text: str) -> None:
        out = self.out or sys.stderr
        filled = BAR * step // max(total, 1)
        with self.lock:
            self.width = max(self.width, len(port))
            line = f"{port:<{self.width}}  [{'#' * filled}{'.' * (BAR - filled)}] {step:>2}/{total} {text}"
            if not out.isatty():
                print(line, file=out, flush=True)
                return
            if port not in self.lines:
                out.write("\n")
            self.lines[port] = line
            n = len(self.lines)
            # up n lines, redraw every board's line (clearing each), back down where we were
            out.write(f"\x1b[{n}F" + "".join(f"\x1b[2K{v[:200]}\n" for v in self.lines.values()))
            out.flush()


def flash_many(ports: Sequence[str], manifest: Manifest, requested: Mapping[str, Any], inventory: Inventory,
               operator: str, force: bool = False, progress: ProgressPrinter | None = None,
               hello_timeout_s: float = 15.0, replace_config: bool = False,
               connect_timeout_s: float = 10.0) -> list[FlashResult]:
    """Flash every port (``requested``: the config values given, see ``flash_board``); one inventory
    row per board, with the site and desk the board was given (or kept)."""
    progress = progress or ProgressPrinter()

    def one(port: str) -> FlashResult:
        res = flash_board(port, manifest, requested, force=force, progress=progress, hello_timeout_s=hello_timeout_s,
                          replace_config=replace_config, connect_timeout_s=connect_timeout_s)
        if not res.ok:
            progress(port, 0, 1, f"FAILED: {res.error}")
        config = res.config or requested  # the board's own, once read
        site, desk, model = (str(config.get(k, "")) for k in ("site", "desk", "model"))
        inventory.add(Record(
            time=datetime.now(UTC).isoformat(timespec="seconds"), board_id=res.board_id, port=port,
            fw_hash=manifest.fw_hash, fw_version=manifest.version, micropython=res.micropython,
            operator=operator, site=site, desk=desk, model=model, result="ok" if res.ok else "failed",
            files_written=res.files_written,
            detail=(" ".join(f"{k}={v}" for k, v in sorted(res.self_test.items())) if res.ok else res.error)))
        return res

    with ThreadPoolExecutor(max_workers=max(1, min(len(ports), 16))) as pool:
        return list(pool.map(one, ports))


def summary_table(results: Sequence[FlashResult]) -> str:
    rows = [("port", "board id", "result", "written", "skipped", "detail")]
    for r in results:
        where = f"{r.config.get('site') or '-'}/{r.config.get('desk') or '-'} "
        detail = (f"{where}g={r.self_test.get('g')} wear={r.self_test.get('wear')}" if r.ok else r.error)
        rows.append((r.port, r.board_id or "-", "ok" if r.ok else "FAILED", str(r.files_written),
                     str(r.files_skipped), detail))
    widths = [max(len(row[i]) for row in rows) for i in range(5)]
    lines = ["  ".join(cell.ljust(widths[i]) for i, cell in enumerate(row[:5])) + "  " + row[5] for row in rows]
    ok = sum(r.ok for r in results)
    lines.append(f"{ok} of {len(results)} boards flashed and self-tested" + ("" if ok == len(results) else
                 f"; {len(results) - ok} failed"))
    return "\n".join(lines)
