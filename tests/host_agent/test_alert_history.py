"""Alert history (issue 16, supervisors item 4): ``GET /api/alert-log`` serves the last transitions from the
history database's ``alert_log``, newest first, filtered by site, desk and rule. The Chromium panel that shows
them is in ``test_dashboard.py``."""

from __future__ import annotations

import base64
import json
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from host_agent.clock import ManualClock
from host_agent.service import HostService
from mqtt_schema import DeskStatus, EventKind
from tests.conftest import Mosquitto
from tests.host_agent.conftest import host_config, settle
from tests.host_agent.helpers import Desk, publisher, send, sql_rows

MakeHost = Callable[..., HostService]


def _get(url: str, auth: str | None = None) -> tuple[int, Any]:
    req = urllib.request.Request(url, headers={"Authorization": auth} if auth else {})
    try:
        with urllib.request.urlopen(req, timeout=5) as r:
            return r.status, json.loads(r.read())
    except urllib.error.HTTPError as e:
        return e.code, json.loads(e.read())


def _transitions(mosquitto: Mosquitto, clock: ManualClock, host: HostService) -> None:
    """d01: break-overrun fires, then goes up a level; d02: lost, desk-offline pending, firing, resolved."""
    pub = publisher(mosquitto.port)
    d1, d2 = Desk("site1", "d01", clock=clock.now_ms), Desk("site1", "d02", clock=clock.now_ms)
    send(pub, d1, d1.state())
    send(pub, d2, d2.state())
    send(pub, d1, d1.event(EventKind.DOFFED))
    settle(host, 3)
    clock.advance(16 * 60)
    host.sync()  # break-overrun firing (level 1)
    send(pub, d2, d2.state(DeskStatus.LOST))
    settle(host, 4)  # desk-offline pending
    clock.advance(31)
    host.sync()  # desk-offline firing
    clock.advance(10 * 60)
    host.sync()  # break-overrun level 2 (10 min over)
    send(pub, d2, d2.state())
    settle(host, 5)  # desk-offline resolved
    pub.disconnect()


def _db_rows(db: str) -> list[tuple[int, str, str, str]]:
    return [(int(i), str(d), str(r), str(t)) for i, d, r, t in
            sql_rows(db, "SELECT id, desk, rule, transition FROM alert_log ORDER BY id DESC")]


def test_alert_log_is_the_history_newest_first(
        mosquitto: Mosquitto, make_host: MakeHost, clock: ManualClock, history_db: str) -> None:
    host = make_host(mosquitto.url, db=history_db)
    _transitions(mosquitto, clock, host)
    url = host.dashboard_url
    assert url is not None
    code, body = _get(url + "api/alert-log")
    assert code == 200
    got = [(e["id"], e["desk"], e["rule"], e["transition"]) for e in body["entries"]]
    assert got == _db_rows(history_db)  # exactly the stored transitions, newest first
    assert [(d, r, t) for _, d, r, t in got] == [
        ("d02", "desk-offline", "resolved"), ("d01", "break-overrun", "level_changed"),
        ("d02", "desk-offline", "firing"), ("d02", "desk-offline", "pending"), ("d01", "break-overrun", "firing")]
    newest = body["entries"][0]
    assert newest["site"] == "site1" and newest["severity"] == "critical" and newest["ts"] == clock.now_ms()
    assert body["entries"][1]["level"] == 2 and "over" in body["entries"][1]["summary"]
    assert [e["ts"] for e in body["entries"]] == sorted((e["ts"] for e in body["entries"]), reverse=True)

    # per desk and rule, and the last N
    code, body = _get(url + "api/alert-log?desk=d01")
    assert [e["transition"] for e in body["entries"]] == ["level_changed", "firing"]
    code, body = _get(url + "api/alert-log?site=site1&desk=d02&rule=desk-offline&limit=2")
    assert [e["transition"] for e in body["entries"]] == ["resolved", "firing"]
    assert _get(url + "api/alert-log?rule=posture")[1] == {"entries": []}
    assert _get(url + "api/alert-log?site=site7")[1] == {"entries": []}


@pytest.mark.parametrize(("query", "words"), [
    ("limit=0", "limit must be a whole number from 1 to 500, not '0'"),
    ("limit=501", "not '501'"),
    ("limit=ten", "not 'ten'"),
    ("desk=D%2001", "desk"),
    ("rule=../../x", "rule"),
])
def test_alert_log_refuses_bad_queries(mosquitto: Mosquitto, make_host: MakeHost, query: str, words: str) -> None:
    host = make_host(mosquitto.url)
    url = host.dashboard_url
    assert url is not None
    code, body = _get(url + "api/alert-log?" + query)
    assert code == 400 and body["error"].startswith("bad alert-log query: ") and words in body["error"]


def test_alert_log_and_silences_need_the_viewer_token_when_one_is_set(
        mosquitto: Mosquitto, clock: ManualClock, tmp_path: Path) -> None:
    cfg = host_config(mosquitto.url, tmp_path / "host.db")
    cfg = replace(cfg, dashboard=replace(cfg.dashboard, viewer_token="viewer-abc"))
    host = HostService(cfg, clock, client_id="host-history-viewer").start()
    try:
        url = host.dashboard_url
        assert url is not None
        for path in ("api/alert-log", "api/silences"):
            assert _get(url + path)[0] == 401
            basic = "Basic " + base64.b64encode(b"supervisor:viewer-abc").decode()
            code, body = _get(url + path, basic)
            assert code == 200 and body in ({"entries": []}, {"silences": [], "rules": list(cfg.rules)})
    finally:
        host.stop()
