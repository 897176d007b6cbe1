"""Make a headset calibration from a 2-channel recording (boom, ear cup) of the wearer speaking
with the boom at a known distance from the lips (default 5 cm): the own-voice boom-minus-ear-cup
level difference there, the reference voice level (ITU-T P.56, dBov) and the mic ids, written as
a small TOML file. Refuses mono recordings and recordings with less than 3 s of own speech.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from device.audio_file import probe, read_all
from device.calibration_file import dumps, save
from device.dsp import DspError, calibrate
from device.errors import CalibrationError, UsageError

EXAMPLE = """example:
  headset-agent calibrate rig-5cm.wav --distance-cm 5 --out headset.toml --model hs-200 \\
      --boom-mic-id B123 --ear-mic-id E456
"""


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("file", metavar="FILE", type=Path, help="2-channel recording (WAV, FLAC)")
    parser.add_argument("--distance-cm", type=float, default=5.0, help="mouth-to-boom distance (cm, default 5)")
    parser.add_argument("--out", type=Path, required=True, metavar="FILE", help="calibration TOML to write")
    parser.add_argument("--model", default="", help="headset model name")
    parser.add_argument("--boom-mic-id", default="", metavar="ID")
    parser.add_argument("--ear-mic-id", default="", metavar="ID")
    parser.add_argument("--force", action="store_true", help="replace an existing --out file")
    parser.add_argument("--raw-rate", type=int, metavar="HZ", help="sample rate of a raw s16le file")


def run(args: argparse.Namespace) -> int:
    if not 0.5 <= args.distance_cm <= 50.0:
        raise UsageError(f"--distance-cm must be from 0.5 to 50 cm, got {args.distance_cm}")
    if args.out.exists() and not args.force:
        raise CalibrationError(f"{args.out}: already exists (use --force to replace it)")
    info = probe(args.file, args.raw_rate)
    if info.channels != 2:
        what = "is mono" if info.channels == 1 else f"has {info.channels} channels"
        raise CalibrationError(f"{args.file}: {what}; a calibration needs 2 channels (boom and ear-cup mics)")
    try:
        cal = calibrate(read_all(info), info.rate_hz, args.distance_cm, model=args.model,
                        boom_mic_id=args.boom_mic_id, ear_mic_id=args.ear_mic_id)
    except DspError as exc:
        raise CalibrationError(f"{args.file}: {exc}") from exc
    save(cal, args.out, force=args.force)
    print(f"wrote {args.out}")
    print(dumps(cal), end="")
    return 0
