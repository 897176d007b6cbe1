"""The shared clock formula: host and desks compute the same time from the same ``T`` and ``S``."""

from __future__ import annotations

import math

import pytest

import device.clock
import host_agent.clock
from mqtt_schema.clock import ScaledClock, check_time_scale, scaled_ms


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
