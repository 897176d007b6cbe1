"""Benchmark of the desk agent (a plain script printing a table; not a timed test).

1. CPU: ``headset-agent run`` as a process, paced in real time on a 2-channel 16 kHz speech file,
   with a virtual headset and a real mosquitto; CPU seconds per wall second from /proc, against a
   baseline in this process: a bare file-reading loop at the same pace (FileSource, no DSP). The two
   run in turn, ``--pairs`` times (reader, agent, reader, agent, ...), and the medians are printed,
   with the share of CPU time the hypervisor took from this VM (steal, /proc/stat) during the
   agent's runs: a noisy neighbour inflates every figure, the ratio less so.
2. RSS: the same agent at ``--speed 20 --time-scale 20`` for ``--long-s`` wall seconds (180 s = one
   hour of audio); RSS sampled every second; growth = last quarter's mean minus the second quarter's, and the slope over the second half.
3. Cue latency: in this process, the service loop on the wall clock at real time on speech that
   alternates loud and normal; for each cue change, the LED change's wall time minus the clock time
   at which the persistence window ended (the end of the measurement that completed it).

    .venv/bin/python bench/bench_agent.py [--cpu-s 30] [--pairs 3] [--long-s 180]
"""

from __future__ import annotations

import argparse
import os
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import soundfile as sf

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from device.clock import WallClock  # noqa: E402
from device.inputs.audio_sources import FileSource  # noqa: E402
from hw.virtual_headset import HeadsetTrace, VirtualHeadset  # noqa: E402

TICK = os.sysconf("SC_CLK_TCK")


