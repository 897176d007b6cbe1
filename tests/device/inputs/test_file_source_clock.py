"""The paced file source follows clock steps: a clock stepped back (NTP, a Pi's fake hwclock
corrected) neither stalls the audio for the length of the step nor bursts after a forward step."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import soundfile as sf

from device.clock import ManualClock
from device.inputs.audio_sources import FileSource


class CountingClock(ManualClock):
    """A ManualClock that remembers how long each sleep asked for (s)."""

    def __init__(self) -> None:
        super().__init__()
        self.slept: list[float] = []

    def sleep(self, seconds: float, stop: object = None) -> bool:
        self.slept.append(seconds)
        return super().sleep(seconds)


def test_a_clock_stepped_back_or_forward_an_hour_keeps_the_audio_paced(tmp_path: Path) -> None:
    path = tmp_path / "tone.wav"
    t = np.arange(16000 * 4) / 16000
    sf.write(path, np.stack([np.sin(2 * np.pi * 200 * t), np.sin(2 * np.pi * 200 * t) * 0.3], axis=1) * 0.3, 16000)
    clock = CountingClock()
    src = FileSource(path, clock, loop=True, block_ms=50)
    src.open()
    for _ in range(20):
        assert src.read() is not None
    assert max(clock.slept) <= 0.051  # paced: one 50 ms block per read
    clock.set(clock.now_ms() - 3_600_000)  # stepped back an hour
    clock.slept.clear()
    blocks = [src.read() for _ in range(20)]
    assert all(b is not None and len(b) == 800 for b in blocks)
    assert max(clock.slept) <= 0.051, max(clock.slept)  # no hour-long wait
    assert sum(clock.slept) >= 0.9  # still paced in real time
    clock.set(clock.now_ms() + 3_600_000)  # and forward an hour: no burst of an hour of audio
    before = src._frames_out
    clock.slept.clear()
    for _ in range(20):
        src.read()
    assert src._frames_out - before == 20 * 800 and sum(clock.slept) >= 0.9
    src.close()


def test_pacing_starts_at_the_first_read_not_at_the_open(tmp_path: Path) -> None:
    """The agent opens its source, then starts the spool, the broker client and the call source, and
    only then reads: on a loaded machine that took 0.43 s, and a file paced from the open burst those
    0.43 s through at the first reads, so the file ran ahead of the moment the agent logged
    "agent started" (a call's measured silence came out 0.4 s long)."""
    path = tmp_path / "tone.wav"
    t = np.arange(16000 * 2) / 16000
    sf.write(path, np.stack([np.sin(2 * np.pi * 200 * t)] * 2, axis=1) * 0.3, 16000)
    clock = CountingClock()
    src = FileSource(path, clock, block_ms=50)
    src.open()
    clock.set(clock.now_ms() + 500)  # the agent's start-up between open and loop
    started_ms = clock.now_ms()
    for _ in range(10):
        block = src.read()
        assert block is not None and len(block) == 800
    # 10 blocks of 50 ms are handed out over 0.5 s from the first read: every one waited for its time
    assert len(clock.slept) == 10 and all(0.049 <= s <= 0.051 for s in clock.slept), clock.slept
    assert clock.now_ms() - started_ms == 500
    src.close()
