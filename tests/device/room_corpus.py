"""Test corpora for the speech DSP: espeak-ng speech placed in simulated rooms (pyroomacoustics).

Recipes, not audio: everything is generated from text, voices, geometry and a seed, and cached
under ``$XDG_CACHE_HOME/headset-coach/test-corpus`` (or a directory the caller gives).

The headset scene (see ../shared/design/TESTING.md): the wearer's mouth is a point source
``distance_cm`` from the boom mic (channel 0) and about 12 cm from the outward-facing ear-cup
mic (channel 1); image-source room impulse responses give both the direct path (1/r) and the
room. pyroomacoustics has no head, so the own voice at the ear cup goes through a per-headset
head-shadow filter (broadband loss plus a high-frequency shelf), and the ear channel gets a mic
gain mismatch. A floor adds neighbours talking 1-1.6 m away, the customer's voice leaking from
the ear speaker into the ear-cup mic (telephone band 300-3400 Hz), and noise on both mics.

Units: seconds, cm or m as named, dB, 16 kHz float samples (1.0 = full scale).
"""

from __future__ import annotations

import hashlib
import subprocess
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import soundfile as sf
from scipy.signal import butter, lfilter, resample_poly, sosfilt

from device.dsp import HeadsetCalibration
from host_agent.demo.audio import cache_dir as demo_cache_dir
from tests import real_parts
from tests.device.helpers import at_snr

RATE_HZ = 16_000
HOP = 160
EAR_CUP_CM = 12.0

# Mandarin lines as tone-numbered pinyin for espeak-ng's cmn-latn-pinyin voice (one syllable a word)
MANDARIN_LINES = (
    "nin2 hao3, wo3 shi4 ke4 fu2 xiao3 wang2, qing3 wen4 you3 shen2 me5 ke3 yi3 bang1 nin2",
    "qing3 nin2 shao1 deng3 yi2 xia4, wo3 ma3 shang4 wei4 nin2 cha2 xun2",
    "nin2 de5 ding4 dan1 yi3 jing1 fa1 huo4 le5, ming2 tian1 jiu4 neng2 dao4",
    "fei1 chang2 bao4 qian4 gei3 nin2 dai4 lai2 bu4 bian4",
    "hai2 you3 qi2 ta1 wen4 ti2 ma5, zhu4 nin2 sheng1 huo2 yu2 kuai4",
    "zhe4 ge4 wen4 ti2 wo3 men5 hui4 zai4 san1 tian1 nei4 chu3 li3 hao3",
)
NEIGHBOUR_LINES = (
    ("en-us", "thank you for calling, how can I help you today"),
    ("cmn-latn-pinyin", "ni3 hao3, qing3 gao4 su4 wo3 nin2 de5 shou3 ji1 hao4 ma3"),
    ("en-us", "let me check that order for you, one moment please"),
    ("cmn-latn-pinyin", "hao3 de5, wo3 men5 ma3 shang4 an1 pai2 ren2 yuan2"),
)
CUSTOMER_LINES = (
    ("en-us", "yes hello, I have a question about my bill"),
    ("cmn-latn-pinyin", "wo3 xiang3 wen4 yi2 xia4 wo3 de5 zhang4 dan1"),
)


def cache_dir() -> Path:
    """The test corpora's audio cache (``$XDG_CACHE_HOME/headset-coach/test-corpus``)."""
    return demo_cache_dir("test-corpus")


def speak(text: str, voice: str = "cmn-latn-pinyin", speed: int = 150, pitch: int = 50,
          directory: Path | None = None) -> np.ndarray:
    """espeak-ng speech at 16 kHz, float64, RMS-normalised to -26 dBFS over its active part; cached."""
    directory = directory or cache_dir()
    key = hashlib.sha256(repr((voice, text, speed, pitch, RATE_HZ)).encode()).hexdigest()[:16]
    path = directory / f"espeak-{key}.flac"
    if not path.exists():
        real_parts.require("espeak-ng")
        directory.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryDirectory() as tmp:
            wav = Path(tmp) / "s.wav"
            subprocess.run(["espeak-ng", "-v", voice, "-s", str(speed), "-p", str(pitch), "-w", str(wav), text],
                           check=True, capture_output=True)
            audio, rate = sf.read(wav, dtype="float64")
        if rate != RATE_HZ:
            audio = resample_poly(audio, RATE_HZ, rate)
        tmp_path = path.with_suffix(".tmp.flac")
        sf.write(tmp_path, audio / (np.max(np.abs(audio)) or 1.0) * 0.5, RATE_HZ, subtype="PCM_24")
        tmp_path.replace(path)
    x: np.ndarray = sf.read(path, dtype="float64")[0]
    active = x[np.abs(x) > 1e-3]
    rms = float(np.sqrt(np.mean(active ** 2))) if active.size else 1.0
    return x * (10 ** (-26 / 20) / rms)


