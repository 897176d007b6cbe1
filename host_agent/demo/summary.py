"""The demo's closing summary: alerts per rule, messages, and each scenario's verdict."""

from __future__ import annotations

from typing import TextIO

from host_agent.demo.runner import DemoResult


def print_summary(result: DemoResult, out: TextIO) -> None:
    s = result.summary
    rules = sorted(set(s.fired) | set(s.resolved) | set(s.firing_now))
    out.write("\nalerts by rule:\n")
    out.write(f"  {'rule':<14} {'fired':>5} {'resolved':>8} {'firing':>6}\n")
    for r in rules:
        out.write(f"  {r:<14} {s.fired.get(r, 0):>5} {s.resolved.get(r, 0):>8} {s.firing_now.get(r, 0):>6}\n")
    rejected = sum(s.rejected.values())
    out.write(f"\nmessages in: {s.messages_in}, rejected: {rejected}"
              + (f" ({', '.join(f'{k} {v}' for k, v in sorted(s.rejected.items()))})" if rejected else "") + "\n")
    out.write("\nscenarios:\n")
    for desk, rule in sorted(result.expected.items()):
        ok = rule in result.fired_by_desk.get(desk, set())
        out.write(f"  {desk}: expected {rule:<14} {'fired' if ok else 'NOT FIRED'}\n")
    out.write(f"\n{'every scenario produced its expected alert' if result.ok else 'some scenarios failed'}\n")
    out.flush()
