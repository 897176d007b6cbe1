"""Mains hum removal at the front of the analyser: a line spectrum at 50 or 60 Hz and its harmonics,
found on the boom channel and taken out of every channel by IIR notch filters.

A ground loop or a poorly shielded cable puts the mains frequency and its harmonics (a buzz: odd and even
multiples up to several hundred Hz) under the voice. Those harmonics lie in the syllable detector's
sonority band (300-3000 Hz) and the VAD's speech band (100-4000 Hz), and, like stationary noise, they
fill the dips between syllables: a 50 Hz buzz (11 harmonics at 1/k) 20, 10 and 0 dB under the speech
level took 14 real clips from 6.1 % syllable error to 7.6, 7.8 and 24.7 % (``bench/accuracy.py --only
hum``, the notches off; with them 7.4, 7.2 and 8.0 %).

Detection (every second of stream, on a fixed grid, from the last 2 s of channel 0, or the first
second): synchronous averaging over the mains period. The 2 s are cut into 100 ms blocks, whole cycles of
both mains frequencies, of which the quieter half is kept (where the hum is not under the voice); the
DFT of each block holds every mains harmonic in a whole bin, with the same phase in every block. A
harmonic k * f0 (f0 50 or 60 Hz, up to 1 kHz) is present when its mean over the blocks (the coherent
part, which only a line locked to the mains keeps) stands ``LINE_DB`` over the standard error of that
mean (the blocks' spread around it, over their number): speech, whose harmonics move with the pitch, and
music, whose equal-tempered notes miss the multiples of 50 and 60 Hz, average out. Hum is present when at
least ``MIN_HARMONICS`` harmonics of one f0 are (the f0 with more, where both have: 300, 600 and 900 Hz
are harmonics of both), in any of the last ``MEMORY_DETECTIONS`` detections (a second of loud speech can
hide it; the pauses around it show it).

Removal: a cascade of second-order IIR notches (the standard notch: zeros on the unit circle at the line,
poles just inside it; Orfanidis, S. J. (1996), "Introduction to Signal Processing", Prentice Hall,
sec. 11.3, as ``scipy.signal.iirnotch`` designs it), one per present harmonic, at k * f0, each
``NOTCH_WIDTH_HZ`` wide, on every channel, with their state carried from block to block; when the set
of notches changes, the new one starts from the state it would have after the last second of input (no
swell of hum while it settles). Without hum the samples pass unchanged (bit for bit), so every
recording without it is measured as before. The filters change only at the detection grid's points, so
the output does not depend on how the stream is split into blocks.

Every measure reads the samples after the notches, the P.56 level too: under a buzz as loud as the speech
it read 3.1 dB high, now within 0.4 dB (``tests/device/dsp/test_hum.py``), while ``bench/accuracy.py
--only hum`` gives the syllables. Detection costs a few small FFTs a second; without hum, nothing else.
The notches are scipy's (``iirnotch``, ``sosfilt``), imported only once hum is found: importing
``scipy.signal`` adds about 65 MB of resident memory, more than the desk agent's budget leaves, so the
live agent runs without this remover (``StreamingAnalyzer(remove_hum=False)``, the default) and
``headset-agent analyze`` runs with it.

Units: full-scale amplitude (1.0 = digital full scale), Hz, dB, samples.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import numpy.typing as npt

from device.dsp.errors import DspError

FloatArray = npt.NDArray[np.float64]

MAINS_HZ = (50.0, 60.0)
"""The mains frequencies looked for."""
MAX_HARMONIC_HZ = 1000.0
"""Harmonics looked for up to this frequency."""
LINE_DB = 13.0
"""A harmonic's mean over the blocks stands this far over its standard error (dB; a harmonic of noise or
speech reads about 0 dB, and passes 13 dB with a chance of exp(-20), 2e-9)."""
MIN_HARMONICS = 5
"""Hum: at least this many harmonics of one mains frequency present."""
NOTCH_WIDTH_HZ = 2.0
"""-3 dB width of each notch (Hz). The mains frequency drifts by a few hundredths of a Hz (0.1 Hz at most),
so the low harmonics that carry most of a buzz stay deep in their notches; at 1 kHz a drift of 0.05 Hz
moves the line 1 Hz, to its notch's -3 dB edge."""
WINDOW_S = 2.0
"""Seconds of the boom channel in each detection (the mains drifts by about 0.02 Hz: a harmonic at 500 Hz
moves 0.2 Hz, under half a cycle in 2 s)."""
BLOCK_S = 0.1
"""Blocks of whole cycles of both mains frequencies (5 at 50 Hz, 6 at 60 Hz): every harmonic of either
falls on a whole DFT bin, whatever the block's start."""
MEMORY_DETECTIONS = 3
"""Lines found in any of this many last detections are removed."""
WARM_UP_S = 1.0
"""When the notches change, their state is that of filtering the last this many seconds."""
GRID_S = 1.0
"""A detection every this many seconds of stream (the first after one)."""


