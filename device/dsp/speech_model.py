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

Units: samples at 16 kHz (floats, 1.0 = full scale), hops of ``hop`` samples, probabilities 0-1.
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

    def __init__(self, hop: int, model: SpeechModel) -> None:
        if hop <= 0:
            raise DspError(f"hop must be a positive number of samples, not {hop}")
        self.hop = hop
        self._model = model
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
