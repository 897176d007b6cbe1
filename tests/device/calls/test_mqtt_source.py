"""The ``mqtt`` call source (CTI from a PBX or softphone bridge), fed as the agent's publisher feeds it."""

from __future__ import annotations

from device.calls import MqttCallSource, open_source, parse_source
from device.calls.measures import measure_call
from device.calls.state import CallPhase, Direction
from device.clock import ManualClock
from mqtt_schema import CallDirection, Cti, CtiPhase

T0 = 1_795_000_000_000


def cti(phase: CtiPhase, call_id: str = "pbx-1", **kw: object) -> Cti:
    return Cti(site="s1", desk="d1", ts=5, call_id=call_id, phase=phase, **kw)  # type: ignore[arg-type]


def test_parse_and_open() -> None:
    assert parse_source("mqtt") == ("mqtt", "", 0)
    src = open_source("mqtt", clock=ManualClock(T0), site="s1", desk="d1")
    assert isinstance(src, MqttCallSource) and src.name == "mqtt" and not src.connected
    src.set_connected(True)
    assert src.connected


def test_phases_are_stamped_on_arrival_and_repeats_ignored() -> None:
    clock = ManualClock(T0)
    src = MqttCallSource("s1", "d1", clock=clock).start()
    assert src.receive(cti(CtiPhase.RINGING, direction=CallDirection.INCOMING)) is not None
    assert src.receive(cti(CtiPhase.RINGING)) is None  # a bridge that repeats itself
    clock.advance(7.5)
    est = src.receive(cti(CtiPhase.ESTABLISHED, rings=2))
    assert est is not None and est.established_ms == T0 + 7500 and est.ringing_ms == T0 and est.rings == 2
    assert src.current().phase is CallPhase.ESTABLISHED
    clock.advance(30)
    closed = src.receive(cti(CtiPhase.CLOSED, reason="hangup"))
    assert closed is not None and closed.closed_ms == T0 + 37_500 and closed.reason == "hangup"
    assert src.receive(cti(CtiPhase.ESTABLISHED)) is None  # late news of a closed call
    assert [s.phase for s in src.events()] == [CallPhase.RINGING, CallPhase.ESTABLISHED, CallPhase.CLOSED]
    m = measure_call(closed, [(T0 + 8000, False), (T0 + 9000, True)])
    assert m.rings == 2 and m.rings_counted and m.answer_ok is True and m.greeting_latency_s == 0.5
    assert src.received == 5


def test_an_outgoing_call_may_start_established_and_another_desk_is_refused() -> None:
    clock = ManualClock(T0)
    src = MqttCallSource("s1", "d1", clock=clock)
    st = src.receive(cti(CtiPhase.ESTABLISHED, direction=CallDirection.OUTGOING))
    assert st is not None and st.direction is Direction.OUTGOING and st.ringing_ms is None
    other = Cti(site="s1", desk="d2", ts=1, call_id="x", phase=CtiPhase.RINGING)
    assert src.receive(other) is None and src.refused == 1


def test_a_call_whose_close_never_comes_is_closed_as_source_lost() -> None:
    clock = ManualClock(T0)
    src = MqttCallSource("s1", "d1", clock=clock, stale_after_s=60)
    src.receive(cti(CtiPhase.ESTABLISHED))
    clock.advance(59)
    assert src.tick() == []
    clock.advance(1)
    (closed,) = src.tick()
    assert closed.phase is CallPhase.CLOSED and closed.reason == "source-lost" and closed.closed_ms == T0 + 60_000
    assert src.tick() == []
