"""Own-voice speech time with the pauses of a conversation, in noise, two-channel and mono.

The wearer's lines 0.8-2 s apart at 5 cm in a simulated room (``tests/device/room_corpus.py``,
``pause_scene``), with stationary pink noise or 8 neighbours talking 1-2 m away added at the boom's SNR;
the reference is the clean scene's time through the same analyser. In a noisy room the noise's own level
peaks open the VAD's gate now and then; without the lone-hop rule (``device/dsp/vad.py``) they bridged the
pauses. With two channels, a crowd of neighbours as loud as the wearer's softer speech passed the smaller
ILD margin of a loud hop on its ILD's wander, until that margin became at least the far-field ILDs'
spread. With one channel, neighbours 20 dB under the wearer went on through the pauses until a hop far
under the speech level had to lie within 0.5 s after a loud one (the figures beside ``CASES``). With the
speech model (``MODEL_CASES``), neighbours 10 dB under the wearer no longer fill the pauses either: while the
model hears the wearer clearly, a hop is speech only where it calls it speech."""

from __future__ import annotations

import numpy as np
import pytest

from device import silero_model
from device.dsp import StreamingAnalyzer
from tests.device import room_corpus as rc

SCENES = (4, 5)
"""Scenes of bench/accuracy.py's ``pauses`` row (which also has scene 6)."""


def _speech_s(x: np.ndarray, model: bool = False) -> float:
    channels = x.shape[1]
    a = StreamingAnalyzer(16000, channels=channels, emit_interval_s=0.1,
                          speech_model=silero_model.load() if model else None)
    a.feed(x if channels == 2 else x[:, 0])
    a.flush()
    return a.totals().speech_s


def _change(scenes: list[rc.PauseScene], noise: str, snr_db: float, channels: int,
            model: bool = False) -> tuple[float, float, float]:
    """Total abs change of the speech time over ``scenes``, clean -> noisy, as a share of the clean total;
    and both totals (s)."""
    clean = noisy = change = 0.0
    for scene in scenes:
        a = _speech_s(np.ascontiguousarray(scene.own.audio[:, :channels]), model)
        b = _speech_s(np.ascontiguousarray(scene.at_snr(noise, snr_db)[:, :channels]), model)
        clean += a
        noisy += b
        change += abs(b - a)
    return change / clean, clean, noisy


@pytest.fixture(scope="module")
def scenes() -> list[rc.PauseScene]:
    d = rc.cache_dir()
    d.mkdir(parents=True, exist_ok=True)
    return [rc.pause_scene(seed, d) for seed in SCENES]


# (noise, SNR dB, channels, limit of the total abs change over both scenes): measured 3.2 % and 1.2 % in
# pink noise at 5 dB (two-channel, mono; 13.9 % and 13.7 % without the lone-hop rule), 1.4 % with 8
# neighbours at 10 dB two-channel (9.5 % without the rule, 2.9 % with it but a loud hop's ILD margin
# fixed at 1 dB), 3.0 % at 5 dB (20.8 %, 12.6 %); mono with 8 neighbours at 20 dB 6.9 % (28.8 % when a hop far
# under the speech level is not tied to a loud one: the neighbours went on through the wearer's pauses)
CASES = [("pink", 5.0, 2, 0.04), ("pink", 5.0, 1, 0.02), ("babble", 10.0, 2, 0.025), ("babble", 5.0, 2, 0.04),
         ("babble", 20.0, 1, 0.08)]


@pytest.mark.parametrize(("noise", "snr_db", "channels", "limit"), CASES,
                         ids=[f"{n}-{s:g}dB-{c}ch" for n, s, c, _ in CASES])
def test_pauses_stay_pauses_in_noise(scenes: list[rc.PauseScene], noise: str, snr_db: float, channels: int,
                                     limit: float) -> None:
    share, clean, noisy = _change(scenes, noise, snr_db, channels)
    assert share <= limit, (noise, snr_db, channels, clean, noisy)


# (noise, SNR dB, limit of the total abs change over both scenes), mono with the speech model (what
# ``analyze`` runs on a mono file): 8 neighbours at 10 dB 3.4 % (34.6 % without the per-hop test, 8.1 % with
# it but without its hysteresis), at 5 dB 17.0 % (31.0 %, 20.0 %), pink noise at 5 dB 0.7 % (the test is off
# over a steady floor; 2.6 % with it on there)
MODEL_CASES = [("babble", 10.0, 0.04), ("babble", 5.0, 0.18), ("pink", 5.0, 0.01)]


@pytest.mark.parametrize(("noise", "snr_db", "limit"), MODEL_CASES, ids=[f"{n}-{s:g}dB" for n, s, _ in MODEL_CASES])
def test_mono_pauses_with_the_speech_model(scenes: list[rc.PauseScene], noise: str, snr_db: float,
                                           limit: float) -> None:
    share, clean, noisy = _change(scenes, noise, snr_db, 1, model=True)
    assert share <= limit, (noise, snr_db, clean, noisy)
