"""Calibrate a headset model from a rig recording (mouth simulator at a known distance) and store
it as hw/models/<model>.toml. NOT AVAILABLE YET: it needs the desk DSP's streaming analyser
(device.dsp.StreamingAnalyzer) and calibration file code (device.calibration_file), which this
build does not have; the command says so and exits 1."""

from __future__ import annotations

import argparse
import importlib
import importlib.util

from hw.errors import FlashError

EXAMPLE = """example:
  headset-flash calibrate-model --model jabra-biz-2300 --recording rig-5cm.wav --distance-cm 5"""


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--model", required=True, help="headset model name ([a-z0-9-])")
    parser.add_argument("--recording", required=True, help="2-channel rig recording (boom, ear cup)")
    parser.add_argument("--distance-cm", type=float, default=5.0, help="mouth-to-boom distance of the rig")


def run(args: argparse.Namespace) -> int:
    missing = [m for m in ("device.calibration_file",) if importlib.util.find_spec(m) is None]
    if getattr(importlib.import_module("device.dsp"), "StreamingAnalyzer", None) is None:
        missing.insert(0, "device.dsp.StreamingAnalyzer")
    raise FlashError("calibrate-model is not built yet: it needs " + " and ".join(missing or ["its calibration code"])
                     + " from the desk DSP")
