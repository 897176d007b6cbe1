"""Calibrate a headset model from a head-and-torso rig recording (a mouth simulator speaking with the
boom at a known distance, default 5 cm) and store it in the model library as ``<model>.toml``.

The calibration is the desk DSP's own, made by the same function as ``headset-agent calibrate``
(:func:`device.commands.calibrate.calibrate_recording`): the own-voice boom-minus-ear-cup
level difference at that distance (dB), the reference voice level (ITU-T P.56, dBov) and the mic
ids. Copy a model's file to each desk unit with that headset and point ``[calibration] file`` of its
agent.toml at it. ``--list`` shows the library.

The recording is refused, with the file and the reason, when it is not a 2-channel rig recording:
unreadable or truncated, silent (or one mic silent), identical channels (mono saved as stereo), an
ear cup louder than the boom (channels swapped), or too little own speech.
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path

import numpy as np
import numpy.typing as npt

from device.commands.calibrate import calibrate_recording, check_distance, check_raw_rate
from device.config.calibration_file import dumps, load, save
from device.errors import AgentError
from device.inputs.audio_file import AudioInfo, check_whole, probe, read_all
from device.inputs.channel_layout import EAR_LOUDER_DB, ChannelCheck
from hw.commands import check_ids, refuse_empty
from hw.errors import FlashError, UsageError

EXAMPLE = """examples:
  headset-flash calibrate-model --model jabra-biz-2300 --recording rig-5cm.wav --distance-cm 5
  headset-flash calibrate-model --list
  headset-flash calibrate-model --model hs-200 --recording rig.flac --models-dir /srv/headset-models --force"""


def default_models_dir() -> Path:
    """``$HEADSET_MODELS_DIR``, else ``$XDG_DATA_HOME/headset-coach/models`` (~/.local/share/...)."""
    if os.environ.get("HEADSET_MODELS_DIR"):
        return Path(os.environ["HEADSET_MODELS_DIR"])
    base = os.environ.get("XDG_DATA_HOME") or str(Path.home() / ".local" / "share")
    return Path(base) / "headset-coach" / "models"


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--model", help="headset model name ([a-z0-9-], at most 32 characters)")
    parser.add_argument("--recording", help="2-channel rig recording (channel 0 boom, 1 ear cup)")
    parser.add_argument("--distance-cm", type=float, default=5.0, help="mouth-to-boom distance of the rig (cm)")
    parser.add_argument("--boom-mic-id", default="", metavar="ID", help="the boom mic's part or serial number")
    parser.add_argument("--ear-mic-id", default="", metavar="ID", help="the ear-cup mic's part or serial number")
    parser.add_argument("--raw-rate", type=int, metavar="HZ",
                        help="sample rate of a raw s16le recording (2 channels interleaved: boom, ear cup)")
    parser.add_argument("--models-dir", default=None,
                        help="the model library (default $HEADSET_MODELS_DIR or ~/.local/share/headset-coach/models)")
    parser.add_argument("--force", action="store_true", help="replace the model's existing calibration")
    parser.add_argument("--list", action="store_true", help="list the calibrated models in the library")


def _list(models: Path) -> int:
    files = sorted(models.glob("*.toml")) if models.is_dir() else []
    if not files:
        print(f"no calibrated models in {models}")
        return 0
    print(f"{'model':<24} {'distance':>8} {'ILD offset':>10} {'voice level':>11}  file")
    for f in files:
        try:
            cal = load(f)
        except AgentError as exc:
            print(f"{f.stem:<24} unreadable: {exc}")
            continue
        print(f"{f.stem:<24} {cal.distance_cm:>6.1f} cm {cal.ild_offset_db:>7.2f} dB "
              f"{cal.reference_level_dbov:>6.1f} dBov  {f}")
    return 0


def run(args: argparse.Namespace) -> int:
    refuse_empty(("--models-dir", args.models_dir, "empty path (leave it out for the default library)"),
                 ("--recording", args.recording, "empty path"))
    models = default_models_dir() if args.models_dir is None else Path(args.models_dir)
    if args.list:
        return _list(models)
    if args.model is None or args.recording is None:
        raise UsageError("calibrate-model needs --model and --recording (or --list)")
    check_ids(("--model", args.model))
    for problem in (check_distance(args.distance_cm), check_raw_rate(args.raw_rate)):
        if problem is not None:
            raise UsageError(problem)
    recording = Path(args.recording)
    out = models / f"{args.model}.toml"
    if out.exists() and not args.force:
        raise FlashError(f"model {args.model} is already calibrated ({out}); use --force to replace it")
    try:
        info = probe(recording, args.raw_rate, raw_channels=2)
        if info.channels != 2:
            what = "1 channel (mono)" if info.channels == 1 else f"{info.channels} channels"
            raise FlashError(f"{recording}: has {what}; a rig recording needs 2: the boom mic on channel 0, "
                             "the ear-cup mic on channel 1")
        check_whole(info)
        print(f"calibrating {args.model} from {recording} ({info.duration_s:.1f} s at "
              f"{args.distance_cm:g} cm)...", flush=True)
        audio = read_all(info)
        check_rig_channels(info, audio)
        cal = calibrate_recording(info, audio, args.distance_cm, model=args.model,
                                  boom_mic_id=args.boom_mic_id, ear_mic_id=args.ear_mic_id)
    except AgentError as exc:  # the desk's audio-file and calibration errors, in facilities' words
        raise FlashError(str(exc)) from exc
    try:
        models.mkdir(parents=True, exist_ok=True)
        save(cal, out, force=args.force)
    except AgentError as exc:
        raise FlashError(str(exc)) from exc
    except OSError as exc:
        raise FlashError(f"cannot store the calibration in the model library {models}: "
                         f"{exc.strerror or exc}") from None
    print(f"stored {out}")
    print(dumps(cal), end="")
    return 0


def check_rig_channels(info: AudioInfo, audio: npt.NDArray[np.float64]) -> None:
    """Refuse a 2-channel recording that cannot be a boom (0) + ear-cup (1) rig recording: silent, a
    silent mic, identical channels, or an ear cup louder than the boom (channels swapped)."""
    names = ("boom mic (channel 0)", "ear-cup mic (channel 1)")
    dead = [names[c] for c in range(2) if not np.any(audio[:, c])]
    if len(dead) == 2:
        raise FlashError(f"{info.path}: is silent (every sample is 0): were the rig's mics connected and recording?")
    if dead:
        raise FlashError(f"{info.path}: the {dead[0]} is silent (every sample is 0): is that mic connected?")
    check = ChannelCheck(info.rate_hz)
    step = max(1, info.rate_hz)  # 1 s blocks: bounded FFT work per call
    for i in range(0, audio.shape[0], step):
        check.add(audio[i: i + step])
    report = check.report()
    if report.identical:
        raise FlashError(f"{info.path}: channels 0 and 1 are identical (a mono recording saved as stereo?); a rig "
                         "recording needs the boom mic on channel 0 and the ear-cup mic on channel 1")
    d = report.ear_minus_boom_db
    if d is not None and d > EAR_LOUDER_DB:
        raise FlashError(f"{info.path}: the ear-cup channel (1) is {d:.1f} dB louder than the boom (0) in speech: "
                         "channels swapped, or not a rig recording (a stereo music or room file?); the boom mic "
                         "must be channel 0")
