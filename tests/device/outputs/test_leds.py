"""The LED panel on gpiozero's MockFactory with PWM pins: pin state histories over time."""

from __future__ import annotations

import threading
import time
import tomllib
from collections.abc import Iterator
from pathlib import Path

import pytest
from gpiozero.pins.mock import MockFactory, MockPWMPin

from device.errors import ConfigError
from device.outputs.leds import CUE_COLOURS, LedPanel, LedPins, bar_segments, mock_pin_factory
from mqtt_schema import Cue, Posture

PINS = LedPins.default()
BAND = (-32.0, -20.0)
WIDTH = BAND[1] - BAND[0]


@pytest.fixture
def factory() -> Iterator[MockFactory]:
    f = MockFactory(pin_class=MockPWMPin)
    yield f
    f.reset()


@pytest.fixture
def panel(factory: MockFactory) -> Iterator[LedPanel]:
    with LedPanel(PINS, pin_factory=factory) as p:
        yield p


def states(factory: MockFactory, pin: int) -> list[float]:
    """The values a pin went through (its initial state first)."""
    return [float(s.state) for s in factory.pin(pin).states]


def now(factory: MockFactory, pin: int) -> float:
    return float(factory.pin(pin).state)


def lit_bar(factory: MockFactory) -> list[int]:
    return [int(now(factory, p)) for p in PINS.bar]


def test_default_pin_map_is_the_hw_file() -> None:
    table = tomllib.loads((Path(__file__).parents[3] / "hw" / "desk_pins.toml").read_text())["leds"]
    assert PINS == LedPins(tuple(table["rgb"]), tuple(table["bar"]), table["posture"], table.get("button"),
                           table.get("monotone"))


def test_top_cue_colour_is_dim_and_steady_and_goes_off(panel: LedPanel, factory: MockFactory) -> None:
    for _ in range(5):  # the same picture shown again and again writes nothing: no blinking
        panel.show(Cue.VOLUME_HIGH, None, BAND, False, Posture.UPRIGHT)
    panel.show(Cue.MIC_FAR, None, BAND, False, Posture.UPRIGHT)
    panel.show(None, None, BAND, False, Posture.UPRIGHT)
    for i, pin in enumerate(PINS.rgb):
        expected = [0.0] + [CUE_COLOURS[c][i] * panel.brightness for c in (Cue.VOLUME_HIGH, Cue.MIC_FAR)] + [0.0]
        dedup = [v for j, v in enumerate(expected) if j == 0 or v != expected[j - 1]]
        assert states(factory, pin) == pytest.approx(dedup)
    assert all(max(CUE_COLOURS[c]) * panel.brightness <= 0.5 for c in Cue)  # dim


def test_every_cue_has_its_own_colour() -> None:
    assert set(CUE_COLOURS) == set(Cue)
    assert len(set(CUE_COLOURS.values())) == len(Cue)


@pytest.mark.parametrize(("level", "segments"), [
    (BAND[0] - WIDTH, 1),
    (BAND[0] - WIDTH / 4, 2),
    (BAND[0] + 0.1, 3),
    ((BAND[0] + BAND[1]) / 2, 3),
    (BAND[1], 3),
    (BAND[1] + WIDTH / 4, 4),
    (BAND[1] + WIDTH, 5),
])
def test_bar_graph_shows_the_level_against_the_band(panel: LedPanel, factory: MockFactory, level: float,
                                                    segments: int) -> None:
    panel.show(None, level, BAND, True, Posture.UPRIGHT)
    assert lit_bar(factory) == [1] * segments + [0] * (5 - segments)
    assert bar_segments(level, BAND, True) == segments
    panel.show(None, level, BAND, False, Posture.UPRIGHT)  # listening: the bar goes dark
    assert lit_bar(factory) == [0] * 5
    panel.show(None, None, BAND, True, Posture.UPRIGHT)  # not measured: dark, never a guess
    assert lit_bar(factory) == [0] * 5


def test_bar_history_over_a_rising_voice(panel: LedPanel, factory: MockFactory) -> None:
    levels = [BAND[0] - WIDTH, BAND[0] - 1, -26.0, -26.5, BAND[1] + 1, BAND[1] + WIDTH]
    for level in levels:
        panel.show(None, level, BAND, True, Posture.UPRIGHT)
    # segment k (1-based) switches on once, when the level first needs k segments, and never flickers
    for k, pin in enumerate(PINS.bar, start=1):
        assert states(factory, pin) == [0.0, 1.0], f"segment {k}"


