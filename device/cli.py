"""``headset-agent``: the desk-unit command. A thin dispatch over ``device.commands``.

This is the one place where errors become exit codes: 0 ok, 1 error, 2 usage error,
130 interrupted.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence

from device.errors import AgentError, UsageError

PROG = "headset-agent"
# name -> (module in device.commands, one-line help)
COMMANDS: dict[str, tuple[str, str]] = {
    "run": ("run", "run the desk agent service (audio, headset link, cues, MQTT)"),
    "analyze": ("analyze", "analyse recordings offline: speech time, syllables, rate, level, distance"),
    "calibrate": ("calibrate", "make a headset calibration from a recording at a known distance"),
    "calibrate-posture": ("calibrate_posture", "take the current head pose as the agent's upright pose"),
    "selftest": ("selftest", "cycle every LED and check mic, headset link and broker"),
    "status": ("status", "live terminal view of a desk's measures and cues"),
}
EPILOG = """examples:
  headset-agent analyze --json call.wav
  headset-agent calibrate rig-5cm.wav --distance-cm 5 --out headset.toml
  headset-agent run --config /etc/headset-coach/agent.toml
"""


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog=PROG,
        description="Desk-unit agent of the headset coach.",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for name, (module_name, help_text) in COMMANDS.items():
        module = importlib.import_module(f"device.commands.{module_name}")
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
