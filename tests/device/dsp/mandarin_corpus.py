"""Synthetic Mandarin (and English, Cantonese) corpus with known syllable counts, for the
speaking-rate tests and bench.

Recipe (TESTING.md): Chinese call-centre sentences are converted to tone-numbered pinyin with
``pypinyin`` (``Style.TONE3``, neutral tone as 5) and spoken by espeak-ng's ``cmn-latn-pinyin``
voice. Each pinyin syllable is one syllable of truth; the truth is counted here, never derived
from espeak's ``-s`` rate. A clip is 2-4 sentences at one espeak rate (80..250), joined by pauses
of 0.15-1.2 s, with white, pink or babble-like noise at an SNR of 12-30 dB (speech power over the
sentences, noise power over the whole clip). Audio is 16 kHz mono float32 WAV, cached under
``.cache/mandarin-corpus/`` keyed by the recipe, so only the recipe is committed.

The sentences are split into a tuning half and a held-out test half (``split="tune"`` or
``"test"``), so that a detector is tuned on one set of sentences and seeds and tested on another.

``language="en"``: hand-hyphenated English sentences spoken by espeak-ng's ``en-us`` voice.
``language="yue"``: Cantonese call-centre sentences in Chinese characters, spoken by espeak-ng's
``yue`` voice, which reads the characters themselves (one Han character is one syllable of truth);
split into tune and test halves like the Mandarin ones. Same rates, noises and SNRs for all three.
"""

from __future__ import annotations

import hashlib
import json
import re
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
from scipy.signal import resample_poly

from tests import real_parts

SAMPLE_RATE_HZ = 16_000
ESPEAK_RATE_HZ = 22_050
RECIPE_VERSION = 4
CACHE_DIR = Path(__file__).resolve().parents[3] / ".cache" / "mandarin-corpus"

# Call-centre sentences in the style of the training material (greeting, verification, hold,
# apology, closing). No digits or Latin letters, so that one Han character is one syllable.
SENTENCES: tuple[str, ...] = (
    "您好，很高兴为您服务，请问有什么可以帮您的吗？",
    "请您稍等一下，我马上为您查询。",
    "非常抱歉让您久等了，感谢您的耐心等待。",
    "请问您是机主本人吗？",
    "为了保障您的账户安全，需要先核实一下您的身份信息。",
    "请您提供一下身份证号码的后六位。",
    "您反映的问题我已经记录下来了，会尽快给您答复。",
    "这个业务目前可以在网上营业厅直接办理。",
    "请问还有其他可以帮到您的地方吗？",
    "感谢您的来电，祝您生活愉快，再见。",
    "您的套餐本月还剩余一部分流量。",
    "我理解您的心情，我们一定会认真处理。",
    "麻烦您把问题再详细描述一下好吗？",
    "系统显示您的订单已经发货了，预计明天送达。",
    "如果您对我的服务满意，请在挂机后给予好评。",
    "不好意思，刚才信号不太好，请您再说一遍。",
    "您可以关注我们的官方公众号查询账单。",
    "这边帮您申请了退款，款项会原路退回。",
    "请您保持电话畅通，工作人员会主动联系您。",
    "关于您提到的费用问题，我来为您解释一下。",
    "本次通话可能会被录音，以便提高服务质量。",
    "您的建议我们已经收到，会转交相关部门处理。",
    "现在是业务高峰期，给您带来不便敬请谅解。",
    "请问您方便告诉我具体的收货地址吗？",
    "我们的营业时间是每天早上九点到晚上六点。",
    "您好，这里是客户服务中心，请问怎么称呼您？",
    "这个优惠活动到本月月底就结束了。",
    "请您核对一下短信里的验证码是否正确。",
    "我已经为您开通了这项服务，马上就能生效。",
    "如果还有疑问，欢迎您随时拨打我们的热线。",
)
TUNE_SENTENCES = SENTENCES[0::2]
TEST_SENTENCES = SENTENCES[1::2]

