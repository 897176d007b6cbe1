"""A staged rollout: flash --only-older --batch N against virtual MicroPython boards."""

from __future__ import annotations

import csv
import io
import re
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from hw import cli
from hw.flashing.inventory import Inventory
from tests.hw.conftest import BoardFactory, FirmwareDir, needs_micropython

if TYPE_CHECKING:
    from hw.virtual_headset.board import VirtualBoard

pytestmark = needs_micropython


def fw_on_board(board: VirtualBoard) -> str | None:
    p = board.fs_dir / "hs_app.py"
    if not p.exists():
        return None
    m = re.search(r'^FW_VERSION = "([^"]+)"', p.read_text(), re.M)
    return m.group(1) if m else None


def flashed_ports(inv: Path) -> list[str]:
    i = Inventory(inv)
    buf = io.StringIO()
    i.write_csv(buf)
    i.close()
    return [r["port"] for r in csv.DictReader(io.StringIO(buf.getvalue()))]


def test_only_older_flashes_outdated_boards_in_batches(
        tmp_path: Path, board_factory: BoardFactory, firmware_dir: FirmwareDir,
        capsys: pytest.CaptureFixture[str]) -> None:
    old_fw, new_fw = firmware_dir("1.9.2"), firmware_dir("1.10.0")  # as strings, 1.9.2 would look newer
    old = board_factory("old", unique_id="e661410300000001")
    current = board_factory("current", unique_id="e661410300000002")
    blank = board_factory("blank", unique_id="e661410300000003")
    inv = tmp_path / "inv.sqlite"
    base = ["flash", "--inventory", str(inv), "--operator", "carol"]
    assert cli.main([*base, "--port", str(old.link_path), "--site", "s1", "--desk", "d01",
                     "--firmware-dir", str(old_fw)]) == 0
    assert cli.main([*base, "--port", str(current.link_path), "--site", "s1", "--desk", "d02",
                     "--firmware-dir", str(new_fw)]) == 0
    assert (fw_on_board(old), fw_on_board(current), fw_on_board(blank)) == ("1.9.2", "1.10.0", None)
    capsys.readouterr()
    before = len(flashed_ports(inv))

    rollout = [*base, "--only-older", "--batch", "1", "--firmware-dir", str(new_fw),
               "--port", str(old.link_path), "--port", str(current.link_path), "--port", str(blank.link_path)]
    assert cli.main(rollout) == 0
    out = capsys.readouterr()
    assert f"{current.link_path}  firmware 1.10.0: up to date, skipped" in out.err
    assert f"{old.link_path}  firmware 1.9.2 is older than 1.10.0: will flash" in out.err
    assert "1 of 1 boards flashed and self-tested" in out.out
    assert f"left for the next run (1): {blank.link_path} (no firmware)" in out.out
    assert (fw_on_board(old), fw_on_board(blank)) == ("1.10.0", None)
    assert flashed_ports(inv)[before:] == [str(old.link_path)]
    assert old.mode == "running" and current.mode == "running"  # the up-to-date board was never interrupted

    assert cli.main(rollout) == 0  # the next run takes the board left over
    out = capsys.readouterr()
    assert "left for the next run" not in out.out and fw_on_board(blank) == "1.10.0"
    assert flashed_ports(inv)[before:] == [str(old.link_path), str(blank.link_path)]

    assert cli.main(rollout) == 0
    assert "every board already has firmware 1.10.0 or newer: nothing to flash" in capsys.readouterr().out
    assert len(flashed_ports(inv)) == before + 2


def test_batch_must_be_positive(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["flash", "--port", "/dev/null", "--batch", "0", "--inventory", str(tmp_path / "i.sqlite")]) == 2
    assert capsys.readouterr().err == "headset-flash: --batch must be at least 1, got 0\n"
