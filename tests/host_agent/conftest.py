"""Host fixtures: a HostService on the real mosquitto, with a manual clock and its own database, and
``history_db``: the history database a test runs on, once as a SQLite path and once as a PostgreSQL URL."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from host_agent.clock import ManualClock
from host_agent.config import BrokerConfig, DashboardConfig, HostConfig
from host_agent.history import open_store
from host_agent.processor import Processor
from host_agent.service import HostService
from tests.conftest import Postgres
from tests.host_agent.helpers import T0
from tests.waiting import wait_for

TOKEN = "test-token-123"


def host_config(broker_url: str, db: Path | str, **kw: Any) -> HostConfig:
    broker = kw.pop("broker", {})
    return HostConfig(broker=BrokerConfig(url=broker_url, **broker), db=str(db), sites=kw.pop("sites", ("site1",)),
                      dashboard=DashboardConfig(port=0, token=TOKEN), **kw)


def settle(service: HostService, handled: int, deadline_s: float = 10.0, evaluate: bool = True) -> None:
    """Wait until the host has an outcome for ``handled`` messages, then (by default) evaluate alerts."""
    p = service.processor
    assert p is not None
    wait_for(lambda: p.stats.handled_total >= handled, deadline_s,
               f"{handled} messages handled (have {p.stats.handled_total})")
    if evaluate:
        service.sync()


BACKENDS = ["sqlite", pytest.param("postgresql", marks=pytest.mark.needs("postgresql"))]
"""The history backends a storage-dependent test runs on (the ids ``[sqlite]`` and ``[postgresql]``)."""


def new_history_db(backend: str, folder: Path, request: pytest.FixtureRequest) -> str:
    """An empty history database: a SQLite path in ``folder``, or a fresh PostgreSQL database's URL."""
    if backend == "sqlite":
        return str(folder / "host.db")
    pg: Postgres = request.getfixturevalue("postgresql")
    return pg.create_database()


@pytest.fixture(params=BACKENDS)
def history_db(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """The test's history database: a SQLite file path, or the URL of its own PostgreSQL database."""
    return new_history_db(request.param, tmp_path, request)


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock(T0)


MakeProcessor = Callable[..., Processor]


@pytest.fixture
def make_processor(tmp_path: Path, clock: ManualClock) -> MakeProcessor:
    """``make(config=HostConfig(), db=None)``: a Processor on the test's manual clock with its own history store
    (``db``, a path or URL, e.g. ``history_db``; else ``tmp_path/h.db``). The test closes ``p.store``."""

    def make(config: HostConfig | None = None, db: str | None = None) -> Processor:
        return Processor(config or HostConfig(), clock, open_store(db or str(tmp_path / "h.db")))

    return make


@pytest.fixture
def make_host(tmp_path: Path, clock: ManualClock) -> Iterator[Callable[..., HostService]]:
    started: list[HostService] = []

    def make(url: str, db_name: str = "host.db", client_id: str = "host-under-test", *, db: str | None = None,
             **kw: Any) -> HostService:
        """A started host; its history is ``db`` (a path or URL, e.g. ``history_db``) or ``tmp_path/db_name``."""
        cfg = host_config(url, db or tmp_path / db_name, **kw)
        s = HostService(cfg, clock, client_id=client_id).start()
        started.append(s)
        return s

    yield make
    for s in started:
        s.stop()


__all__ = ["BACKENDS", "TOKEN", "host_config", "new_history_db", "replace", "settle"]
