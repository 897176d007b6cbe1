"""``device.inputs.audio_file``: every container libsndfile reads, read as float64 with its sample format
respected; raw s16le only when asked for; every bad input an AudioError naming the file."""

from __future__ import annotations

import os
import re
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
from scipy.signal import resample_poly

from device.errors import AudioError
from device.inputs.audio_file import MAX_BLOCK_SAMPLES, blocks, probe, read
from device.offline_analysis import analyze_file
from tests.conftest import DATA_DIR
from tests.device.telephone_channel import telephone_band

REAL = DATA_DIR / "real-speech"
CLIPS = sorted(REAL.glob("*.wav"))

# (container, subtype, suffix, tolerance of the level of each channel in dB): every container the
# issue names, in the subtypes recorders write; lossy codecs are compared by level only
FORMATS = [
    ("WAV", "PCM_U8", ".wav", 0.5), ("WAV", "PCM_16", ".wav", 0.001), ("WAV", "PCM_24", ".wav", 0.001),
    ("WAV", "PCM_32", ".wav", 0.001), ("WAV", "FLOAT", ".wav", 0.001), ("WAV", "DOUBLE", ".wav", 0.001),
    ("WAV", "ULAW", ".wav", 0.1), ("WAV", "ALAW", ".wav", 0.1), ("WAV", "IMA_ADPCM", ".wav", 0.5),
    ("WAV", "MS_ADPCM", ".wav", 0.5), ("WAVEX", "PCM_16", ".wav", 0.001),
    ("RF64", "PCM_16", ".wav", 0.001), ("W64", "FLOAT", ".w64", 0.001),
    ("FLAC", "PCM_16", ".flac", 0.001), ("FLAC", "PCM_24", ".flac", 0.001),
    ("OGG", "VORBIS", ".ogg", 0.5), ("OGG", "OPUS", ".opus", 0.5), ("MP3", "MPEG_LAYER_III", ".mp3", 0.5),
    ("AIFF", "PCM_16", ".aiff", 0.001), ("AIFF", "FLOAT", ".aif", 0.001), ("AU", "PCM_16", ".au", 0.001),
    ("AU", "FLOAT", ".au", 0.001), ("AU", "ULAW", ".au", 0.1), ("CAF", "PCM_16", ".caf", 0.001),
    ("CAF", "FLOAT", ".caf", 0.001), ("CAF", "ALAC_16", ".caf", 0.001),
]


def _speech(ear_gain: float = 10 ** (-10 / 20)) -> tuple[np.ndarray, int]:
    """A real clip as (boom, ear cup): the ear cup 10 dB down, with its own low noise."""
    x, rate = sf.read(REAL / "new-home-in-the-stars.wav", dtype="float64")
    noise = np.random.default_rng(0).standard_normal(x.size) * 1e-4
    return np.stack([x, x * ear_gain + noise], axis=1), rate


def _db(x: np.ndarray) -> float:
    return float(10 * np.log10(np.mean(np.square(x))))


def _writable(fmt: str, subtype: str) -> None:
    """The installed libsndfile must write this format: a failure says which, never a skip."""
    assert fmt in sf.available_formats(), f"libsndfile {sf.__libsndfile_version__} lacks the {fmt} container"
    assert subtype in sf.available_subtypes(fmt), (
        f"libsndfile {sf.__libsndfile_version__} cannot write {fmt}/{subtype} (MP3 needs libsndfile >= 1.1)")


@pytest.mark.parametrize(("fmt", "subtype", "suffix", "tol_db"), FORMATS,
                         ids=[f"{f}-{s}" for f, s, _, _ in FORMATS])
def test_every_container_is_read_as_float_with_its_channels(tmp_path: Path, fmt: str, subtype: str, suffix: str,
                                                            tol_db: float) -> None:
    _writable(fmt, subtype)
    x, rate = _speech()
    path = tmp_path / f"speech{suffix}"
    sf.write(path, x, rate, format=fmt, subtype=subtype)
    y, got_rate = read(path)
    assert got_rate == rate
    assert y.dtype == np.float64 and y.ndim == 2 and y.shape[1] == 2
    assert abs(y.shape[0] - x.shape[0]) <= 0.05 * rate  # codecs may pad a frame
    assert np.abs(y).max() < 1.0
    for ch in (0, 1):  # levels kept, channels in order (the ear cup 10 dB below the boom)
        assert _db(y[:, ch]) == pytest.approx(_db(x[:, ch]), abs=tol_db), ch
    if tol_db <= 0.001:  # lossless: the samples themselves
        assert np.abs(y - x).max() < 2 ** -14


