"""Posture on an injected clock: slouch timing, clearing, unknown when off, no re-learning from a slouch."""

from __future__ import annotations

from pathlib import Path

import pytest

from device.config.agent import PostureSettings
from device.inputs.posture import PostureError, PostureTracker
from device.inputs.posture_store import PostureStoreError, UprightPose, load_pose, save_pose
from mqtt_schema import Posture

S = PostureSettings()  # 15 deg for 30 s; clears below 10 deg held 1 s


def run(tracker: PostureTracker, t0: float, t1: float, pitch: float | None, worn: bool | None = True,
        step: float = 0.1) -> list[tuple[float, Posture]]:
    out = []
    n = int(round((t1 - t0) / step))
    for i in range(n + 1):
        t = t0 + i * step
        out.append((t, tracker.update(t, pitch, worn)))
    return out


def first(states: list[tuple[float, Posture]], want: Posture) -> float | None:
    return next((t for t, s in states if s is want), None)


def test_slouch_after_30_s_beyond_15_deg_and_clears_below_10_held_1_s() -> None:
    tr = PostureTracker(S, UprightPose(2.0, 0.0))
    assert run(tr, 0, 60, 5.0)[-1][1] is Posture.UPRIGHT
    states = run(tr, 60, 100, 2.0 + 20.0)  # 20 deg forward of the upright pose
    assert first(states, Posture.SLOUCHED) == pytest.approx(90.0, abs=0.11)
    # 12 deg: inside the hysteresis gap (between 10 and 15): stays slouched
    assert all(s is Posture.SLOUCHED for _, s in run(tr, 100, 130, 14.0))
    # below 10 deg for 0.5 s then back up: does not clear
    run(tr, 130, 130.5, 2.0 + 5.0)
    assert run(tr, 130.6, 140, 2.0 + 12.0)[-1][1] is Posture.SLOUCHED
    states = run(tr, 140, 145, 2.0 + 5.0)
    assert first(states, Posture.UPRIGHT) == pytest.approx(141.0, abs=0.11)


def test_short_leans_never_slouch() -> None:
    tr = PostureTracker(S)
    for k in range(20):  # 29 s forward, 2 s up, repeatedly: never 30 s in a row
        t = k * 31.0
        run(tr, t, t + 29.0, 25.0)
        states = run(tr, t + 29.1, t + 31.0 - 0.1, 0.0)
        assert all(s is Posture.UPRIGHT for _, s in states)


def test_headset_off_or_unknown_gives_unknown_and_restarts_the_timer() -> None:
    tr = PostureTracker(S)
    run(tr, 0, 25, 30.0)
    assert tr.update(25.1, 30.0, False) is Posture.UNKNOWN
    assert tr.update(25.2, None, True) is Posture.UNKNOWN  # no fresh frame
    assert tr.update(25.3, 30.0, None) is Posture.UNKNOWN
    states = run(tr, 26, 60, 30.0)
    assert first(states, Posture.SLOUCHED) == pytest.approx(56.0, abs=0.11)


def test_calibration_refused_when_off_moving_or_slouched_and_never_learned_from_a_slouch() -> None:
    tr = PostureTracker(S, UprightPose(0.0, 0.0))
    still = [(3.0 + 0.1 * (i % 3), 1.0) for i in range(10)]
    with pytest.raises(PostureError, match="headset is off"):
        tr.calibrate(still, False)
    with pytest.raises(PostureError, match="not connected"):
        tr.calibrate(still, None)
    with pytest.raises(PostureError, match="head moved"):
        tr.calibrate([(float(i), 0.0) for i in range(10)], True)
    with pytest.raises(PostureError, match="only 2 IMU frames"):
        tr.calibrate(still[:2], True)
    # an hour slouched: the baseline never moves on its own
    run(tr, 0, 3600, 25.0, step=1.0)
    assert tr.state is Posture.SLOUCHED and tr.pose == UprightPose(0.0, 0.0)
    slouch = [(25.0, 0.0)] * 10
    with pytest.raises(PostureError, match="never learned from a slouch"):
        tr.calibrate(slouch, True)
    assert tr.pose == UprightPose(0.0, 0.0)
    # forced (the CLI's --force, after re-seating the headset) works
    pose = tr.calibrate(slouch, True, force=True, source="cli")
    assert pose.pitch_deg == 25.0 and pose.source == "cli"
    # sitting up: an ordinary calibration is accepted, averaged over the window
    run(tr, 3600, 3605, 3.0)
    pose = tr.calibrate(still, True, headset_id="abc")
    assert pose.pitch_deg == pytest.approx(sum(p for p, _ in still) / len(still), abs=0.01)
    tr.set_pose(pose)
    assert tr.update(3606, 3.0 + 16.0, True) is Posture.UPRIGHT


def test_pose_store_round_trip_and_corruption(tmp_path: Path) -> None:
    assert load_pose(tmp_path) is None
    pose = UprightPose(4.5, -1.25, ts_ms=123, headset_id="e661", source="remote")
    save_pose(tmp_path, pose)
    assert load_pose(tmp_path) == pose
    (tmp_path / "posture.json").write_text("{not json")
    with pytest.raises(PostureStoreError, match="calibrate-posture"):
        load_pose(tmp_path)
    (tmp_path / "posture.json").write_text('{"pitch_deg": 400, "roll_deg": 0}')
    with pytest.raises(PostureStoreError, match="impossible"):
        load_pose(tmp_path)
