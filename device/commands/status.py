"""Live terminal view of one desk's measures, cues and events, read from the broker.

Subscribes to the desk's state, metrics, event and minute topics. ``--once`` waits for the
first metrics (or ``--timeout``) and prints one snapshot.
"""

from __future__ import annotations

import argparse
import sys
import threading
import time
from typing import Any

from device.commands import refuse_empty
from device.errors import AgentError, UsageError

MAX_TIMEOUT_S = 3600.0
"""The longest ``--timeout`` (an hour; NaN or inf is never a wait)."""
EXAMPLE = """example:
  headset-agent status --config /etc/headset-coach/agent.toml
  headset-agent status --broker mqtt://broker:1883 --site site1 --desk desk-07 --once
"""


def configure(p: argparse.ArgumentParser) -> None:
    p.add_argument("--config", metavar="FILE", help="agent.toml: broker and desk ids")
    p.add_argument("--broker", metavar="URL", help="mqtt://host:port (overrides the config)")
    p.add_argument("--site", help="site id")
    p.add_argument("--desk", help="desk id")
    p.add_argument("--once", action="store_true", help="print one snapshot once metrics arrive, then exit")
    p.add_argument("--timeout", type=float, default=10.0, metavar="S",
                   help="--once: seconds to wait for metrics (default 10)")


def _settings(args: argparse.Namespace) -> tuple[Any, str, str]:
    from device.config.agent import load_config

    refuse_empty(("--config", args.config, "empty path"))
    if not 0 < args.timeout <= MAX_TIMEOUT_S:  # also nan and inf (a wait of inf overflows)
        raise UsageError(f"--timeout must be a number of seconds more than 0 and at most {MAX_TIMEOUT_S:g}, "
                         f"not {args.timeout!r}")
    if args.config is None and (args.broker is None or args.site is None or args.desk is None):
        raise UsageError("give --config FILE, or --broker URL --site S --desk D")
    cfg = load_config(args.config, {"mqtt.url": args.broker, "desk.site": args.site, "desk.desk": args.desk,
                                    "headset.port": None if args.config else "none"})
    return cfg.mqtt, cfg.desk.site, cfg.desk.desk


def run(args: argparse.Namespace) -> int:
    import paho.mqtt.client as mqtt

    from device.commands.desk_view import DeskView
    from mqtt_schema import DeskKind, SchemaError, decode_topic, desk_filter

    settings, site, desk = _settings(args)
    view = DeskView(site, desk)
    lock = threading.Lock()
    got_metrics = threading.Event()
    changed = threading.Event()
    errors: list[str] = []

    def on_connect(client: mqtt.Client, userdata: Any, flags: Any, reason: Any, props: Any) -> None:
        if reason.is_failure:
            errors.append(f"the broker {settings.url} refused the connection: {reason}")
            return
        for kind in (DeskKind.STATE, DeskKind.METRICS, DeskKind.EVENT, DeskKind.MINUTE):
            client.subscribe(desk_filter(site, desk, kind), qos=1)

    def on_message(client: mqtt.Client, userdata: Any, msg: mqtt.MQTTMessage) -> None:
        try:
            _, message = decode_topic(msg.topic, msg.payload)
        except SchemaError:
            return
        with lock:
            view.apply(message)
        if msg.topic.endswith("/metrics"):
            got_metrics.set()
        changed.set()

    client = settings.new_client()
    client.on_connect = on_connect
    client.on_message = on_message
    try:
        client.connect(settings.host, settings.port, keepalive=30)
    except OSError as exc:
        raise AgentError(f"cannot reach the broker {settings.url}: {exc}") from None
    client.loop_start()
    try:
        if args.once:
            if not got_metrics.wait(args.timeout):
                with lock:
                    text = view.render()
                sys.stdout.write(text)
                raise AgentError(errors[0] if errors else
                                 f"no metrics from {site}/{desk} within {args.timeout:g} s (is its agent running?)")
            time.sleep(0.2)  # the events published alongside
            with lock:
                sys.stdout.write(view.render())
            return 0
        tty = sys.stdout.isatty()
        while True:
            changed.wait(1.0)
            changed.clear()
            if errors:
                raise AgentError(errors[0])
            with lock:
                text = view.render()
            sys.stdout.write(("\x1b[H\x1b[2J" if tty else "") + text + ("" if tty else "\n"))
            sys.stdout.flush()
    finally:
        client.loop_stop()
        client.disconnect()
