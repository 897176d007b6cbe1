"""The dashboard: HTTP API, /metrics, token-protected silence, and the page in headless Chromium."""

from __future__ import annotations

import http.client
import json
import re
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest

from host_agent.clock import ManualClock
from host_agent.service import HostService
from mqtt_schema import Cue, DeskStatus, EventKind, Posture
from tests import real_parts
from tests.conftest import Mosquitto
from tests.host_agent.conftest import TOKEN, settle
from tests.host_agent.helpers import Desk, publisher, send
from tests.waiting import wait_for

MakeHost = Callable[..., HostService]
ARTIFACTS = Path(__file__).resolve().parents[2] / "artifacts"


def _post(url: str, body: object, token: str | None) -> tuple[int, dict[str, object]]:
    req = urllib.request.Request(url, data=json.dumps(body).encode(), method="POST",
                                 headers={"Content-Type": "application/json",
                                          **({"Authorization": f"Bearer {token}"} if token else {})})
    try:
        with urllib.request.urlopen(req, timeout=5) as r:
            return r.status, json.loads(r.read())
    except urllib.error.HTTPError as e:
        return e.code, json.loads(e.read())


def _floor(mosquitto: Mosquitto, clock: ManualClock, host: HostService) -> list[Desk]:
    pub = publisher(mosquitto.port)
    desks = [Desk("site1", f"d0{i}", clock=clock.now_ms) for i in range(1, 7)] + [Desk("site2", "d01", clock=clock.now_ms)]
    n = 0
    for i, d in enumerate(desks):
        send(pub, d, d.state())
        cues = (Cue.PACE_FAST,) if i == 1 else ((Cue.MIC_FAR,) if i == 2 else ())
        send(pub, d, d.metrics(speech_s=0.8 if i % 2 else 0.0, cues=cues,
                               posture=Posture.SLOUCHED if i == 3 else Posture.UPRIGHT))
        n += 2
    send(pub, desks[4], desks[4].state(DeskStatus.LOST))
    send(pub, desks[0], desks[0].event(EventKind.DOFFED))
    settle(host, n + 2)
    pub.disconnect()
    return desks


def test_api_snapshot_metrics_and_silence_token(mosquitto: Mosquitto, make_host: MakeHost, clock: ManualClock) -> None:
    host = make_host(mosquitto.url, sites=("site1", "site2"))
    _floor(mosquitto, clock, host)
    clock.advance(16 * 60)
    host.sync()
    url = host.dashboard_url
    assert url is not None and url.startswith("http://127.0.0.1:")
    with urllib.request.urlopen(url + "api/snapshot", timeout=5) as r:
        snap = json.loads(r.read())
    assert len(snap["desks"]) == 7 and snap["sites"] == ["site1", "site2"]
    statuses = {d["desk"] + "@" + d["site"]: d["status"] for d in snap["desks"]}
    assert statuses["d05@site1"] == "lost" and statuses["d02@site1"] == "stale"  # no metrics for 16 min
    firing = {(a["desk"], a["rule"]) for a in snap["alerts"] if a["state"] == "firing"}
    assert ("d01", "break-overrun") in firing and ("d05", "desk-offline") in firing
    with urllib.request.urlopen(url + "metrics", timeout=5) as r:
        text = r.read().decode()
        assert r.headers["Content-Type"].startswith("text/plain")
    assert 'hsc_host_desks{state="lost"} 1' in text
    assert 'hsc_host_alerts_firing{rule="break-overrun"} 1' in text
    assert "hsc_host_ingest_latency_seconds_count 16" in text
    body = {"site": "site1", "desk": "d01", "rule": "break-overrun", "for_s": 600}
    assert _post(url + "api/silence", body, None)[0] == 401
    assert _post(url + "api/silence", body, "wrong-token")[0] == 401
    assert _post(url + "api/silence", {**body, "rule": "nope"}, TOKEN)[0] == 400
    code, out = _post(url + "api/silence", body, TOKEN)
    assert code == 200 and out["rule"] == "break-overrun"
    host.sync()
    alert = next(a for a in host.snapshot()[1]["alerts"] if a["rule"] == "break-overrun")
    assert alert["silenced"] is True


