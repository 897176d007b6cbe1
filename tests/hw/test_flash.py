"""headset-flash against virtual MicroPython boards: real mpremote transport, real MicroPython."""

from __future__ import annotations

import csv
import io
import json
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

import numpy as np
import pytest
import serial

from hw import cli
from hw.firmware import headset_link as hl
from hw.flashing.inventory import Inventory
from hw.flashing.manifest import CONFIG_NAME, Manifest
from hw.virtual_headset import HeadsetTrace
from tests.hw.conftest import BoardFactory, flash, needs_micropython

if TYPE_CHECKING:
    from hw.virtual_headset.board import VirtualBoard

pytestmark = needs_micropython
MANIFEST = Manifest.load()


def rows(tmp_path: Path) -> list[dict[str, str]]:
    inv = Inventory(tmp_path / "inv.sqlite")
    buf = io.StringIO()
    inv.write_csv(buf)
    inv.close()
    return list(csv.DictReader(io.StringIO(buf.getvalue())))


def test_flash_verify_boot_hello_selftest_and_inventory(
        tmp_path: Path, board_factory: BoardFactory, capsys: pytest.CaptureFixture[str]) -> None:
    board = board_factory()
    assert board.mode == "friendly"  # a blank board: no main.py
    assert flash(tmp_path, board.link_path) == 0
    out = capsys.readouterr()
    assert "1 of 1 boards flashed and self-tested" in out.out
    assert "writing hs_app.py" in out.err and "self-test" in out.err  # progress on stderr
    for name, data in MANIFEST.files:
        assert (board.fs_dir / name).read_bytes() == data
    assert not list(board.fs_dir.glob("*.tmp"))
    assert json.loads((board.fs_dir / CONFIG_NAME).read_text()) == {"desk": "d07", "site": "s1"}
    assert board.mode == "running" and board.firmware_errors == []
    (row,) = rows(tmp_path)
    assert row["result"] == "ok" and row["board_id"] == "e6614103e7452d2f" and row["operator"] == "alice"
    assert row["fw_hash"] == MANIFEST.fw_hash and row["fw_version"] == MANIFEST.version
    assert row["micropython"] == "1.27.0" and row["files_written"] == str(len(MANIFEST.files) + 1)
    assert "imu=True" in row["detail"] and "wear=52000" in row["detail"]
    assert cli.main(["inventory", "--inventory", str(tmp_path / "inv.sqlite")]) == 0
    listing = capsys.readouterr().out
    assert "e6614103e7452d2f" in listing and "alice" in listing and "s1/d07" in listing

    # Again: nothing to write. Then a file damaged on the board is found and rewritten.
    assert flash(tmp_path, board.link_path) == 0
    (board.fs_dir / "hs_filter.py").write_bytes(b"# damaged\n")
    assert flash(tmp_path, board.link_path) == 0
    assert [r["files_written"] for r in rows(tmp_path)] == [str(len(MANIFEST.files) + 1), "0", "1"]
    assert (board.fs_dir / "hs_filter.py").read_bytes() == dict(MANIFEST.files)["hs_filter.py"]


def test_corruption_during_write_is_caught_and_the_old_file_kept(
        tmp_path: Path, board_factory: BoardFactory, capsys: pytest.CaptureFixture[str]) -> None:
    board = board_factory()
    assert flash(tmp_path, board.link_path) == 0
    before = (board.fs_dir / "hs_app.py").read_bytes()
    board.corrupt_files = {"hs_app.py"}
    assert flash(tmp_path, board.link_path, extra=("--force",)) == 1
    out = capsys.readouterr().out
    assert "FAILED" in out and "verification failed for hs_app.py" in out
    assert (board.fs_dir / "hs_app.py").read_bytes() == before  # bootable: the verified old copy stays
    assert not (board.fs_dir / "hs_app.py.tmp").exists()
    assert rows(tmp_path)[-1]["result"] == "failed"
    end = time.monotonic() + 10
    while board.mode != "running" and time.monotonic() < end:
        time.sleep(0.02)
    assert board.mode == "running"  # the flasher reset it: the old firmware runs again


