"""The error of the speech DSP engine: bad input named in the message."""

from __future__ import annotations


class DspError(ValueError):
    """Input the DSP engine cannot measure: wrong shape or type, mono where two channels are
    needed, too little own speech for a calibration, non-finite samples."""
