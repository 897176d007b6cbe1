"""Run the desk agent service: audio -> DSP -> cues -> LEDs, headset link, posture, MQTT with a durable spool.

Flags override the config file. Stops cleanly on SIGTERM or SIGINT: the spool is flushed, the
state ``offline`` is published and the LEDs are turned off. With no broker the stop is prompt (under a
second) and unsent events stay in the spool for the next start. A broker that cannot be reached is
logged as a warning naming its url and the cause. Every step of the stop runs; when one fails (a full
disk) the exit code is 1 and the message names it. SIGUSR1 writes every thread's stack to stderr
(``kill -USR1 PID``: what a hung agent is doing), and the agent goes on.
"""

from __future__ import annotations

import argparse
from typing import Any

from device import logs
from device.clock import make_clock
from device.commands import refuse_empty
from device.config.agent import SPEED_RANGE, load_config
from device.errors import UsageError
from mqtt_schema.clock import check_time_flags
from mqtt_schema.process_signals import stacks_on_sigusr1, stop_on_signals

EXAMPLE = """example:
  headset-agent run --config /etc/headset-coach/agent.toml
  headset-agent run --site demo --desk desk-01 --broker mqtt://127.0.0.1:1883 --audio file:call.flac --loop \\
      --headset /tmp/desk-01.tty --state-dir /tmp/desk-01 --mock-gpio --time-scale 20
"""


def configure(p: argparse.ArgumentParser) -> None:
    p.add_argument("--config", metavar="FILE", help="agent.toml (default: defaults and flags only)")
    p.add_argument("--site", help="site id (overrides [desk] site)")
    p.add_argument("--desk", help="desk id (overrides [desk] desk)")
    p.add_argument("--broker", metavar="URL", help="mqtt://host:port or mqtts://host:port (overrides [mqtt] url)")
    p.add_argument("--audio", metavar="SRC", help="alsa:<device> or file:<path> (overrides [audio] source)")
    p.add_argument("--loop", action="store_true", default=None, help="loop a file audio source")
    p.add_argument("--speed", type=float, metavar="X",
                   help="file audio: X audio seconds per wall second (default: the time scale)")
    p.add_argument("--headset", metavar="PORT", help="headset serial port, or 'none' (overrides [headset] port)")
    p.add_argument("--state-dir", metavar="DIR", help="boot counter, spool, upright pose (overrides [agent] state_dir)")
    p.add_argument("--calibration", metavar="FILE", help="headset calibration file (headset-agent calibrate)")
    p.add_argument("--mock-gpio", action="store_true",
                   help="LEDs on gpiozero's MockFactory (demos and tests; no GPIO needed)")
    p.add_argument("--log-level", choices=("debug", "info", "warning", "error"), help="overrides [agent] log_level")
    p.add_argument("--log-format", choices=("json", "kv"), help="overrides [agent] log_format")
    g = p.add_argument_group("time scale (demos and simulations)")
    g.add_argument("--time-scale", type=float, default=1.0, metavar="S",
                   help="run the agent clock S times faster than wall time (default 1; 1e-9 to 1000)")
    g.add_argument("--time-origin-ms", type=int, default=None, metavar="T",
                   help="origin of the scaled clock, ms since the epoch; host and desks use the same T")


def overrides_from_args(args: argparse.Namespace) -> dict[str, Any]:
    """The ``table.key`` overrides that command-line flags set (None: not given)."""
    return {
        "desk.site": args.site, "desk.desk": args.desk, "mqtt.url": args.broker, "audio.source": args.audio,
        "audio.loop": args.loop, "audio.speed": args.speed, "headset.port": args.headset,
        "agent.state_dir": getattr(args, "state_dir", None), "calibration.file": getattr(args, "calibration", None),
        "agent.log_level": getattr(args, "log_level", None), "agent.log_format": getattr(args, "log_format", None),
    }


def mock_pin_factory() -> Any:
    """gpiozero's MockFactory with PWM pins whose state history is bounded (long demo runs)."""
    from device.outputs.leds import mock_pin_factory as bounded

    return bounded()


def run(args: argparse.Namespace) -> int:
    from device.service import AgentService

    refuse_empty(("--config", args.config, "empty path (leave it out for defaults and flags only)"),
                 ("--state-dir", args.state_dir, "empty path"), ("--calibration", args.calibration, "empty path"))
    try:
        check_time_flags(args.time_scale, args.time_origin_ms)
    except ValueError as exc:
        raise UsageError(str(exc)) from None
    lo, hi = SPEED_RANGE
    if args.speed is not None and not lo <= args.speed <= hi:  # also nan and inf
        raise UsageError(f"--speed must be a number from {lo:g} to {hi:g} (x real time), not {args.speed!r}")
    config = load_config(args.config, overrides_from_args(args))
    logs.setup(config.agent.log_level, config.agent.log_format)
    clock = make_clock(args.time_scale, args.time_origin_ms)
    service = AgentService(config, clock, pin_factory=mock_pin_factory() if args.mock_gpio else None)

    with stop_on_signals(service.stop):
        stacks_on_sigusr1()
        service.run()
    return 0
