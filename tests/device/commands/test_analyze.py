"""``headset-agent analyze``: JSON lines, table, bad files among good ones, raw s16le, mono; every
container; channel layouts (headset, call, mono) and the warnings for files that are not what the
layout says."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import soundfile as sf

from device import silero_model
from device.cli import main
from device.dsp import HOP_S, StreamingAnalyzer
from device.offline_analysis import analyze_file
from tests.conftest import DATA_DIR
from tests.device.helpers import room_pair
from tests.device.inputs.test_audio_file import _bad_inputs

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


def test_under_2_s_of_speech_the_rate_is_null_not_a_guess(tmp_path: Path,
                                                          capsys: pytest.CaptureFixture[str]) -> None:
    """The first 1.9 s of timit: 1.66 s of speech and 8 nuclei, whose rate (289/min) would be a guess;
    with 2.5 s (2.26 s of speech) a rate is given."""
    x, rate = sf.read(REAL / "timit-LDC93S1.wav")
    files = []
    for seconds in (1.9, 2.5):
        files.append(tmp_path / f"timit-{seconds}.wav")
        sf.write(files[-1], x[: int(seconds * rate)], rate)
    assert main(["analyze", "--json", *map(str, files)]) == 0
    short, longer = (json.loads(line) for line in capsys.readouterr().out.splitlines())
    assert 1.0 < short["speech_s"] < 2.0 and short["syllables"] > 0
    assert short["rate_spm"] is None
    assert longer["speech_s"] >= 2.0
    assert longer["rate_spm"] == pytest.approx(longer["syllables"] / longer["speech_s"] * 60, rel=0.01)


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


def _headset(boom: np.ndarray, ear_db: float = -8.0, seed: int = 0) -> np.ndarray:
    """A headset recording of ``boom``: the ear cup ``ear_db`` re the boom, each mic with its own noise."""
    rng = np.random.default_rng(seed)
    return np.stack([boom, boom * 10 ** (ear_db / 20)], axis=1) + rng.standard_normal((boom.size, 2)) * 1e-4


def _rows(out: str) -> dict[str, dict[str, Any]]:
    return {Path(r["file"]).name: r for r in map(json.loads, out.splitlines())}


def test_bad_files_never_stop_the_batch(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """Every kind of bad input among good ones: one error line each naming the file, no traceback, the
    good files analysed, exit code 1."""
    bad = _bad_inputs(tmp_path)
    good = [REAL / "timit-LDC93S1.wav", REAL / "aishell-BAC009S0724W0121.wav"]
    files = [str(good[0]), *(str(p) for p, _ in bad.values()), str(good[1])]
    assert main(["analyze", "--json", "--raw-rate", "16000", *files]) == 1
    out, err = capsys.readouterr()
    assert list(_rows(out)) == [g.name for g in good]
    lines = err.splitlines()
    for path, reason in bad.values():
        assert sum(line.startswith(f"headset-agent analyze: {path}: {reason}") for line in lines) == 1, (path, err)
    assert f"headset-agent: {len(bad)} of {len(files)} file(s) could not be analysed" in lines
    assert "Traceback" not in err and "unexpected error" not in err


def test_stereo_aiff_and_every_container_are_analysed(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """A stereo AIFF used to be read as raw s16le and crash the batch; MP3/AU were read with their
    headers as samples. Every container now gives the numbers of the same audio as WAV."""
    x, rate = sf.read(REAL / "new-home-in-the-stars.wav", dtype="float64")
    st = _headset(x)
    ref = tmp_path / "ref.wav"
    sf.write(ref, st, rate, subtype="PCM_16")
    files = [ref]
    for fmt, suffix in (("AIFF", ".aiff"), ("AU", ".au"), ("CAF", ".caf"), ("FLAC", ".flac"), ("OGG", ".ogg"),
                        ("MP3", ".mp3")):
        files.append(tmp_path / f"desk{suffix}")
        sf.write(files[-1], st, rate, format=fmt)
    opus = tmp_path / "desk.opus"
    sf.write(opus, st, rate, format="OGG", subtype="OPUS")
    files.append(opus)
    cal = tmp_path / "cal.toml"
    cal.write_text("distance_cm = 5.0\nild_offset_db = 8.0\n")
    assert main(["analyze", "--json", "--calibration", str(cal), *map(str, files)]) == 0
    out, err = capsys.readouterr()
    rows = _rows(out)
    r0 = rows["ref.wav"]
    assert r0["layout"] == "headset" and r0["warnings"] == [] and r0["speech_s"] > 1.5
    for name, r in rows.items():
        assert (r["channels"], r["layout"], r["warnings"]) == (2, "headset", []), name
        assert r["level_dbov"] == pytest.approx(r0["level_dbov"], abs=0.5), name
        assert r["distance_cm"] == pytest.approx(5.0, abs=0.5), name
        lossless = name.endswith((".aiff", ".au", ".caf", ".flac"))
        assert r["speech_s"] == pytest.approx(r0["speech_s"], abs=0.05 if lossless else 0.3), name
        assert abs(r["syllables"] - r0["syllables"]) <= (0 if lossless else 2), name
    assert rows["desk.aiff"]["format"] == "AIFF PCM_16"
    assert err == ""


def test_dual_mono_falls_back_to_mono_with_a_warning(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    x, rate = sf.read(REAL / "timit-LDC93S1.wav", dtype="float64")
    mono, dual = tmp_path / "mono.wav", tmp_path / "dual.flac"
    sf.write(mono, x, rate, subtype="PCM_16")
    sf.write(dual, np.stack([x, x], axis=1), rate, subtype="PCM_16")
    assert main(["analyze", "--json", str(mono), str(dual)]) == 0
    out, err = capsys.readouterr()
    rows = _rows(out)
    text = ("channels 0 and 1 are identical (a mono recording saved as stereo?); analysed as mono — use "
            "--layout mono")
    assert rows["dual.flac"]["warnings"] == [text] and rows["dual.flac"]["layout"] == "mono"
    assert err.splitlines() == [f"headset-agent analyze: {dual}: warning: {text}"]
    for key in ("speech_s", "syllables", "level_dbov", "rate_spm"):  # the mono file's numbers, not 0 s
        assert rows["dual.flac"][key] == rows["mono.wav"][key], key
    assert rows["dual.flac"]["speech_s"] > 1.0
    # asked for: no warning
    assert main(["analyze", "--json", "--layout", "mono", str(dual)]) == 0
    out, err = capsys.readouterr()
    assert json.loads(out)["warnings"] == [] and err == ""


def test_an_ear_cup_louder_than_the_boom_falls_back_to_mono_with_a_warning(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """Swapped channels (or a stereo music/podcast file): warned, analysed as mono, not 0 s of speech."""
    x, rate = sf.read(REAL / "aishell-BAC009S0764W0121.wav", dtype="float64")
    swapped = tmp_path / "swapped.wav"
    sf.write(swapped, _headset(x)[:, ::-1], rate, subtype="PCM_16")
    mixed = tmp_path / "mixed.wav"
    sf.write(mixed, _headset(x).mean(axis=1), rate, subtype="PCM_16")
    for layout in ([], ["--layout", "headset"]):
        assert main(["analyze", "--json", *layout, str(swapped), str(mixed)]) == 0
        out, err = capsys.readouterr()
        rows = _rows(out)
        r = rows["swapped.wav"]
        assert r["layout"] == "mono" and len(r["warnings"]) == 1
        assert r["warnings"][0].startswith("ear-cup channel (1) is 8.0 dB louder than the boom (0) in speech: not a "
                                           "headset recording, or channels swapped? analysed as mono")
        assert f"headset-agent analyze: {swapped}: warning: ear-cup channel (1) is 8.0 dB louder" in err
        assert r["speech_s"] > 1.0
        assert (r["speech_s"], r["syllables"]) == (rows["mixed.wav"]["speech_s"], rows["mixed.wav"]["syllables"])
        assert r["level_dbov"] == pytest.approx(rows["mixed.wav"]["level_dbov"], abs=0.01)


def test_a_stereo_file_of_one_mix_falls_back_to_mono_with_a_warning(tmp_path: Path,
                                                                     capsys: pytest.CaptureFixture[str]) -> None:
    """Both channels the same sound about as loud (a produced stereo podcast, not identical): not a headset,
    whatever was asked; analysed as mono with the coherence in the warning, not a silent 0 s of speech."""
    x, rate = sf.read(REAL / "aishell-BAC009S0724W0121.wav", dtype="float64")
    stereo, mixed = tmp_path / "stereo.wav", tmp_path / "mixed.wav"
    sf.write(stereo, _headset(x, ear_db=-0.5), rate, subtype="PCM_16")
    sf.write(mixed, _headset(x, ear_db=-0.5).mean(axis=1), rate, subtype="PCM_16")
    for layout in ([], ["--layout", "headset"]):
        assert main(["analyze", "--json", *layout, str(stereo), str(mixed)]) == 0
        out, err = capsys.readouterr()
        rows = _rows(out)
        r = rows["stereo.wav"]
        assert r["layout"] == "mono" and len(r["warnings"]) == 1, r
        assert r["warnings"][0].startswith("channels 0 and 1 carry the same sound about as loud (ear cup -0.5 dB re "
                                           "boom in speech, coherence 1.00): a stereo recording")
        assert f"headset-agent analyze: {stereo}: warning: channels 0 and 1 carry the same sound" in err
        assert r["speech_s"] > 1.5 and r["syllables"] >= 10
        assert (r["speech_s"], r["syllables"]) == (rows["mixed.wav"]["speech_s"], rows["mixed.wav"]["syllables"])


def test_a_stereo_file_with_one_silent_side_is_its_other_channel(tmp_path: Path,
                                                                   capsys: pytest.CaptureFixture[str]) -> None:
    """A mono recording in one side of a stereo file: the same numbers as the mono file (level included: a
    mix with the silent side would read 6 dB low), warned."""
    x, rate = sf.read(REAL / "timit-LDC93S1.wav", dtype="float64")
    files = {"mono.wav": x, "left.wav": np.stack([x, 0 * x], axis=1), "right.flac": np.stack([0 * x, x], axis=1)}
    for name, data in files.items():
        sf.write(tmp_path / name, data, rate, subtype="PCM_16")
    assert main(["analyze", "--json", *(str(tmp_path / n) for n in files)]) == 0
    out, err = capsys.readouterr()
    rows = _rows(out)
    for name, silent in (("left.wav", 1), ("right.flac", 0)):
        r = rows[name]
        assert r["layout"] == "mono" and r["warnings"] == [
            f"channel {silent} ({'the boom' if silent == 0 else 'the ear cup'}) is silent (60 dB or more under "
            f"channel {1 - silent} in speech): a mono recording in one side of a stereo file? analysed channel "
            f"{1 - silent} alone as mono"], r
        for key in ("speech_s", "syllables", "rate_spm", "level_dbov", "activity"):
            assert r[key] == rows["mono.wav"][key], (name, key)
    assert rows["mono.wav"]["syllables"] == 12 and rows["mono.wav"]["level_dbov"] == pytest.approx(-41.04, abs=0.02)
    assert f"{tmp_path / 'right.flac'}: warning: channel 0 (the boom) is silent" in err


def test_a_stereo_file_of_opposite_polarity_is_one_channel_not_a_mix(tmp_path: Path,
                                                                     capsys: pytest.CaptureFixture[str]) -> None:
    """One recording in both channels, one of them inverted (a miswired cable): a mix cancels it (equal channels
    mix to silence: 0 s of speech; these, 0.8 x and -x, to -0.1 x, 20 dB low); the louder channel is analysed
    alone, warned, whatever layout is asked for but the call's, which is warned about."""
    x, rate = sf.read(REAL / "timit-LDC93S1.wav", dtype="float64")
    sf.write(tmp_path / "mono.wav", x, rate, subtype="PCM_16")
    sf.write(tmp_path / "inverted.wav", np.stack([x * 0.8, -x], axis=1), rate, subtype="PCM_16")
    assert main(["analyze", "--json", str(tmp_path / "mono.wav")]) == 0
    mono = _rows(capsys.readouterr().out)["mono.wav"]
    for layout in ([], ["--layout", "mono"], ["--layout", "headset"]):
        assert main(["analyze", "--json", *layout, str(tmp_path / "inverted.wav")]) == 0
        out, err = capsys.readouterr()
        r = _rows(out)["inverted.wav"]
        assert r["layout"] == "mono" and r["warnings"] == [
            "channels 0 and 1 carry the same sound with opposite polarity (coherence -1.00: one channel's wiring "
            "inverted?), which a mix would cancel; analysed channel 1 alone as mono"], (layout, r)
        for key in ("speech_s", "syllables", "rate_spm", "level_dbov", "activity"):
            assert r[key] == mono[key], (layout, key)
        assert "opposite polarity" in err
    assert main(["analyze", "--json", "--layout", "call", str(tmp_path / "inverted.wav")]) == 0
    r = _rows(capsys.readouterr().out)["inverted.wav"]
    assert r["layout"] == "call" and any("opposite polarity" in w and "cannot be told apart" in w
                                         for w in r["warnings"]), r


