"""Audio sources of the desk agent behind one small interface: ``open()``, ``read()``, ``close()``.

- ``alsa:<name>``: live capture through sounddevice (PortAudio/ALSA), imported only when used
  (the ``pi`` extra). 16 kHz, 2 channels (channel 0 boom mic, channel 1 ear-cup mic) when the
  device has them, else mono.
- ``file:<path>``: a WAV/FLAC file read with soundfile in blocks, paced by the injected clock:
  ``speed`` audio seconds per wall second (so a ``ScaledClock`` at 20x with ``speed=20`` keeps audio
  time equal to agent time), optionally looping.

``read()`` returns a float32 block of shape (frames, channels) in [-1, 1], ``None`` at the end of a
file that does not loop, and raises :class:`device.errors.AudioError` when the device is gone or the
file cannot be read. Blocks are ``block_ms`` of audio at real time; at higher speeds they grow (up to
0.5 s of audio) so that the loop does not spin faster than about 40 blocks per wall second.
"""

from __future__ import annotations

import hashlib
import threading
from pathlib import Path
from typing import Any, Protocol

import numpy as np
import numpy.typing as npt
import soundfile as sf

from device.clock import Clock
from device.errors import AudioError

SAMPLE_RATE_HZ = 16_000
MAX_BLOCK_S = 0.5
MAX_LAG_S = 2.0
"""A paced file source that falls this far behind (audio seconds) resynchronises instead of bursting."""
READ_AHEAD_S = 1.0
"""Audio seconds a file source decodes per file read; blocks are handed out of that buffer (one read of
the file per second of audio, not one per block: the pacing and the blocks are the same)."""


class AudioSource(Protocol):
    """What the agent reads audio from."""

    sample_rate_hz: int
    channels: int
    description: str

    def open(self) -> None:
        """Open the device or file; raises AudioError naming it."""
        ...

    def read(self) -> npt.NDArray[np.float32] | None:
        """The next block (frames, channels) in [-1, 1]; None at the end of input; AudioError on failure."""
        ...

    def close(self) -> None:
        """Release the device or file (idempotent)."""
        ...


def block_frames(sample_rate_hz: int, block_ms: int, speed: float) -> int:
    """Frames per read: ``block_ms`` of audio, scaled up with ``speed`` (capped at MAX_BLOCK_S of audio)."""
    block_s = min(MAX_BLOCK_S, block_ms / 1000.0 * max(1.0, speed))
    return max(1, int(round(sample_rate_hz * block_s)))


