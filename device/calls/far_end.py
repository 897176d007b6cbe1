"""The far end of a call from baresip's ``sndfile`` recordings: the customer's speech, measured on the desk.

baresip's ``sndfile`` module (``module sndfile.so``, ``snd_path DIR`` in baresip's config; Debian
baresip-core 1.0.0) writes each call's audio to two WAV files in ``DIR``, named by the local time the
audio stream started (at the answer, second resolution): ``dump-YYYY-MM-DD-HH-MM-SS-dec.wav`` (what
the far end sent, decoded) and ``...-enc.wav`` (what the desk sent). The WAV header gets its sizes
when baresip closes the file, just after the hang-up.

At the close of a call (:meth:`FarEndMeter.submit`, a worker thread per call so that the agent's loop
never waits on a file):

1. the recording of the call: the newest ``*-dec.wav`` named at or after the connection (less
   ``NAME_SLACK_S``: the name is truncated to the second and written just before baresip reports
   the connection) and not after the hang-up;
2. it is read once its header is final (the RIFF size matches the file size), waiting up to
   ``settle_s`` for baresip to close it;
3. its speech is found by the desk's own VAD (:class:`device.dsp.StreamingAnalyzer`, the mono path:
   level above the noise floor, a speech spectrum, syllable modulation), 0.1 s at a time;
4. unless ``keep`` (config ``calls.keep_far_end_audio``), the call's ``-dec`` and ``-enc`` files are
   deleted: call recordings must not pile up on a desk.

The result per call is ``(t_ms, active)`` samples on the agent clock (the recording's start put at
the connection), for :meth:`device.calls.measures.CallMeter.far_end_call`, or None (not measured)
with a WARNING that names the folder or file and the reason: the folder is missing, no recording
for the call, a file that stays unfinished or cannot be read. Never a traceback. Only numbers leave
this module; the audio stays in the desk's memory for the time of the measurement.
"""

from __future__ import annotations

import logging
import queue
import re
import struct
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from device.calls.state import CallState
from device.clock import Clock, WallClock
from device.logs import kv

log = logging.getLogger("device.calls.far_end")

NAME = re.compile(r"^dump-(\d{4})-(\d{2})-(\d{2})-(\d{2})-(\d{2})-(\d{2})-dec\.wav$")
"""sndfile's name of a far-end (decoded) recording: the local time the audio started."""
NAME_SLACK_S = 2.0
"""A recording named up to this long before the connection is the call's (second resolution, and
the file is opened at the answer, a moment before the connection is reported)."""
SETTLE_S = 3.0
"""Longest wait (s) for baresip to finish the file after the hang-up."""
BLOCK_S = 1.0
"""Seconds of audio fed to the analyser at a time."""
EMPTY_WAV = 44
"""Bytes of a canonical WAV header with no audio (what sndfile writes when it opens a recording)."""


class FarEndError(Exception):
    """A far-end recording that cannot be measured; the message names the file or folder."""


@dataclass(frozen=True, slots=True)
class FarEndResult:
    """The far end of one call: ``samples`` ``(t_ms, active)`` (None: not measured, ``reason`` says why)."""

    call_id: str
    samples: list[tuple[int, bool]] | None
    file: Path | None = None
    speech_s: float | None = None
    duration_s: float | None = None
    reason: str | None = None


def name_time(path: Path) -> float | None:
    """Epoch seconds of a ``dump-...-dec.wav`` name (local time), None for any other name."""
    m = NAME.match(path.name)
    if m is None:
        return None
    try:
        return time.mktime(tuple(int(g) for g in m.groups()) + (0, 0, -1))  # type: ignore[arg-type]
    except (OverflowError, ValueError):
        return None


def find_recording(folder: Path, established_s: float, closed_s: float) -> Path | None:
    """The far-end recording of a call connected at ``established_s`` and closed at ``closed_s`` (epoch
    seconds): the newest ``*-dec.wav`` named in ``[established_s - NAME_SLACK_S, closed_s + 1]``.

    Raises :class:`FarEndError` when the folder is missing or cannot be listed."""
    if not folder.is_dir():
        raise FarEndError(f"far-end folder {str(folder)!r} is missing (baresip's sndfile snd_path)")
    best: tuple[float, str, Path] | None = None
    try:
        entries = list(folder.iterdir())
    except OSError as exc:
        raise FarEndError(f"far-end folder {str(folder)!r} cannot be listed: {exc.strerror or exc}") from None
    for p in entries:
        t = name_time(p)
        if t is None or not established_s - NAME_SLACK_S <= t <= closed_s + 1.0:
            continue
        if best is None or (t, p.name) > best[:2]:
            best = (t, p.name, p)
    return best[2] if best is not None else None