def test_a_room_recording_is_analysed_as_mono_unless_a_headset_is_asked_for(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """Two room microphones (about as loud, not the same sound): no wearer talks into a boom. Picked by the
    channel count, the file is analysed as mono, warned (the headset reading gave 5 of the mono reading's 12
    syllables); with --layout headset asked for, that reading stands, warned."""
    x, rate = sf.read(REAL / "aishell-BAC009S0724W0121.wav", dtype="float64")
    room, mixed = tmp_path / "room.wav", tmp_path / "mixed.wav"
    pair = room_pair(x, rate)
    sf.write(room, pair, rate, subtype="PCM_16")
    sf.write(mixed, pair.mean(axis=1), rate, subtype="PCM_16")
    assert main(["analyze", "--json", str(room), str(mixed)]) == 0
    out, err = capsys.readouterr()
    rows = _rows(out)
    r = rows["room.wav"]
    assert r["layout"] == "mono" and len(r["warnings"]) == 1, r
    match = re.fullmatch(r"the ear cup is about as loud as the boom \(ear cup -1\.6 dB re boom in speech, coherence "
                         r"(-?[0-9.]+)\): no wearer talking into the boom — a room or stereo recording rather than "
                         r"a headset\? analysed as mono \(channels mixed: everyone's speech\) — use --layout headset "
                         r"for the wearer's own speech only", r["warnings"][0])
    assert match is not None, r["warnings"][0]
    assert float(match.group(1)) < 0.5  # not the same sound
    assert f"headset-agent analyze: {room}: warning: the ear cup is about as loud as the boom" in err
    assert r["speech_s"] > 2.5 and r["syllables"] >= 10
    for key in ("speech_s", "syllables", "rate_spm"):
        assert r[key] == rows["mixed.wav"][key], key
    assert main(["analyze", "--json", "--layout", "headset", str(room)]) == 0
    out, err = capsys.readouterr()
    r = json.loads(out)
    assert r["layout"] == "headset" and r["syllables"] < 8, r
    assert len(r["warnings"]) == 1 and r["warnings"][0].startswith("the ear cup is about as loud as the boom")
    assert r["warnings"][0].endswith("the wearer hardly spoke, the boom is far from the mouth, or this is not a "
                                     "headset recording — use --layout mono for everyone's speech")


def test_more_than_two_channels_are_mixed_down_with_a_warning(tmp_path: Path,
                                                               capsys: pytest.CaptureFixture[str]) -> None:
    x, rate = sf.read(REAL / "timit-LDC93S1.wav", dtype="float64")
    gains = np.linspace(1.0, 0.2, 10)
    ten = tmp_path / "ten.wav"
    sf.write(ten, x[:, None] * gains, rate, subtype="FLOAT")
    mono = tmp_path / "mono.wav"
    sf.write(mono, x * gains.mean(), rate, subtype="FLOAT")
    empty = tmp_path / "empty.wav"
    sf.write(empty, np.zeros((0, 1)), 16000)
    assert main(["analyze", "--json", str(ten), str(mono), str(empty)]) == 1
    out, err = capsys.readouterr()
    rows = _rows(out)
    assert rows["ten.wav"]["warnings"] == ["10 channels: mixed down to mono (use --layout to choose)"]
    assert (rows["ten.wav"]["channels"], rows["ten.wav"]["layout"]) == (10, "mono")
    for key in ("speech_s", "syllables"):
        assert rows["ten.wav"][key] == rows["mono.wav"][key]
    assert rows["ten.wav"]["level_dbov"] == pytest.approx(rows["mono.wav"]["level_dbov"], abs=0.01)
    assert f"{empty}: is empty" in err
    for layout, reason in (("headset", "the headset layout needs 2 channels"),
                           ("call", "the call layout needs 2 channels")):
        assert main(["analyze", "--layout", layout, str(ten)]) == 1
        assert f"headset-agent analyze: {ten}: {reason}" in capsys.readouterr().err


def _speech_hops(x: np.ndarray, rate: int, delay_s: float = 0.0) -> np.ndarray:
    """Global 10 ms hop indices of the analyser's speech in ``x`` alone (mono, with the speech model, as
    ``analyze`` runs each side of a call), shifted by ``delay_s``."""
    an = StreamingAnalyzer(rate, channels=1, emit_interval_s=HOP_S, speech_model=silero_model.load())
    hops: set[int] = set()
    for m in an.feed(x[:, None]) + an.flush():
        h, c = round(m.t_s / HOP_S) - 1, round(m.speech_s / HOP_S)
        hops.update(range(h - c + 1, h + 1))
    return np.array(sorted(hops)) + round(delay_s / HOP_S)


def test_call_layout_reports_the_agent_the_customer_and_their_overlap(tmp_path: Path,
                                                                      capsys: pytest.CaptureFixture[str]) -> None:
    """A call recording built from two real clips: the agent's on channel 0 from the start, the
    customer's on channel 1 from 1.5 s. The overlap is what the two clips' own speech (each analysed
    alone) has in common once the customer's is delayed."""
    agent, rate = sf.read(REAL / "new-home-in-the-stars.wav", dtype="float64")
    customer, _ = sf.read(REAL / "timit-LDC93S1.wav", dtype="float64")
    delay = 1.5
    d = round(delay * rate)
    n = max(agent.size, d + customer.size) + rate // 2
    st = np.zeros((n, 2))
    st[: agent.size, 0] = agent
    st[d: d + customer.size, 1] = customer
    st += np.random.default_rng(3).standard_normal(st.shape) * 10 ** (-70 / 20)  # line noise
    call, swapped, apart = tmp_path / "call.wav", tmp_path / "swapped.wav", tmp_path / "apart.wav"
    sf.write(call, st, rate, subtype="PCM_16")
    sf.write(swapped, st[:, ::-1], rate, subtype="PCM_16")
    late = np.zeros((agent.size + customer.size + rate, 2))  # the customer only after the agent is done
    late[: agent.size, 0] = agent
    late[agent.size + rate // 2: agent.size + rate // 2 + customer.size, 1] = customer
    sf.write(apart, late + np.random.default_rng(4).standard_normal(late.shape) * 10 ** (-70 / 20), rate,
             subtype="PCM_16")
    alone = analyze_file(REAL / "new-home-in-the-stars.wav")
    customer_alone = analyze_file(REAL / "timit-LDC93S1.wav")
    expected = np.intersect1d(_speech_hops(agent, rate), _speech_hops(customer, rate, delay)).size * HOP_S
    assert 0.8 < expected < min(agent.size / rate - delay, alone["speech_s"])  # a real overlap

    assert main(["analyze", "--json", "--layout", "call", str(call), str(apart)]) == 0
    assert main(["analyze", "--json", "--layout", "call", "--agent-channel", "1", str(swapped)]) == 0
    out, err = capsys.readouterr()
    assert err == ""
    rows = _rows(out)
    r = rows["call.wav"]
    assert (r["layout"], r["agent_channel"], r["warnings"], r["distance_cm"]) == ("call", 0, [], None)
    # the agent's measures, as the clip analysed alone (speech time within 0.1 s: at a stream's start the
    # mono VAD's voice test holds the first word's hops until the word has voiced ones, and the line
    # noise moves that by a few hops: 2.49 s here against 2.40 s alone; 0.05 s before that test)
    assert r["speech_s"] == pytest.approx(alone["speech_s"], abs=0.1)
    assert abs(r["syllables"] - alone["syllables"]) <= 1
    assert r["level_dbov"] == pytest.approx(alone["level_dbov"], abs=0.05)
    # the customer's talk time and the overlap, from construction
    assert r["customer_speech_s"] == pytest.approx(customer_alone["speech_s"], abs=0.1)
    assert r["overlap_s"] == pytest.approx(expected, abs=0.08)  # achieved: within 0.04 s
    # the agent on channel 1: the same call seen from the same side
    s = rows["swapped.wav"]
    assert s["agent_channel"] == 1
    for key in ("speech_s", "syllables", "level_dbov", "customer_speech_s", "overlap_s"):
        assert s[key] == r[key], key
    # talking one after the other: no overlap, both talk times kept
    a = rows["apart.wav"]
    assert a["overlap_s"] == 0.0
    assert a["speech_s"] == pytest.approx(alone["speech_s"], abs=0.1)
    assert a["customer_speech_s"] == pytest.approx(customer_alone["speech_s"], abs=0.1)
    # the table has the call columns; other layouts' JSON has none of the call fields
    assert main(["analyze", "--layout", "call", str(call)]) == 0
    table = capsys.readouterr().out.splitlines()
    assert table[0].split()[-2:] == ["customer_speech_s", "overlap_s"]
    assert table[1].split()[-2:] == [f"{r['customer_speech_s']:.1f}", f"{r['overlap_s']:.1f}"]
    assert main(["analyze", "--json", str(call)]) == 0
    assert not {"agent_channel", "customer_speech_s", "overlap_s"} & set(json.loads(capsys.readouterr().out))


def test_agent_channel_needs_the_call_layout_and_a_channel_in_range(tmp_path: Path,
                                                                    capsys: pytest.CaptureFixture[str]) -> None:
    x, rate = sf.read(REAL / "timit-LDC93S1.wav", dtype="float64")
    two = tmp_path / "two.wav"
    sf.write(two, _headset(x), rate, subtype="PCM_16")
    assert main(["analyze", "--agent-channel", "1", str(two)]) == 2
    assert capsys.readouterr().err == "headset-agent: --agent-channel needs --layout call\n"
    assert main(["analyze", "--layout", "headset", "--agent-channel", "0", str(two)]) == 2
    assert main(["analyze", "--layout", "call", "--agent-channel", "-1", str(two)]) == 2
    capsys.readouterr()
    # out of range for this file: a per-file error, the batch goes on
    assert main(["analyze", "--json", "--layout", "call", "--agent-channel", "2", str(two), str(two)]) == 1
    out, err = capsys.readouterr()
    assert out == ""
    assert err.count(f"headset-agent analyze: {two}: --agent-channel 2 is out of range: the file has 2 channel(s) "
                     "(0..1)") == 2


def test_three_channels_and_empty_files(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    three = tmp_path / "three.wav"
    sf.write(three, np.zeros((1600, 3)), 16000)
    empty = tmp_path / "empty.wav"
    sf.write(empty, np.zeros((0, 1)), 16000)
    assert main(["analyze", "--json", str(three), str(empty)]) == 1
    out, err = capsys.readouterr()
    r = json.loads(out)
    assert r["warnings"] == ["3 channels: mixed down to mono (use --layout to choose)",
                             "all samples are zero (digital silence)"]
    assert r["level_dbov"] is None and r["speech_s"] == 0.0
    assert f"headset-agent analyze: {empty}: is empty" in err


def test_help_shows_every_option_with_an_example() -> None:
    exe = shutil.which("headset-agent", path=str(Path(sys.executable).parent))
    cmd = [exe] if exe else [sys.executable, "-m", "device.cli"]
    res = subprocess.run([*cmd, "analyze", "--help"], capture_output=True, text=True, timeout=60)
    assert res.returncode == 0
    assert "example:" in res.stdout and "headset-agent analyze --json" in res.stdout
    examples = res.stdout.split("example:", 1)[1]
    for option in ("--json", "--calibration", "--timeline", "--raw-rate", "--layout", "--agent-channel"):
        assert option in res.stdout.split("example:", 1)[0], option  # documented
        assert option in examples, option  # and shown
    assert "{mono,headset,call}" in res.stdout


def test_a_file_under_the_telephone_rate_is_analysed_with_a_warning(tmp_path: Path,
                                                                    capsys: pytest.CaptureFixture[str]) -> None:
    """A 4 kHz file lacks the speech band above 2 kHz: its figures come with a warning naming why."""
    x, rate = sf.read(REAL / "timit-LDC93S1.wav", dtype="float64")
    low = tmp_path / "low.wav"
    sf.write(low, x[::rate // 4000], 4000, subtype="PCM_16")
    tel = tmp_path / "tel.wav"
    sf.write(tel, x[::rate // 8000], 8000, subtype="PCM_16")
    assert main(["analyze", "--json", str(low), str(tel)]) == 0
    low_row, tel_row = (json.loads(line) for line in capsys.readouterr().out.splitlines())
    assert low_row["warnings"] == ["sample rate 4000 Hz is under the telephone band's 8000 Hz: the speech band "
                                   "above 2000 Hz is missing, so speech time and syllables are not meaningful"]
    assert tel_row["warnings"] == []


def test_a_truncated_wav_is_analysed_with_a_warning_naming_both_lengths(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    x = np.random.default_rng(3).normal(0.0, 0.05, 3 * 16000)
    whole = tmp_path / "whole.wav"
    sf.write(whole, x, 16000, subtype="PCM_16")
    cut = tmp_path / "cut.wav"
    cut.write_bytes(whole.read_bytes()[: 44 + 2 * 16000])  # the header says 3 s, the data holds 1 s
    assert main(["analyze", "--json", str(whole), str(cut)]) == 0
    out, err = capsys.readouterr()
    rows = {Path(r["file"]).name: r for r in map(json.loads, out.splitlines())}
    assert rows["whole.wav"]["warnings"] == []
    assert rows["cut.wav"]["duration_s"] == pytest.approx(1.0, abs=0.01)
    warning = rows["cut.wav"]["warnings"][0]
    assert warning.startswith("truncated: its header declares about 3.0 s (96044 bytes) but the file holds 1.0 s "
                              "(32044 bytes, 67 % missing)"), warning
    assert err == f"headset-agent analyze: {cut}: warning: {warning}\n"


@pytest.mark.parametrize(("argv", "message"), [
    (["analyze", ""], "argument FILE: empty path"),  # not the current folder
    (["analyze", "--calibration", "", str(REAL / "timit-LDC93S1.wav")], "argument --calibration: empty path"),
])
def test_an_empty_path_is_a_usage_error(argv: list[str], message: str, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exc:
        main(argv)
    assert exc.value.code == 2
    out, err = capsys.readouterr()
    assert out == "" and err.endswith(f"headset-agent analyze: error: {message}\n")
