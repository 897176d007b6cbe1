"""QoS and retain flag of each topic kind (see docs/mqtt.md)."""

from __future__ import annotations

from typing import Final

QOS: Final[dict[str, int]] = {
    "state": 1,
    "metrics": 0,
    "event": 1,
    "minute": 1,
    "call": 1,
    "config": 1,
    "cti": 1,
    "alert": 1,
    "alert-log": 1,
}
RETAIN: Final[dict[str, bool]] = {
    "state": True,
    "metrics": False,
    "event": False,
    "minute": False,
    "call": False,
    "config": True,
    "cti": False,
    "alert": True,
    "alert-log": False,
}
