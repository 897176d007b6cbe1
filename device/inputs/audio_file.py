"""Audio files for the offline analyser and calibration: every container libsndfile reads, and raw s16le.

Containers (WAV of any subtype including float32/float64 and G.711 µ-law/A-law, FLAC, OGG/Vorbis,
OGG/Opus, MP3, AIFF, AU, CAF, ...) are read through soundfile (libsndfile) as float64 in
[-1, 1] (16-bit samples scaled by 1/32768, as the ITU-T STL does; float samples as stored).
Headerless signed 16-bit little-endian audio is read only for the suffixes in
:data:`RAW_SUFFIXES`, or, when a rate is given (``--raw-rate``), for a file that has no known
container suffix and whose header libsndfile does not recognise: a container is never read
with its header as samples.

Files are read in blocks (bounded memory for hour-long recordings). Every problem is an
:class:`device.errors.AudioError` whose message names the file and the reason.
"""

from __future__ import annotations

import os
import stat
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import numpy.typing as npt
import soundfile as sf

from device.errors import AudioError

FloatArray = npt.NDArray[np.float64]

RAW_SUFFIXES = (".s16le", ".raw", ".pcm")
"""Suffixes read as raw signed 16-bit little-endian samples (needs a rate)."""
CONTAINER_SUFFIXES = (".wav", ".wave", ".bwf", ".rf64", ".w64", ".flac", ".ogg", ".oga", ".opus", ".mp3",
                      ".aif", ".aiff", ".aifc", ".au", ".snd", ".caf")
"""Suffixes that name a container: never read as raw, even with a raw rate."""
BLOCK_S = 1.0
"""Seconds per block read."""
MAX_BLOCK_SAMPLES = 1 << 20
"""At most this many samples (all channels) per block: bounded memory for many-channel files."""
RAW_RATE_RANGE_HZ = (4000, 384000)
INT16_SCALE = 1.0 / 32768.0
"""16-bit full scale, as libsndfile and the ITU-T STL map -32768..32767 to -1.0..0.99997."""


@dataclass(frozen=True, slots=True)
class Truncation:
    """A RIFF (WAV) or FORM (AIFF) file shorter than its header declares: both sizes in bytes."""

    path: Path
    declared_bytes: int
    actual_bytes: int

    @property
    def missing(self) -> float:
        """The fraction of the declared bytes that is missing (0..1)."""
        return (self.declared_bytes - self.actual_bytes) / self.declared_bytes

    def declared_s(self, actual_s: float) -> float:
        """About how long the whole recording was (s), from ``actual_s`` (s), the length the file holds."""
        return actual_s * self.declared_bytes / max(1, self.actual_bytes)

    def __str__(self) -> str:
        return (f"{self.path}: is truncated: its header declares {self.declared_bytes} bytes but the file has "
                f"{self.actual_bytes} ({100.0 * self.missing:.0f} % missing)")


@dataclass(frozen=True, slots=True)
class AudioInfo:
    """An opened recording: ``rate_hz`` (Hz), ``channels``, ``frames`` (samples per channel, from the
    header; a truncated file may hold fewer), ``raw`` (headerless s16le), ``kind`` (e.g. "WAV FLOAT"),
    ``truncation`` (a WAV/AIFF file shorter than its header declares; None when whole)."""

    path: Path
    rate_hz: int
    channels: int
    frames: int
    raw: bool = False
    kind: str = ""
    truncation: Truncation | None = None

    @property
    def duration_s(self) -> float:
        """Length in seconds (from the header)."""
        return self.frames / self.rate_hz


def _sndfile_reason(exc: Exception) -> str:
    """libsndfile's reason without its own "Error opening 'path':" prefix."""
    reason = str(getattr(exc, "error_string", None) or exc).strip().rstrip(".")
    if "does not exist or is not a regular file" in reason:
        return "format not recognised or header damaged"  # what libsndfile's MP3 probe says for both
    return reason or type(exc).__name__


def _check_path(path: Path) -> None:
    """A regular, readable file (a FIFO or device would block or never end)."""
    try:
        st = path.stat()
    except FileNotFoundError:
        raise AudioError(f"{path}: no such file") from None
    except OSError as exc:
        raise AudioError(f"{path}: cannot be read ({exc.strerror or exc})") from None
    if stat.S_ISDIR(st.st_mode):
        raise AudioError(f"{path}: is a directory, not an audio file")
    if not stat.S_ISREG(st.st_mode):
        raise AudioError(f"{path}: is not a regular file")
    if st.st_size == 0:
        raise AudioError(f"{path}: is empty (0 bytes)")
    try:
        with open(path, "rb"):
            pass
    except OSError as exc:
        raise AudioError(f"{path}: cannot be read ({exc.strerror or exc})") from None


_SNDFILE_ERRORS = (sf.SoundFileError, RuntimeError, OSError, ValueError, EOFError)
"""What soundfile raises for a file it cannot open or read."""


