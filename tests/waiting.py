"""Waiting in tests: one poll loop for every test that waits on real processes and brokers."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any


def wait_for(pred: Callable[[], Any], deadline_s: float = 10.0, what: str = "condition", poll_s: float = 0.01) -> Any:
    """``pred()``'s first truthy value, polled every ``poll_s`` seconds; AssertionError naming ``what``
    after ``deadline_s`` seconds without one."""
    end = time.monotonic() + deadline_s
    while time.monotonic() < end:
        value = pred()
        if value:
            return value
        time.sleep(poll_s)
    raise AssertionError(f"{what} not reached within {deadline_s} s")
