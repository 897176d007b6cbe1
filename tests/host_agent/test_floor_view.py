"""The dashboard depends on the FloorView protocol, not on the host service: checked on the source,
and the service is checked to provide every method of the protocol with the same parameters."""

from __future__ import annotations

import ast
import inspect
from pathlib import Path

import host_agent.dashboard as dashboard
from host_agent.floor_view import FloorView
from host_agent.service import HostService


def test_the_dashboard_does_not_import_the_service() -> None:
    tree = ast.parse(Path(dashboard.__file__).read_text())
    imported = {node.module for node in ast.walk(tree) if isinstance(node, ast.ImportFrom)}
    imported |= {a.name for node in ast.walk(tree) if isinstance(node, ast.Import) for a in node.names}
    assert "host_agent.service" not in imported
    assert "host_agent.floor_view" in imported


def test_the_service_provides_the_floor_view() -> None:
    wanted = [name for name, value in vars(FloorView).items() if callable(value) and not name.startswith("_")]
    assert len(wanted) == 9
    for name in wanted:
        ours = getattr(HostService, name, None)
        assert callable(ours), f"HostService lacks {name}()"
        assert list(inspect.signature(ours).parameters) == list(inspect.signature(getattr(FloorView, name)).parameters), name