def _raw_info(path: Path, raw_rate_hz: int | None, raw_channels: int) -> AudioInfo:
    """``path`` as headerless s16le at ``raw_rate_hz``; raises :class:`AudioError`."""
    if raw_rate_hz is None:
        raise AudioError(f"{path}: raw s16le audio needs its sample rate (--raw-rate HZ)")
    lo, hi = RAW_RATE_RANGE_HZ
    if not lo <= raw_rate_hz <= hi:
        raise AudioError(f"{path}: raw sample rate must be from {lo} to {hi} Hz, got {raw_rate_hz}")
    size = path.stat().st_size
    if size % (2 * raw_channels):
        raise AudioError(f"{path}: {size} bytes is not a whole number of {raw_channels}-channel 16-bit frames")
    return AudioInfo(path, raw_rate_hz, raw_channels, size // (2 * raw_channels), raw=True, kind="raw s16le")


def probe(path: Path, raw_rate_hz: int | None = None, raw_channels: int = 1) -> AudioInfo:
    """Open ``path`` enough to know its rate (Hz), channels and length; raises :class:`AudioError`.

    Raw s16le: a :data:`RAW_SUFFIXES` file, or, with ``raw_rate_hz``, a file without a container
    suffix whose header libsndfile does not recognise. Any channel count is accepted: what to do
    with the channels is the caller's decision.
    """
    _check_path(path)
    suffix = path.suffix.lower()
    if suffix in RAW_SUFFIXES:
        info = _raw_info(path, raw_rate_hz, raw_channels)
    else:
        try:
            i = sf.info(str(path))
        except _SNDFILE_ERRORS as exc:
            if raw_rate_hz is not None and suffix not in CONTAINER_SUFFIXES:
                i = None  # headerless: the raw rate says how to read it
            else:
                hint = "" if suffix in CONTAINER_SUFFIXES else "; headerless s16le needs --raw-rate HZ"
                raise AudioError(f"{path}: not a readable audio file ({_sndfile_reason(exc)}{hint})") from None
        if i is None:
            info = _raw_info(path, raw_rate_hz, raw_channels)
        else:
            if i.channels < 1 or i.samplerate <= 0:
                raise AudioError(f"{path}: header says {i.channels} channel(s) at {i.samplerate} Hz")
            info = AudioInfo(path, int(i.samplerate), int(i.channels), max(0, int(i.frames)),
                             kind=f"{i.format} {i.subtype}", truncation=container_truncation(path))
    if info.frames == 0:
        raise AudioError(f"{path}: is empty (no audio samples)")
    return info


def container_truncation(path: Path) -> Truncation | None:
    """How much of a RIFF (WAV) or FORM (AIFF) file is missing, None when it is whole (or another kind).

    libsndfile reads such a file without complaint, as if the recording had been that short (a copy cut
    off). Raises :class:`AudioError` when the file cannot be read.
    """
    try:
        with open(path, "rb") as fh:
            head = fh.read(8)
            actual = os.fstat(fh.fileno()).st_size
    except OSError as exc:
        raise AudioError(f"{path}: cannot be read ({exc.strerror or exc})") from None
    if len(head) < 8 or head[:4] not in (b"RIFF", b"RIFX", b"FORM"):
        return None
    size = int.from_bytes(head[4:8], "little" if head[:4] == b"RIFF" else "big")
    if size in (0, 0xFFFFFFFF):  # written while streaming: length unknown
        return None
    declared = size + 8
    if declared > actual + 1:  # +1: a missing pad byte of an odd last chunk is harmless
        return Truncation(path, declared, actual)
    return None


def check_whole(info: AudioInfo) -> None:
    """Refuse (:class:`AudioError`) a RIFF (WAV) or FORM (AIFF) file shorter than its header declares."""
    if info.truncation is not None:
        raise AudioError(f"{info.truncation}; copy the recording again")


def _checked(block: FloatArray, info: AudioInfo, start: int) -> FloatArray:
    """``block`` unless it holds NaN or infinite samples (then an :class:`AudioError` with the time)."""
    finite = np.isfinite(block)
    if not finite.all():
        first = start + int(np.flatnonzero(~finite.all(axis=1))[0])
        raise AudioError(f"{info.path}: has NaN or infinite samples (first at {first / info.rate_hz:.3f} s)")
    return block


def blocks(info: AudioInfo, block_s: float = BLOCK_S) -> Iterator[FloatArray]:
    """The samples of ``info.path`` as float64 blocks of shape ``(n, channels)``, full scale 1.0.

    Raises :class:`AudioError` for a read failure, NaN/inf samples, or a file with no samples.
    """
    n = max(1, min(int(block_s * info.rate_hz), MAX_BLOCK_SAMPLES // info.channels))
    done = 0
    try:
        if info.raw:
            with open(info.path, "rb") as fh:
                while buf := fh.read(2 * info.channels * n):
                    x = np.frombuffer(buf, dtype="<i2").astype(np.float64) * INT16_SCALE
                    yield x.reshape(-1, info.channels)
                    done += x.size // info.channels
        else:
            with sf.SoundFile(str(info.path)) as f:
                for x in f.blocks(blocksize=n, dtype="float64", always_2d=True):
                    yield _checked(x, info, done)
                    done += x.shape[0]
    except AudioError:
        raise
    except _SNDFILE_ERRORS as exc:
        raise AudioError(f"{info.path}: read failed after {done / info.rate_hz:.2f} s "
                         f"({_sndfile_reason(exc)})") from None
    if done == 0:
        raise AudioError(f"{info.path}: no audio samples could be read (truncated file?)")


def read_all(info: AudioInfo) -> FloatArray:
    """The whole recording as float64 ``(n, channels)`` (for calibration recordings, which are short)."""
    return np.concatenate(list(blocks(info)))


def read(path: Path, raw_rate_hz: int | None = None) -> tuple[FloatArray, int]:
    """The whole of ``path`` as float64 samples ``(n, channels)`` (full scale 1.0) and its rate (Hz).

    Raises :class:`AudioError` naming the file and the reason.
    """
    info = probe(path, raw_rate_hz)
    return read_all(info), info.rate_hz
