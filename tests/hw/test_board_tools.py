"""list (a blank board's MicroPython), verify and backup against virtual MicroPython boards: real
mpremote transport, real MicroPython under Node, real files."""

from __future__ import annotations

import time
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from hw import cli
from hw.flashing.manifest import Manifest
from tests.hw.conftest import BoardFactory, flash, needs_micropython

if TYPE_CHECKING:
    from hw.virtual_headset.board import VirtualBoard

pytestmark = needs_micropython
MANIFEST = Manifest.load()


def snapshot(root: Path) -> dict[str, tuple[bytes, int]]:
    """Every file under root: content and mtime (ns)."""
    return {str(p.relative_to(root)): (p.read_bytes(), p.stat().st_mtime_ns) for p in sorted(root.rglob("*"))
            if p.is_file()}


def wait_mode(board: VirtualBoard, mode: str, deadline_s: float = 10.0) -> str:
    end = time.monotonic() + deadline_s
    while board.mode != mode and time.monotonic() < end:
        time.sleep(0.02)
    return str(board.mode)


def test_list_shows_the_micropython_version_of_a_blank_board(
        tmp_path: Path, board_factory: BoardFactory, capsys: pytest.CaptureFixture[str]) -> None:
    blank = board_factory("blank")
    old = board_factory("old", pretend_micropython=(1, 22, 2))
    assert cli.main(["list", "--port", str(blank.link_path), "--port", str(old.link_path)]) == 0
    out = capsys.readouterr().out
    header, *lines = out.splitlines()
    assert header.split()[:4] == ["port", "headset", "id", "firmware"] and "micropython" in header
    by_port = {line.split()[0]: line for line in lines}
    assert "1.27.0" in by_port[str(blank.link_path)] and "Raspberry Pi Pico with RP2040" in by_port[str(blank.link_path)]
    assert "blank (no headset firmware)" in by_port[str(blank.link_path)]
    assert "1.22.2" in by_port[str(old.link_path)]
    assert wait_mode(blank, "friendly") == wait_mode(old, "friendly") == "friendly"  # left at the REPL, as found
    assert list(blank.fs_dir.iterdir()) == []


def test_verify_finds_differing_and_missing_files_and_never_writes(
        tmp_path: Path, board_factory: BoardFactory, capsys: pytest.CaptureFixture[str]) -> None:
    board = board_factory()
    assert flash(tmp_path, board.link_path) == 0
    capsys.readouterr()
    before = snapshot(board.fs_dir)
    assert cli.main(["verify", "--port", str(board.link_path)]) == 0
    captured = capsys.readouterr()
    assert f"{board.link_path}: {len(MANIFEST.files)} of {len(MANIFEST.files)} files match firmware {MANIFEST.version}" \
        in captured.out and "1 of 1 boards match" in captured.out
    assert "hashing hs_app.py" in captured.err  # progress
    assert snapshot(board.fs_dir) == before
    assert wait_mode(board, "running") == "running"  # the firmware runs again after the check

    (board.fs_dir / "hs_filter.py").write_bytes(b"# damaged\n")
    (board.fs_dir / "hs_wear.py").unlink()
    before = snapshot(board.fs_dir)
    assert cli.main(["verify", "--port", str(board.link_path)]) == 1
    out = capsys.readouterr().out
    rows = {c[2]: c[3] for c in (line.split() for line in out.splitlines()[1:]) if c[0] == str(board.link_path)
            and c[3] in ("DIFFERS", "MISSING")}
    assert rows == {"hs_filter.py": "DIFFERS", "hs_wear.py": "MISSING"}
    assert out.splitlines()[0].split() == ["port", "board", "id", "file", "status", "sha256"]
    assert f"{len(MANIFEST.files) - 2} of {len(MANIFEST.files)} files match" in out
    assert snapshot(board.fs_dir) == before  # hashes only: nothing written, renamed or removed


def test_verify_of_a_blank_board_lists_every_file_missing(
        tmp_path: Path, board_factory: BoardFactory, capsys: pytest.CaptureFixture[str]) -> None:
    board = board_factory()
    assert cli.main(["verify", "--port", str(board.link_path)]) == 1
    out = capsys.readouterr().out
    assert out.count("MISSING") == len(MANIFEST.files) and "0 of 1 boards match; 1 do not" in out
    assert list(board.fs_dir.iterdir()) == [] and wait_mode(board, "friendly") == "friendly"


