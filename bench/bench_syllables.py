"""Syllable counting: our streaming detector against de Jong & Wempe's method on Praat's engine.

Run: ``.venv/bin/python bench/bench_syllables.py`` (needs the ``bench`` extra: praat-parselmouth,
and espeak-ng + pypinyin for the corpus). A plain script, not a test: it prints tables.

The peer is the published algorithm of de Jong, N. H. & Wempe, T. (2009), "Praat script to detect
syllable nuclei and measure speech rate automatically", Behavior Research Methods 41(2), 385-390,
run with parselmouth calls (``bench/peer_dejong.py``, shared with ``bench/accuracy.py``).

Both see the same corpus: the held-out split of ``tests/device/dsp/mandarin_corpus.py`` (espeak-ng
pinyin voice, rates 80-250, white/pink/babble noise at 12-30 dB SNR), its English counterpart
(``en-us`` voice, hand-counted syllables), plus the real clips of
``tests/data/real-speech``. Speed is the real-time factor (processing time / audio time, one core)
measured in this process, so the ratio between the two is the figure to compare.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import soundfile as sf

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.peer_dejong import de_jong_wempe  # noqa: E402
from device.dsp.syllables import SyllableNucleusDetector  # noqa: E402
from tests.device.dsp.mandarin_corpus import Clip, build_corpus  # noqa: E402

REAL = ROOT / "tests" / "data" / "real-speech"
BANDS = {"80-100": (80, 100), "120-150": (120, 150), "180-250": (180, 250)}


def ours(audio: np.ndarray, fs: int, block_s: float = 0.1) -> int:
    """Nuclei counted by our streaming detector fed in ``block_s`` blocks."""
    det = SyllableNucleusDetector(fs)
    step = int(block_s * fs)
    n = sum(det.feed(audio[i : i + step]).size for i in range(0, audio.size, step))
    return n + det.flush().size


def timed(fn: Callable[[np.ndarray, int], int], audio: np.ndarray, fs: int) -> tuple[int, float]:
    """(count, CPU seconds) of one counter on one clip."""
    t0 = time.process_time()
    n = fn(audio, fs)
    return n, time.process_time() - t0


def corpus_table(title: str, clips: list[Clip]) -> None:
    """Print MAPE, count ratio and speed of both counters per espeak rate band on ``clips``."""
    rows = []
    for clip in clips:
        audio, fs = sf.read(clip.path, dtype="float64")
        n_ours, t_ours = timed(ours, audio, fs)
        n_peer, t_peer = timed(de_jong_wempe, audio, fs)
        rows.append((clip, n_ours, t_ours, n_peer, t_peer))
    audio_s = sum(c.duration_s for c in clips)
    print(f"{title}: {len(clips)} clips, {audio_s:.0f} s, {sum(c.syllables for c in clips)} syllables")
    print(f"{'espeak rate':<12}{'clips':>6}{'true spm':>9}{'MAPE ours':>11}{'MAPE peer':>11}{'count ours':>12}"
          f"{'count peer':>12}{'RTF ours':>10}{'RTF peer':>10}{'speed-up':>10}")
    for band, (lo, hi) in [*BANDS.items(), ("all", (0, 10**6))]:
        sel = [r for r in rows if lo <= r[0].rate <= hi]
        truth = np.array([r[0].syllables for r in sel], dtype=float)
        n_o = np.array([r[1] for r in sel], dtype=float)
        n_p = np.array([r[3] for r in sel], dtype=float)
        dur = sum(r[0].duration_s for r in sel)
        spm = 60 * truth.sum() / sum(r[0].speech_s for r in sel)
        rtf_o = sum(r[2] for r in sel) / dur
        rtf_p = sum(r[4] for r in sel) / dur
        print(f"{band:<12}{len(sel):>6}{spm:>9.0f}{100 * np.mean(np.abs(n_o - truth) / truth):>10.1f}%"
              f"{100 * np.mean(np.abs(n_p - truth) / truth):>10.1f}%{n_o.sum() / truth.sum():>11.2f}x"
              f"{n_p.sum() / truth.sum():>11.2f}x{rtf_o:>10.5f}{rtf_p:>10.5f}{rtf_p / rtf_o:>9.1f}x")
    print("(count = nuclei / true syllables; RTF = CPU seconds per audio second)")


def main(argv: list[str] | None = None) -> int:
    argparse.ArgumentParser(
        description=(__doc__ or "").split("\n\n")[0],
        epilog="example:\n  .venv/bin/python bench/bench_syllables.py > syllables.txt",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    ).parse_args(argv)
    try:
        import parselmouth  # noqa: F401
    except ImportError:
        print("praat-parselmouth is missing: pip install -e '.[bench]'", file=sys.stderr)
        return 1
    clips = build_corpus("test", seed=2024)
    corpus_table("Synthetic Mandarin (held-out split)", clips)
    print()
    corpus_table("Synthetic English (espeak-ng en-us, hand-counted, never used for tuning)",
                 build_corpus("test", seed=11, language="en"))

    print("\nReal speech (tests/data/real-speech)")
    manifest = json.loads((REAL / "manifest.json").read_text(encoding="utf-8"))["clips"]
    print(f"{'clip':<32}{'true':>6}{'ours':>6}{'peer':>6}")
    err_o, err_p = [], []
    for name, entry in sorted(manifest.items()):
        if "syllables" not in entry:
            continue
        audio, fs = sf.read(REAL / name, dtype="float64", always_2d=True)
        got_o, got_p = ours(audio[:, 0], fs), de_jong_wempe(audio[:, 0], fs)
        truth = entry["syllables"]
        err_o.append(abs(got_o - truth) / truth)
        err_p.append(abs(got_p - truth) / truth)
        print(f"{name:<32}{truth:>6}{got_o:>6}{got_p:>6}")
    print(f"{'MAPE':<32}{'':>6}{100 * np.mean(err_o):>5.0f}%{100 * np.mean(err_p):>5.0f}%")

    print("\nLong stream: our detector alone on 10 min of corpus audio")
    parts = [sf.read(c.path, dtype="float64")[0] for c in clips]
    stream = np.resize(np.concatenate(parts), 600 * 16000)
    for block_s in (0.01, 0.1, 1.0):
        det = SyllableNucleusDetector(16000)
        step = int(block_s * 16000)
        t0 = time.process_time()
        n = sum(det.feed(stream[i : i + step]).size for i in range(0, stream.size, step)) + det.flush().size
        cpu = time.process_time() - t0
        print(f"  blocks of {block_s * 1000:>5.0f} ms: {n} nuclei, {cpu:.2f} s CPU for 600 s, RTF {cpu / 600:.5f}, "
              f"state {det.buffered_frames} frames")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
