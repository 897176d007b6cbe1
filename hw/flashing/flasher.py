"""Flash one board: version check, copy (skipping identical files), verify, config, reset, hello,
self-test. Each stage is reported to a progress callback."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from hw.errors import BoardError, FlashError
from hw.firmware import headset_link as hl
from hw.flashing.manifest import CONFIG_NAME, Manifest, sha256
from hw.flashing.session import BoardSession

Progress = Callable[[str, int, int, str], None]  # (port, step, total steps, text)
G_RANGE = (0.8, 1.2)  # |accel| at rest, g


@dataclass
class FlashResult:
    port: str
    ok: bool = False
    board_id: str = ""
    micropython: str = ""
    files_written: int = 0
    files_skipped: int = 0
    self_test: dict[str, Any] = field(default_factory=dict)
    error: str = ""


def flash_board(port: str, manifest: Manifest, config: bytes, force: bool = False,
                progress: Progress | None = None, hello_timeout_s: float = 15.0) -> FlashResult:
    res = FlashResult(port)
    files = list(manifest.files) + [(CONFIG_NAME, config)]
    total = 5 + 2 * len(files)
    step = 0

    def say(text: str) -> None:
        nonlocal step
        step += 1
        if progress:
            progress(port, min(step, total), total, text)

    try:
        board = BoardSession(port)
    except FlashError as exc:
        res.error = str(exc)
        return res
    with board:
        try:
            say("connecting")
            board.enter_raw()
            res.micropython = board.check_version()
            res.board_id = board.unique_id()
            for name, data in files:
                say(f"checking {name}")
                if not force and board.file_sha(name) == sha256(data):
                    res.files_skipped += 1
                    step += 1
                    continue
                say(f"writing {name} ({len(data)} B)")
                board.write_atomic(name, data)
                res.files_written += 1
            say("verifying every file")
            for name, data in files:
                got = board.file_sha(name)
                if got != sha256(data):
                    raise BoardError(f"{port}: verification failed for {name}: board sha256 {got}, expected {sha256(data)}")
            say("resetting")
            board.soft_reset()
            hello = board.read_messages(lambda m: m["t"] == hl.HELLO, hello_timeout_s, "hello from the firmware")
            if hello["fw"] != manifest.version:
                raise BoardError(f"{port}: firmware says version {hello['fw']}, expected {manifest.version}")
            if hello["id"] != res.board_id:
                raise BoardError(f"{port}: firmware reports id {hello['id']}, the board's unique id is {res.board_id}")
            say("self-test")
            board.send({"t": hl.GET_INFO, "n": 1})
            info = board.read_messages(lambda m: m["t"] == hl.INFO and m["re"] == 1, 5.0, "self-test answer")
            st = info.get("st") or {}
            res.self_test = dict(st)
            problems = self_test_problems(st)
            if problems:
                raise BoardError(f"{port}: self-test failed: {'; '.join(problems)}")
            say("done")
            res.ok = True
        except FlashError as exc:
            res.error = str(exc)
            if board.in_raw:  # leave the board running its (old, verified) firmware
                try:
                    board.soft_reset()
                except FlashError:
                    pass
    return res


def self_test_problems(st: dict[str, Any]) -> list[str]:
    out = []
    g = st.get("g")
    if not st.get("imu") or not isinstance(g, int | float) or not (G_RANGE[0] <= g <= G_RANGE[1]):
        out.append(f"IMU not answering or gravity out of range (|a| = {g} g, want {G_RANGE[0]}..{G_RANGE[1]})")
    wear = st.get("wear")
    if not isinstance(wear, int) or wear < 0:
        out.append(f"wear sensor unreadable (raw {wear})")
    return out