def test_batch_goes_on_past_a_board_that_vanishes(
        tmp_path: Path, board_factory: BoardFactory, capsys: pytest.CaptureFixture[str]) -> None:
    good = board_factory("good", unique_id="e661410300000001")
    lost = board_factory("lost", unique_id="e661410300000002", vanish_after_bytes=6000)
    assert flash(tmp_path, good.link_path, lost.link_path) == 1
    out = capsys.readouterr().out
    lines = {line.split()[0]: line for line in out.splitlines() if line.startswith(str(tmp_path))}
    assert " ok " in lines[str(good.link_path)]
    assert "FAILED" in lines[str(lost.link_path)] and "vanished" in lines[str(lost.link_path)]
    assert "1 of 2 boards flashed and self-tested; 1 failed" in out
    results = {r["port"]: r for r in rows(tmp_path)}
    assert results[str(good.link_path)]["result"] == "ok"
    assert results[str(lost.link_path)]["result"] == "failed"
    assert results[str(lost.link_path)]["board_id"] == "e661410300000002"


def test_desk_reads_posture_from_the_flashed_firmware(tmp_path: Path, board_factory: BoardFactory) -> None:
    trace = HeadsetTrace.from_segments([(0, 4, dict(pitch=3, worn=True)), (4, 600, dict(pitch=24, roll=5, worn=False))])
    board = board_factory(trace=trace, time_scale=2.0)
    assert flash(tmp_path, board.link_path) == 0
    # a desk-side reader: plain pyserial + headset_link
    with serial.Serial(str(board.link_path), timeout=0.05) as ser:
        lines = hl.LineBuffer()
        got: list[dict[str, Any]] = []
        ser.write(hl.encode({"t": hl.PING, "n": 41}))
        end = time.monotonic() + 20
        def done() -> bool:
            return any(m["t"] == hl.WEAR and m["on"] is False for m in got) and any(
                m["t"] == hl.IMU and m["p"] > 20 for m in got)

        while time.monotonic() < end and not done():
            for line in lines.feed(ser.read(4096)):
                got.append(hl.decode(line))
    assert any(m["t"] == hl.HELLO and m["id"] == "e6614103e7452d2f" for m in got)  # said on connect
    assert any(m["t"] == hl.PONG and m["re"] == 41 for m in got)
    pitches = [m["p"] for m in got if m["t"] == hl.IMU]
    assert pitches and abs(pitches[0] - 3) < 1.5
    assert max(pitches) > 20  # the slouch, from the fake IMU's registers through the MPU-6050 driver
    wear = [m["on"] for m in got if m["t"] == hl.WEAR]
    assert wear == [True, False]


def test_list_shows_id_and_version_of_a_running_headset(
        tmp_path: Path, board_factory: BoardFactory, capsys: pytest.CaptureFixture[str]) -> None:
    board = board_factory()
    assert cli.main(["list", "--port", str(board.link_path)]) == 0
    assert "e6614103e7452d2f" not in capsys.readouterr().out  # blank board: no firmware answers
    assert flash(tmp_path, board.link_path) == 0
    capsys.readouterr()
    assert cli.main(["list", "--port", str(board.link_path)]) == 0
    line = [x for x in capsys.readouterr().out.splitlines() if x.startswith(str(board.link_path))][0]
    assert "e6614103e7452d2f" in line and MANIFEST.version in line and "1.27.0" in line


def test_safe_boot_pin_keeps_the_firmware_from_starting(tmp_path: Path, board_factory: BoardFactory) -> None:
    board = board_factory()
    assert flash(tmp_path, board.link_path) == 0
    board.stop()
    held = board_factory("held", safe_pin_held=True)
    for p in board.fs_dir.iterdir():
        (held.fs_dir / p.name).write_bytes(p.read_bytes())
    with serial.Serial(str(held.link_path), timeout=0.2) as ser:
        ser.write(b"\x03\x04")  # Ctrl-C, then a soft reset from the friendly REPL
        text = b""
        end = time.monotonic() + 10
        while b">>> " not in text.split(b"soft reboot")[-1] and time.monotonic() < end:
            text += ser.read(1000)
    assert b"headset firmware not started: safe pin held at reset" in text
    assert held.mode == "friendly"


