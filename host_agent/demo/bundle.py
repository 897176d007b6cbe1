"""Regenerate the bundled demo clips (``python -m host_agent.demo.bundle``), used without espeak-ng.

Every line at every speed the scenarios use is spoken once and stored as 16-bit FLAC at 16 kHz.
The bundle must stay under 2 MB.
"""

from __future__ import annotations

import sys

import soundfile as sf

from host_agent.demo.scenarios import SCENARIOS, calibration_segments
from host_agent.demo.speech import BUNDLED_DIR, NEIGHBOUR_LINES, RATE_HZ, clip_name, speak

LIMIT_BYTES = 2_000_000


def needed() -> set[tuple[str, int, str, int]]:
    lines = set()
    for sc in SCENARIOS:
        for seg in (*sc.audio, *sc.audio_after, *calibration_segments()):
            if seg.say:
                lines.add((seg.say, seg.speed_wpm, "cmn-latn-pinyin", 50))
    for i, line in enumerate(NEIGHBOUR_LINES):
        lines.add((line, 160, "cmn-latn-pinyin", 30 + 30 * i))
    return lines


def main() -> int:
    BUNDLED_DIR.mkdir(exist_ok=True)
    keep = set()
    for text, speed, voice, pitch in sorted(needed()):
        name = clip_name(text, speed, voice, pitch)
        keep.add(name)
        sf.write(BUNDLED_DIR / name, speak(text, speed, voice, pitch), RATE_HZ, subtype="PCM_16")
    for old in BUNDLED_DIR.glob("clip-*.flac"):
        if old.name not in keep:
            old.unlink()
    total = sum(p.stat().st_size for p in BUNDLED_DIR.glob("clip-*.flac"))
    print(f"{len(keep)} clips, {total / 1e6:.2f} MB in {BUNDLED_DIR}")
    return 0 if total <= LIMIT_BYTES else 1


if __name__ == "__main__":
    sys.exit(main())