RATES: tuple[int, ...] = (80, 100, 120, 150, 180, 210, 250)
NOISES: tuple[str, ...] = ("white", "pink", "babble")

# English call-centre sentences for espeak-ng's ``en-us`` voice, hyphenated by hand into
# syllables (the hyphens are dropped before speaking): the truth is the number of hyphen- or
# space-separated parts. Words whose syllable count varies between speakers ("every", "our",
# "really", "family") are avoided.
ENGLISH_SENTENCES: tuple[str, ...] = (
    "thank you for call-ing, how can I help you to-day?",
    "please hold the line while I check your ac-count.",
    "I am sor-ry to keep you wait-ing so long.",
    "can you con-firm the last four dig-its of your card num-ber?",
    "your or-der was shipped on Mon-day and should ar-rive to-mor-row.",
    "we have no-ted the prob-lem and will call you back soon.",
    "is there an-y-thing else I can do for you?",
    "the pay-ment will be re-fund-ed to your bank with-in five days.",
    "thank you for your pa-tience, have a nice day.",
    "this call may be re-cord-ed for train-ing pur-pos-es.",
    "let me trans-fer you to the bill-ing team.",
    "could you spell your last name for me, please?",
    "the new plan gives you more da-ta at a low-er price.",
    "I un-der-stand how frus-trat-ing this must be.",
    "your pass-word has been re-set suc-cess-ful-ly.",
    "please re-start the rou-ter and wait two min-utes.",
    "the of-fice is o-pen from nine to five on week-days.",
    "I will send you a text mes-sage with the de-tails.",
    "good mor-ning, this is Sar-ah from cus-tom-er ser-vice.",
    "do you want me to book a tech-ni-cian vis-it?",
)


# Cantonese call-centre sentences (Hong Kong style, traditional characters) for espeak-ng's ``yue``
# voice, which reads Chinese characters directly. No digits or Latin letters, so the truth is the
# number of Han characters. Checked with ``espeak-ng -v yue -x``: each sentence gives exactly one
# toned syllable per character (espeak-ng 1.51).
CANTONESE_SENTENCES: tuple[str, ...] = (
    "您好，歡迎致電客戶服務中心，請問有乜嘢可以幫到您？",
    "唔該您等一陣，我而家幫您查一查。",
    "唔好意思要您等咗咁耐，多謝您嘅耐心。",
    "請問您係唔係登記嘅用戶本人？",
    "為咗保障您嘅戶口安全，我要先核對一下您嘅資料。",
    "麻煩您講一講身份證號碼最後四個字。",
    "您反映嘅問題我已經記錄低，會盡快覆您。",
    "呢項服務而家可以喺網上直接申請。",
    "請問仲有冇其他地方可以幫到您？",
    "多謝您嘅來電，祝您生活愉快，拜拜。",
    "您今個月嘅套餐仲有少少數據剩低。",
    "我明白您嘅感受，我哋一定會認真跟進。",
    "麻煩您再詳細講一次個問題好唔好？",
    "系統顯示您嘅訂單已經寄出，預計聽日送到。",
    "如果您滿意我嘅服務，請喺收線之後俾個好評。",
    "唔好意思，啱啱訊號唔係幾好，請您再講一次。",
    "您可以留意我哋嘅官方網站查閱賬單。",
    "我已經幫您申請咗退款，款項會退返原本嘅戶口。",
    "請您保持電話暢通，我哋嘅同事會主動聯絡您。",
    "關於您提到嘅收費問題，等我同您解釋一下。",
    "今次通話可能會被錄音，用嚟提升服務質素。",
    "您嘅意見我哋已經收到，會轉交有關部門處理。",
    "而家係繁忙時間，帶嚟不便請您見諒。",
    "請問您方唔方便話俾我知送貨地址？",
    "我哋嘅辦公時間係每日朝早九點到夜晚六點。",
    "您好，呢度係客戶服務中心，請問點稱呼您？",
    "呢個優惠活動去到月尾就完喇。",
    "請您核對一下短訊入面嘅驗證碼啱唔啱。",
    "我已經幫您開通咗呢項服務，即刻就生效。",
    "如果仲有疑問，歡迎您隨時打我哋嘅熱線。",
)
CANTONESE_TUNE_SENTENCES = CANTONESE_SENTENCES[0::2]
CANTONESE_TEST_SENTENCES = CANTONESE_SENTENCES[1::2]
LANGUAGES: tuple[str, ...] = ("cmn", "en", "yue")
_HAN = re.compile(r"[\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff]")


