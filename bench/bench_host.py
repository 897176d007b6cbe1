"""Benchmark of the host aggregator's ingest on a real mosquitto (not a test).

    .venv/bin/python bench/bench_host.py [--desks 6000] [--seconds 20] [--blast 100000]

1. raw: mosquitto_sub's receive rate for a blast of metrics (the baseline, same broker, same run);
2. host: the host's processing rate for the same blast (a separate process, measured via /metrics);
3. sustained: DESKS simulated desks at 1 Hz metrics for SECONDS, with probes that trip an alert
   (desk-offline with for_s = 0): publish -> retained alert received latency, p50/p99;
4. memory per desk: tracemalloc around a floor of desks with full dedup windows and rule windows.
Prints a table with ratios. Publishers and the host run in their own processes.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import tracemalloc
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import paho.mqtt.client as mqtt  # noqa: E402
from paho.mqtt.enums import CallbackAPIVersion  # noqa: E402

from mqtt_schema import (  # noqa: E402
    AlertTopic,
    Cue,
    DeskKind,
    DeskStatus,
    DeskTopic,
    Event,
    EventKind,
    Metrics,
    Posture,
    State,
    desk_filter,
    encode,
)

PY = sys.executable


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def log(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


def metrics(site: str, desk: str, seq: int, ts: int) -> bytes:
    return encode(Metrics(site=site, desk=desk, boot=1, seq=seq, ts=ts, speaking=True, speech_s=0.7,
                          level_dbov=-25.0, rate_spm=130.0, distance_cm=5.0, noise_dbov=-60.0, worn=True,
                          posture=Posture.UPRIGHT, cues=[Cue.PACE_FAST] if seq % 7 == 0 else []))


# --- child processes ---------------------------------------------------------------------------------


def publish_main(port: int, desks: int, seconds: float, blast: int) -> None:
    """Blast ``blast`` metrics as fast as possible, or ``desks`` desks at 1 Hz for ``seconds``."""
    c = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=f"bench-pub-{os.getpid()}")
    c.max_queued_messages_set(0)
    c.connect("127.0.0.1", port)
    c.loop_start()
    names = [f"d{i:05d}" for i in range(max(desks, 1))]
    topics = [str(DeskTopic("site1", n, DeskKind.METRICS)) for n in names]
    if blast:
        now = int(time.time() * 1000)
        payloads = [(topics[i % len(topics)], metrics("site1", names[i % len(names)], i + 1, now)) for i in range(blast)]
        t0 = time.perf_counter()
        for t, p in payloads:
            c.publish(t, p, qos=0)
        log(f"publisher: {blast} messages queued in {time.perf_counter() - t0:.2f} s")
    else:
        t_end = time.monotonic() + seconds
        tick = 0
        while time.monotonic() < t_end:
            start = time.monotonic()
            now = int(time.time() * 1000)
            for i, n in enumerate(names):
                c.publish(topics[i], metrics("site1", n, tick + 1, now), qos=0)
            tick += 1
            spent = time.monotonic() - start
            if spent < 1.0:
                time.sleep(1.0 - spent)
            else:
                log(f"publisher: a 1 s round took {spent:.2f} s (falling behind)")
    time.sleep(0.5)
    c.disconnect()
    c.loop_stop()


def serve_main(config_path: str) -> None:
    from host_agent.config import load_config
    from host_agent.service import HostService

    with HostService(load_config(config_path), client_id="bench-host") as s:
        print(json.dumps({"url": s.dashboard_url}), flush=True)
        sys.stdin.read()  # until the parent closes it


# --- helpers ---------------------------------------------------------------------------------------------


def start_mosquitto(tmp: Path) -> tuple[subprocess.Popen[bytes], int]:
    exe = shutil.which("mosquitto") or "/usr/sbin/mosquitto"
    port = free_port()
    conf = tmp / "mosquitto.conf"
    conf.write_text(f"listener {port} 127.0.0.1\nallow_anonymous true\nmax_queued_messages 1000000\n"
                    "max_inflight_messages 0\n")
    proc = subprocess.Popen([exe, "-c", str(conf)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    for _ in range(200):
        try:
            socket.create_connection(("127.0.0.1", port), 0.1).close()
            return proc, port
        except OSError:
            time.sleep(0.02)
    raise RuntimeError("mosquitto did not start")


def publisher(port: int, desks: int = 0, seconds: float = 0, blast: int = 0) -> subprocess.Popen[bytes]:
    return subprocess.Popen([PY, __file__, "--_publish", str(port), str(desks), str(seconds), str(blast)])


def host_counter(url: str, name: str = "hsc_host_messages_in_total") -> float:
    with urllib.request.urlopen(url + "metrics", timeout=10) as r:
        for line in r.read().decode().splitlines():
            if line.startswith(name + " "):
                return float(line.split()[1])
    return 0.0


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process (Linux /proc), in seconds."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def raw_rate(port: int, n: int, desks: int) -> float:
    sub = subprocess.Popen(["mosquitto_sub", "-p", str(port), "-t", desk_filter("site1", "+", DeskKind.METRICS),
                            "-C", str(n)], stdout=subprocess.DEVNULL)
    time.sleep(0.5)
    t0 = time.perf_counter()
    pub = publisher(port, desks, blast=n)
    sub.wait(120)
    elapsed = time.perf_counter() - t0
    pub.wait(60)
    return n / elapsed


def host_rate(port: int, url: str, n: int, desks: int) -> float:
    base = host_counter(url)
    t0 = time.perf_counter()
    pub = publisher(port, desks, blast=n)
    while host_counter(url) < base + n:
        if time.perf_counter() - t0 > 120:
            raise RuntimeError("the host did not process the blast in 120 s (messages dropped?)")
        time.sleep(0.02)
    elapsed = time.perf_counter() - t0
    pub.wait(60)
    return n / elapsed


def probe_latencies(port: int, seconds: float, probes: int) -> list[float]:
    """Probes flip a desk lost/online; measure publish -> retained alert (or its clearing) received."""
    pending: dict[str, float] = {}
    lat: list[float] = []
    got = threading.Event()
    topic = str(AlertTopic("site1", "probe", "desk-offline"))

    def on_message(c: mqtt.Client, u: object, m: mqtt.MQTTMessage) -> None:
        key = "fire" if m.payload else "clear"
        if key in pending:
            lat.append(time.perf_counter() - pending.pop(key))
            got.set()

    sub = mqtt.Client(CallbackAPIVersion.VERSION2, client_id="bench-probe-sub")
    sub.on_message = on_message
    sub.connect("127.0.0.1", port)
    sub.subscribe(topic, 1)
    sub.loop_start()
    pub = mqtt.Client(CallbackAPIVersion.VERSION2, client_id="bench-probe-pub")
    pub.connect("127.0.0.1", port)
    pub.loop_start()
    time.sleep(0.5)
    st_topic = str(DeskTopic("site1", "probe", DeskKind.STATE))
    seq = 0
    gap = seconds / probes
    for i in range(probes):
        seq += 1
        status = DeskStatus.LOST if i % 2 == 0 else DeskStatus.ONLINE
        got.clear()
        pending["fire" if status is DeskStatus.LOST else "clear"] = time.perf_counter()
        pub.publish(st_topic, encode(State(site="site1", desk="probe", boot=1, seq=seq, ts=int(time.time() * 1000),
                                           status=status)), qos=1, retain=True)
        got.wait(5)
        pending.clear()
        time.sleep(max(0.0, gap - 0.05))
    for c in (pub, sub):
        c.disconnect()
        c.loop_stop()
    return lat


def memory_per_desk(n: int = 2000) -> float:
    from host_agent.floor import Floor

    floor = Floor()
    now = int(time.time() * 1000)
    tracemalloc.start()
    before = tracemalloc.get_traced_memory()[0]
    for i in range(n):
        site, desk = "site1", f"d{i:05d}"
        floor.apply_state(State(site=site, desk=desk, boot=1, seq=1, ts=now, status=DeskStatus.ONLINE), now)
        seq = 2
        for _ in range(100):  # fills the dedup window
            floor.apply_event(Event(site=site, desk=desk, boot=1, seq=seq, ts=now, kind=EventKind.CUE_ON,
                                    cue=Cue.PACE_FAST), now)
            seq += 1
        for s in range(0, 600, 10):  # 10 min of rule windows
            m = Metrics(site=site, desk=desk, boot=1, seq=seq, ts=now + s * 1000, speaking=True, speech_s=1.0,
                        cues=[Cue.PACE_FAST, Cue.VOLUME_HIGH], posture=Posture.SLOUCHED, worn=True,
                        level_dbov=-20.0, rate_spm=170.0, noise_dbov=-55.0)
            floor.apply_metrics(m, now + s * 1000)
            seq += 1
    after = tracemalloc.get_traced_memory()[0]
    tracemalloc.stop()
    return (after - before) / n


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--desks", type=int, default=6000)
    ap.add_argument("--seconds", type=float, default=20.0)
    ap.add_argument("--blast", type=int, default=100_000)
    ap.add_argument("--probes", type=int, default=40)
    ap.add_argument("--_publish", nargs=4, help=argparse.SUPPRESS)
    ap.add_argument("--_serve", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args._publish:
        port, desks, seconds, blast = args._publish
        publish_main(int(port), int(desks), float(seconds), int(blast))
        return 0
    if args._serve:
        serve_main(args._serve)
        return 0

    tmp = Path(tempfile.mkdtemp(prefix="bench-host-"))
    broker, port = start_mosquitto(tmp)
    host = None
    try:
        log(f"raw: mosquitto_sub receiving {args.blast} metrics ...")
        raw = raw_rate(port, args.blast, args.desks)
        cfg = tmp / "host.toml"
        cfg.write_text(f'[broker]\nurl = "mqtt://127.0.0.1:{port}"\n[host]\nsites = ["site1"]\n'
                       f'db = "{tmp / "host.db"}"\n[dashboard]\nport = 0\n'
                       "[rules.desk-offline]\nfor_s = 0\n")
        host = subprocess.Popen([PY, __file__, "--_serve", str(cfg)], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                text=True)
        assert host.stdout is not None
        url = json.loads(host.stdout.readline())["url"]
        log(f"host: processing the same blast ({url}) ...")
        hrate = host_rate(port, url, args.blast, args.desks)
        log(f"sustained: {args.desks} desks at 1 Hz for {args.seconds:.0f} s with {args.probes} alert probes ...")
        base = host_counter(url)
        t0 = time.perf_counter()
        cpu0 = cpu_seconds(host.pid)
        pub = publisher(port, args.desks, seconds=args.seconds)
        lat = probe_latencies(port, args.seconds - 1, args.probes)
        pub.wait(args.seconds + 60)
        deadline = time.perf_counter() + 30
        expected_min = args.desks * int(args.seconds) * 0.95
        while host_counter(url) - base < expected_min and time.perf_counter() < deadline:
            time.sleep(0.05)
        got = host_counter(url) - base
        elapsed = time.perf_counter() - t0
        cores = (cpu_seconds(host.pid) - cpu0) / elapsed
        depth = host_counter(url, "hsc_host_queue_depth")
        mem = memory_per_desk()
        lat_ms = sorted(x * 1000 for x in lat)
        p50 = statistics.median(lat_ms) if lat_ms else float("nan")
        p99 = lat_ms[min(len(lat_ms) - 1, int(0.99 * len(lat_ms)))] if lat_ms else float("nan")
        rows = [
            ("raw receive, mosquitto_sub (baseline)", f"{raw:,.0f} msg/s", "1.00"),
            ("host ingest, same blast", f"{hrate:,.0f} msg/s", f"{hrate / raw:.2f}"),
            (f"sustained: {args.desks} desks x 1 Hz, offered", f"{args.desks:,.0f} msg/s", ""),
            ("sustained: host processed", f"{got / args.seconds:,.0f} msg/s ({got:,.0f} msgs)", ""),
            ("sustained: queue depth at the end", f"{depth:.0f}", ""),
            ("sustained: host CPU", f"{cores:.2f} cores", f"{got / elapsed / max(cores, 1e-9):,.0f} msg per CPU-s"),
            (f"publish -> alert latency p50 ({len(lat_ms)} probes)", f"{p50:.1f} ms", ""),
            ("publish -> alert latency p99", f"{p99:.1f} ms", f"target 500 ms: {'ok' if p99 <= 500 else 'MISSED'}"),
            ("memory per desk (floor state)", f"{mem / 1024:.1f} KiB", f"target 20 KiB: {'ok' if mem <= 20480 else 'MISSED'}"),
        ]
        w = max(len(r[0]) for r in rows)
        print(f"{'measure'.ljust(w)}  {'value':>28}  ratio / target")
        for name, value, ratio in rows:
            print(f"{name.ljust(w)}  {value:>28}  {ratio}")
        print(f"(elapsed {elapsed:.1f} s; {os.cpu_count()} cores; host = 1 process, GIL-bound)")
    finally:
        if host is not None:
            host.stdin.close()  # type: ignore[union-attr]
            host.wait(20)
        broker.terminate()
        broker.wait(10)
        shutil.rmtree(tmp, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