def test_wrong_token_then_get_on_one_keep_alive_connection(
        mosquitto: Mosquitto, make_host: MakeHost, clock: ManualClock) -> None:
    """Issue 13 item 4: a refused silence used to leave its body to be parsed as the next request."""
    host = make_host(mosquitto.url, sites=("site1", "site2"))
    _floor(mosquitto, clock, host)
    url = host.dashboard_url
    assert url is not None
    conn = http.client.HTTPConnection(urlsplit(url).netloc, timeout=5)
    body = json.dumps({"site": "site1", "desk": "d01", "rule": "break-overrun", "for_s": 600})
    conn.request("GET", "/healthz")
    r = conn.getresponse()
    assert r.status == 200 and not r.will_close
    r.read()
    sock = conn.sock
    for headers in ({"Authorization": "Bearer wrong-token"}, {}):
        conn.request("POST", "/api/silence", body, {"Content-Type": "application/json", **headers})
        r = conn.getresponse()
        assert r.status == 401 and json.loads(r.read()) == {"error": "missing or wrong token"}
        conn.request("GET", "/api/snapshot")
        r = conn.getresponse()
        assert r.status == 200 and len(json.loads(r.read())["desks"]) == 7
    assert conn.sock is sock  # the same TCP connection all along: nothing was left behind to misparse
    conn.close()


def test_silence_written_by_another_process_reaches_the_running_host(
        mosquitto: Mosquitto, make_host: MakeHost, clock: ManualClock, tmp_path: Path) -> None:
    import argparse

    from host_agent.commands import silence

    host = make_host(mosquitto.url)
    pub = publisher(mosquitto.port)
    d = Desk("site1", "d01", clock=clock.now_ms)
    send(pub, d, d.state())
    send(pub, d, d.event(EventKind.DOFFED))
    settle(host, 2)
    clock.advance(16 * 60)
    host.sync()
    p = argparse.ArgumentParser()
    silence.configure(p)
    args = p.parse_args(["--db", str(tmp_path / "host.db"), "--site", "site1", "--desk", "d01",
                         "--rule", "break-overrun", "--for", "30m",
                         "--time-origin-ms", str(clock.now_ms()), "--time-scale", "1"])
    assert silence.run(args) == 0
    wait_for(lambda: any(a["silenced"] for a in host.snapshot()[1]["alerts"]), 10, "the silence picked up")


@pytest.mark.needs("chromium")
def test_dashboard_in_chromium_tile_reacts_within_2_s(
        mosquitto: Mosquitto, make_host: MakeHost, clock: ManualClock) -> None:
    from playwright.sync_api import expect, sync_playwright

    host = make_host(mosquitto.url, sites=("site1", "site2"))
    desks = _floor(mosquitto, clock, host)
    url = host.dashboard_url
    assert url is not None
    pub = publisher(mosquitto.port)
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=real_parts.find("chromium"), args=[
            "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking"])
        page = browser.new_page(viewport={"width": 1280, "height": 760})
        page.goto(url + f"#token={TOKEN}")
        tile = page.locator('.tile[data-site="site1"][data-desk="d03"]')
        expect(tile).to_be_visible(timeout=5000)
        expect(page.locator(".tile")).to_have_count(7)
        expect(tile).not_to_have_class("alerting")
        expect(page.locator('.tile[data-desk="d05"][data-site="site1"]')).to_have_class("tile lost ")
        # d03 leaves its headset off past the allowed break: its tile must show the alert within 2 s.
        d3 = desks[2]
        send(pub, d3, d3.event(EventKind.DOFFED))
        settle(host, 17)
        fired_at = time.monotonic()  # from here the alert may fire at any moment: an upper bound
        clock.advance(15 * 60 + 30)
        for i, d in enumerate(desks):  # the floor carries on: fresh metrics from every desk still there
            if i != 4:
                send(pub, d, d.metrics(speech_s=0.9 if i in (1, 3, 5) else 0.0, worn=i not in (0, 2),
                                       cues=(Cue.PACE_FAST,) if i == 1 else (),
                                       posture=Posture.SLOUCHED if i == 3 else Posture.UPRIGHT))
        expect(tile).to_have_class("tile online alerting", timeout=2000)
        assert time.monotonic() - fired_at < 2.0
        expect(tile.locator(".chip.alert")).to_contain_text("break-overrun")
        # The site filter hides other sites.
        page.select_option("#site", "site2")
        expect(page.locator(".tile")).to_have_count(1)
        page.select_option("#site", "site1")
        expect(page.locator(".tile")).to_have_count(6)
        # Silence from the alert list.
        row = page.locator('#alerts li:has-text("d03 · break-overrun")')
        button = row.locator("button")
        row.locator("select.for").select_option("2h")  # the duration is chosen per alert
        button.click()
        expect(button).to_have_text("silenced", timeout=3000)
        expect(page.locator("#silences li .what")).to_have_text("#1 site1 · d03 · break-overrun")
        expect(page.locator("#silences li .left")).to_have_text("2h")
        expect(tile).to_have_class("tile online silenced", timeout=2000)
        ARTIFACTS.mkdir(exist_ok=True)
        page.screenshot(path=str(ARTIFACTS / "dashboard.png"), full_page=True)
        browser.close()
    pub.disconnect()