def han_syllables(text: str) -> int:
    """Syllables of truth of a Chinese sentence: one per Han character (punctuation ignored)."""
    return len(_HAN.findall(text))


def english_syllables(text: str) -> int:
    """Syllables of truth of a hand-hyphenated English sentence (hyphen- or space-separated parts)."""
    return sum(len(word.split("-")) for word in text.split())


@dataclass(frozen=True)
class Clip:
    """One corpus clip: ``path`` (16 kHz mono WAV), its true ``syllables``, espeak ``rate``,
    ``noise`` type, ``snr_db`` (dB), ``duration_s`` (s), ``speech_s`` (s, sentence audio) and
    the spoken text (tone-numbered pinyin for Mandarin, characters for Cantonese)."""

    path: Path
    syllables: int
    rate: int
    noise: str
    snr_db: float
    duration_s: float
    speech_s: float
    pinyin: str
    sentences_s: tuple[tuple[float, float], ...] = ()
    """(start, end) of each spoken sentence, seconds."""


def to_pinyin(text: str) -> list[str]:
    """Tone-numbered pinyin syllables of the Han characters in ``text`` (neutral tone = 5),
    with ``,`` kept where the text has punctuation so that espeak pauses there."""
    from pypinyin import Style, lazy_pinyin

    out: list[str] = []
    for token in lazy_pinyin(text, style=Style.TONE3, neutral_tone_with_five=True):
        if token.isalnum() and token[-1].isdigit():
            out.append(token)
        elif out and out[-1] != ",":
            out.append(",")
    while out and out[-1] == ",":
        out.pop()
    return out


def syllable_count(pinyin: list[str]) -> int:
    """Syllables of truth: one per tone-numbered pinyin token."""
    return sum(1 for t in pinyin if t != ",")


def espeak(pinyin: list[str], rate: int, pitch: int = 50, voice: str = "cmn-latn-pinyin") -> np.ndarray:
    """Speak ``pinyin`` with espeak-ng at ``rate`` (espeak words/min) and ``pitch`` (0-99);
    returns 16 kHz float64 samples."""
    exe = shutil.which("espeak-ng")
    if exe is None:
        real_parts.require("espeak-ng")  # fails (strict) or skips the test that asked for the corpus
        raise AssertionError("espeak-ng is missing")  # not reached: require() raised
    text = " ".join(pinyin).replace(" ,", ",")
    with tempfile.NamedTemporaryFile(suffix=".wav") as tmp:
        subprocess.run(
            [exe, "-v", voice, "-s", str(rate), "-p", str(pitch), "-w", tmp.name, text],
            check=True,
            capture_output=True,
        )
        audio, fs = sf.read(tmp.name, dtype="float64")
    if fs != ESPEAK_RATE_HZ:
        raise RuntimeError(f"espeak-ng wrote {fs} Hz, expected {ESPEAK_RATE_HZ}")
    resampled: np.ndarray = resample_poly(audio, 320, 441)  # 22050 Hz -> 16000 Hz
    return resampled


def _pink(n: int, rng: np.random.Generator) -> np.ndarray:
    spec = np.fft.rfft(rng.standard_normal(n))
    f = np.arange(spec.size, dtype=np.float64)
    f[0] = 1.0
    pink: np.ndarray = np.fft.irfft(spec / np.sqrt(f), n)
    return pink


