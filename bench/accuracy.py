"""The accuracy table of the headset coach: each measure against its reference, a peer beside it.

Prints a markdown table (the README's accuracy table is this output), then per-clip details;
``--json`` gives the same figures for machines. Progress goes to stderr.

Ours is measured only through the public paths, never re-implemented here:
``device.offline_analysis.analyze_file`` (the offline analyser: own-voice VAD, P.56 level, VAD-gated syllable
nuclei, as ``headset-agent analyze`` reports them) and the ``device.dsp`` API: ``p56.p56_level``
(ITU-T P.56 method B), ``syllables.detect_nuclei`` (the syllable-nucleus detector alone, after de
Jong & Wempe 2009), ``StreamingAnalyzer`` and ``calibrate`` (for arrays: simulated rooms and
generated signals).

Peers, on the same audio:
- syllables: de Jong & Wempe (2009) syllable nuclei on Praat's engine through praat-parselmouth
  (``bench/peer_dejong.py``), on channel 0 at the file's own rate;
- VAD: Silero VAD 6.2.3, its ONNX model run with onnxruntime without torch
  (``bench/peer_silero.py``), speech time by ``get_speech_timestamps``' default rule (p >= 0.5 to
  start, < 0.35 for 100 ms to end, segments > 250 ms, 30 ms padding), on audio resampled to 16 kHz;
- pitch: Praat's "To Pitch (ac)" (Boersma 1993) through praat-parselmouth, 60-500 Hz, 10 ms step,
  on the same 16 kHz audio as ours (``bench/peer_praat_pitch.py``).

Rows (``--only`` names): ``p56`` P.56 level vs the ITU-T STL's ``actlevel`` values (and the dev
set's manifest values); ``synthetic`` syllable counts on the held-out synthetic corpora of
``tests/device/dsp/mandarin_corpus.py`` (Mandarin, English, Cantonese; MAPE per clip); ``real``
syllables of the real clips in ``tests/data/real-speech`` through the whole analyser; ``dev``
syllables and speech time of a real development set (``--dev-dir``; fixed tune/report halves);
``realnoise`` the real clips of ``tests/data`` one after another with pink noise and babble at 10 and
5 dB SNR (three draws each); ``devnoise`` the same dev set's syllables with pink noise and babble added at 20, 10 and 5 dB SNR;
``reverb`` the same dev set through simulated rooms (a headset, table and far microphones);
``cuts`` the real clips (tests/data, and the dev set) each started at 8 offsets within one 10 ms hop:
how far a count moves with where a recording was cut; ``leadins`` the same clips with their
lead-in and tail cut to 0.5, 0.2, 0.05 and 0 s around the sound; ``rates`` the same clips resampled to 8-48 kHz;
``levels`` the same clips at active speech levels of -30 to -70 dBov in 16-bit files; ``hum`` the same
clips under a mains buzz (50 and 60 Hz) 20, 10 and 0 dB under the speech level; ``telephone``
the same clips through a telephone channel (G.712 band, 8 kHz) as G.711 µ-law and A-law;
``vad`` speech time vs P.56 activity x duration; ``rooms`` mouth-to-mic distance and own-voice
speech time with neighbours in simulated rooms (``tests/device/room_corpus.py``); ``robust`` VAD
on generated non-speech (must be 0 s) and on speech at 5 dB SNR in babble and stationary noise; ``music``
the mono VAD on real music (``tests/data/music``), alone and before and after real speech; ``pauses``
own-voice speech time with the pauses of a conversation in noise, two-channel and mono;
``dcoffset`` the real clips of ``tests/data`` on a DC offset (a microphone's), with the analyser's
offset removal and, as the baseline beside it, without;
``pitch`` F0 of ``device.dsp.pitch`` (YIN) against Praat on the real clips (and the dev set): gross
pitch errors, cents, voicing agreement, and the intonation measure (``device.dsp.intonation``'s
10th-90th percentile range in semitones) of both contours.

Example::

    .venv/bin/python bench/accuracy.py --dev-dir ../shared/data/real-speech-dev
    .venv/bin/python bench/accuracy.py --only p56,real --no-peer --json

Needs the ``bench`` extra (praat-parselmouth), onnxruntime (a runtime dependency), Silero's model
(``pip install --no-deps --require-hashes -r requirements/silero.lock``) unless ``--no-peer``, and
espeak-ng + pyroomacoustics (dev extra) for the synthetic corpora, which are cached under ``.cache``.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import soundfile as sf
from scipy.signal import fftconvolve, resample_poly

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench import peer_silero  # noqa: E402
from bench.peer_dejong import de_jong_wempe, have_parselmouth  # noqa: E402
from bench.peer_praat_pitch import compare, praat_f0  # noqa: E402
from device import silero_model  # noqa: E402
from device.dsp import HeadsetCalibration, StreamingAnalyzer  # noqa: E402
from device.dsp.intonation import pitch_spread  # noqa: E402
from device.dsp.p56 import p56_level  # noqa: E402
from device.dsp.pitch import PitchParams, track_pitch  # noqa: E402
from device.dsp.syllables import detect_nuclei  # noqa: E402
from device.offline_analysis import analyze_file  # noqa: E402
from tests.device import room_corpus as rc  # noqa: E402
from tests.device.dsp import mandarin_corpus as mc  # noqa: E402
from tests.device.dsp.test_rooms import DISTANCES_CM, SEED  # noqa: E402
from tests.device.telephone_channel import TELEPHONE_RATE_HZ, telephone_band  # noqa: E402

FloatArray = npt.NDArray[np.float64]
REAL = ROOT / "tests" / "data" / "real-speech"
RATE_HZ = 16000
ROWS = ("p56", "synthetic", "real", "realnoise", "dev", "devnoise", "reverb", "cuts", "leadins", "rates", "levels", "hum",
        "telephone", "codecs",
        "vad",
        "rooms", "robust", "music", "pauses", "dcoffset", "pitch")
OVERLAP_IDS = ("moss-single-reference",)
"""Dev clips with two people talking at once: counted apart from the dev totals and the halves."""
BANDS = {"80-100": (80, 100), "120-150": (120, 150), "180-250": (180, 250), "all": (0, 10**6)}
SYNTHETIC = (  # (language, corpus label, build_corpus arguments)
    ("cmn", "synthetic Mandarin (espeak-ng pinyin voice)", {"split": "test", "seed": 2024}),
    ("en", "synthetic English (espeak-ng en-us, hand-counted)", {"split": "test", "seed": 11, "language": "en"}),
    ("yue", "synthetic Cantonese (espeak-ng yue, one syllable a character)",
     {"split": "test", "seed": 2024, "language": "yue"}),
)
SNR_DB = 5.0
ROBUST_LEVELS_DBOV = (-40.0, -20.0)
ROBUST_S = 10.0
ROBUST_DRAWS = 5
"""Noise draws per clip and noise kind in the VAD-in-noise rows (one draw left the figure at the mercy of
where in the babble a clip landed)."""
CUTS = 8
"""The ``cuts`` row starts each clip at this many offsets within one 10 ms hop (0, 1.25, ... 8.75 ms)."""
DC_OFFSETS = (0.01, -0.03)
"""DC offsets added in the ``dcoffset`` row (full-scale units)."""

SYNTH_TARGET = {"cmn": "≤ 5 %", "yue": "≤ 8 %", "en": "≤ 8 %"}
"""Issue 12's targets for the held-out synthetic corpora, by language."""


class BenchError(Exception):
    """A problem that stops the run (missing peer, unreadable dev set); main prints it."""


# -- output model ------------------------------------------------------------------------------


@dataclass
class Line:
    """One line of the accuracy table; ``values`` holds the raw figures for ``--json``."""

    measure: str
    corpus: str
    ours: str
    peer: str
    target: str
    values: dict[str, Any] = field(default_factory=dict)


@dataclass
class Detail:
    """A detail table under the accuracy table (per clip, per band)."""

    title: str
    header: list[str]
    rows: list[list[str]]
    notes: list[str] = field(default_factory=list)
    data: list[dict[str, Any]] = field(default_factory=list)


@dataclass
class Section:
    """What one row function returns."""

    row: str
    lines: list[Line] = field(default_factory=list)
    details: list[Detail] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)


def pct(x: float | None, signed: bool = False, nd: int = 1) -> str:
    if x is None or not np.isfinite(x):
        return "-"
    return f"{100 * x:+.{nd}f} %" if signed else f"{100 * x:.{nd}f} %"


def num(x: float | None, nd: int = 2) -> str:
    return "-" if x is None else f"{x:.{nd}f}"


def opt(x: int | float | None) -> str:
    return "-" if x is None else str(x)


def plural(n: int, word: str) -> str:
    return f"{n} {word}{'' if n == 1 else 's'}"


def table(header: list[str], rows: Iterable[list[str]]) -> str:
    out = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    out += ["| " + " | ".join(r) + " |" for r in rows]
    return "\n".join(out)


# -- progress (stderr) -------------------------------------------------------------------------


class Progress:
    """Step and item progress on stderr: one updating line on a terminal, plain lines otherwise."""

    def __init__(self, quiet: bool = False) -> None:
        self.tty = sys.stderr.isatty()
        self.quiet = quiet
        self._label = ""
        self._t0 = time.monotonic()

    def step(self, label: str) -> None:
        self._label = label
        self._t0 = time.monotonic()
        self._say(f"{label} ...", end="\r" if self.tty else "\n")

    def item(self, i: int, n: int, name: str = "") -> None:
        if self.tty:
            self._say(f"{self._label}: {i}/{n} {name}".ljust(78)[:78], end="\r")

    def done(self) -> None:
        self._say(f"{self._label}: done in {time.monotonic() - self._t0:.1f} s".ljust(78))

    def _say(self, text: str, end: str = "\n") -> None:
        if not self.quiet:
            print(f"[accuracy] {text}", end=end, file=sys.stderr, flush=True)


# -- real clips and the measures on them ----------------------------------------------------------


@dataclass(frozen=True)
class RealClip:
    """A real recording with its truth: ``syllables``, reference P.56 ``level_dbov``, reference
    ``activity`` (0..1, None when the manifest has none) and where those come from."""

    id: str
    path: Path
    language: str
    syllables: int | None
    level_dbov: float | None
    activity: float | None
    raw_rate_hz: int | None = None
    channels: int = 1


def repo_clips() -> list[RealClip]:
    """The clips of ``tests/data/real-speech`` (reference values: the ITU-T STL's sv56)."""
    clips = json.loads((REAL / "manifest.json").read_text(encoding="utf-8"))["clips"]
    out = []
    for name, e in sorted(clips.items()):
        raw = 16000 if name.endswith(".s16le") else None
        act = e["activity_pct"] / 100 if "activity_pct" in e else None
        out.append(RealClip(Path(name).stem, REAL / name, e["lang"], e.get("syllables"), e.get("level_dbov"), act,
                            raw))
    return out


def dev_clips(dev_dir: Path) -> list[RealClip]:
    """The clips of a development set folder (its manifest.json lists them)."""
    manifest = dev_dir / "manifest.json"
    try:
        clips = json.loads(manifest.read_text(encoding="utf-8"))["clips"]
        out = [RealClip(c["id"], dev_dir / c["file"], c["language"], c.get("syllables"), c.get("level_dbov"),
                        c.get("activity"), None, int(c.get("channels", 1))) for c in clips]
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise BenchError(f"{manifest}: not a readable dev-set manifest ({exc})") from exc
    missing = [str(c.path) for c in out if not c.path.is_file()]
    if missing:
        raise BenchError(f"dev set files missing: {', '.join(missing)}")
    return sorted(out, key=lambda c: c.id)


def dev_halves(clips: list[RealClip]) -> dict[str, list[RealClip]]:
    """Fixed halves of the dev set, overlapped clips left out: sorted by id, alternating
    (1st, 3rd, ... = "tune"; 2nd, 4th, ... = "report")."""
    solo = sorted((c for c in clips if c.id not in OVERLAP_IDS), key=lambda c: c.id)
    return {"tune": solo[0::2], "report": solo[1::2]}


