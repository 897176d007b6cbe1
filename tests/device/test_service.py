"""The agent service in-process on an injected (manual) clock: audio errors and recovery, LED cues
on MockFactory pins, remote posture calibration refused without a headset. Real mosquitto."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
from gpiozero.pins.mock import MockFactory, MockPWMPin

from device.clock import ManualClock
from device.config.agent import load_config
from device.service import AgentService
from mqtt_schema import Config, Cue, State
from tests.conftest import Mosquitto
from tests.device.helpers import Capture, two_channel_speech, wait_for

SITE, DESK = "lab", "desk-05"


def run_until(service: AgentService, pred: Callable[[], bool], max_steps: int = 20_000, what: str = "condition") -> None:
    for _ in range(max_steps):
        service.step()
        if pred():
            return
    raise AssertionError(f"{what} not reached in {max_steps} loop passes")


@pytest.fixture
def loud(tmp_path: Path) -> Path:
    """Real speech 12 dB louder than the demo's: about -10 dBov, above the default band (-26 +/- 6)."""
    p = two_channel_speech(tmp_path / "speech.wav", seconds=12)
    x, sr = sf.read(p, dtype="float32")
    sf.write(tmp_path / "loud.wav", np.clip(x * 4.0, -1, 1), sr, subtype="PCM_16")
    return tmp_path / "loud.wav"


def test_audio_error_retry_then_ok_volume_cue_on_the_leds_and_refused_calibration(
        tmp_path: Path, mosquitto: Mosquitto, loud: Path) -> None:
    audio = tmp_path / "live.wav"
    os.link(loud, audio)
    cfg = load_config(None, {"desk.site": SITE, "desk.desk": DESK, "mqtt.url": mosquitto.url,
                             "audio.source": f"file:{audio}", "audio.loop": True, "headset.port": "none",
                             "agent.state_dir": str(tmp_path / "state")})
    audio.unlink()  # the device is gone before the agent starts
    clock = ManualClock()
    factory = MockFactory(pin_class=MockPWMPin)
    cap = Capture(mosquitto.port, SITE)
    service = AgentService(cfg, clock, pin_factory=factory)
    try:
        service.start()
        publisher = service.publisher
        assert publisher is not None
        wait_for(lambda: publisher.connected, 10, "publisher connected")
        assert service.status.audio.value == "error"
        t_err = clock.now_ms()
        run_until(service, lambda: clock.now_ms() - t_err > 3000, what="3 s of retries")
        assert service.status.audio.value == "error" and service.status.blocks == 0
        os.link(loud, audio)  # plugged back in
        run_until(service, lambda: service.status.audio.value == "ok", what="audio back")
        assert clock.now_ms() - t_err <= 3000 + 8000 + 100  # within one maximal backoff
        wait_for(lambda: cap.events("audio_error") and cap.events("audio_ok"), 10, "audio events")
        assert "live.wav" in (cap.events("audio_error")[0].message or "")
        wait_for(lambda: cap.of(State, lambda s: s.audio.value == "ok"), 10, "state audio ok")

        # loud speech: volume_high after 1.5 s of own speech outside the band, shown on the RGB LED
        rgb = [factory.pin(n) for n in cfg.leds.rgb]
        run_until(service, lambda: service.cues.is_on(Cue.VOLUME_HIGH), what="volume_high")
        service.step()
        from device.outputs.leds import CUE_COLOURS

        want = tuple(round(c * 0.25, 3) for c in CUE_COLOURS[Cue.VOLUME_HIGH])
        seen = [tuple(round(float(p.states[-1].state), 3) for p in rgb)]
        assert seen[0] == want, (seen, want)
        assert all(len(p.states) >= 2 for p in rgb if want[rgb.index(p)] > 0)
        on = wait_for(lambda: cap.events("cue_on"), 10, "cue_on event")
        assert on[0].cue == Cue.VOLUME_HIGH and on[0].value is not None and on[0].value > -20
        # the level bar shows "far above" (5 segments) while speaking
        bar = [factory.pin(n) for n in cfg.leds.bar]
        lit = []
        for _ in range(50):
            service.step()
            lit.append(sum(1 for p in bar if p.state))
        assert max(lit) == 5, lit

        # a remote calibrate_posture without a headset: refused with the reason, the pose unchanged
        service._inbox.put(("config", Config(site=SITE, desk=DESK, ts=5, config={}, calibrate_posture=True)))
        service.step()
        cal = wait_for(lambda: cap.events("calibration"), 10, "calibration event")
        assert "refused" in (cal[0].message or "") and service.tracker.pose is None
    finally:
        service.shutdown(5)
        cap.close()
    # LEDs closed at shutdown: every pin released
    assert service.leds is not None
    assert service.leds.closed
