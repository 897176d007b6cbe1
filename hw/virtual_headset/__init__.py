"""Virtual headsets for tests, demos and staff training: the firmware's logic on a fake HAL.

``VirtualHeadset`` runs the firmware logic in CPython behind a pty speaking the headset link.
``VirtualBoard`` (board.py) is a whole MicroPython board on a pty: raw REPL for mpremote, a
filesystem, and after a flash and reset it boots the flashed firmware under MicroPython (wasm).
"""

from hw.virtual_headset.headset import VirtualHeadset
from hw.virtual_headset.trace import SCENARIOS, HeadsetTrace, TraceError

__all__ = ["SCENARIOS", "HeadsetTrace", "TraceError", "VirtualHeadset"]