def test_posture_led_follows_the_posture_cue(panel: LedPanel, factory: MockFactory) -> None:
    panel.show(None, None, BAND, False, Posture.SLOUCHED)
    assert now(factory, PINS.posture) == pytest.approx(panel.posture_brightness)
    # with the policy's cues given, the LED follows the cue (which keeps its min on-time), not the raw posture
    panel.show(Cue.POSTURE, None, BAND, False, Posture.UPRIGHT, cues=(Cue.POSTURE,))
    assert now(factory, PINS.posture) == pytest.approx(panel.posture_brightness)
    panel.show(None, None, BAND, False, Posture.UPRIGHT, cues=())
    assert states(factory, PINS.posture) == pytest.approx([0.0, panel.posture_brightness, 0.0])


def test_monotone_led_follows_the_monotone_cue_and_is_optional(panel: LedPanel, factory: MockFactory) -> None:
    assert PINS.monotone is not None
    panel.show(None, None, BAND, False, Posture.UPRIGHT, monotone=True)
    panel.show(None, None, BAND, False, Posture.UPRIGHT, monotone=True)  # unchanged: not rewritten
    panel.show(None, None, BAND, False, Posture.UPRIGHT, monotone=False)
    assert states(factory, PINS.monotone) == pytest.approx([0.0, panel.posture_brightness, 0.0])
    assert now(factory, PINS.rgb[0]) == 0.0  # the RGB LED stays free for the top cue
    with LedPanel(LedPins(PINS.rgb, PINS.bar, PINS.posture), pin_factory=MockFactory(pin_class=MockPWMPin)) as p:
        p.show(None, None, BAND, False, Posture.UPRIGHT, monotone=True)  # not wired: nothing to light
        assert "monotone" not in p.cycle(0.0, sleep=lambda s: None)


def test_selftest_cycles_each_led_alone(panel: LedPanel, factory: MockFactory) -> None:
    assert PINS.monotone is not None
    all_pins = [*PINS.rgb, *PINS.bar, PINS.posture, PINS.monotone]
    panel.show(Cue.PACE_FAST, -26.0, BAND, True, Posture.SLOUCHED)
    seen: list[list[int]] = []

    def sleep(step_s: float) -> None:
        assert step_s == 0.05
        seen.append([p for p in all_pins if now(factory, p) > 0])

    names = panel.cycle(0.05, sleep=sleep)
    assert names == ["rgb.red", "rgb.green", "rgb.blue", "bar.0", "bar.1", "bar.2", "bar.3", "bar.4", "posture",
                     "monotone"]
    assert seen == [[p] for p in all_pins]  # exactly one LED lit at each step, each in turn
    assert [now(factory, p) for p in all_pins] == [0.0] * len(all_pins)
    panel.show(Cue.PACE_FAST, -26.0, BAND, True, Posture.SLOUCHED)  # show() repaints after the cycle
    assert lit_bar(factory) == [1, 1, 1, 0, 0]


def test_close_is_idempotent_and_releases_the_pins(factory: MockFactory) -> None:
    panel = LedPanel(PINS, pin_factory=factory)
    panel.show(Cue.VOLUME_LOW, -26.0, BAND, True, Posture.SLOUCHED)
    panel.close()
    panel.close()
    assert panel.closed
    panel.show(Cue.VOLUME_HIGH, -26.0, BAND, True, Posture.SLOUCHED)  # a late show after close is harmless
    assert [now(factory, p) for p in (*PINS.rgb, *PINS.bar, PINS.posture)] == [0.0] * 9
    with LedPanel(PINS, pin_factory=factory) as again:  # the pins are free again
        again.show(Cue.VOLUME_LOW, None, BAND, False, Posture.UPRIGHT)
    assert again.closed


def test_calibrate_button_long_press(factory: MockFactory) -> None:
    held = threading.Event()
    with LedPanel(PINS, pin_factory=factory, button_hold_s=0.05) as panel:
        button = panel.button()
        assert button is not None and button is panel.button()
        button.when_held = held.set
        factory.pin(PINS.button).drive_low()
        assert held.wait(5.0), "a long press did not fire when_held"
        factory.pin(PINS.button).drive_high()
    no_button = LedPins(PINS.rgb, PINS.bar, PINS.posture, None)
    with LedPanel(no_button, pin_factory=factory) as panel:
        assert panel.button() is None