class Context:
    """Options, the peers, a temp folder and caches shared by the rows (each file measured once)."""

    def __init__(self, dev_dir: Path | None, peer: bool, tmp: Path, progress: Progress) -> None:
        self.dev_dir = dev_dir
        self.peer = peer
        self.tmp = tmp
        self.progress = progress
        self.silero = peer_silero.SileroVad.load() if peer else None
        self._audio: dict[Path, tuple[FloatArray, int]] = {}
        self._analysis: dict[Path, dict[str, Any]] = {}
        self._peer: dict[Path, int] = {}
        self._silero: dict[Path, float] = {}
        self._dev: list[RealClip] | None = None

    def dev(self) -> list[RealClip]:
        if self.dev_dir is None:
            return []
        if self._dev is None:
            self._dev = dev_clips(self.dev_dir)
        return self._dev

    def dev_solo(self) -> list[RealClip]:
        """The dev set without the clips where two people talk at once (sorted by id)."""
        return [c for c in self.dev() if c.id not in OVERLAP_IDS]

    def audio(self, path: Path, raw_rate_hz: int | None = None) -> tuple[FloatArray, int]:
        """Channel 0 of ``path`` as float64 (1.0 = full scale) and its rate."""
        if path not in self._audio:
            if raw_rate_hz is not None:
                x = np.fromfile(path, dtype="<i2").astype(np.float64) / 32768.0
                self._audio[path] = (x, raw_rate_hz)
            else:
                y, fs = sf.read(path, dtype="float64", always_2d=True)
                self._audio[path] = (np.ascontiguousarray(y[:, 0]), int(fs))
        return self._audio[path]

    def mono_file(self, clip: RealClip) -> Path:
        """The file the analyser reads: the clip itself, or a temp mono copy of its channel 0
        (``analyze_file`` reads 2 channels as boom + ear cup, which a stereo recording is not)."""
        if clip.raw_rate_hz is not None or sf.info(str(clip.path)).channels == 1:
            return clip.path
        out = self.tmp / f"{clip.id}.ch0.wav"
        if not out.exists():
            x, fs = self.audio(clip.path)
            sf.write(out, x, fs, subtype=sf.info(str(clip.path)).subtype)
        return out

    def analyze(self, clip: RealClip) -> dict[str, Any]:
        """``analyze_file`` of the clip (channel 0)."""
        path = self.mono_file(clip)
        if path not in self._analysis:
            self._analysis[path] = analyze_file(path, raw_rate_hz=clip.raw_rate_hz)
        return self._analysis[path]

    def analyze_path(self, path: Path, raw_rate_hz: int | None = None) -> dict[str, Any]:
        """``analyze_file`` of the file itself, every channel, default layout: what ``headset-agent analyze
        --json FILE`` reports (a stereo file goes through the channel check)."""
        if path not in self._analysis:
            self._analysis[path] = analyze_file(path, raw_rate_hz=raw_rate_hz)
        return self._analysis[path]

    def peer_syllables(self, path: Path, raw_rate_hz: int | None = None) -> int | None:
        """de Jong & Wempe's count on channel 0 (None with ``--no-peer``)."""
        if not self.peer:
            return None
        if path not in self._peer:
            self._peer[path] = de_jong_wempe(*self.audio(path, raw_rate_hz))
        return self._peer[path]

    def silero_seconds(self, x: FloatArray, fs: int) -> float | None:
        """Silero's speech seconds in mono ``x`` at ``fs`` (None with ``--no-peer``)."""
        if self.silero is None:
            return None
        y = to_16k(x, fs)
        return peer_silero.speech_seconds(self.silero.probabilities(y), y.size)

    def silero_clip(self, clip: RealClip) -> float | None:
        if self.silero is None:
            return None
        if clip.path not in self._silero:
            s = self.silero_seconds(*self.audio(clip.path, clip.raw_rate_hz))
            self._silero[clip.path] = float(s or 0.0)
        return self._silero[clip.path]

    def reference_speech(self, clip: RealClip) -> tuple[float, str]:
        """P.56 activity x duration (s) of the clip and where the activity comes from."""
        x, fs = self.audio(clip.path, clip.raw_rate_hz)
        if clip.activity is not None:
            return clip.activity * x.size / fs, "manifest"
        res = p56_level(x, fs)
        return (res.activity if res else 0.0) * x.size / fs, "p56_level"


