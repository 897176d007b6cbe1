"""Calls from a real SIP softphone, end to end: two baresip instances on the loopback, a real
``headset-agent run`` reading the desk's baresip through ``ctrl_tcp``, a real ``headset-host run`` and a
real mosquitto.

The story, on the wall clock (time scale 1):

1. a "customer" baresip dials the "desk" baresip (through the customer's own ctrl_tcp);
2. the desk rings for a chosen number of ring periods of the agent's cadence (``ring_on_s`` +
   ``ring_off_s``), then answers. baresip's ctrl_tcp serves one connection, and that one is the
   agent's, so the person at the desk answers through baresip's console module (``cons``, a UDP
   command ``/accept``), as a softphone user would click "answer"; the agent only watches;
3. the agent's speech file (two-channel own voice) starts a chosen delay after the connection: the
   file is quiet up to a known offset, and the test times the dial and the answer against the
   moment the agent began to play the file (its ``agent started`` log line: the file source's pacing
   starts at the loop's first read, just after it);
4. the customer hangs up; the agent publishes the ``call`` summary; the host counts it.

Two calls: a good one (answered in the 2nd ring, greeting after 1 s: no alert) and a bad one
(answered in the 5th ring, greeting after 3 s: ``slow-answer`` and ``late-greeting`` fire on the host).
Recipe for baresip: docs TESTING.md, "baresip on the loopback".
"""

from __future__ import annotations

import datetime as dt
import functools
import json
import socket
import sqlite3
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import soundfile as sf

from device.calls.baresip import BaresipClient
from device.calls.state import CallPhase
from device.clock import WallClock
from mqtt_schema import Alert, Call, CallStatus, Metrics
from tests.conftest import Mosquitto
from tests.device.calls.test_baresip import Baresip, free_ctrl_port
from tests.device.helpers import Capture, two_channel_speech, wait_for

ROOT = Path(__file__).resolve().parents[2]
SITE, DESK = "sip", "desk-sip"
RING_ON_S, RING_OFF_S = 0.5, 1.0
PERIOD_S = RING_ON_S + RING_OFF_S
FIRST_SPEECH_S = 9.0
"""File time (s after the agent opened it) where the first call's greeting starts."""
SPEECH_S = 4.0
"""Own speech per call (s): the greeting and a little more."""
GAP_S = 15.0
"""File time between the two greetings: the first call's talk, the second call's ringing (6.75 s) and
wait (3 s) fit in between."""

pytestmark = [pytest.mark.slow, pytest.mark.solo, pytest.mark.needs("baresip", "mosquitto")]


@dataclass
class DeskPhone(Baresip):
    """The desk's baresip, with the console module on UDP ``cons_port`` for the person answering."""

    cons_port: int = field(default_factory=free_ctrl_port)

    def write_config(self) -> None:
        super().write_config()
        conf = self.workdir / "config"
        conf.write_text(conf.read_text() + f"module cons.so\ncons_listen 127.0.0.1:{self.cons_port}\n")

    def console(self, command: str) -> None:
        """One console command (``/accept``, ``/hangup``), as the person at the desk would type it."""
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
            s.sendto(command.encode() + b"\n", ("127.0.0.1", self.cons_port))


@dataclass(frozen=True)
class PlannedCall:
    """One call of the story: answered in ring ``rings`` (half-way through it), greeting ``greet_s`` after."""

    rings: int
    greet_s: float
    speech_at_s: float
    """File time of the greeting's onset."""

    @property
    def ring_s(self) -> float:
        return (self.rings - 1) * PERIOD_S + PERIOD_S / 2


@dataclass
class Truth:
    """What the test did, on the wall clock (s since the epoch)."""

    dial: float = 0.0
    accept: float = 0.0
    speech: float = 0.0
    hangup: float = 0.0

    @property
    def ring_s(self) -> float:
        return self.accept - self.dial

    @property
    def greeting_s(self) -> float:
        return self.speech - self.accept


