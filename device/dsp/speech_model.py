"""Per-hop speech probability from a neural speech detector (Silero VAD v6), streamed over 10 ms hops.

Silero Team (2024), "Silero VAD: pre-trained enterprise-grade Voice Activity Detector (VAD), Number
Detector and Language Classifier", https://github.com/snakers4/silero-vad (MIT licence). The model
takes 512 samples at 16 kHz (32 ms) plus the last 64 samples of the chunk before, and a recurrent
state carried from chunk to chunk; it returns the chunk's speech probability (0-1) and the next state.
This module does the streaming; the model itself is given (a :class:`SpeechModel`: the shipped ONNX
file on onnxruntime is :class:`device.silero_model.SileroModel`), so that the DSP reads no files. The
chunks a block completes go to the model in one call.

What it is for here: the mono VAD (:mod:`device.dsp.vad`) asks it whether the sound that opens its
gate is speech at all. Hand-made tests of level, spectrum, modulation and pitch pass music, which is
loud, modulated and full of pitches: 30 s excerpts of 13 pieces of real game and library music
(Debian's frozen-bubble, xmoto and lincity-ng data) read as 0.4-29.9 s of speech and up to 165
syllables, where Silero finds none. The model does not place speech in time (the energy VAD does that,
and its speech time agrees with ITU-T P.56 activity); its share over the louder recent gate-opening
hops decides whether they are speech: on real speech, clean or at 5 dB SNR in pink noise or babble,
88-100 % of those hops read 0.5 or more, on 10 s windows of the music 0-2 %.

Chunks sit on a fixed grid from the stream's start, so the probabilities do not depend on how the
stream is split into blocks. Each 10 ms hop gets the probability of the last chunk completed by its
end (0 before the first): causal, at most 32 ms late.

The model hears a quiet recording raised to a working level. Its probabilities fall with the level
(``bench/speech_model_levels.py``, 15 real clips scaled in float): the share of their loud hops it
calls speech is 0.85-1.00 at an active speech level (ITU-T P.56) of -40 dBov (each clip's own best),
0.78-0.98 at -60, 0.11-0.93 at -70 and 0.00-0.64 at -75. So speech 30 dB over a 16-bit file's
quantisation noise was taken for music: a dev clip at -69 dBov read 2.2 s of speech and 12 syllables
instead of 3.4 s and 18, with a warning of 1.1 s of sound that is not speech. The caller, knowing the
recording's level, gives the gain (:func:`model_gain_db`); the model's input is multiplied by it, and
nothing else is. Raised to -45 dBov, every clip reads at every level as at -40.

Units: samples at 16 kHz (floats, 1.0 = full scale), hops of ``hop`` samples, probabilities 0-1, levels
in dBov, gains in dB.
"""

from __future__ import annotations

from typing import Any, Protocol

import numpy as np
import numpy.typing as npt

from device.dsp.errors import DspError
from device.dsp.frames import hop_frames

FloatArray = npt.NDArray[np.float64]
Float32Array = npt.NDArray[np.float32]

CHUNK = 512
"""Samples per model call (32 ms)."""
CONTEXT = 64
"""Samples of the previous chunk given with each call."""
WINDOW = CONTEXT + CHUNK
"""Samples per row given to the model."""
QUIET_LEVEL_DBOV = -45.0
"""A recording whose active speech level (ITU-T P.56, dBov) is under this is raised to it for the model.
Every clip of ``tests/data`` and of the dev set lies at -41 dBov or over, and reaches the model as it is."""
MAX_GAIN_DB = 40.0
"""The most the model's input is raised (dB)."""


def model_gain_db(level_dbov: float | None) -> float:
    """The gain (dB, 0 to :data:`MAX_GAIN_DB`) that raises a recording of active speech level
    ``level_dbov`` (ITU-T P.56; None: no speech measured, 0 dB) to :data:`QUIET_LEVEL_DBOV` for the model."""
    if level_dbov is None or not np.isfinite(level_dbov):
        return 0.0
    return float(min(max(QUIET_LEVEL_DBOV - level_dbov, 0.0), MAX_GAIN_DB))


class SpeechModel(Protocol):
    """The speech model: probabilities of a sequence of chunks, and the state carried between calls."""

    def initial_state(self) -> Any:
        """The state at a stream's start."""
        ...

    def run(self, windows: Float32Array, state: Any) -> tuple[FloatArray, Any]:
        """Speech probabilities (0-1) of ``windows`` (float32, shape (n, :data:`WINDOW`), per row the
        :data:`CONTEXT` samples before a chunk and its :data:`CHUNK`), and the state after them."""
        ...


class SpeechProbability:
    """Streaming speech probability per hop of ``hop`` samples of mono 16 kHz audio, from ``model`` (see
    the module docstring)."""

    def __init__(self, hop: int, model: SpeechModel, *, gain_db: float = 0.0) -> None:
        """``gain_db``: the model hears the samples raised by this much (0 to :data:`MAX_GAIN_DB`; see
        :func:`model_gain_db`)."""
        if hop <= 0:
            raise DspError(f"hop must be a positive number of samples, not {hop}")
        if not 0.0 <= gain_db <= MAX_GAIN_DB:
            raise DspError(f"gain_db must be from 0 to {MAX_GAIN_DB:g} dB, not {gain_db!r}")
        self.hop = hop
        self._model = model
        self._gain = np.float32(10.0 ** (gain_db / 20.0)) if gain_db > 0.0 else None
        self._state = model.initial_state()
        self._buf = np.zeros(CONTEXT, dtype=np.float32)  # the context, then samples not yet in a chunk
        self._last = 0.0  # the probability of the last chunk
        self._fed = 0  # samples fed (whole hops)

    def process(self, x: FloatArray) -> FloatArray:
        """Speech probability of each whole hop of ``x`` (mono samples at 16 kHz)."""
        hops = x.shape[0] // self.hop
        if hops == 0:
            return np.zeros(0)
        buf = np.concatenate([self._buf, np.asarray(x[: hops * self.hop], dtype=np.float32)])
        n_chunks = (buf.size - CONTEXT) // CHUNK
        probs = np.zeros(0)
        if n_chunks:
            windows = np.ascontiguousarray(hop_frames(buf, WINDOW, CHUNK, n_chunks), dtype=np.float32)
            if self._gain is not None:
                windows = windows * self._gain
            probs, self._state = self._model.run(windows, self._state)
        self._buf = buf[n_chunks * CHUNK:]
        # chunk c (from the stream's start) is complete once (c + 1) * CHUNK samples are in; each hop takes
        # the last chunk complete at its end (index 0 of ``history``: the last one before this call)
        before = self._fed // CHUNK
        chunk_done = (self._fed + self.hop * np.arange(1, hops + 1)) // CHUNK
        history = np.concatenate([[self._last], probs])
        out: FloatArray = history[chunk_done - before]
        if n_chunks:
            self._last = float(probs[-1])
        self._fed += hops * self.hop
        return out
