"""VAD cost: our own-voice VAD against Silero VAD (the neural reference issue 12 offers to adopt).

Run: ``.venv/bin/python bench/bench_vad.py`` (Silero's ONNX model from ``requirements/silero.lock``,
run on onnxruntime: ``bench/peer_silero.py``). A plain script, not a test: it prints a table.

Both see the same audio: the real clips of ``tests/data/real-speech`` one after another, repeated to
``--seconds`` of 16 kHz mono (the boom channel). Ours is the VAD front end the analyser runs per hop
(band energies, the periodicity of :mod:`device.dsp.periodicity` (mono), :class:`device.dsp.vad.OwnVoiceVad`,
:class:`~device.dsp.vad.SpeechSegments`), fed in 100 ms blocks as the desk agent feeds it; Silero is its model called once per 32 ms chunk, as
its own ``OnnxWrapper`` calls it. Figures:

- CPU: process time per second of audio (real-time factor, one core), ``--pairs`` runs of each in
  turn (ours, Silero, ours, Silero, ...), median, and Silero's time over ours pair by pair;
- memory: the resident set size of a fresh interpreter that has imported numpy and our DSP and run
  ours, against one that has also imported onnxruntime, loaded the model and run it: what adopting
  Silero in the desk agent's process would add.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import numpy.typing as npt
import soundfile as sf

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench import peer_silero  # noqa: E402
from device.dsp.features import BandEnergies  # noqa: E402
from device.dsp.periodicity import HopPeriodicity  # noqa: E402
from device.dsp.vad import OwnVoiceVad, SpeechSegments  # noqa: E402

FloatArray = npt.NDArray[np.float64]
REAL = ROOT / "tests" / "data" / "real-speech"
RATE_HZ = 16000
HOP = 160
BLOCK = 1600
"""Samples per block fed to ours (100 ms, the agent's tick)."""


def test_audio(seconds: float) -> FloatArray:
    """The real clips of tests/data one after another, each at the same RMS, repeated to ``seconds``."""
    parts = []
    for path in sorted(REAL.glob("*.wav")):
        x, fs = sf.read(path, dtype="float64", always_2d=True)
        if fs == RATE_HZ:
            parts.append(x[:, 0] / np.sqrt(np.mean(x[:, 0] ** 2)) * 0.05)
    out: FloatArray = np.resize(np.concatenate(parts), int(seconds * RATE_HZ))
    return out


def run_ours(x: FloatArray) -> float:
    """Speech seconds by our mono VAD front end, fed block by block."""
    bands = BandEnergies(RATE_HZ, HOP, 1)
    periodicity = HopPeriodicity(RATE_HZ, HOP)
    vad = OwnVoiceVad(1)
    segments = SpeechSegments(vad.p.max_gap_hops)
    hops = 0
    speech = 0
    for i in range(0, x.size - BLOCK + 1, BLOCK):
        block = x[i:i + BLOCK]
        own = vad.process(bands.process(block.reshape(-1, 1)), periodicity.process(block))
        speech += segments.update(hops, own).size
        hops += own.size
    return speech * HOP / RATE_HZ


def run_silero(model: peer_silero.SileroVad, x: FloatArray) -> float:
    """Speech seconds by Silero (its model's probabilities and ``get_speech_timestamps``' rule)."""
    return peer_silero.speech_seconds(model.probabilities(x), x.size)


def _rss_mb() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError("no VmRSS in /proc/self/status")


def child(which: str, seconds: float) -> None:
    """In a fresh interpreter: run one VAD (``ours`` or ``silero``, which also runs ours) and print the RSS."""
    x = test_audio(seconds)
    run_ours(x)
    if which == "silero":
        run_silero(peer_silero.SileroVad.load(), x)
    print(json.dumps({"rss_mb": _rss_mb()}))


def rss_of(which: str, seconds: float) -> float:
    out = subprocess.run([sys.executable, __file__, "--child", which, "--seconds", str(seconds)],
                         capture_output=True, text=True, check=True)
    return float(json.loads(out.stdout)["rss_mb"])


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(
        description=(__doc__ or "").split("\n\n")[0],
        epilog="example:\n  .venv/bin/python bench/bench_vad.py --seconds 60 --pairs 5",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    ap.add_argument("--seconds", type=float, default=60.0, help="audio length, s (default 60)")
    ap.add_argument("--pairs", type=int, default=5, help="timed runs of each, in turn (default 5)")
    ap.add_argument("--child", choices=("ours", "silero"), help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if not 1.0 <= args.seconds <= 3600.0 or not 1 <= args.pairs <= 50:
        ap.error("--seconds must be 1-3600 and --pairs 1-50")
    if args.child:
        child(args.child, args.seconds)
        return 0
    try:
        model = peer_silero.SileroVad.load()
    except Exception as exc:  # a missing model or onnxruntime: say which
        print(f"Silero VAD is not available: {exc}", file=sys.stderr)
        return 1
    x = test_audio(args.seconds)
    ours_s, silero_s = run_ours(x), run_silero(model, x)  # warm-up, and the speech each finds
    t_ours: list[float] = []
    t_silero: list[float] = []
    for k in range(args.pairs):
        print(f"[bench_vad] pair {k + 1}/{args.pairs}", file=sys.stderr)
        t0 = time.process_time()
        run_ours(x)
        t1 = time.process_time()
        run_silero(model, x)
        t2 = time.process_time()
        t_ours.append((t1 - t0) / args.seconds)
        t_silero.append((t2 - t1) / args.seconds)
    ratios = [s / o for o, s in zip(t_ours, t_silero, strict=True)]
    print("[bench_vad] memory: two fresh interpreters", file=sys.stderr)
    rss_ours, rss_silero = rss_of("ours", args.seconds), rss_of("silero", args.seconds)
    print(f"VAD cost on {args.seconds:g} s of real speech (tests/data clips repeated), 16 kHz mono, one core")
    print(f"{'':<34}{'ours':>12}{'Silero':>12}")
    print(f"{'speech found, s':<34}{ours_s:>12.2f}{silero_s:>12.2f}")
    print(f"{'real-time factor (median)':<34}{statistics.median(t_ours):>12.5f}{statistics.median(t_silero):>12.5f}")
    print(f"{'RSS of the process, MB':<34}{rss_ours:>12.1f}{rss_silero:>12.1f}")
    print(f"Silero / ours, CPU: median {statistics.median(ratios):.1f}x "
          f"(pairs: {', '.join(f'{r:.1f}' for r in ratios)}); memory: +{rss_silero - rss_ours:.1f} MB")
    return 0


if __name__ == "__main__":
    sys.exit(main())
