"""host_agent.scheduler: named periodic jobs on a caller-given clock (no sleeping)."""

from __future__ import annotations

import pytest

from host_agent.scheduler import Scheduler


def test_a_job_is_due_once_per_period() -> None:
    jobs = Scheduler(100.0, {"commit": 0.2, "prune": 3600.0})
    assert not jobs.due("commit", 100.1)
    assert jobs.due("commit", 100.2)
    assert not jobs.due("commit", 100.3)  # counted as run at 100.2
    assert jobs.due("commit", 100.45)
    assert not jobs.due("prune", 100.45)
    assert jobs.due("prune", 3700.0)


def test_due_at_start_and_on_demand_runs() -> None:
    jobs = Scheduler(10.0, {"prune": 60.0, "snapshot": 0.25}, due_at_start=("prune",))
    assert jobs.due("prune", 10.0)
    assert not jobs.due("prune", 69.9)
    jobs.ran("snapshot", 11.0)
    assert jobs.since("snapshot", 11.5) == pytest.approx(0.5)
    assert not jobs.due("snapshot", 11.2)
    assert jobs.due("snapshot", 11.25)


def test_unknown_jobs_and_bad_periods_are_named() -> None:
    with pytest.raises(ValueError, match="'commit'"):
        Scheduler(0.0, {"commit": -1.0})
    jobs = Scheduler(0.0, {"commit": 1.0})
    with pytest.raises(KeyError, match="no job named 'comit'"):
        jobs.due("comit", 1.0)
    with pytest.raises(KeyError, match="no job named 'x'"):
        Scheduler(0.0, {"commit": 1.0}, due_at_start=("x",))
