"""headset-flash inventory on a real SQLite file: header row, filters, latest per board, CSV and JSON;
and --help with an example on every command."""

from __future__ import annotations

import csv
import io
import json
import sqlite3
from pathlib import Path

import pytest

from hw import cli
from hw.errors import FlashError
from hw.flashing.inventory import COLUMNS, Inventory, Record


def rec(time: str, board: str, site: str, model: str, result: str = "ok", fw: str = "1.0.0") -> Record:
    return Record(time=time, board_id=board, port=f"/dev/tty-{board or 'x'}", fw_hash="ab" * 32, fw_version=fw,
                  micropython="1.27.0", operator="alice", site=site, desk="d01", model=model, result=result,
                  files_written=3, detail="g=1.0")


@pytest.fixture
def inv_path(tmp_path: Path) -> Path:
    path = tmp_path / "inv.sqlite"
    inv = Inventory(path)
    for r in [rec("2026-01-01T10:00:00+00:00", "b1", "s1", "hs-200", fw="0.9.0"),
              rec("2026-01-01T10:00:01+00:00", "b2", "s1", "jabra-biz"),
              rec("2026-01-01T10:00:02+00:00", "", "s1", "", result="failed"),  # a board that never answered
              rec("2026-02-01T09:00:00+00:00", "b1", "s2", "hs-200"),  # b1 moved to site s2
              rec("2026-02-01T09:00:01+00:00", "b3", "s2", "jabra-biz", result="failed")]:
        inv.add(r)
    inv.close()
    return path


def inventory(path: Path, *args: str) -> list[str]:
    return ["inventory", "--inventory", str(path), *args]