def own_speech_truth_s(dry: np.ndarray, max_gap_s: float = 0.3, below_peak_db: float = 40.0) -> float:
    """Seconds of speech in a dry (noise-free) own-voice track: 10 ms hops within ``below_peak_db``
    of the loudest hop, with gaps shorter than ``max_gap_s`` bridged (the analyser's definition)."""
    n = dry.size // HOP
    lv = 10 * np.log10(np.mean(dry[: n * HOP].reshape(n, HOP) ** 2, axis=1) + 1e-20)
    active = np.flatnonzero(lv > lv.max() - below_peak_db)
    if active.size == 0:
        return 0.0
    gaps = np.diff(active) - 1
    bridged = int(np.sum(gaps[(gaps > 0) & (gaps < round(max_gap_s * RATE_HZ / HOP))]))
    return (active.size + bridged) * HOP / RATE_HZ


@dataclass(frozen=True)
class Headset:
    """One headset's acoustics: head shadow of own voice at the ear cup and mic gain mismatch (dB)."""

    shadow_db: float = 4.0
    """Broadband loss of own voice at the ear cup behind the head."""
    shadow_hf_db: float = 8.0
    """Extra loss above ``shadow_fc_hz`` (a first-order high shelf)."""
    shadow_fc_hz: float = 1500.0
    ear_gain_db: float = 0.0
    """Ear-cup mic gain relative to the boom mic."""

    def shadow(self, x: np.ndarray) -> np.ndarray:
        b_lo, a_lo = butter(1, self.shadow_fc_hz, "low", fs=RATE_HZ)
        b_hi, a_hi = butter(1, self.shadow_fc_hz, "high", fs=RATE_HZ)
        y = lfilter(b_lo, a_lo, x) + 10 ** (-self.shadow_hf_db / 20) * lfilter(b_hi, a_hi, x)
        out: np.ndarray = y * 10 ** (-self.shadow_db / 20)
        return out

    @staticmethod
    def random(rng: np.random.Generator) -> Headset:
        return Headset(shadow_db=float(rng.uniform(3.0, 6.0)), shadow_hf_db=float(rng.uniform(6.0, 12.0)),
                       shadow_fc_hz=float(rng.uniform(1000.0, 2500.0)), ear_gain_db=float(rng.uniform(-3.0, 3.0)))


@dataclass(frozen=True)
class Floor:
    """What the call-centre floor adds: neighbours, far-end leakage and noise."""

    neighbours: int = 2
    neighbour_distance_m: tuple[float, float] = (1.0, 1.6)
    neighbour_gain_db: float = 6.0
    """Neighbours' voices relative to the wearer's (they talk a bit louder, to their own mics)."""
    leak_dbfs: float | None = -42.0
    """RMS of the customer's voice leaking into the ear-cup mic (telephone band); None: none."""
    noise_dbfs: float = -55.0
    """RMS of the floor noise on each mic: pink (1/f, HVAC and crowd rumble), independent per mic."""
    self_noise_dbfs: float = -80.0
    """RMS of the mics' white self-noise."""
    rt60_s: float = 0.35


QUIET = Floor(neighbours=0, leak_dbfs=None, noise_dbfs=-65.0)


@dataclass
class Scene:
    """A rendered scene: ``audio`` ``(n, 2)`` plus the truth."""

    audio: np.ndarray
    own_speech_s: float
    distance_cm: float
    parts: dict[str, np.ndarray] = field(default_factory=dict)


