"""The speech model (device/dsp/speech_model.py streaming device/silero_model.py's Silero VAD v6 on
onnxruntime) and the mono VAD's test that uses it: real speech reads as speech, real music does not, and music in a mono file or on the
customer's side of a call recording is no longer speech time."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from device import silero_model
from device.dsp.errors import DspError
from device.dsp.features import BAND_INDEX, BandEnergies
from device.dsp.p56 import p56_level
from device.dsp.speech_model import MAX_GAIN_DB, SpeechProbability, model_gain_db
from device.errors import SpeechModelUnavailable
from device.inputs.channel_layout import Layout
from device.offline_analysis import analyze_file
from tests.device.helpers import pink_noise

DATA = Path(__file__).resolve().parents[2] / "data"
REAL = DATA / "real-speech"
MUSIC = DATA / "music"
SPEECH_WAVS = sorted(n for n in json.loads((REAL / "manifest.json").read_text(encoding="utf-8"))["clips"]
                     if n.endswith(".wav"))
MUSIC_FILES = sorted(json.loads((MUSIC / "manifest.json").read_text(encoding="utf-8"))["clips"])
FS = 16000
HOP = 160


def _read(path: Path) -> np.ndarray:
    x, fs = sf.read(path, dtype="float64", always_2d=True)
    assert fs == FS
    out: np.ndarray = x[:, 0]
    return out


def _speech_share(x: np.ndarray, clean: np.ndarray | None = None) -> float:
    """Share of the hops within 25 dB of the loud ones (95th percentile) of ``clean`` (default ``x``) that
    the model gives 0.5 or more in ``x``."""
    p = SpeechProbability(HOP, silero_model.load()).process(x)
    ref = x if clean is None else clean
    level = 10 * np.log10(np.maximum(BandEnergies(FS, HOP, 1).process(ref[:, None])[:, 0, BAND_INDEX["speech"]],
                                     1e-20))
    loud = level > np.percentile(level, 95) - 25
    return float(np.mean(p[loud] >= 0.5))


def _speech_track() -> np.ndarray:
    """The real clips of tests/data one after another at the same RMS (0.05)."""
    parts = [_read(REAL / n) for n in SPEECH_WAVS]
    return np.concatenate([p / np.sqrt(np.mean(p**2)) * 0.05 for p in parts])


@pytest.mark.parametrize("name", SPEECH_WAVS)
def test_real_speech_reads_as_speech(name: str) -> None:
    # measured: 0.98-1.00 of the loud hops; clean and at 5 dB SNR in pink noise or babble, 0.88-1.00
    assert _speech_share(_read(REAL / name)) >= 0.95


def test_real_speech_in_pink_noise_at_5_db_reads_as_speech() -> None:
    x = _speech_track()
    noise = pink_noise(x.size, np.random.default_rng(3))
    y = x + noise / np.sqrt(np.mean(noise**2)) * 0.05 * 10 ** (-5 / 20)
    assert _speech_share(y, clean=x) >= 0.9


@pytest.mark.parametrize("name", MUSIC_FILES)
def test_real_music_does_not_read_as_speech(name: str) -> None:
    # measured: 0.00-0.02 of the loud hops (10 s windows of 13 pieces)
    assert _speech_share(_read(MUSIC / name)) <= 0.03


def test_probabilities_do_not_depend_on_block_size() -> None:
    x = _read(REAL / "timit-LDC93S1.wav")
    whole = SpeechProbability(HOP, silero_model.load()).process(x)
    rng = np.random.default_rng(5)
    model = SpeechProbability(HOP, silero_model.load())
    parts, i = [], 0
    while i < x.size:
        n = int(rng.integers(1, 40)) * HOP
        parts.append(model.process(x[i: i + n]))
        i += n
    assert whole.size == x.size // HOP
    np.testing.assert_array_equal(np.concatenate(parts), whole)
    # causal: a hop has the probability of the last 32 ms chunk complete by its end, 0 before the first
    assert whole[0] == whole[1] == 0.0 and whole.max() > 0.9


def test_a_model_file_that_is_not_the_shipped_one_is_refused(tmp_path: Path) -> None:
    bad = tmp_path / "silero_vad.onnx"
    bad.write_bytes(silero_model.MODEL_PATH.read_bytes()[:-1] + b"\0")
    with pytest.raises(SpeechModelUnavailable, match="sha256"):
        silero_model.open_session(bad)
    with pytest.raises(SpeechModelUnavailable, match="cannot be read"):
        silero_model.open_session(tmp_path / "missing.onnx")
    assert silero_model.unavailable_reason() is None  # the shipped model runs here


@pytest.mark.parametrize("name", MUSIC_FILES)
def test_a_mono_file_of_music_is_not_speech(name: str) -> None:
    # before the speech model these 12 s excerpts read as 2.9-11.7 s of speech. Now 0-0.07 s: the model's share
    # test waits for 0.5 s of gate-opening sound (VadParams.mono_speech_min_hops), and until then a hop needs the
    # model's 0.05 (mono_warmup_speech_probability; without it 0-0.53 s); its note onsets are not syllables (0-1:
    # the model's probability near a nucleus)
    out = analyze_file(MUSIC / name)
    assert out["speech_s"] <= 0.1 and out["syllables"] <= 1 and out["rate_spm"] is None, out
    assert any("not speech to the speech model" in w for w in out["warnings"]), out["warnings"]


def test_music_before_and_after_speech_is_left_out(tmp_path: Path) -> None:
    """Hold music, then the real clips, then music again, all at the same level: the speech time and the
    syllables stay near those of the clips alone: +0.11 s and +1 syllable (before the speech model: +9.25 s
    and +33; +0.83 s and +4 before the per-hop test and its hysteresis, when the music after the speech
    passed until it filled the louder half of the share's hops)."""
    speech = _speech_track()
    clean = tmp_path / "speech.wav"
    sf.write(clean, speech, FS, subtype="FLOAT")
    ref = analyze_file(clean)
    music = _read(MUSIC / "xmoto-menu.flac")
    music = music / np.sqrt(np.mean(music**2)) * 0.05
    mixed = tmp_path / "hold-music.wav"
    sf.write(mixed, np.concatenate([music[: 5 * FS], speech, music[5 * FS: 10 * FS]]), FS, subtype="FLOAT")
    out = analyze_file(mixed)
    assert 0.0 <= out["speech_s"] - ref["speech_s"] <= 0.25, (out["speech_s"], ref["speech_s"])
    assert 0 <= out["syllables"] - ref["syllables"] <= 2, (out["syllables"], ref["syllables"])
    assert any("not speech to the speech model" in w for w in out["warnings"]), out["warnings"]


def test_hold_music_on_the_customer_side_of_a_call_is_not_customer_talk(tmp_path: Path) -> None:
    """The agent talks over hold music on the customer's channel: no customer talk time, no overlap (before the
    speech model: 3.3 s of customer talk and 2.5 s of overlap with this piece, 12.6-14.3 s with the others)."""
    speech = _speech_track()
    music = _read(MUSIC / "lincity-ng-city-blues.flac")
    music = np.resize(music / np.sqrt(np.mean(music**2)) * 0.03, speech.size)
    path = tmp_path / "call.wav"
    sf.write(path, np.column_stack([speech, music]), FS, subtype="FLOAT")
    out = analyze_file(path, layout=Layout.CALL, agent_channel=0)
    assert out["customer_speech_s"] <= 0.2 and out["overlap_s"] <= 0.2, out
    alone = tmp_path / "agent.wav"
    sf.write(alone, speech, FS, subtype="FLOAT")
    assert abs(out["speech_s"] - analyze_file(alone)["speech_s"]) <= 0.05  # the agent's side as without music
    assert any(w.startswith("customer side: ") and "not speech to the speech model" in w
               for w in out["warnings"]), out["warnings"]


def _at_level(x: np.ndarray, level_dbov: float) -> np.ndarray:
    """``x`` scaled to the active speech level ``level_dbov`` (ITU-T P.56)."""
    result = p56_level(x, FS)
    assert result is not None
    out: np.ndarray = x * 10 ** ((level_dbov - result.level_dbov) / 20)
    return out


def test_a_quiet_recording_is_heard_as_speech(tmp_path: Path) -> None:
    """The real clips at -70 dBov in 16-bit files (30 dB over the quantisation noise) read as at their own
    level: the speech model, whose probabilities fall under about -50 dBov, hears a recording under -45 dBov
    raised to it (speech_model.model_gain_db). Measured: 46 of the 47 syllables and 11.30 s of the 11.41 s;
    the model hearing them as they are, 27 syllables and 6.04 s, the rest "not speech" to it."""
    syllables = speech_s = syllables_0 = speech_s0 = 0.0
    for name in SPEECH_WAVS:
        path = tmp_path / name
        sf.write(path, _at_level(_read(REAL / name), -70.0), FS, subtype="PCM_16")
        quiet, loud = analyze_file(path), analyze_file(REAL / name)
        assert quiet["level_dbov"] == pytest.approx(-70.0, abs=0.15)
        assert not any("not speech" in w for w in quiet["warnings"]), (name, quiet["warnings"])
        syllables, speech_s = syllables + quiet["syllables"], speech_s + quiet["speech_s"]
        syllables_0, speech_s0 = syllables_0 + loud["syllables"], speech_s0 + loud["speech_s"]
    assert syllables >= syllables_0 - 1 and speech_s >= 0.98 * speech_s0, (syllables, speech_s)


@pytest.mark.parametrize("name", ["frozen-bubble-introzik.flac", "lincity-ng-city-blues.flac"])
def test_quiet_music_raised_for_the_model_is_still_not_speech(name: str, tmp_path: Path) -> None:
    """The model hears a quiet file raised, music too: at -70 dBov these pieces still read as music (measured
    0.03 and 0.00 s of speech, 10 and 3 s "not speech"), as at their own level."""
    path = tmp_path / "quiet.wav"
    sf.write(path, _at_level(_read(MUSIC / name), -70.0), FS, subtype="PCM_16")
    out = analyze_file(path)
    assert out["speech_s"] <= 0.1 and out["syllables"] <= 1, out
    assert any("not speech to the speech model" in w for w in out["warnings"]), out["warnings"]


def test_the_quiet_customer_side_of_a_call_is_heard_as_speech(tmp_path: Path) -> None:
    """A call recording whose customer channel is at -70 dBov: the customer's talk time is that of the channel
    (2.72 s analysed alone; 2.38 s at the clip's own level, whose lead-in of room tone is noise over the
    quantisation steps at -70). Measured 2.66 s; 2.21 s with the model hearing the channel as it is."""
    agent = _read(REAL / "aishell-BAC009S0724W0121.wav")
    customer = _at_level(_read(REAL / "new-home-in-the-stars.wav"), -70.0)
    stereo = np.column_stack([np.concatenate([agent, np.zeros(customer.size)]),
                              np.concatenate([np.zeros(agent.size), customer])])
    path = tmp_path / "call.wav"
    sf.write(path, stereo, FS, subtype="PCM_16")
    out = analyze_file(path, layout=Layout.CALL, agent_channel=0)
    assert out["customer_speech_s"] >= 2.55 and out["overlap_s"] == 0.0, out
    assert abs(out["speech_s"] - analyze_file(REAL / "aishell-BAC009S0724W0121.wav")["speech_s"]) <= 0.05


def test_the_gain_for_the_speech_model() -> None:
    """Only recordings under -45 dBov are raised, by at most MAX_GAIN_DB; with no level measured, none."""
    assert model_gain_db(-20.0) == model_gain_db(-45.0) == model_gain_db(None) == 0.0
    assert model_gain_db(-70.0) == 25.0 and model_gain_db(-120.0) == MAX_GAIN_DB
    x = _read(REAL / "timit-LDC93S1.wav")
    loud = SpeechProbability(HOP, silero_model.load()).process(x)
    raised = SpeechProbability(HOP, silero_model.load(), gain_db=20.0).process(x * 0.1)
    np.testing.assert_allclose(raised, loud, atol=1e-4)  # x * 0.1 raised by 20 dB is x again (float32 rounding)
    with pytest.raises(DspError, match="gain_db"):
        SpeechProbability(HOP, silero_model.load(), gain_db=-1.0)


def test_without_onnxruntime_analyze_warns_and_goes_on(tmp_path: Path) -> None:
    """Where onnxruntime is not installed (32-bit ARM has no package), a mono file is analysed without the
    speech model, and the output says so: no traceback, the other measures as before."""
    code = ("import sys; sys.modules['onnxruntime'] = None; from device.cli import main; "
            "sys.exit(main(['analyze', '--json', sys.argv[1]]))")
    out = subprocess.run([sys.executable, "-c", code, str(REAL / "timit-LDC93S1.wav")], capture_output=True,
                         text=True, timeout=120)
    assert out.returncode == 0 and "Traceback" not in out.stderr, out.stderr
    result = json.loads(out.stdout)
    assert any(w.startswith("speech model unavailable (onnxruntime is not installed") for w in result["warnings"])
    assert result["syllables"] == analyze_file(REAL / "timit-LDC93S1.wav")["syllables"]


def test_the_notes_of_a_music_bed_between_words_are_not_syllables() -> None:
    """The real clips over a music bed 10 dB under them, with 3 s of the music before and after: a nucleus
    counts only near the model's speech (analyzer.NUCLEUS_SPEECH_PROBABILITY), and, once the model hears
    the talker clearly, the VAD keeps only the hops it calls speech (vad.VadParams.mono_hop_model_share).
    Measured 59 syllables against 48 for the clips alone (65 before the per-hop test); without the speech
    model 88 (and 74 with the model's VAD test alone, without the nucleus check, before the close merge
    distance of syllables.py)."""
    from device.dsp.analyzer import StreamingAnalyzer

    speech = _speech_track()
    music = _read(MUSIC / "xmoto-foxrun.flac")
    bed = np.resize(music / np.sqrt(np.mean(music**2)), speech.size + 6 * FS) * 0.05 * 10 ** (-10 / 20)
    bed[3 * FS: 3 * FS + speech.size] += speech

    def syllables(x: np.ndarray, with_model: bool) -> int:
        a = StreamingAnalyzer(FS, 1, speech_model=silero_model.load() if with_model else None)
        for i in range(0, x.size, 1600):
            a.feed(x[i: i + 1600, None])
        a.flush()
        return a.totals().syllables

    alone = syllables(speech, True)
    assert alone == syllables(speech, False)  # speech alone: the model changes no count
    with_model, without = syllables(bed, True), syllables(bed, False)
    assert with_model - alone <= 12
    assert without - alone >= 40


def test_the_shipped_model_gives_the_peers_probabilities() -> None:
    """The shipped 16 kHz sequence export runs a block's chunks in one call; its probabilities are those of
    Silero's one-chunk-a-call model, the accuracy table's peer VAD (bench/peer_silero.py), bit for bit."""
    from bench.peer_silero import SileroVad

    peer = SileroVad.load()
    for path in (REAL / "timit-LDC93S1.wav", MUSIC / "xmoto-menu.flac"):
        x = _read(path)
        ours = SpeechProbability(HOP, silero_model.load()).process(x)
        ref = peer.probabilities(x)
        chunks = (np.arange(1, ours.size + 1) * HOP) // 512  # chunks complete at each hop's end
        np.testing.assert_array_equal(ours, np.concatenate([[0.0], ref])[chunks])
