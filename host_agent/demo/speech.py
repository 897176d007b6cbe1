"""Demo speech: Mandarin call-centre lines spoken by espeak-ng, mixed into 2-channel headset audio.

Channel 0 is the boom mic, channel 1 the outward-facing ear-cup mic (see ARCHITECTURE.md). Own
voice reaches the boom at ``distance_cm`` and the ear cup at about 12 cm behind a head shadow, so
the boom-minus-ear-cup level difference falls as the boom moves away (near-field 1/r law).
Neighbours and floor noise reach both mics at about the same level.

Units: sample rate in Hz, distances in cm, gains and levels in dB.
"""

from __future__ import annotations

import hashlib
import shutil
import subprocess
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import soundfile as sf
from scipy.signal import lfilter, resample_poly

from host_agent.errors import HostError

RATE_HZ = 16_000
EAR_CUP_CM = 12.0
HEAD_SHADOW_DB = 4.0

# Lines of a Mandarin service call, as tone-numbered pinyin (one syllable a word) for espeak-ng's
# cmn-latn-pinyin voice: it reads pinyin as Mandarin.
AGENT_LINES = (
    "nin2 hao3, huan1 ying2 zhi4 dian4 ke4 hu4 fu2 wu4 zhong1 xin1, qing3 wen4 you3 shen2 me5 ke3 yi3 bang1 nin2",
    "qing3 nin2 shao1 deng3, wo3 ma3 shang4 wei4 nin2 cha2 xun2 yi2 xia4 zhang4 dan1 de5 qing2 kuang4",
    "gan3 xie4 nin2 de5 nai4 xin1 deng3 dai4, nin2 de5 wen4 ti2 yi3 jing1 chu3 li3 hao3 le5",
    "hai2 you3 qi2 ta1 wo3 ke3 yi3 bang1 zhu4 nin2 de5 ma5, zhu4 nin2 sheng1 huo2 yu2 kuai4",
)
NEIGHBOUR_LINES = (
    "ni3 hao3, zhe4 li3 shi4 ke4 fu2 zhong1 xin1, qing3 shuo1 chu1 nin2 de5 ding4 dan1 hao4 ma3",
    "hao3 de5, wo3 ming2 bai2 le5, wo3 men5 hui4 jin3 kuai4 an1 pai2 ji4 shu4 ren2 yuan2 shang4 men2",
)


BUNDLED_DIR = Path(__file__).parent / "clips"
"""Small FLAC clips of every line the demo speaks, used when espeak-ng is not installed."""


def clip_name(text: str, speed_wpm: int, voice: str, pitch: int) -> str:
    key = hashlib.sha256(repr((voice, text, speed_wpm, pitch)).encode()).hexdigest()[:16]
    return f"clip-{key}.flac"


def speak(text: str, speed_wpm: int, voice: str = "cmn-latn-pinyin", pitch: int = 50) -> np.ndarray:
    """Speak ``text`` with espeak-ng; mono float32 at 16 kHz, peak-normalised to 0.5.

    Without espeak-ng, the bundled clip of the same line is used; a line with no bundled clip
    raises :class:`HostError`.
    """
    exe = shutil.which("espeak-ng")
    if exe is None:
        bundled = BUNDLED_DIR / clip_name(text, speed_wpm, voice, pitch)
        if not bundled.exists():
            raise HostError("espeak-ng is not installed (apt-get install espeak-ng), and no bundled clip "
                            f"has the line {text[:30]!r}... at {speed_wpm} wpm")
        clip: np.ndarray = sf.read(bundled, dtype="float32")[0]
        return clip
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "s.wav"
        subprocess.run([exe, "-v", voice, "-s", str(speed_wpm), "-p", str(pitch), "-w", str(out), text],
                       check=True, capture_output=True)
        audio, rate = sf.read(out, dtype="float32")
    if rate != RATE_HZ:
        audio = resample_poly(audio, RATE_HZ, rate).astype(np.float32)
    peak = float(np.max(np.abs(audio))) or 1.0
    spoken: np.ndarray = (0.5 * audio / peak).astype(np.float32)
    return spoken


@dataclass(frozen=True)
class Segment:
    """A stretch of one desk's audio: the agent talking (``say``) or listening (silence, ``pause_s``)."""

    say: str = ""
    pause_s: float = 0.0
    speed_wpm: int = 150
    gain_db: float = 0.0
    distance_cm: float = 5.0


def _db(x: float) -> float:
    return float(10.0 ** (x / 20.0))


def render_desk_audio(segments: Sequence[Segment], *, seed: int, neighbours: bool = True,
                      noise_dbfs: float = -62.0, ear_gain_db: float = -1.5) -> np.ndarray:
    """Render a scenario to ``(n, 2)`` float32 at 16 kHz: boom and ear-cup channels.

    Own voice is at -26 dBov-ish on the boom at 5 cm and 0 dB gain; ``gain_db`` raises or lowers it,
    ``distance_cm`` moves the boom (1/r). Two neighbours talk at about 1.3 m, equal on both mics.
    """
    rng = np.random.default_rng(seed)
    boom_parts: list[np.ndarray] = []
    ear_parts: list[np.ndarray] = []
    shadow_b = np.array([0.6, 0.4])  # a gentle low-pass: the head shadows high frequencies
    for seg in segments:
        if seg.say:
            voice = speak(seg.say, seg.speed_wpm) * _db(seg.gain_db - 8.0)
            boom = voice * (5.0 / seg.distance_cm)
            ear = lfilter(shadow_b, [1.0], voice) * (5.0 / EAR_CUP_CM) * _db(-HEAD_SHADOW_DB + ear_gain_db)
            boom_parts.append(boom.astype(np.float32))
            ear_parts.append(ear.astype(np.float32))
        if seg.pause_s > 0:
            n = int(seg.pause_s * RATE_HZ)
            boom_parts.append(np.zeros(n, np.float32))
            ear_parts.append(np.zeros(n, np.float32))
    boom_all = np.concatenate(boom_parts)
    ear_all = np.concatenate(ear_parts)
    n = len(boom_all)
    if neighbours:
        babble = np.zeros(n, np.float32)
        for i, line in enumerate(NEIGHBOUR_LINES):
            voice = speak(line, 160, pitch=30 + 30 * i) * _db(-30.0)
            start = int(rng.integers(0, max(1, n // 3)))
            while start < n:
                end = min(n, start + len(voice))
                babble[start:end] += voice[: end - start]
                start = end + int(rng.uniform(1.0, 4.0) * RATE_HZ)
        boom_all = boom_all + babble
        ear_all = ear_all + babble * _db(0.5)
    noise = rng.standard_normal((n, 2)).astype(np.float32) * _db(noise_dbfs)
    out = np.stack([boom_all, ear_all], axis=1) + noise
    clipped: np.ndarray = np.clip(out, -1.0, 1.0).astype(np.float32)
    return clipped


def recipe_key(segments: Sequence[Segment], seed: int) -> str:
    """A short hash naming a rendered scenario, so generated audio is cached across runs."""
    text = repr((tuple(segments), seed, RATE_HZ, HEAD_SHADOW_DB, EAR_CUP_CM))
    return hashlib.sha256(text.encode()).hexdigest()[:12]


def write_flac(path: Path, audio: np.ndarray) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp.flac")
    sf.write(tmp, audio, RATE_HZ, subtype="PCM_16")
    tmp.replace(path)
    return path
