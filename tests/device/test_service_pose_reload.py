"""``headset-agent calibrate-posture`` writes the upright pose while the agent runs: the loop adopts it,
looking at the file once per ``POSE_CHECK_S`` wall seconds (the injected ``monotonic``), not on every
pass. In-process on a ManualClock; no broker (the publisher retries in the background)."""

from __future__ import annotations

from pathlib import Path

from gpiozero.pins.mock import MockFactory, MockPWMPin

from device.clock import ManualClock
from device.config.agent import load_config
from device.inputs.posture_store import UprightPose, save_pose
from device.service import POSE_CHECK_S, AgentService
from tests.device.helpers import two_channel_speech


def test_a_pose_written_while_running_is_adopted_within_one_check_interval(tmp_path: Path) -> None:
    audio = two_channel_speech(tmp_path / "speech.wav", seconds=2)
    state = tmp_path / "state"
    cfg = load_config(None, {"desk.site": "lab", "desk.desk": "desk-08", "mqtt.url": "mqtt://127.0.0.1:1",
                             "audio.source": f"file:{audio}", "audio.loop": True, "headset.port": "none",
                             "agent.state_dir": str(state)})
    wall_s = [100.0]
    service = AgentService(cfg, ManualClock(), pin_factory=MockFactory(pin_class=MockPWMPin),
                           monotonic=lambda: wall_s[0])
    service.start()
    try:
        service.step()
        assert service.tracker.pose is None
        pose = UprightPose(pitch_deg=7.5, roll_deg=-1.0, ts_ms=1, source="cli")
        save_pose(state, pose)
        for _ in range(40):  # two seconds of audio, but no wall time passed: the file is not looked at
            service.step()
        assert service.tracker.pose is None
        wall_s[0] += POSE_CHECK_S
        service.step()
        assert service.tracker.pose == pose
    finally:
        service.shutdown(1.0)