def test_a_float_wav_gives_the_level_of_the_same_audio_as_int16(tmp_path: Path) -> None:
    """Float WAV used to be read as int16: silence. Now it is the int16 file's audio, to 0.01 dB."""
    x, rate = sf.read(REAL / "timit-LDC93S1.wav", dtype="int16")
    pcm, flt, dbl = tmp_path / "pcm16.wav", tmp_path / "float.wav", tmp_path / "double.wav"
    sf.write(pcm, x, rate, subtype="PCM_16")
    sf.write(flt, x / 32768.0, rate, subtype="FLOAT")
    sf.write(dbl, x / 32768.0, rate, subtype="DOUBLE")
    ref = analyze_file(pcm)
    assert ref["level_dbov"] is not None and ref["speech_s"] > 1.0
    for path, kind in ((flt, "WAV FLOAT"), (dbl, "WAV DOUBLE")):
        out = analyze_file(path)
        assert out["format"] == kind
        assert out["level_dbov"] == pytest.approx(ref["level_dbov"], abs=0.01)
        assert (out["speech_s"], out["syllables"]) == (ref["speech_s"], ref["syllables"])


@pytest.mark.parametrize("channel", ["8 kHz", "telephone band"])
@pytest.mark.parametrize("clip", CLIPS, ids=[c.name for c in CLIPS])
def test_telephone_mu_law_and_a_law_at_8_khz_keep_the_syllable_count(tmp_path: Path, clip: Path,
                                                                     channel: str) -> None:
    """G.711 at 8 kHz is read and resampled: within 2 syllables of the wideband clip's own count, also
    through a telephone channel's G.712 band (300-3400 Hz: the voice's fundamental under 250 Hz gone)."""
    x, rate = sf.read(clip, dtype="float64")
    assert rate == 16000
    wide = analyze_file(clip)["syllables"]
    narrow = resample_poly(x, 1, 2) if channel == "8 kHz" else telephone_band(x, rate)
    for subtype in ("ULAW", "ALAW"):
        path = tmp_path / f"{clip.stem}-{subtype}.wav"
        sf.write(path, narrow, 8000, subtype=subtype)
        out = analyze_file(path)
        assert out["sample_rate_hz"] == 8000 and out["format"] == f"WAV {subtype}"
        assert abs(out["syllables"] - wide) <= 2, (subtype, out["syllables"], wide)


def test_raw_s16le_only_for_raw_suffixes_or_a_headerless_file_with_a_rate(tmp_path: Path) -> None:
    x, rate = _speech()
    samples = np.round(x[:, 0] * 32767).astype("<i2")
    for suffix in (".s16le", ".raw", ".pcm"):
        raw = tmp_path / f"mic{suffix}"
        raw.write_bytes(samples.tobytes())
        with pytest.raises(AudioError, match=r"mic\.\w+: raw s16le audio needs its sample rate"):
            probe(raw)
        y, got = read(raw, 16000)
        assert got == 16000 and y.shape == (samples.size, 1)
        assert np.array_equal(y[:, 0], samples / 32768.0)
    # a headerless file with another suffix: raw only with a rate, and the error says so
    blob = tmp_path / "capture.bin"
    blob.write_bytes(samples.tobytes())
    with pytest.raises(AudioError, match="headerless s16le needs --raw-rate"):
        probe(blob)
    assert probe(blob, 16000).raw
    # containers are read by their header even with a rate: never the header as samples
    for fmt, suffix in (("AIFF", ".aiff"), ("AU", ".au"), ("MP3", ".mp3"), ("WAV", ".wav"), ("CAF", ".dat")):
        path = tmp_path / f"stereo{suffix}"
        sf.write(path, x, rate, format=fmt)
        info = probe(path, 8000)
        assert not info.raw and info.rate_hz == rate and info.channels == 2, (fmt, info)


