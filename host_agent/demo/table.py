"""The demo's terminal view: one row per desk, then the alerts, then progress."""

from __future__ import annotations

from typing import Any, Protocol


class _Run(Protocol):
    story_s: float
    o: Any
    desks: list[Any]
    fired_by_desk: dict[str, set[str]]


def _num(value: object, fmt: str) -> str:
    return format(value, fmt) if isinstance(value, (int, float)) else "-"


def _call(d: dict[str, Any]) -> str:
    """``-`` (no call source), ``idle``, ``ring 3`` or ``call 1:05`` (floor time in the call)."""
    call = d.get("call")
    if call == "ringing":
        return f"ring {d.get('rings') or 1}"
    if call == "established":
        s = int(d.get("call_s") or 0)
        return f"call {s // 60}:{s % 60:02d}"
    return str(call) if call else "-"


def render(snap: dict[str, Any], run: _Run, elapsed_s: float) -> str:
    """A plain-text table of desks and alerts (no colours, so it reads the same in a log)."""
    scenario = {d.desk_id: d.scenario.name for d in run.desks}
    lines = [f"{'desk':<8} {'story':<10} {'status':<8} {'worn':<5} {'posture':<9} {'level':>6} {'rate':>5} "
             f"{'dist':>5} {'call':<10} cues"]
    for d in snap.get("desks", []):
        worn = {True: "on", False: "off"}.get(d.get("worn"), "?")
        if d.get("worn") is False and d.get("off_s"):
            worn = f"off {d['off_s'] / 60:.0f}m"
        lines.append(
            f"{d['desk']:<8} {scenario.get(d['desk'], ''):<10} {d['status']:<8} {worn:<5} {d['posture']:<9} "
            f"{_num(d.get('level_dbov'), '6.1f'):>6} {_num(d.get('rate_spm'), '5.0f'):>5} "
            f"{_num(d.get('distance_cm'), '5.1f'):>5} {_call(d):<10} {' '.join(d.get('cues', [])) or '-'}"
        )
    alerts = [a for a in snap.get("alerts", []) if a.get("state") == "firing"]
    lines.append("")
    lines.append(f"alerts firing: {len(alerts)}")
    for a in alerts:
        level = f" level {a['level']}" if a.get("level") else ""
        lines.append(f"  {a['desk']:<8} {a['rule']:<14}{level:<9} {a.get('summary', '')}")
    duration = run.o.duration_s
    stats = snap.get("stats", {})
    story_min = run.story_s * min(1.0, elapsed_s / duration) / 60 if duration else elapsed_s * run.o.time_scale / 60
    progress = f"{elapsed_s:5.0f}/{duration:.0f} s" if duration else f"{elapsed_s:5.0f} s (Ctrl-C stops)"
    done = sum(1 for d in run.desks if d.scenario.expect_rule in run.fired_by_desk.get(d.desk_id, set()))
    lines.append("")
    lines.append(f"{progress}  floor time {story_min:5.1f} min  expected alerts seen {done}/{len(run.desks)}  "
                 f"messages in {stats.get('messages_in', 0)}  rejected {stats.get('rejected', 0)}")
    return "\n".join(lines) + "\n"
