"""Benchmark of the speech DSP engine (a plain script, not a test): prints a table.

- streaming pipeline (2 channels, 16 kHz, every measure, intonation included as the agent runs it)
  real-time factor on one core, beside a
  baseline run in the same process on the same audio (a bare numpy 10 ms frame-RMS pass), with
  the ratio;
- offline ``analyze`` throughput (FLAC file -> JSON dict, through device.offline_analysis, every measure on
  two channels), timed in turn with the peer, de Jong & Wempe (2009) on Praat's engine
  (parselmouth, ``bench/peer_dejong.py``), reading the same file and counting the rate alone on the
  boom channel: the ratio is taken pair by pair (ours / peer; below 1 = ours faster); both under
  the heap settings ``analyze`` uses (``device/allocator.py``), which glibc's dynamic mmap threshold
  would give them here anyway once the peer has freed its decoded copy of the file;
- peak memory (VmHWM) of a subprocess streaming a synthetic hour in 100 ms blocks (the child's own peak,
  which includes building its minute of test audio).

Usage: python bench/bench_dsp.py [--minutes 2] [--hour-minutes 60] [--pairs 5]
Example: python bench/bench_dsp.py --minutes 2 --hour-minutes 10
"""

from __future__ import annotations

import argparse
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import soundfile as sf

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from device.allocator import keep_freed_memory  # noqa: E402
from device.dsp import HeadsetCalibration, StreamingAnalyzer  # noqa: E402
from device.inputs.channel_layout import Layout  # noqa: E402
from device.offline_analysis import analyze_file  # noqa: E402

REAL = ROOT / "tests" / "data" / "real-speech"


def speech_audio(seconds: float, seed: int = 0) -> np.ndarray:
    """Real speech clips with pauses on the boom; the ear cup 10 dB down; noise. (n, 2) float32."""
    rng = np.random.default_rng(seed)
    clips = [sf.read(p, dtype="float32")[0] for p in sorted(REAL.glob("*.wav"))]
    clips.append(np.fromfile(REAL / "itu-stl-voice.s16le", dtype="<i2").astype(np.float32) / 32768)
    parts, n = [], 0
    while n < seconds * 16000:
        c = clips[int(rng.integers(len(clips)))]
        pause = np.zeros(int(rng.uniform(0.3, 1.5) * 16000), np.float32)
        parts += [c, pause]
        n += c.size + pause.size
    boom = np.concatenate(parts)[: int(seconds * 16000)]
    x = np.stack([boom, boom * 0.316], axis=1)
    x += (rng.standard_normal(x.shape) * 3e-4).astype(np.float32)
    return x


def baseline(x: np.ndarray, block: int) -> float:
    """A bare numpy pass: 10 ms frame RMS of both channels, block by block. Returns seconds."""
    t0 = time.perf_counter()
    acc = 0.0
    for i in range(0, x.shape[0], block):
        b = x[i: i + block]
        n = b.shape[0] // 160
        acc += float(np.sqrt(np.mean(b[: n * 160].reshape(n, 160, 2) ** 2, axis=1)).sum())
    return time.perf_counter() - t0


def pipeline(x: np.ndarray, block: int) -> float:
    t0 = time.perf_counter()
    a = StreamingAnalyzer(calibration=HeadsetCalibration(ild_offset_db=10.0), intonation=True)
    for i in range(0, x.shape[0], block):
        a.feed(x[i: i + block])
    a.flush()
    return time.perf_counter() - t0


def offline_pairs(path: Path, n: int, peer: bool) -> list[tuple[float, float, float]]:
    """Seconds for ``analyze`` (2 channels, every measure), ``analyze --layout mono`` and the peer
    (read the file, de Jong & Wempe on the boom channel), run in turn ``n`` times after a warm-up."""
    def ours() -> float:
        t0 = time.perf_counter()
        analyze_file(path)
        return time.perf_counter() - t0

    def ours_mono() -> float:
        t0 = time.perf_counter()
        analyze_file(path, layout=Layout.MONO)
        return time.perf_counter() - t0

    def theirs() -> float:
        from peer_dejong import de_jong_wempe
        t0 = time.perf_counter()
        audio, fs = sf.read(path, dtype="float64", always_2d=True)
        de_jong_wempe(audio[:, 0], int(fs))
        return time.perf_counter() - t0

    ours(), ours_mono()
    if peer:
        theirs()
    out = []
    for i in range(n):
        print(f"  offline pair {i + 1}/{n}", file=sys.stderr, flush=True)
        out.append((ours(), ours_mono(), theirs() if peer else float("nan")))
    return out