class FileSource:
    """A WAV/FLAC file, paced by ``clock`` at ``speed`` audio seconds per wall second.

    The pacing starts at the first :meth:`read`, not at :meth:`open`: audio time 0 is when the loop
    begins to consume the file, so whatever the agent does between opening its source and its loop
    (the spool, the broker, the call source: up to half a second on a loaded machine) does not put
    the file ahead of the wall clock and then burst it through to catch up.

    ``stop``: an event that interrupts the pacing wait (``read()`` then returns an empty block).
    """

    def __init__(self, path: str | Path, clock: Clock, *, speed: float = 1.0, loop: bool = False,
                 block_ms: int = 50, stop: threading.Event | None = None) -> None:
        if not speed > 0:
            raise AudioError(f"audio speed must be > 0, got {speed!r}")
        self.path = Path(path)
        self.clock = clock
        self.speed = float(speed)
        self.loop = loop
        self.block_ms = block_ms
        self.stop = stop
        self.description = f"file:{self.path}"
        self._file: sf.SoundFile | None = None
        self.sample_rate_hz = SAMPLE_RATE_HZ
        self.channels = 0
        self._frames_out = 0
        self._start_ms = 0
        self.loops = 0
        self._ahead: npt.NDArray[np.float32] = np.zeros((0, 0), np.float32)
        """Frames decoded from the file and not yet handed out (at most ``READ_AHEAD_S`` or one block)."""
        self._ahead_pos = 0

    @property
    def _rate(self) -> float:
        """Audio seconds per clock second."""
        return self.speed / self.clock.scale

    def open(self) -> None:
        if self._file is not None:
            return
        try:
            f = sf.SoundFile(str(self.path))
        except (sf.LibsndfileError, OSError, RuntimeError) as exc:
            raise AudioError(f"cannot open audio file {self.path}: {exc}") from None
        if f.frames == 0:
            f.close()
            raise AudioError(f"audio file {self.path} holds no samples")
        self._file = f
        self.sample_rate_hz = int(f.samplerate)
        self.channels = int(f.channels)
        self._frames_out = 0
        self._ahead, self._ahead_pos = np.zeros((0, self.channels), np.float32), 0

    def _due_ms(self, frames: int) -> float:
        return self._start_ms + frames / self.sample_rate_hz / self._rate * 1000.0

    def read(self) -> npt.NDArray[np.float32] | None:
        f = self._file
        if f is None:
            raise AudioError(f"{self.description}: read before open")
        n = block_frames(self.sample_rate_hz, self.block_ms, self.speed)
        due = self._due_ms(self._frames_out + n)
        now = self.clock.now_ms()
        block_ms = n / self.sample_rate_hz / self._rate * 1000.0
        if self._frames_out == 0 or now - due > MAX_LAG_S * 1000.0 / self._rate \
                or due - now > block_ms + MAX_LAG_S * 1000.0 / self._rate:
            # the first read (pacing starts here, not at open), far behind (a stalled machine), or far
            # ahead (the clock was stepped back, e.g. by NTP): start pacing afresh rather than bursting
            # or waiting out the step
            self._start_ms = now - int(self._frames_out / self.sample_rate_hz / self._rate * 1000.0)
            due = self._due_ms(self._frames_out + n)
        wait_s = (due - now) / 1000.0
        if wait_s > 0 and self.clock.sleep(wait_s, self.stop):
            return np.zeros((0, self.channels), np.float32)
        if len(self._ahead) - self._ahead_pos < n:
            self._read_ahead(f, n)
        block = self._ahead[self._ahead_pos:self._ahead_pos + n]  # a view: the buffer is never written
        self._ahead_pos += len(block)
        if len(block) == 0:
            return None
        self._frames_out += len(block)
        return block

    def _read_ahead(self, f: sf.SoundFile, n: int) -> None:
        """Decode the next ``READ_AHEAD_S`` of audio (``n`` frames at least) into the buffer, wrapping
        around the end of a looping file; AudioError when the file cannot be read."""
        left = self._ahead[self._ahead_pos:]
        want = max(n, int(round(self.sample_rate_hz * READ_AHEAD_S))) - len(left)
        try:
            chunk = f.read(want, dtype="float32", always_2d=True)
            while len(chunk) < want and self.loop:
                f.seek(0)
                self.loops += 1
                more = f.read(want - len(chunk), dtype="float32", always_2d=True)
                if len(more) == 0:
                    break
                chunk = np.concatenate([chunk, more])
        except (sf.LibsndfileError, OSError, RuntimeError) as exc:
            raise AudioError(f"cannot read audio file {self.path}: {exc}") from None
        self._ahead = np.ascontiguousarray(np.concatenate([left, chunk]), dtype=np.float32)
        self._ahead_pos = 0

    def close(self) -> None:
        if self._file is not None:
            self._file.close()
            self._file = None
        self._ahead, self._ahead_pos = self._ahead[:0], 0


_rescan_devices = False
"""Set when a capture device failed: the next open re-initialises PortAudio so that its device
list is read again (PortAudio enumerates devices only when it starts)."""


def _rescan_after_failure() -> None:
    global _rescan_devices
    _rescan_devices = True