def babble_bed(rng: np.random.Generator, seconds: float) -> np.ndarray:
    """Babble-like noise: eight talkers (mixed voices, rates and pitches) summed with random delays."""
    n = int(seconds * SAMPLE_RATE_HZ)
    bed = np.zeros(n)
    voices = ("cmn-latn-pinyin", "en-us", "en", "cmn-latn-pinyin", "de", "cmn-latn-pinyin", "fr", "es")
    for k, voice in enumerate(voices):
        picks = rng.choice(len(SENTENCES), size=6, replace=False)
        parts = []
        for i in picks:
            py = to_pinyin(SENTENCES[int(i)])
            parts.append(espeak(py, int(rng.integers(120, 220)), int(rng.integers(20, 80)), voice))
        talker = np.concatenate(parts)
        talker = talker / (np.sqrt(np.mean(talker**2)) + 1e-12)
        talker = np.tile(talker, int(np.ceil(n / talker.size)) + 1)
        start = int(rng.integers(0, talker.size - n))
        bed += talker[start : start + n] * (0.7 + 0.6 * k / len(voices))
    return bed


def _noise(kind: str, n: int, rng: np.random.Generator, babble: np.ndarray) -> np.ndarray:
    if kind == "white":
        return rng.standard_normal(n)
    if kind == "pink":
        return _pink(n, rng)
    if kind == "babble":
        start = int(rng.integers(0, babble.size))
        return np.resize(np.roll(babble, -start), n)
    raise ValueError(f"unknown noise type {kind!r}; use one of {NOISES}")


