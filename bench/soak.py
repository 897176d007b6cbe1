"""Soak of the desk agent and the host aggregator, as real processes on a real mosquitto (not a test).

1. desk: one ``headset-agent run`` process on a looping 2-channel speech file (loud and normal blocks,
   so cues come and go), a virtual headset on a pty (posture and wear cycles) or none, mock GPIO, and
   the agent clock TIME_SCALE times faster than wall time, for AGENT_HOURS of agent clock. The agent's
   RSS (VmRSS), open fds and threads are sampled every SAMPLE_S wall seconds; a subscriber counts the
   minute rollups and events that reach the broker. At the end the agent gets SIGTERM and its spool
   (``STATE_DIR/spool.db``) is read: every event and minute must have been delivered (0 rows).
2. host: one ``headset-host run`` process fed by DESKS simulated desks (in publisher processes): a
   retained state birth each, metrics at 1 Hz (QoS 0), a minute rollup a minute and an event every
   EVENT_EVERY_S (QoS 1), for HOST_MINUTES. The host's RSS and fds are sampled, and the messages sent are
   compared with the host's own counters (its Prometheus /metrics).

RSS slopes are least-squares fits over the second half of the samples (the start-up growth is not a
leak): MiB per agent-hour for the desk, MiB per 10 wall minutes for the host. Progress goes to stderr,
the table to stdout.

example:
    .venv/bin/python bench/soak.py --quick                 # about a minute each, a smoke check
    .venv/bin/python bench/soak.py                         # 8 agent-hours at 50x, then 1,000 desks x 10 min
    .venv/bin/python bench/soak.py --only desk --agent-hours 2 --time-scale 40 --headset none
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import socket
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import numpy as np  # noqa: E402
import paho.mqtt.client as mqtt  # noqa: E402
import soundfile as sf  # noqa: E402
from paho.mqtt.enums import CallbackAPIVersion  # noqa: E402

from mqtt_schema import (  # noqa: E402
    Cue,
    DeskKind,
    DeskStatus,
    DeskTopic,
    Event,
    EventKind,
    Metrics,
    Minute,
    Posture,
    State,
    decode_topic,
    desk_filter,
    encode,
)

PY = sys.executable
TICK = os.sysconf("SC_CLK_TCK")
SITE = "soak"
DESK = "desk-soak"
MIB = 1024.0


def log(msg: str) -> None:
    print(f"soak: {msg}", file=sys.stderr, flush=True)


# --- /proc ---------------------------------------------------------------------------------------------


@dataclass
class Sample:
    wall_s: float  # since the start of sampling
    rss_mib: float
    fds: int
    threads: int
    cpu_s: float
    extra: dict[str, float] = field(default_factory=dict)


def proc_sample(pid: int, t0: float) -> Sample:
    rss = float("nan")
    threads = 0
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            rss = int(line.split()[1]) / MIB
        elif line.startswith("Threads:"):
            threads = int(line.split()[1])
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    cpu = (int(fields[11]) + int(fields[12])) / TICK
    fds = len(os.listdir(f"/proc/{pid}/fd"))
    return Sample(time.monotonic() - t0, rss, fds, threads, cpu)


def slope(xs: list[float], ys: list[float]) -> float:
    """Least-squares slope of ys on xs over the second half of the points (nan with fewer than 3)."""
    h = len(xs) // 2
    x, y = xs[h:], ys[h:]
    if len(x) < 3 or len(set(x)) < 2:
        return float("nan")
    return statistics.linear_regression(x, y).slope


def first_last_max(values: list[float], fmt: str) -> str:
    if not values:
        return "no samples"
    return f"{format(values[0], fmt)} / {format(values[-1], fmt)} / {format(max(values), fmt)}"


# --- broker --------------------------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def start_mosquitto(work: Path) -> tuple[subprocess.Popen[bytes], int]:
    exe = shutil.which("mosquitto") or "/usr/sbin/mosquitto"
    port = free_port()
    conf = work / "mosquitto.conf"
    conf.write_text(f"listener {port} 127.0.0.1\nallow_anonymous true\nmax_queued_messages 1000000\n"
                    "max_inflight_messages 0\n")
    proc = subprocess.Popen([exe, "-c", str(conf)], stdout=subprocess.DEVNULL,
                            stderr=(work / "mosquitto.log").open("wb"))
    end = time.monotonic() + 10
    while time.monotonic() < end:
        try:
            socket.create_connection(("127.0.0.1", port), 0.2).close()
            return proc, port
        except OSError:
            if proc.poll() is not None:
                break
            time.sleep(0.05)
    raise RuntimeError(f"mosquitto did not start: {(work / 'mosquitto.log').read_text()[-1000:]}")


def stop_process(proc: subprocess.Popen[Any], timeout_s: float = 30.0) -> tuple[int, float]:
    """SIGTERM, then wait; SIGKILL after ``timeout_s``. Returns (exit code, seconds to exit)."""
    t0 = time.monotonic()
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout_s)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(10)
    return int(proc.returncode), time.monotonic() - t0


# --- desk soak -----------------------------------------------------------------------------------------


def speech_file(path: Path, loud_every_s: float) -> Path:
    """The tests' two-channel speech (the demo clips, looped by the agent), with every other block of
    ``loud_every_s`` seconds 12 dB louder, so volume cues turn on and off through the soak."""
    from tests.device.helpers import two_channel_speech

    two_channel_speech(path, seconds=3600.0)  # every clip once (about 90 s)
    x, sr = sf.read(path, dtype="float32", always_2d=True)
    n = int(loud_every_s * sr)
    if n > 0:
        x = np.concatenate([x, x])  # long enough for several loud/normal blocks
        for k in range(0, len(x), 2 * n):
            x[k:k + n] *= 4.0
        x = np.clip(x, -1.0, 1.0)
    sf.write(path, x, sr, subtype="PCM_16")
    return path


def posture_trace(hours: float) -> Any:
    """A 15-minute cycle over the whole soak: upright, slouched, doffed, upright again."""
    from hw.virtual_headset import HeadsetTrace

    segs: list[tuple[float, float, dict[str, Any]]] = []
    cycle = 900.0
    t = 0.0
    end = hours * 3600.0 + 3600.0
    while t < end:
        segs += [(t, t + 600, {"pitch": 2.0, "roll": 0.0, "worn": True}),
                 (t + 600, t + 840, {"pitch": 28.0, "roll": 4.0, "worn": True}),
                 (t + 840, t + 870, {"pitch": 0.0, "roll": 0.0, "worn": False}),
                 (t + 870, t + cycle, {"pitch": 1.0, "roll": -1.0, "worn": True})]
        t += cycle
    return HeadsetTrace.from_segments(segs)


class DeskCapture:
    """Counts what the desk published: distinct minute rollups, events and metrics (QoS 1 subscription)."""

    def __init__(self, port: int) -> None:
        self.minutes: dict[tuple[int, int], int] = {}  # (boot, minute_ts) -> times received
        self.events: dict[tuple[int, int], str] = {}  # (boot, seq) -> kind
        self.metrics = 0
        self.states: list[str] = []
        self.bad = 0
        self.lock = threading.Lock()
        self.client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id="soak-capture", clean_session=False,
                                  protocol=mqtt.MQTTv311)
        self.client.on_connect = self._on_connect
        self.client.on_message = self._on_message
        self.client.connect("127.0.0.1", port)
        self.client.loop_start()
        end = time.monotonic() + 10
        while not self.client.is_connected() and time.monotonic() < end:
            time.sleep(0.02)

    def _on_connect(self, client: mqtt.Client, userdata: Any, flags: Any, reason: Any, props: Any) -> None:
        client.subscribe(desk_filter(SITE, DESK, "+"), qos=1)

    def _on_message(self, client: mqtt.Client, userdata: Any, msg: mqtt.MQTTMessage) -> None:
        try:
            _, m = decode_topic(msg.topic, msg.payload)
        except Exception:  # counted; the soak goes on
            with self.lock:
                self.bad += 1
            return
        with self.lock:
            if isinstance(m, Minute):
                key = (m.boot, m.minute_ts)
                self.minutes[key] = self.minutes.get(key, 0) + 1
            elif isinstance(m, Event):
                self.events[(m.boot, m.seq)] = m.kind.value
            elif isinstance(m, Metrics):
                self.metrics += 1
            elif isinstance(m, State):
                self.states.append(m.status.value)

    def close(self) -> None:
        self.client.loop_stop()
        self.client.disconnect()


def spool_rows(path: Path) -> tuple[int, int]:
    """(rows, dropped) of an agent's spool.db, read-only."""
    db = sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=5.0)
    try:
        rows = int(db.execute("SELECT COUNT(*) FROM rows").fetchone()[0])
        dropped = int(db.execute("SELECT value FROM meta WHERE key = 'dropped'").fetchone()[0])
        return rows, dropped
    finally:
        db.close()


