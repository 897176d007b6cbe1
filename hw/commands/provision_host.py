"""Provision the host (headset-host): write its host.toml ([broker] url/username/password, plus
ca_cert/client_cert/client_key with TLS; [host] sites), a mosquitto password-file line (PBKDF2-SHA512, $7$)
and ACL lines, and optionally a TLS client certificate (CN host.NAME) signed by the site CA. Append
mosquitto.passwd and mosquitto.acl to the broker's files.

The host's ACL, per --site: read every desk's state/metrics/event/minute, read and write every desk's
config and the retained alerts, write the alert log. Nothing of other sites, and desks cannot do the
host's writes (their own ACL lets them write only their own topics).

With --ca-cert/--ca-key the broker URL must be mqtts:// (the broker's TLS listener). Nothing is
written when an input is refused, and no existing file is replaced without --force."""

from __future__ import annotations

import argparse
import sys

from hw.commands import check_ids
from hw.commands.provision_desk import add_broker_options, check_broker_options
from hw.flashing.provision import provision_host

EXAMPLE = """example:
  headset-flash provision-host --name floor --site site1 --out ./host --broker mqtt://broker.lan:1883
  headset-flash provision-host --name floor --site site1 --site site2 --out ./host \\
      --ca-cert ca.crt --ca-key ca.key --broker mqtts://broker.lan:8883"""


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--name", required=True, help="host name ([a-z0-9-]{1,32}); the broker user is host.NAME")
    parser.add_argument("--site", required=True, action="append", dest="sites", metavar="SITE",
                        help="a site the host follows (repeat for several)")
    parser.add_argument("--out", required=True, help="folder to write the host's files into")
    add_broker_options(parser, "host.toml")
    parser.add_argument("--force", action="store_true",
                        help="replace existing files in --out (new password, new certificate)")


def run(args: argparse.Namespace) -> int:
    check_ids(("--name", args.name), *(("--site", site) for site in args.sites))
    out, ca_cert, ca_key = check_broker_options(args)
    p = provision_host(args.name, args.sites, out, broker_url=args.broker, ca_cert=ca_cert, ca_key=ca_key,
                       force=args.force)
    for f in p.files:
        print(f)
    print(f"host {args.name}: broker user {p.username}; append {out}/mosquitto.passwd and "
          f"{out}/mosquitto.acl to the broker's password and ACL files", file=sys.stderr)
    return 0
