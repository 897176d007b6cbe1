"""Host fixtures: a HostService on the real mosquitto, with a manual clock and its own database."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from host_agent.clock import ManualClock
from host_agent.config import BrokerConfig, DashboardConfig, HostConfig
from host_agent.service import HostService
from tests.host_agent.helpers import T0, wait_until

TOKEN = "test-token-123"


def host_config(broker_url: str, db: Path, **kw: Any) -> HostConfig:
    broker = kw.pop("broker", {})
    return HostConfig(broker=BrokerConfig(url=broker_url, **broker), db=str(db), sites=kw.pop("sites", ("site1",)),
                      dashboard=DashboardConfig(port=0, token=TOKEN), **kw)


def settle(service: HostService, handled: int, deadline_s: float = 10.0, evaluate: bool = True) -> None:
    """Wait until the host has an outcome for ``handled`` messages, then (by default) evaluate alerts."""
    p = service.processor
    assert p is not None
    wait_until(lambda: p.stats.handled_total >= handled, deadline_s,
               f"{handled} messages handled (have {p.stats.handled_total})")
    if evaluate:
        service.sync()


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock(T0)


@pytest.fixture
def make_host(tmp_path: Path, clock: ManualClock) -> Iterator[Callable[..., HostService]]:
    started: list[HostService] = []

    def make(url: str, db_name: str = "host.db", client_id: str = "host-under-test", **kw: Any) -> HostService:
        cfg = host_config(url, tmp_path / db_name, **kw)
        s = HostService(cfg, clock, client_id=client_id).start()
        started.append(s)
        return s

    yield make
    for s in started:
        s.stop()


__all__ = ["TOKEN", "host_config", "replace", "settle"]
