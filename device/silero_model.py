"""The shipped speech model: Silero VAD 6.2.3's ONNX file, run with onnxruntime (no torch).

``device/models/silero_vad.onnx`` is the file of the ``silero-vad`` 6.2.3 wheel, unmodified (MIT,
``device/models/LICENSE-silero-vad``); its SHA-256 is checked when it is loaded. The model is run as
Silero's own ``OnnxWrapper`` runs it: one call per 512-sample chunk at 16 kHz with the 64 samples
before it, float32, the recurrent state carried by the caller (:mod:`device.dsp.speech_model`, which
does the streaming and knows nothing of files or onnxruntime).

One onnxruntime session per process, made on first use: only mono analysers load it (``analyze`` of
mono and call recordings); the two-channel desk agent never imports onnxruntime. Where onnxruntime
cannot be installed (32-bit ARM has no package), :func:`unavailable_reason` says so and the mono VAD
goes without the model.
"""

from __future__ import annotations

import functools
import hashlib
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from device.errors import SpeechModelUnavailable

MODEL_PATH = Path(__file__).resolve().parent / "models" / "silero_vad.onnx"
MODEL_SHA256 = "1a153a22f4509e292a94e67d6f9b85e8deb25b4988682b7e174c65279d8788e3"
RATE_HZ = 16000
"""The model's sample rate (the analyser's internal rate)."""

Float32Array = npt.NDArray[np.float32]


class SileroModel:
    """One onnxruntime session of Silero VAD: :meth:`run` is one chunk (see the module docstring)."""

    def __init__(self, session: Any) -> None:
        self._session = session
        self._sr = np.array(RATE_HZ, dtype=np.int64)

    def run(self, window: Float32Array, state: Float32Array) -> tuple[float, Float32Array]:
        """Speech probability (0-1) of ``window`` (float32, shape (1, 576): the 64 samples before the chunk
        and its 512) and the next state, given ``state`` (float32, shape (2, 1, 128))."""
        prob, new_state = self._session.run(None, {"input": window, "state": state, "sr": self._sr})
        out: Float32Array = new_state
        return float(prob[0, 0]), out


def open_session(path: Path) -> Any:
    """An onnxruntime session of the model file at ``path`` (single-threaded, CPU); raises
    :class:`SpeechModelUnavailable` naming what is wrong."""
    try:
        import onnxruntime as ort
    except ImportError as exc:
        raise SpeechModelUnavailable(
            "onnxruntime is not installed (pip install onnxruntime, or the project's locked requirements)") from exc
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise SpeechModelUnavailable(f"speech model {path} cannot be read: {exc.strerror or exc}") from exc
    if hashlib.sha256(data).hexdigest() != MODEL_SHA256:
        raise SpeechModelUnavailable(f"speech model {path} is not the shipped Silero VAD 6.2.3 file (sha256 differs)")
    opts = ort.SessionOptions()
    opts.inter_op_num_threads = 1
    opts.intra_op_num_threads = 1
    opts.log_severity_level = 3
    return ort.InferenceSession(data, sess_options=opts, providers=["CPUExecutionProvider"])


@functools.lru_cache(maxsize=1)
def load() -> SileroModel:
    """The shipped model (one session per process; sessions may run concurrently, the state is the
    caller's); raises :class:`SpeechModelUnavailable`."""
    return SileroModel(open_session(MODEL_PATH))


def load_or_none() -> SileroModel | None:
    """:func:`load`, or None where the model cannot run (:func:`unavailable_reason` says why)."""
    try:
        return load()
    except SpeechModelUnavailable:
        return None


def unavailable_reason() -> str | None:
    """None when the model can run here, else why not (one line)."""
    try:
        load()
    except SpeechModelUnavailable as exc:
        return str(exc)
    return None
