"""Flash one board: version check, the board's config read and merged, copy (skipping identical
files), verify, reset, hello, self-test. Each stage is reported to a progress callback. Nothing is
written to a board before its config is known to be good."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from hw.errors import BoardError, FlashError
from hw.firmware import headset_link as hl
from hw.flashing.device_config import board_config, encode
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
    config: dict[str, Any] = field(default_factory=dict)  # hs_config.json as written (empty if not reached)


def flash_board(port: str, manifest: Manifest, requested: Mapping[str, Any], force: bool = False,
                progress: Progress | None = None, hello_timeout_s: float = 15.0, replace_config: bool = False,
                connect_timeout_s: float = 10.0) -> FlashResult:
    """Flash ``port``; ``requested``: the config values given (see
    :func:`hw.flashing.device_config.board_config` for how they meet the board's own)."""
    res = FlashResult(port)
    total = 6 + 2 * (len(manifest.files) + 1)
    step = 0

    def say(text: str) -> None:
        nonlocal step
        step += 1
        if progress:
            progress(port, min(step, total), total, text)

    try:
        board = BoardSession(port, timeout_s=connect_timeout_s)
    except FlashError as exc:
        res.error = str(exc)
        return res
    with board:
        try:
            say("connecting")
            board.enter_raw()
            res.micropython = board.check_version()
            res.board_id = board.unique_id()
            say(f"reading {CONFIG_NAME}")
            config = board_config(port, board.read_file(CONFIG_NAME), requested, replace_config)
            files = list(manifest.files) + [(CONFIG_NAME, encode(config))]
            res.config = config
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
