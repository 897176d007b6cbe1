"""Benchmark of the host aggregator's ingest on a real mosquitto, side by side with mosquitto_sub.

    .venv/bin/python bench/bench_host.py [--pairs 5] [--blast 100000] [--desks 6000] [--seconds 20]
                                         [--history-desks 200] [--db postgresql://...] [--profile]

Example (the figures in docs/scaling.md):

    .venv/bin/python bench/bench_host.py --pairs 5 --blast 100000 --desks 6000 --seconds 20

One mosquitto, one host process (``headset-host``'s HostService with its dashboard, SQLite history
unless ``--db`` names a PostgreSQL URL), for the whole run:

1. ingest pairs, alternating (the machine is shared, so every ratio is taken pair by pair):
   raw: ``mosquitto_sub -C BLAST`` receives a blast of BLAST metrics on site2 (the host follows
   site1 only, and is SIGSTOPped meanwhile: it takes no CPU); host: the same blast on site1, until
   the host has handled (decoded, validated, applied, counted; alerts evaluated) every message.
   Each side is timed from the publisher's launch to its last message received or handled, as the
   issue's baseline was; a second ratio is timed from the publisher's first publish (without its
   start-up). Prints each pair and the median ratio (ours / mosquitto_sub);
2. sustained: DESKS desks at 1 Hz metrics for SECONDS, with probes that trip an alert (desk-offline
   with for_s = 0): publish -> retained alert received, p50/p99; host CPU per 1,000 desks;
3. history: HISTORY_DESKS desks publish 60 minute rollups each and events (QoS 1; --events-per-hour),
   stored by the host; bytes per row and per desk-day (from the database's own page counts);
4. memory per desk: tracemalloc around a floor of desks with full dedup windows and rule windows.

``--profile`` runs the host's processing thread under cProfile for the ingest pairs and prints the
top functions at the end. Publishers and the host run in their own processes.
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
import tracemalloc
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
    Minute,
    Posture,
    State,
    desk_filter,
    encode,
)

PY = sys.executable
HOST_SITE, RAW_SITE = "site1", "site2"


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


def publish_main(port: int, desks: int, seconds: float, blast: int, site: str, seq0: int) -> None:
    """Blast ``blast`` metrics as fast as possible, or ``desks`` desks at 1 Hz for ``seconds``.

    Prints ``first <time.monotonic()>`` on stdout just before the first publish of a blast.
    """
    c = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=f"bench-pub-{os.getpid()}")
    c.max_queued_messages_set(0)
    c.connect("127.0.0.1", port)
    c.loop_start()
    names = [f"d{i:05d}" for i in range(max(desks, 1))]
    topics = [str(DeskTopic(site, n, DeskKind.METRICS)) for n in names]
    if blast:
        now = int(time.time() * 1000)
        payloads = [(topics[i % len(topics)], metrics(site, names[i % len(names)], seq0 + i + 1, now))
                    for i in range(blast)]
        print(f"first {time.monotonic()}", flush=True)
        t0 = time.perf_counter()
        for t, p in payloads:
            c.publish(t, p, qos=0)
        log(f"  publisher: {blast} messages queued in {time.perf_counter() - t0:.2f} s")
    else:
        t_end = time.monotonic() + seconds
        tick = 0
        while time.monotonic() < t_end:
            start = time.monotonic()
            now = int(time.time() * 1000)
            for i, n in enumerate(names):
                c.publish(topics[i], metrics(site, n, seq0 + tick + 1, now), qos=0)
            tick += 1
            spent = time.monotonic() - start
            if spent < 1.0:
                time.sleep(1.0 - spent)
            else:
                log(f"  publisher: a 1 s round took {spent:.2f} s (falling behind)")
    time.sleep(0.5)
    c.disconnect()
    c.loop_stop()


def history_main(port: int, desks: int, minutes: int, events_per_hour: float) -> None:
    """``desks`` desks publish ``minutes`` minute rollups each and their events, QoS 1, then exit."""
    c = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=f"bench-hist-{os.getpid()}")
    c.max_queued_messages_set(0)
    c.max_inflight_messages_set(1000)
    c.connect("127.0.0.1", port)
    c.loop_start()
    t0 = (int(time.time() * 1000) // 60_000 - minutes - 1) * 60_000
    per_minute = events_per_hour / 60.0
    infos: list[mqtt.MQTTMessageInfo] = []
    for i in range(desks):
        desk, seq, owed = f"h{i:05d}", 0, 0.0
        for m in range(minutes):
            seq += 1
            ts = t0 + m * 60_000
            infos.append(c.publish(str(DeskTopic(HOST_SITE, desk, DeskKind.MINUTE)), encode(Minute(
                site=HOST_SITE, desk=desk, boot=1, seq=seq, ts=ts + 60_000, minute_ts=ts, speech_s=21.5,
                level_dbov=-24.5, rate_spm=182.0, distance_cm=4.5, noise_dbov=-58.0,
                cue_s={Cue.PACE_FAST: 6.0, Cue.VOLUME_LOW: 2.0}, worn_s=60.0, slouched_s=12.0,
                upright_s=48.0)), qos=1))
            owed += per_minute
            while owed >= 1.0:
                owed -= 1.0
                seq += 1
                on = seq % 2 == 0
                infos.append(c.publish(str(DeskTopic(HOST_SITE, desk, DeskKind.EVENT)), encode(Event(
                    site=HOST_SITE, desk=desk, boot=1, seq=seq, ts=ts + 30_000,
                    kind=EventKind.CUE_ON if on else EventKind.CUE_OFF, cue=Cue.PACE_FAST)), qos=1))
    while not all(i.is_published() for i in infos):  # every QoS 1 publish acknowledged by the broker
        time.sleep(0.05)
    print(f"sent {len(infos)}", flush=True)
    c.disconnect()
    c.loop_stop()


def serve_main(config_path: str, profile: bool) -> None:
    """The host; answers the parent on stdin: ``count``, ``wait N`` (until N messages handled), ``profile``."""
    import cProfile
    import pstats

    from host_agent import service as svc
    from host_agent.config import load_config

    prof = cProfile.Profile()
    if profile:
        run = svc.HostService._run

        def profiled(self: svc.HostService) -> None:
            prof.enable()
            try:
                run(self)
            finally:
                prof.disable()

        svc.HostService._run = profiled  # type: ignore[method-assign]
    with svc.HostService(load_config(config_path), client_id="bench-host") as s:
        p = s.processor
        assert p is not None
        print(json.dumps({"url": s.dashboard_url}), flush=True)
        for line in sys.stdin:
            cmd = line.split()
            if cmd[0] == "count":
                print(p.stats.messages_in, flush=True)
            elif cmd[0] == "wait":  # a plain int read every 5 ms: no work for the processing thread
                target, end = int(cmd[1]), time.monotonic() + float(cmd[2])
                while p.stats.messages_in < target and time.monotonic() < end:
                    time.sleep(0.005)
                s.sync(timeout_s=60, evaluate=False)  # ... and committed
                print(f"{time.monotonic()} {p.stats.messages_in}", flush=True)
        if profile:
            prof.disable()
            st = pstats.Stats(prof, stream=sys.stderr)
            st.sort_stats("tottime").print_stats(20)
            st.sort_stats("cumulative").print_stats(20)


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


def publisher(port: int, desks: int = 0, seconds: float = 0, blast: int = 0, site: str = HOST_SITE,
              seq0: int = 0) -> subprocess.Popen[str]:
    return subprocess.Popen([PY, __file__, "--_publish", str(port), str(desks), str(seconds), str(blast), site,
                             str(seq0)], stdout=subprocess.PIPE, text=True)


def first_publish(pub: subprocess.Popen[str]) -> float:
    assert pub.stdout is not None
    line = pub.stdout.readline().split()
    return float(line[1]) if line and line[0] == "first" else float("nan")


class Host:
    """The host child process and its stdin/stdout protocol."""

    def __init__(self, cfg: Path, profile: bool) -> None:
        self.proc = subprocess.Popen([PY, __file__, "--_serve", str(cfg)] + (["--profile"] if profile else []),
                                     stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        self.url = str(json.loads(self._line())["url"])

    def _line(self) -> str:
        assert self.proc.stdout is not None
        line = self.proc.stdout.readline()
        if not line:
            raise RuntimeError("the host process ended")
        return line

    def ask(self, cmd: str) -> str:
        assert self.proc.stdin is not None
        self.proc.stdin.write(cmd + "\n")
        self.proc.stdin.flush()
        return self._line().strip()

    def count(self) -> int:
        return int(self.ask("count"))

    def wait(self, target: int, timeout_s: float = 120) -> tuple[float, int]:
        """(time.monotonic() when ``target`` messages were handled, messages handled)."""
        t, n = self.ask(f"wait {target} {timeout_s}").split()
        return float(t), int(n)

    def pause(self, paused: bool) -> None:
        os.kill(self.proc.pid, signal.SIGSTOP if paused else signal.SIGCONT)

    def close(self) -> None:
        if self.proc.poll() is None:
            self.pause(False)
            assert self.proc.stdin is not None
            self.proc.stdin.close()
            self.proc.wait(30)


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process (Linux /proc), in seconds."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def raw_pair(port: int, n: int, desks: int) -> tuple[float, float]:
    """mosquitto_sub's receive rate of a blast: (from the publisher's launch, from its first publish)."""
    sub = subprocess.Popen(["mosquitto_sub", "-p", str(port), "-t", desk_filter(RAW_SITE, "+", DeskKind.METRICS),
                            "-C", str(n)], stdout=subprocess.DEVNULL)
    time.sleep(0.5)  # subscribed
    t0 = time.monotonic()
    pub = publisher(port, desks, blast=n, site=RAW_SITE)
    first = first_publish(pub)
    sub.wait(120)
    t_end = time.monotonic()
    pub.wait(60)
    return n / (t_end - t0), n / (t_end - first)


def host_pair(host: Host, port: int, n: int, desks: int, seq0: int) -> tuple[float, float, float]:
    """The host's rate for the same blast: (from launch, from first publish, host CPU s per message)."""
    base = host.count()
    cpu0 = cpu_seconds(host.proc.pid)
    t0 = time.monotonic()
    pub = publisher(port, desks, blast=n, site=HOST_SITE, seq0=seq0)
    first = first_publish(pub)
    t_end, got = host.wait(base + n)
    if got < base + n:
        raise RuntimeError(f"the host handled {got - base} of {n} messages in 120 s (messages dropped?)")
    cpu = cpu_seconds(host.proc.pid) - cpu0
    pub.wait(60)
    return n / (t_end - t0), n / (t_end - first), cpu / n


