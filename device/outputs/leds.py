"""The desk unit's LEDs through gpiozero: the top cue, the live voice level, posture.

- an RGB status LED (PWM) shows the top cue in a calm, dim colour per cue, steady (no blinking); off when
  there is nothing to say;
- a 5-segment ``LEDBarGraph`` shows the live voice level against the target band while the agent
  speaks, lit from the bottom like a level meter: 3 segments = in the band (the middle segment is the
  top one lit), 2 = below it, 1 = far below, 4 = above, 5 = far above ("far" is half a band width
  beyond the edge); dark while the agent listens;
- a posture LED (dim, PWM) lights while the posture cue is on;
- an optional monotone LED (dim, PWM; ``monotone`` in the pin map) lights while the monotone cue is on
  (:class:`device.outputs.cues.MonotoneCue`): a cue of its own, so it never hides the top cue on the RGB LED.

The pin map (BCM numbers) is ``hw/desk_pins.toml``; hardware is injected through ``pin_factory``
(tests: ``gpiozero.pins.mock.MockFactory(pin_class=MockPWMPin)``).
"""

from __future__ import annotations

import collections
import functools
import importlib.resources
import math
import threading
import time
import tomllib
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from device.config import checks as check
from device.errors import ConfigError
from mqtt_schema import Cue, Posture

BCM_MAX = 27
"""Highest GPIO number on the 40-pin header."""
MOCK_HISTORY = 1000
"""State changes a pin of :func:`mock_pin_factory` remembers (gpiozero's own mock pins keep all of them)."""

CUE_COLOURS: dict[Cue, tuple[float, float, float]] = {
    Cue.VOLUME_LOW: (0.0, 0.35, 1.0),  # blue: speak up
    Cue.VOLUME_HIGH: (1.0, 0.45, 0.0),  # amber: softer
    Cue.PACE_SLOW: (0.0, 0.8, 0.7),  # teal
    Cue.PACE_FAST: (0.75, 0.0, 0.9),  # violet: slow down
    Cue.MIC_CLOSE: (0.8, 0.8, 0.8),  # white
    Cue.MIC_FAR: (1.0, 0.85, 0.0),  # yellow
    Cue.POSTURE: (0.3, 1.0, 0.1),  # green: sit up
}
"""Full-intensity colour per cue (red, green, blue in 0..1); shown scaled by the panel's brightness.
No red: a cue is a nudge, not an alarm."""


