"""``headset-flash calibrate-model``: the desk DSP's calibration stored per headset model."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from device.config.calibration_file import load
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


def _write_bad(tmp_path: Path, kind: str) -> Path:
    """A real bad rig recording of ``kind``, written with soundfile (or cut from one)."""
    speech = headset_signal(12.0)  # (n, 2): boom, ear cup 10 dB down
    if kind == "stereo.aiff":  # a mono recording saved as stereo: both channels the same
        path = tmp_path / "stereo.aiff"
        sf.write(path, np.repeat(speech[:, :1], 2, axis=1), 16000, format="AIFF")
    elif kind == "swapped.aiff":
        path = tmp_path / "swapped.aiff"
        sf.write(path, speech[:, ::-1], 16000, format="AIFF")
    elif kind == "mono.flac":
        path = tmp_path / "mono.flac"
        sf.write(path, speech[:, 0], 16000, format="FLAC")
    elif kind == "three.wav":
        path = tmp_path / "three.wav"
        sf.write(path, np.concatenate([speech, speech[:, :1]], axis=1), 16000)
    elif kind in ("truncated.wav", "truncated.aiff", "truncated.flac"):
        path = tmp_path / kind
        whole = tmp_path / f"whole{path.suffix}"
        sf.write(whole, speech, 16000)
        data = whole.read_bytes()
        path.write_bytes(data[: len(data) // 3])  # a copy cut off: 4 s of 12 s
    elif kind == "unknown.aiff":
        path = tmp_path / "unknown.aiff"
        path.write_bytes(b"not audio at all\n" * 500)
    elif kind == "unknown.xyz":
        path = tmp_path / "unknown.xyz"
        sf.write(tmp_path / "x.wav", speech, 16000)
        path.write_bytes(b"\x00junk" + (tmp_path / "x.wav").read_bytes())
    elif kind == "silence.aiff":
        path = tmp_path / "silence.aiff"
        sf.write(path, np.zeros((16000 * 6, 2)), 16000, format="AIFF")
    elif kind == "dead-ear.wav":
        path = tmp_path / "dead-ear.wav"
        dead = speech.copy()
        dead[:, 1] = 0.0
        sf.write(path, dead, 16000, subtype="PCM_16")
    elif kind == "noise.flac":  # no own speech: a room, not a rig
        path = tmp_path / "noise.flac"
        sf.write(path, np.random.default_rng(7).normal(0.0, 0.05, (16000 * 6, 2)), 16000)
    elif kind == "missing.wav":
        path = tmp_path / "missing.wav"
    else:
        raise AssertionError(kind)
    return path


BAD_RECORDINGS = {
    "stereo.aiff": "channels 0 and 1 are identical",
    "swapped.aiff": "ear-cup channel (1) is 10.0 dB louder than the boom (0)",
    "mono.flac": "has 1 channel (mono); a rig recording needs 2",
    "three.wav": "has 3 channels",
    "truncated.wav": "is truncated: its header declares",
    "truncated.aiff": "is truncated: its header declares",
    "truncated.flac": "read failed after",
    "unknown.aiff": "not a readable audio file (Format not recognised)",
    "unknown.xyz": "not a readable audio file",
    "silence.aiff": "is silent (every sample is 0)",
    "dead-ear.wav": "the ear-cup mic (channel 1) is silent",
    "noise.flac": "0.0 s of own speech",
    "missing.wav": "no such file",
}


@pytest.mark.parametrize("kind", sorted(BAD_RECORDINGS))
def test_a_bad_recording_is_named_with_its_problem_and_the_library_kept(
        kind: str, rig: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    models = tmp_path / "models"
    assert main(["calibrate-model", "--model", "hs-200", "--recording", str(rig), "--models-dir", str(models)]) == 0
    before = (models / "hs-200.toml").read_bytes()
    capsys.readouterr()
    bad = _write_bad(tmp_path, kind)
    rc = main(["calibrate-model", "--model", "hs-200", "--recording", str(bad), "--models-dir", str(models), "--force"])
    err = capsys.readouterr().err
    assert rc == 1
    (line,) = err.splitlines()  # one line, no traceback
    assert line.startswith(f"headset-flash: {bad}: ") and BAD_RECORDINGS[kind] in line, line
    assert (models / "hs-200.toml").read_bytes() == before  # --force with a bad file replaces nothing
    assert [p.name for p in models.iterdir()] == ["hs-200.toml"]


def test_stereo_aiff_from_the_installed_command_is_one_line(tmp_path: Path) -> None:
    bad = _write_bad(tmp_path, "stereo.aiff")
    res = subprocess.run([sys.executable, "-m", "hw.cli", "calibrate-model", "--model", "hs-200", "--recording",
                          str(bad), "--models-dir", str(tmp_path / "models")], capture_output=True, text=True,
                         timeout=120)
    assert res.returncode == 1 and "Traceback" not in res.stderr
    assert res.stderr.startswith(f"headset-flash: {bad}: channels 0 and 1 are identical"), res.stderr


def test_raw_rig_recording_is_read_as_two_channels(tmp_path: Path) -> None:
    raw = tmp_path / "rig-5cm.s16le"
    pcm = np.clip(np.round(headset_signal(12.0) * 32768.0), -32768, 32767).astype("<i2")
    raw.write_bytes(pcm.tobytes())  # interleaved boom, ear cup
    models = tmp_path / "models"
    assert main(["calibrate-model", "--model", "hs-raw", "--recording", str(raw), "--raw-rate", "16000",
                 "--models-dir", str(models)]) == 0
    assert 8.0 < load(models / "hs-raw.toml").ild_offset_db < 12.0


def test_unusable_model_library_is_an_error_line(rig: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    not_a_dir = tmp_path / "models"
    not_a_dir.write_text("a file where the library should be\n")
    assert main(["calibrate-model", "--model", "hs-200", "--recording", str(rig), "--models-dir", str(not_a_dir)]) == 1
    err = capsys.readouterr().err
    assert err.startswith(f"headset-flash: cannot store the calibration in the model library {not_a_dir}")
    assert not_a_dir.read_text() == "a file where the library should be\n"


@pytest.mark.parametrize(("flags", "message"), [
    (["--list", "--models-dir", ""], "--models-dir: empty path (leave it out for the default library)"),  # listed "."
    (["--model", "hs", "--recording", ""], "--recording: empty path"),  # was ".: is a directory", exit 1
    (["--model", "hs", "--recording", "rig.s16le", "--raw-rate", "-1"],
     "--raw-rate must be from 4000 to 384000 Hz, got -1"),  # was exit 1 naming the file, not the flag
])
def test_a_bad_flag_value_is_a_usage_error_naming_the_flag(
        flags: list[str], message: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("HEADSET_MODELS_DIR", str(tmp_path / "models"))
    (tmp_path / "rig.s16le").write_bytes(np.zeros(16000 * 2 * 4, dtype="<i2").tobytes())
    assert main(["calibrate-model", *flags]) == 2
    out = capsys.readouterr()
    assert out.out == "" and out.err == f"headset-flash: {message}\n"
    assert [p.name for p in tmp_path.iterdir()] == ["rig.s16le"]
