"""Analyse recordings offline with the same engine as the live agent: own speech time, syllables,
speaking rate (syllables/min), ITU-T P.56 active speech level (dBov), noise floor, clipping and
mouth-to-mic distance (cm; needs 2 channels and --calibration, else null).

Reads every container libsndfile reads (WAV of any sample format including float and G.711
u-law/A-law, FLAC, OGG/Vorbis, OGG/Opus, MP3, AIFF, AU, CAF, ...), and raw signed 16-bit
little-endian mono (.raw, .pcm, .s16le, or a headerless file) with --raw-rate. Other sample rates
(8 kHz telephone audio, 44.1/48 kHz) are resampled to 16 kHz.

Channel layouts (--layout): headset (channel 0 boom, 1 ear cup; the default for 2 channels),
call (a stereo call recording: the agent's measures from --agent-channel, plus the customer's
speech time and the overlap of both), mono (all channels mixed; the default for 1 channel, and for
more than 2 with a warning). A 2-channel file whose channels are identical, or whose ear cup is
louder than the boom, is analysed as mono with a warning; one whose channels carry the same sound
with opposite polarity (which a mix would cancel) is analysed as its louder channel alone, warned. In mono and call recordings a speech
model (Silero VAD, shipped) tells speech from music: hold music and other sound that is not speech
stay out of speech time and syllables, and a warning says how many seconds were left out; a side
quieter than -45 dBov is analysed again with the model hearing it raised to that level. Warnings go
to stderr and into the JSON "warnings" list.

A file that cannot be analysed gets an error on stderr; the other files are still analysed, and
the exit code is 1.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from device.allocator import keep_freed_memory
from device.commands.calibrate import check_raw_rate
from device.config.calibration_file import load
from device.dsp import HeadsetCalibration
from device.errors import AgentError, UsageError
from device.inputs.audio_file import probe
from device.inputs.channel_layout import Layout
from device.offline_analysis import analyze_file

EXAMPLE = """example:
  headset-agent analyze --json --calibration headset.toml call-0412.wav call-0413.flac
  headset-agent analyze --timeline desk-07.mp3
  headset-agent analyze --raw-rate 16000 mic.s16le
  headset-agent analyze --layout mono podcast.ogg
  headset-agent analyze --json --layout call --agent-channel 1 recorded-call.wav
