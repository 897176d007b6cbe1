"""Experiment (not a product path): would Silero VAD, ANDed with ours per 10 ms hop, fix the mono VAD?

The two mono VAD rows of the accuracy table that miss their +-10 % (``bench/accuracy.py --only
robust,pauses``) are rerun with three speech times per recording:

- ours: ``headset-agent analyze``'s speech time on the mono signal (the accuracy table's figure);
- Silero: Silero VAD 6.2.3's segments by ``get_speech_timestamps``' default rule (``bench/peer_silero.py``);
- AND: the hops that are both in our confirmed speech (own hops and bridged gaps, as the analyser
  counts them) and inside a Silero segment.

Our confirmed hops are observed by wrapping ``SpeechSegments.update`` (it still runs; its return
value is recorded): the analyser itself is unchanged. Each is scored as the table scores it: the
total absolute change of the noisy speech time from the same method's time on the clean signal.

Usage: python bench/vad_and_silero.py [--robust-only | --pauses-only]
Example: .venv/bin/python bench/vad_and_silero.py
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import soundfile as sf

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench import accuracy as acc  # noqa: E402
from bench import peer_silero  # noqa: E402
from device.dsp.measurement import HOP_S  # noqa: E402
from device.dsp.p56 import p56_level  # noqa: E402
from device.dsp.vad import SpeechSegments  # noqa: E402
from tests.device import room_corpus as rc  # noqa: E402
from tests.device.dsp import mandarin_corpus as mc  # noqa: E402
from tests.device.dsp.test_rooms import SEED  # noqa: E402

FloatArray = npt.NDArray[np.float64]
HOP = 160
METHODS = ("ours", "Silero", "ours AND Silero")
Times = tuple[float, float, float]


class ConfirmedHops:
    """Records the hops ``SpeechSegments.update`` confirms as speech while installed."""

    def __init__(self) -> None:
        self.hops: list[npt.NDArray[np.int64]] = []
        self._orig: Callable[..., Any] = SpeechSegments.update

    def install(self) -> None:
        orig, hops = self._orig, self.hops

        def update(seg: SpeechSegments, first_hop: int, own: npt.NDArray[np.bool_]) -> npt.NDArray[np.int64]:
            out: npt.NDArray[np.int64] = orig(seg, first_hop, own)
            hops.append(out)
            return out

        SpeechSegments.update = update  # type: ignore[method-assign,assignment]


def read_channel0(path: Path, raw_rate_hz: int | None) -> tuple[FloatArray, int]:
    """Channel 0 of a clip as float64 (1.0 = full scale) and its rate, as the accuracy table reads it."""
    if raw_rate_hz is not None:
        return np.fromfile(path, dtype="<i2").astype(np.float64) / 32768.0, raw_rate_hz
    y, fs = sf.read(path, dtype="float64", always_2d=True)
    return np.ascontiguousarray(y[:, 0]), int(fs)


def speech_times(x: FloatArray, silero: peer_silero.SileroVad, rec: ConfirmedHops) -> Times:
    """(ours, Silero, AND) speech seconds of a mono 16 kHz signal."""
    rec.hops.clear()
    ours_s = acc.analyze_array(np.ascontiguousarray(x.reshape(-1, 1)), 1).totals().speech_s
    n = x.size // HOP + 1
    ours = np.zeros(n, dtype=bool)
    if rec.hops:
        idx = np.concatenate(rec.hops)
        ours[idx[idx < n]] = True
    theirs = np.zeros(n, dtype=bool)
    for a, b in peer_silero.speech_segments(silero.probabilities(x), x.size):
        theirs[a // HOP: (b + HOP - 1) // HOP] = True
    return ours_s, float(theirs.sum()) * HOP_S, float((ours & theirs).sum()) * HOP_S


def score(pairs: list[tuple[Times, Times]]) -> str:
    """Total absolute change (bias) of each method's noisy time from its clean time, in %."""
    cells = []
    for i, name in enumerate(METHODS):
        clean = np.array([c[i] for c, _ in pairs])
        noisy = np.array([g[i] for _, g in pairs])
        err = float(np.abs(noisy - clean).sum() / clean.sum() * 100)
        bias = float((noisy - clean).sum() / clean.sum() * 100)
        cells.append(f"{name} {err:.1f} % ({bias:+.1f} %)")
    return " | ".join(cells)


def robust(silero: peer_silero.SileroVad, rec: ConfirmedHops) -> None:
    """The ``robust`` rows: the real clips of tests/data in babble and pink noise at 5 dB SNR."""
    clips = [c for c in acc.repo_clips() if c.syllables is not None]
    noise_rng = np.random.default_rng(SEED)
    babble = mc.babble_bed(np.random.default_rng(SEED + 1), 40.0)
    got: dict[str, list[tuple[Times, Times]]] = {}
    for i, c in enumerate(clips):
        print(f"[vad_and_silero] speech in noise: clip {i + 1}/{len(clips)} {c.id}", file=sys.stderr, flush=True)
        x, fs = read_channel0(c.path, c.raw_rate_hz)
        level = p56_level(x, fs)
        assert level is not None
        clean = speech_times(x, silero, rec)
        for kind in ("babble", "pink noise"):
            for _ in range(acc.ROBUST_DRAWS):
                if kind == "babble":
                    start = int(noise_rng.integers(0, babble.size - x.size))
                    nz = babble[start: start + x.size]
                else:
                    nz = rc.pink_noise(noise_rng, x.size, 1)[:, 0]
                noisy = acc._at_snr(x, nz, level.level_dbov, acc.SNR_DB)
                got.setdefault(kind, []).append((clean, speech_times(noisy, silero, rec)))
    for kind, pairs in got.items():
        print(f"VAD in {kind} at SNR {acc.SNR_DB:.0f} dB (mono), {len(clips)} clips x {acc.ROBUST_DRAWS}: "
              f"{score(pairs)}", flush=True)


def pauses(silero: peer_silero.SileroVad, rec: ConfirmedHops) -> None:
    """The ``pauses`` rows on the boom channel alone (mono)."""
    d = rc.cache_dir()
    d.mkdir(parents=True, exist_ok=True)
    got: dict[tuple[str, float], list[tuple[Times, Times]]] = {}
    for i, seed in enumerate(acc.PAUSE_SEEDS):
        print(f"[vad_and_silero] pauses: scene {i + 1}/{len(acc.PAUSE_SEEDS)}", file=sys.stderr, flush=True)
        scene = rc.pause_scene(seed, d)
        clean = speech_times(scene.own.audio[:, 0], silero, rec)
        for noise in ("pink", "babble"):
            for snr in acc.PAUSE_SNRS_DB:
                noisy = speech_times(scene.at_snr(noise, snr)[:, 0], silero, rec)
                got.setdefault((noise, snr), []).append((clean, noisy))
    for (noise, snr), pairs in got.items():
        print(f"own speech with pauses in {noise} at SNR {snr:g} dB (mono), {len(pairs)} scenes: {score(pairs)}",
              flush=True)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    group = ap.add_mutually_exclusive_group()
    group.add_argument("--robust-only", action="store_true", help="only the clips in babble/pink noise")
    group.add_argument("--pauses-only", action="store_true", help="only the scenes with pauses")
    args = ap.parse_args()
    try:
        silero = peer_silero.SileroVad.load()
    except peer_silero.SileroUnavailable as exc:
        sys.exit(f"vad_and_silero: {exc}")
    rec = ConfirmedHops()
    rec.install()
    if not args.pauses_only:
        robust(silero, rec)
    if not args.robust_only:
        pauses(silero, rec)


if __name__ == "__main__":
    main()
