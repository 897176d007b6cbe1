"""``headset-flash``: the facilities command. A thin dispatch over ``hw.commands``.

This is the one place where errors become exit codes: 0 ok, 1 error, 2 usage error,
130 interrupted.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence

from hw.errors import FlashError as AgentError
from hw.errors import UsageError

PROG = "headset-flash"
# name -> (module in hw.commands, one-line help)
COMMANDS: dict[str, tuple[str, str]] = {
    "list": ("list_boards", "list MicroPython boards on serial ports"),
    "flash": ("flash", "flash, verify and self-test headset firmware (one board or a batch)"),
    "verify": ("verify", "compare a board's firmware files with this firmware by SHA-256 (no writes)"),
    "backup": ("backup", "copy every file of a board into a folder"),
    "fleet": ("fleet", "every desk's headset, firmware and config, from the broker's retained state"),
    "inventory": ("inventory", "show, filter or export the flashing inventory"),
    "provision-desk": ("provision_desk", "write a desk unit's agent.toml, broker ACL and credentials"),
    "provision-host": ("provision_host", "write the host's host.toml, broker ACL and credentials"),
    "calibrate-model": ("calibrate_model", "calibrate a headset model from a rig recording"),
    "virtual-headset": ("virtual_headset", "run a virtual headset on a pty (tests, demos, training)"),
}
EPILOG = """examples:
  headset-flash list
  headset-flash flash --all --operator alice
  headset-flash verify --all
  headset-flash fleet --broker mqtt://broker.lan:1883
  headset-flash provision-desk --site site1 --desk d01 --out ./d01
  headset-flash provision-host --name floor --site site1 --out ./host
"""


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog=PROG,
        description="Facilities tool of the headset coach: flash, provision, verify, inventory.",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for name, (module_name, help_text) in COMMANDS.items():
        module = importlib.import_module(f"hw.commands.{module_name}")
        p = sub.add_parser(
            name,
            help=help_text,
            description=(module.__doc__ or help_text).strip(),
            epilog=getattr(module, "EXAMPLE", None),
            formatter_class=argparse.RawDescriptionHelpFormatter,
        )
        module.configure(p)
        p.set_defaults(_run=module.run)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return int(args._run(args) or 0)
    except UsageError as exc:
        print(f"{PROG}: {exc}", file=sys.stderr)
        return 2
    except AgentError as exc:
        print(f"{PROG}: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print(f"{PROG}: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