def test_backup_pulls_every_file_and_refuses_to_overwrite_without_force(
        tmp_path: Path, board_factory: BoardFactory, capsys: pytest.CaptureFixture[str]) -> None:
    board = board_factory()
    assert flash(tmp_path, board.link_path) == 0
    (board.fs_dir / "lib").mkdir()
    (board.fs_dir / "lib" / "extra.py").write_text("X = 1\n")
    (board.fs_dir / "log.bin").write_bytes(bytes(range(256)) * 90)  # binary, several chunks
    capsys.readouterr()
    out_dir = tmp_path / "backup"
    assert cli.main(["backup", "--port", str(board.link_path), "--out", str(out_dir)]) == 0
    out = capsys.readouterr()
    board_files = {k: v[0] for k, v in snapshot(board.fs_dir).items()}
    assert {k: v[0] for k, v in snapshot(out_dir).items()} == board_files
    assert "lib/extra.py" in board_files and "hs_config.json" in board_files
    assert "saved hs_app.py" in out.err and f"{len(board_files)} files" in out.err  # progress and a summary
    assert len([x for x in out.out.splitlines() if x]) == len(board_files)
    assert wait_mode(board, "running") == "running"

    (out_dir / "hs_app.py").write_text("# mine\n")
    assert cli.main(["backup", "--port", str(board.link_path), "--out", str(out_dir)]) == 1
    err = capsys.readouterr().err
    assert err.startswith(f"headset-flash: {out_dir} is not empty; pass --force")
    assert (out_dir / "hs_app.py").read_text() == "# mine\n"
    assert cli.main(["backup", "--port", str(board.link_path), "--out", str(out_dir), "--force"]) == 0
    assert (out_dir / "hs_app.py").read_bytes() == board_files["hs_app.py"]
    assert not list(out_dir.rglob("*.part"))


@pytest.mark.parametrize("command", ["verify", "backup"])
@pytest.mark.parametrize("value", ["nan", "inf", "1e308", "-1"])
def test_a_connect_timeout_that_is_no_sane_seconds_is_refused_before_the_board_is_touched(
        command: str, value: str, tmp_path: Path, flashed_board: tuple[VirtualBoard, Path],
        capsys: pytest.CaptureFixture[str]) -> None:
    board, _ = flashed_board
    assert wait_mode(board, "running") == "running"
    files = snapshot(board.fs_dir)
    capsys.readouterr()
    out_dir = tmp_path / "backup"
    extra = ["--out", str(out_dir)] if command == "backup" else []
    assert cli.main([command, "--port", str(board.link_path), "--connect-timeout", value, *extra]) == 2
    out = capsys.readouterr()
    assert out.out == "" and out.err == ("headset-flash: --connect-timeout must be a number of seconds more than 0 "
                                         f"and at most 3600, not {float(value):g}\n")
    assert snapshot(board.fs_dir) == files and not out_dir.exists()
    assert board.mode == "running"  # never interrupted


@pytest.mark.parametrize("command", ["verify", "backup"])
def test_a_missing_port_is_one_line(command: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    port = tmp_path / "ttyACM9"
    extra = ["--out", str(tmp_path / "b")] if command == "backup" else []
    assert cli.main([command, "--port", str(port), *extra]) == 1
    err = capsys.readouterr().err
    (line,) = [x for x in err.splitlines() if x.startswith("headset-flash: ")]
    assert line.startswith(f"headset-flash: {port}: cannot open the port: no such port")


@pytest.mark.parametrize(("argv", "message"), [
    (["list", "--port", ""], "--port: empty (name a serial port)"),  # was listed as a port, exit 0
    (["verify", "--port", ""], "--port: empty (name a serial port)"),  # was "cannot open the port", exit 1
    (["backup", "--port", "", "--out", "b"], "--port: empty (name a serial port)"),
    (["backup", "--port", "/dev/ttyACM9", "--out", ""], "--out: empty path"),  # was ". is not empty", exit 1
])
def test_an_empty_flag_value_is_a_usage_error_naming_the_flag(
        argv: list[str], message: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.chdir(tmp_path)
    assert cli.main(argv) == 2
    out = capsys.readouterr()
    assert out.out == "" and out.err == f"headset-flash: {message}\n"
    assert list(tmp_path.iterdir()) == []
