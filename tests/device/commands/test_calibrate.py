"""``headset-agent calibrate``: writes the TOML atomically, refuses mono, short speech and overwrites."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from device.cli import main
from device.config.calibration_file import dumps, load, save
from device.dsp import HeadsetCalibration
from device.errors import CalibrationError
from tests.device.dsp.test_streaming import headset_signal


@pytest.fixture()
def rec(tmp_path: Path) -> Path:
    path = tmp_path / "rig-5cm.flac"
    sf.write(path, headset_signal(15.0), 16000, subtype="PCM_16")
    return path


def test_calibrate_writes_a_toml_that_loads_back(rec: Path, tmp_path: Path,
                                                 capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "hs.toml"
    assert main(["calibrate", str(rec), "--distance-cm", "5", "--out", str(out), "--model", "demo-headset",
                 "--boom-mic-id", "B1", "--ear-mic-id", "E1"]) == 0
    cal = load(out)
    assert cal.model == "demo-headset" and cal.boom_mic_id == "B1" and cal.ear_mic_id == "E1"
    assert cal.ild_offset_db == pytest.approx(10.0, abs=0.5)  # the ear cup is 10 dB down
    assert cal.distance_cm == 5.0
    assert -40 < cal.reference_level_dbov < -15
    assert list(tmp_path.glob(".hs.toml.*")) == []  # no temporary file left
    # never overwrites without --force
    assert main(["calibrate", str(rec), "--out", str(out)]) == 1
    assert "already exists" in capsys.readouterr().err
    assert main(["calibrate", str(rec), "--out", str(out), "--force", "--model", "other"]) == 0
    assert load(out).model == "other"


def test_calibrate_refuses_mono_and_short_recordings(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    x = headset_signal(15.0)
    mono = tmp_path / "mono.wav"
    sf.write(mono, x[:, 0], 16000)
    assert main(["calibrate", str(mono), "--out", str(tmp_path / "a.toml")]) == 1
    assert "mono" in capsys.readouterr().err
    short = tmp_path / "short.wav"
    sf.write(short, np.concatenate([x[:16000 * 2], np.zeros((16000 * 4, 2))]), 16000)
    assert main(["calibrate", str(short), "--out", str(tmp_path / "b.toml")]) == 1
    assert "at least 3 s" in capsys.readouterr().err
    assert not (tmp_path / "a.toml").exists() and not (tmp_path / "b.toml").exists()
    assert main(["calibrate", str(short), "--distance-cm", "0", "--out", str(tmp_path / "c.toml")]) == 2


def test_toml_round_trip_and_field_errors(tmp_path: Path) -> None:
    cal = HeadsetCalibration(distance_cm=4.0, ild_offset_db=11.25, reference_level_dbov=-27.5,
                             boom_mic_id='b "1"', ear_mic_id="e\\2", model="模型", band_offsets_db=(12.5,))
    path = tmp_path / "x.toml"
    save(cal, path)
    assert load(path) == cal
    with pytest.raises(CalibrationError, match="already exists"):
        save(cal, path)
    bad = tmp_path / "bad.toml"
    for text, field in (("ild_offset_db = 3\ndistance_cm = -1\n", "distance_cm"),
                        ("distance_cm = 5.0\n", "ild_offset_db"),
                        ("ild_offset_db = 3\ncolour = 'red'\n", "colour"),
                        ("ild_offset_db = 3\nmodel = 7\n", "model"),
                        ("ild_offset_db = 3\nband_offsets_db = ['a']\n", "band_offsets_db"),
                        ("ild_offset_db = 3\nband_offsets_db = [1e308]\n", "band_offsets_db"),  # distance inf
                        ("ild_offset_db = [\n", "not valid TOML"),
                        ("ild_offset_db = " + "[" * 100_000 + "]" * 100_000 + "\n", "nested too deeply")):
        bad.write_text(text)
        with pytest.raises(CalibrationError, match=field):
            load(bad)
    assert "ild_offset_db = 11.25" in dumps(cal)


def test_help_shows_an_example() -> None:
    res = subprocess.run([sys.executable, "-m", "device.cli", "calibrate", "--help"], capture_output=True,
                         text=True, timeout=60)
    assert res.returncode == 0 and "example:" in res.stdout and "--distance-cm 5" in res.stdout


def test_calibrate_out_that_cannot_be_written_is_an_error_line(rec: Path, tmp_path: Path,
                                                              capsys: pytest.CaptureFixture[str]) -> None:
    """--out a folder (even with --force), under a file, or a model name that is not text: one line
    naming the file, exit 1, no traceback, and nothing left behind."""
    folder = tmp_path / "cal.toml"
    folder.mkdir()
    a_file = tmp_path / "a-file"
    a_file.write_text("kept\n")
    bad_model = b"hs\xff".decode("utf-8", "surrogateescape")  # what Python makes of a non-UTF-8 argv byte
    for out, extra, words in ((folder, ["--force"], "is a directory"),
                              (a_file / "cal.toml", [], "cannot write"),
                              (tmp_path / "x.toml", ["--model", bad_model], "the model name or a mic id is not valid text")):
        assert main(["calibrate", str(rec), "--out", str(out), *extra]) == 1
        err = capsys.readouterr().err
        assert err.startswith(f"headset-agent: {out}: {words}") and "Traceback" not in err, err
    assert folder.is_dir() and not any(folder.iterdir()) and a_file.read_text() == "kept\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a-file", "cal.toml", "rig-5cm.flac"]


def test_calibrate_refuses_a_truncated_recording_and_writes_nothing(tmp_path: Path,
                                                                     capsys: pytest.CaptureFixture[str]) -> None:
    """A WAV cut off after 10 of its 15 s reads as a good 10 s recording: refused, naming the file."""
    whole = tmp_path / "whole.wav"
    sf.write(whole, headset_signal(15.0), 16000, subtype="PCM_16")
    cut = tmp_path / "cut.wav"
    cut.write_bytes(whole.read_bytes()[: 44 + 4 * 16000 * 10])
    out = tmp_path / "cal.toml"
    assert main(["calibrate", str(cut), "--out", str(out)]) == 1
    err = capsys.readouterr().err
    assert err.startswith(f"headset-agent: {cut}: is truncated: its header declares ") and err.count("\n") == 1
    assert "(33 % missing)" in err
    assert not out.exists() and sorted(p.name for p in tmp_path.iterdir()) == ["cut.wav", "whole.wav"]
    assert main(["calibrate", str(whole), "--out", str(out)]) == 0  # the whole recording calibrates


@pytest.mark.parametrize(("argv", "message"), [
    (["calibrate", "", "--out", "cal.toml"], "FILE: empty path"),  # was ".: is a directory" (exit 1)
    (["calibrate", "rig.s16le", "--out", ""], "--out: empty path"),  # was ".: already exists" (exit 1)
    (["calibrate", "rig.s16le", "--out", "cal.toml", "--raw-rate", "-5"],
     "--raw-rate must be from 4000 to 384000 Hz, got -5"),  # was exit 1 naming the file, not the flag
])
def test_a_bad_flag_value_is_a_usage_error_naming_the_flag(
        argv: list[str], message: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "rig.s16le").write_bytes(np.zeros(16000 * 2 * 4, dtype="<i2").tobytes())
    assert main(argv) == 2
    out, err = capsys.readouterr()
    assert out == "" and err == f"headset-agent: {message}\n"
    assert [p.name for p in tmp_path.iterdir()] == ["rig.s16le"]
