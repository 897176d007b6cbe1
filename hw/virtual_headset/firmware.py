"""Load the headset firmware's logic modules in CPython under their on-board names.

On the board the firmware imports its siblings as top-level modules (``import headset_link``). In
CPython they live in the ``hw.firmware`` package; this registers each logic module under its board
name as the *same* module object, so ``headset_link`` and ``hw.firmware.headset_link`` are one.
hal.py (needs ``machine``), boot.py and main.py are never imported here.
"""

from __future__ import annotations

import importlib
import sys
from types import ModuleType

# Dependency order: each module only imports names before it.
LOGIC_MODULES = ("headset_link", "hs_config", "hs_filter", "hs_wear", "hs_mpu6050", "hs_app", "fakehal")


def load_firmware() -> dict[str, ModuleType]:
    """Import the firmware logic modules; return them by board name."""
    out: dict[str, ModuleType] = {}
    for name in LOGIC_MODULES:
        existing = sys.modules.get(name)
        module = importlib.import_module(f"hw.firmware.{name}") if existing is None else None
        if existing is not None:
            if getattr(existing, "__name__", "") not in (name, f"hw.firmware.{name}"):
                raise ImportError(f"a different module named {name!r} is already imported")
            module = existing
        assert module is not None
        sys.modules[name] = module
        out[name] = module
    return out