def test_table_has_a_header_row_and_every_row(inv_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(inventory(inv_path)) == 0
    header, *rows = capsys.readouterr().out.splitlines()
    assert header.split()[:4] == ["time", "board", "id", "result"] and "model" in header and "site/desk" in header
    assert len(rows) == 5 and "s1/d01" in rows[0] and "hs-200" in rows[0]


def test_filters_and_latest_per_board(inv_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    def boards(*args: str) -> list[tuple[str, str]]:
        assert cli.main(inventory(inv_path, *args, "--format", "json")) == 0
        return [(r["board_id"], r["site"]) for r in json.loads(capsys.readouterr().out)]

    assert boards("--site", "s1") == [("b1", "s1"), ("b2", "s1"), ("", "s1")]
    assert boards("--model", "hs-200") == [("b1", "s1"), ("b1", "s2")]
    assert boards("--latest") == [("b2", "s1"), ("b1", "s2"), ("b3", "s2")]
    assert boards("--latest", "--site", "s1") == [("b2", "s1")]  # b1 is at s2 now
    assert boards("--latest", "--model", "hs-200", "--site", "s2") == [("b1", "s2")]
    assert boards("--site", "nosuch") == []
    assert cli.main(inventory(inv_path, "--site", "nosuch")) == 0
    assert "that match the filters" in capsys.readouterr().out


def test_csv_and_json_export_every_column_with_names(
        inv_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(inventory(inv_path, "--latest", "--format", "csv")) == 0
    text = capsys.readouterr().out
    assert text.splitlines()[0] == ",".join(COLUMNS)
    rows = list(csv.DictReader(io.StringIO(text)))
    assert [(r["board_id"], r["fw_version"], r["model"]) for r in rows] == [
        ("b2", "1.0.0", "jabra-biz"), ("b1", "1.0.0", "hs-200"), ("b3", "1.0.0", "jabra-biz")]
    assert cli.main(inventory(inv_path, "--csv", "--model", "jabra-biz")) == 0  # the old flag still works
    assert len(list(csv.DictReader(io.StringIO(capsys.readouterr().out)))) == 2
    assert cli.main(inventory(inv_path, "--format", "json", "--site", "s2")) == 0
    data = json.loads(capsys.readouterr().out)
    assert list(data[0]) == list(COLUMNS) and data[0]["files_written"] == 3


def test_bad_filters_are_usage_errors(inv_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(inventory(inv_path, "--site", "Site 1")) == 2
    assert capsys.readouterr().err == "headset-flash: --site 'Site 1' is not a valid id: it must match [a-z0-9-]{1,32}\n"
    assert cli.main(inventory(inv_path, "--csv", "--format", "json")) == 2
    assert "contradict" in capsys.readouterr().err


def test_an_inventory_from_before_the_model_column_is_read(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "old.sqlite"
    db = sqlite3.connect(path)
    old_columns = [c for c in COLUMNS if c != "model"]
    db.execute(f"CREATE TABLE flashes (id INTEGER PRIMARY KEY AUTOINCREMENT, {', '.join(c + ' TEXT' for c in old_columns)})")
    db.execute(f"INSERT INTO flashes ({', '.join(old_columns)}) VALUES ({', '.join('?' * len(old_columns))})",
               ["2025-12-01T00:00:00+00:00", "b9", "/dev/ttyACM0", "cd" * 32, "0.9.0", "1.24.0", "bob", "s1", "d02",
                "ok", 3, "g=1.0"])
    db.commit()
    db.close()
    assert cli.main(inventory(path, "--format", "json")) == 0
    (row,) = json.loads(capsys.readouterr().out)
    assert row["board_id"] == "b9" and row["model"] == "" and row["desk"] == "d02"
    inv = Inventory(path)
    inv.add(rec("2026-01-01T00:00:00+00:00", "b9", "s1", "hs-200"))
    assert [r.model for r in inv.records(latest=True)] == ["hs-200"]
    inv.close()


def test_a_listing_of_a_path_that_does_not_exist_creates_nothing(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    missing = tmp_path / "nodir" / "x.sqlite"
    for fmt in ("table", "csv", "json"):
        assert cli.main(inventory(missing, "--format", fmt)) == 1
        out = capsys.readouterr()
        assert out.out == "" and out.err == f"headset-flash: no inventory at {missing}: nothing has been flashed with it yet\n"
    assert list(tmp_path.iterdir()) == []
    empty = tmp_path / "empty.sqlite"  # an empty file and a new path are still inventories to be
    empty.touch()
    assert cli.main(inventory(empty)) == 0
    assert capsys.readouterr().out == f"no flashes recorded in {empty}\n"
    Inventory(tmp_path / "new" / "inv.sqlite").close()
    assert (tmp_path / "new" / "inv.sqlite").is_file()


def test_a_folder_named_as_the_inventory_is_named_as_such(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    folder = tmp_path / "inv"
    folder.mkdir()
    message = f"inventory {folder} is a directory, not a database file"
    assert cli.main(inventory(folder)) == 1
    out = capsys.readouterr()
    assert (out.out, out.err) == ("", f"headset-flash: {message}\n")
    with pytest.raises(FlashError, match=f"^{message}$"):  # what flash opens to record its rows
        Inventory(folder)
    assert list(folder.iterdir()) == []


@pytest.mark.parametrize(("schema", "words"), [
    ("CREATE TABLE foo (x)", "is not a flashing inventory (its tables: foo; no flashes table)"),
    ("CREATE TABLE flashes (id INTEGER PRIMARY KEY, note TEXT)", "its flashes table has no board_id, desk, detail,"),
])
def test_a_sqlite_file_that_is_no_inventory_is_refused_and_left_as_it_was(
        schema: str, words: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "other.sqlite"
    db = sqlite3.connect(path)
    db.execute(schema)
    db.commit()
    db.close()
    before = path.read_bytes()
    assert cli.main(inventory(path)) == 1
    out = capsys.readouterr()
    (line,) = out.err.splitlines()
    assert out.out == "" and line.startswith(f"headset-flash: {path} ") and words in line
    assert line.endswith(": refusing to change it")
    with pytest.raises(FlashError, match="refusing to change it"):  # what flash opens to record its rows
        Inventory(path)
    assert path.read_bytes() == before and [p.name for p in tmp_path.iterdir()] == ["other.sqlite"]


@pytest.mark.parametrize("command", ["list", "flash", "verify", "backup", "fleet", "inventory", "provision-desk"])
def test_every_command_has_help_with_an_example(command: str, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exc:
        cli.main([command, "--help"])
    assert exc.value.code == 0
    out = capsys.readouterr().out
    assert "example:" in out and f"headset-flash {command}" in out


def test_an_empty_inventory_path_is_a_usage_error(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    """Not "inventory . is a directory" (exit 1): the flag was given empty."""
    monkeypatch.chdir(tmp_path)
    assert cli.main(["inventory", "--inventory", ""]) == 2
    assert capsys.readouterr().err == "headset-flash: --inventory: empty path\n"
    assert list(tmp_path.iterdir()) == []
