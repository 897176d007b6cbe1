"""Real parts for the agent tests: a two-channel speech file, a capturing MQTT subscriber, the agent process."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import paho.mqtt.client as mqtt
import soundfile as sf
from paho.mqtt.enums import CallbackAPIVersion

from mqtt_schema import Event, decode_topic
from tests.waiting import wait_for as wait_for  # re-exported: the device tests import it from here

ROOT = Path(__file__).resolve().parents[2]
CLIPS = ROOT / "host_agent" / "demo" / "clips"


def pink_noise(n: int, rng: np.random.Generator) -> np.ndarray:
    """Pink (1/f power) noise without DC: white noise shaped in the frequency domain (any RMS)."""
    spec = np.fft.rfft(rng.standard_normal(n))
    f = np.fft.rfftfreq(n)
    spec[1:] /= np.sqrt(f[1:] / f[1])
    spec[0] = 0.0
    noise: np.ndarray = np.fft.irfft(spec, n)
    return noise


def at_snr(speech: np.ndarray, noise: np.ndarray, level_dbov: float, snr_db: float) -> np.ndarray:
    """``speech`` plus ``noise`` scaled so that its power (channel 0's, for 2-D noise: the boom) sits
    ``snr_db`` under the speech's P.56 active level ``level_dbov``."""
    ref = noise if noise.ndim == 1 else noise[:, 0]
    gain = 10 ** ((level_dbov - snr_db - 10 * np.log10(float(np.mean(ref**2)))) / 20)
    out: np.ndarray = speech + gain * noise
    return out


def room_pair(x: np.ndarray, rate: int, seed: int = 3) -> np.ndarray:
    """``x`` as two microphones 1-2 m away in a room hear it: each through its own reverberant response
    (an exponentially decaying noise tail, RT60 0.4 s, after a direct path), about equally loud."""
    rng = np.random.default_rng(seed)
    n = int(0.4 * rate)
    decay = np.exp(-6.9 * np.arange(n) / n)  # -60 dB over the RT60
    out = []
    for delay in (int(0.003 * rate), int(0.005 * rate)):
        h = rng.standard_normal(n) * decay * 0.08
        h[:delay] = 0.0
        h[delay] = 1.0
        out.append(np.convolve(x, h)[: x.size])
    pair: np.ndarray = np.stack(out, axis=1)
    scaled: np.ndarray = pair / np.max(np.abs(pair)) * 0.5
    return scaled


def two_channel_speech(path: Path, seconds: float = 20.0, ear_db: float = -10.0) -> Path:
    """Speech clips (the demo's bundled espeak-ng Mandarin) as boom = speech, ear cup = speech
    ``ear_db`` lower, both with a little noise: own voice, as the two mics of a worn headset hear it."""
    rng = np.random.default_rng(7)
    parts: list[np.ndarray] = []
    total = 0
    for clip in sorted(CLIPS.glob("*.flac")):
        x, sr = sf.read(clip, dtype="float32", always_2d=True)
        assert sr == 16000
        parts += [x[:, 0], np.zeros(int(0.4 * sr), np.float32)]
        total += len(x) + int(0.4 * sr)
        if total >= seconds * 16000:
            break
    speech = np.concatenate(parts)
    boom = speech + rng.normal(0, 1e-3, len(speech)).astype(np.float32)  # mic and room noise, about -60 dBov
    ear = speech * 10 ** (ear_db / 20) + rng.normal(0, 1e-3, len(speech)).astype(np.float32)
    sf.write(path, np.stack([boom, ear], axis=1), 16000, subtype="PCM_16")
    return path


class Capture:
    """A subscriber on every topic of a site, with a persistent session (QoS 1 survives broker restarts)."""

    def __init__(self, port: int, site: str, client_id: str = "test-capture") -> None:
        self.messages: list[tuple[str, Any, bool]] = []
        self.raw_events = 0
        self._lock = threading.Lock()
        self.site = site
        self.client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=client_id, clean_session=False,
                                  protocol=mqtt.MQTTv311)
        self.client.on_connect = self._on_connect
        self.client.on_message = self._on_message
        self.client.reconnect_delay_set(0.2, 1)  # type: ignore[arg-type]  # seconds; paho takes floats, its hint says int
        self.client.connect("127.0.0.1", port)
        self.client.loop_start()
        wait_for(lambda: self.client.is_connected(), 5, "subscriber connect")

    def _on_connect(self, client: mqtt.Client, userdata: Any, flags: Any, reason: Any, props: Any) -> None:
        client.subscribe(f"hsc/v1/{self.site}/#", qos=1)

    def _on_message(self, client: mqtt.Client, userdata: Any, msg: mqtt.MQTTMessage) -> None:
        if not msg.payload:
            return
        _, message = decode_topic(msg.topic, msg.payload)  # raises (and the test fails) on a bad payload
        with self._lock:
            self.messages.append((msg.topic, message, bool(msg.retain)))

    def of(self, kind: type, pred: Callable[[Any], bool] = lambda m: True) -> list[Any]:
        with self._lock:
            return [m for _, m, _ in self.messages if isinstance(m, kind) and pred(m)]

    def events(self, kind: str | None = None) -> list[Event]:
        return self.of(Event, lambda e: kind is None or e.kind.value == kind)

    def close(self) -> None:
        self.client.loop_stop()
        self.client.disconnect()


class Agent:
    """``headset-agent run`` as a real process; its stderr (JSON log lines) goes to ``log_path``."""

    def __init__(self, args: list[str], log_path: Path) -> None:
        self.args = [sys.executable, "-m", "device.cli", "run", *args]
        self.log_path = log_path
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> Agent:
        with self.log_path.open("ab") as log:
            self.proc = subprocess.Popen(self.args, stdout=log, stderr=log, stdin=subprocess.DEVNULL, cwd=ROOT)
        return self

    def logs(self) -> list[dict[str, Any]]:
        out = []
        for line in self.log_path.read_text(encoding="utf-8", errors="replace").splitlines():
            try:
                out.append(json.loads(line))
            except ValueError:
                out.append({"msg": line})
        return out

    def logged_events(self) -> list[dict[str, Any]]:
        return [r for r in self.logs() if r.get("msg") == "event"]

    def terminate(self, timeout_s: float = 20.0) -> int:
        assert self.proc is not None
        self.proc.send_signal(signal.SIGTERM)
        return self.proc.wait(timeout_s)

    def kill9(self) -> None:
        assert self.proc is not None
        self.proc.kill()
        self.proc.wait(10)

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(10)
