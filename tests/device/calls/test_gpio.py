"""The desk phone source on gpiozero MockFactory pins, driven with ring cadences over a ManualClock."""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest
from gpiozero.pins.mock import MockFactory

from device.calls import open_source
from device.calls.gpio import GpioCallSource, PhonePins
from device.calls.measures import measure_call
from device.calls.state import CallPhase, CallState, Direction, RingCadence
from device.clock import ManualClock
from device.errors import ConfigError

PINS = PhonePins.default()
T0 = 1_795_000_000_000


class Line:
    """A desk phone line: drives the ring-detect and off-hook pins as time passes on the clock."""

    def __init__(self, src: GpioCallSource, factory: MockFactory, clock: ManualClock) -> None:
        self.src, self.clock = src, clock
        self.ring_pin = factory.pin(PINS.ring_detect)
        self.hook_pin = factory.pin(PINS.off_hook)

    def wait(self, s: float, step_s: float = 0.05) -> None:
        """Let ``s`` seconds pass, ticking the source every ``step_s`` (its ticker thread would)."""
        end = self.clock.now_ms() + round(s * 1000)
        while self.clock.now_ms() < end:
            self.clock.advance(min(step_s, (end - self.clock.now_ms()) / 1000))
            self.src.tick()

    def ring(self, on_s: float = 1.0, chatter_ms: int | None = None) -> None:
        """One ring burst of ``on_s``; with ``chatter_ms``, the detector toggles every that many ms
        (an optocoupler on AC ring voltage)."""
        if chatter_ms is None:
            self.ring_pin.drive_low()
            self.wait(on_s)
            self.ring_pin.drive_high()
            return
        elapsed = 0.0
        while elapsed < on_s:
            self.ring_pin.drive_low()
            self.wait(chatter_ms / 1000, step_s=chatter_ms / 1000)
            self.ring_pin.drive_high()
            self.wait(chatter_ms / 1000, step_s=chatter_ms / 1000)
            elapsed += 2 * chatter_ms / 1000

    def rings(self, n: int, on_s: float = 1.0, off_s: float = 4.0, chatter_ms: int | None = None) -> None:
        for i in range(n):
            self.ring(on_s, chatter_ms)
            if i < n - 1:
                self.wait(off_s)

    def lift(self) -> None:
        self.hook_pin.drive_low()

    def hang_up(self) -> None:
        self.hook_pin.drive_high()


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock(T0)


@pytest.fixture
def factory() -> Iterator[MockFactory]:
    f = MockFactory()
    yield f
    f.reset()


@pytest.fixture
def line(factory: MockFactory, clock: ManualClock) -> Iterator[Line]:
    src = GpioCallSource(PINS, pin_factory=factory, clock=clock, ticker=False)
    with src:
        yield Line(src, factory, clock)


def test_pins_come_from_the_desk_pin_map() -> None:
    assert PINS == PhonePins(ring_detect=5, off_hook=6)
    with pytest.raises(ConfigError, match="phone.off_hook"):
        PhonePins.from_table({"ring_detect": 5, "off_hook": 5})
    with pytest.raises(ConfigError, match="phone.ring_detect"):
        PhonePins.from_table({"ring_detect": 40, "off_hook": 6})
    with pytest.raises(ConfigError, match="phone.bell"):
        PhonePins.from_table({"ring_detect": 5, "off_hook": 6, "bell": 7})


def test_three_rings_then_off_hook_is_answered_on_ring_three(line: Line, clock: ManualClock) -> None:
    src = line.src
    line.rings(3)
    line.wait(1.0)
    t_lift = clock.now_ms()
    line.lift()
    line.wait(0.5)
    assert src.current().phase is CallPhase.ESTABLISHED
    line.wait(20.0)
    t_hang = clock.now_ms()
    line.hang_up()
    line.wait(0.5)
    events = src.events()
    assert [(e.phase, e.rings) for e in events] == [
        (CallPhase.RINGING, 1), (CallPhase.RINGING, 2), (CallPhase.RINGING, 3),
        (CallPhase.ESTABLISHED, 3), (CallPhase.CLOSED, 3)]
    closed = events[-1]
    assert closed.call_id == f"gpio-{T0}" and closed.direction is Direction.INCOMING
    assert closed.ringing_ms == T0  # the first burst's start
    assert closed.established_ms == t_lift  # the hook edge, not the end of the debounce
    assert closed.closed_ms == t_hang and closed.reason == "hangup"
    assert src.glitches == 0
    m = measure_call(closed, [])
    assert m.rings == 3 and m.rings_counted and m.answer_ok is True


