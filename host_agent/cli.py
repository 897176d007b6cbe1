"""``headset-host``: the host aggregator command. A thin dispatch over ``host_agent.commands``.

This is the one place where errors become exit codes: 0 ok, 1 error, 2 usage error,
130 interrupted.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence

from host_agent.errors import HostError as AgentError
from host_agent.errors import UsageError

PROG = "headset-host"
# name -> (module in host_agent.commands, one-line help)
COMMANDS: dict[str, tuple[str, str]] = {
    "run": ("run", "run the aggregator: ingest, alerts, history, dashboard, /metrics"),
    "demo": ("demo", "end-to-end demo: embedded broker, host, dashboard and virtual desks"),
    "report": ("report", "daily per-desk report from minute rollups (table, csv, json, html)"),
    "silence": ("silence", "silences: add, list, expire or extend them"),
}
EPILOG = """examples:
  headset-host demo --duration 90
  headset-host run --config /etc/headset-coach/host.toml
  headset-host report --site site1 --date 2026-11-22 --format html > report.html
"""


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog=PROG,
        description="Host aggregator of the headset coach: ingest, alerts, history, reports, dashboard.",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for name, (module_name, help_text) in COMMANDS.items():
        module = importlib.import_module(f"host_agent.commands.{module_name}")
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
    except OSError as exc:  # a file the command did not expect to fail on; the message names it
        print(f"{PROG}: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print(f"{PROG}: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
