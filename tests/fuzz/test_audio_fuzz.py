"""Truncated, garbled and random audio files for ``analyze``: a clean error per bad file, never a crash.

Real files written by libsndfile (WAV PCM/float, FLAC, OGG Vorbis, OGG Opus, AIFF, MP3), then cut in
the header or the body, with bytes overwritten, or replaced by random bytes under an audio suffix.
``device.offline_analysis.analyze_file`` either analyses a file or raises an AgentError naming it; the
``headset-agent analyze`` CLI prints one ``headset-agent analyze: <file>: <reason>`` line per bad
file, goes on with the next file, and exits 1.
"""

from __future__ import annotations

import json
import random
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
from hypothesis import HealthCheck, given, seed, settings
from hypothesis import strategies as st

from device.errors import AgentError
from device.offline_analysis import analyze_file

RATE = 16_000
KINDS = {  # name -> (suffix, soundfile format, subtype, channels)
    "wav16": (".wav", "WAV", "PCM_16", 2),
    "wavfloat": (".wav", "WAV", "FLOAT", 1),
    "flac": (".flac", "FLAC", "PCM_16", 2),
    "vorbis": (".ogg", "OGG", "VORBIS", 1),
    "opus": (".opus", "OGG", "OPUS", 1),
    "aiff": (".aiff", "AIFF", "PCM_16", 1),
    "mp3": (".mp3", "MP3", "MPEG_LAYER_III", 1),
}


def _tone(channels: int, seconds: float = 1.5) -> np.ndarray:
    rng = np.random.default_rng(7)
    t = np.arange(int(RATE * seconds)) / RATE
    env = (np.sin(2 * np.pi * 4 * t) > 0).astype(float)
    x = 0.3 * env * np.sin(2 * np.pi * 180 * t) + 0.01 * rng.standard_normal(t.size)
    return np.stack([x, 0.3 * x][:channels], axis=1)


@pytest.fixture(scope="module")
def originals(tmp_path_factory: pytest.TempPathFactory) -> dict[str, bytes]:
    d = tmp_path_factory.mktemp("orig")
    out: dict[str, bytes] = {}
    for name, (suffix, fmt, subtype, ch) in KINDS.items():
        p = d / f"{name}{suffix}"
        try:
            sf.write(p, _tone(ch), 48_000 if subtype == "OPUS" else RATE, format=fmt, subtype=subtype)
        except (sf.LibsndfileError, ValueError, TypeError):  # a libsndfile built without this encoder
            continue
        out[name] = p.read_bytes()
    assert {"wav16", "wavfloat", "flac", "vorbis"} <= set(out)
    return out


def _clean(path: Path) -> None:
    try:
        result = analyze_file(path)
    except AgentError as exc:
        assert str(path) in str(exc), f"the error does not name the file: {exc}"
        return
    assert result["duration_s"] >= 0 and isinstance(result["warnings"], list)


@seed(2026)
@settings(max_examples=250, deadline=None, database=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data())
def test_truncated_or_garbled_files_are_analysed_or_a_clean_error(originals: dict[str, bytes],
                                                                  tmp_path_factory: pytest.TempPathFactory,
                                                                  data: st.DataObject) -> None:
    name = data.draw(st.sampled_from(sorted(originals)), label="kind")
    raw = originals[name]
    how = data.draw(st.sampled_from(["cut-header", "cut-body", "overwrite", "overwrite-header", "insert", "zero-run"]))
    if how == "cut-header":
        raw = raw[: data.draw(st.integers(1, min(200, len(raw) - 1)))]
    elif how == "cut-body":
        raw = raw[: data.draw(st.integers(1, len(raw) - 1))]
    elif how in ("overwrite", "overwrite-header"):
        hi = min(80, len(raw) - 1) if how == "overwrite-header" else len(raw) - 1
        at = data.draw(st.integers(0, hi))
        patch = data.draw(st.binary(min_size=1, max_size=16))
        raw = raw[:at] + patch + raw[at + len(patch):]
    elif how == "insert":
        at = data.draw(st.integers(0, len(raw)))
        raw = raw[:at] + data.draw(st.binary(min_size=1, max_size=64)) + raw[at:]
    else:
        at = data.draw(st.integers(0, len(raw) - 1))
        raw = raw[:at] + b"\x00" * data.draw(st.integers(1, 4096)) + raw[at + 4096:]
    d = tmp_path_factory.mktemp("garbled", numbered=True)
    path = d / f"x{KINDS[name][0]}"
    path.write_bytes(raw)
    _clean(path)


@seed(2027)
@settings(max_examples=150, deadline=None, database=None)
@given(raw=st.binary(min_size=1, max_size=3000) | st.sampled_from([b"RIFF", b"RIFF\xff\xff\xff\xffWAVEfmt ",
                                                                    b"fLaC", b"OggS", b"FORM", b"ID3", b"\xff\xfb"]),
       suffix=st.sampled_from([".wav", ".flac", ".ogg", ".opus", ".mp3", ".aiff", ".au", ".caf", ".raw", ".bin"]))
def test_random_bytes_with_an_audio_suffix_are_a_clean_error(tmp_path_factory: pytest.TempPathFactory, raw: bytes,
                                                             suffix: str) -> None:
    path = tmp_path_factory.mktemp("random", numbered=True) / f"noise{suffix}"
    path.write_bytes(raw)
    _clean(path)


def test_the_cli_reports_every_bad_file_and_analyses_the_rest(originals: dict[str, bytes], tmp_path: Path) -> None:
    rng = random.Random(13)
    files: list[Path] = []
    good: list[Path] = []
    for i in range(24):
        name = sorted(originals)[i % len(originals)]
        raw = originals[name]
        kind = i % 4
        if kind == 0:
            raw = raw[: rng.randrange(1, 60)]  # cut in the header
        elif kind == 1:
            raw = rng.randbytes(rng.randrange(1, 2000))
        elif kind == 2:
            raw = raw[:12] + rng.randbytes(64) + raw[76:]
        p = tmp_path / f"f{i:02d}-{name}{KINDS[name][0]}"
        p.write_bytes(raw)
        files.append(p)
        if kind == 3:
            good.append(p)
    (tmp_path / "empty.wav").write_bytes(b"")
    files.insert(5, tmp_path / "empty.wav")
    files.insert(9, tmp_path / "missing.flac")
    files.insert(12, tmp_path)  # a directory
    out = subprocess.run([sys.executable, "-m", "device.cli", "analyze", "--json", *map(str, files)],
                         capture_output=True, text=True, timeout=240)
    assert out.returncode == 1, out.stderr
    assert "Traceback" not in out.stderr and "unexpected error" not in out.stderr, out.stderr
    lines = out.stderr.splitlines()
    per_file = [line for line in lines if line.startswith("headset-agent analyze: ") and ": warning: " not in line]
    assert lines[-1] == f"headset-agent: {len(per_file)} of {len(files)} file(s) could not be analysed"
    named = [f for f in files if any(str(f) + ":" in line for line in per_file)]
    assert len(named) == len(per_file), "one line per bad file"
    analysed = [json.loads(line)["file"] for line in out.stdout.splitlines()]
    assert set(analysed) | {str(f) for f in named} == {str(f) for f in files}, "every file has one outcome"
    assert {str(g) for g in good} <= set(analysed)
    assert {str(tmp_path / "empty.wav"), str(tmp_path / "missing.flac"), str(tmp_path)} <= {str(f) for f in named}