def _finished(path: Path) -> tuple[bool, int]:
    """(the WAV header's RIFF size matches the file, the file's size). baresip writes the header of an
    empty file when it opens the recording and its sizes when it closes it, so a file that holds audio
    and matches its header is finished."""
    with path.open("rb") as f:
        head = f.read(12)
        size = f.seek(0, 2)
    if len(head) < 12 or head[:4] != b"RIFF" or head[8:12] != b"WAVE":
        return False, size
    (riff,) = struct.unpack("<I", head[4:8])
    return bool(riff + 8 == size and size > EMPTY_WAV), size


def read_recording(path: Path, settle_s: float = SETTLE_S, *, sleep: Callable[[float], None] = time.sleep,
                   monotonic: Callable[[], float] = time.monotonic) -> tuple[np.ndarray, int]:
    """The samples (mono float64, the first channel) and rate of a finished recording, waiting up to
    ``settle_s`` for its header to be final. :class:`FarEndError` naming the file otherwise."""
    import soundfile as sf

    deadline = monotonic() + settle_s
    while True:
        try:
            done, size = _finished(path)
        except OSError as exc:
            raise FarEndError(f"far-end recording {str(path)!r} cannot be read: {exc.strerror or exc}") from None
        if done:
            break
        if monotonic() >= deadline:
            if size <= EMPTY_WAV:
                raise FarEndError(f"far-end recording {str(path)!r} holds no audio ({size} bytes {settle_s:g} s "
                                  "after the hang-up: baresip decoded none)")
            raise FarEndError(f"far-end recording {str(path)!r} is unfinished or truncated (its WAV header "
                              f"does not match its size {settle_s:g} s after the hang-up)")
        sleep(0.1)
    try:
        x, rate = sf.read(str(path), dtype="float64", always_2d=True)
    except (RuntimeError, OSError, ValueError) as exc:  # soundfile's LibsndfileError is a RuntimeError
        raise FarEndError(f"far-end recording {str(path)!r} cannot be read: {exc}") from None
    return np.ascontiguousarray(x[:, 0]), int(rate)


def speech_samples(x: np.ndarray, rate: int, start_ms: int, scale: float = 1.0
                   ) -> tuple[list[tuple[int, bool]], float]:
    """``(t_ms, active)`` every 0.1 s of the recording ``x`` (mono) whose first sample is at agent-clock
    ``start_ms`` (``scale``: agent-clock seconds per audio second), and its speech seconds, by the desk's
    own VAD on the mono path. A start sample at ``start_ms`` opens the timeline."""
    from device.dsp import DspError, StreamingAnalyzer

    try:
        analyzer = StreamingAnalyzer(rate, channels=1, emit_interval_s=0.1)
        block = max(1, int(rate * BLOCK_S))
        ms = [m for i in range(0, x.shape[0], block) for m in analyzer.feed(x[i:i + block])]
        ms += analyzer.flush()
    except DspError as exc:
        raise FarEndError(f"far-end audio at {rate} Hz cannot be analysed: {exc}") from None
    out = [(start_ms, False)]
    for m in ms:
        t = start_ms + int(round(m.t_s * 1000.0 * scale))
        if t > out[-1][0]:
            out.append((t, bool(m.speaking)))
    return out, analyzer.totals().speech_s


def measure_recording(call: CallState, folder: Path, *, keep: bool = False, settle_s: float = SETTLE_S,
                      wall_s: Callable[[int], float] | None = None, scale: float = 1.0) -> FarEndResult:
    """The far end of a closed, answered ``call`` from the recordings in ``folder`` (see the module doc).

    ``wall_s`` turns an agent-clock ms into wall epoch seconds (default: the agent clock is the wall
    clock). Never raises for a bad folder or file: the result says why it has no samples (and it is
    logged at WARNING)."""
    cid = call.call_id or ""
    to_wall = wall_s or (lambda ms: ms / 1000.0)
    if call.established_ms is None or call.closed_ms is None:
        return FarEndResult(cid, None, reason="not answered")
    path: Path | None = None
    try:
        path = find_recording(folder, to_wall(call.established_ms), to_wall(call.closed_ms))
        if path is None:
            raise FarEndError(f"no far-end recording for the call in {str(folder)!r} (no dump-*-dec.wav "
                              "named between its connection and its hang-up: is sndfile loaded?)")
        x, rate = read_recording(path, settle_s)
        samples, speech_s = speech_samples(x, rate, call.established_ms, scale)
    except FarEndError as exc:
        log.warning("far end not measured", extra=kv(call=cid[:12], reason=str(exc)))
        if path is not None and not keep:
            _delete(path)
        return FarEndResult(cid, None, file=path, reason=str(exc))
    if not keep:
        _delete(path)
    duration = x.shape[0] / rate if rate else 0.0
    log.info("far end measured", extra=kv(call=cid[:12], file=path.name, duration_s=round(duration, 3),
                                          speech_s=round(speech_s, 3), deleted=not keep))
    return FarEndResult(cid, samples, file=path, speech_s=speech_s, duration_s=duration)


