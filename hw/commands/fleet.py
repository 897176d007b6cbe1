"""Every desk of a site (or of all sites) as the broker holds it: status, headset id, headset firmware,
last seen (the time of the desk's last state message) and applied config hash, read from the
retained state messages. Firmware older than this headset-flash's firmware is flagged ("older";
versions are compared as versions: 1.10.0 is newer than 1.9.2). Read only: nothing is published.

The broker user needs read access to hsc/v1/SITE/+/state (the host's user from provision-host has
it). The password can come from $HSC_MQTT_PASSWORD instead of --password."""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

from device.config.mqtt_settings import MqttSettings
from device.errors import ConfigError
from hw.commands import MAX_WAIT_S, check_ids, check_seconds
from hw.errors import FlashError, UsageError
from hw.flashing.fleet import DeskRow, desk_rows, iso_utc, read_states
from hw.flashing.manifest import FIRMWARE_DIR, Manifest
from hw.flashing.table import format_table

EXAMPLE = """example:
  headset-flash fleet --broker mqtt://broker.lan:1883 --site site1
  headset-flash fleet --broker mqtts://broker.lan:8883 --username host.floor --ca-cert ca.crt --json > fleet.json"""

HEADER = ("site", "desk", "status", "headset id", "firmware", "last seen (UTC)", "config hash", "note")


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--broker", required=True, metavar="URL", help="mqtt://host:port or mqtts://host:port")
    parser.add_argument("--site", help="only this site's desks (default: every site)")
    parser.add_argument("--username", help="broker user name")
    parser.add_argument("--password", help="broker password (or set $HSC_MQTT_PASSWORD)")
    parser.add_argument("--ca-cert", type=Path, help="CA certificate of the broker's TLS listener")
    parser.add_argument("--client-cert", type=Path, help="client certificate (with --client-key)")
    parser.add_argument("--client-key", type=Path, help="client private key")
    parser.add_argument("--json", action="store_true", help="print JSON instead of a table")
    parser.add_argument("--timeout", type=float, default=10.0,
                        help=f"seconds to reach the broker and read the states, more than 0 and at most "
                             f"{MAX_WAIT_S:g} (default %(default)s)")
    parser.add_argument("--quiet", type=float, default=0.5, metavar="S",
                        help=f"stop reading after S seconds without a new state message, more than 0 and at most "
                             f"{MAX_WAIT_S:g} (default %(default)s)")
    parser.add_argument("--firmware-dir", default=str(FIRMWARE_DIR), help=argparse.SUPPRESS)


def settings(args: argparse.Namespace) -> MqttSettings:
    password = args.password or os.environ.get("HSC_MQTT_PASSWORD") or None
    for flag, path in (("--ca-cert", args.ca_cert), ("--client-cert", args.client_cert),
                       ("--client-key", args.client_key)):
        if path is not None and not path.is_file():
            raise UsageError(f"{flag}: no such file {str(path)!r}")
    try:
        return MqttSettings(url=args.broker, username=args.username, password=password if args.username else None,
                            ca_cert=args.ca_cert, client_cert=args.client_cert, client_key=args.client_key)
    except ConfigError as exc:
        raise UsageError(str(exc).replace("mqtt.url", "--broker").replace("mqtt.", "--")) from None


def age(ts_ms: int, now_s: float) -> str:
    s = max(0, int(now_s - ts_ms / 1000))
    for unit, n in (("d", 86400), ("h", 3600), ("m", 60)):
        if s >= n:
            return f"{s // n}{unit} ago"
    return f"{s}s ago"


def note(row: DeskRow, latest: str) -> str:
    if row.firmware_older:
        return f"OLDER than {latest}"
    if row.firmware is None:
        return "firmware unknown"
    if row.firmware_older is None:
        return f"firmware version {row.firmware!r} unreadable"
    return ""


def run(args: argparse.Namespace) -> int:
    check_ids(("--site", args.site))
    check_seconds("--timeout", args.timeout)  # the whole read's deadline; the MQTT keepalive follows it
    check_seconds("--quiet", args.quiet)
    s = settings(args)
    manifest = Manifest.load(Path(args.firmware_dir))
    try:
        read = read_states(s, args.site, quiet_s=args.quiet, timeout_s=args.timeout)
    except ConfigError as exc:  # the TLS files given cannot be used (e.g. --ca-cert is no certificate)
        raise FlashError(str(exc)) from None
    for topic, reason in read.rejected:
        print(f"headset-flash: skipped an invalid state message on {topic}: {reason}", file=sys.stderr)
    rows = desk_rows(read, manifest.version)
    older = sum(bool(r.firmware_older) for r in rows)
    if args.json:
        json.dump({"firmware_latest": manifest.version, "desks": [r.as_json() for r in rows]}, sys.stdout, indent=1)
        sys.stdout.write("\n")
        return 0
    if not rows:
        where = f"site {args.site}" if args.site else "any site"
        print(f"no desk of {where} has a retained state on {s.url}")
        return 0
    now = time.time()
    print(format_table(HEADER, [
        (r.site, r.desk, r.status, r.headset_id or "-", r.firmware or "-",
         f"{iso_utc(r.last_seen_ms)} ({age(r.last_seen_ms, now)})", (r.config_hash or "-")[:12], note(r, manifest.version))
        for r in rows]))
    print(f"{len(rows)} desk(s); {older} with headset firmware older than {manifest.version}")
    return 0
