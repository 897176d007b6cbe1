"""Silences (issue 16, supervisors item 3): list, expire and extend them from ``headset-host silence`` and
the dashboard's HTTP API; durations need units; a whole site needs ``--all``; unknown sites and desks are
errors. The host is real (mosquitto, SQLite); the CLI runs in-process through ``main`` and, where another
process must reach a running host, as a real subprocess."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import urllib.error
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from host_agent.cli import main
from host_agent.clock import ManualClock
from host_agent.errors import UsageError
from host_agent.history import DeskRecord, open_store
from host_agent.service import HostService
from host_agent.silences import human_span, parse_span
from mqtt_schema import EventKind
from tests.conftest import Mosquitto
from tests.host_agent.conftest import TOKEN, settle
from tests.host_agent.helpers import Desk, publisher, send
from tests.waiting import wait_for

MakeHost = Callable[..., HostService]
ROOT = Path(__file__).resolve().parents[2]


# --- durations ----------------------------------------------------------------------------------------


@pytest.mark.parametrize(("text", "seconds"), [("30m", 1800), ("2h", 7200), ("1h30m", 5400), ("90s", 90),
                                                ("1d", 86400), (" 45m ", 2700)])
def test_durations_take_units(text: str, seconds: float) -> None:
    assert parse_span(text) == seconds
    assert parse_span(human_span(seconds)) == seconds


@pytest.mark.parametrize(("text", "words"), [("90", "a bare number is not taken as seconds"),
                                              ("1.5", "a bare number"), ("", "bad duration ''"),
                                              ("30 m", "bad duration"), ("forever", "bad duration")])
def test_a_bare_number_or_junk_is_not_a_duration(text: str, words: str) -> None:
    with pytest.raises(UsageError, match=words):
        parse_span(text)


# --- the CLI on a history database ----------------------------------------------------------------------


@pytest.fixture
def db(history_db: str) -> str:
    """A history database (SQLite, then PostgreSQL) that has seen desks d01 and d07 of site1 and d01 of site2."""
    store = open_store(history_db)
    for site, desk in (("site1", "d01"), ("site1", "d07"), ("site2", "d01")):
        store.save_desk(DeskRecord(site, desk, "online", 0, True, None), 0)
    store.commit()
    store.close()
    return history_db


def _silences(db: str, capsys: pytest.CaptureFixture[str]) -> list[dict[str, Any]]:
    capsys.readouterr()
    assert main(["silence", "list", "--db", db, "--json"]) == 0
    rows: list[dict[str, Any]] = json.loads(capsys.readouterr().out)
    return rows


def test_cli_add_list_extend_expire(db: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["silence", "add", "--db", db, "--site", "site1", "--desk", "d07", "--rule", "posture",
                 "--for", "1h30m", "--by", "ana"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("silenced posture on site1/d07 for 1h30m: silence 1, until ")
    assert main(["silence", "--db", db, "--site", "site1", "--rule", "noisy-floor", "--for", "2h"]) == 0  # old form
    assert "silenced noisy-floor on every desk of site1 for 2h: silence 2" in capsys.readouterr().out
    assert main(["silence", "--db", db, "--site", "site2", "--all", "--for", "15m"]) == 0
    assert "silenced every rule on every desk of site2 for 15m: silence 3" in capsys.readouterr().out

    rows = _silences(db, capsys)
    assert [(r["id"], r["site"], r["desk"], r["rule"], r["by"]) for r in rows] == [
        (3, "site2", "*", "*", "cli"), (1, "site1", "d07", "posture", "ana"), (2, "site1", "*", "noisy-floor", "cli")]
    first = {r["id"]: r for r in rows}
    assert first[1]["until_ms"] - first[1]["created_ms"] == 5400_000
    # the table, and the old `--list` form, filtered by site
    assert main(["silence", "list", "--db", db, "--site", "site1"]) == 0
    table = capsys.readouterr().out.splitlines()
    assert table[0].split() == ["id", "site", "desk", "rule", "until", "left", "by"]
    assert [line.split()[:4] for line in table[1:]] == [["1", "site1", "d07", "posture"], ["2", "site1", "*", "noisy-floor"]]
    assert main(["silence", "--db", db, "--list"]) == 0
    assert len(capsys.readouterr().out.splitlines()) == 4

    assert main(["silence", "extend", "--db", db, "1", "--for", "1h"]) == 0
    assert "extended silence 1 (posture on site1/d07) by 1h: until " in capsys.readouterr().out
    assert {r["id"]: r["until_ms"] for r in _silences(db, capsys)}[1] == first[1]["until_ms"] + 3600_000
    assert main(["silence", "--db", db, "expire", "3"]) == 0  # options before the action work too
    assert capsys.readouterr().out == "expired silence 3 (every rule on every desk of site2)\n"
    assert [r["id"] for r in _silences(db, capsys)] == [2, 1]  # 1 now ends last
    assert main(["silence", "list", "--db", db, "--site", "site2"]) == 0
    assert capsys.readouterr().out == "no running silences on site site2\n"


@pytest.mark.parametrize(("argv", "code", "message"), [
    (["add", "--site", "site1", "--desk", "d07", "--for", "90"], 2,
     "bad duration '90': give a unit, e.g. 30m, 2h or 1h30m (a bare number is not taken as seconds)"),
    (["add", "--site", "site1", "--desk", "d07", "--for", "8d"], 2, "--for 8d must be more than 0 and at most 7 days"),
    (["add", "--site", "site1"], 2,
     "this would silence every alert of site site1: name a desk or a rule, or confirm with --all"),
    (["--site", "site1", "--desk", "*", "--rule", "*"], 2, "this would silence every alert of site site1"),
    (["add", "--site", "site9", "--rule", "posture"], 2, "unknown site 'site9' (known: site1, site2)"),
    (["add", "--site", "site1", "--desk", "d99"], 2, "unknown desk 'd99' on site site1 (seen: d01, d07)"),
    (["add", "--site", "site2", "--desk", "d07"], 2, "unknown desk 'd07' on site site2 (seen: d01)"),
    (["add", "--site", "site1", "--rule", "nope"], 2, "unknown rule 'nope'"),
    (["add", "--site", "Site 1", "--all"], 2, "site"),
    (["add", "--desk", "d07"], 2, "--site is required"),
    (["expire", "99"], 2, "no silence 99"),
    (["extend", "99", "--for", "1h"], 2, "no silence 99"),
    (["extend", "1", "--for", "60"], 2, "a bare number is not taken as seconds"),
    (["expire", "99999999999999999999999"], 2, "no silence 99999999999999999999999"),  # past a 64-bit id
    (["extend", str(2**63), "--for", "1h"], 2, f"no silence {2**63}"),
    (["expire", "0"], 2, "no silence 0"),
    (["expire", "-1"], 2, "no silence -1"),
    (["add", "--site", "site1", "--desk", "d07", "--for", ""], 2, "--for: bad duration ''"),  # not 30m
    (["extend", "1", "--for", ""], 2, "--for: bad duration ''"),
    (["add", "--list", "--site", "site1"], 2, None),  # argparse: --list is no option of `add`
    (["add", "--site", "site1", "--desk", "", "--rule", "posture"], 2, "--desk: empty (leave it out for every desk)"),
    (["add", "--site", "site1", "--desk", "d07", "--rule", ""], 2, "--rule: empty (leave it out for every rule)"),
    (["add", "--site", "site1", "--desk", "d07", "--by", ""], 2, "--by: empty (leave it out for cli)"),
    (["list", "--site", ""], 2, "--site: empty"),
])
def test_cli_refusals_are_one_line_and_change_nothing(
        db: str, capsys: pytest.CaptureFixture[str], argv: list[str], code: int, message: str | None) -> None:
    assert main(["silence", "add", "--db", db, "--site", "site1", "--desk", "d01", "--for", "1h"]) == 0
    before = _silences(db, capsys)
    if message is None:
        with pytest.raises(SystemExit) as exc:
            main(["silence", *argv, "--db", db])
        assert exc.value.code == code
    else:
        assert main(["silence", *argv, "--db", db]) == code
        err = capsys.readouterr().err
        assert err.startswith("headset-host: ") and message in err and err.count("\n") == 1
    assert _silences(db, capsys) == [dict(r, left_s=pytest.approx(r["left_s"], abs=5)) for r in before]


def test_cli_ended_silences_and_missing_databases(db: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["silence", "add", "--db", db, "--site", "site1", "--desk", "d01", "--for", "1h"]) == 0
    assert main(["silence", "expire", "--db", db, "1"]) == 0
    capsys.readouterr()
    for argv in (["expire", "1"], ["extend", "1", "--for", "1h"]):
        assert main(["silence", *argv, "--db", db]) == 2
        assert capsys.readouterr().err == "headset-host: silence 1 has already ended: add a new one\n"
    assert main(["silence", "add", "--db", db, "--site", "site1", "--desk", "d01", "--for", "6d"]) == 0
    assert main(["silence", "extend", "--db", db, "2", "--for", "2d"]) == 2
    assert "would take it past 7 days from now" in capsys.readouterr().err
    missing = tmp_path / "nope.db"
    assert main(["silence", "list", "--db", str(missing)]) == 1
    assert capsys.readouterr().err == f"headset-host: no history database at {missing}: has the host run with it yet?\n"
    assert not missing.exists()  # a typo creates no stray database
    assert main(["silence", "list"]) == 2
    assert capsys.readouterr().err == "headset-host: one of --config or --db is required\n"
    for flag in ("--db", "--config"):  # not "one of --config or --db is required"
        assert main(["silence", "list", flag, ""]) == 2
        assert capsys.readouterr().err == f"headset-host: {flag}: empty path\n"


def test_cli_configured_sites_are_known_before_the_host_ran(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    cfg = tmp_path / "host.toml"
    cfg.write_text(f'[host]\nsites = ["site3"]\ndb = "{tmp_path / "fresh.db"}"\n')
    assert main(["silence", "add", "--config", str(cfg), "--site", "site3", "--rule", "posture", "--for", "2h"]) == 0
    assert main(["silence", "add", "--config", str(cfg), "--site", "site3", "--desk", "d01"]) == 2
    assert "unknown desk 'd01' on site site3 (seen: none yet)" in capsys.readouterr().err
    assert main(["silence", "add", "--config", str(cfg), "--site", "site3", "--desk", "floor",
                 "--rule", "noisy-floor"]) == 0  # the site-wide alerts' desk
    assert [(r["desk"], r["rule"]) for r in _silences_cfg(cfg, capsys)] == [("floor", "noisy-floor"), ("*", "posture")]


def _silences_cfg(cfg: Path, capsys: pytest.CaptureFixture[str]) -> list[dict[str, Any]]:
    capsys.readouterr()
    assert main(["silence", "list", "--config", str(cfg), "--json"]) == 0
    rows: list[dict[str, Any]] = json.loads(capsys.readouterr().out)
    return rows


@pytest.mark.parametrize("action", ["silence", "silence add", "silence list", "silence expire", "silence extend"])
def test_every_silence_action_has_help_with_an_example(action: str, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exc:
        main([*action.split(), "--help"])
    assert exc.value.code == 0
    out = capsys.readouterr().out
    assert "example" in out and "headset-host silence " in out


# --- a running host ----------------------------------------------------------------------------------------


def _break_overrun(mosquitto: Mosquitto, clock: ManualClock, host: HostService) -> None:
    """site1/d01 takes its headset off for 16 min: break-overrun fires; d02 is online."""
    pub = publisher(mosquitto.port)
    d1, d2 = Desk("site1", "d01", clock=clock.now_ms), Desk("site1", "d02", clock=clock.now_ms)
    send(pub, d1, d1.state())
    send(pub, d2, d2.state())
    send(pub, d1, d1.event(EventKind.DOFFED))
    settle(host, 3)
    pub.disconnect()
    clock.advance(16 * 60)
    host.sync()
    assert _alert(host)["state"] == "firing"


def _alert(host: HostService, desk: str = "d01", rule: str = "break-overrun") -> dict[str, Any]:
    return next(a for a in host.snapshot()[1]["alerts"] if a["desk"] == desk and a["rule"] == rule)


def test_cli_in_another_process_lists_extends_and_expires_a_running_hosts_silence(
        mosquitto: Mosquitto, make_host: MakeHost, clock: ManualClock, history_db: str) -> None:
    host = make_host(mosquitto.url, db=history_db)
    _break_overrun(mosquitto, clock, host)

    def cli(*argv: str) -> str:
        # The CLI's clock is the host's: same origin, and (nearly) stopped like the test's ManualClock.
        proc = subprocess.run([sys.executable, "-m", "host_agent.cli", "silence", *argv, "--db", history_db,
                               "--time-origin-ms", str(clock.now_ms()), "--time-scale", "1e-9"],
                              cwd=ROOT, capture_output=True, text=True, timeout=30,
                              env={**os.environ, "PYTHONPATH": str(ROOT)})
        assert proc.returncode == 0, proc.stderr
        return proc.stdout

    assert "silence 1" in cli("add", "--site", "site1", "--desk", "d01", "--rule", "break-overrun", "--for", "30m")
    wait_for(lambda: _alert(host)["silenced"], 10, "the running host to pick up the silence")
    assert [s["id"] for s in host.silences()] == [1]  # what the dashboard lists
    assert "by 1h" in cli("extend", "1", "--for", "1h")
    wait_for(lambda: abs(host.silences()[0]["until_ms"] - (clock.now_ms() + 90 * 60_000)) < 100, 10, "the extension")
    assert cli("expire", "1") == "expired silence 1 (break-overrun on site1/d01)\n"
    clock.advance(1)  # the CLI's clock ran a few ms ahead of the stopped test clock
    wait_for(lambda: not _alert(host)["silenced"], 10, "the running host to end the silence")
    assert host.silences() == []
    assert "no running silences" in cli("list")


def _call(url: str, body: object | None = None, token: str | None = TOKEN) -> tuple[int, Any]:
    data = None if body is None else json.dumps(body).encode()
    headers = {"Content-Type": "application/json", **({"Authorization": f"Bearer {token}"} if token else {})}
    req = urllib.request.Request(url, data=data, method="GET" if body is None else "POST", headers=headers)
    try:
        with urllib.request.urlopen(req, timeout=5) as r:
            return r.status, json.loads(r.read())
    except urllib.error.HTTPError as e:
        return e.code, json.loads(e.read())


def test_dashboard_api_adds_lists_extends_and_expires(
        mosquitto: Mosquitto, make_host: MakeHost, clock: ManualClock, history_db: str) -> None:
    host = make_host(mosquitto.url, sites=("site1", "site2"), db=history_db)
    _break_overrun(mosquitto, clock, host)
    url = host.dashboard_url
    assert url is not None
    now = clock.now_ms()
    one = {"site": "site1", "desk": "d01", "rule": "break-overrun"}
    code, s = _call(url + "api/silence", {**one, "for": "1h30m"})
    assert code == 200 and s["id"] == 1 and s["until_ms"] == now + 5400_000 and s["by"] == "dashboard"
    assert _alert(host)["silenced"] is True  # applied before the answer
    code, listed = _call(url + "api/silences")
    assert code == 200 and [x["id"] for x in listed["silences"]] == [1]
    assert listed["silences"][0]["left_s"] == 5400 and "break-overrun" in listed["rules"]

    code, s = _call(url + "api/silences/1/extend", {"for": "1h"})
    assert code == 200 and s["until_ms"] == now + 9000_000
    assert _call(url + "api/silences/1/extend", {"for": "1h"}, token=None)[0] == 401
    assert _call(url + "api/silences/1/expire", {}, token="wrong")[0] == 401
    assert _call(url + "api/silences")[1]["silences"][0]["until_ms"] == now + 9000_000  # the refusals changed nothing
    code, s = _call(url + "api/silences/1/expire", {})
    assert code == 200 and s["until_ms"] == now and s["left_s"] == 0
    assert _alert(host)["silenced"] is False and _call(url + "api/silences")[1]["silences"] == []
    code, err = _call(url + "api/silences/1/extend", {"for": "1h"})
    assert code == 400 and err["error"] == "silence 1 has already ended: add a new one"
    code, err = _call(url + "api/silences/7/expire", {})
    assert code == 404 and err["error"] == "no silence 7"

    # the whole site needs "all"; the floor desk is known; for_s (seconds by name) still works
    code, err = _call(url + "api/silence", {"site": "site1", "for": "30m"})
    assert code == 400 and "confirm with --all" in err["error"]
    code, s = _call(url + "api/silence", {"site": "site1", "for": "15m", "all": True})
    assert code == 200 and (s["desk"], s["rule"]) == ("*", "*") and _alert(host)["silenced"] is True
    assert _call(url + "api/silence", {"site": "site1", "desk": "floor", "rule": "noisy-floor", "for_s": 600})[0] == 200
    assert [x["id"] for x in _call(url + "api/silences")[1]["silences"]] == [3, 2]  # the soonest to end first


@pytest.mark.parametrize(("body", "words"), [
    ({"site": "site1", "desk": "d01", "for": "90"}, "a bare number is not taken as seconds"),
    ({"site": "site1", "desk": "d01", "for": 90}, '"for" must be a duration text'),
    ({"site": "site1", "desk": "d01", "for": "8d"}, "at most 7 days"),
    ({"site": "site1", "desk": "d01", "for_s": 0}, "more than 0"),
    ({"site": "site1", "desk": "d01", "for_s": True}, '"for_s" must be a number of seconds such as 1800, not true'),
    ({"site": "site1", "desk": "d01", "for_s": "600"}, '"for_s" must be a number of seconds such as 1800, not "600"'),
    ({"site": "site1", "desk": "d01", "for_s": None}, '"for_s" must be a number of seconds such as 1800, not null'),
    ({"site": "site9", "desk": "d01", "for": "1h"}, "unknown site 'site9' (known: site1, site2)"),
    ({"site": "site2", "desk": "d01", "for": "1h"}, "unknown desk 'd01' on site site2 (seen: none yet)"),
    ({"site": "site1", "desk": "d99", "for": "1h"}, "unknown desk 'd99' on site site1 (seen: d01, d02)"),
    ({"site": "site1", "rule": "nope", "for": "1h"}, "unknown rule 'nope'"),
    ({"desk": "d01", "for": "1h"}, 'bad silence request: "site" is required'),
])
def test_dashboard_api_refusals(mosquitto: Mosquitto, make_host: MakeHost, clock: ManualClock,
                                body: dict[str, object], words: str) -> None:
    host = make_host(mosquitto.url, sites=("site1", "site2"))
    pub = publisher(mosquitto.port)
    for desk in ("d01", "d02"):
        d = Desk("site1", desk, clock=clock.now_ms)
        send(pub, d, d.state())
    settle(host, 2)
    pub.disconnect()
    url = host.dashboard_url
    assert url is not None
    code, err = _call(url + "api/silence", body)
    assert code == 400 and words in err["error"]
    assert _call(url + "api/silences")[1]["silences"] == []
    code, err = _call(url + "api/silences/1/extend", {"for": "15"})
    assert code == 400 and "a bare number" in err["error"]