def _delete(dec: Path) -> None:
    """Delete a call's ``-dec`` recording and its ``-enc`` twin (a WARNING naming the file if one cannot be)."""
    for p in (dec, dec.with_name(dec.name[:-len("-dec.wav")] + "-enc.wav")):
        try:
            p.unlink(missing_ok=True)
        except OSError as exc:
            log.warning("far-end recording not deleted", extra=kv(file=str(p), error=exc.strerror or str(exc)))


def warm_up(rate: int = 8000) -> None:
    """Measure 0.1 s of silence at ``rate`` (baresip's PCMU rate), so that the modules and tables the
    desk's VAD needs for a recording are loaded before the first call's is measured."""
    try:
        speech_samples(np.zeros(rate // 10), rate, 0)
    except FarEndError as exc:  # not expected for silence; the real measurement will say it again
        log.warning("far-end warm-up failed", extra=kv(error=str(exc)))


class FarEndMeter:
    """Measures the far end of each closed call in a worker thread; the owner collects :meth:`results`.

    ``folder``: baresip's ``snd_path``; ``keep``: keep the recordings after measuring. Times: the agent
    ``clock`` (its ``scale`` maps agent time to wall time, as baresip names files by wall time).
    """

    def __init__(self, folder: Path, *, keep: bool = False, clock: Clock | None = None,
                 settle_s: float = SETTLE_S) -> None:
        self.folder = folder
        self.keep = keep
        self.clock: Clock = clock if clock is not None else WallClock()
        self.settle_s = settle_s
        self._done: queue.Queue[FarEndResult] = queue.Queue()
        self._threads: list[threading.Thread] = []
        if not folder.is_dir():
            log.warning("far-end folder missing: far ends are not measured until it exists",
                        extra=kv(folder=str(folder)))
        # the first measurement would pay the analyser's first use (importing the resampler's scipy.signal
        # for 8 kHz recordings: 1-4 s on a busy desk) at the first hang-up, and that call's summary waits
        # for it: pay it now, aside from the agent's loop
        self._threads.append(threading.Thread(target=warm_up, name="far-end-warm-up", daemon=True))
        self._threads[0].start()

    def _wall_s(self, agent_ms: int) -> float:
        """Wall epoch seconds of an agent-clock time (ms), through the clock's scale."""
        now_wall = time.time()
        return now_wall - (self.clock.now_ms() - agent_ms) / 1000.0 / self.clock.scale

    def submit(self, call: CallState) -> bool:
        """Measure this closed call's far end in the background; False (nothing to do) when it was not
        answered or has no id."""
        if call.call_id is None or call.established_ms is None or call.closed_ms is None:
            return False
        wall = {call.established_ms: self._wall_s(call.established_ms), call.closed_ms: self._wall_s(call.closed_ms)}

        def work() -> None:
            try:
                result = measure_recording(call, self.folder, keep=self.keep, settle_s=self.settle_s,
                                           wall_s=lambda ms: wall.get(ms, ms / 1000.0), scale=self.clock.scale)
            except Exception as exc:  # a bug must not lose the call: not measured, logged
                log.exception("far end not measured", extra=kv(error=f"{type(exc).__name__}: {exc}"))
                result = FarEndResult(call.call_id or "", None, reason=f"internal error: {exc}")
            self._done.put(result)

        t = threading.Thread(target=work, name="far-end", daemon=True)
        self._threads = [th for th in self._threads if th.is_alive()] + [t]
        t.start()
        return True

    def results(self) -> list[FarEndResult]:
        """Results finished since the last call."""
        out: list[FarEndResult] = []
        while True:
            try:
                out.append(self._done.get_nowait())
            except queue.Empty:
                return out

    def drain(self, timeout_s: float) -> list[FarEndResult]:
        """Wait (wall time, at most ``timeout_s``) for the measurements under way, then :meth:`results`."""
        deadline = time.monotonic() + timeout_s
        for t in self._threads:
            t.join(max(0.0, deadline - time.monotonic()))
        self._threads = [t for t in self._threads if t.is_alive()]
        return self.results()