@dataclass(frozen=True)
class LedPins:
    """BCM GPIO numbers of the desk unit's LEDs (and the optional calibrate button)."""

    rgb: tuple[int, int, int]
    bar: tuple[int, int, int, int, int]
    posture: int
    button: int | None = None
    monotone: int | None = None
    """The monotone LED (optional)."""

    def __post_init__(self) -> None:
        self._check("leds")

    def _check(self, where: str) -> None:
        if not isinstance(self.rgb, tuple) or len(self.rgb) != 3:
            raise check.fail(f"{where}.rgb", f"must be 3 GPIO numbers (red, green, blue), got {self.rgb!r}")
        if not isinstance(self.bar, tuple) or len(self.bar) != 5:
            raise check.fail(f"{where}.bar", f"must be 5 GPIO numbers (lowest segment first), got {self.bar!r}")
        named = [*((f"rgb[{i}]", p) for i, p in enumerate(self.rgb)),
                 *((f"bar[{i}]", p) for i, p in enumerate(self.bar)), ("posture", self.posture)]
        if self.button is not None:
            named.append(("button", self.button))
        if self.monotone is not None:
            named.append(("monotone", self.monotone))
        seen: dict[int, str] = {}
        for name, pin in named:
            if isinstance(pin, bool) or not isinstance(pin, int) or not 0 <= pin <= BCM_MAX:
                raise check.fail(f"{where}.{name}", f"must be a BCM GPIO number 0..{BCM_MAX}, got {pin!r}")
            if pin in seen:
                raise check.fail(f"{where}.{name}", f"GPIO {pin} is already used by {where}.{seen[pin]}")
            seen[pin] = name

    @classmethod
    def from_table(cls, table: Mapping[str, Any], where: str = "leds") -> LedPins:
        """Build from a ``[leds]`` TOML table (``rgb``, ``bar``, ``posture``, optional ``button`` and ``monotone``).

        Raises :class:`ConfigError` naming the field; a GPIO used twice is refused.
        """
        check.check_keys(check.mapping(table, where), {"rgb", "bar", "posture", "button", "monotone"}, where)
        for key in ("rgb", "bar", "posture"):
            if key not in table:
                raise check.fail(f"{where}.{key}", "missing")
        rgb, bar = table["rgb"], table["bar"]
        if not isinstance(rgb, (list, tuple)) or len(rgb) != 3:
            raise check.fail(f"{where}.rgb", f"must be a list of 3 GPIO numbers (red, green, blue), got {rgb!r}")
        if not isinstance(bar, (list, tuple)) or len(bar) != 5:
            raise check.fail(f"{where}.bar", f"must be a list of 5 GPIO numbers (lowest segment first), got {bar!r}")
        try:
            return cls(rgb=tuple(rgb), bar=tuple(bar), posture=table["posture"],
                       button=table.get("button"), monotone=table.get("monotone"))
        except ConfigError as exc:
            raise check.moved(exc, "leds", where) from None

    @classmethod
    def default(cls) -> LedPins:
        """The pin map shipped in ``hw/desk_pins.toml`` (package data of ``hw``)."""
        return cls.from_table(shipped_pin_table("leds"), where="hw/desk_pins.toml: leds")


def shipped_pin_table(section: str) -> dict[str, Any]:
    """Table ``section`` of the pin map shipped in ``hw/desk_pins.toml`` (package data of ``hw``;
    {} when absent); :class:`ConfigError` when the file cannot be read."""
    resource = importlib.resources.files("hw").joinpath("desk_pins.toml")
    try:
        data = tomllib.loads(resource.read_text(encoding="utf-8"))
    except (OSError, tomllib.TOMLDecodeError) as exc:
        raise ConfigError(f"cannot read the default pin map hw/desk_pins.toml: {exc}") from None
    table: dict[str, Any] = data.get(section, {})
    return table


def bar_segments(level_dbov: float | None, band: tuple[float, float], speaking: bool) -> int:
    """How many of the 5 bar segments to light (0 while not speaking or not measured).

    3 = inside ``band`` (low, high dBov); 2 / 4 = up to half a band width below / above it; 1 / 5 beyond.
    """
    if not speaking or level_dbov is None or not math.isfinite(level_dbov):
        return 0
    lo, hi = band
    step = (hi - lo) / 2
    if level_dbov < lo - step:
        return 1
    if level_dbov < lo:
        return 2
    if level_dbov <= hi:
        return 3
    if level_dbov <= hi + step:
        return 4
    return 5


@functools.cache
def _bounded_mock_pin_class(history: int) -> type:
    from gpiozero.pins.mock import MockPWMPin

    class BoundedMockPWMPin(MockPWMPin):  # type: ignore[misc]
        """A gpiozero ``MockPWMPin`` whose ``states`` keeps only the newest ``history`` changes.

        gpiozero's mock pins append every state change to a list for ever: a demo agent on mock LEDs
        (``--mock-gpio``) would grow by one entry per level-bar change (about 3000 an hour of speech).
        """

        states: Any

        def clear_states(self) -> None:
            super().clear_states()
            self.states = collections.deque(self.states, maxlen=history)

    BoundedMockPWMPin.__name__ = BoundedMockPWMPin.__qualname__ = f"BoundedMockPWMPin{history}"
    return BoundedMockPWMPin


