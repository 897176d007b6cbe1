"""Input blocks to float64 sample frames, and whole 10 ms hops out of a stream of any block size.

Units: samples; amplitudes are floats where 1.0 is digital full scale (0 dBov for a square wave,
ITU-T P.56 / G.100 convention). 16-bit integers are scaled by 1/32768, as the ITU-T STL does.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

from device.dsp.errors import DspError

FloatArray = npt.NDArray[np.float64]

INT16_SCALE = 1.0 / 32768.0
"""16-bit full scale: the STL's ``sh2fl`` maps -32768..32767 to -1.0..0.99997."""


def to_float_frames(block: npt.ArrayLike, channels: int) -> FloatArray:
    """Coerce ``block`` to a C-contiguous float64 array of shape ``(n, channels)``.

    ``block`` is shape ``(n,)`` (only when ``channels == 1``) or ``(n, channels)``, dtype int16
    (scaled by 1/32768) or float32/float64 in [-1, 1] (values beyond are kept; they count as
    clipped). Raises :class:`DspError` naming the problem for any other shape, dtype or for
    NaN/inf samples.
    """
    arr = np.asarray(block)
    if arr.dtype == np.int16:
        out = arr.astype(np.float64) * INT16_SCALE
    elif arr.dtype in (np.float32, np.float64):
        out = arr.astype(np.float64, copy=False)
    else:
        raise DspError(f"audio block has dtype {arr.dtype}; expected int16, float32 or float64")
    if out.ndim == 1:
        if channels != 1:
            raise DspError(f"audio block has shape {arr.shape} (mono) but the analyser expects {channels} channels")
        out = out.reshape(-1, 1)
    elif out.ndim != 2 or out.shape[1] != channels:
        raise DspError(f"audio block has shape {arr.shape}; expected (n, {channels})")
    if out.size and not np.isfinite(out).all():
        raise DspError("audio block contains NaN or infinite samples")
    return np.ascontiguousarray(out)


class SampleQueue:
    """A FIFO of multichannel samples that hands out whole chunks of ``chunk`` samples.

    Bounded: it never holds more than one partial chunk after :meth:`take`.
    """

    def __init__(self, channels: int, chunk: int) -> None:
        if chunk <= 0:
            raise DspError(f"chunk must be positive, got {chunk}")
        self.channels = channels
        self.chunk = chunk
        self._buf: FloatArray = np.zeros((0, channels))

    def __len__(self) -> int:
        return int(self._buf.shape[0])

    def push(self, frames: FloatArray) -> None:
        """Append ``frames`` of shape ``(n, channels)``."""
        if frames.shape[0]:
            self._buf = np.concatenate([self._buf, frames]) if self._buf.shape[0] else frames

    def take(self) -> FloatArray:
        """Remove and return all whole chunks (shape ``(k * chunk, channels)``, possibly k = 0)."""
        n = (self._buf.shape[0] // self.chunk) * self.chunk
        out = self._buf[:n]
        self._buf = self._buf[n:].copy()
        return out

    def take_rest(self, pad_to_chunk: bool) -> FloatArray:
        """Remove and return what is left, zero-padded to a whole chunk when ``pad_to_chunk``."""
        rest = self._buf
        self._buf = np.zeros((0, self.channels))
        if pad_to_chunk and rest.shape[0] % self.chunk:
            pad = self.chunk - rest.shape[0] % self.chunk
            rest = np.concatenate([rest, np.zeros((pad, self.channels))])
        return rest


def hop_frames(samples: FloatArray, frame: int, hop: int, n: int) -> FloatArray:
    """The first ``n`` frames of ``frame`` samples every ``hop`` samples of 1-D ``samples``, as a
    read-only strided view (row ``k`` is ``samples[k * hop : k * hop + frame]``): what
    ``sliding_window_view(samples, frame)[::hop][:n]`` gives, without its argument checks, which cost
    more than the view itself at 10 hops a call. ``samples`` must hold ``(n - 1) * hop + frame``."""
    if n <= 0:
        return np.zeros((0, frame), dtype=samples.dtype)
    if samples.ndim != 1 or samples.size < (n - 1) * hop + frame:
        raise DspError(f"{n} frames of {frame} every {hop} need {(n - 1) * hop + frame} samples, "
                       f"got shape {samples.shape}")
    step = samples.strides[0]
    view: FloatArray = np.lib.stride_tricks.as_strided(samples, shape=(n, frame), strides=(hop * step, step),
                                                       writeable=False)
    return view


def window_autocorrelation(window: FloatArray, nfft: int, lags: slice, decim: int = 1) -> FloatArray:
    """The normalised autocorrelation of ``window`` at ``lags`` (samples at the rate decimated by
    ``decim``), from the first ``nfft // (2 * decim) + 1`` bins of its power spectrum: what a windowed
    frame's normalised autocorrelation is divided by (Boersma 1993, eq. 9), computed the way the
    frames' own is."""
    w_pow = np.abs(np.fft.rfft(window, nfft)[: nfft // (2 * decim) + 1]) ** 2
    w_ac = np.fft.irfft(w_pow, nfft // decim)
    result: FloatArray = (w_ac / w_ac[0])[lags]
    return result