def test_chatter_inside_bursts_and_glitches_between_them(line: Line, clock: ManualClock) -> None:
    src = line.src
    # a detector on 20 Hz ring voltage toggles every 25 ms through each 1 s burst
    line.ring(1.0, chatter_ms=25)
    line.wait(2.0)
    line.ring_pin.drive_low()  # a 30 ms spike in the off period: a glitch, not a ring
    line.wait(0.03, step_s=0.01)
    line.ring_pin.drive_high()
    line.wait(2.0)
    line.ring(1.0, chatter_ms=25)
    line.wait(4.0)
    line.ring(1.0, chatter_ms=25)
    line.wait(0.3)
    # the hook switch bounces for 40 ms when lifted
    for _ in range(4):
        line.lift()
        line.wait(0.005, step_s=0.005)
        line.hang_up()
        line.wait(0.005, step_s=0.005)
    line.lift()
    line.wait(1.0)
    assert src.glitches == 1
    assert src.current().phase is CallPhase.ESTABLISHED and src.current().rings == 3
    # and it bounces when put down
    line.wait(10.0)
    for _ in range(3):
        line.hang_up()
        line.wait(0.005, step_s=0.005)
        line.lift()
        line.wait(0.005, step_s=0.005)
    line.hang_up()
    line.wait(1.0)
    phases = [e.phase for e in src.events()]
    assert phases.count(CallPhase.ESTABLISHED) == 1 and phases.count(CallPhase.CLOSED) == 1
    assert phases[-1] is CallPhase.CLOSED


def test_a_call_never_answered_closes_after_the_caller_gives_up(line: Line, clock: ManualClock) -> None:
    src = line.src
    line.rings(6)
    t_last_end = clock.now_ms()
    line.wait(5.5)  # less than 1.5 x the 4 s off time since the last ring: still ringing
    assert src.current().phase is CallPhase.RINGING
    line.wait(1.0)
    closed = src.current()
    assert closed.phase is CallPhase.CLOSED and closed.reason == "not-answered"
    assert closed.rings == 6 and closed.established_ms is None
    assert closed.closed_ms == t_last_end
    m = measure_call(closed, [])
    assert not m.answered and m.answer_ok is False
    # the next ring is a new call
    line.ring()
    line.wait(0.5)
    assert src.current().phase is CallPhase.RINGING and src.current().call_id != closed.call_id
    assert src.current().rings == 1


def test_lifted_during_the_first_short_ring_and_outgoing_calls(line: Line, clock: ManualClock) -> None:
    src = line.src
    line.ring_pin.drive_low()
    line.wait(0.1, step_s=0.01)  # not yet long enough to count as a ring
    line.lift()
    line.ring_pin.drive_high()  # the exchange stops ringing when the line is seized
    line.wait(0.5)
    state = src.current()
    assert state.phase is CallPhase.ESTABLISHED and state.direction is Direction.INCOMING and state.rings == 1
    line.hang_up()
    line.wait(1.0)
    # the handset lifted with no ringing: an outgoing call
    line.lift()
    line.wait(0.5)
    out = src.current()
    assert out.phase is CallPhase.ESTABLISHED and out.direction is Direction.OUTGOING and out.rings is None
    line.hang_up()
    line.wait(0.5)
    assert src.current().phase is CallPhase.CLOSED


def test_a_configured_double_ring_cadence(factory: MockFactory, clock: ManualClock) -> None:
    # UK: 0.4 on, 0.2 off, 0.4 on, 2 off is one ring of a 1 s on / 2 s off cadence
    cad = RingCadence(on_s=1.0, off_s=2.0, merge_gap_s=0.3)
    with GpioCallSource(PINS, pin_factory=factory, clock=clock, cadence=cad, ticker=False) as src:
        line = Line(src, factory, clock)
        for _ in range(2):
            line.ring(0.4)
            line.wait(0.2)
            line.ring(0.4)
            line.wait(2.0)
        line.lift()
        line.wait(0.5)
        assert src.current().rings == 2


def test_the_ticker_thread_and_open_source(factory: MockFactory) -> None:
    received: list[CallState] = []
    src = open_source("gpio", pin_factory=factory, listener=received.append)
    assert isinstance(src, GpioCallSource)
    src.start()
    try:
        factory.pin(PINS.ring_detect).drive_low()
        end = time.monotonic() + 5
        while not received and time.monotonic() < end:  # the ticker confirms the burst after 0.2 s
            time.sleep(0.01)
        assert received and received[0].phase is CallPhase.RINGING and received[0].rings == 1
    finally:
        src.stop()
        src.stop()  # idempotent
