"""The error root of the desk agent. ``device.cli.main`` turns these into exit codes.

The DSP's errors (:class:`device.dsp.errors.DspError` and its subclasses) are part of this root; this
module imports nothing, so that ``device.dsp`` can import it and stay free of the rest of the desk.
"""

from __future__ import annotations


class AgentError(Exception):
    """An error to report to the user as ``headset-agent: message`` with exit code 1."""


class UsageError(AgentError, ValueError):
    """Bad command-line arguments: exit code 2."""


class ConfigError(AgentError, ValueError):
    """An invalid config file or remote config. The message names the field (and line).

    ``field`` is the dotted name of the setting (``posture.forward_deg``, ``mqtt.urls``) when the error is
    about one, ``line`` its 1-based line in the config file when known: as ``mqtt_schema.SchemaError``'s
    ``field``, so that no caller parses them back out of the message.
    """

    def __init__(self, message: str, *, field: str | None = None, line: int | None = None) -> None:
        super().__init__(message)
        self.field = field
        self.line = line


class FlagError(UsageError, ConfigError):
    """A setting given on the command line (``--broker``, ``--state-dir``), or one a flag must give where
    there is no config file (``--site``), that fails the config's check: a usage error (exit code 2) and a
    :class:`ConfigError` whose message names the flag and the field. A bad value in the config file is a
    plain ConfigError (exit code 1) naming the file, line and field."""


class AudioError(AgentError, OSError):
    """An audio source that cannot be opened or read, or an unreadable audio file."""


class CalibrationError(AgentError, ValueError):
    """A calibration that cannot be made or loaded (mono input, too little speech, bad file)."""


class LinkError(AgentError, OSError):
    """The headset link (USB serial) failed."""


class LayoutError(AgentError, ValueError):
    """A channel layout that does not fit a recording (a channel out of range, a 3-channel call)."""


class ShutdownError(AgentError, RuntimeError):
    """A stop that ran every step but not every step succeeded; the message names the failed steps."""


class SpeechModelUnavailable(AgentError, RuntimeError):
    """The speech model of the mono VAD cannot run here: onnxruntime is not installed, or the model file
    is missing or not the one shipped (the message says which)."""
