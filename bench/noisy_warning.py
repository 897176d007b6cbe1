"""Where ``headset-agent analyze`` warns of a noisy recording: the gap it reads (the speech's P.56 level
over the noise between utterances, dB) on real clips, clean and with noise added, and whether the
warning (``device.offline_analysis.NOISY_GAP_DB``) fires.

Each real clip (tests/data, and a development set given with ``--dev-dir``), channel 0, is analysed as
recorded and with pink noise (stationary) and babble (8 espeak-ng talkers) added at 20, 10 and 5 dB SNR
against its own P.56 level, by ``bench/accuracy.py``'s own noisy copies (its ``devnoise`` row's). The warning is meant to
fire at about 10 dB SNR and worse, and never on a clean or 20 dB recording.

Usage: python bench/noisy_warning.py [--dev-dir DIR]
Example: .venv/bin/python bench/noisy_warning.py --dev-dir ../shared/data/real-speech-dev
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench import accuracy as acc  # noqa: E402
from device.offline_analysis import NOISY_GAP_DB, analyze_file  # noqa: E402
from tests.device.dsp import mandarin_corpus as mc  # noqa: E402

SNRS_DB = (20.0, 10.0, 5.0)
CONDITIONS = ["clean"] + [f"{kind} {snr:g} dB" for kind in ("pink", "babble") for snr in SNRS_DB]


def _gap(r: dict[str, Any]) -> tuple[float | None, bool]:
    """The gap ``analyze`` read (dB, None without a level or a noise floor) and whether it warned."""
    gap = r["level_dbov"] - r["noise_dbov"] if r["level_dbov"] is not None and r["noise_dbov"] is not None else None
    return gap, any(w.startswith("noisy: ") for w in r["warnings"])


def gaps(ctx: acc.Context, clip: acc.RealClip, level_dbov: float, babble: np.ndarray) -> list[tuple[float | None, bool]]:
    """(gap dB or None, warned) for each of :data:`CONDITIONS`: the clip's channel 0 through
    ``analyze_file``, and with the accuracy script's noisy copies of it (``bench/accuracy.py``) at its P.56
    level ``level_dbov``, babble from ``babble`` (at the clip's rate)."""
    out = [_gap(ctx.analyze(clip))]
    for kind in ("pink", "babble"):
        for snr in SNRS_DB:
            path, _, _ = acc._noisy_copy(ctx, clip, kind, snr, np.random.default_rng(1), babble, level_dbov)
            out.append(_gap(analyze_file(path)))
    return out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--dev-dir", type=Path, help="a development set folder (its manifest.json lists the clips)")
    args = ap.parse_args()
    try:
        clips = [c for c in acc.repo_clips() if c.raw_rate_hz is None]
        if args.dev_dir is not None:
            clips += acc.dev_clips(args.dev_dir)
    except acc.BenchError as exc:
        print(f"noisy_warning: {exc}", file=sys.stderr)
        return 1
    rows: list[list[tuple[float | None, bool]]] = []
    with tempfile.TemporaryDirectory() as tmp:
        ctx = acc.Context(None, False, Path(tmp), acc.Progress(quiet=True))
        try:
            levels, beds = acc.noise_references(ctx, clips, mc.babble_bed(np.random.default_rng(5), 40.0))
        except acc.BenchError as exc:
            print(f"noisy_warning: {exc}", file=sys.stderr)
            return 1
        for i, c in enumerate(clips):
            print(f"  [{i + 1}/{len(clips)}] {c.id}", file=sys.stderr, flush=True)
            rows.append(gaps(ctx, c, levels[c.id], beds[ctx.audio(c.path, c.raw_rate_hz)[1]]))
    print(f"## Noisy-recording warning (`bench/noisy_warning.py`): speech level over the noise between utterances, "
          f"dB; * = warned (under {NOISY_GAP_DB:g} dB)\n")
    print("| clip | " + " | ".join(CONDITIONS) + " |")
    print("|---|" + "---|" * len(CONDITIONS))
    for c, row in zip(clips, rows, strict=True):
        print(f"| {c.id} | " + " | ".join("-" if g is None else f"{g:.1f}{'*' if w else ''}" for g, w in row) + " |")
    print("\n| condition | gap range dB | warned |")
    print("|---|---|---|")
    for j, cond in enumerate(CONDITIONS):
        got = [g for row in rows if (g := row[j][0]) is not None]
        warned = sum(row[j][1] for row in rows)
        span = f"{min(got):.1f} to {max(got):.1f}" if got else "-"
        print(f"| {cond} | {span} | {warned}/{len(rows)} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
