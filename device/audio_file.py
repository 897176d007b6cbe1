"""Audio files for the offline analyser and calibration: WAV/FLAC (soundfile) and raw s16le.

Files are read in blocks (bounded memory for hour-long recordings). Errors are
:class:`device.errors.AudioError` naming the file and the problem.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import numpy.typing as npt
import soundfile as sf

from device.errors import AudioError

RAW_SUFFIXES = (".s16le", ".raw", ".pcm")
"""Suffixes read as raw signed 16-bit little-endian samples (needs a rate)."""
BLOCK_S = 1.0


@dataclass(frozen=True, slots=True)
class AudioInfo:
    """An opened recording: ``rate_hz``, ``channels``, ``frames`` (samples per channel)."""

    path: Path
    rate_hz: int
    channels: int
    frames: int

    @property
    def duration_s(self) -> float:
        return self.frames / self.rate_hz


def _is_raw(path: Path, raw_rate_hz: int | None) -> bool:
    return path.suffix.lower() in RAW_SUFFIXES or (raw_rate_hz is not None and path.suffix.lower() not in
                                                     (".wav", ".flac", ".ogg"))


def probe(path: Path, raw_rate_hz: int | None = None, raw_channels: int = 1) -> AudioInfo:
    """Open ``path`` enough to know its rate, channels and length; raises :class:`AudioError`."""
    if not path.exists():
        raise AudioError(f"{path}: no such file")
    if path.is_dir():
        raise AudioError(f"{path}: is a directory, not an audio file")
    if _is_raw(path, raw_rate_hz):
        if raw_rate_hz is None:
            raise AudioError(f"{path}: raw s16le audio needs its sample rate (--raw-rate HZ)")
        size = path.stat().st_size
        if size % (2 * raw_channels):
            raise AudioError(f"{path}: {size} bytes is not a whole number of {raw_channels}-channel 16-bit frames")
        info = AudioInfo(path, raw_rate_hz, raw_channels, size // (2 * raw_channels))
    else:
        try:
            i = sf.info(str(path))
        except (sf.LibsndfileError, RuntimeError, OSError) as exc:
            raise AudioError(f"{path}: not a readable audio file ({exc})") from exc
        info = AudioInfo(path, int(i.samplerate), int(i.channels), int(i.frames))
    if info.channels > 2:
        raise AudioError(f"{path}: has {info.channels} channels; expected 1 (boom) or 2 (boom, ear cup)")
    if info.frames == 0:
        raise AudioError(f"{path}: is empty (no audio samples)")
    return info


def blocks(info: AudioInfo, block_s: float = BLOCK_S) -> Iterator[npt.NDArray[np.int16]]:
    """The samples of ``info.path`` as int16 blocks of shape ``(n, channels)``."""
    n = max(1, int(block_s * info.rate_hz))
    try:
        if _is_raw(info.path, info.rate_hz):
            with open(info.path, "rb") as fh:
                while True:
                    buf = fh.read(2 * info.channels * n)
                    if not buf:
                        return
                    yield np.frombuffer(buf, dtype="<i2").astype(np.int16).reshape(-1, info.channels)
        else:
            with sf.SoundFile(str(info.path)) as f:
                yield from f.blocks(blocksize=n, dtype="int16", always_2d=True)
    except (sf.LibsndfileError, RuntimeError, OSError) as exc:
        raise AudioError(f"{info.path}: read failed ({exc})") from exc


def read_all(info: AudioInfo) -> npt.NDArray[np.int16]:
    """The whole recording as int16 ``(n, channels)`` (for calibration recordings, which are short)."""
    parts = list(blocks(info))
    return np.concatenate(parts) if parts else np.zeros((0, info.channels), np.int16)
