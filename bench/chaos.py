"""Chaos bench: the fault matrix of ``tests/system/test_fault_matrix.py``, run longer, with random timing.

For every selected fault: a fresh rig (a real mosquitto, ``headset-host run`` and 1..2 ``headset-agent run``
desks on a 20x clock, see ``tests/system/fault_outcome.py``), then ``--rounds`` rounds of: a random wait,
the fault with a random hold, the time until the desk's next message reaches the host's history, a minute
more, and the judgement of everything so far against the desks' own logs of what is durable. A round is
survived when the pipeline recovered, nothing durable is missing at the host, nothing is stored twice,
no minute is missing from a boot's run and the alerts agree with the broker's retained ones. At the end
every process must exit 0 on SIGTERM within 20 s.

Prints a table (stdout): fault, rounds survived, durable events and minutes, lost, duplicated, minute
gaps, recovery time (from the fault's end to the first new message of the desk at the host: median and
max, seconds). Progress goes to stderr. Exit status 1 when anything was lost, duplicated, missing or hung.
Needs mosquitto, and root for the full-disk fault (a tmpfs mount).
"""

from __future__ import annotations

import argparse
import random
import shutil
import statistics
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from tests.system.fault_outcome import FAULTS, Rig, prepare_disk  # noqa: E402

EXAMPLE = """example:
  .venv/bin/python bench/chaos.py --seed 7 --rounds 5
  .venv/bin/python bench/chaos.py --seed 1 --rounds 20 --faults host-kill9,broker-kill9-persist --keep

faults: """ + ", ".join(FAULTS)


@dataclass
class Row:
    fault: str
    rounds: int = 0
    survived: int = 0
    events: int = 0
    minutes: int = 0
    lost: int = 0
    exposed_lost: int = 0
    duplicated: int = 0
    gaps: int = 0
    recovery_s: list[float] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    @property
    def bad(self) -> bool:
        return bool(self.lost or self.duplicated or self.gaps or self.survived < self.rounds or self.notes)


def say(text: str) -> None:
    print(f"[chaos {time.strftime('%H:%M:%S')}] {text}", file=sys.stderr, flush=True)


def run_fault(name: str, rounds: int, rng: random.Random, work: Path, args: argparse.Namespace) -> Row:
    spec = FAULTS[name]
    row = Row(name)
    rig = Rig(work / name, spec.desks, spec.persistence)
    try:
        if spec.needs_disk and not prepare_disk(rig):
            row.notes.append("skipped: cannot mount a tmpfs (needs root)")
            return row
        rig.start()
        rig.warm_up()
        for i in range(1, rounds + 1):
            row.rounds = i
            wait = rng.uniform(args.wait_min, args.wait_max)
            hold = rng.uniform(args.hold_min, args.hold_max)
            time.sleep(wait)  # random fault timing
            try:
                rec = spec.inject(rig, rng, hold)
                recovery = rig.recovery_s(rec, deadline_s=60)
                row.recovery_s.append(recovery)
                rig.settle(more_minutes=1, deadline_s=60)
                rig.host_has_every_durable(10)
                problems = rig.alerts_consistent(10)
            except TimeoutError as exc:
                row.notes.append(f"round {i}: {exc}")
                say(f"{name} round {i}/{rounds}: FAILED: {exc}")
                break
            out = rig.outcome(until=time.time() - 3.0)  # what was logged a moment ago may be on its way
            ok = out.lost == 0 and out.duplicated == 0 and out.gaps == 0 and not problems
            row.survived += ok
            say(f"{name} round {i}/{rounds}: wait {wait:.1f} s, hold {hold:.1f} s, recovery {recovery:.2f} s, "
                f"durable {out.durable}, lost {out.lost} (+{out.exposed_lost} exposed), dup {out.duplicated}, "
                f"gaps {out.gaps}{'' if not problems else f', alerts: {problems}'}")
            if problems:
                row.notes.append(f"round {i}: {'; '.join(problems)}")
        rcs = rig.stop(deadline_s=20)
        hung = {k: v for k, v in rcs.items() if v != 0}
        if hung:
            row.notes.append(f"exit codes at SIGTERM (hung: killed after 20 s): {hung}")
        out = rig.outcome()
        row.events = sum(d.events for d in out.desks.values())
        row.minutes = sum(d.minutes for d in out.desks.values())
        row.lost, row.exposed_lost = out.lost, out.exposed_lost
        row.duplicated, row.gaps = out.duplicated, out.gaps
        tracebacks = sum(len(d.tracebacks) for d in out.desks.values())
        if tracebacks:
            row.notes.append(f"{tracebacks} traceback(s) in desk logs")
        if rig.host.tracebacks():
            row.notes.append(f"{rig.host.tracebacks()} traceback(s) in the host's log")
        say(f"{name}: done: {out.describe()}")
    except Exception as exc:  # a rig that cannot even start: reported in the table
        row.notes.append(f"{type(exc).__name__}: {exc}")
        say(f"{name}: ERROR {exc}")
    finally:
        rig.kill_all()
    return row


