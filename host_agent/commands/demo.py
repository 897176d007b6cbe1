"""Run the end-to-end demo on embedded defaults: an amqtt broker in-process, the host with its
dashboard, and N virtual desks, each the real headset-agent with a file audio source, MockFactory
LEDs and a virtual headset on a pty. The desks play scenarios (a calm agent whose desk is unplugged,
too loud, too fast, mic too far, slouching, a long break; and three call desks rung by a PBX bridge:
answered late, greeted late, a monotone voice) and the expected alerts fire.

Exits 0 only if every scenario produced its expected alert."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from host_agent.errors import HostError, UsageError

EXAMPLE = """examples:
  headset-host demo                       # runs until Ctrl-C; open the dashboard URL it prints
  headset-host demo --duration 90         # stops by itself and prints a summary
  headset-host demo --broker mqtt://127.0.0.1:1883 --desks 12 --time-scale 30
"""


def configure(p: argparse.ArgumentParser) -> None:
    p.add_argument("--duration", type=float, metavar="S", help="stop after S wall seconds and print a summary")
    p.add_argument("--desks", type=int, default=9, metavar="N", help="number of virtual desks (default 9)")
    p.add_argument("--time-scale", type=float, default=20.0, metavar="X",
                   help="floor time runs X times faster than the wall clock (default 20)")
    p.add_argument("--broker", metavar="URL", help="use this broker (mqtt://host:port) instead of the embedded one")
    p.add_argument("--port", type=int, default=8080, help="dashboard port on 127.0.0.1 (0 picks a free one)")
    p.add_argument("--allowed-break", type=float, default=180.0, metavar="S",
                   help="the demo site's allowed break in floor seconds (default 180)")
    p.add_argument("--workdir", type=Path, help="keep the run's files (logs, database) here")


def run(args: argparse.Namespace) -> int:
    from host_agent.demo.runner import DemoOptions, run_demo
    from host_agent.demo.summary import print_summary

    if args.duration is not None and args.duration <= 0:
        raise UsageError("--duration must be a positive number of seconds")
    if not 1 <= args.desks <= 64:
        raise UsageError("--desks must be between 1 and 64")
    if not 0 < args.time_scale <= 200:
        raise UsageError("--time-scale must be in (0, 200]")
    opts = DemoOptions(desks=args.desks, duration_s=args.duration, time_scale=args.time_scale,
                       broker_url=args.broker, dashboard_port=args.port, allowed_break_s=args.allowed_break,
                       workdir=args.workdir)
    result = run_demo(opts)
    print_summary(result, sys.stdout)
    if not result.ok:
        missing = ", ".join(f"{d} ({r})" for d, r in sorted(result.missing.items()))
        raise HostError(f"expected alerts that did not fire: {missing}")
    return 0
