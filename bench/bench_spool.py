"""Benchmark of the durable spool's throughput (not a test).

    .venv/bin/python bench/bench_spool.py [--events 5000] [--rounds 3] [--dir DIR]

Each run writes EVENTS real event payloads (mqtt_schema-encoded, ~160 bytes) and deletes them again,
every append durable (fsynced) before it returns, all in the same process and on the same disk:

1. baseline: raw sqlite3, the spool's pragmas (WAL, synchronous=FULL), one INSERT and one DELETE per event;
2. spool, one by one: ``Spool.append`` then ``Spool.delete`` per event (thread lock, bound check, counters);
3. spool, as the publisher does it: ``append`` per event, ``delete_many`` per batch of 32 PUBACKs.

Prints events/s (best of ROUNDS) with the ratio to the baseline. Target: >= 2,000 events/s.
The folder defaults to the system temp dir; pass ``--dir`` to measure the disk the desk unit will use.
"""

from __future__ import annotations

import argparse
import sqlite3
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from device.outputs.spool import Spool  # noqa: E402
from mqtt_schema import Cue, DeskKind, DeskTopic, Event, EventKind, encode  # noqa: E402

TARGET_EPS = 2_000
BATCH = 32
TOPIC = str(DeskTopic("site-1", "desk-001", DeskKind.EVENT))


def payloads(n: int) -> list[bytes]:
    t0 = int(time.time() * 1000)
    return [encode(Event(site="site-1", desk="desk-001", boot=12, seq=i + 1, ts=t0 + i, kind=EventKind.CUE_ON,
                         cue=Cue.PACE_FAST, value=171.5)) for i in range(n)]


def raw_sqlite(path: Path, data: list[bytes]) -> float:
    db = sqlite3.connect(path, isolation_level=None)
    db.execute("PRAGMA journal_mode=WAL")
    db.execute("PRAGMA synchronous=FULL")
    db.execute("CREATE TABLE rows (id INTEGER PRIMARY KEY AUTOINCREMENT, topic TEXT NOT NULL, "
               "payload BLOB NOT NULL, qos INTEGER NOT NULL)")
    t = time.perf_counter()
    for p in data:
        row_id = db.execute("INSERT INTO rows (topic, payload, qos) VALUES (?, ?, 1)", (TOPIC, p)).lastrowid
        db.execute("DELETE FROM rows WHERE id = ?", (row_id,))
    dt = time.perf_counter() - t
    db.close()
    return dt


def spool_one_by_one(path: Path, data: list[bytes]) -> float:
    with Spool(path) as spool:
        t = time.perf_counter()
        for p in data:
            spool.delete(spool.append(TOPIC, p, 1))
        dt = time.perf_counter() - t
        assert len(spool) == 0
    return dt


def spool_batched_acks(path: Path, data: list[bytes]) -> float:
    with Spool(path) as spool:
        t = time.perf_counter()
        acked: list[int] = []
        for p in data:
            acked.append(spool.append(TOPIC, p, 1))
            if len(acked) == BATCH:
                spool.delete_many(acked)
                acked.clear()
        spool.delete_many(acked)
        dt = time.perf_counter() - t
        assert len(spool) == 0
    return dt


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--events", type=int, default=5_000)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--dir", type=Path, default=None)
    args = ap.parse_args()
    data = payloads(args.events)
    runs: list[tuple[str, Callable[[Path, list[bytes]], float]]] = [
        ("baseline: raw sqlite3 insert+delete", raw_sqlite),
        ("spool: append+delete", spool_one_by_one),
        (f"spool: append, delete_many per {BATCH}", spool_batched_acks),
    ]
    best: dict[str, float] = {}
    with tempfile.TemporaryDirectory(dir=args.dir) as d:
        for r in range(args.rounds):
            for name, fn in runs:  # interleaved, so that disk or CPU noise hits all of them alike
                secs = fn(Path(d) / f"{fn.__name__}-{r}.db", data)
                best[name] = max(best.get(name, 0.0), args.events / secs)
    base = best[runs[0][0]]
    print(f"spool throughput, {args.events} events of {len(data[0])} B, best of {args.rounds}, "
          f"fsync on every append (WAL, synchronous=FULL)")
    print(f"{'run':42} {'events/s':>10} {'vs baseline':>12} {'target':>8}")
    for name, _ in runs:
        eps = best[name]
        ok = "ok" if eps >= TARGET_EPS else "LOW"
        print(f"{name:42} {eps:10,.0f} {eps / base:11.2f}x {ok:>8}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
