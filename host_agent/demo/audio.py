"""Demo audio files: render each scenario once, cache it, and fall back to bundled clips.

A scenario that changes behaviour mid-run (gets loud, then calms down) is rendered as one file
that plays the first part until the switch point of the run and the second part after it; the
desk agent loops the file. Files are 16-bit FLAC, 2 channels, 16 kHz.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

import numpy as np
import soundfile as sf

from host_agent.demo.scenarios import Scenario
from host_agent.demo.speech import RATE_HZ, Segment, recipe_key, render_desk_audio, write_flac


def cache_dir(purpose: str = "demo") -> Path:
    """Where generated audio is kept between runs: ``$XDG_CACHE_HOME/headset-coach/<purpose>`` (the
    demo's desk audio; the test corpora use the same place with their own ``purpose``)."""
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "headset-coach" / purpose


def _render(segments: tuple[Segment, ...], seed: int, directory: Path) -> np.ndarray:
    path = directory / f"part-{recipe_key(segments, seed)}.flac"
    if path.exists():
        cached: np.ndarray = sf.read(path, dtype="float32", always_2d=True)[0]
        return cached
    audio = render_desk_audio(segments, seed=seed)
    write_flac(path, audio)
    return audio


def scenario_file(scenario: Scenario, run_s: float, directory: Path) -> Path:
    """The audio file a desk plays for ``scenario`` over a run of ``run_s`` (scaled) seconds."""
    first = _render(scenario.audio, scenario.seed, directory)
    if not scenario.audio_after or scenario.audio_switch_at >= 1.0:
        return directory / f"part-{recipe_key(scenario.audio, scenario.seed)}.flac"
    second = _render(scenario.audio_after, scenario.seed + 1000, directory)
    switch_n = int(scenario.audio_switch_at * run_s * RATE_HZ)
    rest_n = max(len(second), int(run_s * RATE_HZ) - switch_n + len(second))
    name = f"run-{scenario.name}-{recipe_key(scenario.audio + scenario.audio_after, scenario.seed)}-{int(run_s)}.flac"
    path = directory / name
    if path.exists():
        return path
    reps_a = -(-switch_n // len(first))
    reps_b = -(-rest_n // len(second))
    audio = np.concatenate([np.tile(first, (reps_a, 1))[:switch_n], np.tile(second, (reps_b, 1))[:rest_n]])
    return write_flac(path, audio)


def prepare(scenarios: list[Scenario], run_s: float, directory: Path | None = None,
            progress: Callable[[str], None] | None = None) -> dict[str, Path]:
    """Render (or reuse) every scenario's file; returns {scenario name: path}."""
    directory = directory or cache_dir()
    directory.mkdir(parents=True, exist_ok=True)
    out = {}
    for i, sc in enumerate(scenarios, 1):
        if progress:
            progress(f"speech for desk {i}/{len(scenarios)} ({sc.name})")
        out[sc.name] = scenario_file(sc, run_s, directory)
    return out


def calibration_recording(directory: Path | None = None) -> Path:
    """A calm recording at the calibration distance (5 cm), for ``headset-agent calibrate``."""
    from host_agent.demo.scenarios import calibration_segments

    directory = directory or cache_dir()
    segs = calibration_segments()
    path = directory / f"calibration-{recipe_key(segs, 99)}.flac"
    if not path.exists():
        write_flac(path, render_desk_audio(segs, seed=99, neighbours=False))
    return path