def read_log(path: Path) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    for line in path.read_text(encoding="utf-8", errors="replace").splitlines():
        try:
            rec = json.loads(line)
        except ValueError:
            rec = {"level": "raw", "msg": line}
        out.append(rec if isinstance(rec, dict) else {"level": "raw", "msg": str(rec)})
    return out


def desk_soak(args: argparse.Namespace, work: Path) -> list[tuple[str, str, str]]:
    scale: float = args.time_scale
    wall_s = args.agent_hours * 3600.0 / scale
    log(f"desk: {args.agent_hours:g} agent-hours at {scale:g}x = {wall_s:.0f} s of wall time, "
        f"headset {args.headset}, sample every {args.sample_s:g} s")
    audio = speech_file(work / "speech.wav", args.loud_every_s)
    broker, port = start_mosquitto(work)
    headset: Any = None
    capture: DeskCapture | None = None
    agent: subprocess.Popen[bytes] | None = None
    state_dir = work / "desk-state"
    log_path = work / "agent.log"
    samples: list[Sample] = []
    spool_during: list[int] = []
    try:
        capture = DeskCapture(port)
        hs_arg = "none"
        if args.headset == "virtual":
            from hw.virtual_headset import VirtualHeadset

            headset = VirtualHeadset(posture_trace(args.agent_hours), link_path=work / "headset.tty",
                                     time_scale=scale)
            headset.start()
            hs_arg = str(headset.link_path)
        cmd = [PY, "-m", "device.cli", "run", "--site", SITE, "--desk", DESK,
               "--broker", f"mqtt://127.0.0.1:{port}", "--audio", f"file:{audio}", "--loop",
               "--headset", hs_arg, "--state-dir", str(state_dir), "--mock-gpio",
               "--time-scale", f"{scale:g}", "--log-level", "info", "--log-format", "json"]
        with log_path.open("wb") as lf:
            agent = subprocess.Popen(cmd, cwd=ROOT, stdout=lf, stderr=lf, stdin=subprocess.DEVNULL)
        t0 = time.monotonic()
        next_progress = 0.0
        next_sample = min(3.0, wall_s / 4)  # the first sample after the interpreter's start-up
        spool_path = state_dir / "spool.db"
        while True:
            time.sleep(max(0.0, min(next_sample, wall_s) - (time.monotonic() - t0)))
            elapsed = time.monotonic() - t0
            if agent.poll() is not None:
                raise RuntimeError(f"the agent exited with {agent.returncode} after {elapsed:.0f} s: "
                                   f"{log_path.read_text(errors='replace')[-2000:]}")
            if elapsed >= next_sample or elapsed >= wall_s:
                next_sample += args.sample_s
                s = proc_sample(agent.pid, t0)
                samples.append(s)
                if spool_path.exists():
                    try:
                        spool_during.append(spool_rows(spool_path)[0])
                    except sqlite3.Error:
                        pass
                if elapsed >= next_progress:
                    assert capture is not None
                    with capture.lock:
                        mins = len(capture.minutes)
                    log(f"desk: {elapsed * scale / 3600:5.2f}/{args.agent_hours:g} agent-h  RSS {s.rss_mib:6.1f} MiB  "
                        f"fds {s.fds:3d}  threads {s.threads:2d}  minutes {mins}  "
                        f"spool {spool_during[-1] if spool_during else '-'}")
                    next_progress = elapsed + args.progress_s
            if elapsed >= wall_s:
                break
        run_wall = time.monotonic() - t0
        log("desk: SIGTERM to the agent ...")
        code, stop_s = stop_process(agent)
        time.sleep(2.0)  # the last QoS 1 messages to the subscriber
        rows, dropped = spool_rows(spool_path) if spool_path.exists() else (-1, -1)
    finally:
        if agent is not None and agent.poll() is None:
            agent.kill()
        if headset is not None:
            headset.stop()
        if capture is not None:
            capture.close()
        broker.terminate()
        broker.wait(10)

    assert capture is not None
    spool_kib = sum(f.stat().st_size for f in state_dir.glob("spool.db*")) / 1024
    recs = read_log(log_path)
    errors = [r for r in recs if r.get("level") in ("error", "critical", "raw")]
    warnings = [r for r in recs if r.get("level") == "warning"]
    logged_events = {(int(r["boot"]), int(r["seq"])) for r in recs
                     if r.get("msg") == "event" and "boot" in r and "seq" in r}
    received = set(capture.events)
    agent_h = [s.wall_s * scale / 3600.0 for s in samples]
    rss = [s.rss_mib for s in samples]
    fds = [float(s.fds) for s in samples]
    thr = [float(s.threads) for s in samples]
    cpu = (samples[-1].cpu_s - samples[0].cpu_s) / max(1e-9, samples[-1].wall_s - samples[0].wall_s) if samples else 0.0
    hours_run = run_wall * scale / 3600.0
    expected_min = int(hours_run * 60)
    minute_ts = sorted(ts for (_, ts) in capture.minutes)
    gaps = sum(1 for a, b in zip(minute_ts, minute_ts[1:], strict=False) if b - a != 60_000)
    dup_minutes = sum(n - 1 for n in capture.minutes.values())

    def msgs(rs: list[dict[str, Any]]) -> str:
        counts: dict[str, int] = {}
        for r in rs:
            key = str(r.get("msg", ""))[:60]
            counts[key] = counts.get(key, 0) + 1
        return "; ".join(f"{k} x{n}" for k, n in sorted(counts.items(), key=lambda kv: -kv[1])[:4])

    rows_out: list[tuple[str, str, str]] = [
        ("agent clock run", f"{hours_run:.2f} agent-h", f"{run_wall:.0f} s wall at {scale:g}x, {len(samples)} samples"),
        ("agent RSS MiB first / last / max", first_last_max(rss, ".1f"), ""),
        ("agent RSS slope, 2nd half", f"{slope(agent_h, rss):+.3f} MiB/agent-h", "flat: ~0"),
        ("agent open fds first / last / max", first_last_max(fds, ".0f"), ""),
        ("agent fds slope, 2nd half", f"{slope(agent_h, fds):+.3f} fds/agent-h", "flat: 0"),
        ("agent threads first / last / max", first_last_max(thr, ".0f"), ""),
        ("agent CPU", f"{cpu * 100:.1f}% of a core", f"{os.cpu_count()} cores on the machine"),
        ("spool rows during run (max / median)",
         f"{max(spool_during) if spool_during else -1} / {statistics.median(spool_during) if spool_during else -1:g}",
         "backlog waiting for PUBACK"),
        ("spool rows at the end", f"{rows}", f"dropped counter {dropped}; target 0; "
         f"files {spool_kib:.0f} KiB (db + wal)"),
        ("agent exit on SIGTERM", f"code {code}", f"in {stop_s:.1f} s"),
        ("minute rollups received / expected", f"{len(capture.minutes)} / {expected_min}",
         f"{gaps} gaps, {dup_minutes} duplicates; first and last are partial minutes (+1..2)"),
        ("events logged durable / received", f"{len(logged_events)} / {len(capture.events)}",
         f"{len(logged_events - received)} logged but not received"),
        ("metrics received", f"{capture.metrics}", f"~{hours_run * 3600:.0f} expected at 1 per agent-s"),
        ("states received", ", ".join(capture.states) or "none", f"bad payloads {capture.bad}"),
        ("agent log errors", f"{len(errors)}", msgs(errors)),
        ("agent log warnings", f"{len(warnings)}", msgs(warnings)),
    ]
    return rows_out