class HoldButton:
    """A push button to GND (internal pull-up) that calls ``when_held`` once per press held ``hold_s`` seconds.

    gpiozero's ``Button`` does the same with a thread of its own that polls for a press every 0.1 s for
    as long as the button is open (ten wake-ups a second on an idle desk); here a press starts a timer
    (a thread that lives ``hold_s``) and a release before it fires cancels it. Edges come from a gpiozero
    ``DigitalInputDevice``; ``when_held`` runs on the timer's thread.
    """

    def __init__(self, pin: int, *, hold_s: float, pin_factory: Any = None) -> None:
        from gpiozero import DigitalInputDevice

        self.hold_time = hold_s
        """Seconds a press is held before ``when_held``."""
        self.when_held: Callable[[], object] | None = None
        self._lock = threading.Lock()
        self._timer: threading.Timer | None = None
        self._input = DigitalInputDevice(pin, pull_up=True, pin_factory=pin_factory)
        self._input.when_activated = self._pressed
        self._input.when_deactivated = self._released

    @property
    def is_pressed(self) -> bool:
        return bool(self._input.is_active)

    def _pressed(self) -> None:
        timer = threading.Timer(self.hold_time, self._held)
        timer.daemon = True
        with self._lock:
            if self._timer is not None:
                self._timer.cancel()
            self._timer = timer
        timer.start()

    def _released(self) -> None:
        with self._lock:
            timer, self._timer = self._timer, None
        if timer is not None:
            timer.cancel()

    def _held(self) -> None:
        with self._lock:
            current = self._timer is not None and self._timer.ident == threading.get_ident()
        action = self.when_held
        if current and self.is_pressed and action is not None:
            action()

    def close(self) -> None:
        """Cancel a pending hold and release the pin (idempotent)."""
        self._released()
        self._input.close()


def mock_pin_factory(history: int = MOCK_HISTORY) -> Any:
    """A gpiozero ``MockFactory`` of PWM pins that remember only their last ``history`` state changes.

    For demos and long runs without GPIO (``--mock-gpio``): the same pins as
    ``MockFactory(pin_class=MockPWMPin)``, with a bounded ``pin.states`` (a deque, newest last).
    """
    if isinstance(history, bool) or not isinstance(history, int) or history < 1:
        raise ValueError(f"history must be a positive number of state changes, got {history!r}")
    from gpiozero.pins.mock import MockFactory

    return MockFactory(pin_class=_bounded_mock_pin_class(history))