def speech_file(path: Path, tmp: Path, onsets_s: list[float], tail_s: float = 8.0) -> tuple[Path, float]:
    """Quiet room noise with the same stretch of own speech at each onset (file seconds); returns the
    path and the length of the speech (s)."""
    speech, sr = sf.read(two_channel_speech(tmp / "greeting.wav", seconds=SPEECH_S), dtype="float32")
    speech = speech[:int(SPEECH_S * sr)]
    rng = np.random.default_rng(11)
    n = int((onsets_s[-1] + len(speech) / sr + tail_s) * sr)
    out = rng.normal(0, 1e-3, (n, 2)).astype(np.float32)
    for at in onsets_s:
        i = int(at * sr)
        out[i:i + len(speech)] = speech
    sf.write(path, out, sr, subtype="PCM_16")
    return path, len(speech) / sr


def _epoch_s(ts: str) -> float:
    return dt.datetime.fromisoformat(ts.replace("Z", "+00:00")).timestamp()


def log_lines(path: Path) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    for line in path.read_text(encoding="utf-8", errors="replace").splitlines():
        try:
            rec = json.loads(line)
        except ValueError:
            rec = {"msg": line, "raw": True}
        out.append(rec if isinstance(rec, dict) else {"msg": line, "raw": True})
    return out


class Proc:
    """A real ``headset-agent run`` or ``headset-host run`` (``python -m``), stdout and stderr to ``log``."""

    def __init__(self, args: list[str], log: Path) -> None:
        self.log = log
        with log.open("ab") as out:
            self.proc = subprocess.Popen([sys.executable, "-m", *args], stdout=out, stderr=out,
                                         stdin=subprocess.DEVNULL, cwd=ROOT)

    def alive(self) -> bool:
        if self.proc.poll() is not None:
            raise AssertionError(f"{self.log.name}: exited with {self.proc.returncode}:\n"
                                 f"{self.log.read_text(errors='replace')[-3000:]}")
        return True

    def stop(self) -> int:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
        return self.proc.returncode


@pytest.fixture
def phones(tmp_path: Path) -> Iterator[tuple[DeskPhone, Baresip]]:
    desk = DeskPhone(tmp_path / "desk-phone", "desk")
    customer = Baresip(tmp_path / "customer-phone", "customer")
    try:
        desk.start()
        customer.start()
        yield desk, customer
    finally:
        customer.stop()
        desk.stop()


def stored_calls(db: Path) -> int:
    """Rows in the host's ``calls`` history table (0 while the database or the table is not there)."""
    if not db.exists():
        return 0
    try:
        conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=5)
        try:
            return int(conn.execute("SELECT COUNT(*) FROM calls").fetchone()[0])
        finally:
            conn.close()
    except sqlite3.OperationalError:
        return 0


def ringing_since(cap: Capture, dial: float) -> list[Metrics]:
    """The desk's metrics saying "ringing" since wall time ``dial`` (s)."""
    return cap.of(Metrics, lambda m: m.desk == DESK and m.call is CallStatus.RINGING and m.ts / 1000 >= dial - 0.01)


def summaries(cap: Capture, n: int) -> bool:
    """True once ``n`` call summaries of the desk reached the broker."""
    return len(cap.of(Call, lambda c: c.desk == DESK)) >= n


def sleep_until(t: float) -> None:
    """Wait for wall time ``t`` (s since the epoch): the story's own timing, not a synchronisation."""
    while (left := t - time.time()) > 0:
        time.sleep(min(left, 0.05))


