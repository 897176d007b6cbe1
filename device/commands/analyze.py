"""Analyse recordings offline with the same engine as the live agent: own speech time, syllables,
speaking rate (syllables/min), ITU-T P.56 active speech level (dBov), noise floor, clipping and
mouth-to-mic distance (cm; needs 2 channels and --calibration, else null).

Reads WAV/FLAC, or raw signed 16-bit little-endian mono with --raw-rate. A file that cannot be
analysed gets an error on stderr; the other files are still analysed, and the exit code is 1.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from device.analysis import analyse_file
from device.calibration_file import load
from device.errors import AgentError, AudioError, UsageError

EXAMPLE = """example:
  headset-agent analyze --json --calibration headset.toml call-0412.wav call-0413.flac
  headset-agent analyze --raw-rate 16000 mic.s16le
"""
PROGRESS_MIN_S = 30.0
"""Files longer than this show progress on stderr (when it is a terminal)."""

COLUMNS = (("file", "{}", 28), ("duration_s", "{:.1f}", 9), ("speech_s", "{:.1f}", 8), ("syllables", "{}", 9),
           ("rate_spm", "{:.0f}", 8), ("level_dbov", "{:.1f}", 10), ("activity", "{:.2f}", 8),
           ("noise_dbov", "{:.1f}", 10), ("clipping", "{:.4f}", 8), ("distance_cm", "{:.1f}", 11))


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("files", metavar="FILE", nargs="+", type=Path, help="recordings (WAV, FLAC, raw s16le)")
    parser.add_argument("--json", action="store_true", help="one JSON object per file per line")
    parser.add_argument("--calibration", type=Path, metavar="FILE", help="headset calibration TOML (for distance)")
    parser.add_argument("--timeline", action="store_true", help="add per-second values")
    parser.add_argument("--raw-rate", type=int, metavar="HZ", help="sample rate of raw s16le files")


def _cell(value: Any, fmt: str) -> str:
    return "-" if value is None else fmt.format(value)


def _table_header() -> str:
    return " ".join(name.rjust(w) if i else name.ljust(w) for i, (name, _, w) in enumerate(COLUMNS))


def _table_row(r: dict[str, Any]) -> str:
    cells = []
    for i, (name, fmt, w) in enumerate(COLUMNS):
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


def run(args: argparse.Namespace) -> int:
    if args.raw_rate is not None and not 4000 <= args.raw_rate <= 384000:
        raise UsageError(f"--raw-rate must be from 4000 to 384000 Hz, got {args.raw_rate}")
    calibration = load(args.calibration) if args.calibration else None
    failed = 0
    tty = sys.stderr.isatty()
    if not args.json:
        print(_table_header(), flush=True)
    for path in args.files:
        def progress(frac: float, name: str = str(path)) -> None:
            print(f"\r{name}: {frac * 100:5.1f} %", end="", file=sys.stderr, flush=True)

        try:
            from device.audio_file import probe

            long_file = tty and probe(path, args.raw_rate).duration_s >= PROGRESS_MIN_S
            result = analyse_file(path, calibration, args.raw_rate, timeline=args.timeline,
                                  progress=progress if long_file else None)
            if long_file:
                print("\r" + " " * (len(str(path)) + 10) + "\r", end="", file=sys.stderr, flush=True)
        except AudioError as exc:
            failed += 1
            print(f"headset-agent analyze: {exc}", file=sys.stderr, flush=True)
            continue
        if args.json:
            print(json.dumps(result, ensure_ascii=False), flush=True)
        else:
            print(_table_row(result), flush=True)
            if args.timeline:
                print("\n".join(_timeline_lines(result.get("timeline", []))), flush=True)
    if failed:
        raise AgentError(f"{failed} of {len(args.files)} file(s) could not be analysed")
    return 0
