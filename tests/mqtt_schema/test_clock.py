"""The shared clock formula: host and desks compute the same time from the same ``T`` and ``S``."""

from __future__ import annotations

import math
import threading

import pytest

import device.clock
import host_agent.clock
from mqtt_schema.clock import ScaledClock, check_time_flags, check_time_scale, scaled_ms


def test_the_formula_scales_wall_time_around_the_origin() -> None:
    origin = 1_795_000_000_000
    assert scaled_ms(origin, 20.0, origin) == origin
    assert scaled_ms(origin + 1_000, 20.0, origin) == origin + 20_000  # 1 wall s is 20 clock s
    assert scaled_ms(origin - 1_000, 20.0, origin) == origin - 20_000
    assert scaled_ms(origin + 1_000, 1.0, 0) == origin + 1_000  # S = 1 is wall time whatever T is


def test_host_and_desk_clocks_are_the_contract_clock() -> None:
    assert issubclass(device.clock.ScaledClock, ScaledClock)
    assert host_agent.clock.ScaledClock is ScaledClock
    origin = ScaledClock().now_ms() - 10_000
    desk, host = device.clock.ScaledClock(60.0, origin), host_agent.clock.ScaledClock(60.0, origin)
    assert abs(desk.now_ms() - host.now_ms()) < 60 * 50  # two reads within 50 ms of wall time


@pytest.mark.parametrize("scale", [0, -1.0, math.nan, math.inf, "20"])
def test_a_time_scale_must_be_a_finite_number_above_zero(scale: object) -> None:
    with pytest.raises(ValueError, match="time scale must be a finite number > 0"):
        check_time_scale(scale)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="time scale must be a finite number > 0"):
        ScaledClock(scale)  # type: ignore[arg-type]


@pytest.mark.parametrize(("scale", "origin", "message"), [
    (math.inf, None, "--time-scale must be a number from 1e-09 to 1000, not inf"),
    (math.nan, None, "--time-scale must be a number from 1e-09 to 1000, not nan"),
    (1e308, None, "--time-scale must be a number from 1e-09 to 1000, not 1e+308"),
    (1e-308, None, "--time-scale must be a number from 1e-09 to 1000, not 1e-308"),
    (2.0, 99999999999999999999, "--time-origin-ms must be from 0 to 253402300799999 "),
    (2.0, -99999999999999999999, "--time-origin-ms must be from 0 to 253402300799999 "),
    (1000.0, 0, "--time-origin-ms 0 with --time-scale 1000 puts the clock now at "),
])
def test_time_flags_out_of_range_are_named_with_the_range(scale: float, origin: int | None, message: str) -> None:
    with pytest.raises(ValueError) as exc:
        check_time_flags(scale, origin)
    assert str(exc.value).startswith(message)


@pytest.mark.parametrize(("scale", "origin"), [(1e-9, None), (1000.0, None), (20.0, 1_795_000_000_000), (1.0, 0)])
def test_time_flags_in_range_pass(scale: float, origin: int | None) -> None:
    check_time_flags(scale, origin)


def test_a_nearly_stopped_desk_clock_sleeps_without_overflowing() -> None:
    """At 1e-9 an hour of clock time is 114,000 years of wall time: more than the OS can wait."""
    stop = threading.Event()
    stop.set()
    assert device.clock.ScaledClock(1e-9).sleep(3600, stop) is True