def probe_latencies(port: int, seconds: float, probes: int) -> list[float]:
    """Probes flip a desk lost/online; measure publish -> retained alert (or its clearing) received."""
    pending: dict[str, float] = {}
    lat: list[float] = []
    got = threading.Event()
    topic = str(AlertTopic(HOST_SITE, "probe", "desk-offline"))

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
    st_topic = str(DeskTopic(HOST_SITE, "probe", DeskKind.STATE))
    seq = int(time.time())  # newer than any probe of an earlier run
    gap = seconds / probes
    for i in range(probes):
        seq += 1
        status = DeskStatus.LOST if i % 2 == 0 else DeskStatus.ONLINE
        got.clear()
        pending["fire" if status is DeskStatus.LOST else "clear"] = time.perf_counter()
        pub.publish(st_topic, encode(State(site=HOST_SITE, desk="probe", boot=1, seq=seq,
                                           ts=int(time.time() * 1000), status=status)), qos=1, retain=True)
        got.wait(5)
        pending.clear()
        time.sleep(max(0.0, gap - 0.05))
    for c in (pub, sub):
        c.disconnect()
        c.loop_stop()
    return lat


def sqlite_bytes(path: Path) -> int:
    """Bytes the history database uses (pages in use, after a WAL checkpoint)."""
    with sqlite3.connect(path, timeout=30) as conn:
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        pages, free, size = (int(conn.execute(f"PRAGMA {p}").fetchone()[0])
                             for p in ("page_count", "freelist_count", "page_size"))
    return (pages - free) * size


