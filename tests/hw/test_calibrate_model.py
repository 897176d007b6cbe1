"""``headset-flash calibrate-model``: the desk DSP's calibration stored per headset model."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from device.calibration_file import load
from hw.cli import main
from tests.device.dsp.test_streaming import headset_signal


@pytest.fixture()
def rig(tmp_path: Path) -> Path:
    """Real speech on the boom, 10 dB weaker on the ear cup: a 5 cm rig recording."""
    path = tmp_path / "rig-5cm.wav"
    sf.write(path, headset_signal(12.0), 16000, subtype="PCM_16")
    return path


def test_stores_the_model_and_lists_it(rig: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    models = tmp_path / "models"
    assert main(["calibrate-model", "--model", "hs-200", "--recording", str(rig), "--distance-cm", "5",
                 "--models-dir", str(models), "--boom-mic-id", "B1"]) == 0
    cal = load(models / "hs-200.toml")
    assert cal.model == "hs-200" and cal.boom_mic_id == "B1" and cal.distance_cm == 5.0
    assert 8.0 < cal.ild_offset_db < 12.0, cal.ild_offset_db  # the rig's ear cup is 10 dB down
    capsys.readouterr()
    assert main(["calibrate-model", "--list", "--models-dir", str(models)]) == 0
    listing = capsys.readouterr().out
    assert "hs-200" in listing and "5.0 cm" in listing


def test_refuses_to_replace_without_force(rig: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    models = tmp_path / "models"
    args = ["calibrate-model", "--model", "hs-200", "--recording", str(rig), "--models-dir", str(models)]
    assert main(args) == 0
    before = (models / "hs-200.toml").read_bytes()
    assert main(args) == 1
    assert "already calibrated" in capsys.readouterr().err
    assert (models / "hs-200.toml").read_bytes() == before
    assert main([*args, "--force"]) == 0


def test_bad_input_is_named(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    mono = tmp_path / "mono.wav"
    sf.write(mono, np.zeros(16000 * 4, dtype=np.float32), 16000)
    models = tmp_path / "models"
    assert main(["calibrate-model", "--model", "hs", "--recording", str(mono), "--models-dir", str(models)]) == 1
    assert "2" in capsys.readouterr().err
    assert main(["calibrate-model", "--model", "Bad Name", "--recording", str(mono)]) == 2
    assert "--model" in capsys.readouterr().err
    assert main(["calibrate-model", "--model", "hs", "--recording", str(tmp_path / "none.wav"),
                 "--models-dir", str(models)]) == 1
    assert "none.wav" in capsys.readouterr().err
    silent = tmp_path / "silent.wav"
    sf.write(silent, np.zeros((16000 * 4, 2), dtype=np.float32), 16000)
    assert main(["calibrate-model", "--model", "hs", "--recording", str(silent), "--models-dir", str(models)]) == 1
    assert "silent.wav" in capsys.readouterr().err
    assert not models.exists() or not list(models.glob("*.toml"))


def test_help_has_an_example() -> None:
    res = subprocess.run([sys.executable, "-m", "hw.cli", "calibrate-model", "--help"], capture_output=True,
                         text=True, check=True)
    assert "headset-flash calibrate-model --model" in res.stdout
