"""The own-voice VAD adapts to the room: speech at 5-10 dB SNR is still found, and steady sounds
(silence, tones, beeps, hum, stationary noise, a noise that starts mid-stream) are never speech.

Real speech (tests/data/real-speech) mixed with pink noise or with a babble of the other clips, at
an SNR taken against each clip's own active speech power; the reference is the clean clip's speech
time through the same analyser."""

from __future__ import annotations

import json
from pathlib import Path
from typing import cast

import numpy as np
import pytest
import soundfile as sf

from device.dsp import StreamingAnalyzer
from tests.device import room_corpus as rc
from tests.device.dsp.test_streaming import run

DATA = Path(__file__).resolve().parents[2] / "data" / "real-speech"
MANIFEST = json.loads((DATA / "manifest.json").read_text())["clips"]
WAVS = sorted(n for n, c in MANIFEST.items() if "syllables" in c)
FS = 16000


def _clip(name: str) -> np.ndarray:
    x, rate = sf.read(DATA / name, dtype="float64")
    assert rate == FS
    return np.asarray(x)


def _speech_s(x: np.ndarray) -> float:
    a = StreamingAnalyzer(FS, channels=1, emit_interval_s=0.1)
    a.feed(x)
    a.flush()
    return a.totals().speech_s


def _babble(n: int, others: list[np.ndarray]) -> np.ndarray:
    out = np.zeros(n)
    for k, x in enumerate(others):
        y = np.roll(np.tile(x, n // x.size + 1)[:n], 3000 * k)
        out += y / np.sqrt(np.mean(y ** 2))
    return out / np.std(out)


def _mix(x: np.ndarray, noise: np.ndarray, snr_db: float, level_dbov: float) -> np.ndarray:
    # SNR against the active speech power (P.56 level of the clip), noise power over the whole clip
    speech_power = 10 ** (level_dbov / 10) / 2.0  # dBov: a full-scale square wave (power 1) is 0 dBov
    mixed: np.ndarray = x + noise * np.sqrt(speech_power / 10 ** (snr_db / 10))
    return mixed


@pytest.mark.parametrize("kind", ["pink", "babble"])
def test_speech_time_holds_at_5_db_snr(kind: str) -> None:
    rng = np.random.default_rng(12)
    clean_total = noisy_total = err_total = 0.0
    for name in WAVS:
        x = _clip(name)
        clean = _speech_s(x)
        noise = rc.pink_noise(rng, x.size, 1)[:, 0] if kind == "pink" else _babble(x.size, [_clip(n) for n in WAVS if n != name])
        noisy = _speech_s(_mix(x, noise, 5.0, MANIFEST[name]["level_dbov"]))
        clean_total += clean
        noisy_total += noisy
        err_total += abs(noisy - clean)
    # measured: pink 5 dB 8.0 %, babble 5 dB 17.3 % of the clean speech time (the fixed 12 dB gate
    # before: 47 % and 34 %; pink 8.4 % before the lower gate share over a steady floor, 6.8 % before the
    # lone-hop rule of a noisy room (babble 19.0 % before it), which costs these short pauses a hop here
    # and there and keeps the long pauses of a conversation from filling with noise: test_vad_pauses.py).
    # Mono cannot
    # tell a babble of voices from the talker, so babble fills some pauses (+); the two-channel
    # own-voice gate handles neighbours (test_rooms.py).
    limit = {"pink": 0.085, "babble": 0.185}[kind]
    assert err_total / clean_total <= limit, (kind, clean_total, noisy_total, err_total)


def _steady_sounds() -> dict[str, np.ndarray]:
    rng = np.random.default_rng(3)
    t = np.arange(10 * FS) / FS
    pink = 0.05 * rc.pink_noise(rng, 10 * FS, 1)[:, 0]
    beep = np.concatenate([0.3 * np.sin(2 * np.pi * 440 * t[: FS // 2]), np.zeros(FS // 2)])
    return {
        "silence": np.zeros(10 * FS),
        "tone after silence": np.concatenate([np.zeros(2 * FS), 0.3 * np.sin(2 * np.pi * 1000 * t[: 6 * FS]),
                                              np.zeros(2 * FS)]),
        "beeps": np.tile(beep, 10),
        "mains hum": cast(np.ndarray, sum(0.1 / k * np.sin(2 * np.pi * 50 * k * t) for k in range(1, 12))),
        "white noise": 0.05 * rng.standard_normal(10 * FS),
        "pink noise": pink,
        "noise starting mid-stream": np.concatenate([np.zeros(3 * FS), pink[: 7 * FS]]),
    }


@pytest.mark.parametrize("name", list(_steady_sounds()))
def test_steady_sounds_are_never_speech(name: str) -> None:
    a = StreamingAnalyzer(FS, channels=1, emit_interval_s=0.1)
    a.feed(_steady_sounds()[name])
    a.flush()
    assert a.totals().speech_s == 0.0
    assert a.totals().syllables == 0


@pytest.mark.parametrize("name", WAVS)
def test_mains_hum_under_speech_changes_neither_speech_time_nor_syllables(name: str) -> None:
    """50 Hz hum and its harmonics (a ground loop) 20 dB under the speech level, from the first sample.
    Measured: within 0.01 s on three clips, timit -0.10 s (its quiet lead-in); new-home gained 0.51 s
    when the stream's first frame was half zeros (its level under the hum's seeded a floor below it)."""
    x = _clip(name)
    t = np.arange(x.size) / FS
    hum = cast(np.ndarray, sum(np.sin(2 * np.pi * 50 * k * t + k) / k for k in range(1, 12)))
    hum *= 10 ** ((MANIFEST[name]["level_dbov"] - 20.0) / 20) / np.sqrt(2 * np.mean(hum ** 2))
    clean, humming = (run(y, [y.size], channels=1).totals() for y in (x, x + hum))
    assert humming.syllables == clean.syllables
    assert abs(humming.speech_s - clean.speech_s) <= 0.11, (clean, humming)


def _mono_energies(levels_db: list[float]) -> np.ndarray:
    """Band energies ``(k, 1, bands)`` of hops whose speech band is at ``levels_db`` (90 % of the total)."""
    from device.dsp.features import BAND_INDEX, BANDS

    e = np.zeros((len(levels_db), 1, len(BANDS)))
    speech = 10.0 ** (np.asarray(levels_db) / 10.0)
    e[:, 0, BAND_INDEX["speech"]] = speech
    e[:, 0, BAND_INDEX["total"]] = speech / 0.9
    return e


def _run_vad(levels_db: list[float]) -> tuple[np.ndarray, np.ndarray, int | None]:
    """Flags of the hops fed 10 at a time (as the analyser decides them), every hop released, and the
    hop held since at the end."""
    from device.dsp.vad import OwnVoiceVad

    vad = OwnVoiceVad(1)
    e = _mono_energies(levels_db)
    flags, released = [], []
    for a in range(0, len(levels_db), 10):
        flags.append(vad.process(e[a: a + 10]))
        released.append(vad.take_released())
    return np.concatenate(flags), np.concatenate(released), vad.held_since


def test_a_first_word_before_the_modulation_test_has_its_hops_is_released_for_the_nuclei() -> None:
    """A recording cut at its first word: the word's steady start (0.25 s within 2 dB) opens the gate before
    the modulation test has 10 hops and a 5 dB spread, so those hops are not flagged; once the test passes
    they are released (for the syllable nuclei), and a breath before a pause is not."""
    rng = np.random.default_rng(1)
    silence = [-80.0 + float(rng.uniform(-1, 1)) for _ in range(10)]
    steady = [-20.0 + float(rng.uniform(-1, 1)) for _ in range(25)]
    speech = [-20.0 if i % 8 < 5 else -34.0 for i in range(45)]
    flags, released, held = _run_vad(silence + steady + speech)
    assert held is None
    first = int(np.flatnonzero(flags)[0])
    assert 35 <= first <= 45 and flags[first:].mean() > 0.5  # the steady start is not flagged...
    assert released.tolist() == list(range(10, first))  # ...but released when the test passes
    breath = [-45.0] * 5 + [-80.0] * 15  # a breath, then 0.15 s of silence before the word
    flags, released, held = _run_vad(silence + breath + steady + speech)
    # the breath and the word's start give the test its spread at once: the word is flagged from its first
    # hop, and the breath, held until then, is not released (0.15 s of silence lie between)
    assert int(np.flatnonzero(flags)[0]) == 30 and not flags[10:30].any() and released.size == 0
    flags, released, held = _run_vad(silence + [-20.0] * 60)  # a steady tone: never speech, nothing released
    assert not flags.any() and released.size == 0
    assert held == 70 - 50  # the nuclei wait for its last 0.5 s at most (VadParams.warmup_hops)
