"""Streaming rational resampling to the internal 16 kHz rate.

The same polyphase FIR as ``scipy.signal.resample_poly`` (Kaiser window, beta 5.0, half
length 10 * max(up, down) taps of the up-sampled rate, cut-off at the lower Nyquist), run with
``scipy.signal.upfirdn`` over each block plus the history the filter needs, and with the
filter's delay removed. The concatenated output of any split of the input into blocks equals
``resample_poly`` of the whole input (zero padded at both ends), up to rounding.

scipy is imported only when a resampler is made for a rate other than the output rate: the agent
at 16 kHz never loads it (scipy.signal alone costs the desk unit some 60 MB of memory).
"""

from __future__ import annotations

import math

import numpy as np
import numpy.typing as npt

from device.dsp.errors import DspError

FloatArray = npt.NDArray[np.float64]

MIN_RATE_HZ = 4000
MAX_RATE_HZ = 384000


class StreamingResampler:
    """Resample ``(n, channels)`` float blocks from ``rate_in_hz`` to ``rate_out_hz``."""

    def __init__(self, rate_in_hz: int, rate_out_hz: int, channels: int) -> None:
        if not MIN_RATE_HZ <= rate_in_hz <= MAX_RATE_HZ:
            raise DspError(f"sample rate {rate_in_hz} Hz is outside {MIN_RATE_HZ}..{MAX_RATE_HZ} Hz")
        g = math.gcd(rate_in_hz, rate_out_hz)
        self.up = rate_out_hz // g
        self.down = rate_in_hz // g
        self.channels = channels
        self.passthrough = self.up == self.down
        max_rate = max(self.up, self.down)
        half_len = 10 * max_rate
        if self.passthrough:
            h = np.zeros(2 * half_len + 1)
            h[half_len] = 1.0  # unused: process() hands the input back
        else:
            from scipy.signal import firwin  # only here: see the module docstring

            h = firwin(2 * half_len + 1, 1.0 / max_rate, window=("kaiser", 5.0)) * self.up
        pre_pad = self.down - half_len % self.down
        self._h = np.concatenate([np.zeros(pre_pad), h])
        self._skip = (half_len + pre_pad) // self.down  # output samples of filter delay
        self._buf: FloatArray = np.zeros((0, channels))
        self._s0 = 0  # global input index of _buf[0], a multiple of down
        self._n_in = 0  # input samples fed
        self._k_next = 0  # next global output index (before removing the delay)

    def _outputs(self, k_max: int) -> FloatArray:
        """Global outputs ``_k_next .. k_max`` (inclusive) from the buffer."""
        if k_max < self._k_next or self._buf.shape[0] == 0:
            return np.zeros((0, self.channels))
        from scipy.signal import upfirdn  # loaded by __init__ already (not a passthrough)

        y = upfirdn(self._h, self._buf, self.up, self.down, axis=0)
        off = self._s0 * self.up // self.down  # global index of y[0]
        seg = y[self._k_next - off: k_max - off + 1]
        out = np.zeros((k_max - self._k_next + 1, self.channels))
        out[: seg.shape[0]] = seg
        self._k_next = k_max + 1
        # drop input no longer needed by the next output
        need = math.ceil((self._k_next * self.down - self._h.size + 1) / self.up)
        s0 = max(self._s0, (max(need, 0) // self.down) * self.down)
        if s0 > self._s0:
            self._buf = self._buf[s0 - self._s0:]
            self._s0 = s0
        return out

    def _trim_delay(self, out: FloatArray, first_k: int) -> FloatArray:
        cut = max(0, self._skip - first_k)
        return out[cut:]

    def process(self, x: FloatArray) -> FloatArray:
        """Resampled output available after ``x`` (shape ``(n, channels)``)."""
        if self.passthrough:
            return x
        self._buf = np.concatenate([self._buf, x]) if self._buf.shape[0] else x.copy()
        self._n_in += x.shape[0]
        if self._n_in == 0:
            return np.zeros((0, self.channels))
        k_max = ((self._n_in - 1) * self.up) // self.down
        first = self._k_next
        return self._trim_delay(self._outputs(k_max), first)

    def flush(self) -> FloatArray:
        """The rest of the output: the input is taken as zero after its end."""
        if self.passthrough:
            return np.zeros((0, self.channels))
        total = -(-self._n_in * self.up // self.down)  # ceil(n_in * up / down) output samples
        k_max = total + self._skip - 1
        pad = (k_max * self.down) // self.up + 1 - self._n_in
        if pad > 0:
            self._buf = np.concatenate([self._buf, np.zeros((pad, self.channels))])
        first = self._k_next
        return self._trim_delay(self._outputs(k_max), first)
