"""Issue 13, desk agent: a broker that cannot be reached is named in the log (journald) with the cause,
connecting again is logged, and SIGTERM stays prompt. Real ``headset-agent run`` processes."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import Mosquitto
from tests.device.helpers import Agent, two_channel_speech, wait_for
from tests.ports import free_port

SITE, DESK = "lab", "desk-14"
WARN_DEADLINE_S = 5.0
"""Wall seconds from the start of the process to the first "cannot reach the MQTT broker" warning."""
STOP_DEADLINE_S = 2.0
"""Wall seconds from SIGTERM to the exit of an agent whose broker cannot be reached."""


@pytest.fixture(scope="module")
def speech(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return two_channel_speech(tmp_path_factory.mktemp("audio") / "speech.wav", seconds=6)


def agent(tmp_path: Path, url: str, speech: Path) -> Agent:
    return Agent(["--site", SITE, "--desk", DESK, "--broker", url, "--audio", f"file:{speech}", "--loop",
                  "--headset", "none", "--state-dir", str(tmp_path / "state"), "--mock-gpio"],
                 tmp_path / "agent.log")


def warnings(a: Agent) -> list[dict[str, Any]]:
    return [r for r in a.logs() if r.get("level") == "warning" and r.get("logger") == "device.publisher"
            and str(r.get("msg", "")).startswith("cannot reach the MQTT broker")]


@pytest.mark.parametrize(("url", "cause"), [
    (f"mqtt://127.0.0.1:{free_port()}", "connection refused"),
    ("mqtt://no-such-broker.invalid:1883", "DNS lookup of 'no-such-broker.invalid' failed"),
], ids=["closed-port", "unresolvable-host"])
def test_an_unreachable_broker_is_logged_with_its_url_and_cause_and_sigterm_is_prompt(
        tmp_path: Path, speech: Path, url: str, cause: str) -> None:
    a = agent(tmp_path, url, speech)
    t0 = time.monotonic()
    a.start()
    try:
        first = wait_for(lambda: warnings(a), WARN_DEADLINE_S, "the broker warning")[0]
        assert first["broker"] == url and url in first["msg"]
        assert first["error"].startswith(cause), first
        assert first["attempts"] == 1
        warned_after_s = time.monotonic() - t0
        time.sleep(2.0)  # a few retries: rate-limited, not one line per attempt
        assert len(warnings(a)) <= 3
        t_term = time.monotonic()
        assert a.terminate(timeout_s=10) == 0
        stop_s = time.monotonic() - t_term
    finally:
        a.stop()
    assert stop_s < STOP_DEADLINE_S, f"SIGTERM took {stop_s:.2f} s"
    msgs = [r.get("msg") for r in a.logs()]
    assert "agent stopped" in msgs and not any(r.get("level") == "error" for r in a.logs())
    print(f"\n{url}: first warning after {warned_after_s:.2f} s, SIGTERM to exit {stop_s:.2f} s")


def test_connecting_again_is_logged_and_the_spooled_events_go_out(
        tmp_path: Path, speech: Path, mosquitto: Mosquitto) -> None:
    mosquitto.stop()
    a = agent(tmp_path, mosquitto.url, speech).start()
    try:
        wait_for(lambda: warnings(a), WARN_DEADLINE_S, "the broker warning")
        assert warnings(a)[0]["error"].startswith("connection refused")
        mosquitto.start()
        again = wait_for(lambda: [r for r in a.logs() if r.get("level") == "info"
                                  and str(r.get("msg", "")).startswith("connected to the MQTT broker")],
                         15, "the reconnect INFO")[0]
        assert again["broker"] == mosquitto.url and again["failed_attempts"] >= 1 and again["outage_s"] >= 0
        assert a.terminate(timeout_s=15) == 0
    finally:
        a.stop()
    # connected: the stop flushed the spool (the audio_error-free run spooled at least the last minute)
    assert "spool not empty at stop: the rest is sent at the next start" not in [r.get("msg") for r in a.logs()]
