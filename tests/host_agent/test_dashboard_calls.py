"""Dashboard tiles show each desk's call state (issue 15): idle, ringing with the ring under way, in call with
its duration; nothing for a desk without a call source. Real mosquitto, the real host, headless Chromium."""

from __future__ import annotations

import re
from collections.abc import Callable

import msgspec
import pytest

from host_agent.clock import ManualClock
from host_agent.service import HostService
from mqtt_schema import CallStatus, Metrics
from tests import real_parts
from tests.conftest import Mosquitto
from tests.host_agent.conftest import TOKEN, settle
from tests.host_agent.helpers import Desk, publisher, send

MakeHost = Callable[..., HostService]


def with_call(m: Metrics, call: CallStatus | None) -> Metrics:
    return msgspec.structs.replace(m, call=call)


@pytest.mark.needs("mosquitto", "chromium")
def test_tiles_show_idle_ringing_with_ring_count_and_in_call_with_duration(
        mosquitto: Mosquitto, make_host: MakeHost, clock: ManualClock) -> None:
    from playwright.sync_api import expect, sync_playwright

    host = make_host(mosquitto.url)
    pub = publisher(mosquitto.port)
    desks = {n: Desk("site1", n, clock=clock.now_ms) for n in ("d01", "d02", "d03", "d04")}
    calls: dict[str, CallStatus | None] = {"d01": None, "d02": CallStatus.IDLE, "d03": CallStatus.IDLE,
                                           "d04": CallStatus.IDLE}
    handled = 0

    def floor_carries_on() -> None:
        nonlocal handled
        for name, d in desks.items():
            send(pub, d, with_call(d.metrics(speech_s=0.5), calls[name]))
        handled += len(desks)
        settle(host, handled)

    for d in desks.values():
        send(pub, d, d.state())
    handled += len(desks)
    floor_carries_on()
    calls["d03"], calls["d04"] = CallStatus.RINGING, CallStatus.ESTABLISHED
    floor_carries_on()  # d03 starts ringing, d04 is connected, both at this host time
    clock.advance(7)  # 7 s of ringing: the 2nd ring at 1 s on, 4 s off; 7 s in call
    floor_carries_on()
    snap = {d["desk"]: d for d in host.snapshot()[1]["desks"]}
    assert snap["d01"]["call"] is None and snap["d02"]["call"] == "idle"
    assert snap["d03"]["call"] == "ringing" and snap["d03"]["rings"] == 2 and snap["d03"]["call_s"] == 7.0
    assert snap["d04"]["call"] == "established" and snap["d04"]["call_s"] == 7.0 and snap["d04"]["rings"] is None
    url = host.dashboard_url
    assert url is not None
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=real_parts.find("chromium"), args=[
            "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking"])
        page = browser.new_page(viewport={"width": 1280, "height": 760})
        page.goto(url + f"#token={TOKEN}")
        tile = {n: page.locator(f'.tile[data-site="site1"][data-desk="{n}"]') for n in desks}
        expect(tile["d04"]).to_be_visible(timeout=5000)
        expect(tile["d01"].locator(".chip.call")).to_have_count(0)  # no call source: no call chip
        expect(tile["d02"].locator(".chip.call")).to_have_text("no call")
        expect(tile["d03"].locator(".chip.call")).to_have_text("ringing · ring 2")
        expect(tile["d04"].locator(".chip.call")).to_have_text(re.compile(r"in call 0:0[7-9]"))
        # d03 is answered; d04 hangs up; a minute later the duration reads in minutes
        calls["d03"], calls["d04"] = CallStatus.ESTABLISHED, CallStatus.IDLE
        floor_carries_on()
        clock.advance(65)
        floor_carries_on()
        expect(tile["d03"].locator(".chip.call")).to_have_text(re.compile(r"in call 1:0[5-7]"), timeout=3000)
        expect(tile["d03"].locator(".chip.call")).to_have_attribute("data-call", "established")
        expect(tile["d04"].locator(".chip.call")).to_have_text("no call")
        browser.close()
    pub.disconnect()