class AlsaSource:
    """Live capture from an ALSA/PortAudio device through sounddevice (imported on ``open()``).

    A live microphone never delivers the same non-silent block twice: its noise differs sample by
    sample. A device whose input has ended or stalled (an ALSA ``file`` plugin at the end of its
    ``infile``, a driver that stopped filling its buffer) hands back the same stale period(s) again
    and again, so :meth:`read` raises :class:`AudioError` once the blocks have repeated
    :data:`FROZEN_READS` times in a row (an all-zero block, a muted mic, is not counted).
    """

    FROZEN_READS = 8
    """Reads in a row that repeat one of the last :data:`FROZEN_MEMORY` blocks before the input
    counts as ended or stuck (0.4 s at 50 ms blocks)."""
    FROZEN_MEMORY = 4
    """Recent blocks compared with each new one (PortAudio cycles through a few stale periods)."""

    def __init__(self, name: str, *, block_ms: int = 50, sample_rate_hz: int = SAMPLE_RATE_HZ,
                 channels: int = 2) -> None:
        self.name = name
        self.block_ms = block_ms
        self.sample_rate_hz = sample_rate_hz
        self.channels = channels
        self.description = f"alsa:{name}"
        self._stream: Any = None
        self._recent: list[bytes] = []  # digests of the last FROZEN_MEMORY blocks
        self._repeats = 0

    def open(self) -> None:
        if self._stream is not None:
            return
        try:
            import sounddevice as sd  # the "pi" extra: only a live desk needs PortAudio
        except (ImportError, OSError) as exc:
            raise AudioError(
                f"{self.description}: sounddevice is not available ({exc}); install the 'pi' extra "
                "(pip install 'headset-coach[pi]') and libportaudio2") from None
        global _rescan_devices
        if _rescan_devices:  # PortAudio lists devices once, at start: look again for a replugged mic
            try:
                sd._terminate()
                sd._initialize()
            except Exception as exc:  # PortAudioError: report it as the open failing
                raise AudioError(f"cannot open audio device {self.description}: PortAudio: {exc}") from None
            _rescan_devices = False
        device: int | str | None = None if self.name in ("", "default") else self.name
        last: Exception | None = None
        for ch in (self.channels, 1):
            try:
                stream = sd.InputStream(device=device, channels=ch, samplerate=self.sample_rate_hz,
                                        dtype="float32", blocksize=block_frames(self.sample_rate_hz, self.block_ms, 1))
                stream.start()
            except Exception as exc:  # PortAudioError, ValueError for a bad name or channel count
                last = exc
                continue
            self._stream = stream
            self.channels = ch
            self._recent, self._repeats = [], 0
            return
        _rescan_after_failure()
        raise AudioError(f"cannot open audio device {self.description}: {last}")

    def read(self) -> npt.NDArray[np.float32] | None:
        if self._stream is None:
            raise AudioError(f"{self.description}: read before open")
        n = block_frames(self.sample_rate_hz, self.block_ms, 1)
        try:
            data, _overflowed = self._stream.read(n)
        except Exception as exc:  # the device vanished (USB unplugged), PortAudio errors
            _rescan_after_failure()
            raise AudioError(f"audio device {self.description} failed: {exc}") from None
        block = np.ascontiguousarray(data, dtype=np.float32)
        self._check_frozen(block)
        return block

    def _check_frozen(self, block: npt.NDArray[np.float32]) -> None:
        if not block.any():
            self._repeats = 0  # digital silence: a muted mic, not a stuck device
            return
        digest = hashlib.blake2b(block.tobytes(), digest_size=16).digest()
        self._repeats = self._repeats + 1 if digest in self._recent else 0
        self._recent = [*self._recent[-(self.FROZEN_MEMORY - 1):], digest]
        if self._repeats >= self.FROZEN_READS:
            _rescan_after_failure()
            raise AudioError(f"audio device {self.description} repeats the same samples ({self._repeats} reads "
                             "in a row): its input has ended or the device is stuck")

    def close(self) -> None:
        if self._stream is not None:
            try:
                self._stream.stop()
                self._stream.close()
            except Exception:
                pass
            self._stream = None


def open_source(spec: str, clock: Clock, *, speed: float = 1.0, loop: bool = False, block_ms: int = 50,
                stop: threading.Event | None = None) -> AudioSource:
    """Build (not open) the source for ``alsa:<name>`` or ``file:<path>``."""
    kind, sep, target = spec.partition(":")
    if not sep or not target:
        raise AudioError(f"audio source {spec!r}: use alsa:<device name> or file:<path>")
    if kind == "file":
        return FileSource(target, clock, speed=speed, loop=loop, block_ms=block_ms, stop=stop)
    if kind == "alsa":
        return AlsaSource(target, block_ms=block_ms)
    raise AudioError(f"audio source {spec!r}: unknown kind {kind!r} (use alsa: or file:)")