def pink_noise(rng: np.random.Generator, n: int, channels: int) -> np.ndarray:
    """Independent unit-RMS pink (1/f power) noise per channel, 20 Hz .. 8 kHz."""
    spec = rng.standard_normal((n // 2 + 1, channels)) + 1j * rng.standard_normal((n // 2 + 1, channels))
    f = np.fft.rfftfreq(n, 1.0 / RATE_HZ)
    spec *= (1.0 / np.sqrt(np.maximum(f, 20.0)))[:, None]
    x = np.fft.irfft(spec, n, axis=0)
    out: np.ndarray = x / np.sqrt(np.mean(x ** 2, axis=0))
    return out


def keyboard_clicks(rng: np.random.Generator, n: int) -> np.ndarray:
    """Keyboard-like clicks at RATE_HZ: 12 ms bursts of noise decaying in 2 ms, 40 ms apart plus an
    exponential wait of 150 ms on average (about 5 a second), over a faint hiss (any RMS)."""
    x: np.ndarray = rng.standard_normal(n) * 0.01
    burst = int(0.012 * RATE_HZ)
    pos = 0
    while True:
        pos += int((0.04 + rng.exponential(0.15)) * RATE_HZ)
        if pos + burst >= n:
            break
        x[pos: pos + burst] += rng.standard_normal(burst) * np.exp(-np.arange(burst) / (0.002 * RATE_HZ))
    return x


def _sequence(clips: list[np.ndarray], rng: np.random.Generator, pause_s: tuple[float, float],
              lead_s: float = 0.5) -> np.ndarray:
    parts = [np.zeros(int(lead_s * RATE_HZ))]
    for c in clips:
        parts.append(c)
        parts.append(np.zeros(int(rng.uniform(*pause_s) * RATE_HZ)))
    return np.concatenate(parts)


def _fit(x: np.ndarray, n: int) -> np.ndarray:
    return np.pad(x, (0, max(0, n - x.size)))[:n]


def render_scene(own_dry: np.ndarray, distance_cm: float, headset: Headset, floor: Floor, seed: int,
                 directory: Path | None = None) -> Scene:
    """Place ``own_dry`` (the wearer's speech, 16 kHz) at the mouth with the boom ``distance_cm`` away
    and render the two headset channels with ``floor``'s additions."""
    import pyroomacoustics as pra

    rng = np.random.default_rng(seed)
    n = own_dry.size
    room_dim = [6.0, 5.0, 3.0]
    e_abs, max_order = pra.inverse_sabine(floor.rt60_s, room_dim)
    max_order = min(max_order, 12)
    head = np.array([2.5, 2.2, 1.2])
    mouth = head + np.array([0.09, 0.0, 0.0])
    ang = np.deg2rad(rng.uniform(20.0, 40.0))
    boom = mouth + distance_cm / 100.0 * np.array([np.cos(ang), np.sin(ang), -0.1]) / np.linalg.norm(
        [np.cos(ang), np.sin(ang), -0.1])
    ear_dir = np.array([-0.75, 0.66, 0.05])
    ear = mouth + EAR_CUP_CM / 100.0 * ear_dir / np.linalg.norm(ear_dir)
    mics = np.stack([boom, ear], axis=1)

    def simulate(sources: list[tuple[np.ndarray, np.ndarray]]) -> np.ndarray:
        room = pra.ShoeBox(room_dim, fs=RATE_HZ, materials=pra.Material(e_abs), max_order=max_order)
        for pos, sig in sources:
            room.add_source(pos, signal=sig)
        room.add_microphone_array(mics)
        room.simulate()
        sig_out: np.ndarray = room.mic_array.signals
        return np.stack([_fit(sig_out[0], n), _fit(sig_out[1], n)], axis=1)

    # pyroomacoustics' direct path is 1/r (r in m): own voice at 5 cm keeps its dry level
    ref = 0.05
    own = simulate([(mouth, own_dry)]) * ref
    own[:, 1] = headset.shadow(own[:, 1])
    out = own.copy()
    parts = {"own": own.copy()}
    if floor.neighbours:
        srcs = []
        for i in range(floor.neighbours):
            clips = [speak(t, v, speed=int(rng.integers(140, 180)), pitch=int(rng.integers(30, 70)),
                           directory=directory) for v, t in NEIGHBOUR_LINES[i % 2::2]]
            track = _fit(_sequence(clips * 4, rng, (0.5, 2.5), lead_s=float(rng.uniform(0.0, 2.0))), n)
            r = rng.uniform(*floor.neighbour_distance_m)
            a = rng.uniform(0, 2 * np.pi)
            pos = head + np.array([r * np.cos(a), r * np.sin(a), rng.uniform(-0.1, 0.2)])
            srcs.append((pos, track * 10 ** (floor.neighbour_gain_db / 20)))
        nb = simulate(srcs) * ref
        parts["neighbours"] = nb
        out += nb
    if floor.leak_dbfs is not None:
        clips = [speak(t, v, speed=150, pitch=60, directory=directory) for v, t in CUSTOMER_LINES]
        track = _fit(_sequence(clips * 4, rng, (1.0, 4.0), lead_s=float(rng.uniform(0.5, 3.0))), n)
        tel = sosfilt(butter(4, [300.0, 3400.0], "band", fs=RATE_HZ, output="sos"), track)
        active = tel[np.abs(tel) > 1e-4]
        rms = float(np.sqrt(np.mean(active ** 2))) if active.size else 1.0
        leak = tel / rms * 10 ** (floor.leak_dbfs / 20)
        parts["leak"] = leak
        out[:, 1] += leak
    out += pink_noise(rng, n, 2) * 10 ** (floor.noise_dbfs / 20)
    out += rng.standard_normal((n, 2)) * 10 ** (floor.self_noise_dbfs / 20)
    out[:, 1] *= 10 ** (headset.ear_gain_db / 20)
    return Scene(np.clip(out, -1.0, 1.0), own_speech_truth_s(own_dry), distance_cm, parts)


def own_track(rng: np.random.Generator, lines: int = 4, voice: str = "cmn-latn-pinyin",
              pause_s: tuple[float, float] = (0.8, 2.0), directory: Path | None = None) -> np.ndarray:
    """The wearer's speech: ``lines`` Mandarin lines with pauses, float64 at 16 kHz."""
    idx = rng.choice(len(MANDARIN_LINES), size=lines, replace=lines > len(MANDARIN_LINES))
    clips = [speak(MANDARIN_LINES[i], voice, speed=int(rng.integers(130, 190)), directory=directory) for i in idx]
    return _sequence(clips, rng, pause_s)


def calibrated_headsets(seed: int, directory: Path) -> list[tuple[Headset, HeadsetCalibration, np.ndarray]]:
    """Two random headsets, each calibrated at 5 cm in a quiet room, with the wearer's test speech
    (16 kHz): what tests/device/dsp/test_rooms.py and bench/accuracy.py measure distance on."""
    from device.dsp import calibrate

    rng = np.random.default_rng(seed)
    out = []
    for k in range(2):
        hs = Headset.random(rng)
        cal_speech = own_track(rng, lines=3, directory=directory)
        scene = render_scene(cal_speech, 5.0, hs, QUIET, seed=seed + k)
        cal = calibrate(scene.audio, RATE_HZ, 5.0, model=f"sim-{k}")
        out.append((hs, cal, own_track(rng, lines=3, directory=directory)))
    return out


def neighbour_scene(seed: int, directory: Path) -> tuple[Scene, np.ndarray]:
    """The wearer's own speech at 5 cm with two neighbours talking, and the same neighbours with
    pink noise at -55 dBov but no own speech (16 kHz, 2 channels): what test_rooms.py and
    bench/accuracy.py measure own-voice speech time on."""
    rng = np.random.default_rng(seed + 7)
    own = own_track(rng, lines=5, directory=directory)
    scene = render_scene(own, 5.0, Headset.random(rng), Floor(neighbours=2), seed=seed + 8, directory=directory)
    alone = scene.parts["neighbours"] + pink_noise(rng, own.size, 2) * 10 ** (-55 / 20)
    return scene, alone


@dataclass
class PauseScene:
    """The wearer talking with pauses (5 Mandarin lines, 0.8-2 s apart) at 5 cm in a quiet room, and two
    noises to add to it (2 channels, as the headset hears them): ``babble`` (8 neighbours talking 1-2 m
    away) and ``pink`` (stationary, independent per mic); ``level_dbov`` is the boom's P.56 level of the
    own speech, the reference of an SNR."""

    own: Scene
    babble: np.ndarray
    pink: np.ndarray
    level_dbov: float

    def at_snr(self, noise: str, snr_db: float) -> np.ndarray:
        """The scene with ``noise`` ("babble" or "pink") ``snr_db`` under the own speech's level at the boom."""
        return at_snr(self.own.audio, self.babble if noise == "babble" else self.pink, self.level_dbov, snr_db)


def pause_scene(seed: int, directory: Path) -> PauseScene:
    """A :class:`PauseScene`: what tests/device/dsp/test_vad_pauses.py and bench/accuracy.py (``pauses``)
    measure own-voice speech time on, in noise, with pauses as a conversation has them."""
    from device.dsp.p56 import p56_level

    rng = np.random.default_rng(100 + seed)
    hs = Headset.random(rng)
    own = own_track(rng, lines=5, directory=directory)
    scene = render_scene(own, 5.0, hs, Floor(neighbours=0, leak_dbfs=None, noise_dbfs=-70.0), seed=200 + seed,
                         directory=directory)
    crowd = Floor(neighbours=8, neighbour_distance_m=(1.0, 2.0), leak_dbfs=None, noise_dbfs=-100.0,
                  self_noise_dbfs=-120.0)
    babble = render_scene(np.zeros_like(own), 5.0, hs, crowd, seed=300 + seed, directory=directory).audio
    pink = pink_noise(rng, own.size, 2)
    pink[:, 1] *= 10 ** (hs.ear_gain_db / 20)
    level = p56_level(scene.audio[:, 0], RATE_HZ)
    assert level is not None
    return PauseScene(scene, babble, pink, level.level_dbov)
