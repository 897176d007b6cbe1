"""Take the current head pose as the agent's upright pose (stored in the state folder).

Reads about 1 s of IMU frames from the headset while the agent sits upright and still, after the
headset's own gyro calibration (``cal``). Refused when the headset is off, the head moves, or
the pose is a slouch against the current upright pose (``--force`` after re-seating the headset).
A running agent picks the new pose up by itself. With the agent running on the same port, use
its button (long press) or the remote config's ``calibrate_posture`` instead.
"""

from __future__ import annotations

import argparse
import sys
import time

from device.commands import refuse_empty
from device.errors import AgentError, UsageError

EXAMPLE = """example:
  headset-agent calibrate-posture --config /etc/headset-coach/agent.toml
  headset-agent calibrate-posture --headset /dev/ttyACM0 --state-dir /var/lib/headset-coach
"""
WINDOW_S = 1.0
CONNECT_S = 5.0


def configure(p: argparse.ArgumentParser) -> None:
    p.add_argument("--config", metavar="FILE", help="agent.toml (headset port, state folder)")
    p.add_argument("--headset", metavar="PORT", help="headset serial port (overrides the config)")
    p.add_argument("--state-dir", metavar="DIR", help="where the pose is stored (overrides the config)")
    p.add_argument("--window-s", type=float, default=WINDOW_S, metavar="S", help="seconds of frames to average (1)")
    p.add_argument("--force", action="store_true",
                   help="accept a pose that is a slouch against the current one (after re-seating the headset)")


def run(args: argparse.Namespace) -> int:
    from device.config.agent import load_config
    from device.inputs.headset_client import HeadsetClient, missing_port
    from device.inputs.posture import PostureTracker, calibrate
    from device.inputs.posture_store import PostureStoreError, load_pose, path_in, save_pose
    from hw.firmware import headset_link as hl

    refuse_empty(("--config", args.config, "empty path"), ("--state-dir", args.state_dir, "empty path"))
    if not 0.2 <= args.window_s <= 10:
        raise UsageError(f"--window-s must be in 0.2..10 s, got {args.window_s}")
    overrides = {"headset.port": args.headset, "agent.state_dir": args.state_dir}
    if args.config is None:
        overrides.update({"desk.site": "local", "desk.desk": "local"})
    cfg = load_config(args.config, overrides)
    if cfg.headset.port is None:
        raise UsageError("no headset port: give --headset PORT or set [headset] port")
    missing = missing_port(cfg.headset.port)
    if missing is not None:
        raise AgentError(missing)
    state_dir = cfg.agent.state_dir
    try:
        current = load_pose(state_dir)
    except PostureStoreError:  # this command is the cure: calibrate as if none was stored, then replace it
        current = None
        print(f"headset-agent: the stored upright pose {path_in(state_dir)} cannot be used; it will be replaced",
              file=sys.stderr)
    with HeadsetClient(cfg.headset.port, cfg.headset.baud) as client:
        end = time.monotonic() + CONNECT_S
        while time.monotonic() < end and not (client.connected and client.snapshot().imu is not None):
            time.sleep(0.02)
        snap = client.snapshot()
        if not snap.connected or snap.imu is None:
            raise AgentError(f"no IMU frames from the headset on {cfg.headset.port} within {CONNECT_S:g} s")
        end = time.monotonic() + 1.0
        while snap.worn is None and time.monotonic() < end:  # the wear state follows the hello
            time.sleep(0.02)
            snap = client.snapshot()
        ack = client.request(hl.CALIBRATE, timeout_s=5.0)
        if not ack.get("ok"):
            raise AgentError(f"posture calibration refused: the headset says {ack.get('err', 'no')!r}")
        samples: list[tuple[float, float]] = []
        last = None
        end = time.monotonic() + args.window_s
        while time.monotonic() < end:
            imu = client.snapshot().imu
            if imu is not None and imu is not last:
                samples.append((imu.pitch_deg, imu.roll_deg))
                last = imu
            time.sleep(0.005)
        snap = client.snapshot()
        hid = snap.hello.headset_id if snap.hello else None
    tracker = PostureTracker(cfg.posture, current)
    forward = (sum(p for p, _ in samples) / len(samples) - tracker.baseline_pitch_deg) if samples else 0.0
    slouched = current is not None and forward > cfg.posture.forward_deg and not args.force
    pose = calibrate(samples, snap.worn, slouched=slouched, now_ms=time.time_ns() // 1_000_000,
                     headset_id=hid, source="cli")
    path = save_pose(state_dir, pose)
    print(f"upright pose: pitch {pose.pitch_deg:.1f} deg, roll {pose.roll_deg:.1f} deg "
          f"({len(samples)} frames, headset {hid or '?'}) saved to {path}")
    return 0
