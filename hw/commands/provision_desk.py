"""Provision a desk unit: write its agent.toml ([mqtt] url/username/password, [desk] site/desk),
a mosquitto password-file line (PBKDF2-SHA512, $7$) and ACL lines (the desk may write only its own
state/metrics/event/minute topics and read only its own config topic), and optionally a TLS client
certificate signed by the site CA. Append mosquitto.passwd and mosquitto.acl to the broker's files.

With --ca-cert/--ca-key the broker URL must be mqtts:// (the broker's TLS listener); a plain
mqtt:// URL is refused rather than rewritten. Nothing is written when an input is refused."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from hw.commands import check_ids, refuse_empty
from hw.errors import ProvisionError, UsageError
from hw.flashing.provision import provision_desk, tls_and_broker

EXAMPLE = """example:
  headset-flash provision-desk --site site1 --desk d01 --out ./d01 --broker mqtt://broker.lan:1883
  headset-flash provision-desk --site site1 --desk d02 --out ./d02 --ca-cert ca.crt --ca-key ca.key \
      --broker mqtts://broker.lan:8883"""


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--site", required=True, help="site id ([a-z0-9-]{1,32})")
    parser.add_argument("--desk", required=True, help="desk id ([a-z0-9-]{1,32})")
    parser.add_argument("--out", required=True, help="folder to write the desk's files into")
    add_broker_options(parser, "agent.toml")
    parser.add_argument("--force", action="store_true", help="replace an existing agent.toml (new password)")


def add_broker_options(parser: argparse.ArgumentParser, toml_name: str) -> None:
    """``--broker``, ``--ca-cert`` and ``--ca-key``: shared by provision-desk and provision-host."""
    parser.add_argument("--broker", default=None,
                        help=f"broker URL for {toml_name}, mqtt://host:port or mqtts://host:port (default "
                             "mqtt://localhost:1883, or mqtts://localhost:8883 with --ca-cert); written as given")
    parser.add_argument("--ca-cert", help="site CA certificate (PEM) to sign a client certificate")
    parser.add_argument("--ca-key", help="site CA private key (PEM, unencrypted)")


def check_broker_options(args: argparse.Namespace) -> tuple[Path, Path | None, Path | None]:
    """``--out``, ``--broker``, ``--ca-cert`` and ``--ca-key`` (of provision-desk and provision-host) checked
    as command-line values: a :class:`UsageError` naming the flag for an empty one, a broker URL the agent
    would refuse, or flags that do not go together. Returns the paths (out, CA certificate, CA key)."""
    refuse_empty(("--out", args.out, "empty path"), ("--ca-cert", args.ca_cert, "empty path"),
                 ("--ca-key", args.ca_key, "empty path"))
    out = Path(args.out)
    ca_cert = None if args.ca_cert is None else Path(args.ca_cert)
    ca_key = None if args.ca_key is None else Path(args.ca_key)
    try:
        tls_and_broker(ca_cert, ca_key, args.broker)
    except ProvisionError as exc:  # its message names the flag
        raise UsageError(str(exc)) from None
    return out, ca_cert, ca_key


def run(args: argparse.Namespace) -> int:
    check_ids(("--site", args.site), ("--desk", args.desk))
    out, ca_cert, ca_key = check_broker_options(args)
    p = provision_desk(args.site, args.desk, out, broker_url=args.broker, ca_cert=ca_cert, ca_key=ca_key,
                       force=args.force)
    for f in p.files:
        print(f)
    print(f"desk {args.site}/{args.desk}: broker user {p.username}; append {out}/mosquitto.passwd and "
          f"{out}/mosquitto.acl to the broker's password and ACL files", file=sys.stderr)
    return 0