def to_16k(x: FloatArray, fs: int) -> FloatArray:
    if fs == RATE_HZ:
        return x
    g = int(np.gcd(fs, RATE_HZ))
    y: FloatArray = resample_poly(x, RATE_HZ // g, fs // g)
    return y


def analyze_array(x: FloatArray, channels: int = 1, calibration: HeadsetCalibration | None = None,
                  remove_dc: bool = True, speech_model: bool = True, remove_hum: bool = False) -> StreamingAnalyzer:
    """Our streaming analyser over a 16 kHz array in 0.1 s blocks (as the agent feeds it; ``remove_hum`` as
    ``analyze`` runs it)."""
    a = StreamingAnalyzer(RATE_HZ, channels=channels, calibration=calibration, remove_dc=remove_dc,
                          remove_hum=remove_hum,
                          speech_model=silero_model.load() if speech_model and channels == 1 else None)
    for i in range(0, x.shape[0], 1600):
        a.feed(x[i: i + 1600])
    a.flush()
    return a


def real_clips_track(ctx: Context, row: str) -> tuple[list[RealClip], FloatArray]:
    """The real clips of tests/data that have a syllable count, and their audio one after another, each
    scaled to an RMS of 0.05 (16 kHz; ``row`` names the caller in the error for another rate)."""
    clips = [c for c in repo_clips() if c.syllables is not None]
    parts = []
    for c in clips:
        x, fs = ctx.audio(c.path)
        if fs != RATE_HZ:
            raise BenchError(f"{c.id}: {fs} Hz, {row} expects {RATE_HZ} Hz")
        parts.append(x / np.sqrt(np.mean(x**2)) * 0.05)
    return clips, np.concatenate(parts)


def total_error(got: Sequence[int | None], truth: Sequence[int]) -> float | None:
    """sum |got - truth| / sum truth (None when any count is missing)."""
    if not truth or any(g is None for g in got):
        return None
    return sum(abs(int(g or 0) - t) for g, t in zip(got, truth, strict=True)) / sum(truth)


def mape(got: Sequence[int | None], truth: Sequence[int]) -> float | None:
    """Mean of |got - truth| / truth per clip (None when any count is missing)."""
    if not truth or any(g is None for g in got):
        return None
    return float(np.mean([abs(int(g or 0) - t) / t for g, t in zip(got, truth, strict=True)]))


def speech_error(got: Sequence[float | None], ref: Sequence[float]) -> tuple[float | None, float | None]:
    """(sum |got - ref| / sum ref, (sum got - sum ref) / sum ref) of speech times."""
    if not ref or any(g is None for g in got):
        return None, None
    g = np.array(got, dtype=float)
    r = np.array(ref, dtype=float)
    return float(np.abs(g - r).sum() / r.sum()), float((g.sum() - r.sum()) / r.sum())


# -- rows ---------------------------------------------------------------------------------------


def row_p56(ctx: Context) -> Section:
    """P.56 level: p56_level and the analyser's level vs the STL's actlevel (and the dev manifest)."""
    sec = Section("p56")
    clips = [c for c in repo_clips() if c.level_dbov is not None]
    ctx.progress.step("P.56 level")
    rows, data, err_fn, err_an, err_act = [], [], [], [], []
    for i, c in enumerate(clips):
        ctx.progress.item(i + 1, len(clips), c.id)
        x, fs = ctx.audio(c.path, c.raw_rate_hz)
        res = p56_level(x, fs)
        an = ctx.analyze(c)
        assert c.level_dbov is not None and res is not None
        e_fn = res.level_dbov - c.level_dbov
        e_an = an["level_dbov"] - c.level_dbov if an["level_dbov"] is not None else float("nan")
        err_fn.append(abs(e_fn))
        err_an.append(abs(e_an))
        if c.activity is not None:
            err_act.append(abs(res.activity - c.activity))
        rows.append([c.id, f"{c.level_dbov:.3f}", f"{res.level_dbov:.4f}", f"{e_fn:+.4f}", num(an["level_dbov"]),
                     f"{e_an:+.3f}"])
        data.append({"clip": c.id, "reference_dbov": c.level_dbov, "p56_level_dbov": res.level_dbov,
                     "analyser_dbov": an["level_dbov"], "activity": res.activity, "reference_activity": c.activity})
    ctx.progress.done()
    sec.lines.append(Line(
        "P.56 active speech level", f"ITU-T STL test vector + {len(clips) - 1} real clips, vs the STL's actlevel",
        f"max error {max(err_fn):.4f} dB (analyser output, 0.01 dB steps: {max(err_an):.3f} dB); "
        f"activity error {100 * max(err_act):.4f} %-points", "-", "±0.5 dB",
        {"max_abs_error_db": max(err_fn), "analyser_max_abs_error_db": max(err_an),
         "activity_max_abs_error": max(err_act) if err_act else None}))
    sec.details.append(Detail("P.56 level per clip (dBov)", ["clip", "STL actlevel", "p56_level", "error",
                                                             "analyser", "error"], rows, data=data))
    dev = ctx.dev()
    if dev:
        ctx.progress.step("P.56 level, dev set")
        errs: list[float] = []
        drows: list[list[str]] = []
        ddata: list[dict[str, Any]] = []
        for c in dev:
            x, fs = ctx.audio(c.path)
            res = p56_level(x, fs)
            if res is None or c.level_dbov is None:
                continue
            errs.append(res.level_dbov - c.level_dbov)
            ddata.append({"clip": c.id, "manifest_dbov": c.level_dbov, "p56_level_dbov": res.level_dbov,
                          "activity": res.activity, "manifest_activity": c.activity})
            drows.append([c.id, f"{c.level_dbov:.2f}", f"{res.level_dbov:.3f}", f"{errs[-1]:+.3f}",
                          f"{100 * res.activity:.2f} %", pct(c.activity, nd=2)])
        ctx.progress.done()
        order = np.argsort([-abs(e) for e in errs])
        worst, second = abs(errs[order[0]]), abs(errs[order[1]]) if len(errs) > 1 else 0.0
        sec.lines.append(Line(
            "P.56 active speech level", f"dev set, {len(errs)} real clips (channel 0, own rate), vs manifest "
            "values (0.01 dB steps)", f"max error {worst:.3f} dB ({drows[order[0]][0]}; the others within "
            f"{second:.3f} dB)", "-", "±0.5 dB", {"max_abs_error_db": worst, "clips": len(errs)}))
        sec.details.append(Detail("P.56 level, dev set (dBov; p56_level at the file's own rate)",
                                  ["clip", "manifest", "p56_level", "error", "activity", "manifest activity"],
                                  drows, data=ddata))
    return sec


def _synthetic_language(ctx: Context, lang: str, label: str, kwargs: dict[str, Any]) -> tuple[Line, Line, Detail]:
    clips = mc.build_corpus(**kwargs)
    ctx.progress.step(f"syllables, {label}")
    det, ana, peer = [], [], []
    for i, c in enumerate(clips):
        ctx.progress.item(i + 1, len(clips), c.path.name)
        x, fs = ctx.audio(c.path)
        det.append(int(detect_nuclei(x, fs).size))
        ana.append(int(ctx.analyze_path(c.path)["syllables"]))
        peer.append(ctx.peer_syllables(c.path))
    ctx.progress.done()
    truth = [c.syllables for c in clips]
    rows, data = [], []
    for band, (lo, hi) in BANDS.items():
        idx = [i for i, c in enumerate(clips) if lo <= c.rate <= hi]
        t = [truth[i] for i in idx]
        spm = 60 * sum(t) / sum(clips[i].speech_s for i in idx)
        m = {"detector": mape([det[i] for i in idx], t), "analyser": mape([ana[i] for i in idx], t),
             "peer": mape([peer[i] for i in idx], t)}
        ratio = {k: (sum(v[i] or 0 for i in idx) / sum(t) if m[k] is not None else None)
                 for k, v in (("detector", det), ("peer", peer))}
        rows.append([band, str(len(idx)), f"{spm:.0f}", pct(m["detector"]), pct(m["analyser"]), pct(m["peer"]),
                     num(ratio["detector"]) + "x", (num(ratio["peer"]) + "x") if ratio["peer"] else "-"])
        data.append({"band": band, "clips": len(idx), "true_spm": spm, **{f"mape_{k}": v for k, v in m.items()},
                     "count_ratio_detector": ratio["detector"], "count_ratio_peer": ratio["peer"]})
    n_s = sum(c.duration_s for c in clips)
    corpus = (f"{label}, held-out split, {len(clips)} clips, {n_s:.0f} s, {sum(truth)} syllables "
              f"(espeak rates 80-250, white/pink/babble at SNR 12-30 dB)")
    vals = {"language": lang, "clips": len(clips), "syllables": sum(truth), "mape_detector": mape(det, truth),
            "mape_analyser": mape(ana, truth), "mape_peer": mape(peer, truth)}
    line_det = Line("syllable count, detector", corpus, f"MAPE {pct(mape(det, truth))}",
                    f"MAPE {pct(mape(peer, truth))} (dJW)" if ctx.peer else "-", SYNTH_TARGET.get(lang, "≤ 10 %"), vals)
    line_ana = Line("syllable count, whole analyser (VAD-gated)", label, f"MAPE {pct(mape(ana, truth))}", "-",
                    SYNTH_TARGET.get(lang, "≤ 10 %"), {"language": lang, "mape_analyser": mape(ana, truth)})
    detail = Detail(f"Syllables by espeak rate band, {label} (MAPE per clip; count = nuclei / true syllables)",
                    ["espeak rate", "clips", "true syl/min", "MAPE detector", "MAPE analyser", "MAPE peer",
                     "count detector", "count peer"], rows, data=data)
    return line_det, line_ana, detail


def row_synthetic(ctx: Context) -> Section:
    """Syllable counts on the held-out synthetic corpora (Mandarin, English, Cantonese)."""
    sec = Section("synthetic")
    ana_lines = []
    for lang, label, kwargs in SYNTHETIC:
        line_det, line_ana, detail = _synthetic_language(ctx, lang, label, kwargs)
        sec.lines.append(line_det)
        ana_lines.append(line_ana)
        sec.details.append(detail)
    sec.lines += ana_lines
    sec.notes.append("Synthetic truth: one syllable per pinyin token (Mandarin), hand-hyphenated English, one per "
                     "Han character (Cantonese, each sentence checked with `espeak-ng -v yue -x`). Mandarin and "
                     "Cantonese test sentences were never used for tuning; English is not split (never tuned on).")
    return sec


def row_real(ctx: Context) -> Section:
    """Syllables of the real clips in tests/data through the whole analyser, with the peer."""
    sec = Section("real")
    clips = [c for c in repo_clips() if c.syllables is not None]
    ctx.progress.step("syllables, real clips")
    rows, data, truth, ours, det, peer = [], [], [], [], [], []
    for i, c in enumerate(clips):
        ctx.progress.item(i + 1, len(clips), c.id)
        assert c.syllables is not None
        x, fs = ctx.audio(c.path)
        truth.append(c.syllables)
        ours.append(int(ctx.analyze(c)["syllables"]))
        det.append(int(detect_nuclei(x, fs).size))
        peer.append(ctx.peer_syllables(c.path))
        rows.append([c.id, c.language, str(c.syllables), str(ours[-1]), str(det[-1]), opt(peer[-1])])
        data.append({"clip": c.id, "truth": c.syllables, "analyser": ours[-1], "detector": det[-1],
                     "peer": peer[-1]})
    ctx.progress.done()
    rows.append(["total abs error", "", str(sum(truth)), pct(total_error(ours, truth)), pct(total_error(det, truth)),
                 pct(total_error(peer, truth))])
    per_clip = ", ".join(f"{o}/{t}" for o, t in zip(ours, truth, strict=True))
    sec.lines.append(Line(
        "syllable count, whole analyser", f"{len(clips)} real clips in tests/data (AISHELL-1 Mandarin, TIMIT and "
        "other English)", f"{per_clip}; total error {pct(total_error(ours, truth))}",
        f"{', '.join(opt(p) for p in peer)}; total error {pct(total_error(peer, truth))} (dJW)" if ctx.peer else "-",
        "±2 per clip",
        {"total_abs_error": total_error(ours, truth), "peer_total_abs_error": total_error(peer, truth),
         "max_abs_diff": max(abs(o - t) for o, t in zip(ours, truth, strict=True))}))
    sec.details.append(Detail("Syllables, real clips in tests/data (counts; detector = nuclei before the VAD gate)",
                              ["clip", "lang", "truth", "ours (analyser)", "detector", "peer"], rows, data=data))
    return sec


def row_dev(ctx: Context) -> Section:
    """Syllables and speech time of the real development set, with tune/report halves."""
    sec = Section("dev")
    clips = ctx.dev()
    if not clips:
        sec.notes.append("Dev-set rows skipped: no --dev-dir given.")
        return sec
    ctx.progress.step(f"dev set ({len(clips)} clips)")
    rows, data = [], []
    res: dict[str, tuple[int, int, int | None]] = {}
    for i, c in enumerate(clips):
        ctx.progress.item(i + 1, len(clips), c.id)
        assert c.syllables is not None
        an = ctx.analyze_path(c.path, c.raw_rate_hz)
        peer = ctx.peer_syllables(c.path)
        ref_s, _ = ctx.reference_speech(c)
        sil = ctx.silero_clip(c)
        res[c.id] = (c.syllables, int(an["syllables"]), peer)
        err = (an["syllables"] - c.syllables) / c.syllables
        rows.append([c.id + (" (overlap)" if c.id in OVERLAP_IDS else ""), c.language, f"{an['duration_s']:.1f}",
                     str(c.syllables), str(an["syllables"]), opt(peer), pct(err, signed=True),
                     pct((peer - c.syllables) / c.syllables, signed=True) if peer is not None else "-",
                     f"{an['speech_s']:.2f}", f"{ref_s:.2f}", num(sil)])
        data.append({"clip": c.id, "language": c.language, "duration_s": an["duration_s"], "truth": c.syllables,
                     "ours": an["syllables"], "peer": peer, "speech_s": an["speech_s"], "p56_speech_s": ref_s,
                     "silero_speech_s": sil, "overlap": c.id in OVERLAP_IDS, "channels": an["channels"],
                     "layout": an["layout"], "warnings": an["warnings"]})
    ctx.progress.done()
    halves = dev_halves(clips)
    groups = {
        "all clips": clips,
        "without " + ", ".join(OVERLAP_IDS): [c for c in clips if c.id not in OVERLAP_IDS],
        "tune half": halves["tune"],
        "report half": halves["report"],
        ", ".join(OVERLAP_IDS) + " alone": [c for c in clips if c.id in OVERLAP_IDS],
    }
    totals = []
    for name, group in groups.items():
        t = [res[c.id][0] for c in group]
        o = [res[c.id][1] for c in group]
        p = [res[c.id][2] for c in group]
        e_o, e_p = total_error(o, t), total_error(p, t)
        totals.append([name, str(len(group)), str(sum(t)), str(sum(o)), pct(e_o), opt(sum(x or 0 for x in p))
                       if ctx.peer else "-", pct(e_p)])
        vals = {"group": name, "clips": [c.id for c in group], "truth": sum(t), "ours": sum(o),
                "total_abs_error": e_o, "peer_total_abs_error": e_p}
        sec.lines.append(Line("syllable count, whole analyser", f"dev set: {name} ({plural(len(group), 'real clip')})",
                              f"total error {pct(e_o)}", f"total error {pct(e_p)} (dJW)" if ctx.peer else "-",
                              "≤ 8 % and below the peer", vals))
    sec.details.append(Detail(
        "Dev set per clip (syllables: truth, ours = whole analyser, peer = de Jong & Wempe; speech time in s: ours, "
        "P.56 activity x duration from the manifest, Silero)",
        ["clip", "lang", "s", "truth", "ours", "peer", "ours err", "peer err", "speech ours", "P.56 time",
         "Silero"], rows, data=data))
    sec.details.append(Detail(
        "Dev set totals (total error = sum |count - truth| / sum truth)",
        ["clips", "n", "truth", "ours", "ours error", "peer", "peer error"], totals,
        notes=[f"Halves: the clips other than {', '.join(OVERLAP_IDS)} sorted by id, alternating (1st, 3rd, ... "
               f"tune; 2nd, 4th, ... report). Tune: {', '.join(c.id for c in halves['tune'])}. "
               f"Report: {', '.join(c.id for c in halves['report'])}.",
               f"{', '.join(OVERLAP_IDS)}: two people talking at once (both counted in the truth), so it is "
               "reported apart and left out of the halves.",
               "Ours reads each file as `headset-agent analyze --json FILE` does (every channel, the layout picked "
               "by the channel count and the channel check: "
               + ("; ".join(f"{d['clip']}: {d['channels']} channels, read as {d['layout']}" for d in data
                            if d["channels"] > 1) or "no multi-channel clip")
               + "); the peers read channel 0."]))
    return sec


def row_vad(ctx: Context) -> Section:
    """Speech time vs P.56 activity x duration, ours beside Silero."""
    sec = Section("vad")
    corpora = [("tests/data real clips", repo_clips())]
    if ctx.dev():
        corpora.append(("dev set", ctx.dev()))
    for name, clips in corpora:
        ctx.progress.step(f"speech time, {name}")
        rows, data, ours, ref, sil, sources = [], [], [], [], [], set()
        for i, c in enumerate(clips):
            ctx.progress.item(i + 1, len(clips), c.id)
            an = ctx.analyze(c)
            r, src = ctx.reference_speech(c)
            sources.add(src)
            s = ctx.silero_clip(c)
            ours.append(float(an["speech_s"]))
            ref.append(r)
            sil.append(s)
            rows.append([c.id, f"{an['duration_s']:.2f}", f"{r:.2f}" + ("" if src == "manifest" else "*"),
                         f"{ours[-1]:.2f}", pct((ours[-1] - r) / r, signed=True), num(s),
                         pct((s - r) / r, signed=True) if s is not None else "-"])
            data.append({"clip": c.id, "p56_speech_s": r, "reference": src, "ours_speech_s": ours[-1],
                         "silero_speech_s": s})
        ctx.progress.done()
        e_o, b_o = speech_error(ours, ref)
        e_s, b_s = speech_error(sil, ref)
        rows.append(["total", "", f"{sum(ref):.2f}", f"{sum(ours):.2f}", f"abs {pct(e_o)}",
                     num(sum(x or 0 for x in sil)) if ctx.peer else "-", f"abs {pct(e_s)}"])
        sec.lines.append(Line(
            "speech time (VAD) vs P.56 activity x duration", f"{name}, {len(clips)} clips, {sum(ref):.0f} s of "
            "P.56 activity", f"total abs error {pct(e_o)} (bias {pct(b_o, signed=True)})",
            f"total abs error {pct(e_s)} (bias {pct(b_s, signed=True)}) (Silero)" if ctx.peer else "-", "±10 %",
            {"corpus": name, "total_abs_error": e_o, "bias": b_o, "silero_total_abs_error": e_s, "silero_bias": b_s}))
        notes = ["* activity by our p56_level (the manifest gives the STL's level, which p56_level matches to "
                 "0.001 dB; it gives the activity only for the STL vector)."] if "p56_level" in sources else []
        sec.details.append(Detail(f"Speech time (s), {name}: ours = analyser speech_s, reference = P.56 activity "
                                  "x duration", ["clip", "s", "P.56 time", "ours", "ours err", "Silero",
                                                 "Silero err"], rows, notes, data))
    sec.notes.append("P.56 activity counts samples whose envelope is within 15.9 dB of the active level, with a "
                     "0.2 s hangover; our speech time bridges gaps < 0.3 s; Silero pads its segments by 30 ms. "
                     "The three definitions differ by design, so a few % apart is agreement.")
    return sec


def row_rooms(ctx: Context) -> Section:
    """Mic distance MAE and own-voice speech time with neighbours, as tests/device/dsp/test_rooms.py."""
    sec = Section("rooms")
    d = rc.cache_dir()
    d.mkdir(parents=True, exist_ok=True)
    ctx.progress.step("simulated rooms: distance")
    headsets = rc.calibrated_headsets(SEED, d)
    rows, errors = [], []
    for k, (hs, cal, speech) in enumerate(headsets):
        for j, dist in enumerate(DISTANCES_CM):
            ctx.progress.item(k * len(DISTANCES_CM) + j + 1, 2 * len(DISTANCES_CM), f"headset {k} {dist} cm")
            scene = rc.render_scene(speech, dist, hs, rc.Floor(), seed=SEED + 100 * k + int(dist), directory=d)
            got = analyze_array(scene.audio, 2, cal).totals().distance_cm
            errors.append(abs(got - dist) if got is not None else float("nan"))
            rows.append([str(k), f"{dist:.0f}", num(got), num(errors[-1])])
    ctx.progress.done()
    mae = float(np.mean(errors))
    sec.lines.append(Line(
        "mouth-to-mic distance", f"simulated rooms (pyroomacoustics), 2 headsets x {len(DISTANCES_CM)} distances "
        f"{min(DISTANCES_CM):.0f}-{max(DISTANCES_CM):.0f} cm, head shadow, mic gain mismatch, 2 neighbours, "
        "far-end leakage, noise; calibrated at 5 cm", f"MAE {mae:.2f} cm (max {max(errors):.2f} cm)", "-",
        "≤ 0.5 cm", {"mae_cm": mae, "max_cm": max(errors)}))
    sec.details.append(Detail("Distance per scene (cm)", ["headset", "true", "ours", "abs error"], rows))

    ctx.progress.step("simulated rooms: own voice with neighbours")
    scene, alone = rc.neighbour_scene(SEED, d)
    truth = scene.own_speech_s
    ours = analyze_array(scene.audio, 2).totals().speech_s
    ours_alone = analyze_array(alone, 2).totals().speech_s
    sil = ctx.silero_seconds(scene.audio[:, 0], RATE_HZ)
    sil_alone = ctx.silero_seconds(alone[:, 0], RATE_HZ)
    ctx.progress.done()
    sec.lines.append(Line(
        "own-voice speech time", "simulated room, own Mandarin speech at 5 cm, 2 neighbours talking 1-1.6 m away, "
        f"far-end leakage, noise ({truth:.1f} s of own speech)", pct((ours - truth) / truth, signed=True),
        f"{pct((sil - truth) / truth, signed=True)} (Silero, boom channel)" if sil is not None else "-", "±10 %",
        {"truth_s": truth, "ours_s": ours, "silero_s": sil}))
    sec.lines.append(Line(
        "own-voice speech time, neighbours alone", "the same neighbours and noise, no own speech",
        f"{ours_alone:.2f} s ({pct(ours_alone / truth)} of the own speech time)",
        f"{sil_alone:.2f} s (Silero)" if sil_alone is not None else "-", "≤ 10 % of own speech time",
        {"ours_s": ours_alone, "silero_s": sil_alone, "own_speech_s": truth}))
    sec.notes.append("Rooms: the recipes and seeds of tests/device/dsp/test_rooms.py (tests/device/room_corpus.py). "
                     "Silero is not an own-voice VAD: it sees the boom channel and counts neighbours as speech.")
    return sec


def _hum(n: int) -> FloatArray:
    t = np.arange(n) / RATE_HZ
    x: FloatArray = sum((np.sin(2 * np.pi * 50 * k * t + k) / k for k in range(1, 11)), np.zeros(n))
    return x


def _signals(n: int) -> dict[str, FloatArray]:
    """Unit-RMS non-speech signals: steady ones, and two that rise and fall at a syllable's rate."""
    rng = np.random.default_rng(7)
    t = np.arange(n) / RATE_HZ
    raw = {"1 kHz tone": np.sin(2 * np.pi * 1000 * t), "50 Hz hum + harmonics": _hum(n),
           "white noise": rng.standard_normal(n), "pink noise": rc.pink_noise(rng, n, 1)[:, 0],
           "pink noise modulated at 4 Hz (80 %)": rc.pink_noise(rng, n, 1)[:, 0] * (1 + 0.8 * np.sin(2 * np.pi * 4 * t)),
           "keyboard clicks": rc.keyboard_clicks(rng, n)}
    return {k: v / np.sqrt(np.mean(v ** 2)) for k, v in raw.items()}


def row_robust(ctx: Context) -> Section:
    """VAD on generated non-speech (0 s expected) and on real speech at 5 dB SNR in noise."""
    sec = Section("robust")
    n = int(ROBUST_S * RATE_HZ)
    cases: list[tuple[str, FloatArray]] = [("silence", np.zeros(n))]
    for name, x in _signals(n).items():
        cases += [(f"{name} at {lv:.0f} dBov", x * 10 ** (lv / 20)) for lv in ROBUST_LEVELS_DBOV]
    ctx.progress.step("VAD robustness: non-speech")
    rows, data, ours, sil = [], [], [], []
    for i, (name, x) in enumerate(cases):
        ctx.progress.item(i + 1, len(cases), name)
        ours.append(analyze_array(x, 1).totals().speech_s)
        sil.append(ctx.silero_seconds(x, RATE_HZ))
        rows.append([name, f"{ours[-1]:.2f}", num(sil[-1])])
        data.append({"signal": name, "ours_s": ours[-1], "silero_s": sil[-1]})
    ctx.progress.done()
    zero_o = sum(1 for s in ours if s == 0)
    silero_cell = "-"
    if ctx.peer:
        zero_s = sum(1 for s in sil if s == 0)
        silero_cell = f"0 s on {zero_s}/{len(cases)}, max {max(s or 0 for s in sil):.2f} s (Silero)"
    sec.lines.append(Line(
        "VAD on non-speech (mono)", f"{ROBUST_S:.0f} s each: silence; 1 kHz tone, 50 Hz hum + harmonics, white and "
        "pink noise, pink noise modulated at 4 Hz (80 %), keyboard clicks at "
        f"{' and '.join(f'{lv:.0f}' for lv in ROBUST_LEVELS_DBOV)} dBov",
        f"0 s on {zero_o}/{len(cases)}, max {max(ours):.2f} s", silero_cell, "0 s",
        {"cases": len(cases), "ours_zero": zero_o, "ours_max_s": max(ours), "silero_max_s":
         max(s or 0 for s in sil) if ctx.peer else None}))
    sec.details.append(Detail("VAD on non-speech (seconds of speech found in 10 s)", ["signal", "ours", "Silero"],
                              rows, data=data))

    clips = [c for c in repo_clips() if c.syllables is not None]
    ctx.progress.step("VAD robustness: speech in noise")
    noise_rng = np.random.default_rng(SEED)
    babble = mc.babble_bed(np.random.default_rng(SEED + 1), 40.0)
    drows, ddata = [], []
    per: dict[str, dict[str, list[float | None]]] = {}
    for i, c in enumerate(clips):
        ctx.progress.item(i + 1, len(clips), c.id)
        x, fs = ctx.audio(c.path)
        level = p56_level(x, fs)
        assert level is not None and fs == RATE_HZ
        clean_o = analyze_array(x, 1).totals().speech_s
        clean_s = ctx.silero_seconds(x, fs)
        for kind in ("babble", "pink noise"):
            acc = per.setdefault(kind, {"ours": [], "ours_clean": [], "silero": [], "silero_clean": []})
            got_o: list[float] = []
            got_s: list[float | None] = []
            for _ in range(ROBUST_DRAWS):
                if kind == "babble":
                    start = int(noise_rng.integers(0, babble.size - x.size))
                    nz = babble[start: start + x.size]
                else:
                    nz = rc.pink_noise(noise_rng, x.size, 1)[:, 0]
                noisy = _at_snr(x, nz, level.level_dbov, SNR_DB)
                got_o.append(analyze_array(noisy, 1).totals().speech_s)
                got_s.append(ctx.silero_seconds(noisy, fs))
            acc["ours"] += got_o
            acc["ours_clean"] += [clean_o] * ROBUST_DRAWS
            acc["silero"] += got_s
            acc["silero_clean"] += [clean_s] * ROBUST_DRAWS
            drows.append([c.id, kind, f"{clean_o:.2f}", " ".join(f"{v:.2f}" for v in got_o), num(clean_s),
                          " ".join(num(v) for v in got_s)])
            ddata.append({"clip": c.id, "noise": kind, "ours_clean_s": clean_o, "ours_noisy_s": got_o,
                          "silero_clean_s": clean_s, "silero_noisy_s": got_s})
    ctx.progress.done()
    for kind, acc in per.items():
        e_o, b_o = speech_error(acc["ours"], [float(v or 0) for v in acc["ours_clean"]])
        e_s, b_s = speech_error(acc["silero"], [float(v or 0) for v in acc["silero_clean"]])
        sec.lines.append(Line(
            f"VAD in {kind} at SNR {SNR_DB:.0f} dB (mono)", f"{len(clips)} real clips of tests/data + {kind}"
            + (" (8 espeak-ng talkers)" if kind == "babble" else " (stationary)")
            + f", {ROBUST_DRAWS} draws each, vs the clean clip's time",
            f"total abs change {pct(e_o)} (bias {pct(b_o, signed=True)})",
            f"total abs change {pct(e_s)} (bias {pct(b_s, signed=True)}) (Silero)" if ctx.peer else "-",
            "±10 %", {"noise": kind, "total_abs_change": e_o, "bias": b_o, "silero_total_abs_change": e_s,
                      "silero_bias": b_s}))
    sec.details.append(Detail(f"Speech time (s) at SNR {SNR_DB:.0f} dB (noise RMS {SNR_DB:.0f} dB below the clip's "
                              "P.56 active level), each VAD against its own clean-clip time",
                              ["clip", "noise", "ours clean", "ours noisy (per draw)", "Silero clean",
                               "Silero noisy (per draw)"],
                              drows, data=ddata))
    sec.notes.append("Robustness is measured in mono (boom channel only), where the own-voice VAD has no "
                     "level difference to go by: the hardest case for it.")
    return sec


MUSIC = ROOT / "tests" / "data" / "music"
MUSIC_FRAME_S = 5.0
"""Seconds of music before and after the speech in the music row's second line."""


def row_music(ctx: Context) -> Section:
    """The mono VAD on real music (tests/data/music): alone (0 s expected), and before and after real
    speech at the same RMS, against the speech alone (speech time and syllables), with Silero beside."""
    sec = Section("music")
    names = sorted(json.loads((MUSIC / "manifest.json").read_text(encoding="utf-8"))["clips"])
    clips, speech = real_clips_track(ctx, "the music row")
    ref = analyze_array(speech, 1).totals()
    ref_s = ctx.silero_seconds(speech, RATE_HZ)
    ctx.progress.step(f"VAD on real music ({len(names)} pieces)")
    rows: list[list[str]] = []
    data: list[dict[str, Any]] = []
    for i, name in enumerate(names):
        ctx.progress.item(i + 1, len(names), name)
        m, fs = ctx.audio(MUSIC / name)
        if fs != RATE_HZ:
            raise BenchError(f"{name}: {fs} Hz, the music row expects {RATE_HZ} Hz")
        alone = analyze_array(m, 1).totals()
        before = analyze_array(m, 1, speech_model=False).totals()
        m = m / np.sqrt(np.mean(m**2)) * 0.05
        k = int(MUSIC_FRAME_S * RATE_HZ)
        framed = np.concatenate([m[:k], speech, m[k: 2 * k]])
        both = analyze_array(framed, 1).totals()
        both_before = analyze_array(framed, 1, speech_model=False).totals()
        d = {"piece": name, "seconds": m.size / RATE_HZ, "ours_alone_s": alone.speech_s,
             "ours_alone_syllables": alone.syllables, "silero_alone_s": ctx.silero_seconds(m, RATE_HZ),
             "no_model_alone_s": before.speech_s, "no_model_alone_syllables": before.syllables,
             "no_model_framed_extra_s": both_before.speech_s - ref.speech_s,
             "no_model_framed_extra_syllables": both_before.syllables - ref.syllables,
             "ours_framed_extra_s": both.speech_s - ref.speech_s,
             "ours_framed_extra_syllables": both.syllables - ref.syllables,
             "silero_framed_extra_s": (None if ref_s is None else
                                       (ctx.silero_seconds(framed, RATE_HZ) or 0.0) - ref_s)}
        data.append(d)
        rows.append([name, f"{d['seconds']:.0f}", f"{alone.speech_s:.2f}", str(alone.syllables),
                     num(d["silero_alone_s"]), f"{d['ours_framed_extra_s']:+.2f}",
                     f"{d['ours_framed_extra_syllables']:+d}",
                     "-" if d["silero_framed_extra_s"] is None else f"{d['silero_framed_extra_s']:+.2f}"])
    ctx.progress.done()
    total_s = sum(d["seconds"] for d in data)
    ours_alone = [d["ours_alone_s"] for d in data]
    sil_alone = [d["silero_alone_s"] or 0.0 for d in data]
    sec.lines.append(Line(
        "VAD on music (mono)", f"{len(names)} real pieces of game and library music (tests/data/music, "
        f"{total_s:.0f} s), each alone",
        f"{sum(ours_alone):.2f} s of speech in all (max {max(ours_alone):.2f} s), "
        f"{sum(d['ours_alone_syllables'] for d in data)} syllables (without the speech model: "
        f"{sum(d['no_model_alone_s'] for d in data):.2f} s, {sum(d['no_model_alone_syllables'] for d in data)} "
        "syllables)",
        f"{sum(sil_alone):.2f} s in all (max {max(sil_alone):.2f} s) (Silero)" if ctx.peer else "-", "0 s",
        {"pieces": len(names), "ours_total_s": sum(ours_alone), "ours_max_s": max(ours_alone),
         "ours_syllables": sum(d["ours_alone_syllables"] for d in data),
         "silero_total_s": sum(sil_alone) if ctx.peer else None}))
    extra = [d["ours_framed_extra_s"] for d in data]
    extra_syl = [d["ours_framed_extra_syllables"] for d in data]
    sil_extra = [d["silero_framed_extra_s"] or 0.0 for d in data]
    sec.lines.append(Line(
        "VAD with music before and after speech (mono)",
        f"the {len(clips)} real clips of tests/data one after another ({ref.speech_s:.1f} s of speech, "
        f"{ref.syllables} syllables) with {MUSIC_FRAME_S:.0f} s of each piece before and {MUSIC_FRAME_S:.0f} s after, "
        "at the same RMS, vs the clips alone",
        f"speech time {min(extra):+.2f} to {max(extra):+.2f} s, syllables {min(extra_syl):+d} to {max(extra_syl):+d} "
        f"(without the speech model: {min(d['no_model_framed_extra_s'] for d in data):+.2f} to "
        f"{max(d['no_model_framed_extra_s'] for d in data):+.2f} s, "
        f"{min(d['no_model_framed_extra_syllables'] for d in data):+d} to "
        f"{max(d['no_model_framed_extra_syllables'] for d in data):+d})",
        f"speech time {min(sil_extra):+.2f} to {max(sil_extra):+.2f} s (Silero)" if ctx.peer else "-", "0 s, 0",
        {"ours_extra_s": extra, "ours_extra_syllables": extra_syl,
         "silero_extra_s": sil_extra if ctx.peer else None}))
    sec.details.append(Detail(
        "VAD on real music (seconds of speech found; with the speech framed by the music: change against the "
        "speech alone)", ["piece", "s", "ours alone", "syllables", "Silero alone", "ours framed", "syllables framed",
                          "Silero framed"], rows, data=data))
    sec.notes.append("Music: 12 s excerpts of tracks packaged by Debian (frozen-bubble, lincity-ng and xmoto data, "
                     "GPL), sources in tests/data/music/manifest.json; the mono VAD asks the speech model "
                     "(device/dsp/speech_model.py, Silero VAD 6.2.3) whether the sound is speech at all.")
    return sec


PAUSE_SEEDS = (4, 5, 6)
"""Scenes of the ``pauses`` row (``tests/device/room_corpus.py``: ``pause_scene``)."""
PAUSE_SNRS_DB = (20.0, 10.0, 5.0)


def row_pauses(ctx: Context) -> Section:
    """Own-voice speech time with pauses as a conversation has them, in noise, mono and two-channel: the
    wearer's lines 0.8-2 s apart in a simulated room, with pink noise or 8 neighbours talking at 20/10/5 dB
    SNR at the boom, against the clean scene's time through the same analyser (Silero on the boom)."""
    sec = Section("pauses")
    d = rc.cache_dir()
    d.mkdir(parents=True, exist_ok=True)
    ctx.progress.step(f"own speech with pauses in noise ({len(PAUSE_SEEDS)} scenes)")

    def speech_times(y: FloatArray) -> dict[str, float | None]:
        """Speech seconds of ``y`` (2 channels): ours two-channel and on the boom alone, Silero on the boom."""
        boom = np.ascontiguousarray(y[:, :1])
        return {"two": analyze_array(y, 2).totals().speech_s, "mono": analyze_array(boom, 1).totals().speech_s,
                "sil": ctx.silero_seconds(boom[:, 0], RATE_HZ)}

    acc: dict[tuple[str, float], list[tuple[dict[str, float | None], dict[str, float | None]]]] = {}
    rows: list[list[str]] = []
    for i, seed in enumerate(PAUSE_SEEDS):
        ctx.progress.item(i + 1, len(PAUSE_SEEDS), f"scene {seed}")
        scene = rc.pause_scene(seed, d)
        clean = speech_times(scene.own.audio)
        for noise in ("pink", "babble"):
            for snr in PAUSE_SNRS_DB:
                got = speech_times(scene.at_snr(noise, snr))
                acc.setdefault((noise, snr), []).append((clean, got))
                rows.append([str(seed), noise, f"{snr:g}"] + [f"{num(clean[k])} → {num(got[k])}"
                                                              for k in ("two", "mono", "sil")])
    ctx.progress.done()
    keys = {"two": "two_channel", "mono": "mono", "sil": "silero"}
    data: list[dict[str, Any]] = []
    for noise in ("pink", "babble"):
        cells: dict[str, list[str]] = {k: [] for k in keys}
        for snr in PAUSE_SNRS_DB:
            pairs = acc[(noise, snr)]
            entry: dict[str, Any] = {"noise": noise, "snr_db": snr}
            for k, name in keys.items():
                err, bias = speech_error([g[k] for _, g in pairs], [float(c[k] or 0) for c, _ in pairs])
                cells[k].append(f"{pct(err)} ({pct(bias, signed=True)})")
                entry.update({name: err, f"{name}_bias": bias})
            data.append(entry)
        what = "pink noise (stationary, independent per mic)" if noise == "pink" else "8 neighbours talking 1-2 m away"
        sec.lines.append(Line(
            f"own-voice speech time with pauses, in {noise}",
            f"{len(PAUSE_SEEDS)} simulated scenes: the wearer's Mandarin lines 0.8-2 s apart at 5 cm, + {what} at "
            f"SNR {'/'.join(f'{v:g}' for v in PAUSE_SNRS_DB)} dB at the boom, vs the clean scene's time",
            "total abs change (bias) two-channel " + " / ".join(cells["two"]) + "; mono " + " / ".join(cells["mono"]),
            ("boom channel " + " / ".join(cells["sil"]) + " (Silero)") if ctx.peer else "-", "±10 %",
            {"by_snr": [v for v in data if v["noise"] == noise]}))
    sec.details.append(Detail("Own-voice speech time (s) with pauses, clean → noisy",
                              ["scene", "noise", "SNR dB", "ours, two-channel", "ours, mono", "Silero, boom"],
                              rows, data=data))
    return sec


def _totals_of(x: FloatArray, remove_dc: bool) -> tuple[float, int, float | None]:
    """(speech s, syllables, level dBov) of a mono 16 kHz array through :func:`analyze_array`."""
    t = analyze_array(x, 1, remove_dc=remove_dc).totals()
    return t.speech_s, t.syllables, t.level_dbov


def row_dcoffset(ctx: Context) -> Section:
    """The real clips of tests/data on a DC offset, with the analyser's offset removal and without."""
    sec = Section("dcoffset")
    clips = [c for c in repo_clips() if c.syllables is not None]
    ctx.progress.step("DC offset")
    rows, data = [], []
    per: dict[tuple[float, bool], dict[str, list[float]]] = {}
    for i, c in enumerate(clips):
        ctx.progress.item(i + 1, len(clips), c.id)
        x, fs = ctx.audio(c.path)
        assert fs == RATE_HZ
        for remove in (True, False):
            speech0, syl0, level0 = _totals_of(x, remove)
            for off in DC_OFFSETS:
                speech, syl, level = _totals_of(x + off, remove)
                dl = abs(level - level0) if level is not None and level0 is not None else float("nan")
                acc = per.setdefault((off, remove), {"speech": [], "speech0": [], "syl": [], "syl0": [], "level": []})
                acc["speech"].append(speech)
                acc["speech0"].append(speech0)
                acc["syl"].append(syl)
                acc["syl0"].append(syl0)
                acc["level"].append(dl)
                rows.append([c.id, f"{off:+g}", "on" if remove else "off", f"{speech0:.2f}", f"{speech:.2f}",
                             f"{syl0}", f"{syl}", f"{dl:.2f}"])
                data.append({"clip": c.id, "offset": off, "removal": remove, "clean_speech_s": speech0,
                             "speech_s": speech, "clean_syllables": syl0, "syllables": syl, "level_change_db": dl})
    ctx.progress.done()

    def summary(acc: dict[str, list[float]]) -> tuple[str, dict[str, float]]:
        e_s, _ = speech_error(acc["speech"], acc["speech0"])
        e_n = float(np.abs(np.subtract(acc["syl"], acc["syl0"])).sum() / max(1.0, float(np.sum(acc["syl0"]))))
        dl = float(np.nanmax(acc["level"]))
        text = f"speech time {pct(e_s)}, syllables {pct(e_n)} (total abs change); level up to {dl:.2f} dB"
        return text, {"speech_change": float(e_s or 0.0), "syllable_change": e_n, "max_level_change_db": dl}

    for off in DC_OFFSETS:
        ours, v_on = summary(per[(off, True)])
        base, v_off = summary(per[(off, False)])
        sec.lines.append(Line(
            f"DC offset {off:+g} of full scale (mono)", f"{len(clips)} real clips of tests/data with the offset added, "
            "vs the same clip without it", ours, base + " (no offset removal)", "0 %, 0 %, ±0.1 dB",
            {"offset": off, **v_on, **{f"without_removal_{k}": v for k, v in v_off.items()}}))
    sec.details.append(Detail("DC offset: speech time (s), syllables and level change (dB), each against the same "
                              "analyser on the clip without the offset",
                              ["clip", "offset", "removal", "speech s clean", "speech s", "syllables clean",
                               "syllables", "level change dB"], rows, data=data))
    sec.notes.append("An I2S MEMS microphone (the SPH0645 on a Pi) or a codec can deliver audio on a constant "
                     "offset; `device/dsp/dc_offset.py` removes it before every measure.")
    return sec


def _pitch_set(ctx: Context, name: str, clips: list[RealClip]) -> tuple[list[Line], Detail, float]:
    """Our F0 and Praat's on one clip set: the table lines, the per-clip detail, and our RTF."""
    params = PitchParams()
    ctx.progress.step(f"pitch, {name}")
    rows, data, stats = [], [], []
    spread_o: list[float | None] = []
    spread_p: list[float | None] = []
    busy = audio_s = 0.0
    for i, c in enumerate(clips):
        ctx.progress.item(i + 1, len(clips), c.id)
        x, fs = ctx.audio(c.path, c.raw_rate_hz)
        y = to_16k(x, fs)
        t0 = time.perf_counter()
        track = track_pitch(y, RATE_HZ, params)
        busy += time.perf_counter() - t0
        audio_s += y.size / RATE_HZ
        so = pitch_spread(track.f0_hz)
        spread_o.append(so.range_st if so else None)
        o_range, o_sd = (so.range_st, so.sd_st) if so else (None, None)
        row = {"clip": c.id, "language": c.language, "ours_voiced_s": float(track.voiced.sum()) * 0.01,
               "ours_range_st": o_range, "ours_sd_st": o_sd, "ours_median_hz": so.median_hz if so else None}
        if ctx.peer:
            ref = praat_f0(y, RATE_HZ, track.times_s, params.f0_min_hz, params.f0_max_hz)
            st = compare(track.f0_hz, ref)
            stats.append(st)
            sp = pitch_spread(ref)
            spread_p.append(sp.range_st if sp else None)
            p_range, p_sd = (sp.range_st, sp.sd_st) if sp else (None, None)
            row.update({**st, "praat_range_st": p_range, "praat_sd_st": p_sd,
                        "praat_median_hz": sp.median_hz if sp else None})
            rows.append([c.id, c.language, str(st["both"]), pct(st["gpe"]), num(st["median_cents"], 1),
                         pct(st["voicing_agreement"]), num(o_range), num(p_range), num(o_sd), num(p_sd)])
        else:
            rows.append([c.id, c.language, "-", "-", "-", "-", num(o_range), "-", num(o_sd), "-"])
        data.append(row)
    ctx.progress.done()
    rtf = busy / audio_s
    lines = []
    corpus = f"{name}, {len(clips)} clips, {audio_s:.0f} s (16 kHz)"
    if ctx.peer:
        both = sum(int(s["both"]) for s in stats)
        gross = sum(int(s["gross"]) for s in stats)
        hops = sum(int(s["hops"]) for s in stats)
        agree = sum(float(s["voicing_agreement"]) * int(s["hops"]) for s in stats) / hops
        cents = float(np.median([s["median_cents"] for s in stats]))
        worst = max(float(s["gpe"]) for s in stats)
        lines.append(Line(
            "F0 (YIN, 60-500 Hz) vs Praat's pitch", corpus + f", {both} hops voiced in both",
            f"GPE {pct(gross / both)} (worst clip {pct(worst)}); median error {cents:.1f} cents; voicing agreement "
            f"{pct(agree)}", "Praat To Pitch (ac): the reference", "GPE ≤ 5 %, ≤ 20 cents, agreement ≥ 85 %",
            {"corpus": name, "gpe": gross / both, "worst_clip_gpe": worst, "median_cents": cents,
             "voicing_agreement": agree, "hops_both_voiced": both, "rtf": rtf}))
        diffs = [abs(o - p) for o, p in zip(spread_o, spread_p, strict=True) if o is not None and p is not None]
        lines.append(Line(
            "pitch variation (10th-90th percentile range, st)", corpus,
            "; ".join(num(o, 1) for o in spread_o) + f" (mean abs diff {np.mean(diffs):.2f} st, max {max(diffs):.2f})",
            "; ".join(num(p, 1) for p in spread_p) + " (Praat)", "±1 st mean",
            {"corpus": name, "mean_abs_diff_st": float(np.mean(diffs)), "max_abs_diff_st": float(max(diffs)),
             "ours_range_st": spread_o, "praat_range_st": spread_p}))
    else:
        lines.append(Line("pitch variation (10th-90th percentile range, st)", corpus,
                          "; ".join(num(o, 1) for o in spread_o), "-", "-",
                          {"corpus": name, "ours_range_st": spread_o, "rtf": rtf}))
    detail = Detail(f"Pitch per clip, {name}: ours (YIN) vs Praat on hops both voiced; spreads over each "
                    "tracker's own voiced hops", ["clip", "lang", "hops both voiced", "GPE", "median cents",
                                                  "voicing agreement", "range st ours", "range st Praat",
                                                  "SD st ours", "SD st Praat"], rows, data=data)
    return lines, detail, rtf


def row_pitch(ctx: Context) -> Section:
    """F0 (device.dsp.pitch, YIN) and the intonation measure against Praat, real clips and dev set."""
    sec = Section("pitch")
    sets = [("real clips in tests/data", repo_clips())]
    if ctx.dev():
        sets.append(("dev set", ctx.dev()))
    rtfs = []
    for name, clips in sets:
        lines, detail, rtf = _pitch_set(ctx, name, clips)
        sec.lines += lines
        sec.details.append(detail)
        rtfs.append(rtf)
    sec.notes.append(
        "Pitch: both trackers on the same 16 kHz audio (channel 0), Praat sampled at our hop centres. GPE = share of "
        "hops both call voiced where the F0s differ by > 20 %; cents: median of the per-clip medians of |error| on "
        "the other hops. Spreads are pitch_spread of each contour over all its voiced hops (no VAD gate, so that "
        "the trackers alone are compared). Where the spreads differ most, Praat keeps creaky or octave-below "
        "hops (Mandarin tone 3) that YIN calls unvoiced, or YIN keeps a few octave errors. "
        f"Our tracker's real-time factor on this machine: {max(rtfs):.4f} (one core, whole clips in one block).")
    return sec


NOISE_SNR_DB = (20.0, 10.0, 5.0)
"""SNRs of the noisy dev-set row: noise power against the clip's P.56 active speech level."""


def _at_snr(speech: FloatArray, noise: FloatArray, level_dbov: float, snr_db: float) -> FloatArray:
    """``speech`` plus ``noise`` scaled to ``snr_db`` under the speech's P.56 active level ``level_dbov``."""
    noise_db = 10.0 * np.log10(float(np.mean(noise**2)) + 1e-20)
    mixed: FloatArray = speech + noise * 10.0 ** ((level_dbov - snr_db - noise_db) / 20.0)
    return mixed


def _noisy_copy(ctx: Context, clip: RealClip, kind: str, snr_db: float, rng: np.random.Generator,
                bed: FloatArray, level_dbov: float) -> tuple[Path, FloatArray, int]:
    """Channel 0 of ``clip`` plus ``kind`` noise (pink: stationary; babble: ``bed``, 8 espeak-ng talkers at
    the clip's rate) at ``snr_db`` below its P.56 active level ``level_dbov``; written as a float WAV for
    the analyser."""
    x, fs = ctx.audio(clip.path, clip.raw_rate_hz)
    if kind == "pink":
        noise = mc._pink(x.size, rng)
    else:
        start = int(rng.integers(0, bed.size - x.size)) if bed.size > x.size else 0
        noise = np.resize(bed[start:], x.size)
    y = _at_snr(x, noise, level_dbov, snr_db)
    out = ctx.tmp / f"{clip.id}.{kind}{snr_db:g}.wav"
    sf.write(str(out), y, fs, subtype="FLOAT")
    return out, y, fs


def noise_references(ctx: Context, clips: list[RealClip], babble: FloatArray) -> tuple[
        dict[str, float], dict[int, FloatArray]]:
    """What noise is added against, once a clip: each clip's P.56 level (dBov, the SNR reference) by id,
    and the 16 kHz ``babble`` bed at each clip's sample rate (Hz)."""
    levels: dict[str, float] = {}
    beds: dict[int, FloatArray] = {16000: babble}
    for c in clips:
        x, fs = ctx.audio(c.path, c.raw_rate_hz)
        res = p56_level(x, fs)
        if res is None:
            raise BenchError(f"{c.id}: no active speech for P.56, so no SNR to add noise at")
        levels[c.id] = res.level_dbov
        if fs not in beds:
            beds[fs] = resample_poly(babble, fs, 16000)
    return levels, beds


def row_devnoise(ctx: Context) -> Section:
    """Syllables of the real dev set (without the overlap clip) with pink noise and babble added at
    20, 10 and 5 dB SNR: how the count holds in a noisy room, beside the peer on the same audio."""
    sec = Section("devnoise")
    clips = ctx.dev_solo()
    if not clips:
        sec.notes.append("Noisy dev-set rows skipped: no --dev-dir given.")
        return sec
    rng = np.random.default_rng(5)
    levels, beds = noise_references(ctx, clips, mc.babble_bed(rng, 30.0))
    rows: list[list[str]] = []
    data: list[dict[str, Any]] = []
    for kind in ("pink", "babble"):
        for snr in NOISE_SNR_DB:
            ctx.progress.step(f"dev set + {kind} noise at {snr:g} dB SNR ({len(clips)} clips)")
            ours_err = peer_err = truth = 0
            per: list[str] = []
            for i, c in enumerate(clips):
                ctx.progress.item(i + 1, len(clips), c.id)
                assert c.syllables is not None
                rate = ctx.audio(c.path, c.raw_rate_hz)[1]
                path, y, fs = _noisy_copy(ctx, c, kind, snr, rng, beds[rate], levels[c.id])
                n = int(analyze_file(path)["syllables"])
                peer = de_jong_wempe(y, fs) if ctx.peer else None
                ours_err += abs(n - c.syllables)
                peer_err += abs(peer - c.syllables) if peer is not None else 0
                truth += c.syllables
                per.append(f"{n - c.syllables:+d}" + (f"/{peer - c.syllables:+d}" if peer is not None else ""))
            ctx.progress.done()
            ours_pct, peer_pct = ours_err / truth, (peer_err / truth if ctx.peer else None)
            rows.append([kind, f"{snr:g}", pct(ours_pct), pct(peer_pct), " ".join(per)])
            data.append({"noise": kind, "snr_db": snr, "clips": len(clips), "truth": truth,
                         "total_error_ours": ours_pct, "total_error_peer": peer_pct})
    for kind in ("pink", "babble"):
        sub = [d for d in data if d["noise"] == kind]
        ours_s = " / ".join(pct(float(d["total_error_ours"])) for d in sub)
        peer_s = " / ".join(pct(float(d["total_error_peer"])) for d in sub) if ctx.peer else ""
        sec.lines.append(Line(
            "syllable count, whole analyser, in noise",
            f"dev set without {', '.join(OVERLAP_IDS)} ({len(clips)} real clips) + {kind} noise "
            f"({'stationary' if kind == 'pink' else '8 espeak-ng talkers'}) at SNR "
            + "/".join(f"{d['snr_db']:g}" for d in sub) + " dB (vs P.56 level)",
            "total error " + ours_s,
            f"total error {peer_s} (dJW)" if ctx.peer else "-",
            "≤ 8 % and below the peer", {"noise": kind, "by_snr": sub}))
    sec.details.append(Detail(
        "Dev set + noise (total error = sum |count - truth| / sum truth; per clip: ours/peer minus truth, clips "
        "sorted by id)", ["noise", "SNR dB", "ours", "peer", "per clip"], rows, data=data))
    return sec


REVERB_ROOMS = ((0.3, 0.05), (0.5, 1.0), (0.8, 1.5))
"""(RT60 s, source-to-microphone distance m) of the reverberant rows: a headset in an office, then a
table microphone and a far microphone in a meeting room."""


def _room_response(rt60_s: float, distance_m: float, fs: int) -> FloatArray:
    """Impulse response of a 6 x 5 x 3 m shoebox (pyroomacoustics, image method, walls by Sabine's
    formula for ``rt60_s``) from a talker at 1.2 m height to a microphone ``distance_m`` in front."""
    import pyroomacoustics as pra

    dim = [6.0, 5.0, 3.0]
    absorption, max_order = pra.inverse_sabine(rt60_s, dim)
    room = pra.ShoeBox(dim, fs=fs, materials=pra.Material(absorption), max_order=max_order)
    talker = np.array([2.0, 2.5, 1.2])
    room.add_source(talker)
    room.add_microphone(talker + np.array([distance_m, 0.0, 0.1]))
    room.compute_rir()
    rir: FloatArray = np.asarray(room.rir[0][0], dtype=np.float64)
    return rir


def row_reverb(ctx: Context) -> Section:
    """Syllables of the real dev set (without the overlap clip) recorded through simulated rooms: a
    headset, and table and far microphones in a reverberant meeting room, beside the peer."""
    sec = Section("reverb")
    clips = ctx.dev_solo()
    if not clips:
        sec.notes.append("Reverberant dev-set rows skipped: no --dev-dir given.")
        return sec
    rows: list[list[str]] = []
    data: list[dict[str, Any]] = []
    for rt60, dist in REVERB_ROOMS:
        ctx.progress.step(f"dev set through a room, RT60 {rt60:g} s at {dist:g} m ({len(clips)} clips)")
        responses: dict[int, FloatArray] = {}
        ours_n: list[int] = []
        peer_n: list[int | None] = []
        truth: list[int] = []
        for i, c in enumerate(clips):
            ctx.progress.item(i + 1, len(clips), c.id)
            assert c.syllables is not None
            x, fs = ctx.audio(c.path, c.raw_rate_hz)
            if fs not in responses:
                responses[fs] = _room_response(rt60, dist, fs)
            y = fftconvolve(x, responses[fs])[: x.size + fs // 2]
            y *= 0.1 / np.sqrt(np.mean(y**2))
            path = ctx.tmp / f"{c.id}.rt{rt60:g}.d{dist:g}.wav"
            sf.write(str(path), y, fs, subtype="FLOAT")
            ours_n.append(int(analyze_file(path)["syllables"]))
            peer_n.append(de_jong_wempe(y, fs) if ctx.peer else None)
            truth.append(c.syllables)
        ctx.progress.done()
        e_o = total_error(ours_n, truth)
        e_p = total_error(peer_n, truth) if ctx.peer else None
        per = " ".join(f"{o - t:+d}" + (f"/{(p or 0) - t:+d}" if ctx.peer else "")
                       for o, p, t in zip(ours_n, peer_n, truth, strict=True))
        rows.append([f"{rt60:g}", f"{dist:g}", pct(e_o), pct(e_p), per])
        data.append({"rt60_s": rt60, "distance_m": dist, "clips": len(clips), "truth": sum(truth),
                     "total_error_ours": e_o, "total_error_peer": e_p})
    sec.lines.append(Line(
        "syllable count, whole analyser, reverberant",
        f"dev set without {', '.join(OVERLAP_IDS)} ({len(clips)} real clips) through a simulated 6 x 5 x 3 m "
        "room (pyroomacoustics): RT60 / microphone distance "
        + ", ".join(f"{d['rt60_s']:g} s / {d['distance_m']:g} m" for d in data),
        "total error " + " / ".join(pct(float(d["total_error_ours"])) for d in data),
        ("total error " + " / ".join(pct(float(d["total_error_peer"])) for d in data) + " (dJW)")
        if ctx.peer else "-",
        "≤ 8 % and below the peer", {"by_room": data}))
    sec.details.append(Detail(
        "Dev set through simulated rooms (total error; per clip: ours/peer minus truth, clips sorted by id)",
        ["RT60 s", "distance m", "ours", "peer", "per clip"], rows, data=data))
    return sec


def row_realnoise(ctx: Context) -> Section:
    """Syllables of the real clips in tests/data, one after another at the same RMS, with pink noise and
    babble at 10 and 5 dB SNR (three draws each), through the whole analyser, beside the peer."""
    sec = Section("realnoise")
    clips, speech = real_clips_track(ctx, "the noisy real-clip row")
    truth = sum(int(c.syllables or 0) for c in clips)
    res = p56_level(speech, RATE_HZ)
    if res is None:
        raise BenchError("the real clips one after another have no active speech for P.56")
    draws = 3
    rows: list[list[str]] = []
    data: list[dict[str, Any]] = []
    for kind in ("pink", "babble"):
        for snr in (10.0, 5.0):
            ctx.progress.step(f"real clips + {kind} at {snr:g} dB SNR ({draws} draws)")
            ours: list[int] = []
            peers: list[int | None] = []
            for seed in range(draws):
                ctx.progress.item(seed + 1, draws, f"draw {seed}")
                if kind == "pink":
                    noise = mc._pink(speech.size, np.random.default_rng(seed))
                else:
                    noise = mc.babble_bed(np.random.default_rng(100 + seed), speech.size / RATE_HZ + 1.0)[: speech.size]
                y = _at_snr(speech, noise, res.level_dbov, snr)
                path = ctx.tmp / f"realnoise.{kind}{snr:g}.{seed}.wav"
                sf.write(str(path), y, RATE_HZ, subtype="FLOAT")
                ours.append(int(analyze_file(path)["syllables"]))
                peers.append(de_jong_wempe(y, RATE_HZ) if ctx.peer else None)
            ctx.progress.done()
            e_o = total_error(ours, [truth] * draws)
            e_p = total_error(peers, [truth] * draws) if ctx.peer else None
            rows.append([kind, f"{snr:g}", pct(e_o), pct(e_p), " ".join(f"{n - truth:+d}" for n in ours),
                         " ".join(f"{(p or 0) - truth:+d}" for p in peers) if ctx.peer else "-"])
            data.append({"noise": kind, "snr_db": snr, "truth": truth, "draws": draws, "ours": ours, "peer": peers,
                         "total_error_ours": e_o, "total_error_peer": e_p})
    for kind in ("pink", "babble"):
        sub = [d for d in data if d["noise"] == kind]
        sec.lines.append(Line(
            "syllable count, whole analyser, in noise",
            f"the {len(clips)} real clips of tests/data one after another ({speech.size / RATE_HZ:.0f} s, {truth} "
            f"syllables) + {kind} noise ({'stationary' if kind == 'pink' else '8 espeak-ng talkers'}) at SNR "
            + "/".join(f"{d['snr_db']:g}" for d in sub) + f" dB (vs P.56 level), {draws} draws each",
            "total error " + " / ".join(pct(d["total_error_ours"]) for d in sub),
            ("total error " + " / ".join(pct(d["total_error_peer"]) for d in sub) + " (dJW)") if ctx.peer else "-",
            "≤ 8 % and below the peer", {"noise": kind, "by_snr": sub}))
    sec.details.append(Detail(
        "Real clips of tests/data one after another + noise (total error over the draws; per draw: count minus "
        "truth)", ["noise", "SNR dB", "ours", "peer", "ours per draw", "peer per draw"], rows, data=data))
    return sec


Variant = Callable[[FloatArray, int], tuple[FloatArray, int]]
"""A changed copy of a clip: (samples, rate) -> (samples, rate)."""


@dataclass
class VariantCounts:
    """Syllables of each clip in each variant (``peer`` empty without the peer) and the truth."""

    ours: list[list[int]]
    peer: list[list[int]]
    truth: list[int]
    kbps: list[list[float]] = field(default_factory=list)
    """Each clip's file in each variant: its size over its duration (kbit/s)."""

    def spread(self, counts: list[list[int]]) -> tuple[list[float], int, int]:
        """Total error per variant, the most a clip's count moves across variants, and how many clips move."""
        per_variant = [total_error([cs[k] for cs in counts], self.truth) or 0.0 for k in range(len(counts[0]))]
        moves = [max(cs) - min(cs) for cs in counts]
        return per_variant, max(moves), sum(1 for m in moves if m)

    @staticmethod
    def moves_from_first(counts: list[list[int]]) -> list[list[int]]:
        """For each variant after the first (the original), how far each clip's count moved from it."""
        return [[abs(cs[k] - cs[0]) for cs in counts] for k in range(1, len(counts[0]))]


@dataclass(frozen=True)
class Encoding:
    """How a variant is written: a libsndfile container and subtype, and for lossy codecs the
    compression level (0 best quality .. 1 smallest file) and bitrate mode."""

    format: str
    subtype: str
    ext: str
    compression_level: float | None = None
    bitrate_mode: str | None = None

    def write(self, path: Path, y: FloatArray, rate: int) -> None:
        extra: dict[str, Any] = {}
        if self.compression_level is not None:
            extra["compression_level"] = self.compression_level
        if self.bitrate_mode is not None:
            extra["bitrate_mode"] = self.bitrate_mode
        with sf.SoundFile(str(path), "w", rate, 1, self.subtype, format=self.format, **extra) as f:
            f.write(y)


def _wav(subtype: str) -> Encoding:
    return Encoding("WAV", subtype, "wav")


def _variant_counts(ctx: Context, clips: list[RealClip], name: str, variants: Sequence[Variant],
                    encodings: Sequence[Encoding] | None = None) -> VariantCounts:
    """Every clip through every variant: ours through ``analyze_file`` (a file of ``encodings[k]``, a float
    WAV by default), the peer on the samples that file holds."""
    out = VariantCounts([], [], [])
    for i, c in enumerate(clips):
        ctx.progress.item(i + 1, len(clips), c.id)
        assert c.syllables is not None
        x, fs = ctx.audio(c.path, c.raw_rate_hz)
        got: list[int] = []
        got_p: list[int] = []
        rates: list[float] = []
        for k, variant in enumerate(variants):
            y, rate = variant(x, fs)
            enc = encodings[k] if encodings else _wav("FLOAT")
            path = ctx.tmp / f"{c.id}.{name}{k}.{enc.ext}"
            enc.write(path, y, rate)
            rates.append(path.stat().st_size * 8 / (y.size / rate) / 1000)
            got.append(int(analyze_file(path)["syllables"]))
            if ctx.peer:
                stored, _ = sf.read(str(path), dtype="float64")  # G.711's quantisation included
                got_p.append(de_jong_wempe(stored, rate))
        out.ours.append(got)
        out.peer.append(got_p)
        out.truth.append(c.syllables)
        out.kbps.append(rates)
    ctx.progress.done()
    return out


def _spread_rows(ctx: Context, clips: list[RealClip], vc: VariantCounts, no_peer: str = "-") -> list[list[str]]:
    """Per-clip detail rows of a row of variants: clip, truth, our count per variant and their range, the
    peer's (``no_peer`` in their place without the peer)."""
    return [[c.id, str(t), " ".join(str(n) for n in got), str(max(got) - min(got)),
             " ".join(str(n) for n in got_p) if ctx.peer else no_peer, str(max(got_p) - min(got_p)) if ctx.peer else "-"]
            for c, t, got, got_p in zip(clips, vc.truth, vc.ours, vc.peer, strict=True)]


def _real_clips_label(ctx: Context) -> str:
    return "tests/data" + (" and the dev set without " + ", ".join(OVERLAP_IDS) if ctx.dev_solo() else "")


def _cut(k: int) -> Variant:
    return lambda x, fs: (x[round(k * 0.010 * fs / CUTS):], fs)


def row_cuts(ctx: Context) -> Section:
    """Syllables of the real clips (tests/data and the dev set without the overlap clip) with each
    recording started a fraction of a 10 ms hop later: how much a count rests on where a recording was
    cut, against the 10 ms grid of the analyser's frames, beside the peer on the same cuts."""
    sec = Section("cuts")
    clips = [c for c in repo_clips() if c.syllables is not None] + ctx.dev_solo()
    ctx.progress.step(f"real clips cut at {CUTS} offsets within a hop ({len(clips)} clips)")
    vc = _variant_counts(ctx, clips, "cut", [_cut(k) for k in range(CUTS)])
    rows = _spread_rows(ctx, clips, vc, " ".join(["-"] * CUTS))

    def summary(counts: list[list[int]]) -> tuple[float, float, float, int, int]:
        per_cut, move, moved = vc.spread(counts)
        return float(np.mean(per_cut)), min(per_cut), max(per_cut), move, moved

    mean_o, lo_o, hi_o, move_o, moved_o = summary(vc.ours)
    values: dict[str, Any] = {"clips": len(clips), "cuts": CUTS, "mean_total_error": mean_o, "min_total_error": lo_o,
                              "max_total_error": hi_o, "max_move": move_o, "clips_moved": moved_o}
    peer_cell = "-"
    if ctx.peer:
        mean_p, lo_p, hi_p, move_p, moved_p = summary(vc.peer)
        peer_cell = (f"total error {pct(mean_p)} (one cut {pct(lo_p)} to {pct(hi_p)}); counts move by up to "
                     f"{move_p} ({moved_p}/{len(clips)} clips) (dJW)")
        values.update({"peer_mean_total_error": mean_p, "peer_max_move": move_p, "peer_clips_moved": moved_p})
    sec.lines.append(Line(
        "syllable count, whole analyser, by where a recording starts",
        f"{len(clips)} real clips ({_real_clips_label(ctx)}), each started at {CUTS} offsets "
        f"0-{10 * (CUTS - 1) / CUTS:g} ms (a fraction of the 10 ms hop)",
        f"total error {pct(mean_o)} (one cut {pct(lo_o)} to {pct(hi_o)}); counts move by up to {move_o} "
        f"({moved_o}/{len(clips)} clips)", peer_cell, "-", values))
    sec.details.append(Detail(
        f"Syllables per cut (the clip started 0, 1.25, ... {10 * (CUTS - 1) / CUTS:g} ms later)",
        ["clip", "truth", "ours per cut", "ours range", "peer per cut", "peer range"], rows))
    sec.notes.append("A count rests partly on where the recording starts against the analyser's 10 ms frames: "
                     "peaks and dips near the detector's thresholds (prominence, voicing, the merge distance) "
                     "fall on either side of them. The `cuts` row measures that spread; the other rows use the "
                     "recordings as they are.")
    return sec


LEAD_PADS_S = (0.5, 0.2, 0.05, 0.0)
"""Lead-ins and tails of the ``leadins`` row: each clip's sound edges kept this far out (s)."""
LEAD_EDGE_DB = 35.0
"""A clip's sound runs from its first to its last 10 ms hop within this of its loud hops (95th percentile)."""


def _spread_cells(ctx: Context, vc: VariantCounts, cell: Callable[[list[float], int, int], str],
                  key: str) -> tuple[str, str, dict[str, Any]]:
    """Our cell, the peer's cell ("-" without the peer) and the JSON values of a row of variants of
    each clip, from ``cell(per-variant total errors, largest move, clips moved)``; ``key`` names what
    the variants are by ("pad", "rate")."""
    per_o, move_o, moved_o = vc.spread(vc.ours)
    values: dict[str, Any] = {"clips": len(vc.truth), f"total_error_by_{key}": per_o, "max_move": move_o,
                              "clips_moved": moved_o}
    peer_cell = "-"
    if ctx.peer:
        per_p, move_p, moved_p = vc.spread(vc.peer)
        peer_cell = cell(per_p, move_p, moved_p) + " (dJW)"
        values.update({f"peer_total_error_by_{key}": per_p, "peer_max_move": move_p, "peer_clips_moved": moved_p})
    return cell(per_o, move_o, moved_o), peer_cell, values


def _sound_edges(x: FloatArray, fs: int) -> tuple[int, int]:
    """First and last sample (exclusive) of the hops within ``LEAD_EDGE_DB`` of the clip's loud hops."""
    mono = x if x.ndim == 1 else x.mean(axis=1)
    hop = fs // 100
    n = mono.size // hop
    db = 10 * np.log10(np.mean(mono[: n * hop].reshape(n, hop) ** 2, axis=1) + 1e-12)
    loud = np.flatnonzero(db > np.percentile(db, 95) - LEAD_EDGE_DB)
    return int(loud[0]) * hop, (int(loud[-1]) + 1) * hop


def _trimmed(pad_s: float | None) -> Variant:
    def make(x: FloatArray, fs: int) -> tuple[FloatArray, int]:
        if pad_s is None:
            return x, fs
        a, b = _sound_edges(x, fs)
        k = round(pad_s * fs)
        return x[max(0, a - k): b + k], fs
    return make


def row_leadins(ctx: Context) -> Section:
    """Syllables of the real clips (tests/data and the dev set without the overlap clip) as recorded
    and with their lead-in and tail cut to ``LEAD_PADS_S`` around the sound: a short command is often
    recorded with little or no silence around it, a longer recording with a second or more, and the
    count should not depend on which, beside the peer on the same files."""
    sec = Section("leadins")
    clips = [c for c in repo_clips() if c.syllables is not None] + ctx.dev_solo()
    pads: list[float | None] = [None, *LEAD_PADS_S]
    ctx.progress.step(f"real clips with their lead-in and tail cut to {len(LEAD_PADS_S)} lengths ({len(clips)} clips)")
    vc = _variant_counts(ctx, clips, "lead", [_trimmed(p) for p in pads])
    edges = [_sound_edges(*ctx.audio(c.path, c.raw_rate_hz)) for c in clips]
    rows = [[c.id, f"{a / fs:.2f}", f"{(ctx.audio(c.path, c.raw_rate_hz)[0].shape[0] - b) / fs:.2f}", str(t),
             " ".join(str(n) for n in got), " ".join(str(n) for n in got_p) if ctx.peer else "-"]
            for c, (a, b), t, got, got_p in zip(clips, edges, vc.truth, vc.ours, vc.peer, strict=True)
            for fs in [ctx.audio(c.path, c.raw_rate_hz)[1]]]
    labels = "as recorded, " + ", ".join(f"{p:g}" for p in LEAD_PADS_S) + " s"

    def cell(per_pad: list[float], move: int, moved: int) -> str:
        return (f"total error {' / '.join(pct(e) for e in per_pad)}; counts move by up to {move} "
                f"({moved}/{len(clips)} clips)")

    ours_cell, peer_cell, values = _spread_cells(ctx, vc, cell, "pad")
    values["pads_s"] = list(LEAD_PADS_S)
    sec.lines.append(Line(
        "syllable count, whole analyser, by lead-in",
        f"{len(clips)} real clips ({_real_clips_label(ctx)}) as recorded and with lead-in and tail cut to "
        + ", ".join(f"{p:g}" for p in LEAD_PADS_S) + f" s around the sound (hops within {LEAD_EDGE_DB:g} dB of "
        "the loud ones)", ours_cell, peer_cell, "-", values))
    sec.details.append(Detail(
        f"Syllables by lead-in ({labels}; lead-in and tail as recorded, s)",
        ["clip", "lead-in", "tail", "truth", "ours", "peer"], rows))
    return sec


RATES_HZ = (8000, 11025, 16000, 22050, 32000, 44100, 48000)
"""Sample rates of the ``rates`` row: telephone to studio, the rates recordings come at."""


def _resampled(rate: int) -> Variant:
    def make(x: FloatArray, fs: int) -> tuple[FloatArray, int]:
        g = int(np.gcd(fs, rate))
        return (x if rate == fs else resample_poly(x, rate // g, fs // g)), rate
    return make


def row_rates(ctx: Context) -> Section:
    """Syllables of the real clips (tests/data and the dev set without the overlap clip), each
    resampled (polyphase, scipy's resample_poly) to every rate of ``RATES_HZ``: the count should not
    depend on the rate a recording was made at, beside the peer on the same files."""
    sec = Section("rates")
    clips = [c for c in repo_clips() if c.syllables is not None] + ctx.dev_solo()
    ctx.progress.step(f"real clips at {len(RATES_HZ)} sample rates ({len(clips)} clips)")
    vc = _variant_counts(ctx, clips, "rate", [_resampled(r) for r in RATES_HZ])
    rows = [[c.id, str(ctx.audio(c.path, c.raw_rate_hz)[1]), str(t), " ".join(str(n) for n in got),
             str(max(got) - min(got)), " ".join(str(n) for n in got_p) if ctx.peer else "-",
             str(max(got_p) - min(got_p)) if ctx.peer else "-"]
            for c, t, got, got_p in zip(clips, vc.truth, vc.ours, vc.peer, strict=True)]

    def cell(per_rate: list[float], move: int, moved: int) -> str:
        return (f"total error {pct(min(per_rate))} to {pct(max(per_rate))} (8 kHz {pct(per_rate[0])}); counts move "
                f"by up to {move} ({moved}/{len(clips)} clips)")

    ours_cell, peer_cell, values = _spread_cells(ctx, vc, cell, "rate")
    values["rates_hz"] = list(RATES_HZ)
    sec.lines.append(Line(
        "syllable count, whole analyser, by sample rate",
        f"{len(clips)} real clips ({_real_clips_label(ctx)}), each resampled to "
        + ", ".join(f"{r / 1000:g}" for r in RATES_HZ) + " kHz",
        ours_cell, peer_cell, "-", values))
    sec.details.append(Detail(
        "Syllables per sample rate (" + ", ".join(f"{r / 1000:g}" for r in RATES_HZ) + " kHz)",
        ["clip", "own rate", "truth", "ours per rate", "ours range", "peer per rate", "peer range"], rows))
    return sec


LEVELS_DBOV = (-30.0, -40.0, -50.0, -60.0, -70.0)
"""Active speech levels (ITU-T P.56, dBov) of the ``levels`` row: a loud headset down to a quiet far
microphone or a call recorded low. -70 dBov in a 16-bit file is still 30 dB over its quantisation noise."""


def _at_level(level_dbov: float) -> Variant:
    """The clip scaled to the active speech level ``level_dbov`` (P.56 of its first channel)."""
    def make(x: FloatArray, fs: int) -> tuple[FloatArray, int]:
        measured = p56_level(x if x.ndim == 1 else x[:, 0], fs)
        assert measured is not None
        return np.clip(x * 10 ** ((level_dbov - measured.level_dbov) / 20), -1.0, 1.0), fs
    return make


def row_levels(ctx: Context) -> Section:
    """Syllables of the real clips (tests/data and the dev set without the overlap clip), each scaled to every
    active speech level of ``LEVELS_DBOV`` and written as 16-bit PCM: the count should not depend on how loud a
    recording is, beside the peer on the same files."""
    sec = Section("levels")
    clips = [c for c in repo_clips() if c.syllables is not None] + ctx.dev_solo()
    ctx.progress.step(f"real clips at {len(LEVELS_DBOV)} levels ({len(clips)} clips)")
    vc = _variant_counts(ctx, clips, "level", [_at_level(v) for v in LEVELS_DBOV], [_wav("PCM_16")] * len(LEVELS_DBOV))
    rows = _spread_rows(ctx, clips, vc)

    def cell(per_level: list[float], move: int, moved: int) -> str:
        return (f"total error {pct(min(per_level))} to {pct(max(per_level))} ({LEVELS_DBOV[-1]:g} dBov "
                f"{pct(per_level[-1])}); counts move by up to {move} ({moved}/{len(clips)} clips)")

    ours_cell, peer_cell, values = _spread_cells(ctx, vc, cell, "level")
    values["levels_dbov"] = list(LEVELS_DBOV)
    labels = ", ".join(f"{v:g}" for v in LEVELS_DBOV)
    sec.lines.append(Line(
        "syllable count, whole analyser, by level",
        f"{len(clips)} real clips ({_real_clips_label(ctx)}), each at an active speech level (P.56) of {labels} dBov, "
        "16-bit PCM WAV", ours_cell, peer_cell, "-", values))
    sec.details.append(Detail(
        f"Syllables per active speech level ({labels} dBov)",
        ["clip", "truth", "ours per level", "ours range", "peer per level", "peer range"], rows))
    return sec


HUM_MAINS_HZ = (50.0, 60.0)
HUM_BELOW_DB = (20.0, 10.0, 0.0)
"""The ``hum`` row's buzz: mains frequencies, and how far under the clip's P.56 level (dB)."""


def mains_buzz(n: int, fs: int, mains_hz: float) -> FloatArray:
    """A ground loop's buzz: the mains frequency and 10 harmonics at 1/k amplitude, unit RMS."""
    t = np.arange(n) / fs
    x = np.sum([np.sin(2 * np.pi * mains_hz * k * t + k) / k for k in range(1, 12)], axis=0)
    out: FloatArray = x / np.sqrt(np.mean(x**2))
    return out


def row_hum(ctx: Context) -> Section:
    """Syllables of the real clips (tests/data and the dev set without the overlap clip, channel 0) under a mains
    buzz, through the engine in 0.1 s blocks (:func:`analyze_array`, the clip resampled to 16 kHz) with hum
    removal on, as ``analyze`` runs it (``device/dsp/hum.py``), the same with it off, as the desk agent runs it,
    and the peer, on the same audio."""
    sec = Section("hum")
    clips = [c for c in repo_clips() if c.syllables is not None] + ctx.dev_solo()
    rows: list[list[str]] = []
    data: list[dict[str, Any]] = []
    for mains in HUM_MAINS_HZ:
        for below in HUM_BELOW_DB:
            ctx.progress.step(f"real clips under a {mains:g} Hz buzz {below:g} dB under the speech ({len(clips)} clips)")
            ours: list[int] = []
            off: list[int] = []
            peer: list[int | None] = []
            truth: list[int] = []
            for i, c in enumerate(clips):
                ctx.progress.item(i + 1, len(clips), c.id)
                assert c.syllables is not None
                x, fs = ctx.audio(c.path, c.raw_rate_hz)
                mono = x if x.ndim == 1 else x[:, 0]
                level = p56_level(mono, fs)
                if level is None:
                    raise BenchError(f"{c.id}: no active speech for P.56")
                y = mono + mains_buzz(mono.size, fs, mains) * 10 ** ((level.level_dbov - below) / 20)
                y16 = to_16k(y, fs)
                ours.append(int(analyze_array(y16, 1, remove_hum=True).totals().syllables))
                off.append(int(analyze_array(y16, 1, remove_hum=False).totals().syllables))
                peer.append(de_jong_wempe(y, fs) if ctx.peer else None)
                truth.append(c.syllables)
            ctx.progress.done()
            e_o, e_off = total_error(ours, truth), total_error(off, truth)
            e_p = total_error(peer, truth) if ctx.peer else None
            rows.append([f"{mains:g}", f"{below:g}", pct(e_o), pct(e_off), pct(e_p),
                         " ".join(f"{o - t:+d}/{f - t:+d}" for o, f, t in zip(ours, off, truth, strict=True))])
            data.append({"mains_hz": mains, "below_speech_db": below, "clips": len(clips), "truth": sum(truth),
                         "total_error_ours": e_o, "total_error_without_removal": e_off, "total_error_peer": e_p})
    for mains in HUM_MAINS_HZ:
        sub = [d for d in data if d["mains_hz"] == mains]
        sec.lines.append(Line(
            "syllable count, whole analyser (0.1 s blocks), under mains hum",
            f"{len(clips)} real clips ({_real_clips_label(ctx)}, channel 0) + a {mains:g} Hz buzz (the fundamental and "
            "10 harmonics at 1/k) " + "/".join(f"{d['below_speech_db']:g}" for d in sub) + " dB under the speech level",
            "total error " + " / ".join(pct(float(d["total_error_ours"])) for d in sub) + " (without hum removal, as the desk agent: "
            + " / ".join(pct(float(d["total_error_without_removal"])) for d in sub) + ")",
            ("total error " + " / ".join(pct(float(d["total_error_peer"])) for d in sub) + " (dJW)") if ctx.peer else "-",
            "≤ 8 %", {"mains_hz": mains, "by_level": sub}))
    sec.details.append(Detail(
        "Syllables under mains hum (total error; per clip: ours / ours without hum removal, minus truth)",
        ["mains Hz", "dB under speech", "ours", "without removal", "peer", "per clip"], rows, data=data))
    return sec


def _at_rate(rate: int | None) -> Variant:
    """The clip resampled to ``rate`` (Hz; None or its own rate: the clip as it is)."""
    return lambda x, fs: (resample_poly(x, rate, fs) if rate and rate != fs else x, rate or fs)


TELEPHONE_ENCODINGS = (_wav("ULAW"), _wav("ALAW"))
"""G.711 codings of the ``telephone`` row."""


def _telephone(x: FloatArray, fs: int) -> tuple[FloatArray, int]:
    return telephone_band(x, fs), TELEPHONE_RATE_HZ


def row_telephone(ctx: Context) -> Section:
    """Syllables of the real clips (tests/data and the dev set without the overlap clip) as recorded, and
    through a telephone channel (``tests/device/telephone_channel.py``: the G.712 band, 300-3400 Hz, at 8 kHz)
    written as G.711 µ-law and A-law: issue 12 asks for the wideband count within 2 syllables a clip."""
    sec = Section("telephone")
    clips = [c for c in repo_clips() if c.syllables is not None] + ctx.dev_solo()
    ctx.progress.step(f"real clips through a telephone channel, G.711 µ-law and A-law ({len(clips)} clips)")
    vc = _variant_counts(ctx, clips, "tel", [_at_rate(None), _telephone, _telephone],
                         (_wav("FLOAT"),) + TELEPHONE_ENCODINGS)
    rows = [[c.id, str(t), " ".join(str(n) for n in got), " ".join(str(n) for n in got_p) if ctx.peer else "-"]
            for c, t, got, got_p in zip(clips, vc.truth, vc.ours, vc.peer, strict=True)]

    def summary(counts: list[list[int]]) -> tuple[list[float], int, int]:
        per_variant, _, _ = vc.spread(counts)
        moves = [max(by_variant) for by_variant in zip(*vc.moves_from_first(counts), strict=True)]
        return per_variant, max(moves), sum(1 for m in moves if m > 2)

    def cell(per_variant: list[float], move: int, beyond: int) -> str:
        return (f"counts move by up to {move} from the wideband file ({beyond}/{len(clips)} clips beyond ±2); total "
                f"error {pct(per_variant[0])} wideband, {pct(per_variant[1])} µ-law, {pct(per_variant[2])} A-law")

    errors_o, move_o, beyond_o = summary(vc.ours)
    values: dict[str, Any] = {"clips": len(clips), "total_error_wide_ulaw_alaw": errors_o, "max_move": move_o,
                              "clips_beyond_2": beyond_o}
    peer_cell = "-"
    if ctx.peer:
        errors_p, move_p, beyond_p = summary(vc.peer)
        peer_cell = cell(errors_p, move_p, beyond_p) + " (dJW)"
        values.update({"peer_total_error_wide_ulaw_alaw": errors_p, "peer_max_move": move_p,
                       "peer_clips_beyond_2": beyond_p})
    sec.lines.append(Line(
        "syllable count, whole analyser, telephone audio",
        f"{len(clips)} real clips ({_real_clips_label(ctx)}) through a telephone channel (G.712 band 300-3400 Hz, "
        "8 kHz) as G.711 µ-law and A-law WAV, vs the wideband file",
        cell(errors_o, move_o, beyond_o), peer_cell, "±2 per clip", values))
    sec.details.append(Detail(
        "Syllables as recorded and by telephone (wideband, µ-law, A-law)",
        ["clip", "truth", "ours", "peer"], rows))
    return sec


CODECS = (("Opus 32k", Encoding("OGG", "OPUS", "opus", compression_level=0.9), 48000),
          ("Opus 16k", Encoding("OGG", "OPUS", "opus", compression_level=0.97), 48000),
          ("MP3 40k", Encoding("MP3", "MPEG_LAYER_III", "mp3", compression_level=0.8, bitrate_mode="CONSTANT"), None),
          ("MP3 16k", Encoding("MP3", "MPEG_LAYER_III", "mp3", compression_level=0.95, bitrate_mode="CONSTANT"), None))
"""Lossy codings of the ``codecs`` row: (name, encoding, sample rate or None for the clip's own). libsndfile's
compression levels, named by the bitrate they give a 16 kHz clip: Opus (coded at 48 kHz, to which Opus works
anyway) at 0.9 and 0.97, about 32 and 16 kbit/s (VoIP grades); MP3 at constant bitrate at 0.8 and 0.95, about
40 and 16 kbit/s at 16 kHz (more at 44.1 kHz), a call recorder's settings. The row prints the bitrates
measured from the files."""


def row_codecs(ctx: Context) -> Section:
    """Syllables of the real clips (tests/data and the dev set without the overlap clip) as recorded, and
    after lossy coding (Opus, MP3) at VoIP and call-recorder bitrates, as calls are stored: the count should
    not move with the codec (issue 12 asks the same of telephone audio: within 2 syllables a clip)."""
    sec = Section("codecs")
    clips = [c for c in repo_clips() if c.syllables is not None] + ctx.dev_solo()
    names = [n for n, _, _ in CODECS]
    ctx.progress.step(f"real clips through lossy codecs, {', '.join(names)} ({len(clips)} clips)")
    vc = _variant_counts(ctx, clips, "codec", [_at_rate(None)] + [_at_rate(r) for _, _, r in CODECS],
                         (_wav("FLOAT"),) + tuple(e for _, e, _ in CODECS))
    rows = [[c.id, str(t), " ".join(str(n) for n in got), " ".join(f"{r:.0f}" for r in rates[1:]),
             " ".join(str(n) for n in got_p) if ctx.peer else "-"]
            for c, t, got, got_p, rates in zip(clips, vc.truth, vc.ours, vc.peer, vc.kbps, strict=True)]
    band = [f"{min(r[k + 1] for r in vc.kbps):.0f}-{max(r[k + 1] for r in vc.kbps):.0f}" for k in range(len(CODECS))]

    def by_codec(counts: list[list[int]]) -> tuple[list[float], list[int], list[int]]:
        """Total error per variant (the original first), and per codec the largest move of a clip's count
        from the original and the clips that move by more than 2."""
        per_variant, _, _ = vc.spread(counts)
        moves = vc.moves_from_first(counts)
        return per_variant, [max(m) for m in moves], [sum(1 for v in m if v > 2) for m in moves]

    def cell(counts: list[list[int]]) -> str:
        errors, most, beyond = by_codec(counts)
        return f"total error {pct(errors[0])} original; " + "; ".join(
            f"{n} {pct(e)}, moves up to {m} ({b}/{len(clips)} clips beyond ±2)"
            for n, e, m, b in zip(names, errors[1:], most, beyond, strict=True))

    ours = by_codec(vc.ours)
    values: dict[str, Any] = {"clips": len(clips), "codecs": names, "kbps": band, "total_error_ours": ours[0],
                              "max_move_ours": ours[1], "clips_beyond_2_ours": ours[2]}
    if ctx.peer:
        peer = by_codec(vc.peer)
        values.update({"total_error_peer": peer[0], "max_move_peer": peer[1], "clips_beyond_2_peer": peer[2]})
    sec.lines.append(Line(
        "syllable count, whole analyser, lossy codecs",
        f"{len(clips)} real clips ({_real_clips_label(ctx)}) as recorded and coded as "
        + ", ".join(f"{n} ({b} kbit/s)" for n, b in zip(names, band, strict=True)) + ", vs the original file",
        cell(vc.ours), (cell(vc.peer) + " (dJW)") if ctx.peer else "-", "±2 per clip", values))
    sec.details.append(Detail(
        f"Syllables as recorded and after {', '.join(names)} (and their bitrates, kbit/s)",
        ["clip", "truth", "ours", "kbit/s", "peer"], rows))
    return sec


ROW_FUNCS: dict[str, Callable[[Context], Section]] = {
    "p56": row_p56, "synthetic": row_synthetic, "real": row_real, "realnoise": row_realnoise, "dev": row_dev,
    "vad": row_vad,
    "rooms": row_rooms, "robust": row_robust, "music": row_music, "dcoffset": row_dcoffset, "pitch": row_pitch, "devnoise": row_devnoise, "reverb": row_reverb,
    "cuts": row_cuts, "leadins": row_leadins, "rates": row_rates, "levels": row_levels, "hum": row_hum, "telephone": row_telephone, "pauses": row_pauses,
    "codecs": row_codecs,
}


# -- report -------------------------------------------------------------------------------------


def revision() -> str:
    try:
        sha = subprocess.run(["git", "-C", str(ROOT), "rev-parse", "--short", "HEAD"], capture_output=True,
                             text=True, check=True).stdout.strip()
        dirty = subprocess.run(["git", "-C", str(ROOT), "status", "--porcelain", "--untracked-files=no"],
                               capture_output=True, text=True, check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown"
    return sha + (" + local changes" if dirty else "")


def markdown(sections: list[Section], peer: bool, elapsed_s: float) -> str:
    lines = [s for sec in sections for s in sec.lines]
    out = [f"## Measurement accuracy (`bench/accuracy.py`, revision {revision()}, {elapsed_s:.0f} s)", ""]
    out.append(table(["measure", "corpus", "ours", "peer", "target"],
                     [[x.measure, x.corpus, x.ours, x.peer, x.target] for x in lines]))
    out.append("")
    out.append("Peers: " + ("dJW = de Jong & Wempe (2009) syllable nuclei on Praat (praat-parselmouth); Silero = "
                            f"Silero VAD {peer_silero.VERSION} (ONNX, onnxruntime), get_speech_timestamps defaults; Praat = "
                            "To Pitch (ac) (praat-parselmouth), 60-500 Hz."
                            if peer else "not run (--no-peer)."))
    notes = [note for sec in sections for note in sec.notes]
    if notes:
        out.append("")
        out += [f"- {note}" for note in notes]
    for sec in sections:
        for d in sec.details:
            out += ["", f"### {d.title}", "", table(d.header, d.rows)]
            out += [f"\n{n}" for n in d.notes]
    return "\n".join(out)


def as_json(sections: list[Section], peer: bool, elapsed_s: float) -> str:
    doc = {"revision": revision(), "elapsed_s": round(elapsed_s, 1), "peer": peer,
           "rows": [{"row": s.row, "lines": [asdict(x) for x in s.lines], "notes": s.notes,
                     "details": [{"title": d.title, "notes": d.notes, "data": d.data or
                                  [dict(zip(d.header, r, strict=True)) for r in d.rows]} for d in s.details]}
                    for s in sections]}
    return json.dumps(doc, ensure_ascii=False, indent=1, default=float)


def parse_rows(text: str) -> list[str]:
    names = [t.strip() for t in text.split(",") if t.strip()]
    bad = [t for t in names if t not in ROWS]
    if bad or not names:
        raise argparse.ArgumentTypeError(f"unknown row(s) {', '.join(bad) or text!r}; choose from {', '.join(ROWS)}")
    return names


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="accuracy.py", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--dev-dir", type=Path, help="a real development set: a folder with manifest.json "
                    "(clips: file, id, language, syllables, level_dbov, activity, duration_s)")
    ap.add_argument("--no-peer", action="store_true", help="skip the peers (parselmouth, Silero)")
    ap.add_argument("--json", action="store_true", help="print JSON instead of markdown")
    ap.add_argument("--only", type=parse_rows, default=list(ROWS), metavar="ROWS",
                    help=f"comma-separated rows to run: {','.join(ROWS)} (default: all)")
    ap.add_argument("--quiet", action="store_true", help="no progress on stderr")
    args = ap.parse_args(argv)
    peer = not args.no_peer
    try:
        if args.dev_dir is not None and not (args.dev_dir / "manifest.json").is_file():
            raise BenchError(f"{args.dev_dir}: no manifest.json (--dev-dir wants a dev-set folder)")
        if peer and not have_parselmouth():
            raise BenchError("praat-parselmouth is missing (pip install -e '.[bench]'), or use --no-peer")
        t0 = time.monotonic()
        with tempfile.TemporaryDirectory(prefix="hsc-accuracy-") as tmp:
            ctx = Context(args.dev_dir, peer, Path(tmp), Progress(args.quiet))
            sections = [ROW_FUNCS[name](ctx) for name in ROWS if name in args.only]
        elapsed = time.monotonic() - t0
    except (BenchError, peer_silero.SileroUnavailable) as exc:
        print(f"accuracy.py: {exc}", file=sys.stderr)
        return 1
    print(as_json(sections, peer, elapsed) if args.json else markdown(sections, peer, elapsed))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
