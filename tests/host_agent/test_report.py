"""Daily reports from a day of history: numbers, per-agent roster, every format, bad input."""

from __future__ import annotations

import argparse
import csv
import io
import json
import math
import re
from pathlib import Path

import pytest

from host_agent.commands import report as report_cmd
from host_agent.errors import UsageError
from host_agent.history import open_store, redact
from host_agent.report import build_report
from host_agent.roster import load_roster
from tests.host_agent.conftest import BACKENDS, new_history_db
from tests.host_agent.report_data import DAY, fill_day


@pytest.fixture(scope="module", params=BACKENDS)
def db(request: pytest.FixtureRequest,
       tmp_path_factory: pytest.TempPathFactory) -> tuple[str, dict[str, list[tuple[float, float]]]]:
    """A day of history, once in SQLite (a path) and once in PostgreSQL (a URL): every report test runs on both."""
    path = new_history_db(request.param, tmp_path_factory.mktemp("report"), request)
    store = open_store(path)
    truth = fill_day(store)
    store.close()
    return path, truth


def _run(argv: list[str], capsys: pytest.CaptureFixture[str]) -> str:
    p = argparse.ArgumentParser()
    report_cmd.configure(p)
    assert report_cmd.run(p.parse_args(argv)) == 0
    return capsys.readouterr().out


def test_per_desk_numbers(db: tuple[str, dict[str, list[tuple[float, float]]]]) -> None:
    path, truth = db
    store = open_store(path, readonly=True)
    rep = build_report(store, "site1", DAY)
    rows = {r.key: r for r in rep.rows}
    assert sorted(rows) == ["d01", "d02", "d03"]
    for desk, samples in truth.items():
        speech = sum(s for s, _ in samples)
        power = sum(s * 10 ** (lvl / 10) for s, lvl in samples) / speech
        assert rows[desk].speech_s == pytest.approx(speech)
        assert rows[desk].level_dbov == pytest.approx(10 * math.log10(power))
        assert rows[desk].minutes == 9 * 60 - 30
    assert rows["d02"].rate_spm == pytest.approx(185.0)
    d2 = rows["d02"].as_dict()
    assert d2["cue_share"]["volume_high"] == pytest.approx(0.4, abs=0.01)  # type: ignore[index]
    assert d2["cue_share"]["pace_fast"] == pytest.approx(0.5, abs=0.01)  # type: ignore[index]
    assert rows["d03"].slouched_s == 60.0 * len([m for m in range(8 * 60, 17 * 60)
                                                 if m % 3 == 0 and not 12 * 60 <= m < 12 * 60 + 30])
    assert [m for _, m in rows["d02"].breaks] == [40.0] and rows["d02"].overruns == [5]
    assert [m for _, m in rows["d01"].breaks] == [12.0] and rows["d01"].overruns == []
    assert dict(rows["d02"].alerts) == {"volume": 1, "pace": 1, "break-overrun": 1}
    assert sum(rows["d01"].hourly_speech_s[:8]) == 0 and rows["d01"].hourly_speech_s[9] > 0
    store.close()


def test_other_day_and_site_are_empty(db: tuple[str, object]) -> None:
    store = open_store(db[0], readonly=True)
    assert build_report(store, "site1", DAY.replace(day=21)).rows == []
    assert build_report(store, "site9", DAY).rows == []
    store.close()


