"""The per-board config file (hs_config.json) written at flash time, validated by the firmware's
own rules (hw/firmware/hs_config.py) before it leaves the laptop."""

from __future__ import annotations

import json
from typing import Any

from hw.errors import UsageError
from hw.virtual_headset.firmware import load_firmware


def build_config(**values: Any) -> bytes:
    """JSON bytes for the board; None values are left to the firmware's defaults."""
    raw = {k: v for k, v in values.items() if v is not None}
    hs_config = load_firmware()["hs_config"]
    _cfg, errors = hs_config.validate(raw)
    if errors:
        raise UsageError("device config: " + "; ".join(errors))
    return (json.dumps(raw, sort_keys=True, indent=1) + "\n").encode()
