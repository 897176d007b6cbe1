"""Run the host aggregator: subscribe to the desks of the configured sites, keep per-desk state,
raise and publish alerts, store history, and serve the dashboard and /metrics until stopped
(Ctrl-C or SIGTERM)."""

from __future__ import annotations

import argparse
import logging
import sys
import threading

from host_agent.config import load_config
from host_agent.history import redact
from host_agent.service import HostService
from host_agent.timeflags import add_time_flags, clock_from_args
from mqtt_schema.process_signals import stacks_on_sigusr1, stop_on_signals

EXAMPLE = """example:
  headset-host run --config /etc/headset-coach/host.toml --site site1 --site site2"""


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--config", required=True, help="host config TOML (broker, sites, db, dashboard, rules)")
    parser.add_argument("--site", action="append", default=[], metavar="SITE",
                        help="follow this site (repeatable); overrides host.sites")
    parser.add_argument("-v", "--verbose", action="store_true", help="log every connection and rule change")
    add_time_flags(parser)


def run(args: argparse.Namespace) -> int:
    logging.basicConfig(level=logging.INFO if args.verbose else logging.WARNING, stream=sys.stderr,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    config = load_config(args.config)
    if args.site:
        config = config.with_sites(args.site)
    clock = clock_from_args(args)
    stop = threading.Event()
    with stop_on_signals(stop.set), HostService(config, clock) as service:
        stacks_on_sigusr1()
        sites = ", ".join(config.sites) or "every site"
        print(f"headset-host: following {sites} on {config.broker.url}; history in {redact(config.db)}", file=sys.stderr)
        if service.dashboard_url:
            print(f"headset-host: dashboard {service.dashboard_url}  metrics {service.dashboard_url}metrics",
                  file=sys.stderr)
        while not stop.wait(1.0):
            pass
        s = service.summary()
        print(f"headset-host: stopped after {s.messages_in} messages ({sum(s.rejected.values())} rejected), "
              f"{sum(s.fired.values())} alerts fired", file=sys.stderr)
    return 0
