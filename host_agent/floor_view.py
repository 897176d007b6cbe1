"""What the dashboard reads from the host and asks of it: the :class:`FloorView` protocol.

The dashboard (:mod:`host_agent.dashboard`) serves HTTP on its own threads and never touches the
host's processing state: it reads versioned snapshots, waits for the next one, and hands silences to
the host. :class:`host_agent.service.HostService` implements this protocol; the dashboard depends
only on it, so the service's locks and threads stay the service's own.
"""

from __future__ import annotations

from typing import Any, Protocol


class FloorView(Protocol):
    """The floor as the dashboard sees it. Times in seconds."""

    def snapshot(self) -> tuple[int, dict[str, Any]]:
        """(version, the latest floor snapshot: desks, alerts, counters)."""
        ...

    def wait_for_change(self, seen: int, timeout_s: float) -> tuple[int, dict[str, Any]]:
        """The first snapshot whose version is not ``seen``, or the current one after ``timeout_s``
        (or sooner, after :meth:`wake_viewers`)."""
        ...

    def wake_viewers(self) -> None:
        """Wake every :meth:`wait_for_change` now (the dashboard is closing)."""
        ...

    def metrics_text(self) -> str:
        """The Prometheus exposition text of ``/metrics``."""
        ...

    def rule_names(self) -> list[str]:
        """The configured alert rules, by name."""
        ...

    def silences(self) -> list[dict[str, Any]]:
        """The running silences with their ids, the soonest to end first."""
        ...

    def add_silence(self, site: str, desk: str, rule: str, for_s: float, *, by: str = "",
                    everything: bool = False) -> dict[str, Any]:
        """Silence ``rule`` (or ``*``) on ``desk`` (or ``*``) of ``site`` for ``for_s``; the new silence."""
        ...

    def change_silence(self, silence_id: int, extend_s: float | None = None) -> dict[str, Any]:
        """End silence ``silence_id`` now (``extend_s`` None), or move its end ``extend_s`` later."""
        ...

    def alert_history(self, *, site: str | None = None, desk: str | None = None, rule: str | None = None,
                      limit: int = 50) -> list[dict[str, Any]]:
        """The newest ``limit`` alert transitions, newest first."""
        ...
