"""Make a headset calibration from a 2-channel recording (boom, ear cup) of the wearer speaking
with the boom at a known distance from the lips (default 5 cm): the own-voice boom-minus-ear-cup
level difference there, the reference voice level (ITU-T P.56, dBov) and the mic ids, written as
a small TOML file. Refuses mono recordings and recordings with less than 3 s of own speech.

:func:`check_distance`, :func:`check_raw_rate` and :func:`calibrate_recording` are shared with facilities'
``headset-flash calibrate-model`` (:mod:`hw.commands.calibrate_model`), which stores the same
calibration in a model library.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import numpy.typing as npt

from device.commands import refuse_empty
from device.config.calibration_file import dumps, save
from device.dsp import DspError, HeadsetCalibration, calibrate
from device.dsp.ild_calibration import DISTANCE_RANGE_CM
from device.errors import CalibrationError, UsageError
from device.inputs.audio_file import RAW_RATE_RANGE_HZ, AudioInfo, check_whole, probe, read_all

EXAMPLE = """example:
  headset-agent calibrate rig-5cm.wav --distance-cm 5 --out headset.toml --model hs-200 \\
      --boom-mic-id B123 --ear-mic-id E456
"""


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("file", metavar="FILE", help="2-channel recording (WAV, FLAC)")
    parser.add_argument("--distance-cm", type=float, default=5.0, help="mouth-to-boom distance (cm, default 5)")
    parser.add_argument("--out", required=True, metavar="FILE", help="calibration TOML to write")
    parser.add_argument("--model", default="", help="headset model name")
    parser.add_argument("--boom-mic-id", default="", metavar="ID")
    parser.add_argument("--ear-mic-id", default="", metavar="ID")
    parser.add_argument("--force", action="store_true", help="replace an existing --out file")
    parser.add_argument("--raw-rate", type=int, metavar="HZ", help="sample rate of a raw s16le file")


def check_distance(distance_cm: float) -> str | None:
    """Why ``--distance-cm`` (cm) cannot be used for a calibration, or None when it can."""
    low, high = DISTANCE_RANGE_CM
    if not low <= distance_cm <= high:
        return f"--distance-cm must be from {low:g} to {high:g} cm, got {distance_cm}"
    return None


def check_raw_rate(raw_rate_hz: int | None) -> str | None:
    """Why ``--raw-rate`` (Hz; None: not given) cannot be used, or None when it can."""
    lo, hi = RAW_RATE_RANGE_HZ
    if raw_rate_hz is not None and not lo <= raw_rate_hz <= hi:
        return f"--raw-rate must be from {lo} to {hi} Hz, got {raw_rate_hz}"
    return None


def calibrate_recording(info: AudioInfo, audio: npt.NDArray[np.float64], distance_cm: float, *, model: str,
                        boom_mic_id: str, ear_mic_id: str) -> HeadsetCalibration:
    """The headset calibration of the 2-channel recording ``info`` (read as ``audio``), made at
    ``distance_cm`` (cm) from the lips. Raises :class:`CalibrationError` naming the file when the DSP
    cannot make one (mono, too little own speech)."""
    try:
        return calibrate(audio, info.rate_hz, distance_cm, model=model, boom_mic_id=boom_mic_id,
                         ear_mic_id=ear_mic_id)
    except DspError as exc:
        raise CalibrationError(f"{info.path}: {exc}") from exc


def run(args: argparse.Namespace) -> int:
    refuse_empty(("FILE", args.file, "empty path"), ("--out", args.out, "empty path"))
    for problem in (check_distance(args.distance_cm), check_raw_rate(args.raw_rate)):
        if problem is not None:
            raise UsageError(problem)
    file, out = Path(args.file), Path(args.out)
    if out.exists() and not args.force:
        raise CalibrationError(f"{out}: already exists (use --force to replace it)")
    info = probe(file, args.raw_rate)
    if info.channels != 2:
        what = "is mono" if info.channels == 1 else f"has {info.channels} channels"
        raise CalibrationError(f"{file}: {what}; a calibration needs 2 channels (boom and ear-cup mics)")
    check_whole(info)  # a cut-off copy would calibrate from part of the recording
    cal = calibrate_recording(info, read_all(info), args.distance_cm, model=args.model,
                              boom_mic_id=args.boom_mic_id, ear_mic_id=args.ear_mic_id)
    save(cal, out, force=args.force)
    print(f"wrote {out}")
    print(dumps(cal), end="")
    return 0