def postgres_bytes(url: str) -> int:
    import psycopg

    with psycopg.connect(url) as conn:
        row = conn.execute("SELECT pg_total_relation_size('minutes') + pg_total_relation_size('events')").fetchone()
    return int(row[0]) if row else 0


def history_growth(host: Host, port: int, db: str, desks: int, minutes: int, events_per_hour: float,
                   ) -> dict[str, float]:
    def measure() -> int:
        return postgres_bytes(db) if db.startswith("postgres") else sqlite_bytes(Path(db))

    before_bytes, base = measure(), host.count()
    proc = subprocess.Popen([PY, __file__, "--_history", str(port), str(desks), str(minutes), str(events_per_hour)],
                            stdout=subprocess.PIPE, text=True)
    assert proc.stdout is not None
    sent = int(proc.stdout.readline().split()[1])
    proc.wait(60)
    host.wait(base + sent, timeout_s=300)
    grown = measure() - before_bytes
    rows = desks * minutes
    events = sent - rows
    per_row = grown / sent
    return {"rows": float(sent), "minutes": float(rows), "events": float(events), "bytes": float(grown),
            "per_row": per_row, "per_desk_hour": grown / (desks * minutes / 60.0)}


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
        d = floor.desk(site, desk)
        for k in range(4):  # the totals the rules ask for (fills the window's small cache)
            d.window.total(now + 600_000, k, 300)
    after = tracemalloc.get_traced_memory()[0]
    tracemalloc.stop()
    return (after - before) / n


