"""The import rules of docs/architecture.md, checked on every .py file of the four packages.

A small AST walk (no dependency): every ``import`` and ``from ... import`` statement, wherever it
stands (top level, inside a function, under ``TYPE_CHECKING``), is resolved to an absolute dotted name
and checked against the rules of the package it is in. ``from a.b import c`` counts as importing
``a.b.c``, so ``from device import config`` is an import of ``device.config``. Dynamic imports
(``importlib.import_module``) are not seen.
"""

from __future__ import annotations

import ast
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = ("mqtt_schema", "device", "host_agent", "hw")
OURS = frozenset((*PACKAGES, "tests", "bench"))

MICROPYTHON_MODULES = frozenset({
    "array", "binascii", "collections", "errno", "gc", "hashlib", "io", "json", "machine", "math",
    "micropython", "neopixel", "os", "random", "re", "rp2", "select", "struct", "sys", "time", "typing",
    "uctypes", "ujson", "uos", "uselect", "ustruct", "utime",
})
"""Modules the headset firmware may import besides its siblings (MicroPython's, for the RP2040)."""

DSP_THIRD_PARTY = frozenset({"numpy", "scipy"})
DSP_FORBIDDEN_STDLIB = frozenset({
    "datetime", "io", "os", "pathlib", "shutil", "socket", "sqlite3", "subprocess", "tempfile", "threading", "time",
})
"""The DSP is computation on arrays: no files, no sockets, no threads, no clock of its own."""


@dataclass(frozen=True)
class Import:
    line: int
    name: str
    """The absolute dotted name imported (``from a import b`` gives ``a.b``)."""


@dataclass(frozen=True)
class Rule:
    """Which of our modules the modules under ``package`` may import (dotted prefixes)."""

    package: str
    may_import: tuple[str, ...]
    why: str


RULES = (
    Rule("mqtt_schema", ("mqtt_schema",), "mqtt_schema is the contract: it imports nothing of ours"),
    Rule("device.dsp", ("device.dsp", "device.errors"),
         "device/dsp is pure computation: it imports only its own modules and the desk's error root"),
    Rule("device.inputs", ("device.inputs", "device.config", "device.errors", "device.logs", "device.clock",
                           "mqtt_schema", "hw.firmware.headset_link"),
         "the desk's inputs (audio, headset link, posture) read the config, never the outputs, the service or the commands"),
    Rule("device.outputs", ("device.outputs", "device.config", "device.dsp", "device.calls", "device.errors",
                            "device.logs", "device.clock", "mqtt_schema"),
         "the desk's outputs (cues, LEDs, rollups, spool, publisher) never the inputs, the service or the commands"),
    Rule("device", ("device", "mqtt_schema", "hw.firmware.headset_link"),
         "the desk imports only itself, the contract and the headset-link protocol; never host_agent"),
    Rule("host_agent.demo", ("host_agent", "mqtt_schema", "hw.virtual_headset"),
         "the demo starts desks as processes; of hw it uses only the virtual headset"),
    Rule("host_agent", ("host_agent", "mqtt_schema"), "the host imports only itself and the contract; never device"),
    Rule("hw.firmware", (), "the firmware runs on MicroPython: it imports only MicroPython modules and its siblings"),
    Rule("hw", ("hw", "device", "mqtt_schema"),
         "the facilities tool may reuse the desk's code and the contract; never host_agent"),
)
"""Most specific package first: a module follows the first rule whose package contains it."""


def module_name(path: Path) -> str:
    """``device/dsp/p56.py`` → ``device.dsp.p56``; a package's ``__init__.py`` is the package."""
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _within(name: str, prefix: str) -> bool:
    return name == prefix or name.startswith(prefix + ".")


def imports(source: str, module: str, is_package: bool = False) -> Iterator[Import]:
    """Every import in ``source`` (the text of ``module``), relative ones made absolute."""
    package = module if is_package else module.rpartition(".")[0]
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield Import(node.lineno, alias.name)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                up = package.split(".")[: len(package.split(".")) - (node.level - 1)]
                base = ".".join([*up, base] if base else up)
            for alias in node.names:
                yield Import(node.lineno, base if alias.name == "*" else f"{base}.{alias.name}")


def rule_for(module: str) -> Rule | None:
    return next((r for r in RULES if _within(module, r.package)), None)


def violations(source: str, module: str, path: str, siblings: frozenset[str] = frozenset(),
               is_package: bool = False) -> list[str]:
    """``path:line: imports name (why)`` for each import of ``source`` that breaks its package's rule.

    ``siblings`` are the bare module names next to a firmware file (MicroPython imports them so).
    """
    rule = rule_for(module)
    if rule is None:
        return []
    found = []
    for imp in imports(source, module, is_package):
        top = imp.name.split(".")[0]
        if rule.package == "hw.firmware":
            ok = top not in OURS and (top in MICROPYTHON_MODULES or top in siblings or top == "__future__")
        elif top in OURS:
            ok = any(_within(imp.name, allowed) for allowed in rule.may_import)
        elif rule.package == "device.dsp":
            ok = top in DSP_THIRD_PARTY or (top in sys.stdlib_module_names and top not in DSP_FORBIDDEN_STDLIB)
        else:
            ok = True
        if not ok:
            found.append(f"{path}:{imp.line}: imports {imp.name} ({rule.why})")
    return found