def _browser(pw: Any) -> Any:
    return pw.chromium.launch(executable_path=real_parts.find("chromium"), args=[
        "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking"])


@pytest.mark.needs("chromium")
def test_chromium_stale_lost_and_offline_tiles_show_last_seen_instead_of_live_numbers(
        mosquitto: Mosquitto, make_host: MakeHost, clock: ManualClock) -> None:
    """Issue 16 item 2: a desk that is not online shows its state and when it was last seen, nothing live."""
    from playwright.sync_api import expect, sync_playwright

    host = make_host(mosquitto.url)
    pub = publisher(mosquitto.port)
    desks = [Desk("site1", f"d0{i}", clock=clock.now_ms) for i in range(1, 5)]
    for d in desks:
        send(pub, d, d.state())
        send(pub, d, d.metrics(speech_s=0.9, level=-13.0, cues=(Cue.PACE_FAST,), posture=Posture.SLOUCHED))
    settle(host, 8)
    t_metrics = clock.now_ms()
    url = host.dashboard_url
    assert url is not None
    with sync_playwright() as pw:
        browser = _browser(pw)
        page = browser.new_page(viewport={"width": 1280, "height": 900})
        page.goto(url + f"#token={TOKEN}")
        tiles = {d.desk: page.locator(f'.tile[data-site="site1"][data-desk="{d.desk}"]') for d in desks}
        for t in tiles.values():  # all live: the numbers and cues of the moment
            expect(t.locator(".voice")).to_have_text("speaking · -13 dBov · 120 spm")
            expect(t.locator(".chip.cue")).to_have_text("pace fast")
        clock.advance(5)
        t_offline = clock.now_ms()
        send(pub, desks[0], desks[0].state(DeskStatus.LOST))  # the broker's last will: not a sign of life
        send(pub, desks[1], desks[1].state(DeskStatus.OFFLINE))  # the agent said goodbye
        settle(host, 10)
        clock.advance(6)  # 11 s without metrics from d03: stale (stale_after_s = 10); d04 carries on
        send(pub, desks[3], desks[3].metrics(speech_s=0.9, level=-13.0))
        settle(host, 11)
        expected = {"d01": ("lost", t_metrics), "d02": ("offline", t_offline), "d03": ("stale", t_metrics)}
        for desk, (status, seen) in expected.items():
            t = tiles[desk]
            expect(t).to_have_class(f"tile {status} ")
            expect(t.locator(".status")).to_have_text(status)
            at = page.evaluate("(ms) => clock(ms)", seen)  # the page's own formatting of that host time
            expect(t.locator(".lastseen")).to_contain_text(f"last seen {at} · ")
            expect(t.locator(".lastseen")).to_have_text(re.compile(r"last seen \S+ · \d+s ago"))
            text = t.inner_text()
            assert "dBov" not in text and "spm" not in text and "speaking" not in text and "slouched" not in text
            expect(t.locator(".chip.cue")).to_have_count(0)
        expect(tiles["d04"]).to_have_class("tile online ")
        expect(tiles["d04"].locator(".voice")).to_have_text("speaking · -13 dBov · 120 spm")
        ARTIFACTS.mkdir(exist_ok=True)
        page.screenshot(path=str(ARTIFACTS / "dashboard-stale-tiles.png"), full_page=True)
        browser.close()
    pub.disconnect()
    snap = {d["desk"]: d for d in host.snapshot()[1]["desks"]}  # the API tells the same truth
    assert snap["d01"]["live"] is False and snap["d01"]["level_dbov"] is None and snap["d01"]["cues"] == []
    assert snap["d01"]["last_seen_ms"] == t_metrics and snap["d02"]["last_seen_ms"] == t_offline
    assert snap["d03"]["speaking"] is False and snap["d03"]["posture"] == "unknown" and snap["d03"]["worn"] is None
    assert snap["d04"]["live"] is True and snap["d04"]["level_dbov"] == -13.0


