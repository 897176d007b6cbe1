"""Remote configs on the desk: the retained ``config`` topic, handled on the agent loop's thread.

A remote config (:class:`mqtt_schema.Config`) comes from the host or from facilities. The desk

1. refuses one addressed to another desk (:func:`misaddressed`);
2. applies the first one since start, and every later one whose tables differ from the applied ones
   (:meth:`RemoteConfigs.wants_swap`). It is validated by the file's code
   (:func:`device.config.agent.apply_remote`), and every new object it needs (the cue target level, an
   analyser for a new calibration or new intonation settings, the per-call audio for new intonation
   settings) is built by :func:`prepare` before anything is swapped, so that a refused config changes
   nothing. The swap itself is the service's (:meth:`device.service.AgentService._apply_config`);
3. takes the upright pose once per config ``ts`` when ``calibrate_posture`` is true
   (:meth:`RemoteConfigs.posture_calibration_due`). That ``ts`` is remembered in
   :data:`REMOTE_STATE_FILE` in the state folder, so a retained config does not recalibrate on every
   restart. A memory file that cannot be read counts as empty; one that cannot be written is logged
   (WARNING) and the calibration goes ahead.
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from device.config.agent import AgentConfig, IntonationSettings, apply_remote
from device.dsp import HeadsetCalibration, StreamingAnalyzer
from device.logs import kv
from device.outputs.call_summary import CallAudio
from mqtt_schema import Config

log = logging.getLogger("device.agent")

REMOTE_STATE_FILE = "remote_config.json"
"""The memory in the state folder: ``{"calibrated_ts": ts of the config that last took the pose}``."""

DEFAULT_TARGET_LEVEL_DBOV = -26.0
"""The cue policy's target voice level (dBov) without a headset calibration."""

AnalyzerFactory = Callable[[HeadsetCalibration | None, IntonationSettings], StreamingAnalyzer]
"""Builds an analyser for the open audio source with a calibration and intonation settings."""


def target_level_dbov(cfg: AgentConfig) -> float:
    """The voice level (dBov) the cues aim at: the calibration's reference level, else -26 dBov."""
    cal = cfg.calibration
    return float(cal.reference_level_dbov) if cal is not None else DEFAULT_TARGET_LEVEL_DBOV


def misaddressed(remote: Config, cfg: AgentConfig) -> str | None:
    """Why ``remote`` is not for this desk (the CONFIG_REJECTED message), or None when it is."""
    if remote.site != cfg.desk.site or remote.desk != cfg.desk.desk:
        return f"config for {remote.site}/{remote.desk} is not for this desk"
    return None


@dataclass(frozen=True)
class Swap:
    """Everything a remote config changes, built before anything is swapped."""

    config: AgentConfig
    target_level_dbov: float
    analyzer: StreamingAnalyzer | None
    """An analyser for a new calibration or new intonation settings; None: keep the running one."""
    call_audio: CallAudio | None
    """Per-call audio for new intonation settings; None: keep the running one."""


def prepare(current: AgentConfig, tables: Mapping[str, Any], new_analyzer: AnalyzerFactory | None) -> Swap:
    """Validate ``tables`` (a remote ``Config.config``) over ``current`` and build what they change.

    ``new_analyzer`` is None while no audio source is open (the next one is opened with the new
    config). Raises :class:`~device.errors.ConfigError` (or another
    :class:`~device.errors.AgentError` or ``ValueError`` from building) and changes nothing.
    """
    new = apply_remote(current, tables)
    analyzer = None
    if (new.calibration != current.calibration or new.intonation != current.intonation) and new_analyzer is not None:
        analyzer = new_analyzer(new.calibration, new.intonation)
    call_audio = CallAudio(new.intonation.params) if new.intonation != current.intonation else None
    return Swap(new, target_level_dbov(new), analyzer, call_audio)


class RemoteConfigs:
    """Which remote configs to apply, and the memory of the posture calibrations they asked for."""

    def __init__(self, state_dir: Path) -> None:
        self.path = state_dir / REMOTE_STATE_FILE
        self._seen = False

    def wants_swap(self, remote: Config, current: AgentConfig) -> bool:
        """True for the first remote config since start and for one whose tables differ from the
        applied ones (a retained config seen again after a reconnect is not applied twice)."""
        if remote.config != current.remote or not self._seen:
            self._seen = True
            return True
        return False

    def posture_calibration_due(self, remote: Config) -> bool:
        """True when ``remote`` asks for a posture calibration that no config with its ``ts`` has
        taken yet; remembers that it is taken."""
        if not remote.calibrate_posture:
            return False
        if self._memory().get("calibrated_ts") == remote.ts:
            return False
        self._remember(calibrated_ts=remote.ts)
        return True

    def _memory(self) -> dict[str, Any]:
        try:
            doc = json.loads(self.path.read_text(encoding="utf-8"))
            return doc if isinstance(doc, dict) else {}
        except (OSError, ValueError):
            return {}

    def _remember(self, **fields: Any) -> None:
        doc = self._memory()
        doc.update(fields)
        tmp = self.path.with_name(self.path.name + ".tmp")
        try:
            tmp.write_text(json.dumps(doc), encoding="utf-8")
            os.replace(tmp, self.path)
        except OSError as exc:
            log.warning("cannot remember the remote config", extra=kv(error=str(exc)))
