"""The live capture path for real: sounddevice -> PortAudio -> ALSA, with ALSA's ``file`` plugin as
the microphone (no sound card, no /dev/snd; see ../shared/design/TESTING.md).

The plugin reads raw interleaved samples in the stream's own format (float32, 2 channels, 16 kHz,
as the agent opens it) from ``infile``; at the end of that file it hands back its stale periods,
which the agent must recognise as an ended or stuck input. Removing ``infile`` makes the device
vanish (opening it fails); putting it back makes it reappear. Every process gets the ALSA
configuration through ``ALSA_CONFIG_PATH``, so PortAudio sees it when it starts.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from mqtt_schema import Metrics, State
from tests.conftest import Mosquitto
from tests.device.helpers import ROOT, Agent, Capture, two_channel_speech, wait_for

pytestmark = pytest.mark.needs("portaudio", "mosquitto")
SITE, DESK = "lab", "desk-alsa"
DEVICE = "hscfile"


class AlsaFileMic:
    """An ALSA PCM ``hscfile`` that captures from ``infile`` (float32 LE, 2 channels, 16 kHz)."""

    def __init__(self, folder: Path, speech: Path) -> None:
        audio, rate = sf.read(speech, dtype="float32", always_2d=True)
        assert rate == 16000 and audio.shape[1] == 2
        self.samples = audio
        self.infile = folder / "capture.raw"
        self.write()
        self.conf = folder / "asound.conf"
        self.conf.write_text(f"""pcm.{DEVICE} {{
  type file
  slave.pcm "null"
  file "/dev/null"
  infile "{self.infile}"
  format "raw"
  hint {{ show on description "headset coach test capture (ALSA file plugin)" }}
}}
""", encoding="utf-8")
        self.env = {**os.environ, "ALSA_CONFIG_PATH": f"/usr/share/alsa/alsa.conf:{self.conf}"}

    def write(self) -> None:
        self.samples.astype("<f4").tofile(self.infile)

    def vanish(self) -> None:
        self.infile.unlink()


@pytest.fixture
def mic(tmp_path: Path) -> AlsaFileMic:
    speech = two_channel_speech(tmp_path / "speech.wav", seconds=8.0)
    return AlsaFileMic(tmp_path, speech)


@pytest.fixture
def long_mic(tmp_path: Path) -> AlsaFileMic:
    """14 s of speech: the agent sees the file once (after the end, a reopened device hands back only its
    stale periods), and its first level and rate come about 6 s in, so 8 s left 2 s of margin: once, in a
    loaded CI run, the rate had not come when the input ended."""
    speech = two_channel_speech(tmp_path / "speech.wav", seconds=14.0)
    return AlsaFileMic(tmp_path, speech)


READ_UNTIL_ERROR = """
import sys, numpy as np
from device.inputs.audio_sources import AlsaSource
from device.errors import AudioError
src = AlsaSource(sys.argv[1], block_ms=50)
src.open()
blocks = []
try:
    for _ in range(2000):
        blocks.append(src.read())
    print("no error after 2000 reads")
except AudioError as exc:
    print("ERROR", exc)
np.save(sys.argv[2], np.concatenate(blocks))
print("CHANNELS", src.channels)
src.close()
try:
    AlsaSource("no-such-mic").open()
except AudioError as exc:
    print("MISSING", exc)