def test_rings_and_greeting_latency_from_two_real_baresips_fire_the_host_rules(
        tmp_path: Path, mosquitto: Mosquitto, phones: tuple[DeskPhone, Baresip]) -> None:
    started = time.monotonic()
    desk_phone, customer_phone = phones
    plan = [PlannedCall(rings=2, greet_s=1.0, speech_at_s=FIRST_SPEECH_S),
            PlannedCall(rings=5, greet_s=3.0, speech_at_s=FIRST_SPEECH_S + GAP_S)]
    audio, speech_len_s = speech_file(tmp_path / "agent-speech.wav", tmp_path, [c.speech_at_s for c in plan])

    host_toml = tmp_path / "host.toml"
    host_toml.write_text(f'[broker]\nurl = "{mosquitto.url}"\n[host]\nsites = ["{SITE}"]\n'
                         f'db = "{tmp_path / "host.db"}"\n[dashboard]\nenabled = false\n', encoding="utf-8")
    agent_toml = tmp_path / "agent.toml"
    agent_toml.write_text(
        f'[desk]\nsite = "{SITE}"\ndesk = "{DESK}"\n[mqtt]\nurl = "{mosquitto.url}"\n'
        f'[calls]\nsource = "baresip:127.0.0.1:{desk_phone.ctrl_port}"\nring_on_s = {RING_ON_S}\n'
        f'ring_off_s = {RING_OFF_S}\nmax_rings = 3\ngreet_within_s = 2.0\n', encoding="utf-8")

    cap = Capture(mosquitto.port, SITE, client_id="baresip-test-capture")
    host = Proc(["host_agent.cli", "run", "--config", str(host_toml), "-v"], tmp_path / "host.log")
    agent: Proc | None = None
    customer = BaresipClient("127.0.0.1", customer_phone.ctrl_port, clock=WallClock()).start()
    truths: list[Truth] = []
    try:
        wait_for(lambda: host.alive() and b"headset-host: following" in host.log.read_bytes(), 30, "host subscribed")
        agent = Proc(["device.cli", "run", "--config", str(agent_toml), "--audio", f"file:{audio}",
                      "--headset", "none", "--mock-gpio", "--state-dir", str(tmp_path / "state"),
                      "--log-format", "json"], tmp_path / "agent.log")
        assert customer.wait_connected(10), "the customer's baresip ctrl_tcp did not accept our connection"
        started_rec = wait_for(lambda: agent is not None and agent.alive() and next(
            (r for r in log_lines(agent.log) if r.get("msg") == "agent started"), None), 30, "agent started")
        # the file's pacing starts at the loop's first read, just after "agent started" is logged
        file_t0 = _epoch_s(started_rec["ts"])
        # the agent on the desk's ctrl_tcp, and on the broker (its metrics say so)
        wait_for(lambda: cap.of(Metrics, lambda m: m.desk == DESK and m.call is CallStatus.IDLE), 20,
                 "agent metrics with an idle call state (ctrl_tcp and broker up)")
        assert time.time() < file_t0 + plan[0].speech_at_s - plan[0].greet_s - plan[0].ring_s - 0.5, \
            "the agent took too long to come up for the story's first call"

        for i, call in enumerate(plan):
            t = Truth()
            speech_at = file_t0 + call.speech_at_s
            sleep_until(speech_at - call.greet_s - call.ring_s)
            t.dial = time.time()
            customer.dial(desk_phone.uri)
            wait_for(functools.partial(ringing_since, cap, t.dial), 5, f"call {i + 1}: desk ringing in metrics")
            sleep_until(speech_at - call.greet_s)
            t.accept = time.time()
            desk_phone.console("/accept")
            wait_for(lambda: customer.current().phase is CallPhase.ESTABLISHED, 5, f"call {i + 1}: customer connected")
            t.speech = speech_at
            sleep_until(speech_at + speech_len_s + 0.5)
            t.hangup = time.time()
            customer.hangup()
            wait_for(functools.partial(summaries, cap, i + 1), 15, f"call {i + 1}: summary on the broker")
            truths.append(t)
            if i == 0:  # the good call raised nothing: the host has stored it, and no alert came
                wait_for(lambda: stored_calls(tmp_path / "host.db") == 1, 10, "call 1 in the host's history")
                assert not cap.of(Alert), f"an alert after a call within the norms: {cap.of(Alert)}"

        alerts = wait_for(lambda: {a.rule for a in cap.of(Alert, lambda a: a.desk == DESK)} >= {
            "slow-answer", "late-greeting"} and cap.of(Alert, lambda a: a.desk == DESK), 15,
            "slow-answer and late-greeting alerts from the host")
    finally:
        customer.stop()
        rc_agent = agent.stop() if agent is not None else None
        rc_host = host.stop()
        cap.close()

    calls = sorted(cap.of(Call, lambda c: c.desk == DESK), key=lambda c: c.start_ts)
    assert len(calls) == 2, calls
    lines = []
    for n, plan_c, t, c in zip(range(1, 3), plan, truths, calls, strict=True):
        assert c.source == "baresip" and c.direction is not None and c.direction.value == "incoming"
        assert c.answered and not c.rings_counted and c.max_rings == 3 and c.greet_within_s == 2.0
        # rings from the ringing time (dial -> answer as baresip reported them to the agent) and the cadence
        assert c.ring_s is not None and abs(c.ring_s - t.ring_s) <= 0.15, (c.ring_s, t.ring_s)
        assert c.rings == plan_c.rings, (c.rings, plan_c.rings, c.ring_s)
        assert c.answer_ok is (plan_c.rings <= 3)
        # the VAD confirms speech a hop or two after its onset (0.1 s hops)
        assert c.greeting_latency_s is not None
        assert t.greeting_s - 0.05 <= c.greeting_latency_s <= t.greeting_s + 0.4, \
            (c.greeting_latency_s, t.greeting_s)
        assert c.greeting_ok is (plan_c.greet_s <= 2.0)
        assert c.talk_s is not None and abs(c.talk_s - (t.hangup - t.accept)) <= 0.3, (c.talk_s, t.hangup - t.accept)
        assert c.own_talk_s is not None and 0.6 * speech_len_s < c.own_talk_s <= speech_len_s + 0.5
        assert c.silent_call is None and c.longest_mutual_silence_s is None  # far end not measured
        assert c.level_dbov is not None and c.rate_spm is not None
        lines.append(f"call {n}: rings {c.rings} (planned {plan_c.rings}; ring_s {c.ring_s:.3f} vs {t.ring_s:.3f} "
                     f"dial->answer), greeting {c.greeting_latency_s:.3f} s (planned {plan_c.greet_s:.1f}, "
                     f"from the file's timing {t.greeting_s:.3f}), answer_ok {c.answer_ok}, greeting_ok {c.greeting_ok}")
    fired = {a.rule: a for a in alerts}
    assert fired["slow-answer"].value == 1 and fired["late-greeting"].value == 1, fired
    assert {a.rule for a in alerts} <= {"slow-answer", "late-greeting"}, alerts
    assert rc_agent == 0 and rc_host == 0, (rc_agent, rc_host)
    for log in (tmp_path / "agent.log", tmp_path / "host.log"):
        assert "Traceback" not in log.read_text(errors="replace"), log.read_text(errors="replace")[-3000:]
    print("\n" + "\n".join(lines) + f"\nalerts: {sorted(fired)}; wall time {time.monotonic() - started:.1f} s")


