"""The demo's call desks (issue 15): real ``headset-agent run`` desks with ``[calls] source = "mqtt"``, rung by
the demo's PBX bridge on their ``cti`` topic, a real mosquitto and the host. Each story fires its rule
(slow-answer, late-greeting, monotone), and the call summaries on the broker say why."""

from __future__ import annotations

import io
import os
from pathlib import Path

import pytest

from host_agent.demo.runner import DemoOptions, Desk, run_demo
from host_agent.demo.scenarios import by_name
from host_agent.demo.table import render
from mqtt_schema import Call
from tests.conftest import Mosquitto
from tests.device.helpers import Capture

STORIES = ("slow-phone", "late-greet", "monotone")


def test_unknown_story_names_are_refused() -> None:
    assert [s.name for s in by_name(["monotone", "calm"])] == ["monotone", "calm"]
    with pytest.raises(ValueError, match=r"unknown demo stories \['nope'\]"):
        by_name(["calm", "nope"])


def test_the_table_shows_the_call_state() -> None:
    class Run:
        story_s, o = 600.0, DemoOptions(duration_s=60)
        desks: list[Desk] = []
        fired_by_desk: dict[str, set[str]] = {}

    base = {"status": "online", "posture": "upright", "cues": ["pace_fast"]}
    desks = [{"desk": "d1", "call": None, **base}, {"desk": "d2", "call": "idle", **base},
             {"desk": "d3", "call": "ringing", "rings": 4, **base},
             {"desk": "d4", "call": "established", "call_s": 65.2, **base}]
    lines = render({"desks": desks}, Run(), 10.0).splitlines()
    at = lines[0].index("call ")  # the column under the header's "call"
    assert [line[at:at + 10].rstrip() for line in lines[1:5]] == ["-", "idle", "ring 4", "call 1:05"]
    assert all(line.endswith("pace_fast") for line in lines[1:5])


@pytest.mark.slow
@pytest.mark.solo
@pytest.mark.needs("mosquitto")
def test_call_desks_fire_slow_answer_late_greeting_and_monotone(tmp_path: Path, mosquitto: Mosquitto) -> None:
    cap = Capture(mosquitto.port, "demo", client_id="demo-calls-capture")
    try:
        opts = DemoOptions(duration_s=float(os.environ.get("HSC_DEMO_CALLS_S", "55")), time_scale=24.0,
                           broker_url=mosquitto.url, dashboard_port=0, workdir=tmp_path / "demo", live=False,
                           stories=STORIES)
        out, err = io.StringIO(), io.StringIO()
        result = run_demo(opts, out=out, err=err)
    finally:
        cap.close()
    assert result.ok, f"stories without their alert: {result.missing}\n{err.getvalue()[-2000:]}"
    assert result.expected == {"desk-01": "slow-answer", "desk-02": "late-greeting", "desk-03": "monotone"}
    for log in sorted((tmp_path / "demo").glob("desk-*.log")):
        assert "Traceback" not in log.read_text(errors="replace"), log.name
    calls: dict[str, list[Call]] = {}
    for c in cap.of(Call):
        calls.setdefault(c.desk, []).append(c)
    assert all(len(calls.get(d, [])) >= 2 for d in result.expected), {d: len(v) for d, v in calls.items()}
    assert all(c.source == "mqtt" and c.rings_counted and c.answered for v in calls.values() for c in v)
    slow, late, flat = calls["desk-01"], calls["desk-02"], calls["desk-03"]
    # the story's first half: the phone rings 6 times; the greetings come seconds after the pick-up;
    # a voice without pitch movement (its F0 spread under the 2.5 semitone threshold)
    assert slow[0].rings is not None and slow[0].rings >= 6 and slow[0].answer_ok is False
    assert late[0].greeting_latency_s is not None and late[0].greeting_latency_s > 3.0 and late[0].greeting_ok is False
    assert flat[0].intonation_st is not None and flat[0].intonation_st < 2.5 and flat[0].monotone_share
    # and nothing else was wrong with those calls
    assert slow[0].greeting_ok and late[0].answer_ok and flat[0].answer_ok and flat[0].greeting_ok
