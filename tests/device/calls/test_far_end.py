"""The far end from baresip-style ``sndfile`` recordings, on real WAV files: espeak-ng speech and silence
written with soundfile at 8 kHz (baresip's PCMU rate), measured by the desk's own VAD; the silent-call
norm (prompt, wait 2 s, prompt, wait 2 s, close) judged on the agent's own speech from real audio too;
and every bad input (missing folder, no recording, unfinished or broken WAV) as a warning naming it."""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
from scipy.signal import resample_poly

from device.calls.far_end import (
    FarEndMeter,
    find_recording,
    measure_recording,
    name_time,
    speech_samples,
)
from device.calls.measures import CallMeter, CallNorms, measure_call, prompt_pattern
from device.calls.state import CallPhase, CallState, Direction
from device.config.agent import build
from device.errors import ConfigError
from tests.device.room_corpus import CUSTOMER_LINES, MANDARIN_LINES, own_speech_truth_s, speak

RATE = 8000
EST_S = float(int(time.time()) - 600)
"""Connection (epoch s, a whole second ten minutes ago: file names are local time to the second)."""
EST_MS = int(EST_S * 1000)

pytestmark = pytest.mark.needs("espeak-ng")


def stamp(t_s: float) -> str:
    return time.strftime("%Y-%m-%d-%H-%M-%S", time.localtime(t_s))


def line_noise(seconds: float, dbov: float = -65.0, seed: int = 3) -> np.ndarray:
    """A quiet line (white noise at ``dbov`` RMS), 8 kHz."""
    return np.random.default_rng(seed).normal(0.0, 10 ** (dbov / 20), int(seconds * RATE))


def customer_8k() -> tuple[np.ndarray, float]:
    """The customer's line (espeak-ng, English) at 8 kHz, and its speech seconds by the analyser's definition."""
    voice, text = CUSTOMER_LINES[0]
    x16 = speak(text, voice)
    return resample_poly(x16, 1, 2), own_speech_truth_s(x16)


def write_call(folder: Path, at_s: float, audio: np.ndarray, enc: bool = True) -> Path:
    """A sndfile-named recording pair for a call whose audio started at epoch ``at_s``."""
    folder.mkdir(parents=True, exist_ok=True)
    dec = folder / f"dump-{stamp(at_s)}-dec.wav"
    sf.write(dec, np.clip(audio, -1, 1), RATE, subtype="PCM_16")
    if enc:
        sf.write(folder / f"dump-{stamp(at_s)}-enc.wav", np.zeros(audio.size), RATE, subtype="PCM_16")
    return dec


def closed_call(duration_s: float, call_id: str = "c1") -> CallState:
    return CallState(CallPhase.CLOSED, call_id, Direction.INCOMING, EST_MS + int(duration_s * 1000),
                     ringing_ms=EST_MS - 3000, established_ms=EST_MS, closed_ms=EST_MS + int(duration_s * 1000),
                     source="baresip")