def make_clip(
    rng: np.random.Generator, sentences: tuple[str, ...], rate: int, noise: str, snr_db: float,
    babble: np.ndarray, language: str = "cmn",
) -> tuple[np.ndarray, int, float, str, tuple[tuple[float, float], ...]]:
    """Build one clip's audio; returns (samples, true syllables, seconds of sentence audio, text,
    (start, end) seconds of each sentence). ``language`` "cmn": ``sentences`` are Chinese, spoken
    as pinyin; "en": hand-hyphenated English (:data:`ENGLISH_SENTENCES`), spoken by ``en-us``;
    "yue": Cantonese in Chinese characters (:data:`CANTONESE_SENTENCES`), spoken by ``yue``."""
    n_sent = int(rng.integers(2, 5))
    picks = rng.choice(len(sentences), size=n_sent, replace=False)
    pitch = int(rng.integers(35, 70))
    pieces: list[np.ndarray] = [np.zeros(int(rng.uniform(0.2, 0.6) * SAMPLE_RATE_HZ))]
    speech_parts: list[np.ndarray] = []
    syllables = 0
    texts: list[str] = []
    spans: list[tuple[float, float]] = []
    at = pieces[0].size
    for i in picks:
        if language == "cmn":
            py = to_pinyin(sentences[int(i)])
            syllables += syllable_count(py)
            texts.append(" ".join(py))
            s = espeak(py, rate, pitch)
        elif language == "yue":
            text = sentences[int(i)]
            syllables += han_syllables(text)
            texts.append(text)
            s = espeak([text], rate, pitch, voice="yue")
        else:
            text = sentences[int(i)]
            syllables += english_syllables(text)
            texts.append(text)
            s = espeak([text.replace("-", "")], rate, pitch, voice="en-us")
        speech_parts.append(s)
        pieces.append(s)
        spans.append((at / SAMPLE_RATE_HZ, (at + s.size) / SAMPLE_RATE_HZ))
        pieces.append(np.zeros(int(rng.uniform(0.15, 1.2) * SAMPLE_RATE_HZ)))
        at += s.size + pieces[-1].size
    clean = np.concatenate(pieces)
    speech = np.concatenate(speech_parts)
    # speech power over the sentences' audible part (frames within 40 dB of the loudest)
    frames = speech[: speech.size // 160 * 160].reshape(-1, 160)
    pw = np.mean(frames**2, axis=1)
    p_speech = float(np.mean(pw[pw > pw.max() * 1e-4]))
    nz = _noise(noise, clean.size, rng, babble)
    nz *= np.sqrt(p_speech / np.mean(nz**2) / 10 ** (snr_db / 10))
    mix = clean + nz
    gain = 10 ** (rng.uniform(-30, -8) / 20) / np.max(np.abs(mix))  # peak between -30 and -8 dBFS
    return mix * gain, syllables, speech.size / SAMPLE_RATE_HZ, " | ".join(texts), tuple(spans)


def build_corpus(
    split: str = "test", seed: int = 2024, rates: tuple[int, ...] = RATES, noises: tuple[str, ...] = NOISES,
    clips_per_cell: int = 1, snr_range_db: tuple[float, float] = (12.0, 30.0), cache_dir: Path = CACHE_DIR,
    language: str = "cmn",
) -> list[Clip]:
    """Generate (or load from the cache) one clip per (rate, noise, repeat) cell.

    ``split`` picks the sentence half ("tune" or "test"); ``seed`` fixes sentence choice, pauses,
    pitch, noise and SNR; ``language`` "cmn" (pinyin voice), "en" (``en-us`` voice, the English
    sentences, which are not split: none of them is used for tuning) or "yue" (Cantonese ``yue``
    voice, split like the Mandarin sentences). Returns the clips in a fixed order.
    """
    if split not in ("tune", "test"):
        raise ValueError(f"split must be 'tune' or 'test', not {split!r}")
    if language not in LANGUAGES:
        raise ValueError(f"language must be one of {LANGUAGES}, not {language!r}")
    if language == "en":
        sentences = ENGLISH_SENTENCES
    elif language == "yue":
        sentences = CANTONESE_TUNE_SENTENCES if split == "tune" else CANTONESE_TEST_SENTENCES
    else:
        sentences = TUNE_SENTENCES if split == "tune" else TEST_SENTENCES
    recipe = json.dumps([RECIPE_VERSION, split, seed, rates, noises, clips_per_cell, snr_range_db, sentences])
    key = hashlib.sha256(recipe.encode()).hexdigest()[:16]
    folder = cache_dir / f"{'' if language == 'cmn' else language + '-'}{split}-{seed}-{key}"
    manifest = folder / "manifest.json"
    if manifest.exists():
        rows = json.loads(manifest.read_text(encoding="utf-8"))
        return [Clip(**{**r, "path": folder / r["path"], "sentences_s": tuple(map(tuple, r["sentences_s"]))})
                for r in rows]
    cache_dir.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=folder.name + ".tmp.", dir=cache_dir))
    rng = np.random.default_rng(seed)
    babble = babble_bed(np.random.default_rng(seed + 1), 40.0) if "babble" in noises else np.zeros(0)
    clips: list[Clip] = []
    for rate in rates:
        for noise in noises:
            for rep in range(clips_per_cell):
                snr = float(rng.uniform(*snr_range_db))
                audio, syl, speech_s, text, spans = make_clip(rng, sentences, rate, noise, snr, babble,
                                                               language)
                name = f"r{rate}-{noise}-{rep}.wav"
                sf.write(tmp / name, audio.astype(np.float32), SAMPLE_RATE_HZ, subtype="FLOAT")
                clips.append(Clip(tmp / name, syl, rate, noise, round(snr, 2),
                                  audio.size / SAMPLE_RATE_HZ, speech_s, text, spans))
    rows = [{**asdict(c), "path": c.path.name} for c in clips]
    (tmp / "manifest.json").write_text(json.dumps(rows, ensure_ascii=False, indent=1), encoding="utf-8")
    try:
        tmp.rename(folder)
    except OSError:  # another process built it first
        shutil.rmtree(tmp, ignore_errors=True)
    return [Clip(**{**asdict(c), "path": folder / c.path.name}) for c in clips]


@pytest.fixture(scope="session")
def mandarin_corpus() -> Iterator[list[Clip]]:
    """Session-wide held-out Mandarin test corpus (test sentences, seed 2024): 7 rates x 3 noises."""
    yield build_corpus("test", seed=2024)