def test_per_agent_with_a_roster(db: tuple[str, object], tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    roster = tmp_path / "roster.csv"
    roster.write_text("desk,agent,start,end\n"
                      "d01,alice,2026-11-20T08:00,2026-11-20T12:30\n"
                      "d02,alice,2026-11-20T12:30,\n"
                      "d02,bob,2026-11-20T08:00,2026-11-20T12:30\n")
    out = json.loads(_run(["--db", str(db[0]), "--site", "site1", "--date", DAY.isoformat(), "--format", "json",
                           "--roster", str(roster)], capsys))
    rows = {r["key"]: r for r in out["rows"]}
    assert out["by"] == "agent" and sorted(rows) == ["alice", "bob"]  # d01 after 12:30 and d03: nobody
    assert rows["alice"]["desks"] == ["d01", "d02"]
    assert rows["alice"]["minutes"] == 4 * 60 + 4 * 60 + 30  # d01 08:00-12:00, d02 12:30-17:00
    assert rows["alice"]["overruns"] == 1 and rows["bob"]["breaks"] == 0
    assert rows["alice"]["alerts"] == {"break-overrun": 1}
    assert rows["bob"]["alerts"] == {"pace": 1, "volume": 1}


def test_table_csv_and_html(db: tuple[str, object], capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    base = ["--db", str(db[0]), "--site", "site1", "--date", DAY.isoformat()]
    table = _run(base, capsys)
    assert re.search(r"^d02\s+185\.2\s+-13\.6\s+185\.0\s+40%\s+50%\s+0%", table, re.M)
    rows = list(csv.DictReader(io.StringIO(_run(base + ["--format", "csv"], capsys))))
    assert [r["desk"] for r in rows] == ["d01", "d02", "d03"] and rows[1]["max_overrun_level"] == "5"
    out = tmp_path / "r.html"
    _run(base + ["--format", "html", "-o", str(out)], capsys)
    html = out.read_text()
    assert html.count("<svg") == 1 + 2 * 3 and "L5" in html  # the heat map, then rate and cue bars per desk
    assert not re.search(r"""(src|href)=["']?(https?:)?//""", html)  # no external assets


def test_bad_input_is_named(db: tuple[str, object], tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    base = ["--db", str(db[0]), "--site", "site1"]
    with pytest.raises(UsageError, match="--date"):
        _run(base + ["--date", "22/11/2026"], capsys)
    with pytest.raises(UsageError, match="--date '9999-12-31'"):  # its end is past the last date
        _run(base + ["--date", "9999-12-31"], capsys)
    with pytest.raises(UsageError, match="time zone"):
        _run(base + ["--tz", "Mars/Olympus"], capsys)
    with pytest.raises(UsageError, match="not a valid id"):
        _run(["--db", str(db[0]), "--site", "Site 1"], capsys)
    bad = tmp_path / "bad.csv"
    bad.write_text("desk,agent,start,end\nd01,alice,yesterday,\n")
    from zoneinfo import ZoneInfo

    with pytest.raises(UsageError, match="line 2"):
        load_roster(bad, ZoneInfo("UTC"))
    bad.write_text("desk,who\n")
    with pytest.raises(UsageError, match="columns"):
        load_roster(bad, ZoneInfo("UTC"))
    bad.write_text("desk,agent,start,end\nd01,alice,2026-11-20T08:00,\nd02\n")  # a short row
    with pytest.raises(UsageError, match="line 3: has 1 fields, not the columns desk,agent,start,end"):
        load_roster(bad, ZoneInfo("UTC"))
    bad.write_bytes(b"desk,agent,start,end\nd01,\xe9lise,2026-11-20T08:00,\n")  # Latin-1, not UTF-8
    with pytest.raises(UsageError, match="not UTF-8 text"):
        load_roster(bad, ZoneInfo("UTC"))


@pytest.mark.parametrize("shares", [
    {"mic_far": 1.0, "volume_high": 0.6, "pace_fast": 0.9},  # overlapping shares: 250 % together
    {"mic_close": 0.004},  # a tiny share is still visible
    {"pace_slow": 0.25, "volume_low": 0.5},
    {},
])
def test_every_cue_share_is_visible_and_labelled_in_the_html_svg(shares: dict[str, float]) -> None:
    """The report's cue zones render as one bar per cue group inside the SVG: every non-zero share has
    a visible width within the drawing, and its value is written beside it."""
    import xml.etree.ElementTree as ET

    from host_agent.report import Row
    from host_agent.report_html import _cue_bar, _groups

    row = Row("d09", speech_s=1000.0, cue_s={k: v * 1000.0 for k, v in shares.items()})
    svg = ET.fromstring(_cue_bar(row))
    ns = "{http://www.w3.org/2000/svg}"
    width = float(svg.get("width", "0"))
    height = float(svg.get("height", "0"))
    bars = {r.get("data-cue"): r for r in svg.iter() if r.tag in ("rect", f"{ns}rect") and r.get("data-cue")}
    labels = [t.text for t in svg.iter() if t.tag in ("text", f"{ns}text")]
    for group, share in _groups(row).items():
        assert f"{100 * min(share, 1.0):.0f}%" in labels, (group, labels)
        if share <= 0:
            assert group not in bars
            continue
        bar = bars[group]
        x, y, w, h = (float(bar.get(k, "0")) for k in ("x", "y", "width", "height"))
        assert w >= 1.0 and h >= 5.0, (group, w, h)
        assert 0 <= x and x + w <= width + 1e-9 and 0 <= y and y + h <= height + 1e-9, (group, x, w, width)
    if shares.get("mic_far") == 1.0:  # the full share fills its own track, and only that
        tracks = [r for r in svg.iter() if r.tag in ("rect", f"{ns}rect") and not r.get("data-cue")]
        assert float(bars["mic"].get("width", "0")) == pytest.approx(float(tracks[0].get("width", "0")))


def test_an_unknown_site_is_an_error_naming_the_known_ones(db: tuple[str, object], tmp_path: Path,
                                                          capsys: pytest.CaptureFixture[str]) -> None:
    from host_agent.cli import main

    assert main(["report", "--db", str(db[0]), "--site", "nosuch", "--date", DAY.isoformat()]) == 2
    err = capsys.readouterr().err
    assert err.startswith("headset-host: unknown site 'nosuch'") and "site1" in err
    assert redact(db[0]) in err and (redact(db[0]) == db[0] or db[0] not in err)  # never the password
    # a site named in the config is known before its first minute: an empty report, not an error
    cfg = tmp_path / "host.toml"
    cfg.write_text(f'[host]\nsites = ["site1", "site9"]\ndb = "{db[0]}"\n', encoding="utf-8")
    assert main(["report", "--config", str(cfg), "--site", "site9", "--date", DAY.isoformat()]) == 0
    assert "(no minute rollups for this site and day)" in capsys.readouterr().out


def test_roster_display_names_in_every_format(db: tuple[str, object], tmp_path: Path,
                                              capsys: pytest.CaptureFixture[str]) -> None:
    roster = tmp_path / "roster.csv"
    roster.write_text("desk,agent,name,start,end\n"
                      "d01,li-wei,李伟,2026-11-20T08:00,\n"
                      "d02,zoe,Zoë Ørsted,2026-11-20T08:00,\n"
                      "d03,sam,,2026-11-20T08:00,\n", encoding="utf-8")
    base = ["--db", str(db[0]), "--site", "site1", "--date", DAY.isoformat(), "--roster", str(roster)]
    rows = {r["key"]: r for r in json.loads(_run(base + ["--format", "json"], capsys))["rows"]}
    assert (rows["li-wei"]["name"], rows["zoe"]["name"], rows["sam"]["name"]) == ("李伟", "Zoë Ørsted", None)
    table = _run(base, capsys).splitlines()
    lines = {line.split()[0]: line for line in table[2:]}
    assert "李伟" in lines and lines["李伟"].startswith("李伟 (li-wei)")
    # columns line up in a terminal: the wide characters count twice
    from host_agent.report import display_width
    starts = {display_width(line[: line.rindex(line.split()[-1])]) for line in table[1:]}
    assert len(starts) == 1, table
    csv_rows = {r["agent"]: r for r in csv.DictReader(io.StringIO(_run(base + ["--format", "csv"], capsys)))}
    assert csv_rows["li-wei"]["name"] == "李伟" and csv_rows["sam"]["name"] == ""
    html = tmp_path / "r.html"
    _run(base + ["--format", "html", "-o", str(html)], capsys)
    assert "<b>李伟</b>" in html.read_text(encoding="utf-8")


@pytest.mark.parametrize("name, problem", [
    ("x" * 65, "at most 64"), ("a\u0007b", "control"),
])
def test_bad_roster_names_are_named(tmp_path: Path, name: str, problem: str) -> None:
    from zoneinfo import ZoneInfo

    roster = tmp_path / "roster.csv"
    roster.write_text(f"desk,agent,name,start,end\nd01,a1,{name},2026-11-20T08:00,\n", encoding="utf-8")
    with pytest.raises(UsageError, match=problem):
        load_roster(roster, ZoneInfo("UTC"))
    roster.write_text("desk,agent,name,start,end\nd01,a1,Ann,2026-11-20T08:00,\nd02,a1,Anna,2026-11-20T09:00,\n",
                      encoding="utf-8")
    with pytest.raises(UsageError, match="two names"):
        load_roster(roster, ZoneInfo("UTC"))


def test_output_that_is_one_of_the_reports_inputs_is_refused_and_left_intact(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """``-o`` naming the history database, the config or the roster would replace the data the report
    reads (the database with a CSV): a usage error naming it, and every input is left as it was."""
    from host_agent.cli import main

    db = tmp_path / "host.db"
    open_store(str(db)).close()
    cfg = tmp_path / "host.toml"
    cfg.write_text(f'[host]\nsites = ["site1"]\ndb = "{db}"\n', encoding="utf-8")
    roster = tmp_path / "roster.csv"
    roster.write_text("desk,agent,start,end\nd01,alice,2026-11-20T08:00,\n", encoding="utf-8")
    before = {p: p.read_bytes() for p in (db, cfg, roster)}
    base = ["report", "--config", str(cfg), "--site", "site1", "--date", DAY.isoformat(), "--format", "csv"]
    for target, what in ((db, "history database"), (cfg, "--config"), (roster, "--roster")):
        assert main(base + ["--roster", str(roster), "-o", str(target)]) == 2
        err = capsys.readouterr().err
        assert err.startswith(f"headset-host: -o {target} is the {what}"), err
    assert main(["report", "--db", str(db), "--site", "site1", "-o", str(tmp_path / "." / "host.db")]) == 2
    assert "history database" in capsys.readouterr().err
    assert {p: p.read_bytes() for p in before} == before
    out = tmp_path / "report.csv"  # another file is written as before
    assert main(base + ["-o", str(out)]) == 0 and out.read_text(encoding="utf-8").startswith("desk,")


@pytest.mark.parametrize(("flags", "message"), [
    (["--date", ""], "--date: empty (give a day like 2026-11-22, or leave it out for today)"),  # not today
    (["-o", ""], "-o: empty path (leave it out to write to stdout)"),  # not stdout
    (["--roster", ""], "--roster: empty path"),  # not "no roster"
])
def test_an_empty_flag_is_a_usage_error_not_its_default(
        tmp_path: Path, capsys: pytest.CaptureFixture[str], flags: list[str], message: str) -> None:
    from host_agent.cli import main

    db = tmp_path / "host.db"
    open_store(str(db)).close()
    cfg = tmp_path / "host.toml"
    cfg.write_text(f'[host]\nsites = ["site1"]\ndb = "{db}"\n', encoding="utf-8")
    for source in (["--db", str(db)], ["--config", str(cfg)]):
        assert main(["report", *source, "--site", "site1", *flags]) == 2
        captured = capsys.readouterr()
        assert (captured.out, captured.err) == ("", f"headset-host: {message}\n")
    assert main(["report", "--config", "", "--site", "site1"]) == 2  # a traceback (no database) before
    assert capsys.readouterr().err == "headset-host: --config: empty path\n"
    assert main(["report", "--db", "", "--site", "site1"]) == 2
    assert capsys.readouterr().err == "headset-host: --db: empty path\n"