def test_mpremote_itself_works_against_the_virtual_board(tmp_path: Path, board_factory: BoardFactory) -> None:
    board = board_factory()
    src = tmp_path / "hello.py"
    src.write_text("print('hi from the board')\n")
    mp = [sys.executable, "-m", "mpremote", "connect", str(board.link_path)]
    r = subprocess.run(mp + ["fs", "cp", str(src), ":hello.py", "+", "exec", "import hello"],
                       capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr
    assert "hi from the board" in r.stdout
    assert (board.fs_dir / "hello.py").read_text() == src.read_text()
    r = subprocess.run(mp + ["exec", "open('nope.txt')"], capture_output=True, text=True, timeout=60)
    assert "OSError: [Errno 2] ENOENT" in r.stdout + r.stderr
    r = subprocess.run(mp + ["fs", "cat", ":nope.txt"], capture_output=True, text=True, timeout=60)
    assert r.returncode != 0 and "No such file" in r.stdout + r.stderr, (
        f"{r.stderr[-1500:]}\nboard mode {board.mode}, firmware errors: {board.firmware_errors}")


def test_flash_refuses_bad_device_config(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["flash", "--port", "/dev/null", "--orientation", "+x+x+z", "--inventory",
                     str(tmp_path / "i.sqlite")]) == 2
    assert "orientation: orientation names an axis twice" in capsys.readouterr().err


@pytest.mark.parametrize("port", ["/nonexistent/ttyACM9"])
def test_missing_port_is_a_failed_row(tmp_path: Path, port: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert flash(tmp_path, Path(port)) == 1
    assert "cannot open the port" in capsys.readouterr().out
    assert rows(tmp_path)[-1]["result"] == "failed"


def test_training_board_from_the_cli_can_be_flashed(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    link = tmp_path / "ttyTRAIN"
    proc = subprocess.Popen([sys.executable, "-m", "hw.cli", "virtual-headset", "--link", str(link), "--scenario",
                             "upright", "--board", str(tmp_path / "flash"), "--duration", "60"],
                            stderr=subprocess.DEVNULL)
    try:
        end = time.monotonic() + 15
        while not link.exists() and time.monotonic() < end:
            time.sleep(0.02)
        assert flash(tmp_path, link) == 0
        assert (tmp_path / "flash" / "main.py").read_bytes() == dict(MANIFEST.files)["main.py"]
    finally:
        proc.terminate()
        proc.wait(5)


def test_old_micropython_is_refused_with_the_way_to_upgrade(
        tmp_path: Path, board_factory: BoardFactory, capsys: pytest.CaptureFixture[str]) -> None:
    board = board_factory(pretend_micropython=(1, 19, 1))
    assert flash(tmp_path, board.link_path) == 1
    out = capsys.readouterr().out
    assert "MicroPython 1.19.1 is older than 1.20" in out and "mpflash flash" in out
    assert list(board.fs_dir.iterdir()) == []  # nothing was written


def board_files(board: VirtualBoard) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(board.fs_dir.iterdir())}


def board_config(board: VirtualBoard) -> dict[str, Any]:
    return cast(dict[str, Any], json.loads((board.fs_dir / CONFIG_NAME).read_text()))


def flash_args(tmp_path: Path, board: VirtualBoard, *extra: str) -> list[str]:
    return ["flash", "--inventory", str(tmp_path / "inv.sqlite"), "--operator", "bob", "--port", str(board.link_path),
            *extra]


@pytest.mark.parametrize(("flag", "value", "message"), [
    ("--site", "Site 1", "--site 'Site 1' is not a valid id: it must match [a-z0-9-]{1,32}"),
    ("--desk", "D07", "--desk 'D07' is not a valid id"),
    ("--desk", "alert", "desk 'alert' is a reserved word"),
    ("--model", "Jabra Biz 2300", "--model 'Jabra Biz 2300' is not a valid id"),
    ("--site", "x" * 33, "is not a valid id"),
])
def test_invalid_ids_are_refused_before_board_or_inventory_is_touched(
        flag: str, value: str, message: str, flashed_board: tuple[VirtualBoard, Path],
        capsys: pytest.CaptureFixture[str]) -> None:
    board, work = flashed_board  # flashed once for the module; each case checks it finds it as it was
    files, inventory = board_files(board), rows(work)
    assert inventory  # the flash is on record
    capsys.readouterr()
    assert cli.main(flash_args(work, board, flag, value)) == 2
    out = capsys.readouterr()
    (line,) = out.err.splitlines()
    assert line.startswith("headset-flash: ") and message in line and out.out == ""
    assert board_files(board) == files and rows(work) == inventory  # nothing written anywhere
    assert board.mode == "running"  # never even interrupted


@pytest.mark.parametrize(("flag", "value"), [("--hello-timeout", "nan"), ("--hello-timeout", "inf"),
                                             ("--hello-timeout", "1e308"), ("--hello-timeout", "0"),
                                             ("--connect-timeout", "nan"), ("--connect-timeout", "3601")])
def test_timeouts_that_are_no_sane_seconds_are_refused_before_anything_is_written(
        flag: str, value: str, tmp_path: Path, board_factory: BoardFactory, capsys: pytest.CaptureFixture[str]) -> None:
    board = board_factory()  # a blank board: --hello-timeout nan used to write the firmware, then fail
    files = board_files(board)
    assert cli.main(flash_args(tmp_path, board, "--site", "s1", "--desk", "d07", flag, value)) == 2
    out = capsys.readouterr()
    assert out.out == "" and out.err == (f"headset-flash: {flag} must be a number of seconds more than 0 and at "
                                         f"most 3600, not {float(value):g}\n")
    assert board_files(board) == files and not (tmp_path / "inv.sqlite").exists()
    assert board.mode == "friendly"  # never even interrupted


def test_reflash_keeps_the_boards_config_unless_a_flag_replaces_it(
        tmp_path: Path, board_factory: BoardFactory, capsys: pytest.CaptureFixture[str]) -> None:
    board = board_factory()
    assert cli.main(flash_args(tmp_path, board, "--site", "s1", "--desk", "d07", "--model", "hs-200",
                               "--orientation=-y+x+z")) == 0
    first = board_config(board)
    assert first == {"site": "s1", "desk": "d07", "model": "hs-200", "orientation": "-y+x+z"}
    # A firmware update of a deployed board: no identity flags. Everything stays; the config is not rewritten.
    assert cli.main(flash_args(tmp_path, board, "--force")) == 0
    assert board_config(board) == first
    assert "s1/d07" in capsys.readouterr().out  # the summary says what the board kept
    # One flag changes one value.
    assert cli.main(flash_args(tmp_path, board, "--desk", "d08")) == 0
    assert board_config(board) == {**first, "desk": "d08"}
    assert [(r["site"], r["desk"]) for r in rows(tmp_path)] == [("s1", "d07"), ("s1", "d07"), ("s1", "d08")]
    # Asked for in so many words: the flags alone.
    assert cli.main(flash_args(tmp_path, board, "--replace-config", "--site", "s2")) == 0
    assert board_config(board) == {"site": "s2"}
    assert rows(tmp_path)[-1]["desk"] == "" and rows(tmp_path)[-1]["site"] == "s2"
    assert board.mode == "running" and board.firmware_errors == []


def test_a_board_config_that_cannot_be_kept_is_refused_with_the_flag_to_pass(
        tmp_path: Path, board_factory: BoardFactory, capsys: pytest.CaptureFixture[str]) -> None:
    board = board_factory()
    assert flash(tmp_path, board.link_path) == 0
    # flashed by an older headset-flash, which let "Site 1" through
    (board.fs_dir / CONFIG_NAME).write_text(json.dumps({"site": "Site 1", "desk": "d07"}))
    files, inventory = board_files(board), rows(tmp_path)
    capsys.readouterr()
    assert cli.main(flash_args(tmp_path, board, "--force")) == 1
    err = capsys.readouterr().err
    assert (f"headset-flash: {board.link_path}: the board's hs_config.json cannot be kept: site 'Site 1' is not a "
            "valid id: it must match [a-z0-9-]{1,32}; pass --site to set a valid one\n") in err
    assert board_files(board) == files  # refused before the first write, even with --force
    assert rows(tmp_path)[:-1] == inventory and rows(tmp_path)[-1]["result"] == "failed"

    (board.fs_dir / CONFIG_NAME).write_text("{not json")
    files = board_files(board)
    assert cli.main(flash_args(tmp_path, board)) == 1
    assert "hs_config.json is not valid JSON, so its settings cannot be kept; pass --replace-config" in (
        capsys.readouterr().err)
    assert board_files(board) == files

    assert cli.main(flash_args(tmp_path, board, "--replace-config", "--site", "s1", "--desk", "d07")) == 0
    assert board_config(board) == {"site": "s1", "desk": "d07"}
    (board.fs_dir / CONFIG_NAME).write_text(json.dumps({"site": "Site 1", "desk": "d07"}))
    assert cli.main(flash_args(tmp_path, board, "--site", "s3")) == 0  # the flag mends the bad value, desk kept
    assert board_config(board) == {"site": "s3", "desk": "d07"}


class GarbagePort:
    """A pty that is no MicroPython board: whatever it is sent, it answers ``size`` bytes of noise, once."""

    def __init__(self, link: Path, size: int = 10240):
        from hw.virtual_headset.pty_port import PtyPort

        self.port = PtyPort(link)
        self.noise = bytes(np.random.default_rng(3).integers(0, 256, size, dtype=np.uint8))
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self) -> GarbagePort:
        self.port.open()
        self.thread.start()
        return self

    def _run(self) -> None:
        answered = False
        while not self.stop.is_set():
            if self.port.read(0.05) and not answered:
                self.port.write_all(self.noise)
                answered = True

    def __exit__(self, *exc: object) -> None:
        self.stop.set()
        self.thread.join(5)
        self.port.close()


def test_a_port_that_is_no_micropython_board_gives_one_line(
        tmp_path: Path, capfd: pytest.CaptureFixture[str]) -> None:
    link = tmp_path / "ttyNOISE"
    with GarbagePort(link):
        rc = cli.main(["flash", "--inventory", str(tmp_path / "inv.sqlite"), "--operator", "bob", "--port", str(link),
                       "--site", "s1", "--connect-timeout", "2"])
    out, err = capfd.readouterr()
    assert rc == 1
    want = f"headset-flash: {link} does not answer as a MicroPython raw REPL (got 10240 bytes of other output"
    (line,) = [x for x in err.splitlines() if x.startswith("headset-flash: ")]
    assert line.startswith(want), line
    assert len(out) + len(err) < 2000, (len(out), len(err))  # no dump of the noise
    assert all(ch.isprintable() or ch == "\n" for ch in out + err)
    (row,) = rows(tmp_path)
    assert row["result"] == "failed" and "does not answer as a MicroPython raw REPL" in row["detail"]


def test_a_silent_port_says_so(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from hw.virtual_headset.pty_port import PtyPort

    port = PtyPort(tmp_path / "ttySILENT")
    port.open()
    try:
        assert cli.main(["flash", "--inventory", str(tmp_path / "inv.sqlite"), "--port", str(port.link_path),
                         "--connect-timeout", "1"]) == 1
    finally:
        port.close()
    assert (f"headset-flash: {port.link_path} does not answer as a MicroPython raw REPL (no output within 1 s; "
            "is another program using the port?)\n") in capsys.readouterr().err


def test_a_board_config_nested_too_deeply_is_refused_by_name() -> None:
    from hw.errors import FlashError
    from hw.flashing.device_config import board_config

    deep = b'{"site": ' + b"[" * 30_000 + b"]" * 30_000 + b"}"
    with pytest.raises(FlashError, match="hs_config.json is not valid JSON, so its settings cannot be kept"):
        board_config("/dev/ttyACM0", deep, {"desk": "d07"})


@pytest.mark.parametrize(("flags", "message"), [
    (["--port", ""], "--port: empty (name a serial port)"),  # was "cannot open the port (failed to access )", exit 1
    (["--port", "/dev/null", "--inventory", ""], "--inventory: empty path"),  # was "inventory . is a directory", 1
    (["--port", "/dev/null", "--operator", ""], "--operator: empty (leave it out for the login name)"),  # ignored
])
def test_an_empty_flag_value_is_a_usage_error_naming_the_flag(
        flags: list[str], message: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.chdir(tmp_path)
    assert cli.main(["flash", "--inventory", str(tmp_path / "inv.sqlite"), "--site", "s1", "--desk", "d07",
                     *flags]) == 2
    out = capsys.readouterr()
    assert out.out == "" and out.err == f"headset-flash: {message}\n"
    assert list(tmp_path.iterdir()) == []  # no inventory, nothing in the current folder