@pytest.fixture
def warnings_of_far_end() -> Iterator[list[logging.LogRecord]]:
    out: list[logging.LogRecord] = []

    class H(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            out.append(record)

    logger = logging.getLogger("device.calls.far_end")
    h = H(logging.INFO)
    logger.addHandler(h)
    old = logger.level
    logger.setLevel(logging.INFO)
    yield out
    logger.removeHandler(h)
    logger.setLevel(old)


def warned(records: list[logging.LogRecord]) -> str:
    return " | ".join(str(getattr(r, "reason", "")) + str(getattr(r, "folder", "")) + r.getMessage()
                      for r in records if r.levelno >= logging.WARNING)


# --- the far end's speech ---------------------------------------------------------------------------


def test_customer_speech_is_timed_and_counted_on_the_far_end(tmp_path: Path) -> None:
    speech, truth_s = customer_8k()
    lead_s = 1.5  # the customer speaks 1.5 s after the connection, then the line is quiet for 2 s
    audio = np.concatenate([line_noise(lead_s), speech + line_noise(speech.size / RATE, seed=4), line_noise(2.0, seed=5)])
    dec = write_call(tmp_path, EST_S, audio)
    call = closed_call(audio.size / RATE)
    r = measure_recording(call, tmp_path, keep=True)
    assert r.samples is not None and r.file == dec and r.duration_s == pytest.approx(audio.size / RATE)
    assert r.speech_s is not None and abs(r.speech_s - truth_s) <= 0.25 * truth_s, (r.speech_s, truth_s)
    active = [t for t, a in r.samples if a]
    first_s, last_s = (active[0] - EST_MS) / 1000, (active[-1] - EST_MS) / 1000
    assert lead_s <= first_s <= lead_s + 0.35, first_s  # a tick of 0.1 s, the VAD's onset
    end_s = lead_s + speech.size / RATE
    assert end_s - 0.6 <= last_s <= end_s + 0.5, (last_s, end_s)  # espeak's clip ends in a short silence
    # through the call measures: not silent; mutual silence is the 1.5 s lead (the agent says nothing)
    m = measure_call(call, [(EST_MS, False), (call.closed_ms or 0, False)], r.samples)
    assert m.silent_call is False and m.far_talk_s is not None and m.far_talk_s >= 0.75 * truth_s
    assert m.silent_prompts is None and m.silent_call_ok is None  # judged on silent calls only
    assert m.longest_mutual_silence_s == pytest.approx(max(lead_s, 2.0), abs=0.6)


@pytest.mark.parametrize("line", ["digital-silence", "line-noise"])
def test_a_quiet_line_is_a_silent_call(tmp_path: Path, line: str) -> None:
    audio = np.zeros(8 * RATE) if line == "digital-silence" else line_noise(8.0, -55.0)
    write_call(tmp_path, EST_S, audio)
    r = measure_recording(closed_call(8.0), tmp_path)
    assert r.samples is not None and r.speech_s == 0.0 and not any(a for _, a in r.samples)
    m = measure_call(closed_call(8.0), [(EST_MS, False), (EST_MS + 8000, False)], r.samples)
    assert m.silent_call is True and m.far_talk_s == 0.0 and m.longest_mutual_silence_s == 8.0
    assert m.silent_prompts == 0 and m.silent_call_ok is False  # not a word to the silent line


def test_recordings_are_deleted_after_measuring_unless_kept(tmp_path: Path) -> None:
    dec = write_call(tmp_path / "a", EST_S, line_noise(3.0))
    enc = dec.with_name(dec.name.replace("-dec", "-enc"))
    assert measure_recording(closed_call(3.0), tmp_path / "a").samples is not None
    assert not dec.exists() and not enc.exists()
    kept = write_call(tmp_path / "b", EST_S, line_noise(3.0))
    assert measure_recording(closed_call(3.0), tmp_path / "b", keep=True).samples is not None
    assert kept.exists()


def test_the_call_s_recording_is_the_newest_named_within_the_call(tmp_path: Path) -> None:
    earlier = write_call(tmp_path, EST_S - 60, line_noise(1.0))  # the previous call
    ours = write_call(tmp_path, EST_S - 1, line_noise(1.0))  # opened at the answer, a moment before
    later = write_call(tmp_path, EST_S + 120, line_noise(1.0))  # the next call (after our hang-up)
    (tmp_path / "notes.wav").write_bytes(b"x")
    assert name_time(earlier) == pytest.approx(EST_S - 60) and name_time(tmp_path / "notes.wav") is None
    assert find_recording(tmp_path, EST_S, EST_S + 30) == ours
    assert find_recording(tmp_path, EST_S + 200, EST_S + 230) is None
    assert later.exists()


# --- the silent-call norm on real own speech -----------------------------------------------------------


def agent_track(prompts_at_s: list[float], total_s: float) -> tuple[list[tuple[int, bool]], float]:
    """The agent's own voice (espeak-ng Mandarin prompts at the given call seconds) through the desk's
    VAD (mono path, 16 kHz), as the call meter gets it; returns the samples and the prompt length (s)."""
    prompt = speak(MANDARIN_LINES[0].split(",")[0] + ", " + "qing3 wen4 nin2 neng2 ting1 dao4 ma5")
    x = line_noise(total_s * 2, -70.0)  # 16 kHz: twice the samples of 8 kHz
    for at in prompts_at_s:
        i = int(at * 16000)
        x[i:i + prompt.size] += prompt
    samples, _ = speech_samples(x, 16000, EST_MS)
    return samples, prompt.size / 16000


@pytest.mark.parametrize(("waits_s", "ok"), [((2.5, 2.5), True), ((2.2, 2.2, 2.2), True), ((1.0, 2.5), False),
                                             ((2.5, 0.8), False), ((3.0,), False)])
def test_the_silent_call_norm_on_real_prompts(tmp_path: Path, waits_s: tuple[float, ...], ok: bool) -> None:
    """Prompts with the given waits after each (the last wait ends at the hang-up), on a silent line."""
    _, prompt_s = agent_track([], 1.0)
    at, t = [], 1.0
    for w in waits_s:
        at.append(t)
        t += prompt_s + w
    own, _ = agent_track(at, t)
    write_call(tmp_path, EST_S, line_noise(t, -60.0))
    far = measure_recording(closed_call(t), tmp_path)
    m = measure_call(closed_call(t), own, far.samples)
    assert m.silent_call is True
    assert m.silent_prompts == len(waits_s), (m.silent_prompts, waits_s)
    assert m.silent_min_wait_s is not None
    # the VAD holds speech up to 0.3 s past the last word (and espeak's clip ends in silence)
    assert min(waits_s) - 0.45 <= m.silent_min_wait_s <= min(waits_s) + 0.3, (m.silent_min_wait_s, waits_s)
    assert m.silent_call_ok is ok, (m.silent_min_wait_s, waits_s)


def test_prompt_pattern_on_intervals() -> None:
    n = CallNorms()
    s = 1000
    assert prompt_pattern([(1 * s, 2 * s), (4 * s, 5 * s)], 7 * s, n) == (2, 2.0, True)
    # a 0.5 s pause inside a prompt does not make two prompts
    assert prompt_pattern([(1 * s, 2 * s), (2500, 3 * s), (5 * s, 6 * s)], 8 * s, n) == (2, 2.0, True)
    assert prompt_pattern([(1 * s, 2 * s), (4 * s, 5 * s)], 6 * s, n) == (2, 1.0, False)  # closed too soon
    assert prompt_pattern([(1 * s, 2 * s)], 9 * s, n) == (1, 7.0, False)  # one prompt only
    assert prompt_pattern([], 9 * s, n) == (0, None, False)
    assert prompt_pattern([(1 * s, 2 * s), (3800, 5 * s)], 7 * s, n)[2] is True  # 1.8 s: within the VAD tolerance
    assert prompt_pattern([(1 * s, 2 * s), (3600, 5 * s)], 7 * s, n)[2] is False


# --- bad inputs: a warning naming the folder or file, fields not measured ---------------------------


def test_missing_folder_no_recording_and_broken_files_are_warnings(
        tmp_path: Path, warnings_of_far_end: list[logging.LogRecord]) -> None:
    gone = tmp_path / "gone"
    r = measure_recording(closed_call(5.0), gone)
    assert r.samples is None and str(gone) in (r.reason or "") and "missing" in (r.reason or "")
    empty = tmp_path / "empty"
    empty.mkdir()
    r = measure_recording(closed_call(5.0), empty)
    assert r.samples is None and "no far-end recording" in (r.reason or "")
    # baresip still writing: the header's sizes are those of an empty file (it fills them in at close)
    writing = tmp_path / "writing"
    dec = write_call(writing, EST_S, line_noise(3.0))
    data = bytearray(dec.read_bytes())
    data[4:8] = (36).to_bytes(4, "little")
    data[40:44] = (0).to_bytes(4, "little")
    dec.write_bytes(bytes(data))
    t0 = time.monotonic()
    r = measure_recording(closed_call(5.0), writing, settle_s=0.3, keep=True)
    assert r.samples is None and str(dec) in (r.reason or "") and "unfinished or truncated" in (r.reason or "")
    assert time.monotonic() - t0 < 2.0
    # cut short (a disk full, a crash): the header promises more than the file holds
    cut = tmp_path / "cut"
    dec = write_call(cut, EST_S, line_noise(3.0))
    dec.write_bytes(dec.read_bytes()[:3000])
    r = measure_recording(closed_call(5.0), cut, settle_s=0.2, keep=True)
    assert r.samples is None and str(dec) in (r.reason or "")
    # not a WAV at all, with a consistent RIFF size
    junk = tmp_path / "junk"
    junk.mkdir()
    bad = junk / f"dump-{stamp(EST_S)}-dec.wav"
    bad.write_bytes(b"RIFF" + (92).to_bytes(4, "little") + b"WAVE" + b"\x00" * 92)
    r = measure_recording(closed_call(5.0), junk, settle_s=0.2)
    assert r.samples is None and str(bad) in (r.reason or "") and not bad.exists()  # measured, gone
    # opened and never written to (no audio reached the desk): a header of an empty WAV
    silent_sip = tmp_path / "no-audio"
    dec = write_call(silent_sip, EST_S, np.zeros(0))
    r = measure_recording(closed_call(5.0), silent_sip, settle_s=0.2)
    assert r.samples is None and str(dec) in (r.reason or "") and "holds no audio" in (r.reason or "")
    text = warned(warnings_of_far_end)
    assert text.count("far end not measured") == 6, text
    assert "Traceback" not in text


def test_meter_in_the_background_and_the_call_meter_waits_for_it(tmp_path: Path) -> None:
    write_call(tmp_path, EST_S, np.zeros(6 * RATE))
    fem = FarEndMeter(tmp_path, settle_s=0.5)
    call = closed_call(6.0)
    meter = CallMeter()
    meter.call(call)
    assert fem.submit(call)
    meter.expect_far_end("c1")
    own = [(EST_MS + i * 100, False) for i in range(70)]
    for t, a in own:
        meter.speech(t, a)
    # the speech has caught up, but the far end is not in yet: held (not measured as null)
    assert meter.finished(now_ms=EST_MS + 9000) == []
    (res,) = fem.drain(10.0)
    meter.far_end_call(res.call_id, res.samples)
    (m,) = meter.finished(now_ms=EST_MS + 9000)
    assert m.silent_call is True and m.far_talk_s == 0.0
    # a far end that never comes: measured without it once far_wait_ms has passed
    meter.call(closed_call(6.0, "c2"))
    meter.expect_far_end("c2")
    assert meter.finished(now_ms=EST_MS + 6000 + meter.far_wait_ms - 1) == []
    (m2,) = meter.finished(now_ms=EST_MS + 6000 + meter.far_wait_ms)
    assert m2.silent_call is None and m2.far_talk_s is None


# --- config ------------------------------------------------------------------------------------------------


def test_config_far_end_dir_is_validated_naming_the_field(tmp_path: Path) -> None:
    base = {"desk": {"site": "s1", "desk": "d1"}}
    (tmp_path / "calls").mkdir()
    cfg = build({**base, "calls": {"source": "baresip", "far_end_dir": "calls"}}, base_dir=tmp_path)
    assert cfg.calls.far_end_dir == str(tmp_path / "calls") and cfg.calls.keep_far_end_audio is False
    assert build(base).calls.far_end_dir is None
    for table, needle in [({"source": "gpio", "far_end_dir": str(tmp_path)}, "calls.far_end_dir: needs calls.source baresip"),
                          ({"source": "baresip", "far_end_dir": str(tmp_path / "nope")}, "calls.far_end_dir: no such folder"),
                          ({"source": "baresip", "far_end_dir": 3}, "calls.far_end_dir: must be a non-empty string"),
                          ({"source": "baresip", "keep_far_end_audio": "no"}, "calls.keep_far_end_audio: must be true or false")]:
        with pytest.raises(ConfigError) as err:
            build({**base, "calls": table}, base_dir=tmp_path)
        assert needle in str(err.value), str(err.value)


def test_the_meter_loads_the_analyser_when_it_starts_not_at_the_first_hang_up(tmp_path: Path) -> None:
    """In a fresh interpreter (as the desk agent is), the meter's start loads what measuring an 8 kHz
    recording needs (scipy.signal for the resampler): a cold import took 1.3-3.6 s here, and at the first
    hang-up it delayed that call's summary (the baresip system test's second call started late)."""
    import subprocess
    import sys

    code = ("import sys, time\n"
            "from pathlib import Path\n"
            "from device.calls.far_end import FarEndMeter\n"
            "assert 'scipy.signal' not in sys.modules\n"
            f"meter = FarEndMeter(Path({str(tmp_path)!r}))\n"
            "assert meter.drain(30.0) == []\n"
            "print('scipy.signal' in sys.modules)\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60,
                         cwd=Path(__file__).resolve().parents[3])
    assert out.returncode == 0 and out.stdout.strip() == "True", (out.stdout, out.stderr)