# --- host soak -----------------------------------------------------------------------------------------


def publish_main(port: int, first: int, count: int, seconds: float, event_every_s: float) -> None:
    """Desks ``first``..``first+count-1``: a birth each, then metrics at 1 Hz, a minute rollup each
    minute and an event every ``event_every_s`` (staggered per desk) for ``seconds``; prints counts."""
    c = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=f"soak-pub-{first}-{os.getpid()}")
    c.max_queued_messages_set(0)
    c.max_inflight_messages_set(2000)
    c.connect("127.0.0.1", port)
    c.loop_start()
    names = [f"d{i:05d}" for i in range(first, first + count)]
    topic = {k: [str(DeskTopic(SITE, n, k)) for n in names] for k in (DeskKind.STATE, DeskKind.METRICS,
                                                                          DeskKind.EVENT, DeskKind.MINUTE)}
    seq = [0] * count
    sent = {"state": 0, "metrics": 0, "event": 0, "minute": 0}
    pending: list[mqtt.MQTTMessageInfo] = []
    cue_on = [False] * count

    def next_seq(i: int) -> int:
        seq[i] += 1
        return seq[i]

    def now_ms() -> int:
        return time.time_ns() // 1_000_000

    for i, n in enumerate(names):
        pending.append(c.publish(topic[DeskKind.STATE][i], encode(State(
            site=SITE, desk=n, boot=1, seq=next_seq(i), ts=now_ms(), status=DeskStatus.ONLINE)), qos=1, retain=True))
        sent["state"] += 1
    t0 = time.monotonic()
    tick = 0
    slices = 10
    per_slice = (count + slices - 1) // slices
    behind = 0
    ev_ticks = max(1, int(event_every_s))
    while tick < int(seconds):
        for sl in range(slices):
            due = t0 + tick + sl / slices
            wait = due - time.monotonic()
            if wait > 0:
                time.sleep(wait)
            elif wait < -1.0:
                behind += 1
            ts = now_ms()
            for i in range(sl * per_slice, min(count, (sl + 1) * per_slice)):
                s = next_seq(i)
                c.publish(topic[DeskKind.METRICS][i], encode(Metrics(
                    site=SITE, desk=names[i], boot=1, seq=s, ts=ts, speaking=s % 3 != 0, speech_s=0.6,
                    level_dbov=-26.0 + (s % 5), rate_spm=140.0, distance_cm=5.0, noise_dbov=-60.0, worn=True,
                    posture=Posture.UPRIGHT, cues=[Cue.PACE_FAST] if cue_on[i] else [])), qos=0)
                sent["metrics"] += 1
                if (tick + i) % ev_ticks == 0 and tick > 0:
                    cue_on[i] = not cue_on[i]
                    pending.append(c.publish(topic[DeskKind.EVENT][i], encode(Event(
                        site=SITE, desk=names[i], boot=1, seq=next_seq(i), ts=ts,
                        kind=EventKind.CUE_ON if cue_on[i] else EventKind.CUE_OFF, cue=Cue.PACE_FAST)), qos=1))
                    sent["event"] += 1
                if (tick + i) % 60 == 0 and tick > 0:
                    minute_ts = (ts // 60_000 - 1) * 60_000
                    pending.append(c.publish(topic[DeskKind.MINUTE][i], encode(Minute(
                        site=SITE, desk=names[i], boot=1, seq=next_seq(i), ts=ts, minute_ts=minute_ts,
                        speech_s=30.0, level_dbov=-25.0, rate_spm=140.0, noise_dbov=-60.0,
                        cue_s={Cue.PACE_FAST: 20.0}, worn_s=60.0, upright_s=60.0)), qos=1))
                    sent["minute"] += 1
        tick += 1
        if len(pending) > 5000:
            pending = [p for p in pending if not p.is_published()]
    end = time.monotonic() + 30
    unacked = [p for p in pending if not p.is_published()]
    while unacked and time.monotonic() < end:
        time.sleep(0.1)
        unacked = [p for p in unacked if not p.is_published()]
    c.disconnect()
    c.loop_stop()
    print(json.dumps({"sent": sent, "unacked": len(unacked), "late_slices": behind,
                      "elapsed_s": time.monotonic() - t0}), flush=True)


def host_metrics(url: str) -> dict[str, float]:
    """Every sample of the host's /metrics text, keyed by name{labels} (histograms left out)."""
    out: dict[str, float] = {}
    with urllib.request.urlopen(url + "metrics", timeout=10) as r:
        for line in r.read().decode().splitlines():
            if line.startswith("#") or not line.strip() or "_bucket{" in line:
                continue
            name, _, value = line.rpartition(" ")
            try:
                out[name] = float(value)
            except ValueError:
                pass
    return out


def total(m: dict[str, float], family: str) -> float:
    return sum(v for k, v in m.items() if k == family or k.startswith(family + "{"))


def host_soak(args: argparse.Namespace, work: Path) -> list[tuple[str, str, str]]:
    seconds = args.host_minutes * 60.0
    log(f"host: {args.desks} desks x 1 Hz for {args.host_minutes:g} min via {args.publishers} publisher "
        f"process(es), sample every {args.sample_s:g} s")
    broker, port = start_mosquitto(work)
    cfg = work / "host.toml"
    cfg.write_text(f'[broker]\nurl = "mqtt://127.0.0.1:{port}"\nclient_id = "soak-host"\n'
                   f'[host]\nsites = ["{SITE}"]\ndb = "{work / "host.db"}"\n[dashboard]\nport = 0\n')
    err_path = work / "host.log"
    host: subprocess.Popen[bytes] | None = None
    pubs: list[subprocess.Popen[str]] = []
    samples: list[Sample] = []
    try:
        with err_path.open("wb") as ef:
            host = subprocess.Popen([PY, "-m", "host_agent.cli", "run", "--config", str(cfg)], cwd=ROOT,
                                    stdout=ef, stderr=ef, stdin=subprocess.DEVNULL)
        url = ""
        end = time.monotonic() + 30
        while not url and time.monotonic() < end:
            if host.poll() is not None:
                raise RuntimeError(f"the host exited with {host.returncode}: {err_path.read_text()[-2000:]}")
            for line in err_path.read_text(errors="replace").splitlines():
                if "dashboard http" in line:
                    url = line.split("dashboard ", 1)[1].split()[0]
            time.sleep(0.1)
        if not url:
            raise RuntimeError(f"the host printed no dashboard url: {err_path.read_text()[-2000:]}")
        time.sleep(1.0)
        t0 = time.monotonic()
        per = (args.desks + args.publishers - 1) // args.publishers
        for k in range(args.publishers):
            first, count = k * per, min(per, args.desks - k * per)
            if count > 0:
                pubs.append(subprocess.Popen(
                    [PY, __file__, "--_publish", str(port), str(first), str(count), str(seconds),
                     str(args.event_every_s)], cwd=ROOT, stdout=subprocess.PIPE, text=True))
        next_progress = 0.0
        while True:
            elapsed = time.monotonic() - t0
            if host.poll() is not None:
                raise RuntimeError(f"the host exited with {host.returncode} after {elapsed:.0f} s: "
                                   f"{err_path.read_text()[-2000:]}")
            s = proc_sample(host.pid, t0)
            try:
                m = host_metrics(url)
                s.extra = {"in": total(m, "hsc_host_messages_in_total"),
                           "queue": total(m, "hsc_host_queue_depth"),
                           "firing": total(m, "hsc_host_alerts_firing"),
                           "fired": total(m, "hsc_host_alerts_fired_total")}
            except OSError as exc:
                log(f"host: /metrics failed: {exc}")
            samples.append(s)
            if elapsed >= next_progress:
                log(f"host: {elapsed / 60:5.2f}/{args.host_minutes:g} min  RSS {s.rss_mib:6.1f} MiB  fds {s.fds:3d}  "
                    f"threads {s.threads:2d}  in {s.extra.get('in', 0):,.0f}  queue {s.extra.get('queue', 0):,.0f}  "
                    f"alerts firing {s.extra.get('firing', 0):,.0f} fired {s.extra.get('fired', 0):,.0f}")
                next_progress = elapsed + args.progress_s
            if all(p.poll() is not None for p in pubs):
                break
            time.sleep(max(0.0, args.sample_s - (time.monotonic() - t0 - elapsed)))
        run_wall = time.monotonic() - t0
        results = []
        for p in pubs:
            out, _ = p.communicate(timeout=60)
            lines = [ln for ln in out.splitlines() if ln.startswith("{")]
            if p.returncode != 0 or not lines:
                raise RuntimeError(f"a publisher failed (exit {p.returncode}): {out[-1000:]}")
            results.append(json.loads(lines[-1]))
        sent: dict[str, int] = {}
        for r in results:
            for k, v in r["sent"].items():
                sent[k] = sent.get(k, 0) + int(v)
        n_sent = sum(sent.values())
        # wait for the host to drain: its outcome count stops growing (or reaches what was sent)
        final = host_metrics(url)
        settle_end = time.monotonic() + 60
        while time.monotonic() < settle_end:
            time.sleep(1.0)
            m = host_metrics(url)
            if total(m, "hsc_host_messages_in_total") == total(final, "hsc_host_messages_in_total") and \
                    total(m, "hsc_host_queue_depth") == 0:
                final = m
                break
            final = m
        s = proc_sample(host.pid, t0)
        samples.append(s)
        log("host: SIGTERM to the host ...")
        code, stop_s = stop_process(host)
    finally:
        for p in pubs:
            if p.poll() is None:
                p.kill()
        if host is not None and host.poll() is None:
            host.kill()
        broker.terminate()
        broker.wait(10)

    text = err_path.read_text(errors="replace")
    db_mib = sum(f.stat().st_size for f in work.glob("host.db*")) / MIB / MIB
    summary = next((ln for ln in text.splitlines() if "stopped after" in ln), "no summary line")
    problems = [ln for ln in text.splitlines() if " ERROR " in ln or " CRITICAL " in ln or "Traceback" in ln]
    warns = [ln for ln in text.splitlines() if " WARNING " in ln]
    mins = [x.wall_s / 60.0 for x in samples]
    rss = [x.rss_mib for x in samples]
    fds = [float(x.fds) for x in samples]
    thr = [float(x.threads) for x in samples]
    cpu = (samples[-1].cpu_s - samples[0].cpu_s) / max(1e-9, samples[-1].wall_s - samples[0].wall_s)
    accepted = {k.split('"')[1]: v for k, v in final.items() if k.startswith("hsc_host_messages_accepted_total{")}
    rejected = {k.split('"')[1]: v for k, v in final.items() if k.startswith("hsc_host_messages_rejected_total{")}
    dups = total(final, "hsc_host_messages_duplicate_total")
    superseded = total(final, "hsc_host_messages_superseded_total")
    n_in = total(final, "hsc_host_messages_in_total")
    n_acc = sum(accepted.values())
    queue_max = max((x.extra.get("queue", 0.0) for x in samples), default=0.0)
    unacked = sum(int(r["unacked"]) for r in results)
    late = sum(int(r["late_slices"]) for r in results)
    fired = {k.split('"')[1]: v for k, v in final.items() if k.startswith("hsc_host_alerts_fired_total{") and v}
    resolved = total(final, "hsc_host_alerts_resolved_total")
    first_fire = next((x.wall_s / 60.0 for x in samples if x.extra.get("fired", 0) > 0), None)
    by_kind = ", ".join(f"{k} {int(accepted.get(k, 0)):,}/{v:,}" for k, v in sent.items())

    return [
        ("host run", f"{run_wall / 60:.2f} min", f"{args.desks} desks, {len(samples)} samples"),
        ("host RSS MiB first / last / max", first_last_max(rss, ".1f"), ""),
        ("host RSS slope, 2nd half", f"{slope(mins, rss) * 10:+.2f} MiB/10 min", "flat: ~0"),
        ("host open fds first / last / max", first_last_max(fds, ".0f"), ""),
        ("host threads first / last / max", first_last_max(thr, ".0f"), ""),
        ("host CPU", f"{cpu * 100:.1f}% of a core", ""),
        ("messages sent / received by host", f"{n_sent:,} / {n_in:,.0f}", f"{n_in / max(1, n_sent):.4f}"),
        ("messages sent / accepted by host", f"{n_sent:,} / {n_acc:,.0f}", f"{n_acc / max(1, n_sent):.4f}"),
        ("accepted / sent by kind", by_kind, ""),
        ("rejected / duplicate / superseded",
         f"{sum(rejected.values()):,.0f} / {dups:,.0f} / {superseded:,.0f}",
         ", ".join(f"{k} {v:,.0f}" for k, v in rejected.items() if v)),
        ("host queue depth max / at the end", f"{queue_max:,.0f} / {total(final, 'hsc_host_queue_depth'):,.0f}", ""),
        ("publisher QoS 1 unacked / late slices", f"{unacked} / {late}", "late: a 0.1 s slice > 1 s late"),
        ("host exit on SIGTERM", f"code {code}", f"in {stop_s:.1f} s; {summary.removeprefix('headset-host: ')}"),
        ("alerts fired / resolved / firing at the end",
         f"{sum(fired.values()):,.0f} / {resolved:,.0f} / {total(final, 'hsc_host_alerts_firing'):,.0f}",
         ", ".join(f"{k} {v:,.0f}" for k, v in fired.items())
         + (f"; first fired at {first_fire:.1f} min" if first_fire is not None else "")),
        ("host history db size at the end", f"{db_mib:.1f} MiB", "host.db + wal"),
        ("host log errors / warnings", f"{len(problems)} / {len(warns)}", (problems or warns or [""])[0][:90]),
    ]


# --- main ----------------------------------------------------------------------------------------------


def print_table(title: str, rows: list[tuple[str, str, str]]) -> None:
    w0 = max(len(r[0]) for r in rows)
    w1 = max(len(r[1]) for r in rows)
    print(title)
    print(f"{'measure'.ljust(w0)}  {'value'.ljust(w1)}  note")
    for name, value, note in rows:
        print(f"{name.ljust(w0)}  {value.ljust(w1)}  {note}".rstrip())
    print()


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true",
                    help="about a minute each: 1 agent-hour at the time scale, 1 host minute (a smoke check)")
    ap.add_argument("--only", choices=("desk", "host"), help="run one soak only")
    ap.add_argument("--agent-hours", type=float, default=8.0, help="agent-clock hours of the desk soak (8)")
    ap.add_argument("--time-scale", type=float, default=50.0, help="agent clock speed-up (50: 8 h in 9.6 min)")
    ap.add_argument("--headset", choices=("virtual", "none"), default="virtual",
                    help="a virtual headset on a pty (posture/wear cycles) or none (virtual)")
    ap.add_argument("--loud-every-s", type=float, default=45.0,
                    help="audio: every other block of this many seconds is 12 dB louder (45; 0: off)")
    ap.add_argument("--host-minutes", type=float, default=10.0, help="wall minutes of the host soak (10)")
    ap.add_argument("--desks", type=int, default=1000, help="simulated desks of the host soak (1000)")
    ap.add_argument("--publishers", type=int, default=2, help="publisher processes for the desks (2)")
    ap.add_argument("--event-every-s", type=float, default=60.0, help="an event per desk this often (60)")
    ap.add_argument("--sample-s", type=float, default=None, help="wall seconds between samples (5; quick: 2)")
    ap.add_argument("--progress-s", type=float, default=60.0, help="wall seconds between progress lines (60)")
    ap.add_argument("--keep", action="store_true", help="keep the temp dir (logs, spool, host db)")
    ap.add_argument("--_publish", nargs=5, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args._publish:
        port, first, count, seconds, every = args._publish
        publish_main(int(port), int(first), int(count), float(seconds), float(every))
        return 0
    if args.quick:
        args.agent_hours = min(args.agent_hours, round(args.time_scale / 60.0, 2))
        args.host_minutes = min(args.host_minutes, 1.0)
        args.progress_s = min(args.progress_s, 15.0)
    if args.sample_s is None:
        args.sample_s = 2.0 if args.quick else 5.0
    if not (args.time_scale > 0 and args.agent_hours > 0 and args.host_minutes > 0 and args.desks > 0
            and args.publishers > 0 and args.sample_s > 0):
        ap.error("--time-scale, --agent-hours, --host-minutes, --desks, --publishers and --sample-s must be > 0")

    tmp = Path(tempfile.mkdtemp(prefix="soak-"))
    status = 0
    try:
        if args.only in (None, "desk"):
            (tmp / "desk").mkdir()
            rows = desk_soak(args, tmp / "desk")
            print_table(f"desk soak: 1 agent process, {args.agent_hours:g} agent-h at {args.time_scale:g}x, "
                        f"headset {args.headset}, mosquitto", rows)
            sys.stdout.flush()
        if args.only in (None, "host"):
            (tmp / "host").mkdir()
            rows = host_soak(args, tmp / "host")
            print_table(f"host soak: 1 host process, {args.desks} simulated desks x 1 Hz, "
                        f"{args.host_minutes:g} min, mosquitto", rows)
        print(f"({os.cpu_count()} cores, shared; Python {sys.version.split()[0]})")
    except (RuntimeError, OSError, subprocess.SubprocessError) as exc:
        log(f"failed: {exc}")
        status = 1
    finally:
        if args.keep or status:
            log(f"kept {tmp}")
        else:
            shutil.rmtree(tmp, ignore_errors=True)
    return status


if __name__ == "__main__":
    sys.exit(main())