class LedPanel:
    """The RGB cue LED, the level bar and the posture LED. A context manager; ``close()`` is idempotent."""

    def __init__(self, pins: LedPins, pin_factory: Any = None, *, brightness: float = 0.25,
                 posture_brightness: float = 0.3, button_hold_s: float = 3.0) -> None:
        """``brightness``: scale of the RGB colours, 0..1 (dim by default); ``posture_brightness`` likewise;
        ``button_hold_s``: seconds the calibrate button must be held for ``when_held``."""
        from gpiozero import PWMLED, RGBLED, LEDBarGraph  # imported here: the base install needs no GPIO

        for name, value in (("brightness", brightness), ("posture_brightness", posture_brightness)):
            if not 0.0 < value <= 1.0:
                raise check.fail(f"leds.{name}", f"must be in (0, 1], got {value!r}")
        self.pins = pins
        self.brightness = brightness
        self.posture_brightness = posture_brightness
        self.button_hold_s = button_hold_s
        self._factory = pin_factory
        self._lock = threading.Lock()
        self._closed = False
        self._button: HoldButton | None = None
        self._devices: list[Any] = []
        self._shown: tuple[tuple[float, ...], int, float, float] | None = None
        """What show() last wrote: (rgb colour, bar segments, posture brightness, monotone brightness)."""
        self._monotone: Any = None
        try:
            self._rgb = RGBLED(*pins.rgb, pwm=True, pin_factory=pin_factory)
            self._devices.append(self._rgb)
            self._bar = LEDBarGraph(*pins.bar, pwm=False, pin_factory=pin_factory)
            self._devices.append(self._bar)
            self._posture = PWMLED(pins.posture, pin_factory=pin_factory)
            self._devices.append(self._posture)
            if pins.monotone is not None:
                self._monotone = PWMLED(pins.monotone, pin_factory=pin_factory)
                self._devices.append(self._monotone)
        except Exception as exc:
            self.close()
            raise ConfigError(f"cannot open the LEDs on {pins}: {exc}") from exc

    def show(self, top: Cue | None, level_dbov: float | None, band: tuple[float, float], speaking: bool,
             posture: Posture, *, cues: tuple[Cue, ...] | None = None, monotone: bool = False) -> None:
        """Show the top cue, the level bar, the posture LED and the monotone LED (when wired).
        Unchanged outputs are not rewritten.

        The posture LED follows ``Cue.POSTURE in cues`` when ``cues`` is given (pass the cue policy's
        ``active``, so it keeps the policy's minimum on-time), else ``posture is SLOUCHED``.
        """
        colour = (0.0, 0.0, 0.0) if top is None else tuple(c * self.brightness for c in CUE_COLOURS[top])
        segments = bar_segments(level_dbov, band, speaking)
        posture_on = (Cue.POSTURE in cues) if cues is not None else posture is Posture.SLOUCHED
        want = (colour, segments, self.posture_brightness if posture_on else 0.0,
                self.posture_brightness if monotone else 0.0)
        with self._lock:
            if self._closed or want == self._shown:
                return
            if self._shown is None or self._shown[0] != colour:
                self._rgb.value = colour
            if self._shown is None or self._shown[1] != segments:
                self._bar.value = segments / len(self.pins.bar)
            if self._shown is None or self._shown[2] != want[2]:
                self._posture.value = want[2]
            if self._monotone is not None and (self._shown is None or self._shown[3] != want[3]):
                self._monotone.value = want[3]
            self._shown = want

    def cycle(self, step_s: float = 0.25, sleep: Callable[[float], None] = time.sleep) -> list[str]:
        """Selftest: light each LED alone in turn for ``step_s`` seconds; all off afterwards.

        Returns the names cycled: ``rgb.red``, ``rgb.green``, ``rgb.blue``, ``bar.0``..``bar.4``, ``posture``
        (and ``monotone`` when wired).
        """
        names: list[str] = []
        steps: list[tuple[str, Callable[[], None]]] = []
        for i, colour in enumerate(("red", "green", "blue")):
            steps.append((f"rgb.{colour}", functools.partial(self._rgb_only, i)))
        for i in range(len(self.pins.bar)):
            steps.append((f"bar.{i}", self._bar[i].on))
        steps.append(("posture", self._posture.on))
        if self._monotone is not None:
            steps.append(("monotone", self._monotone.on))
        for name, light in steps:
            with self._lock:
                if self._closed:
                    break
                self._all_off()
                light()
            names.append(name)
            sleep(step_s)
        with self._lock:
            if not self._closed:
                self._all_off()
        return names

    def _rgb_only(self, index: int) -> None:
        rgb = [0.0, 0.0, 0.0]
        rgb[index] = 1.0
        self._rgb.value = tuple(rgb)

    def _all_off(self) -> None:
        self._shown = None
        self._rgb.off()
        self._bar.off()
        self._posture.off()
        if self._monotone is not None:
            self._monotone.off()

    def button(self) -> HoldButton | None:
        """The optional calibrate button (a :class:`HoldButton`, pull-up, ``button_hold_s``), or None."""
        if self.pins.button is None:
            return None
        with self._lock:
            if self._closed:
                raise ConfigError("the LED panel is closed")
            if self._button is None:
                self._button = HoldButton(self.pins.button, hold_s=self.button_hold_s, pin_factory=self._factory)
                self._devices.append(self._button)
            return self._button

    def close(self) -> None:
        """Turn everything off and release the pins (idempotent)."""
        with self._lock:
            if self._closed:
                return
            self._closed = True
            for device in reversed(self._devices):
                try:
                    device.close()
                except Exception:  # closing must not fail half way
                    pass
            self._devices.clear()

    @property
    def closed(self) -> bool:
        return self._closed

    def __enter__(self) -> LedPanel:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