def proc_kib(field: str) -> int:
    """A memory figure of this process from /proc/self/status (KiB): ``VmHWM`` (peak RSS of this
    program) or ``VmRSS`` (now). ``ru_maxrss`` is not used: Linux carries it over from the parent
    across fork/exec, so a child would report the parent's peak."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith(field + ":"):
                return int(line.split()[1])
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss


def hour_child(minutes: float) -> None:
    """Stream ``minutes`` of audio (one minute repeated) in 100 ms blocks; print the peak and the
    current RSS (KiB) after the first minute and at the end, then the seconds taken."""
    x = speech_audio(60.0)
    a = StreamingAnalyzer(calibration=HeadsetCalibration(ild_offset_db=10.0), intonation=True)
    first = (0, 0)
    t0 = time.perf_counter()
    for m in range(int(minutes)):
        for i in range(0, x.shape[0], 1600):
            a.feed(x[i: i + 1600])
        if m == 0:
            first = (proc_kib("VmHWM"), proc_kib("VmRSS"))
    a.flush()
    dt = time.perf_counter() - t0
    print(*first, proc_kib("VmHWM"), proc_kib("VmRSS"), dt)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--minutes", type=float, default=2.0, help="audio for the speed runs")
    ap.add_argument("--hour-minutes", type=float, default=60.0, help="length of the memory run")
    ap.add_argument("--pairs", type=int, default=5, help="alternating runs of ours and the peer's (default 5)")
    ap.add_argument("--no-peer", action="store_true", help="skip the peer (no parselmouth)")
    ap.add_argument("--child", type=float, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child is not None:
        hour_child(args.child)
        return
    if hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, {sorted(os.sched_getaffinity(0))[0]})  # one core
    seconds = args.minutes * 60
    x = speech_audio(seconds)
    rows = []
    for block_s in (0.1, 1.0):
        block = int(block_s * 16000)
        pipeline(x[:16000 * 5], block)  # warm up
        tb = min(baseline(x, block) for _ in range(3))
        tp = min(pipeline(x, block) for _ in range(2))
        rows.append((f"streaming, 2 ch, {block_s * 1000:.0f} ms blocks", tp / seconds, tb / seconds, tp / tb))
    # as `headset-agent analyze` runs (device/allocator.py); the peer shares the process and the settings
    heap = keep_freed_memory()
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "bench.flac"
        sf.write(path, x, 16000, subtype="PCM_16")
        pairs = offline_pairs(path, args.pairs, peer=not args.no_peer)
    print(f"heap settings of device/allocator.py: {'applied' if heap else 'not available (C library defaults)'}")
    print(f"{'run':36} {'RTF':>9} {'baseline RTF':>13} {'ratio':>7}")
    for name, rtf, brtf, ratio in rows:
        print(f"{name:36} {rtf:9.5f} {brtf:13.6f} {ratio:7.0f}x")
    ours = float(np.median([p[0] for p in pairs])) / seconds
    mono = float(np.median([p[1] for p in pairs])) / seconds
    print(f"{'offline analyze (FLAC, 2 ch)':36} {ours:9.5f} {'':>13} {'':>7}   "
          f"= {1 / ours:.0f}x real time, 1 h in {3600 * ours:.1f} s")
    print(f"{'offline analyze (FLAC, as mono)':36} {mono:9.5f}")
    if not args.no_peer:
        peer = float(np.median([p[2] for p in pairs])) / seconds
        ratios = sorted(p[0] / p[2] for p in pairs)
        print(f"{'peer dJW on Praat, rate alone':36} {peer:9.5f}   (same file read, boom channel)")
        print(f"{'ours (2 ch, every measure) / peer':36} {float(np.median(ratios)):9.2f}   "
              f"median of {len(pairs)} pairs run in turn; range {ratios[0]:.2f}-{ratios[-1]:.2f}")
    print(f"\nstreaming an hour in 100 ms blocks ({args.hour_minutes:.0f} min), subprocess:")
    res = subprocess.run([sys.executable, __file__, "--child", str(args.hour_minutes)], capture_output=True,
                         text=True, check=True)
    hwm1, rss1, hwm_end, rss_end = (int(v) / 1024 for v in res.stdout.split()[:4])
    dt = float(res.stdout.split()[4])
    print(f"  peak RSS after 1 min {hwm1:.1f} MiB, after {args.hour_minutes:.0f} min {hwm_end:.1f} MiB; "
          f"RSS now after 1 min {rss1:.1f} MiB, at the end {rss_end:.1f} MiB; "
          f"RTF {dt / (args.hour_minutes * 60):.5f}")


if __name__ == "__main__":
    main()
