"""Posture from the headset IMU against the agent's own calibrated upright pose.

Pitch and roll are degrees (pitch + = head forward). "Forward" is pitch minus the upright pose's
pitch (without a calibrated pose, the headset's level, 0 deg, stands in). The norm (training
material 000/002: neck straight, sit upright) as the product's default: slouched after more than
``forward_deg`` (15 deg) forward for ``slouch_s`` (30 s); it clears below ``clear_deg`` (10 deg)
held for ``clear_s`` (1 s). Times are seconds on the injected clock.

The upright pose is never learned from what the tracker sees: it changes only through an explicit
calibration, which is refused while the headset is off or unknown, while the head is moving, and
while the agent is slouched against the current pose (unless forced by the CLI's ``--force``).
"""

from __future__ import annotations

import math
from collections.abc import Sequence

from device.config.agent import PostureSettings
from device.errors import AgentError
from device.inputs.posture_store import UprightPose
from mqtt_schema import Posture

STILL_DEG = 3.0
"""Largest pitch or roll spread (max - min, deg) over the calibration window of a still head."""
MIN_SAMPLES = 5


class PostureError(AgentError, ValueError):
    """A posture calibration that was refused; the message says why."""


class PostureTracker:
    """Upright / slouched / unknown, with the hold times of :class:`PostureSettings`."""

    def __init__(self, settings: PostureSettings, pose: UprightPose | None = None) -> None:
        self.settings = settings
        self.pose = pose
        self.state = Posture.UNKNOWN
        self.forward_deg: float | None = None
        self._over_since: float | None = None
        self._clear_since: float | None = None

    @property
    def baseline_pitch_deg(self) -> float:
        return self.pose.pitch_deg if self.pose is not None else 0.0

    def reconfigure(self, settings: PostureSettings) -> None:
        """New thresholds; the current state and its timers carry on."""
        self.settings = settings

    def set_pose(self, pose: UprightPose) -> None:
        """Adopt a calibrated pose (already checked by :func:`calibrate`); timers restart."""
        self.pose = pose
        self._over_since = self._clear_since = None
        if self.state is Posture.SLOUCHED:
            self.state = Posture.UPRIGHT

    def _reset(self) -> None:
        self.state = Posture.UNKNOWN
        self.forward_deg = None
        self._over_since = self._clear_since = None

    def update(self, now_s: float, pitch_deg: float | None, worn: bool | None) -> Posture:
        """Feed the latest pitch (None: no fresh IMU frame) and wear state at ``now_s`` (s)."""
        if worn is not True or pitch_deg is None or not math.isfinite(pitch_deg):
            self._reset()
            return self.state
        s = self.settings
        forward = pitch_deg - self.baseline_pitch_deg
        self.forward_deg = forward
        if self.state is Posture.SLOUCHED:
            if forward < s.clear_deg:
                if self._clear_since is None:
                    self._clear_since = now_s
                if now_s - self._clear_since >= s.clear_s:
                    self.state = Posture.UPRIGHT
                    self._clear_since = self._over_since = None
            else:
                self._clear_since = None
            return self.state
        if forward > s.forward_deg:
            if self._over_since is None:
                self._over_since = now_s
            if now_s - self._over_since >= s.slouch_s:
                self.state = Posture.SLOUCHED
                self._clear_since = None
                return self.state
        else:
            self._over_since = None
        self.state = Posture.UPRIGHT
        return self.state

    def calibrate(self, samples: Sequence[tuple[float, float]], worn: bool | None, *, now_ms: int = 0,
                  headset_id: str | None = None, source: str = "", force: bool = False) -> UprightPose:
        """The upright pose from ``samples`` [(pitch_deg, roll_deg), ...] of about 1 s of a still head.

        Raises :class:`PostureError` (and keeps the old pose) when the headset is not worn, there are
        too few frames, the head moved, or the agent is slouched now (unless ``force``). Does not adopt
        the pose: call :meth:`set_pose` (after storing it).
        """
        return calibrate(samples, worn, slouched=self.state is Posture.SLOUCHED and not force, now_ms=now_ms,
                         headset_id=headset_id, source=source)


def calibrate(samples: Sequence[tuple[float, float]], worn: bool | None, *, slouched: bool = False,
              now_ms: int = 0, headset_id: str | None = None, source: str = "") -> UprightPose:
    """See :meth:`PostureTracker.calibrate`."""
    if worn is not True:
        raise PostureError("posture calibration refused: the headset is "
                           + ("off" if worn is False else "not connected or its wear state is unknown"))
    if len(samples) < MIN_SAMPLES:
        raise PostureError(f"posture calibration refused: only {len(samples)} IMU frames "
                           f"(need {MIN_SAMPLES}); is the headset streaming?")
    pitches = [p for p, _ in samples]
    rolls = [r for _, r in samples]
    spread = max(max(pitches) - min(pitches), max(rolls) - min(rolls))
    if spread > STILL_DEG:
        raise PostureError(f"posture calibration refused: the head moved {spread:.1f} deg "
                           f"(hold still within {STILL_DEG:g} deg for about 1 s)")
    if slouched:
        raise PostureError("posture calibration refused: the agent is slouched against the current upright "
                           "pose; sit upright first (the upright pose is never learned from a slouch)")
    return UprightPose(pitch_deg=round(sum(pitches) / len(pitches), 2), roll_deg=round(sum(rolls) / len(rolls), 2),
                       ts_ms=now_ms, headset_id=headset_id, source=source)
