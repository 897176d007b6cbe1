"""How much speech the speech model hears by level: the share of loud hops it calls speech, per clip, with
each clip scaled to active speech levels (ITU-T P.56) of -20 to -75 dBov, as the model hears it and
raised by :func:`device.dsp.speech_model.model_gain_db` (what ``analyze`` gives a quiet recording).

Run: ``.venv/bin/python bench/speech_model_levels.py --dev-dir ../shared/data/real-speech-dev`` (without
``--dev-dir``: the real clips of ``tests/data`` only). A plain script, not a test: it prints a table.

Each clip (channel 0, resampled to 16 kHz) is scaled in float (no quantisation), so the figures are the
model's own. "Loud hops": the 10 ms hops within 20 dB of the clip's 95th percentile of hop levels; a hop
"is speech" when the model (:class:`device.dsp.speech_model.SpeechProbability` on the shipped Silero VAD)
gives it 0.5 or more (the mono VAD's ``mono_speech_probability``).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
import numpy.typing as npt
import soundfile as sf
from scipy.signal import resample_poly

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from device import silero_model  # noqa: E402
from device.dsp.p56 import p56_level  # noqa: E402
from device.dsp.speech_model import SpeechProbability, model_gain_db  # noqa: E402

FloatArray = npt.NDArray[np.float64]
REAL = ROOT / "tests" / "data" / "real-speech"
RATE_HZ = 16000
HOP = 160
LEVELS_DBOV = (-20.0, -30.0, -40.0, -50.0, -55.0, -60.0, -65.0, -70.0, -75.0)
LOUD_WITHIN_DB = 20.0


class LevelsError(Exception):
    """A clip that cannot be measured (unreadable, or no active speech)."""


def clips(dev_dir: Path | None) -> list[Path]:
    """The WAV clips of tests/data, then those of ``dev_dir``."""
    paths = sorted(REAL.glob("*.wav"))
    if dev_dir is not None:
        if not dev_dir.is_dir():
            raise LevelsError(f"--dev-dir {dev_dir}: not a directory")
        paths += sorted(dev_dir.glob("*.wav"))
    return paths


def read_16k(path: Path) -> FloatArray:
    """Channel 0 of ``path`` at 16 kHz (float64)."""
    try:
        x, fs = sf.read(str(path), dtype="float64", always_2d=True)
    except (OSError, RuntimeError) as exc:
        raise LevelsError(f"{path}: {exc}") from None
    mono: FloatArray = x[:, 0]
    if fs != RATE_HZ:
        g = int(np.gcd(fs, RATE_HZ))
        mono = resample_poly(mono, RATE_HZ // g, fs // g)
    return mono


def shares(x: FloatArray) -> tuple[list[float], list[float]]:
    """Share of loud hops called speech at each of ``LEVELS_DBOV``: as heard, and raised by the gain."""
    measured = p56_level(x, RATE_HZ)
    if measured is None:
        raise LevelsError("no active speech (P.56)")
    n = x.size // HOP
    level = 10 * np.log10(np.mean(x[: n * HOP].reshape(n, HOP) ** 2, axis=1) + 1e-20)
    loud = level > np.percentile(level, 95) - LOUD_WITHIN_DB
    model = silero_model.load()
    plain: list[float] = []
    raised: list[float] = []
    for target in LEVELS_DBOV:
        y = x * 10 ** ((target - measured.level_dbov) / 20)
        for gain, out in ((0.0, plain), (model_gain_db(target), raised)):
            p = SpeechProbability(HOP, model, gain_db=gain).process(y)
            out.append(float(np.mean(p[:n][loud] >= 0.5)))
    return plain, raised


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog="example: .venv/bin/python bench/speech_model_levels.py --dev-dir ../shared/data/real-speech-dev")
    ap.add_argument("--dev-dir", type=Path, help="a directory of real speech clips (WAV) to add")
    args = ap.parse_args(argv)
    try:
        paths = clips(args.dev_dir)
        head = " | ".join(f"{v:g}" for v in LEVELS_DBOV)
        print(f"| clip | heard as | {head} |")
        print("|---|---|" + "---|" * len(LEVELS_DBOV))
        for i, path in enumerate(paths):
            print(f"[{i + 1}/{len(paths)}] {path.name}", file=sys.stderr)
            try:
                plain, raised = shares(read_16k(path))
            except LevelsError as exc:
                raise LevelsError(f"{path.name}: {exc}") from None
            for label, row in (("as it is", plain), ("raised", raised)):
                print(f"| {path.stem} | {label} | " + " | ".join(f"{v:.2f}" for v in row) + " |")
    except LevelsError as exc:
        print(f"speech_model_levels.py: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
