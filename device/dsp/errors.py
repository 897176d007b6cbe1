"""The errors of the speech DSP engine: bad input named in the message.

:class:`DspError` is part of the desk's error root (:class:`device.errors.AgentError`), so the one
place that turns errors into exit codes (``device.cli.main``) reports it; it is also a ``ValueError``.
``device.errors`` is the one module of ours outside ``device.dsp`` that the DSP imports (it imports
nothing itself).
"""

from __future__ import annotations

from device.errors import AgentError


class DspError(AgentError, ValueError):
    """Input the DSP engine cannot measure: wrong shape or type, mono where two channels are
    needed, too little own speech for a calibration, non-finite samples."""


class DspParameterError(DspError):
    """A parameter of a DSP stage outside its range: a filter coefficient, a window or frame length,
    a sample rate."""


class DspBlockError(DspError):
    """An audio block a stage cannot take: the wrong shape or length, or non-finite samples."""


class DspStateError(DspError, RuntimeError):
    """A stage used out of order, such as a feed after the stream was flushed (also a RuntimeError)."""
