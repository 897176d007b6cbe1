"""``device.inputs.channel_layout``: the layout for a channel count, and the whole-file check that catches
dual-mono files and ear cups louder than the boom (speech-weighted) before a headset analysis."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from device.errors import LayoutError
from device.inputs.channel_layout import (
    APART_BELOW,
    BALANCED_WITHIN_DB,
    COHERENT_ABOVE,
    EAR_LOUDER_DB,
    INVERTED_BELOW,
    ChannelCheck,
    ChannelReport,
    Layout,
    Plan,
    apply_check,
    no_own_speech_warning,
    resolve,
)
from tests.conftest import DATA_DIR
from tests.device.helpers import room_pair

REAL = DATA_DIR / "real-speech"


def _clip(name: str = "new-home-in-the-stars.wav") -> tuple[np.ndarray, int]:
    x, rate = sf.read(REAL / name, dtype="float64")
    return x, rate


def _report(st: np.ndarray, rate: int, block: int = 4000) -> ChannelReport:
    check = ChannelCheck(rate)
    for i in range(0, st.shape[0], block):
        check.add(st[i:i + block])
    return check.report()


def test_the_default_layout_follows_the_channel_count() -> None:
    assert resolve(None, 1) == Plan(Layout.MONO)
    assert resolve(None, 2) == Plan(Layout.HEADSET)
    many = resolve(None, 6)
    assert many.layout is Layout.MONO and many.warnings == ("6 channels: mixed down to mono (use --layout to choose)",)
    assert resolve(Layout.MONO, 6) == Plan(Layout.MONO, asked=True)  # asked for: no warning


def test_explicit_layouts_fit_or_say_why_not() -> None:
    assert resolve(Layout.HEADSET, 2) == Plan(Layout.HEADSET, asked=True)
    mono = resolve(Layout.HEADSET, 1)
    assert mono.layout is Layout.MONO and "no ear cup" in mono.warnings[0]
    with pytest.raises(LayoutError, match="the headset layout needs 2 channels .* has 4: use --layout mono"):
        resolve(Layout.HEADSET, 4)
    assert resolve(Layout.CALL, 2) == Plan(Layout.CALL, agent_channel=0, asked=True)  # agent on channel 0 by default
    assert resolve(Layout.CALL, 2, 1) == Plan(Layout.CALL, agent_channel=1, asked=True)
    with pytest.raises(LayoutError, match=r"--agent-channel 2 is out of range: the file has 2 channel\(s\) \(0\.\.1\)"):
        resolve(Layout.CALL, 2, 2)
    with pytest.raises(LayoutError, match="the call layout needs 2 channels .* has 3"):
        resolve(Layout.CALL, 3, 1)
    with pytest.raises(LayoutError, match="out of range"):
        resolve(Layout.CALL, 1, 1)


@pytest.mark.parametrize(("fmt", "subtype", "suffix"), [("WAV", "PCM_16", ".wav"), ("MP3", "MPEG_LAYER_III", ".mp3"),
                                                        ("OGG", "VORBIS", ".ogg"), ("OGG", "OPUS", ".opus")])
def test_a_mono_recording_saved_as_stereo_is_identical_even_through_lossy_codecs(tmp_path: Path, fmt: str,
                                                                                 subtype: str, suffix: str) -> None:
    x, rate = _clip()
    path = tmp_path / f"dual{suffix}"
    sf.write(path, np.stack([x, x], axis=1), rate, format=fmt, subtype=subtype)
    y, _ = sf.read(path, dtype="float64", always_2d=True)
    report = _report(y, rate)
    assert report.identical, report
    assert report.ear_minus_boom_db == pytest.approx(0.0, abs=0.1)


def test_headset_channels_differ_and_the_level_difference_is_measured() -> None:
    x, rate = _clip()
    rng = np.random.default_rng(0)
    boom_louder = np.stack([x, x * 10 ** (-8 / 20)], axis=1) + rng.standard_normal((x.size, 2)) * 1e-4
    report = _report(boom_louder, rate)
    assert not report.identical and report.difference_db is not None and report.difference_db > -10
    assert report.ear_minus_boom_db == pytest.approx(-8.0, abs=0.3)
    swapped = _report(boom_louder[:, ::-1], rate)
    assert swapped.ear_minus_boom_db == pytest.approx(8.0, abs=0.3)
    # the same report for any split into blocks (streaming over an hour-long file)
    for block in (777, x.size):
        other = _report(boom_louder, rate, block=block)
        assert other.difference_db == pytest.approx(report.difference_db, abs=1e-9)
        assert other.ear_minus_boom_db == pytest.approx(report.ear_minus_boom_db, abs=1e-9)


def test_the_level_difference_is_speech_weighted() -> None:
    """Mains hum and loud hiss above the speech band on the ear cup do not make it "louder" than the
    boom: only the speech band (150-4000 Hz) of the active frames counts."""
    x, rate = _clip()
    t = np.arange(x.size) / rate
    spectrum = np.fft.rfft(np.random.default_rng(2).standard_normal(x.size))
    spectrum[np.fft.rfftfreq(x.size, 1 / rate) < 5000] = 0
    hiss = np.fft.irfft(spectrum, x.size)
    hiss *= 0.15 / np.sqrt(np.mean(hiss ** 2))
    ear = x * 10 ** (-8 / 20) + 0.02 * np.sin(2 * np.pi * 60 * t) + hiss
    st = np.stack([x, ear], axis=1)
    # broadband, over the whole file, the ear cup is well over the 3 dB limit
    assert 10 * np.log10(np.mean(ear ** 2) / np.mean(x ** 2)) > EAR_LOUDER_DB + 3
    assert _report(st, rate).ear_minus_boom_db == pytest.approx(-8.0, abs=0.1)


def test_silence_is_neither_identical_nor_louder() -> None:
    report = _report(np.zeros((16000, 2)), 16000)
    assert report == ChannelReport(None, None) and not report.identical
    assert apply_check(Plan(Layout.HEADSET), report) == Plan(Layout.HEADSET)


def test_the_check_turns_a_headset_plan_into_mono_with_the_likely_cause() -> None:
    headset = Plan(Layout.HEADSET)
    same = apply_check(headset, ChannelReport(-np.inf, 0.0))
    assert same.layout is Layout.MONO
    assert same.warnings == ("channels 0 and 1 are identical (a mono recording saved as stereo?); analysed as mono "
                             "— use --layout mono",)
    louder = apply_check(headset, ChannelReport(-1.0, 6.04))
    assert louder.layout is Layout.MONO
    assert louder.warnings[0].startswith("ear-cup channel (1) is 6.0 dB louder than the boom (0) in speech: "
                                         "not a headset recording, or channels swapped? analysed as mono")
    assert "--layout mono" in louder.warnings[0] and "--layout call" in louder.warnings[0]
    assert apply_check(headset, ChannelReport(-1.0, -BALANCED_WITHIN_DB - 0.1)) == headset  # the boom ahead
    assert apply_check(headset, ChannelReport(-1.0, -9.0, 0.99)) == headset  # a talking wearer, even coherent
    # a call recording keeps its layout; identical channels are warned about
    call = Plan(Layout.CALL, agent_channel=1)
    warned = apply_check(call, ChannelReport(-np.inf, 0.0))
    assert warned.layout is Layout.CALL and warned.agent_channel == 1 and "cannot be told apart" in warned.warnings[0]
    assert apply_check(call, ChannelReport(-1.0, 9.0)) == call
    assert apply_check(call, ChannelReport(-1.0, 0.5, 0.3)) == call  # two sides about as loud: a call
    mixed = apply_check(call, ChannelReport(-12.0, 0.5, 0.97))
    assert mixed.layout is Layout.CALL and mixed.warnings == (
        "channels 0 and 1 carry the same sound about as loud (coherence 0.97: both talkers mixed into each "
        "channel?): agent and customer cannot be told apart",)
    assert apply_check(Plan(Layout.MONO), ChannelReport(-np.inf, 9.0)) == Plan(Layout.MONO)


def test_two_channels_about_as_loud_are_no_headset_unless_asked_for() -> None:
    """The same sound in both (coherent): mono whatever was asked. Different sounds (a room pair, or a
    wearer who did not speak): mono when picked by the channel count; asked for: the headset, warned."""
    picked, asked = resolve(None, 2), resolve(Layout.HEADSET, 2)
    assert (picked.asked, asked.asked) == (False, True)
    for plan in (picked, asked):
        same = apply_check(plan, ChannelReport(-20.0, 0.4, COHERENT_ABOVE))
        assert same.layout is Layout.MONO
        assert same.warnings == ("channels 0 and 1 carry the same sound about as loud (ear cup +0.4 dB re boom in "
                                 "speech, coherence 0.90): a stereo recording, not a headset's boom and ear cup; "
                                 "analysed as mono (channels mixed) — use --layout mono, or --layout call for a call "
                                 "recording",)
    room = ChannelReport(2.0, -BALANCED_WITHIN_DB, 0.3)
    fell = apply_check(picked, room)
    assert fell.layout is Layout.MONO and fell.warnings == (
        "the ear cup is about as loud as the boom (ear cup -3.0 dB re boom in speech, coherence 0.30): no wearer "
        "talking into the boom — a room or stereo recording rather than a headset? analysed as mono (channels "
        "mixed: everyone's speech) — use --layout headset for the wearer's own speech only",)
    kept = apply_check(asked, room)
    assert kept.layout is Layout.HEADSET and kept.warnings == (
        "the ear cup is about as loud as the boom (ear cup -3.0 dB re boom in speech, coherence 0.30): the wearer "
        "hardly spoke, the boom is far from the mouth, or this is not a headset recording — use --layout mono for "
        "everyone's speech",)
    # about as loud but alike (a boom 10-15 cm from the mouth: 0.65-0.75 in simulated rooms): still a headset
    far_boom = apply_check(picked, ChannelReport(2.0, -1.8, APART_BELOW))
    assert far_boom.layout is Layout.HEADSET and far_boom.warnings == (
        "the ear cup is about as loud as the boom (ear cup -1.8 dB re boom in speech, coherence 0.60): the wearer "
        "hardly spoke, the boom is far from the mouth, or this is not a headset recording — use --layout mono for "
        "everyone's speech",)


def test_a_silent_channel_leaves_the_other_alone_as_mono() -> None:
    """One side of a stereo file silent (a mono recording in one channel, or a dead mic): the other channel
    alone, not the mix (which would read 6 dB low) and not "326 dB louder"."""
    x, rate = _clip()
    left = _report(np.stack([x, np.zeros_like(x)], axis=1), rate)
    right = _report(np.stack([np.zeros_like(x), x], axis=1), rate)
    assert (left.silent_channel, right.silent_channel) == (1, 0)
    assert _report(np.stack([x, x * 10 ** (-50 / 20)], axis=1), rate).silent_channel is None  # 50 dB: a mic
    for plan in (resolve(None, 2), resolve(Layout.HEADSET, 2)):
        kept = apply_check(plan, right)
        assert (kept.layout, kept.channel) == (Layout.MONO, 1)
        assert kept.warnings == ("channel 0 (the boom) is silent (60 dB or more under channel 1 in speech): a mono "
                                 "recording in one side of a stereo file? analysed channel 1 alone as mono",)
        assert apply_check(plan, left).channel == 0
    call = apply_check(resolve(Layout.CALL, 2, 1), right)
    assert call.layout is Layout.CALL and call.channel is None and call.warnings == (
        "channel 0 (customer) is silent (60 dB or more under the other in speech): a mono recording in one side "
        "of a stereo file?",)


def test_the_coherence_tells_one_mix_from_two_microphones() -> None:
    """A stereo copy of one recording is coherent (1.0); two microphones in a room, each with its own
    reverberation, are not; the measure does not depend on how the file is cut into blocks."""
    x, rate = _clip()
    rng = np.random.default_rng(4)
    copy = np.stack([x, x * 10 ** (-0.5 / 20)], axis=1) + rng.standard_normal((x.size, 2)) * 1e-4
    report = _report(copy, rate)
    assert report.coherence == pytest.approx(1.0, abs=0.01) and report.coherent and report.balanced
    room = room_pair(x, rate)
    r = _report(room, rate)
    assert r.coherence is not None and r.coherence < 0.5 and not r.coherent and r.balanced
    assert _report(room, rate, block=777).coherence == pytest.approx(r.coherence, abs=1e-9)


def test_channels_of_opposite_polarity_are_one_channel_whatever_the_layout() -> None:
    """An inverted copy (coherence -1) would cancel in a mix: the louder channel alone, warned, for every plan
    but the call's (warned); a room pair, uninverted, is not inverted."""
    x, rate = _clip()
    report = _report(np.stack([x, -0.5 * x], axis=1), rate)
    assert report.coherence == pytest.approx(-1.0, abs=0.01) and report.inverted and report.louder_channel == 0
    assert _report(np.stack([-0.5 * x, x], axis=1), rate).louder_channel == 1
    for plan in (resolve(None, 2), resolve(Layout.HEADSET, 2), resolve(Layout.MONO, 2)):
        kept = apply_check(plan, report)
        assert (kept.layout, kept.channel) == (Layout.MONO, 0)
        assert kept.warnings[-1].startswith("channels 0 and 1 carry the same sound with opposite polarity "
                                            "(coherence -1.00")
    call = apply_check(resolve(Layout.CALL, 2, 0), report)
    assert call.layout is Layout.CALL and call.channel is None and "cannot be told apart" in call.warnings[-1]
    room = _report(room_pair(x, rate), rate)
    assert room.coherence is not None and room.coherence > INVERTED_BELOW and not room.inverted
    assert apply_check(resolve(Layout.MONO, 2), room) == resolve(Layout.MONO, 2)  # a mix, as asked


def test_no_own_speech_in_an_active_headset_file_is_explained() -> None:
    text = no_own_speech_warning(ChannelReport(-2.0, -4.4), speech_s=0.0, activity=0.8)
    assert text is not None and "P.56 activity 80 %" in text and "ear cup -4.4 dB re boom" in text
    assert "--layout mono" in text
    assert no_own_speech_warning(ChannelReport(-2.0, -4.4), speech_s=1.2, activity=0.8) is None
    assert no_own_speech_warning(None, speech_s=0.0, activity=0.0) is None  # silence: nothing to explain
    # two channels about as loud: the channel check's warning has said it already
    assert no_own_speech_warning(ChannelReport(-2.0, -0.4, 0.3), speech_s=0.0, activity=0.8) is None