class HumRemover:
    """Removes mains hum from ``(n, channels)`` blocks at ``sample_rate_hz`` (see the module docstring).

    :attr:`mains_hz` and :attr:`lines_hz` say what is being removed (None and () without hum)."""

    def __init__(self, channels: int, sample_rate_hz: int) -> None:
        if channels < 1 or sample_rate_hz < 2 * MAX_HARMONIC_HZ + 200:
            raise DspError(f"channels must be 1 or more and sample_rate_hz over {2 * MAX_HARMONIC_HZ + 200:g}, not "
                           f"{channels} and {sample_rate_hz}")
        self.channels = channels
        self.sample_rate_hz = sample_rate_hz
        self._grid = round(GRID_S * sample_rate_hz)
        self._ring = np.zeros((round(WINDOW_S * sample_rate_hz), channels))  # the last samples, in a ring
        self._pos = 0  # samples seen
        self._found: list[dict[float, list[float]]] = []  # the last detections: mains -> its lines (Hz)
        self._sos: FloatArray | None = None
        self._zi: FloatArray | None = None
        self.mains_hz: float | None = None
        """The mains frequency whose harmonics are being removed (None: no hum)."""
        self.lines_hz: tuple[float, ...] = ()
        """The lines (Hz) the notches sit on."""

    def process(self, x: FloatArray) -> FloatArray:
        """``x`` without the hum found so far (the same samples while there is none)."""
        n = x.shape[0]
        if x.ndim != 2 or x.shape[1] != self.channels:
            raise DspError(f"blocks must have shape (n, {self.channels}), not {x.shape}")
        parts: list[FloatArray] = []
        i = 0
        while i < n:
            until = (self._pos // self._grid + 1) * self._grid  # the next detection
            take = min(n - i, until - self._pos)
            seg = x[i: i + take]
            parts.append(self._filter(seg))
            self._remember(seg)
            self._pos += take
            i += take
            if self._pos == until:
                self._detect()
        if len(parts) == 1:
            return parts[0]
        return np.concatenate(parts) if parts else x

    def _filter(self, seg: FloatArray) -> FloatArray:
        if self._sos is None:
            return seg
        from scipy.signal import sosfilt  # loaded once hum is found (see the module docstring)

        y, self._zi = sosfilt(self._sos, seg, axis=0, zi=self._zi)
        out: FloatArray = y
        return out

    def _remember(self, seg: FloatArray) -> None:
        size = self._ring.shape[0]
        n = seg.shape[0]
        seg = seg[-size:]
        start = (self._pos + max(0, n - size)) % size  # (a block longer than the ring keeps its end)
        end = start + seg.shape[0]
        if end <= size:
            self._ring[start:end] = seg
        else:
            self._ring[start:] = seg[: size - start]
            self._ring[: end - size] = seg[size - start:]

    def _recent(self) -> FloatArray:
        """The samples remembered (up to the last ``WINDOW_S``), oldest first, shape (n, channels)."""
        size = self._ring.shape[0]
        at = self._pos % size
        out: FloatArray = np.concatenate([self._ring[at:], self._ring[:at]])[size - min(self._pos, size):]
        return out

    def _detect(self) -> None:
        recent = self._recent()
        spectra = self._quiet_spectra(recent[:, 0])
        self._found = [*self._found[-(MEMORY_DETECTIONS - 1):], {m: self._lines(spectra, m) for m in MAINS_HZ}]
        best: tuple[float, list[float]] | None = None
        for mains in MAINS_HZ:
            lines = sorted({f for found in self._found if len(found[mains]) >= MIN_HARMONICS for f in found[mains]})
            if lines and (best is None or len(lines) > len(best[1])):
                best = (mains, lines)
        mains_hz, lines_hz = (best[0], tuple(best[1])) if best else (None, ())
        if (mains_hz, lines_hz) == (self.mains_hz, self.lines_hz):
            return  # the same lines: the filters and their state stay
        self.mains_hz, self.lines_hz = mains_hz, lines_hz
        if not lines_hz:
            self._sos = self._zi = None
            return
        # (loaded once hum is found: see the module docstring)
        from scipy.signal import iirnotch, sosfilt, tf2sos

        sections: list[Any] = []
        for f in lines_hz:
            b, a = iirnotch(f, f / NOTCH_WIDTH_HZ, fs=self.sample_rate_hz)
            sections.append(tf2sos(b, a))
        self._sos = np.concatenate(sections)
        # the notches start as if they had been running: their state from the last WARM_UP_S of the input (from
        # rest, a notch lets the hum through and fades it out over about 1 / (pi * width), 0.16 s: a swell)
        warm = recent[-round(WARM_UP_S * self.sample_rate_hz):]
        _, self._zi = sosfilt(self._sos, warm, axis=0, zi=np.zeros((self._sos.shape[0], 2, self.channels)))

    def _quiet_spectra(self, x: FloatArray) -> npt.NDArray[np.complex128]:
        """The DFTs (rows) of the quieter half of the ``BLOCK_S`` blocks of ``x``: pauses and consonants,
        where the hum is not under the voice (both mains frequencies are read from the same spectra)."""
        block = round(self.sample_rate_hz * BLOCK_S)
        n = x.size // block
        blocks = x[: n * block].reshape(n, block)
        quiet = np.argsort(np.sum(blocks**2, axis=1))[: n // 2]
        spectra: npt.NDArray[np.complex128] = np.fft.rfft(blocks[quiet], axis=1)
        return spectra

    def _lines(self, spectra: npt.NDArray[np.complex128], mains: float) -> list[float]:
        """The harmonics of ``mains`` (Hz) that stand as lines locked to it in the block ``spectra`` (see
        the module docstring)."""
        ks = np.arange(1, int(MAX_HARMONIC_HZ // mains) + 1)
        bins = spectra[:, np.round(ks * mains * BLOCK_S).astype(np.int64)]
        mean = bins.mean(axis=0)
        spread = np.mean(np.abs(bins - mean) ** 2, axis=0) / bins.shape[0]  # the squared standard error of the mean
        present = np.abs(mean) ** 2 > np.maximum(spread, 1e-30) * 10 ** (LINE_DB / 10)
        return [float(k * mains) for k in ks[present]]
