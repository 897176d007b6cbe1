"""The durable spool: order, delete, bound and dropped count, kill -9, corrupt files, threads."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from device.outputs.spool import Spool, SpoolError

REPO = Path(__file__).parents[3]
TOPIC = "hsc/v1/s1/d1/event"


def test_fifo_order_pending_and_delete(tmp_path: Path) -> None:
    with Spool(tmp_path / "spool.db") as spool:
        ids = [spool.append(TOPIC, f"p{i}".encode(), 1) for i in range(10)]
        assert ids == sorted(ids) and len(set(ids)) == 10
        rows = spool.pending(limit=4)
        assert [r.id for r in rows] == ids[:4]
        assert [r.payload for r in rows] == [b"p0", b"p1", b"p2", b"p3"]
        assert all(r.topic == TOPIC and r.qos == 1 for r in rows)
        assert [r.id for r in spool.pending(limit=100, after_id=ids[6])] == ids[7:]
        spool.delete(ids[0])
        spool.delete(ids[0])  # deleting twice (a duplicate PUBACK) is harmless
        assert spool.delete_many([ids[2], ids[3], 10_000]) == 2
        assert len(spool) == 7
        assert [r.id for r in spool.pending()] == [ids[1], *ids[4:]]


def test_ids_are_never_reused(tmp_path: Path) -> None:
    """A publisher resumes with "rows after the last id sent": ids must keep growing after deletes."""
    path = tmp_path / "spool.db"
    with Spool(path) as spool:
        first = [spool.append(TOPIC, b"x") for _ in range(3)]
        spool.delete_many(first)
        assert len(spool) == 0
    with Spool(path) as spool:
        again = spool.append(TOPIC, b"y")
        assert again > max(first)
        assert [r.id for r in spool.pending(after_id=max(first))] == [again]


def test_bound_evicts_the_oldest_and_counts_them_durably(tmp_path: Path) -> None:
    path = tmp_path / "spool.db"
    with Spool(path, max_rows=5) as spool:
        ids = [spool.append(TOPIC, f"p{i}".encode()) for i in range(12)]
        assert len(spool) == 5
        assert [r.id for r in spool.pending()] == ids[-5:]
    with Spool(path, max_rows=5) as spool:  # the count survives a restart
        assert spool.take_dropped() == 7
        assert spool.take_dropped() == 0
        spool.append(TOPIC, b"more")
        assert spool.take_dropped() == 1
        assert len(spool) == 5


def test_bad_arguments_are_refused(tmp_path: Path) -> None:
    with Spool(tmp_path / "spool.db") as spool:
        with pytest.raises(ValueError, match="qos must be 0, 1 or 2"):
            spool.append(TOPIC, b"x", qos=3)
        with pytest.raises(ValueError, match="topic"):
            spool.append("", b"x")
        with pytest.raises(ValueError, match="payload must be bytes"):
            spool.append(TOPIC, "text")  # type: ignore[arg-type]
    with pytest.raises(SpoolError, match="closed"):
        spool.append(TOPIC, b"x")
    with pytest.raises(ValueError, match="max_rows"):
        Spool(tmp_path / "other.db", max_rows=0)


def test_nothing_acknowledged_is_lost_on_kill_9(tmp_path: Path) -> None:
    path = tmp_path / "spool.db"
    proc = subprocess.Popen([sys.executable, "-m", "tests.device.outputs.spool_writer", str(path)],
                            cwd=REPO, stdout=subprocess.PIPE, text=True)
    assert proc.stdout is not None
    acked: dict[int, str] = {}
    deadline = time.monotonic() + 30
    try:
        while len(acked) < 300 and time.monotonic() < deadline:
            line = proc.stdout.readline()
            if not line:
                break
            row_id, payload = line.split()
            acked[int(row_id)] = payload
    finally:
        os.kill(proc.pid, signal.SIGKILL)  # mid-append, with no chance to clean up
        proc.wait(10)
        proc.stdout.close()
    assert proc.returncode == -signal.SIGKILL
    assert len(acked) >= 300, "the writer did not get going"
    with Spool(path) as spool:
        rows = {r.id: r.payload.decode() for r in spool.pending(limit=1_000_000)}
    assert spool.moved_aside is None
    missing = {i: p for i, p in acked.items() if rows.get(i) != p}
    assert not missing, f"{len(missing)} acknowledged rows lost"
    assert list(rows) == sorted(rows)


def test_corrupt_file_is_moved_aside_never_deleted(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    path = tmp_path / "spool.db"
    garbage = os.urandom(8192)
    path.write_bytes(garbage)
    with pytest.raises(SpoolError, match=r"cannot open the spool .*spool\.db"):
        Spool(path, recover_corrupt=False)
    assert path.read_bytes() == garbage  # refused, untouched
    with Spool(path) as spool:
        assert spool.moved_aside is not None and spool.moved_aside.read_bytes() == garbage
        assert spool.moved_aside.name.startswith("spool.db.corrupt-")
        assert len(spool) == 0
        spool.append(TOPIC, b"fresh")
    assert "corrupt" in caplog.text and str(spool.moved_aside) in caplog.text


def test_damaged_pages_are_detected(tmp_path: Path) -> None:
    path = tmp_path / "spool.db"
    with Spool(path) as spool:
        for i in range(2000):
            spool.append(TOPIC, f"payload-{i}".encode() * 10)
    data = bytearray(path.read_bytes())
    assert len(data) > 8 * 4096, "the WAL should have been checkpointed into the main file"
    data[2 * 4096:6 * 4096] = os.urandom(4 * 4096)  # a torn write over some b-tree pages
    path.write_bytes(bytes(data))
    for side in ("-wal", "-shm"):
        Path(str(path) + side).unlink(missing_ok=True)
    with Spool(path) as spool:
        assert spool.moved_aside is not None and spool.moved_aside.read_bytes() == bytes(data)
        assert len(spool) == 0


def test_threads_append_and_delete_concurrently(tmp_path: Path) -> None:
    with Spool(tmp_path / "spool.db") as spool:
        got: dict[int, list[int]] = {}
        errors: list[BaseException] = []

        def writer(k: int) -> None:
            try:
                got[k] = [spool.append(TOPIC, f"{k}-{i}".encode()) for i in range(100)]
            except BaseException as exc:
                errors.append(exc)

        def deleter() -> None:
            try:
                end = time.monotonic() + 30
                deleted = 0
                while deleted < 200 and time.monotonic() < end:
                    rows = spool.pending(limit=min(10, 200 - deleted))
                    deleted += spool.delete_many(r.id for r in rows)
            except BaseException as exc:
                errors.append(exc)

        threads = [threading.Thread(target=writer, args=(k,)) for k in range(4)] + [threading.Thread(target=deleter)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(60)
        assert not errors
        all_ids = [i for ids in got.values() for i in ids]
        assert len(set(all_ids)) == 400
        assert all(ids == sorted(ids) for ids in got.values())
        assert len(spool) == 200 == len(spool.pending(limit=1000))