"""
PREFIX = "headset-agent analyze"
"""Start of each per-file error and warning line on stderr."""
PROGRESS_MIN_S = 30.0
"""Files longer than this show progress on stderr (when it is a terminal)."""

COLUMNS = (("file", "{}", 28), ("duration_s", "{:.1f}", 9), ("speech_s", "{:.1f}", 8), ("syllables", "{}", 9),
           ("rate_spm", "{:.0f}", 8), ("level_dbov", "{:.1f}", 10), ("activity", "{:.2f}", 8),
           ("noise_dbov", "{:.1f}", 10), ("clipping", "{:.4f}", 8), ("distance_cm", "{:.1f}", 11),
           ("intonation_st", "{:.1f}", 13))
CALL_COLUMNS = (("customer_speech_s", "{:.1f}", 17), ("overlap_s", "{:.1f}", 9))
"""Extra table columns in the call layout."""


def _path(text: str) -> Path:
    """A path argument; an empty one is an error (``Path("")`` would be the current folder)."""
    if not text:
        raise argparse.ArgumentTypeError("empty path")
    return Path(text)


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("files", metavar="FILE", nargs="+", type=_path,
                        help="recordings (WAV, FLAC, OGG, Opus, MP3, AIFF, AU, CAF, ..., raw s16le)")
    parser.add_argument("--json", action="store_true", help="one JSON object per file per line")
    parser.add_argument("--calibration", type=_path, metavar="FILE", help="headset calibration TOML (for distance)")
    parser.add_argument("--timeline", action="store_true", help="add per-second values")
    parser.add_argument("--raw-rate", type=int, metavar="HZ",
                        help="sample rate of raw s16le files (.raw, .pcm, .s16le, or headerless)")
    parser.add_argument("--layout", choices=[layout.value for layout in Layout], default=None,
                        help="what the channels are: headset (0 boom, 1 ear cup), call (agent and customer), "
                             "mono (mix all); default: mono for 1 channel, headset for 2, mono for more")
    parser.add_argument("--agent-channel", type=int, metavar="N",
                        help="with --layout call: the agent's channel, 0 or 1 (default 0); the other is "
                             "the customer's")


def _cell(value: Any, fmt: str) -> str:
    return "-" if value is None else fmt.format(value)


def _columns(layout: str | None) -> tuple[tuple[str, str, int], ...]:
    return COLUMNS + CALL_COLUMNS if layout == Layout.CALL else COLUMNS


def _table_header(layout: str | None = None) -> str:
    return " ".join(name.rjust(w) if i else name.ljust(w) for i, (name, _, w) in enumerate(_columns(layout)))


def _table_row(r: dict[str, Any], layout: str | None = None) -> str:
    cells = []
    for i, (name, fmt, w) in enumerate(_columns(layout)):
        text = _cell(r.get(name), fmt)
        if i == 0:
            text = text if len(text) <= w else "..." + text[-(w - 3):]
            cells.append(text.ljust(w))
        else:
            cells.append(text.rjust(w))
    return " ".join(cells)


def _timeline_lines(rows: list[dict[str, Any]]) -> list[str]:
    out = ["   t_s speech  level   rate  dist  noise"]
    for t in rows:
        out.append(f"  {t['t_s']:4d} {t['speech_s']:6.2f} {_cell(t['level_dbov'], '{:6.1f}')} "
                   f"{_cell(t['rate_spm'], '{:6.0f}')} {_cell(t['distance_cm'], '{:5.1f}')} "
                   f"{_cell(t['noise_dbov'], '{:6.1f}')}")
    return out


def _check_args(args: argparse.Namespace) -> None:
    problem = check_raw_rate(args.raw_rate)
    if problem is not None:
        raise UsageError(problem)
    if args.agent_channel is not None:
        if args.layout != Layout.CALL:
            raise UsageError("--agent-channel needs --layout call")
        if args.agent_channel < 0:
            raise UsageError(f"--agent-channel must be 0 or more, got {args.agent_channel}")


def _analyze(path: Path, args: argparse.Namespace, calibration: HeadsetCalibration | None,
             tty: bool) -> dict[str, Any]:
    """One file; progress on stderr for long files when stderr is a terminal."""
    def progress(frac: float, name: str = str(path)) -> None:
        print(f"\r{name}: {frac * 100:5.1f} %", end="", file=sys.stderr, flush=True)

    long_file = tty and probe(path, args.raw_rate).duration_s >= PROGRESS_MIN_S
    try:
        return analyze_file(path, calibration, args.raw_rate, timeline=args.timeline,
                            progress=progress if long_file else None,
                            layout=Layout(args.layout) if args.layout else None, agent_channel=args.agent_channel)
    finally:
        if long_file:
            print("\r" + " " * (len(str(path)) + 10) + "\r", end="", file=sys.stderr, flush=True)


def run(args: argparse.Namespace) -> int:
    _check_args(args)
    keep_freed_memory()  # a whole file's temporaries: reuse the freed heap (device/allocator.py)
    calibration = load(args.calibration) if args.calibration else None
    failed = 0
    tty = sys.stderr.isatty()
    if not args.json:
        print(_table_header(args.layout), flush=True)
    for path in args.files:
        try:
            result = _analyze(path, args, calibration, tty)
        except AgentError as exc:  # the file's own problem, its name in the message
            failed += 1
            print(f"{PREFIX}: {exc}", file=sys.stderr, flush=True)
            continue
        except Exception as exc:  # a bug must not stop the batch: the file is reported as failed
            failed += 1
            print(f"{PREFIX}: {path}: unexpected error (a bug, please report it): {type(exc).__name__}: {exc}",
                  file=sys.stderr, flush=True)
            continue
        for text in result["warnings"]:
            print(f"{PREFIX}: {path}: warning: {text}", file=sys.stderr, flush=True)
        if args.json:
            print(json.dumps(result, ensure_ascii=False), flush=True)
        else:
            print(_table_row(result, args.layout), flush=True)
            if args.timeline:
                print("\n".join(_timeline_lines(result.get("timeline", []))), flush=True)
    if failed:
        raise AgentError(f"{failed} of {len(args.files)} file(s) could not be analysed")
    return 0
