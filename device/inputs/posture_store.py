"""The agent's calibrated upright head pose, stored in the state folder as ``posture.json``.

Written atomically (temp file, fsync, rename), so a power cut leaves the old or the new pose.
Angles in degrees (pitch + = head forward, roll + = right ear down); ``ts_ms`` ms since the epoch.
"""

from __future__ import annotations

import json
import math
import os
from dataclasses import asdict, dataclass
from pathlib import Path

from device.errors import AgentError

FILE_NAME = "posture.json"


class PostureStoreError(AgentError, ValueError):
    """A stored pose that cannot be read or written."""


@dataclass(frozen=True)
class UprightPose:
    pitch_deg: float
    roll_deg: float
    ts_ms: int = 0
    headset_id: str | None = None
    source: str = ""
    """Who set it: cli, remote, button."""


def path_in(state_dir: Path) -> Path:
    return Path(state_dir) / FILE_NAME


def load_pose(state_dir: Path) -> UprightPose | None:
    """The stored pose, or None when none was calibrated yet. A corrupt file raises PostureStoreError."""
    path = path_in(state_dir)
    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return None
    except (OSError, ValueError) as exc:
        raise PostureStoreError(f"cannot read the upright pose {path}: {exc}; run headset-agent calibrate-posture") from None
    try:
        pose = UprightPose(pitch_deg=float(doc["pitch_deg"]), roll_deg=float(doc["roll_deg"]),
                           ts_ms=int(doc.get("ts_ms", 0)), headset_id=doc.get("headset_id"),
                           source=str(doc.get("source", "")))
    except (KeyError, TypeError, ValueError) as exc:
        raise PostureStoreError(f"the upright pose {path} is incomplete ({exc}); run headset-agent calibrate-posture") from None
    if not (math.isfinite(pose.pitch_deg) and math.isfinite(pose.roll_deg)
            and abs(pose.pitch_deg) <= 90 and abs(pose.roll_deg) <= 90):
        raise PostureStoreError(f"the upright pose {path} holds impossible angles; run headset-agent calibrate-posture")
    return pose


def save_pose(state_dir: Path, pose: UprightPose) -> Path:
    """Store ``pose`` atomically; return the file's path."""
    state_dir = Path(state_dir)
    path = path_in(state_dir)
    tmp = state_dir / f".{FILE_NAME}.{os.getpid()}.tmp"
    try:
        state_dir.mkdir(parents=True, exist_ok=True)
        with open(tmp, "w", encoding="utf-8") as f:
            json.dump(asdict(pose), f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except OSError as exc:
        tmp.unlink(missing_ok=True)
        raise PostureStoreError(f"cannot write the upright pose {path}: {exc.strerror or exc}") from None
    return path