# --- silent calls: the far end recorded by the desk's baresip (sndfile) -----------------------------------

PROMPT_S = 1.6
"""Length of each prompt the agent gives on the silent call (s of the speech file)."""
WAIT_S = 2.5
"""The agent's planned wait after each prompt on the silent call (s): the norm asks for 2 s."""


@dataclass
class RecordingDeskPhone(DeskPhone):
    """The desk's baresip with ``sndfile`` recording every call to ``rec/`` (what the agent measures)."""

    @property
    def rec(self) -> Path:
        return self.workdir / "rec"

    def write_config(self) -> None:
        super().write_config()
        self.rec.mkdir(parents=True, exist_ok=True)
        conf = self.workdir / "config"
        conf.write_text(conf.read_text() + f"module sndfile.so\nsnd_path {self.rec}\n")


@dataclass
class TalkingCustomer(Baresip):
    """A customer whose baresip plays ``voice`` (a mono 8 kHz WAV, baresip's PCMU rate) into every call."""

    voice: Path | None = None

    def write_config(self) -> None:
        super().write_config()
        assert self.voice is not None
        conf = self.workdir / "config"
        conf.write_text(conf.read_text().replace(f"aufile,{self.workdir / 'tone.wav'}", f"aufile,{self.voice}"))


def customer_voice(path: Path, lead_s: float) -> tuple[Path, float]:
    """The customer's line: quiet line noise (-60 dBov) with an espeak-ng English sentence ``lead_s`` into
    the call, 60 s long (baresip 1.0.0 hangs up when its aufile ends); returns the path and the speech
    seconds of the sentence by the analyser's definition."""
    from scipy.signal import resample_poly

    from tests.device.room_corpus import CUSTOMER_LINES, own_speech_truth_s, speak

    voice, text = CUSTOMER_LINES[0]
    x16 = speak(text, voice)
    x = resample_poly(x16, 1, 2)
    out = np.random.default_rng(5).normal(0, 1e-3, 60 * 8000)
    i = int(lead_s * 8000)
    out[i:i + x.size] += x
    sf.write(path, np.clip(out, -1, 1), 8000, subtype="PCM_16")
    return path, own_speech_truth_s(x16)