def test_the_button_runs_no_thread_until_pressed_and_a_short_press_is_not_a_hold(factory: MockFactory) -> None:
    # gpiozero's Button polls for a press on a thread of its own, ten times a second, while the desk idles
    before = {t.ident for t in threading.enumerate()}
    held: list[float] = []
    with LedPanel(PINS, pin_factory=factory, button_hold_s=0.2) as panel:
        button = panel.button()
        assert button is not None
        button.when_held = lambda: held.append(0.0)
        assert {t.ident for t in threading.enumerate()} == before
        pin = factory.pin(PINS.button)
        pin.drive_low()
        assert button.is_pressed
        pin.drive_high()  # released before hold_s: no hold
        time.sleep(0.4)
        assert held == []
        pin.drive_low()
        time.sleep(0.5)  # held 2.5 x hold_s: one call, not one per hold_s
        pin.drive_high()
        assert held == [0.0]
    assert {t.ident for t in threading.enumerate() if t.is_alive()} == before


def test_pins_in_use_elsewhere_are_a_clear_error(factory: MockFactory) -> None:
    with LedPanel(PINS, pin_factory=factory), pytest.raises(ConfigError, match="cannot open the LEDs"):
        LedPanel(PINS, pin_factory=factory)


@pytest.mark.parametrize(("table", "message"), [
    ({"rgb": [12, 13], "bar": [22, 23, 24, 25, 27], "posture": 26}, r"leds\.rgb: must be a list of 3"),
    ({"rgb": [12, 13, 16], "bar": [22, 23, 24, 25], "posture": 26}, r"leds\.bar: must be a list of 5"),
    ({"rgb": [12, 13, 16], "bar": [22, 23, 24, 25, 27]}, r"leds\.posture: missing"),
    ({"rgb": [12, 13, 16], "bar": [22, 23, 24, 25, 12], "posture": 26},
     r"leds\.bar\[4\]: GPIO 12 is already used by leds\.rgb\[0\]"),
    ({"rgb": [12, 13, 16], "bar": [22, 23, 24, 25, 27], "posture": 26, "button": 16},
     r"leds\.button: GPIO 16 is already used by leds\.rgb\[2\]"),
    ({"rgb": [12, 13, 40], "bar": [22, 23, 24, 25, 27], "posture": 26}, r"leds\.rgb\[2\]: must be a BCM GPIO"),
    ({"rgb": [12, 13, 16], "bar": [22, 23, 24, 25, 27], "posture": "26"}, r"leds\.posture: must be a BCM GPIO"),
    ({"rgb": [12, 13, 16], "bar": [22, 23, 24, 25, 27], "posture": 26, "buzzer": 4}, r"leds\.buzzer: unknown key"),
])
def test_pin_map_errors_name_the_field(table: dict[str, object], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        LedPins.from_table(table)


def test_pin_map_error_prefix() -> None:
    with pytest.raises(ConfigError, match=r"^desk\.leds\.posture: must be"):
        LedPins.from_table({"rgb": [1, 2, 3], "bar": [4, 5, 6, 7, 8], "posture": 99}, where="desk.leds")


def test_mock_pin_history_is_bounded_over_a_long_run() -> None:
    """The --mock-gpio factory: many level-bar changes, each pin keeps only its newest ``history`` states."""
    history = 40
    factory = mock_pin_factory(history)
    levels = [BAND[0] - WIDTH, BAND[0] - 0.2 * WIDTH, BAND[0] + 0.5 * WIDTH, BAND[1] + 0.2 * WIDTH, BAND[1] + WIDTH]
    try:
        with LedPanel(PINS, pin_factory=factory) as p:
            for i in range(5000):
                level = levels[(i * 7) % len(levels)]
                p.show(None, level, BAND, True, Posture.UPRIGHT)
                # the bar is what it should be, and the newest history entry is the current state
                lit = bar_segments(level, BAND, True)
                for k, pin in enumerate(PINS.bar):
                    assert now(factory, pin) == (1.0 if k < lit else 0.0)
                    assert float(factory.pin(pin).states[-1].state) == now(factory, pin)
            changes = [len(factory.pin(pin).states) for pin in PINS.bar]
            assert max(changes) == history, changes  # far more than 40 changes happened, only 40 are kept
    finally:
        factory.reset()


def test_mock_pin_factory_refuses_a_bad_history() -> None:
    with pytest.raises(ValueError, match="history"):
        mock_pin_factory(0)
