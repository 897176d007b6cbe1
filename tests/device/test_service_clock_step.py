"""The desk clock stepped back while the agent runs (an NTP step, a Pi's fake-hwclock corrected): the
metrics snapshot and the audio retry carry on at once instead of waiting until the clock is back where it
was, and the minute rollups of the boot neither repeat a minute nor leave a gap. In-process, on a
ManualClock; the audio device is missing (the loop idles on the clock, as with a live device)."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

from gpiozero.pins.mock import MockFactory, MockPWMPin

from device.clock import ManualClock
from device.config.agent import load_config
from device.service import AgentService
from tests.device.helpers import two_channel_speech

HOUR_MS = 3_600_000


def _steps_until(service: AgentService, pred: Callable[[], bool], max_steps: int = 5_000) -> int:
    for n in range(max_steps):
        if pred():
            return n
        service.step()
    raise AssertionError(f"not reached in {max_steps} loop passes")


def test_metrics_and_audio_retry_go_on_after_the_clock_steps_back_an_hour(tmp_path: Path) -> None:
    speech = two_channel_speech(tmp_path / "speech.wav", seconds=4)
    audio = tmp_path / "live.wav"
    os.link(speech, audio)
    cfg = load_config(None, {"desk.site": "lab", "desk.desk": "desk-07", "mqtt.url": "mqtt://127.0.0.1:1",
                             "audio.source": f"file:{audio}", "audio.loop": True, "headset.port": "none",
                             "agent.state_dir": str(tmp_path / "state")})
    audio.unlink()  # unplugged before the agent starts
    clock = ManualClock()
    service = AgentService(cfg, clock, pin_factory=MockFactory(pin_class=MockPWMPin))
    service.start()  # the audio device is missing: audio error, retried with backoff on the clock
    try:
        assert service.status.audio.value == "error"
        _steps_until(service, lambda: service.status.metrics_sent >= 3)  # one a second (of the clock)
        sent = service.status.metrics_sent
        clock.set(clock.now_ms() - HOUR_MS)
        # 3 s of the clock (50 ms per idle pass): about three more snapshots, not an hour without any
        for _ in range(60):
            service.step()
        assert service.status.metrics_sent >= sent + 2
        # the audio retry was due within seconds before the step: still so after it
        os.link(speech, audio)
        n = _steps_until(service, lambda: service.status.audio.value == "ok", max_steps=400)
        assert n * 0.05 <= 20.0  # clock seconds: the backoff, not an hour
    finally:
        service.shutdown(1.0)
