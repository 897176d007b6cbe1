"""A paced file source hands out the file's samples block by block, exactly: across the seams of the
buffer it decodes ahead (``READ_AHEAD_S``), around the end of a looping file, and to the end of one
that does not loop. On a ManualClock, so the pacing waits cost nothing."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import soundfile as sf

from device.clock import ManualClock
from device.inputs.audio_sources import READ_AHEAD_S, FileSource

RATE_HZ = 16_000


def _stereo(path: Path, seconds: float) -> np.ndarray:
    """A 2-channel 16-bit file of ``seconds`` whose every frame differs; its samples as float32."""
    n = int(seconds * RATE_HZ)
    ramp = (np.arange(n) % 30_000 - 15_000).astype(np.int16)
    sf.write(path, np.stack([ramp, -ramp], axis=1), RATE_HZ, subtype="PCM_16")
    x: np.ndarray
    x, _ = sf.read(path, dtype="float32", always_2d=True)
    return x


def _read(src: FileSource, blocks: int) -> list[np.ndarray]:
    out = []
    for _ in range(blocks):
        block = src.read()
        if block is None:
            break
        out.append(block)
    return out


def test_a_looping_file_is_handed_out_whole_around_its_end_and_the_read_ahead_seams(tmp_path: Path) -> None:
    seconds = 1.37 * READ_AHEAD_S  # neither a whole number of blocks nor of read-ahead buffers
    x = _stereo(tmp_path / "loop.wav", seconds)
    src = FileSource(tmp_path / "loop.wav", ManualClock(), loop=True, block_ms=50)
    src.open()
    try:
        blocks = _read(src, 200)  # 10 s of audio: the file seven times and more
    finally:
        src.close()
    assert len(blocks) == 200
    assert all(b.shape == (800, 2) and b.dtype == np.float32 and b.flags.c_contiguous for b in blocks)
    got = np.concatenate(blocks)
    want = np.tile(x, (int(np.ceil(len(got) / len(x))), 1))[: len(got)]
    np.testing.assert_array_equal(got, want)


def test_a_file_that_does_not_loop_ends_with_its_last_partial_block_then_none(tmp_path: Path) -> None:
    x = _stereo(tmp_path / "once.wav", 2.5 * READ_AHEAD_S + 0.013)
    src = FileSource(tmp_path / "once.wav", ManualClock(), loop=False, block_ms=50)
    src.open()
    try:
        blocks = _read(src, 1000)
        assert src.read() is None
    finally:
        src.close()
    assert [len(b) for b in blocks[:-1]] == [800] * (len(blocks) - 1)
    assert 0 < len(blocks[-1]) < 800
    np.testing.assert_array_equal(np.concatenate(blocks), x)