def tree_violations() -> list[str]:
    found = []
    for package in PACKAGES:
        for path in sorted((ROOT / package).rglob("*.py")):
            siblings = frozenset(p.stem for p in path.parent.glob("*.py"))
            found += violations(path.read_text(encoding="utf-8"), module_name(path), str(path.relative_to(ROOT)),
                                siblings, is_package=path.name == "__init__.py")
    return found


def test_every_module_keeps_the_import_rules() -> None:
    found = tree_violations()
    assert not found, "import rules broken (see docs/architecture.md):\n" + "\n".join(found)


def test_every_module_of_the_four_packages_has_a_rule() -> None:
    for package in PACKAGES:
        for path in (ROOT / package).rglob("*.py"):
            assert rule_for(module_name(path)) is not None, path


# --- the checker itself catches what it should ------------------------------------------------------

@pytest.mark.parametrize(("module", "source", "line", "name"), [
    ("mqtt_schema.codec", "import json\nfrom device.errors import AgentError\n", 2, "device.errors.AgentError"),
    ("device.service", "def f():\n    import host_agent.service\n", 2, "host_agent.service"),
    ("device.cli", "from host_agent import clock\n", 1, "host_agent.clock"),
    ("device.outputs.leds", "from hw.flashing import ports\n", 1, "hw.flashing.ports"),
    ("host_agent.processor", "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from device import config\n",
     3, "device.config"),
    ("host_agent.floor", "from hw.virtual_headset import VirtualHeadset\n", 1, "hw.virtual_headset.VirtualHeadset"),
    ("hw.commands.flash", "import host_agent.config\n", 1, "host_agent.config"),
    ("device.dsp.p56", "from device.config.agent import AgentConfig\n", 1, "device.config.agent.AgentConfig"),
    ("device.dsp.vad", "from ..outputs.publisher import DeskPublisher\n", 1, "device.outputs.publisher.DeskPublisher"),
    ("device.dsp.vad", "import numpy as np\nimport paho.mqtt.client as mqtt\n", 2, "paho.mqtt.client"),
    ("device.dsp.noise", "import time\n", 1, "time"),
    ("device.inputs.posture", "from device.outputs.leds import LedPanel\n", 1, "device.outputs.leds.LedPanel"),
    ("device.outputs.cues", "from device.service import AgentService\n", 1, "device.service.AgentService"),
    ("hw.firmware.hs_app", "import device.dsp\n", 1, "device.dsp"),
    ("hw.firmware.hs_app", "import threading\n", 1, "threading"),
])
def test_the_checker_names_the_file_line_and_import_that_break_a_rule(module: str, source: str, line: int,
                                                                      name: str) -> None:
    path = module.replace(".", "/") + ".py"
    found = violations(source, module, path, siblings=frozenset({"hs_config", "headset_link"}))
    assert len(found) == 1, found
    assert found[0].startswith(f"{path}:{line}: imports {name} (")


@pytest.mark.parametrize(("module", "source"), [
    ("mqtt_schema.codec", "import msgspec\nfrom mqtt_schema.errors import SchemaError\nfrom . import topics\n"),
    ("device.service", "from device.dsp import StreamingAnalyzer\nfrom mqtt_schema import Cue\n"),
    ("device.inputs.headset_client", "from hw.firmware import headset_link as hl\n"),
    ("device.dsp.p56", "import math\nimport numpy as np\nfrom device.dsp.errors import DspError\n"
                       "from device.errors import AgentError\nfrom .ring import Ring\n"),
    ("host_agent.demo.runner", "from hw.virtual_headset import VirtualHeadset\nfrom host_agent.clock import ScaledClock\n"),
    ("hw.commands.calibrate_model", "from device.commands.calibrate import calibrate_recording\n"),
    ("hw.firmware.hs_app", "import headset_link as link\nimport hs_config\nimport machine\n"),
])
def test_the_checker_passes_what_the_rules_allow(module: str, source: str) -> None:
    siblings = frozenset({"hs_config", "headset_link"})
    assert violations(source, module, module.replace(".", "/") + ".py", siblings) == []


def test_relative_imports_are_resolved_from_the_importing_module() -> None:
    assert [i.name for i in imports("from . import a\nfrom ..b import c\n", "device.dsp.vad")] == [
        "device.dsp.a", "device.b.c"]
    assert [i.name for i in imports("from .x import y\n", "device.dsp", is_package=True)] == ["device.dsp.x.y"]