@pytest.mark.needs("chromium")
def test_chromium_silences_panel_and_alert_history(
        mosquitto: Mosquitto, make_host: MakeHost, clock: ManualClock) -> None:
    """Issue 16 items 3 and 4: add (with a chosen duration), extend and expire silences; the history panel."""
    from playwright.sync_api import expect, sync_playwright

    host = make_host(mosquitto.url, sites=("site1", "site2"))
    pub = publisher(mosquitto.port)
    d1, d2, other = Desk("site1", "d01", clock=clock.now_ms), Desk("site1", "d02", clock=clock.now_ms), \
        Desk("site2", "d01", clock=clock.now_ms)
    for d in (d1, d2, other):
        send(pub, d, d.state())
    send(pub, d1, d1.event(EventKind.DOFFED))
    settle(host, 4)
    pub.disconnect()
    clock.advance(16 * 60)
    host.sync()  # site1/d01 break-overrun firing
    url = host.dashboard_url
    assert url is not None
    with sync_playwright() as pw:
        browser = _browser(pw)
        page = browser.new_page(viewport={"width": 1280, "height": 1000})
        page.goto(url + f"#token={TOKEN}")
        alert_row = page.locator('#alerts li:has-text("d01 · break-overrun")')
        expect(alert_row.locator("button")).to_have_text("silence")
        first_history = page.locator("#history tr").first
        expect(first_history.locator(".transition")).to_have_text("firing")
        expect(first_history.locator(".desk")).to_have_text("d01")

        # Add from the form: a bare number is refused, 1h30m is taken.
        page.select_option("#sil-site", "site1")
        page.select_option("#sil-desk", "d01")
        page.select_option("#sil-rule", "break-overrun")
        page.fill("#sil-for", "90")
        page.click("#sil-add")
        expect(page.locator("#sil-error")).to_contain_text("a bare number is not taken as seconds")
        expect(page.locator("#silences li.none")).to_have_text("No silences.")
        page.fill("#sil-for", "1h30m")
        page.click("#sil-add")
        row = page.locator('#silences li[data-id="1"]')
        expect(row.locator(".what")).to_have_text("#1 site1 · d01 · break-overrun")
        expect(row.locator(".left")).to_have_text("1h30m")
        expect(page.locator("#sil-error")).to_be_hidden()
        expect(alert_row.locator("button")).to_have_text("silenced")
        expect(page.locator('.tile[data-site="site1"][data-desk="d01"]')).to_have_class(re.compile(r"\bsilenced\b"))
        expect(first_history.locator(".transition")).to_have_text("silenced")

        # Extend by a chosen 2h, then expire.
        row.locator("select.for").select_option("2h")
        row.locator("button.extend").click()
        expect(row.locator(".left")).to_have_text("3h30m")
        assert host.silences()[0]["until_ms"] == clock.now_ms() + (90 + 120) * 60_000
        row.locator("button.expire").click()
        expect(row).to_have_count(0)
        expect(page.locator("#silences li.none")).to_have_text("No silences.")
        expect(alert_row.locator("button")).to_have_text("silence")
        expect(first_history.locator(".transition")).to_have_text("unsilenced")

        # A whole site needs the checkbox.
        page.select_option("#sil-desk", "*")
        page.select_option("#sil-rule", "*")
        page.fill("#sil-for", "15m")
        page.click("#sil-add")
        expect(page.locator("#sil-error")).to_contain_text("confirm with --all")
        page.check("#sil-all")
        page.click("#sil-add")
        expect(page.locator('#silences li[data-id="2"] .what')).to_have_text("#2 site1 · every desk · every rule")
        expect(page.locator('#silences li[data-id="2"] .left')).to_have_text("15m")
        expect(alert_row.locator("button")).to_have_text("silenced")

        # The history per desk: click a tile; newest first; filter by rule.
        page.locator('.tile[data-site="site1"][data-desk="d02"]').click()
        expect(page.locator("#hist-desk")).to_have_value("d02")
        expect(page.locator("#history tr.none")).to_have_text("No alert transitions for d02.")
        page.locator('.tile[data-site="site1"][data-desk="d01"]').click()
        expect(page.locator("#history .transition")).to_have_text(["silenced", "unsilenced", "silenced", "firing"])
        expect(page.locator("#history tr .desk")).to_have_text(["d01"] * 4)
        page.select_option("#hist-rule", "desk-offline")
        expect(page.locator("#history tr.none")).to_have_count(1)
        api = [e["transition"] for e in host.alert_history(site="site1", desk="d01")]
        assert api == ["silenced", "unsilenced", "silenced", "firing"]
        ARTIFACTS.mkdir(exist_ok=True)
        page.screenshot(path=str(ARTIFACTS / "dashboard-silences.png"), full_page=True)
        browser.close()
