"""The shipped speech model: Silero VAD 6.2.3's 16 kHz sequence export, run with onnxruntime (no torch).

``device/models/silero_vad_16k_sequence.onnx`` is a file of the ``silero-vad`` 6.2.3 wheel,
unmodified (MIT, ``device/models/LICENSE-silero-vad``); its SHA-256 is checked when it is loaded. It
is the export that takes a sequence of chunks in one call: each row 512 samples at 16 kHz with the 64
samples before them, float32, and the recurrent state (``h``, ``c``) carried by the caller
(:mod:`device.dsp.speech_model`, which does the streaming and knows nothing of files or
onnxruntime). Its probabilities are bit-identical to those of the wheel's one-chunk-a-call
``silero_vad.onnx``, the peer VAD of ``bench/accuracy.py``, and it is 2.5 times faster.

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

MODEL_PATH = Path(__file__).resolve().parent / "models" / "silero_vad_16k_sequence.onnx"
MODEL_SHA256 = "9ccdacc4719d8aa7e45a77536bfabec45a03ba1f2fad5e241ab4060b24238a85"

Float32Array = npt.NDArray[np.float32]
FloatArray = npt.NDArray[np.float64]


class SileroModel:
    """One onnxruntime session of Silero VAD: :meth:`run` is a sequence of chunks (see the module
    docstring); the state is the LSTM's ``(h, c)``."""

    def __init__(self, session: Any) -> None:
        self._session = session

    def initial_state(self) -> tuple[Float32Array, Float32Array]:
        """The state at a stream's start (zeros)."""
        return np.zeros((1, 1, 128), dtype=np.float32), np.zeros((1, 1, 128), dtype=np.float32)

    def run(self, windows: Float32Array, state: Any) -> tuple[FloatArray, Any]:
        """Speech probabilities (0-1) of ``windows`` (float32, shape (n, 576): per row the 64 samples before a
        chunk and its 512) and the state after them, given ``state``."""
        h, c = state
        probs, hn, cn = self._session.run(None, {"input": windows, "h": h, "c": c})
        out: FloatArray = np.asarray(probs, dtype=np.float64).reshape(-1)
        return out, (hn, cn)


def open_session(path: Path, sha256: str | None = MODEL_SHA256) -> Any:
    """An onnxruntime session of the model file at ``path`` (single-threaded, CPU), whose SHA-256 must be
    ``sha256`` (None: any file, as the bench's peer opens Silero's own one-chunk model); raises
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
    if sha256 is not None and hashlib.sha256(data).hexdigest() != sha256:
        raise SpeechModelUnavailable(f"speech model {path} is not the shipped Silero VAD 6.2.3 file (sha256 differs)")
    opts = ort.SessionOptions()
    opts.inter_op_num_threads = 1
    opts.intra_op_num_threads = 1
    opts.log_severity_level = 3
    return ort.InferenceSession(data, sess_options=opts, providers=["CPUExecutionProvider"])


@functools.lru_cache(maxsize=1)
def _loaded() -> SileroModel | SpeechModelUnavailable:
    """The shipped model, or why it cannot run: tried once a process, either way (``analyze`` asks for
    each mono analyser and for its warning; where onnxruntime is missing, the import and the file's
    hash are not tried again)."""
    try:
        return SileroModel(open_session(MODEL_PATH))
    except SpeechModelUnavailable as exc:
        return exc


def load() -> SileroModel:
    """The shipped model (one session per process; sessions may run concurrently, the state is the
    caller's); raises :class:`SpeechModelUnavailable`."""
    got = _loaded()
    if isinstance(got, SpeechModelUnavailable):
        raise SpeechModelUnavailable(str(got))
    return got


def load_or_none() -> SileroModel | None:
    """:func:`load`, or None where the model cannot run (:func:`unavailable_reason` says why)."""
    got = _loaded()
    return None if isinstance(got, SpeechModelUnavailable) else got


def unavailable_reason() -> str | None:
    """None when the model can run here, else why not (one line)."""
    got = _loaded()
    return str(got) if isinstance(got, SpeechModelUnavailable) else None