def active_span_s(x: np.ndarray, sr: int, below_peak_db: float = 40.0) -> tuple[float, float]:
    """(first, end) seconds of the 10 ms hops of ``x`` within ``below_peak_db`` of its loudest hop."""
    hop = sr // 100
    n = x.size // hop
    lv = 10 * np.log10(np.mean(x[:n * hop].reshape(n, hop) ** 2, axis=1) + 1e-20)
    on = np.flatnonzero(lv > lv.max() - below_peak_db)
    return on[0] / 100, (on[-1] + 1) / 100


@pytest.fixture
def recording_phones(tmp_path: Path) -> Iterator[tuple[RecordingDeskPhone, Baresip, TalkingCustomer]]:
    voice, _ = customer_voice(tmp_path / "customer-voice.wav", 1.0)
    desk = RecordingDeskPhone(tmp_path / "desk-phone", "desk")
    silent = Baresip(tmp_path / "silent-customer", "silent")  # its aufile: 60 s of digital silence
    talking = TalkingCustomer(tmp_path / "talking-customer", "talking", voice=voice)
    try:
        for b in (desk, silent, talking):
            b.start()
        yield desk, silent, talking
    finally:
        for b in (talking, silent, desk):
            b.stop()


def test_silent_call_from_the_far_end_recorded_by_baresip(
        tmp_path: Path, mosquitto: Mosquitto,
        recording_phones: tuple[RecordingDeskPhone, Baresip, TalkingCustomer]) -> None:
    """Call 1: the customer's line is silent; the agent prompts, waits 2.5 s, prompts again, waits 2.5 s and
    hangs up (the norm). Call 2: the customer speaks. The desk's baresip records both far ends (sndfile),
    the agent measures them at the close and deletes the recordings."""
    started = time.monotonic()
    desk_phone, silent_phone, talking_phone = recording_phones
    _, far_truth_s = customer_voice(tmp_path / "truth.wav", 1.0)
    # the agent's speech file: two prompts on call 1, a greeting on call 2
    speech, sr = sf.read(two_channel_speech(tmp_path / "own.wav", seconds=4.0), dtype="float32")
    prompt = speech[:int(PROMPT_S * sr)]
    lead, end = active_span_s(prompt[:, 0].astype(np.float64), sr)
    p1 = FIRST_SPEECH_S
    p2 = p1 + PROMPT_S + WAIT_S
    hangup_1 = p2 + PROMPT_S + WAIT_S  # file time of the desk's hang-up
    greet_2 = hangup_1 + 3.0
    rng = np.random.default_rng(11)
    own = rng.normal(0, 1e-3, (int((greet_2 + 12.0) * sr), 2)).astype(np.float32)
    for at in (p1, p2, greet_2):
        own[int(at * sr):int(at * sr) + len(prompt)] = prompt
    audio = tmp_path / "agent-speech.wav"
    sf.write(audio, own, sr, subtype="PCM_16")
    # the true waits after each prompt's last word (file seconds)
    true_waits = [(p2 + lead) - (p1 + end), hangup_1 - (p2 + end)]

    agent_toml = tmp_path / "agent.toml"
    agent_toml.write_text(
        f'[desk]\nsite = "{SITE}"\ndesk = "{DESK}"\n[mqtt]\nurl = "{mosquitto.url}"\n'
        f'[calls]\nsource = "baresip:127.0.0.1:{desk_phone.ctrl_port}"\nring_on_s = {RING_ON_S}\n'
        f'ring_off_s = {RING_OFF_S}\nfar_end_dir = "{desk_phone.rec}"\n', encoding="utf-8")
    cap = Capture(mosquitto.port, SITE, client_id="baresip-silent-capture")
    agent: Proc | None = None
    silent = BaresipClient("127.0.0.1", silent_phone.ctrl_port, clock=WallClock()).start()
    talking = BaresipClient("127.0.0.1", talking_phone.ctrl_port, clock=WallClock()).start()
    try:
        agent = Proc(["device.cli", "run", "--config", str(agent_toml), "--audio", f"file:{audio}",
                      "--headset", "none", "--mock-gpio", "--state-dir", str(tmp_path / "state"),
                      "--log-format", "json"], tmp_path / "agent.log")
        assert silent.wait_connected(10) and talking.wait_connected(10), "customers' ctrl_tcp"
        started_rec = wait_for(lambda: agent is not None and agent.alive() and next(
            (r for r in log_lines(agent.log) if r.get("msg") == "agent started"), None), 30, "agent started")
        file_t0 = _epoch_s(started_rec["ts"])
        wait_for(lambda: cap.of(Metrics, lambda m: m.desk == DESK and m.call is CallStatus.IDLE), 20,
                 "agent metrics with an idle call state (ctrl_tcp and broker up)")
        answer_1 = p1 - 1.0  # the first prompt 1 s after the answer
        assert time.time() < file_t0 + answer_1 - PERIOD_S, "the agent took too long to come up"

        # call 1: the silent customer; answered in the first ring; the desk hangs up after the second wait
        sleep_until(file_t0 + answer_1 - PERIOD_S / 2)
        silent.dial(desk_phone.uri)
        sleep_until(file_t0 + answer_1)
        desk_phone.console("/accept")
        wait_for(lambda: silent.current().phase is CallPhase.ESTABLISHED, 5, "call 1: connected")
        sleep_until(file_t0 + hangup_1)
        desk_phone.console("/hangup")
        wait_for(functools.partial(summaries, cap, 1), 15, "call 1: summary on the broker")
        # call 2: the talking customer (1 s into the call), the agent greets 1 s after the answer
        answer_2 = greet_2 - 1.0
        sleep_until(file_t0 + answer_2 - PERIOD_S / 2)
        talking.dial(desk_phone.uri)
        sleep_until(file_t0 + answer_2)
        desk_phone.console("/accept")
        wait_for(lambda: talking.current().phase is CallPhase.ESTABLISHED, 5, "call 2: connected")
        sleep_until(file_t0 + answer_2 + 6.0)
        talking.hangup()
        wait_for(functools.partial(summaries, cap, 2), 15, "call 2: summary on the broker")
    finally:
        silent.stop()
        talking.stop()
        rc_agent = agent.stop() if agent is not None else None
        cap.close()

    c1, c2 = sorted(cap.of(Call, lambda c: c.desk == DESK), key=lambda c: c.start_ts)
    log_text = (tmp_path / "agent.log").read_text(errors="replace")
    assert rc_agent == 0 and "Traceback" not in log_text, log_text[-3000:]
    # call 1: a silent line, handled by the norm
    assert c1.silent_call is True, (c1, log_text[-2000:])
    assert c1.far_talk_s is not None and c1.far_talk_s < 0.5
    assert c1.silent_prompts == 2 and c1.silent_call_ok is True, c1
    assert c1.silent_min_wait_s is not None and min(true_waits) - 0.45 <= c1.silent_min_wait_s <= min(true_waits) + 0.3, \
        (c1.silent_min_wait_s, true_waits)
    assert c1.longest_mutual_silence_s is not None and \
        min(true_waits) - 0.45 <= c1.longest_mutual_silence_s <= max(true_waits) + 0.3, (c1.longest_mutual_silence_s, true_waits)
    # call 2: the customer spoke
    assert c2.silent_call is False and c2.silent_prompts is None and c2.silent_call_ok is None, c2
    assert c2.far_talk_s is not None and 0.6 * far_truth_s <= c2.far_talk_s <= far_truth_s + 0.6, (c2.far_talk_s, far_truth_s)
    assert c2.longest_mutual_silence_s is not None
    # the recordings were measured and deleted (keep_far_end_audio = false): nothing piles up
    measured = [r for r in log_lines(tmp_path / "agent.log") if r.get("msg") == "far end measured"]
    assert len(measured) == 2, measured
    assert not list(desk_phone.rec.glob("dump-*.wav")), list(desk_phone.rec.iterdir())
    print(f"\ncall 1 (silent line): silent_call {c1.silent_call}, far_talk_s {c1.far_talk_s}, prompts {c1.silent_prompts}, "
          f"shortest wait {c1.silent_min_wait_s} s (true {min(true_waits):.2f}), longest mutual silence "
          f"{c1.longest_mutual_silence_s} s, silent_call_ok {c1.silent_call_ok}; talk_s {c1.talk_s}"
          f"\ncall 2 (customer speaks): silent_call {c2.silent_call}, far_talk_s {c2.far_talk_s} (truth {far_truth_s:.2f}), "
          f"longest mutual silence {c2.longest_mutual_silence_s} s; talk_s {c2.talk_s}"
          f"\nfar-end recordings: {[(r.get('file'), r.get('duration_s'), r.get('speech_s')) for r in measured]}"
          f"\nwall time {time.monotonic() - started:.1f} s")