"""


def test_the_alsa_source_reads_the_devices_samples_exactly_and_names_an_ended_input(
        mic: AlsaFileMic, tmp_path: Path) -> None:
    out = tmp_path / "read.npy"
    res = subprocess.run([sys.executable, "-c", READ_UNTIL_ERROR, DEVICE, str(out)], env=mic.env, cwd=ROOT,
                         capture_output=True, text=True, timeout=60)
    assert res.returncode == 0, res.stderr
    lines = dict(line.split(" ", 1) for line in res.stdout.strip().splitlines())
    assert lines["CHANNELS"] == "2"
    assert "alsa:hscfile repeats the same samples" in lines["ERROR"] and "ended" in lines["ERROR"]
    assert "cannot open audio device alsa:no-such-mic" in lines["MISSING"]
    got = np.load(out)
    n = mic.samples.shape[0]
    assert got.shape[0] >= n  # every sample of the input, then the stale periods that stopped it
    np.testing.assert_array_equal(got[:n], mic.samples)  # bit for bit: float32 end to end
    # the stale tail is short: the error came within FROZEN_READS (+ the periods it cycles through)
    assert got.shape[0] - n <= (8 + 4) * 800


def test_selftest_reads_the_mic_and_reports_its_levels(mic: AlsaFileMic) -> None:
    res = subprocess.run([sys.executable, "-m", "device.cli", "selftest", "--audio", f"alsa:{DEVICE}", "--mock-gpio",
                          "--headset", "none", "--step-s", "0.01", "--broker", "mqtt://127.0.0.1:1"],
                         env=mic.env, cwd=ROOT, capture_output=True, text=True, timeout=60)
    mic_line = next(line for line in res.stdout.splitlines() if line.startswith("mic"))
    assert "PASS" in mic_line and "2 ch at 16000 Hz" in mic_line, res.stdout
    levels = [float(v) for v in re.findall(r"ch\d (-?[\d.]+) dBFS", mic_line)]
    assert len(levels) == 2, mic_line
    assert -30 < levels[0] < -15 and levels[1] == pytest.approx(levels[0] - 10, abs=1.5)  # the ear cup 10 dB down
    mic.vanish()
    res = subprocess.run([sys.executable, "-m", "device.cli", "selftest", "--audio", f"alsa:{DEVICE}", "--mock-gpio",
                          "--headset", "none", "--step-s", "0.01", "--broker", "mqtt://127.0.0.1:1"],
                         env=mic.env, cwd=ROOT, capture_output=True, text=True, timeout=60)
    mic_line = next(line for line in res.stdout.splitlines() if line.startswith("mic"))
    assert "FAIL" in mic_line and "alsa:hscfile" in mic_line and res.returncode == 1


def test_agent_measures_live_capture_and_recovers_when_the_input_ends_or_the_device_vanishes(
        long_mic: AlsaFileMic, mosquitto: Mosquitto, tmp_path: Path) -> None:
    mic = long_mic
    cap = Capture(mosquitto.port, SITE)
    log = tmp_path / "agent.log"
    flags = ["--site", SITE, "--desk", DESK, "--broker", mosquitto.url, "--audio", f"alsa:{DEVICE}", "--mock-gpio",
             "--headset", "none", "--state-dir", str(tmp_path / "state")]
    agent = Agent(flags, log)  # ``headset-agent run`` as a real process, with the ALSA configuration
    with log.open("ab") as out:
        agent.proc = subprocess.Popen(agent.args, stdout=out, stderr=out, stdin=subprocess.DEVNULL, cwd=ROOT,
                                      env=mic.env)
    try:
        birth = wait_for(lambda: cap.of(State, lambda s: s.status.value == "online"), 20, "birth")[0]
        assert "dual-mic" in birth.capabilities  # two channels opened: boom and ear cup
        # the live measures come from the captured speech (the demo's Mandarin, boom at about -22 dBov)
        measured = wait_for(lambda: cap.of(Metrics, lambda m: m.level_dbov is not None and m.rate_spm is not None),
                            20, "metrics with a level and a rate")[0]
        assert -30 < measured.level_dbov < -15 and 60 < measured.rate_spm < 400
        # the end of the input: audio_error naming it, then the agent reopens the device after its backoff
        errors = wait_for(lambda: cap.events("audio_error"), 20, "audio_error")
        assert "repeats the same samples" in errors[0].message
        oks = wait_for(lambda: cap.events("audio_ok"), 20, "audio_ok")
        assert oks[0].ts - errors[0].ts >= 450  # AUDIO_RETRY_MIN_S = 0.5 s of backoff
        # the device vanishes: its input ends once more, and reopening it fails, retried with a growing
        # backoff; the agent stays up and says nothing new until the device is back
        n_err = len(cap.events("audio_error"))
        mic.vanish()
        wait_for(lambda: len(cap.events("audio_error")) > n_err, 20, "audio_error after the device vanished")
        n_ok = len(cap.events("audio_ok"))
        time.sleep(2.5)  # retries at 0.5, 1 and 2 s against the missing device
        assert agent.proc.poll() is None, "the agent died with its microphone"
        assert len(cap.events("audio_ok")) == n_ok
        state = cap.of(State)[-1]
        assert state.audio.value == "error"
        # it comes back: the agent finds it again (PortAudio's device list is read again) and measures
        mic.write()
        wait_for(lambda: len(cap.events("audio_ok")) > n_ok, 30, "audio_ok after the device came back")
        assert agent.terminate() == 0
    finally:
        agent.stop()
        cap.close()
