"""device.config.remote: which remote configs the desk applies, what it builds first, and the memory
of the posture calibrations they asked for (the service's use of it is tested in tests/device/test_service.py)."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import pytest

from device.config.agent import AgentConfig, IntonationSettings, load_config
from device.config.remote import REMOTE_STATE_FILE, RemoteConfigs, misaddressed, prepare
from device.dsp import StreamingAnalyzer
from device.errors import ConfigError
from mqtt_schema import Config


def config(tmp_path: Path) -> AgentConfig:
    return load_config(None, {"desk.site": "site1", "desk.desk": "desk-01", "agent.state_dir": str(tmp_path)})


def remote(ts: int = 5, tables: dict[str, Any] | None = None, *, desk: str = "desk-01",
           calibrate_posture: bool = False) -> Config:
    return Config(site="site1", desk=desk, ts=ts, config=tables or {}, calibrate_posture=calibrate_posture)


def test_a_config_for_another_desk_is_named_as_such(tmp_path: Path) -> None:
    cfg = config(tmp_path)
    assert misaddressed(remote(), cfg) is None
    assert misaddressed(remote(desk="desk-02"), cfg) == "config for site1/desk-02 is not for this desk"


def test_the_first_config_and_each_changed_one_are_applied_not_a_repeat(tmp_path: Path) -> None:
    cfg = config(tmp_path)
    configs = RemoteConfigs(tmp_path)
    assert configs.wants_swap(remote(), cfg)  # the first since start, even with nothing new
    assert not configs.wants_swap(remote(), cfg)  # the retained one again after a reconnect
    assert configs.wants_swap(remote(tables={"cues": {"min_on_s": 4.0}}), cfg)


def test_prepare_builds_the_new_config_and_keeps_the_parts_it_does_not_change(tmp_path: Path) -> None:
    cfg = config(tmp_path)
    built: list[tuple[Any, IntonationSettings]] = []

    def new_analyzer(calibration: Any, intonation: IntonationSettings) -> StreamingAnalyzer:
        built.append((calibration, intonation))
        return StreamingAnalyzer(sample_rate_hz=16_000, channels=2)

    swap = prepare(cfg, {"cues": {"min_on_s": 4.0}}, new_analyzer)
    assert swap.config.cues.min_on_s == 4.0 and cfg.cues.min_on_s != 4.0
    assert swap.target_level_dbov == -26.0  # no calibration
    assert swap.analyzer is None and swap.call_audio is None and built == []
    swap = prepare(cfg, {"intonation": {"enabled": False}}, new_analyzer)
    assert swap.analyzer is not None and swap.call_audio is not None
    assert built == [(None, swap.config.intonation)] and not swap.config.intonation.enabled
    swap = prepare(cfg, {"intonation": {"enabled": False}}, None)  # no audio source open: no analyser
    assert swap.analyzer is None and swap.call_audio is not None


def test_prepare_refuses_a_bad_config_with_the_field(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"config\.desk"):
        prepare(config(tmp_path), {"desk": {"desk": "desk-09"}}, None)


def test_a_posture_calibration_is_taken_once_per_config_ts_across_restarts(tmp_path: Path) -> None:
    assert not RemoteConfigs(tmp_path).posture_calibration_due(remote(ts=5))  # not asked for
    assert RemoteConfigs(tmp_path).posture_calibration_due(remote(ts=5, calibrate_posture=True))
    assert (tmp_path / REMOTE_STATE_FILE).exists()
    after_restart = RemoteConfigs(tmp_path)
    assert not after_restart.posture_calibration_due(remote(ts=5, calibrate_posture=True))
    assert after_restart.posture_calibration_due(remote(ts=6, calibrate_posture=True))


def test_a_memory_that_cannot_be_written_is_logged_and_the_calibration_goes_ahead(
        tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    configs = RemoteConfigs(tmp_path / "missing-folder")
    with caplog.at_level(logging.WARNING, logger="device.agent"):
        assert configs.posture_calibration_due(remote(ts=7, calibrate_posture=True))
    assert "cannot remember the remote config" in caplog.text
