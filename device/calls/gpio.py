"""Call state from a desk phone's ring-detect and off-hook inputs (gpiozero input devices).

Wiring (``hw/desk_pins.toml``, ``[phone]``): both inputs pull up internally and are active low, as
an optocoupler or a hook switch to GND gives them. ``ring_detect`` is active while ringing voltage
is on the line; ``off_hook`` is active while the handset is lifted.

How the inputs become calls (all times on the injected agent clock, ms):

- A **ring burst** starts at an activation of ``ring_detect`` and ends when the input has stayed
  inactive for the cadence's ``gap_s`` (so the ~40 Hz chatter of a detector on AC ring voltage and
  contact bounce stay inside one burst). A burst counts as a ring once it has lasted
  ``glitch_s``; shorter bursts are glitches (counted in ``glitches``) and never start a call.
- The first ring makes an incoming call ``ringing`` (its time = the burst's start); each further
  ring updates ``rings``.
- ``off_hook`` (debounced: stable for ``hook_debounce_s``) while ringing → ``established`` at the
  edge's time, with the rings counted so far. A burst still too short to count when the handset is
  lifted counts as a ring: the phone did ring. Off-hook with no ringing is an outgoing call,
  ``established`` at once (a desk phone shows no better moment for it).
- On-hook → ``closed`` (``hangup``). Ringing with no new burst ``give_up_s`` after the last one →
  ``closed`` (``not-answered``), dated at the end of the last burst.

Timeouts need time to pass without edges: :meth:`GpioCallSource.tick` evaluates them. ``start()``
runs a thread that ticks every ``tick_s`` wall seconds; tests pass ``ticker=False`` and call
``tick()`` after moving a :class:`~device.clock.ManualClock`. gpiozero calls the edge callbacks
from its own thread (synchronously inside ``drive_low()`` for MockFactory pins); one lock orders
edges and ticks.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from gpiozero import DigitalInputDevice

from device.calls.state import (
    CallPhase,
    CallTracker,
    Direction,
    Listener,
    RingCadence,
    TrackedSource,
)
from device.clock import Clock, WallClock
from device.errors import ConfigError
from device.logs import kv
from device.outputs.leds import shipped_pin_table

log = logging.getLogger("device.calls.gpio")

BCM_MAX = 27
HOOK_DEBOUNCE_S = 0.1
TICK_S = 0.05


@dataclass(frozen=True, slots=True)
class PhonePins:
    """BCM GPIO numbers of the desk phone inputs."""

    ring_detect: int
    off_hook: int

    def __post_init__(self) -> None:
        for name in ("ring_detect", "off_hook"):
            pin = getattr(self, name)
            if isinstance(pin, bool) or not isinstance(pin, int) or not 0 <= pin <= BCM_MAX:
                raise ConfigError(f"phone.{name}: must be a BCM GPIO number 0..{BCM_MAX}, got {pin!r}")
        if self.ring_detect == self.off_hook:
            raise ConfigError(f"phone.off_hook: GPIO {self.off_hook} is already used by phone.ring_detect")

    @classmethod
    def from_table(cls, table: Mapping[str, Any], where: str = "phone") -> PhonePins:
        """Build from a ``[phone]`` TOML table; :class:`ConfigError` names the field."""
        if not isinstance(table, Mapping):
            raise ConfigError(f"{where}: must be a table, got {type(table).__name__}")
        known = ("ring_detect", "off_hook")
        for key in table:
            if key not in known:
                raise ConfigError(f"{where}.{key}: unknown key (known: {', '.join(known)})")
        for key in known:
            if key not in table:
                raise ConfigError(f"{where}.{key}: missing")
        try:
            return cls(table["ring_detect"], table["off_hook"])
        except ConfigError as exc:
            text = str(exc)
            raise ConfigError(where + text.removeprefix("phone") if text.startswith("phone.") else text) from None

    @classmethod
    def default(cls) -> PhonePins:
        """The pin map shipped in ``hw/desk_pins.toml``."""
        return cls.from_table(shipped_pin_table("phone"), where="hw/desk_pins.toml: phone")


class GpioCallSource(TrackedSource):
    """A :class:`~device.calls.state.CallSource` on a desk phone's ring-detect and off-hook inputs."""

    name = "gpio"
    connected = True

    def __init__(self, pins: PhonePins | None = None, *, pin_factory: Any = None, clock: Clock | None = None,
                 cadence: RingCadence | None = None, hook_debounce_s: float = HOOK_DEBOUNCE_S,
                 listener: Listener | None = None, ticker: bool = True, tick_s: float = TICK_S) -> None:
        self.pins = pins if pins is not None else PhonePins.default()
        self.pin_factory = pin_factory
        self.clock: Clock = clock if clock is not None else WallClock()
        self.cadence = cadence if cadence is not None else RingCadence()
        self.hook_debounce_ms = int(round(hook_debounce_s * 1000))
        self.tracker = CallTracker(self.name, self.clock, listener)
        self.ticker = ticker
        self.tick_s = tick_s
        self.glitches = 0
        """Ring-detect activity too short to be a ring."""
        self._lock = threading.RLock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._ring_dev: DigitalInputDevice | None = None
        self._hook_dev: DigitalInputDevice | None = None
        # ring detect
        self._ring_on = False
        self._burst_start: int | None = None
        self._burst_last_off = 0
        self._burst_counted = False
        self._last_burst_end: int | None = None
        # hook (raw edge and debounced state)
        self._hook_raw = False
        self._hook_changed_ms = 0
        self._hook = False
        # the call
        self._call_id: str | None = None
        self._phase = CallPhase.IDLE
        self._rings = 0

    # --- lifecycle ----------------------------------------------------------------------------------

    def start(self) -> GpioCallSource:
        with self._lock:
            if self._ring_dev is not None:
                return self
            ring = DigitalInputDevice(self.pins.ring_detect, pull_up=True, pin_factory=self.pin_factory)
            try:
                hook = DigitalInputDevice(self.pins.off_hook, pull_up=True, pin_factory=self.pin_factory)
            except Exception:
                ring.close()
                raise
            self._ring_dev, self._hook_dev = ring, hook
            now = self.clock.now_ms()
            # the handset may already be off the hook: that is the baseline, not a call
            self._hook_raw = self._hook = bool(hook.value)
            self._hook_changed_ms = now
            ring.when_activated = lambda: self._ring_edge(True)
            ring.when_deactivated = lambda: self._ring_edge(False)
            hook.when_activated = lambda: self._hook_edge(True)
            hook.when_deactivated = lambda: self._hook_edge(False)
            if ring.value:
                self._ring_edge(True)
        log.info("desk phone inputs open", extra=kv(ring_detect=self.pins.ring_detect, off_hook=self.pins.off_hook,
                                                    on_s=self.cadence.on_s, off_s=self.cadence.off_s))
        if self.ticker and self._thread is None:
            self._stop.clear()
            self._thread = threading.Thread(target=self._run, name="desk phone", daemon=True)
            self._thread.start()
        return self

    def stop(self) -> None:
        """Stop the ticker and close the input devices (idempotent)."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(5)
            self._thread = None
        with self._lock:
            devs, self._ring_dev, self._hook_dev = (self._ring_dev, self._hook_dev), None, None
        for dev in devs:
            if dev is not None:
                dev.close()

    def _run(self) -> None:
        while not self._stop.wait(self.tick_s):
            try:
                self.tick()
            except Exception as exc:  # keep ticking: a bug here must not freeze call state
                log.exception("desk phone tick failed", extra=kv(error=f"{type(exc).__name__}: {exc}"))

    # --- what the owner reads (and events() and current(), from TrackedSource) --------------------------

    @property
    def rings(self) -> int:
        """Rings counted for the current call (0 when idle)."""
        with self._lock:
            return self._rings

    def tick(self) -> None:
        """Evaluate what the passing of time decides (end of a burst, ringing given up, debounce)."""
        with self._lock:
            self._evaluate(self.clock.now_ms())

    # --- edges and the state machine ------------------------------------------------------------------

    def _ring_edge(self, on: bool) -> None:
        with self._lock:
            t = self.clock.now_ms()
            self._evaluate(t)  # close a burst whose gap already ran out before this edge
            self._ring_on = on
            if on:
                if self._burst_start is None:
                    self._burst_start = t
                    self._burst_counted = False
            else:
                self._burst_last_off = t
            self._evaluate(t)

    def _hook_edge(self, off_hook: bool) -> None:
        with self._lock:
            t = self.clock.now_ms()
            self._evaluate(t)
            self._hook_raw = off_hook
            self._hook_changed_ms = t
            self._evaluate(t)

    def _count_ring(self) -> None:
        assert self._burst_start is not None
        self._burst_counted = True
        self._rings += 1
        if self._phase is CallPhase.IDLE:
            self._call_id = f"gpio-{self._burst_start}"
            self._phase = CallPhase.RINGING
            self.tracker.ringing(self._call_id, Direction.INCOMING, at_ms=self._burst_start, rings=self._rings)
        elif self._phase is CallPhase.RINGING and self._call_id is not None:
            self.tracker.ringing(self._call_id, Direction.INCOMING, at_ms=self._burst_start, rings=self._rings)

    def _evaluate(self, now: int) -> None:
        cad = self.cadence
        gap_ms = cad.gap_s * 1000
        # 1. ring bursts
        if self._burst_start is not None:
            reach = now if self._ring_on else self._burst_last_off
            if not self._burst_counted and reach - self._burst_start >= cad.glitch_s * 1000:
                if self._phase is not CallPhase.ESTABLISHED:
                    self._count_ring()
                else:
                    self._burst_counted = True  # ringing voltage during a call: not a ring of this call
            if not self._ring_on and now - self._burst_last_off >= gap_ms:
                if self._burst_counted:
                    self._last_burst_end = self._burst_last_off
                else:
                    self.glitches += 1
                    log.debug("ring-detect glitch", extra=kv(ms=self._burst_last_off - self._burst_start))
                self._burst_start = None
        # 2. the hook, debounced
        if self._hook_raw != self._hook and now - self._hook_changed_ms >= self.hook_debounce_ms:
            self._hook = self._hook_raw
            t = self._hook_changed_ms
            if self._hook:
                self._answer_or_dial(t)
            elif self._phase is CallPhase.ESTABLISHED and self._call_id is not None:
                self.tracker.closed(self._call_id, "hangup", at_ms=t)
                self._reset_call()
        # 3. ringing given up
        if (self._phase is CallPhase.RINGING and self._burst_start is None and self._last_burst_end is not None
                and now - self._last_burst_end >= cad.give_up_s * 1000 and self._call_id is not None):
            self.tracker.closed(self._call_id, "not-answered", at_ms=self._last_burst_end)
            self._reset_call()

    def _answer_or_dial(self, t: int) -> None:
        if self._phase is CallPhase.IDLE and self._burst_start is not None and not self._burst_counted:
            self._count_ring()  # lifted during the first, still short, ring: it did ring
        if self._phase is CallPhase.RINGING and self._call_id is not None:
            self.tracker.established(self._call_id, Direction.INCOMING, at_ms=t, rings=self._rings)
        elif self._phase is CallPhase.IDLE:
            self._call_id = f"gpio-{t}"
            self.tracker.established(self._call_id, Direction.OUTGOING, at_ms=t)
        else:
            return
        self._phase = CallPhase.ESTABLISHED
        if self._burst_start is not None:  # the line stops ringing when seized
            self._burst_counted = True

    def _reset_call(self) -> None:
        self._phase = CallPhase.IDLE
        self._call_id = None
        self._rings = 0
        self._last_burst_end = None