def table(rows: list[Row]) -> str:
    head = ["fault", "rounds survived", "events (durable)", "minutes (durable)", "lost", "duplicated",
            "minute gaps", "recovery median s", "recovery max s"]
    lines = [head]
    for r in rows:
        med = f"{statistics.median(r.recovery_s):.2f}" if r.recovery_s else "-"
        mx = f"{max(r.recovery_s):.2f}" if r.recovery_s else "-"
        lost = str(r.lost) + (f" (+{r.exposed_lost} in window)" if r.exposed_lost else "")
        lines.append([r.fault, f"{r.survived}/{r.rounds}", str(r.events), str(r.minutes), lost, str(r.duplicated),
                      str(r.gaps), med, mx])
    widths = [max(len(line[i]) for line in lines) for i in range(len(head))]
    out = []
    for n, line in enumerate(lines):
        out.append("| " + " | ".join(c.ljust(w) for c, w in zip(line, widths, strict=True)) + " |")
        if n == 0:
            out.append("|" + "|".join("-" * (w + 2) for w in widths) + "|")
    return "\n".join(out)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="bench/chaos.py", description=__doc__.split("\n\n")[0],
                                epilog=EXAMPLE, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--seed", type=int, default=13, help="random seed of the fault timing (default 13)")
    p.add_argument("--rounds", type=int, default=5, help="rounds per fault (default 5)")
    p.add_argument("--faults", default=",".join(FAULTS), help="comma-separated faults (default: all)")
    p.add_argument("--wait-min", type=float, default=0.5, help="wall s before a fault, at least (default 0.5)")
    p.add_argument("--wait-max", type=float, default=6.0, help="wall s before a fault, at most (default 6)")
    p.add_argument("--hold-min", type=float, default=0.5, help="wall s a fault is held, at least (default 0.5)")
    p.add_argument("--hold-max", type=float, default=4.0, help="wall s a fault is held, at most (default 4)")
    p.add_argument("--workdir", type=Path, help="where the rigs live (default: a temp folder, removed)")
    p.add_argument("--keep", action="store_true", help="keep the work folder (logs, databases)")
    args = p.parse_args(argv)
    faults = [f.strip() for f in args.faults.split(",") if f.strip()]
    unknown = [f for f in faults if f not in FAULTS]
    if unknown:
        p.error(f"unknown fault(s) {', '.join(unknown)}; choose from {', '.join(FAULTS)}")
    if args.rounds < 1:
        p.error("--rounds must be at least 1")
    if not (0 <= args.wait_min <= args.wait_max and 0 <= args.hold_min <= args.hold_max):
        p.error("need 0 <= --wait-min <= --wait-max and 0 <= --hold-min <= --hold-max")
    work = args.workdir or Path(tempfile.mkdtemp(prefix="hsc-chaos-"))
    work.mkdir(parents=True, exist_ok=True)
    rng = random.Random(args.seed)
    say(f"seed {args.seed}, {args.rounds} round(s) of {', '.join(faults)}; work folder {work}")
    t0 = time.monotonic()
    rows = [run_fault(f, args.rounds, random.Random(rng.random()), work, args) for f in faults]
    print(f"chaos: seed {args.seed}, {args.rounds} rounds per fault, {time.monotonic() - t0:.0f} s")
    print(table(rows))
    for r in rows:
        for n in r.notes:
            print(f"{r.fault}: {n}")
    if not args.keep and args.workdir is None:
        shutil.rmtree(work, ignore_errors=True)
    elif args.keep:
        say(f"kept {work}")
    return 1 if any(r.bad for r in rows) else 0


if __name__ == "__main__":
    sys.exit(main())
