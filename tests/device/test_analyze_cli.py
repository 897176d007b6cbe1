"""``headset-agent analyze``: JSON lines, table, bad files among good ones, raw s16le, mono."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from device.cli import main
from tests.conftest import DATA_DIR

REAL = DATA_DIR / "real-speech"
MANIFEST = json.loads((REAL / "manifest.json").read_text())["clips"]
FIELDS = ("file", "duration_s", "speech_s", "syllables", "rate_spm", "level_dbov", "activity", "noise_dbov",
          "clipping", "distance_cm")


def test_json_lines_with_a_bad_file_among_good_ones(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    bad = tmp_path / "broken.wav"
    bad.write_bytes(b"RIFF\x00\x00\x00\x00WAVEjunk")
    good = [REAL / "timit-LDC93S1.wav", REAL / "aishell-BAC009S0724W0121.wav"]
    rc = main(["analyze", "--json", str(good[0]), str(bad), str(tmp_path / "missing.flac"), str(good[1])])
    out, err = capsys.readouterr()
    assert rc == 1
    rows = [json.loads(line) for line in out.splitlines()]
    assert [r["file"] for r in rows] == [str(g) for g in good]
    for r in rows:
        assert set(FIELDS) <= set(r)
        assert r["distance_cm"] is None  # mono
        assert r["level_dbov"] == pytest.approx(MANIFEST[Path(r["file"]).name]["level_dbov"], abs=0.5)
        assert 0 < r["speech_s"] <= r["duration_s"]
        assert r["rate_spm"] == pytest.approx(r["syllables"] / r["speech_s"] * 60, rel=0.01)
    assert "broken.wav: not a readable audio file" in err
    assert "missing.flac: no such file" in err


def test_raw_s16le_needs_a_rate_and_then_matches_the_stl(capsys: pytest.CaptureFixture[str]) -> None:
    raw = REAL / "itu-stl-voice.s16le"
    assert main(["analyze", "--json", str(raw)]) == 1
    assert "--raw-rate" in capsys.readouterr().err
    assert main(["analyze", "--json", "--raw-rate", "16000", str(raw)]) == 0
    r = json.loads(capsys.readouterr().out)
    assert r["level_dbov"] == pytest.approx(-25.329, abs=0.5)
    assert r["activity"] == pytest.approx(0.96625, abs=0.01)
    assert r["duration_s"] == pytest.approx(raw.stat().st_size / 2 / 16000)


def test_two_channels_with_calibration_give_a_distance_and_timeline(tmp_path: Path,
                                                                     capsys: pytest.CaptureFixture[str]) -> None:
    x, rate = sf.read(REAL / "new-home-in-the-stars.wav")
    rng = np.random.default_rng(0)
    st = np.stack([x, x * 10 ** (-8 / 20)], axis=1) + rng.standard_normal((x.size, 2)) * 1e-4
    wav = tmp_path / "two.flac"
    sf.write(wav, st, rate, subtype="PCM_16")
    cal = tmp_path / "cal.toml"
    cal.write_text("distance_cm = 5.0\nild_offset_db = 8.0\n")
    assert main(["analyze", "--json", "--timeline", "--calibration", str(cal), str(wav)]) == 0
    r = json.loads(capsys.readouterr().out)
    assert r["distance_cm"] == pytest.approx(5.0, abs=0.5)
    assert r["ild_db"] == pytest.approx(8.0, abs=0.5)
    assert [t["t_s"] for t in r["timeline"]] == list(range(len(r["timeline"])))
    assert len(r["timeline"]) == int(np.ceil(x.size / rate))
    assert sum(t["speech_s"] for t in r["timeline"]) == pytest.approx(r["speech_s"], abs=0.02)


def test_table_without_json_and_bad_calibration(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["analyze", str(REAL / "timit-LDC93S1.wav")]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0].split()[:3] == ["file", "duration_s", "speech_s"]
    assert "timit-LDC93S1.wav" in out[1]
    cal = tmp_path / "cal.toml"
    cal.write_text("ild_offset_db = 'loud'\n")
    assert main(["analyze", "--calibration", str(cal), str(REAL / "timit-LDC93S1.wav")]) == 1
    assert "'ild_offset_db' must be a number" in capsys.readouterr().err


def test_three_channels_and_empty_files_are_refused(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    three = tmp_path / "three.wav"
    sf.write(three, np.zeros((1600, 3)), 16000)
    empty = tmp_path / "empty.wav"
    sf.write(empty, np.zeros((0, 1)), 16000)
    assert main(["analyze", "--json", str(three), str(empty)]) == 1
    err = capsys.readouterr().err
    assert "has 3 channels" in err and "is empty" in err


def test_help_shows_an_example() -> None:
    exe = shutil.which("headset-agent", path=str(Path(sys.executable).parent))
    cmd = [exe] if exe else [sys.executable, "-m", "device.cli"]
    res = subprocess.run([*cmd, "analyze", "--help"], capture_output=True, text=True, timeout=60)
    assert res.returncode == 0
    assert "example:" in res.stdout and "headset-agent analyze --json" in res.stdout