def speech_file(path: Path, loud_every_s: float | None = None) -> Path:
    parts = []
    for clip in sorted((ROOT / "host_agent" / "demo" / "clips").glob("*.flac")):
        x, _ = sf.read(clip, dtype="float32", always_2d=True)
        parts += [x[:, 0], np.zeros(6400, np.float32)]
    boom = np.concatenate(parts)
    if loud_every_s:
        n = int(loud_every_s * 16000)
        gain = np.ones(len(boom), np.float32)
        for k in range(0, len(boom), 2 * n):
            gain[k:k + n] = 4.0
        boom = np.clip(boom * gain, -1, 1)
    ear = boom * 0.3 + np.random.default_rng(1).normal(0, 1e-3, len(boom)).astype(np.float32)
    sf.write(path, np.stack([boom, ear], axis=1), 16000, subtype="PCM_16")
    return path


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def cpu_s(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICK


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def start_broker(work: Path) -> tuple[subprocess.Popen[bytes], int]:
    exe = shutil.which("mosquitto") or "/usr/sbin/mosquitto"
    port = free_port()
    conf = work / "mosquitto.conf"
    conf.write_text(f"listener {port} 127.0.0.1\nallow_anonymous true\n")
    proc = subprocess.Popen([exe, "-c", str(conf)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    end = time.monotonic() + 10
    while time.monotonic() < end:
        try:
            socket.create_connection(("127.0.0.1", port), 0.2).close()
            return proc, port
        except OSError:
            time.sleep(0.05)
    raise RuntimeError("mosquitto did not start")


def steal_jiffies() -> tuple[int, int]:
    """(steal, total) jiffies of all CPUs from /proc/stat."""
    fields = [int(v) for v in Path("/proc/stat").read_text().splitlines()[0].split()[1:]]
    return fields[7] if len(fields) > 7 else 0, sum(fields[:8])


def run_agent(work: Path, port: int, audio: Path, scale: float, wall_s: float, name: str) -> dict[str, float]:
    trace = HeadsetTrace.scenario("slouch")
    hs = VirtualHeadset(trace, link_path=work / f"{name}.tty", time_scale=scale)
    hs.start()
    args = [sys.executable, "-m", "device.cli", "run", "--site", "bench", "--desk", name,
            "--broker", f"mqtt://127.0.0.1:{port}", "--audio", f"file:{audio}", "--loop",
            "--headset", str(hs.link_path), "--state-dir", str(work / name), "--mock-gpio",
            "--time-scale", f"{scale:g}", "--log-level", "warning"]
    proc = subprocess.Popen(args, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=open(work / f"{name}.log", "wb"))
    try:
        time.sleep(5.0)  # imports and start-up are not the steady state
        if proc.poll() is not None:
            raise RuntimeError(f"agent exited: {(work / f'{name}.log').read_text()[-2000:]}")
        c0, t0, st0 = cpu_s(proc.pid), time.monotonic(), steal_jiffies()
        rss: list[float] = []
        while time.monotonic() - t0 < wall_s:
            time.sleep(1.0)
            rss.append(rss_mb(proc.pid))
        c1, t1, st1 = cpu_s(proc.pid), time.monotonic(), steal_jiffies()
        q = max(1, len(rss) // 4)
        half = rss[len(rss) // 2:]
        # MB per hour of audio over the second half: a one-time step early on does not count as a leak
        slope = (statistics.linear_regression(range(len(half)), half).slope * 3600.0 / scale
                 if len(half) >= 3 else 0.0)
        steal = (st1[0] - st0[0]) / max(1, st1[1] - st0[1])
        return {"cpu": (c1 - c0) / (t1 - t0), "steal": steal, "rss_max": max(rss), "rss_q2": statistics.mean(rss[q:2 * q]),
                "rss_q4": statistics.mean(rss[-q:]), "rss_slope": slope}
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(20)
        except subprocess.TimeoutExpired:
            proc.kill()
        hs.stop()


def baseline_cpu(audio: Path, wall_s: float) -> float:
    src = FileSource(audio, WallClock(), speed=1.0, loop=True, block_ms=50)
    src.open()
    c0, t0 = time.process_time(), time.monotonic()
    while time.monotonic() - t0 < wall_s:
        src.read()
    src.close()
    return (time.process_time() - c0) / (time.monotonic() - t0)


def cue_latency(work: Path, port: int, wall_s: float) -> list[float]:
    from gpiozero.pins.mock import MockFactory, MockPWMPin

    from device.config.agent import load_config
    from device.service import AgentService

    audio = speech_file(work / "loud.wav", loud_every_s=8.0)
    cfg = load_config(None, {"desk.site": "bench", "desk.desk": "latency", "mqtt.url": f"mqtt://127.0.0.1:{port}",
                             "audio.source": f"file:{audio}", "audio.loop": True, "headset.port": "none",
                             "agent.state_dir": str(work / "latency")})
    service = AgentService(cfg, WallClock(), pin_factory=MockFactory(pin_class=MockPWMPin)).start()
    latencies: list[float] = []
    seen = 0
    t0 = time.monotonic()
    try:
        while time.monotonic() - t0 < wall_s:
            service.step()  # the LEDs are written at the end of the step
            now_ms = time.time_ns() / 1e6
            for at_ms, _cue, _on in service.status.cue_changes[seen:]:
                latencies.append(now_ms - at_ms)
            seen = len(service.status.cue_changes)
    finally:
        service.shutdown(5)
    return latencies


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--cpu-s", type=float, default=30.0, help="wall seconds of the real-time CPU run (30)")
    ap.add_argument("--pairs", type=int, default=3, help="reader/agent pairs run in turn for the CPU figure (3)")
    ap.add_argument("--long-s", type=float, default=180.0, help="wall seconds of the 20x run (180 = 1 h of audio)")
    ap.add_argument("--latency-s", type=float, default=60.0, help="wall seconds of the cue latency run (60)")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory(prefix="bench-agent-") as tmp:
        work = Path(tmp)
        audio = speech_file(work / "speech.wav")
        broker, port = start_broker(work)
        try:
            bases, rts = [], []
            for i in range(max(1, args.pairs)):
                print(f"CPU pair {i + 1}/{args.pairs}: bare reader, then the agent ({args.cpu_s:g} s each)",
                      file=sys.stderr, flush=True)
                bases.append(baseline_cpu(audio, args.cpu_s))
                rts.append(run_agent(work, port, audio, 1.0, args.cpu_s, f"realtime{i}"))
            base = statistics.median(bases)
            rt = dict(rts[0])
            rt["cpu"] = statistics.median(r["cpu"] for r in rts)
            rt["steal"] = statistics.median(r["steal"] for r in rts)
            rt["rss_max"] = max(r["rss_max"] for r in rts)
            ratios = [r["cpu"] / max(b, 1e-9) for r, b in zip(rts, bases, strict=True)]
            print("progress: the 20x run for RSS", file=sys.stderr, flush=True)
            fast = run_agent(work, port, audio, 20.0, args.long_s, "speed20")
            lat = cue_latency(work, port, args.latency_s)
        finally:
            broker.terminate()
            broker.wait(5)
    cores = os.cpu_count() or 1
    print(f"machine: {cores} cores; audio 2 ch 16 kHz speech; virtual headset; mosquitto\n")
    print(f"{'measure':<46} {'value':>12} {'target':>10} {'baseline':>10} {'ratio':>8}")
    print(f"{'agent CPU, real time (% of one core), median':<46} {rt['cpu'] * 100:>11.2f}% {'<= 5%':>10} "
          f"{base * 100:>9.2f}% {statistics.median(ratios):>7.1f}x")
    print(f"{'  per pair: agent % / reader % (ratio)':<46} "
          + "; ".join(f"{r['cpu'] * 100:.2f}/{b * 100:.2f} ({r['cpu'] / max(b, 1e-9):.1f}x)"
                      for r, b in zip(rts, bases, strict=True)))
    print(f"{'  VM steal during the agent runs, median':<46} {rt['steal'] * 100:>11.2f}%")
    print(f"{'agent CPU at 20x (% of one core)':<46} {fast['cpu'] * 100:>11.2f}% {'':>10} {'':>10} "
          f"{fast['cpu'] / max(rt['cpu'], 1e-9):>7.1f}x")
    print(f"{'RSS max, real time (MB)':<46} {rt['rss_max']:>12.1f} {'<= 100':>10}")
    print(f"{'RSS max, 20x run of ' + format(args.long_s * 20 / 3600, '.2f') + ' h audio (MB)':<46} "
          f"{fast['rss_max']:>12.1f} {'<= 100':>10}")
    print(f"{'RSS growth, 20x run (last quarter - 2nd, MB)':<46} {fast['rss_q4'] - fast['rss_q2']:>12.2f} {'~0':>10}")
    print(f"{'RSS slope, 2nd half of the 20x run (MB/h audio)':<46} {fast['rss_slope']:>12.2f} {'~0':>10}")
    if lat:
        print(f"{'cue latency, median (ms), n=' + str(len(lat)):<46} {statistics.median(lat):>12.1f} {'<= 150':>10}")
        print(f"{'cue latency, max (ms)':<46} {max(lat):>12.1f} {'<= 150':>10}")
    else:
        print("cue latency: no cue changed during the run")
    return 0


if __name__ == "__main__":
    sys.exit(main())
