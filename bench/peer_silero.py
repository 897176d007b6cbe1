"""The peer VAD: Silero VAD (v6, ``silero-vad`` 6.2.3 on PyPI) run with onnxruntime, without torch.

The wheel ships its models in ``silero_vad/data/``. Importing the ``silero_vad`` package imports
torch, so it is never imported here: :func:`find_model` locates ``silero_vad.onnx`` in the installed
package's folder (``importlib.util.find_spec``, which does not run the package) or in
``.cache/silero`` (a ``pip install --no-deps --target .cache/silero`` of ``requirements/silero.lock``).

The model is run as Silero's own ``OnnxWrapper`` runs it: one call per 512-sample chunk at 16 kHz,
``input`` = the last 64 samples of the previous chunk + the 512 new ones (float32, shape (1, 576)),
``state`` (2, 1, 128) float32 carried from call to call, ``sr`` int64 16000; outputs: the chunk's
speech probability (1, 1) and the next state. The last partial chunk is zero-padded.

Speech time (:func:`speech_seconds`) is what ``silero_vad.get_speech_timestamps`` returns with its
defaults, ported here for ``max_speech_duration_s`` = inf: speech starts on a chunk with
p >= 0.5 and ends after p < 0.35 for at least 100 ms; segments of 250 ms or less are dropped; each
segment is padded by 30 ms (half the gap when two segments are closer than 60 ms).
:func:`raw_speech_seconds` is the plain count of chunks with p > 0.5, 32 ms each.
"""

from __future__ import annotations

import importlib.util
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from device import silero_model
from device.errors import SpeechModelUnavailable

RATE_HZ = 16000
CHUNK = 512
"""Samples per model call at 16 kHz (32 ms)."""
CONTEXT = 64
"""Samples of the previous chunk prepended to each call."""
THRESHOLD = 0.5
NEG_THRESHOLD = THRESHOLD - 0.15
MIN_SPEECH_S = 0.250
MIN_SILENCE_S = 0.100
SPEECH_PAD_S = 0.030
VERSION = "6.2.3"
_ROOT = Path(__file__).resolve().parents[1]


class SileroUnavailable(RuntimeError):
    """onnxruntime or the Silero model file is missing (the message says how to install them)."""


def find_model(name: str = "silero_vad.onnx") -> Path:
    """Path of Silero's ONNX model in the installed ``silero_vad`` package (never imported) or in
    ``.cache/silero``; raises :class:`SileroUnavailable`."""
    candidates: list[Path] = []
    spec = importlib.util.find_spec("silero_vad")
    if spec is not None and spec.submodule_search_locations:
        candidates += [Path(p) / "data" / name for p in spec.submodule_search_locations]
    candidates.append(_ROOT / ".cache" / "silero" / "silero_vad" / "data" / name)
    for path in candidates:
        if path.is_file():
            return path
    raise SileroUnavailable(
        f"Silero VAD {VERSION} model {name} not found (looked in {', '.join(map(str, candidates))}); install it "
        "without torch: pip install --no-deps --require-hashes -r requirements/silero.lock")


@dataclass
class SileroVad:
    """One onnxruntime session of Silero VAD (single-threaded, CPU)."""

    session: Any
    model: Path

    @classmethod
    def load(cls, model: Path | None = None) -> SileroVad:
        """Open the model (default: :func:`find_model`) and check its inputs and outputs."""
        path = model or find_model()
        try:  # the project's onnxruntime session (single-threaded, CPU), of Silero's own file, unchecked
            session = silero_model.open_session(path, sha256=None)
        except SpeechModelUnavailable as exc:
            raise SileroUnavailable(str(exc)) from exc
        inputs = {i.name: (i.type, i.shape) for i in session.get_inputs()}
        want = {"input": "tensor(float)", "state": "tensor(float)", "sr": "tensor(int64)"}
        if {k: v[0] for k, v in inputs.items()} != want or inputs["state"][1][::2] != [2, 128]:
            raise SileroUnavailable(f"{path}: unexpected model inputs {inputs}; expected {want}, state (2, 1, 128)")
        if len(session.get_outputs()) != 2:
            raise SileroUnavailable(f"{path}: expected 2 outputs (probability, state)")
        return cls(session, path)

    def probabilities(self, audio: npt.NDArray[np.float64]) -> npt.NDArray[np.float64]:
        """Speech probability of each 512-sample chunk of mono 16 kHz ``audio`` (1.0 = full scale)."""
        x = np.asarray(audio, dtype=np.float32)
        n = -(-x.size // CHUNK)
        x = np.concatenate([np.zeros(CONTEXT, np.float32), x, np.zeros(n * CHUNK - x.size, np.float32)])
        state = np.zeros((2, 1, 128), np.float32)
        sr = np.array(RATE_HZ, dtype=np.int64)
        out = np.empty(n)
        for k in range(n):
            window = x[k * CHUNK: k * CHUNK + CONTEXT + CHUNK][None, :]
            prob, state = self.session.run(None, {"input": window, "state": state, "sr": sr})
            out[k] = float(prob[0, 0])
        return out


def raw_speech_seconds(probs: npt.NDArray[np.float64]) -> float:
    """Seconds of chunks with p > 0.5 (no smoothing)."""
    return float(np.count_nonzero(probs > THRESHOLD)) * CHUNK / RATE_HZ


def speech_segments(probs: npt.NDArray[np.float64], n_samples: int) -> list[tuple[int, int]]:
    """(start, end) samples of speech by ``get_speech_timestamps``' default rule (see the module)."""
    min_speech = RATE_HZ * MIN_SPEECH_S
    min_silence = RATE_HZ * MIN_SILENCE_S
    pad = RATE_HZ * SPEECH_PAD_S
    segments: list[list[int]] = []
    start: int | None = None
    temp_end = 0
    for i, p in enumerate(probs):
        cur = CHUNK * i
        if p >= THRESHOLD and temp_end:
            temp_end = 0
        if p >= THRESHOLD and start is None:
            start = cur
            continue
        if p < NEG_THRESHOLD and start is not None:
            if not temp_end:
                temp_end = cur
            if cur - temp_end < min_silence:
                continue
            if temp_end - start > min_speech:
                segments.append([start, temp_end])
            start, temp_end = None, 0
    if start is not None and n_samples - start > min_speech:
        segments.append([start, n_samples])
    for i, seg in enumerate(segments):
        if i == 0:
            seg[0] = int(max(0, seg[0] - pad))
        if i != len(segments) - 1:
            gap = segments[i + 1][0] - seg[1]
            if gap < 2 * pad:
                seg[1] += int(gap // 2)
                segments[i + 1][0] = int(max(0, segments[i + 1][0] - gap // 2))
            else:
                seg[1] = int(min(n_samples, seg[1] + pad))
                segments[i + 1][0] = int(max(0, segments[i + 1][0] - pad))
        else:
            seg[1] = int(min(n_samples, seg[1] + pad))
    return [(a, b) for a, b in segments]


def speech_seconds(probs: npt.NDArray[np.float64], n_samples: int) -> float:
    """Seconds of speech by Silero's default timestamp rule (see the module docstring)."""
    return sum(b - a for a, b in speech_segments(probs, n_samples)) / RATE_HZ
