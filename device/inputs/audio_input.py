"""The desk loop's audio input: one source (:func:`device.inputs.audio_sources.open_source`), opened
again with backoff after a failure.

A source that cannot be opened or read is closed, and opened again ``AUDIO_RETRY_MIN_S`` later on the
loop's clock, the wait doubling up to ``AUDIO_RETRY_MAX_S`` (and back to the minimum once it reads
again). A file source that ends is not reopened. While there is no block (a failed source, an ended
file) :meth:`AudioInput.read` waits ``IDLE_STEP_S`` on the clock, so the loop is paced either way.
What a failure or a recovery means to the desk (the ``audio_error``/``audio_ok`` events, the state)
is the service's: :class:`AudioInput` calls ``on_open`` and ``on_fail``.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable

import numpy as np
import numpy.typing as npt

from device.clock import Clock
from device.config.agent import AudioSettings
from device.errors import AudioError
from device.inputs.audio_sources import AudioSource, open_source
from device.logs import kv

log = logging.getLogger("device.agent")

AUDIO_RETRY_MIN_S = 0.5
AUDIO_RETRY_MAX_S = 8.0
IDLE_STEP_S = 0.05
"""Clock seconds per loop pass while there is no audio to pace the loop (wall seconds for a wall clock)."""


class AudioInput:
    """The audio source of the loop, reopened with backoff (clock ms) after a failure."""

    def __init__(self, settings: AudioSettings, clock: Clock, *, speed: Callable[[], float],
                 stop: threading.Event, on_open: Callable[[AudioSource, bool], None],
                 on_fail: Callable[[str], None]) -> None:
        self.settings = settings
        self.clock = clock
        self.speed = speed
        """Audio seconds per clock second of a file source (called at each open)."""
        self.stop = stop
        self.on_open = on_open
        """Called with the source and ``first`` each time one opens."""
        self.on_fail = on_fail
        """Called with the reason each time the source fails to open or to read."""
        self.source: AudioSource | None = None
        self.failing = False
        """The last open or read failed; a retry is due at :attr:`retry_at_ms`."""
        self.retry_at_ms = 0
        self.backoff_s = AUDIO_RETRY_MIN_S
        self.ended = False

    def open(self, first: bool = False) -> None:
        """Open the source; on failure close it and schedule the next attempt."""
        cfg = self.settings
        try:
            src = open_source(cfg.source, self.clock, speed=self.speed(), loop=cfg.loop, block_ms=cfg.block_ms,
                              stop=self.stop)
            src.open()
        except AudioError as exc:
            self.failed(str(exc))
            return
        self.source = src
        self.failing = False
        self.backoff_s = AUDIO_RETRY_MIN_S
        self.on_open(src, first)

    def failed(self, reason: str) -> None:
        if self.source is not None:
            self.source.close()
            self.source = None
        self.retry_at_ms = self.clock.now_ms() + int(self.backoff_s * 1000)
        self.backoff_s = min(AUDIO_RETRY_MAX_S, self.backoff_s * 2)
        self.failing = True
        self.on_fail(reason)

    def read(self) -> npt.NDArray[np.float32] | None:
        """One block, or None when there is none (error, end of file, stopped)."""
        if self.source is None:
            if self.failing and self.clock.now_ms() >= self.retry_at_ms:
                self.open()
            if self.source is None:
                self.clock.sleep(IDLE_STEP_S, self.stop)
                return None
        if self.ended:
            self.clock.sleep(IDLE_STEP_S, self.stop)
            return None
        try:
            block = self.source.read()
        except AudioError as exc:
            self.failed(str(exc))
            return None
        if block is None:
            self.ended = True
            log.info("audio file ended", extra=kv(source=self.source.description))
            return None
        return block if len(block) else None

    def clock_stepped_back(self, now_ms: int) -> None:
        """The clock went back: the retry is due one backoff from now at the latest."""
        self.retry_at_ms = min(self.retry_at_ms, now_ms + int(self.backoff_s * 1000))

    def close(self) -> None:
        if self.source is not None:
            self.source.close()