def test_blocks_are_bounded_and_any_channel_count_is_read(tmp_path: Path) -> None:
    x, rate = _speech()
    many = np.tile(x[:, :1], (1, 300)) * np.linspace(1.0, 0.1, 300)
    path = tmp_path / "array.wav"
    sf.write(path, many, rate, subtype="PCM_16")
    info = probe(path)
    assert info.channels == 300
    parts = list(blocks(info))
    assert all(b.shape[1] == 300 and b.size <= MAX_BLOCK_SAMPLES for b in parts)
    assert sum(b.shape[0] for b in parts) == x.shape[0]


def _bad_inputs(d: Path) -> dict[str, tuple[Path, str]]:
    """Bad inputs, each with the reason its error must give."""
    x, rate = sf.read(REAL / "timit-LDC93S1.wav", dtype="float64")
    good = d / "good.wav"
    sf.write(good, x, rate, subtype="PCM_16")
    wav = good.read_bytes()
    cases: dict[str, tuple[Path, str]] = {}

    def put(name: str, data: bytes, reason: str) -> None:
        (d / name).write_bytes(data)
        cases[name] = (d / name, reason)

    put("zero-bytes.wav", b"", "is empty (0 bytes)")
    put("truncated-header.wav", wav[:30], "not a readable audio file")
    put("text.wav", b"this is a text file, not audio\n" * 20, "not a readable audio file (Format not recognised")
    put("noise.mp3", np.random.default_rng(1).bytes(4000), "not a readable audio file (format not recognised")
    flac = d / "good.flac"
    sf.write(flac, x, rate)
    put("truncated-header.flac", flac.read_bytes()[:50], "not a readable audio file")
    put("odd.s16le", b"\x01\x02\x03", "3 bytes is not a whole number of 1-channel 16-bit frames")
    sf.write(d / "no-samples.wav", np.zeros((0, 2)), rate)
    cases["no-samples.wav"] = (d / "no-samples.wav", "is empty (no audio samples)")
    for name, bad, subtype in (("nan.wav", np.nan, "FLOAT"), ("inf.wav", np.inf, "DOUBLE"),
                               ("minus-inf.wav", -np.inf, "FLOAT")):
        y = x.copy()
        y[8000] = bad
        sf.write(d / name, y, rate, subtype=subtype)
        cases[name] = (d / name, "has NaN or infinite samples (first at 0.500 s)")
    sf.write(d / "slow.wav", x[:1000], 2000)
    cases["slow.wav"] = (d / "slow.wav", "sample rate 2000 Hz is outside 4000..384000 Hz")
    (d / "folder.wav").mkdir()
    cases["folder.wav"] = (d / "folder.wav", "is a directory")
    os.mkfifo(d / "fifo.wav")  # would block a plain open(): refused unopened
    cases["fifo.wav"] = (d / "fifo.wav", "is not a regular file")
    cases["under-a-file"] = (good / "x.wav", "cannot be read (Not a directory)")
    (d / "dangling.wav").symlink_to(d / "gone.wav")
    cases["dangling.wav"] = (d / "dangling.wav", "no such file")
    cases["missing.flac"] = (d / "missing.flac", "no such file")
    return cases


def test_every_bad_input_is_an_audio_error_naming_the_file_and_the_reason(tmp_path: Path) -> None:
    for name, (path, reason) in _bad_inputs(tmp_path).items():
        with pytest.raises(AudioError, match=f"^{re.escape(str(path))}: "):
            analyze_file(path)  # without a raw rate (the .s16le file: for want of one)
        with pytest.raises(AudioError) as err:
            analyze_file(path, raw_rate_hz=16000)
        assert str(err.value).startswith(f"{path}: "), name
        assert reason in str(err.value), (name, str(err.value))


def test_a_truncated_data_chunk_is_analysed_as_far_as_it_goes(tmp_path: Path) -> None:
    x, rate = sf.read(REAL / "timit-LDC93S1.wav", dtype="float64")
    good = tmp_path / "good.wav"
    sf.write(good, x, rate, subtype="PCM_16")
    cut = tmp_path / "cut.wav"
    cut.write_bytes(good.read_bytes()[: 44 + 2 * 16000])  # header + 1 s of the promised 2.9 s
    out = analyze_file(cut)
    assert out["duration_s"] == pytest.approx(1.0, abs=0.01)
    assert out["warnings"][0].startswith("truncated: its header declares about 2.9 s"), out["warnings"]