def table(rows: list[tuple[str, str, str]]) -> None:
    w = max(len(r[0]) for r in rows)
    v = max(len(r[1]) for r in rows)
    print(f"{'measure'.ljust(w)}  {'value'.rjust(v)}  ratio / note")
    for name, value, note in rows:
        print(f"{name.ljust(w)}  {value.rjust(v)}  {note}")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--pairs", type=int, default=5, help="alternating raw/host blast pairs (default 5)")
    ap.add_argument("--blast", type=int, default=100_000, help="metrics messages per blast (default 100000)")
    ap.add_argument("--desks", type=int, default=6000, help="desks of the blasts and the sustained load (6000)")
    ap.add_argument("--seconds", type=float, default=20.0, help="sustained load duration, s (default 20)")
    ap.add_argument("--probes", type=int, default=40, help="alert latency probes during the sustained load")
    ap.add_argument("--history-desks", type=int, default=200, help="desks of the history run (0: skip it)")
    ap.add_argument("--history-minutes", type=int, default=60, help="minute rollups per desk (default 60)")
    ap.add_argument("--events-per-hour", type=float, default=30.0,
                    help="events per desk-hour in the history run (default 30)")
    ap.add_argument("--db", help="the host's [host] db (default: a SQLite file in a temp dir)")
    ap.add_argument("--profile", action="store_true", help="cProfile the host's processing thread")
    ap.add_argument("--_publish", nargs=6, help=argparse.SUPPRESS)
    ap.add_argument("--_history", nargs=4, help=argparse.SUPPRESS)
    ap.add_argument("--_serve", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args._publish:
        port, desks, seconds, blast, site, seq0 = args._publish
        publish_main(int(port), int(desks), float(seconds), int(blast), site, int(seq0))
        return 0
    if args._history:
        port, desks, minutes, eph = args._history
        history_main(int(port), int(desks), int(minutes), float(eph))
        return 0
    if args._serve:
        serve_main(args._serve, args.profile)
        return 0

    tmp = Path(tempfile.mkdtemp(prefix="bench-host-"))
    broker, port = start_mosquitto(tmp)
    host: Host | None = None
    db = args.db or str(tmp / "host.db")
    try:
        cfg = tmp / "host.toml"
        cfg.write_text(f'[broker]\nurl = "mqtt://127.0.0.1:{port}"\n[host]\nsites = ["{HOST_SITE}"]\n'
                       f"db = {json.dumps(db)}\n[dashboard]\nport = 0\n"
                       "[rules.desk-offline]\nfor_s = 0\n")
        host = Host(cfg, args.profile)
        log(f"host up ({host.url}); warming up with one blast ...")
        host_pair(host, port, args.blast, args.desks, seq0=0)
        pairs: list[dict[str, float]] = []
        for i in range(args.pairs):
            host.pause(True)
            raw_launch, raw_first = raw_pair(port, args.blast, args.desks)
            host.pause(False)
            ours_launch, ours_first, cpu = host_pair(host, port, args.blast, args.desks,
                                                     seq0=(i + 1) * args.blast)
            pairs.append({"raw": raw_launch, "ours": ours_launch, "ratio": ours_launch / raw_launch,
                          "raw_first": raw_first, "ours_first": ours_first, "ratio_first": ours_first / raw_first,
                          "cpu_us": cpu * 1e6})
            log(f"pair {i + 1}: mosquitto_sub {raw_launch:,.0f} msg/s, ours {ours_launch:,.0f} msg/s, "
                f"ratio {ours_launch / raw_launch:.2f} (from first publish: {raw_first:,.0f} vs "
                f"{ours_first:,.0f}, {ours_first / raw_first:.2f}); host CPU {cpu * 1e6:.1f} us/msg")

        log(f"sustained: {args.desks} desks at 1 Hz for {args.seconds:.0f} s with {args.probes} alert probes ...")
        base = host.count()
        t0 = time.monotonic()
        cpu0 = cpu_seconds(host.proc.pid)
        pub = publisher(port, args.desks, seconds=args.seconds, seq0=(args.pairs + 2) * args.blast)
        lat = probe_latencies(port, args.seconds - 1, args.probes)
        pub.wait(args.seconds + 60)
        expected = base + args.desks * int(args.seconds) + args.probes
        t_end, got_total = host.wait(int(expected * 0.99), timeout_s=30)
        got = got_total - base
        elapsed = t_end - t0
        cores = (cpu_seconds(host.proc.pid) - cpu0) / elapsed
        hist = None
        if args.history_desks:
            log(f"history: {args.history_desks} desks x {args.history_minutes} minute rollups + "
                f"{args.events_per_hour:g} events/desk-hour ...")
            hist = history_growth(host, port, db, args.history_desks, args.history_minutes, args.events_per_hour)
        mem = memory_per_desk()

        med = {k: statistics.median(p[k] for p in pairs) for k in pairs[0]}
        lat_ms = sorted(x * 1000 for x in lat)
        p50 = statistics.median(lat_ms) if lat_ms else float("nan")
        p99 = lat_ms[min(len(lat_ms) - 1, int(0.99 * len(lat_ms)))] if lat_ms else float("nan")
        per_k = cores / args.desks * 1000
        print(f"\ningest, {args.pairs} alternating pairs of {args.blast:,} metrics (msg/s from the publisher's launch):")
        print(f"{'pair':>4}  {'mosquitto_sub':>13}  {'ours':>8}  {'ours / mosquitto_sub':>20}  {'(from 1st publish)':>18}"
              f"  {'host CPU':>9}")
        for i, p in enumerate(pairs, 1):
            print(f"{i:>4}  {p['raw']:>13,.0f}  {p['ours']:>8,.0f}  {p['ratio']:>20.2f}  {p['ratio_first']:>18.2f}"
                  f"  {p['cpu_us']:>6.1f} us")
        print(f"{'med':>4}  {med['raw']:>13,.0f}  {med['ours']:>8,.0f}  {med['ratio']:>20.2f}  "
              f"{med['ratio_first']:>18.2f}  {med['cpu_us']:>6.1f} us\n")
        backend = "PostgreSQL" if db.startswith("postgres") else "SQLite"
        rows = [
            ("raw receive, mosquitto_sub (median)", f"{med['raw']:,.0f} msg/s", "1.00"),
            ("host ingest, same blast (median)", f"{med['ours']:,.0f} msg/s",
             f"{med['ratio']:.2f} (median of the pairs' ratios; target >= 0.50)"),
            ("host CPU per message, blast", f"{med['cpu_us']:.1f} us", "both threads"),
            (f"sustained: {args.desks} desks x 1 Hz, offered", f"{args.desks:,} msg/s", ""),
            ("sustained: host handled", f"{got:,} msgs",
             f"of {args.desks * int(args.seconds) + args.probes:,} offered; last one {elapsed - args.seconds:.1f} s "
             "after the load's end (incl. the publisher's start-up)"),
            ("sustained: host CPU", f"{cores:.2f} cores", f"{got / elapsed / max(cores, 1e-9):,.0f} msg per CPU-s"),
            (f"CPU per 1,000 desks at 1 Hz ({backend})", f"{per_k * 100:.1f} % of a core",
             f"~{1 / max(per_k, 1e-9) * 1000:,.0f} desks per core (linear)"),
            (f"publish -> alert latency p50 ({len(lat_ms)} probes)", f"{p50:.1f} ms", ""),
            ("publish -> alert latency p99", f"{p99:.1f} ms", f"target 500 ms: {'ok' if p99 <= 500 else 'MISSED'}"),
            ("memory per desk (floor state)", f"{mem / 1024:.1f} KiB",
             f"target 20 KiB: {'ok' if mem <= 20480 else 'MISSED'}"),
        ]
        if hist is not None:
            day = hist["per_desk_hour"] * 24
            rows += [
                (f"history ({backend}): rows stored", f"{hist['rows']:,.0f}",
                 f"{hist['minutes']:,.0f} minute rollups + {hist['events']:,.0f} events"),
                ("history: bytes per row (tables + indexes)", f"{hist['per_row']:,.0f} B", ""),
                ("history: per desk-hour", f"{hist['per_desk_hour'] / 1024:,.1f} KiB",
                 f"{args.events_per_hour:g} events/h + 60 minute rollups/h"),
                ("history: per 1,000 desks per day", f"{day * 1000 / 2**20:,.0f} MiB",
                 f"24 h of operation; an 8 h shift: {day / 3 * 1000 / 2**20:,.0f} MiB"),
            ]
        table(rows)
        print(f"(2 cores shared with other work: read the ratios, taken pair by pair; {os.cpu_count()} cores; "
              "host = 1 process, GIL-bound)")
        print(json.dumps({"pairs": pairs, "median": med, "cores_per_1000_desks": per_k, "latency_ms": [p50, p99],
                          "memory_per_desk": mem, "history": hist, "backend": backend}), file=sys.stderr)
    finally:
        if host is not None:
            host.close()
        broker.terminate()
        broker.wait(10)
        shutil.rmtree(tmp, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
