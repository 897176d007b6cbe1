"""The fault matrix's rig and its judge, shared by ``tests/system/test_fault_matrix.py`` (short, CI) and
``bench/chaos.py`` (long, random timing).

The rig (:class:`Rig`) runs real processes: one mosquitto, one ``headset-host run`` and 1..3
``headset-agent run`` desks (looping file audio, ``--mock-gpio``, ``--headset none``), every one on the
same scaled clock (``--time-scale S --time-origin-ms T``). :data:`FAULTS` injects each fault with
signals (kill -9, SIGSTOP/SIGCONT, SIGTERM), a full tmpfs, garbage bytes or a shifted clock origin.

The judge (:func:`compare`) reads what the desks themselves say is durable and what the host stored:

- **durable** (the desk's word): every ``event`` and ``minute`` log line (JSON, with ``boot`` and
  ``seq``) is written once the message is in the desk's fsynced spool;
- **lost**: a durable (desk, boot, seq) that is not in the host's history DB (``events`` or
  ``minutes``);
- **duplicated**: rows of the history sharing (desk, boot, seq), plus minute rows sharing
  (desk, boot, minute_ts) (the same minute sent twice under two seqs);
- **minute gaps**: for each (desk, boot), every ``minute_ts`` between the first and the last minute the
  host stored must be there (60 s apart). A missing minute is *excused* only when the fault itself kept
  the desk from keeping it, which the desk says in its log: ``minute rollup not spooled`` (a full disk)
  names that boot and ``minute_ts``. Nothing else excuses a gap: not a broker outage (the spool holds
  minutes), not a host crash, not a desk restart (a new boot starts its own run of minutes; the last
  partial minute of a boot killed -9 was never durable, so it is neither lost nor a gap).
"""

from __future__ import annotations

import json
import os
import random
import shutil
import signal
import socket
import sqlite3
import statistics
import subprocess
import sys
import threading
import time
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tests.ports import free_port

ROOT = Path(__file__).resolve().parents[2]
SITE = "fault"
SCALE = 20.0
"""Agent and host clock seconds per wall second: a minute rollup every 3 wall seconds."""
KEEPALIVE_S = 5
"""MQTT keepalive of desks and host (the minimum the configs take)."""
OFFLINE_FOR_S = 30
"""The host's ``desk-offline`` ``for:`` (host-clock seconds; 1.5 wall seconds at ``SCALE``)."""
MINUTE_MS = 60_000


# --- the judge ------------------------------------------------------------------------------------

def read_log(path: Path) -> list[dict[str, Any]]:
    """A desk's JSON log lines (other lines, e.g. a traceback, as ``{"msg": line, "raw": True}``)."""
    out: list[dict[str, Any]] = []
    if not path.exists():
        return out
    for line in path.read_text(encoding="utf-8", errors="replace").splitlines():
        try:
            rec = json.loads(line)
        except ValueError:
            rec = None
        out.append(rec if isinstance(rec, dict) else {"msg": line, "raw": True})
    return out


@dataclass
class DeskLog:
    """What one desk's log says: durable events and minutes, minutes it could not keep, its boots."""

    events: set[tuple[int, int]] = field(default_factory=set)
    minutes: dict[tuple[int, int], int] = field(default_factory=dict)
    """(boot, seq) -> minute_ts of every durable minute rollup."""
    not_spooled_minutes: set[tuple[int, int]] = field(default_factory=set)
    """(boot, minute_ts) of minutes the desk logged as ``minute rollup not spooled``."""
    not_spooled_events: int = 0
    boots: list[int] = field(default_factory=list)
    corrupt_notes: list[str] = field(default_factory=list)
    tracebacks: list[str] = field(default_factory=list)
    logged_at: dict[tuple[str, int, int], float] = field(default_factory=dict)
    """("event"|"minute", boot, seq) -> wall time (s since the epoch) of its durable log line."""


def _epoch_s(ts: object) -> float:
    """The log's ``ts`` (ISO 8601 UTC with ms, ``Z``) in seconds since the epoch (0.0 if unreadable)."""
    import datetime as dt

    try:
        return dt.datetime.fromisoformat(str(ts).replace("Z", "+00:00")).timestamp()
    except ValueError:
        return 0.0


def desk_log(path: Path) -> DeskLog:
    out = DeskLog()
    for r in read_log(path):
        msg = str(r.get("msg", ""))
        if msg == "event" and "seq" in r:
            out.events.add((int(r["boot"]), int(r["seq"])))
            out.logged_at[("event", int(r["boot"]), int(r["seq"]))] = _epoch_s(r.get("ts"))
        elif msg == "minute" and "seq" in r:
            out.minutes[(int(r["boot"]), int(r["seq"]))] = int(r["minute_ts"])
            out.logged_at[("minute", int(r["boot"]), int(r["seq"]))] = _epoch_s(r.get("ts"))
        elif msg == "minute rollup not spooled":
            out.not_spooled_minutes.add((int(r["boot"]), int(r["minute_ts"])))
        elif msg == "event not spooled":
            out.not_spooled_events += 1
        elif msg == "agent started":
            out.boots.append(int(r["boot"]))
        if "corrupt" in msg:
            out.corrupt_notes.append(msg)
        if r.get("raw") and "Traceback" in msg or "exc" in r:
            out.tracebacks.append(str(r.get("exc", msg))[-2000:])
    return out


@dataclass
class History:
    """The host's history of one site: events and minutes per desk, as rows (duplicates kept)."""

    events: dict[str, list[tuple[int, int]]] = field(default_factory=lambda: defaultdict(list))
    minutes: dict[str, list[tuple[int, int, int]]] = field(default_factory=lambda: defaultdict(list))
    """desk -> [(boot, seq, minute_ts)]."""
    alert_log: list[tuple[str, str, str]] = field(default_factory=list)
    """(desk, rule, transition) in order."""
    active: dict[tuple[str, str], str] = field(default_factory=dict)
    """(desk, rule) -> state of the alerts the host persists as active."""


def _ro(db: Path) -> sqlite3.Connection:
    return sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=10)


def history(db: Path, site: str = SITE) -> History:
    h = History()
    if not db.exists():
        return h
    conn = _ro(db)
    try:
        for d, b, s in conn.execute("SELECT desk, boot, seq FROM events WHERE site = ?", (site,)):
            h.events[str(d)].append((int(b), int(s)))
        for d, b, s, m in conn.execute("SELECT desk, boot, seq, minute_ts FROM minutes WHERE site = ?", (site,)):
            h.minutes[str(d)].append((int(b), int(s), int(m)))
        for d, r, t in conn.execute("SELECT desk, rule, transition FROM alert_log WHERE site = ? ORDER BY id",
                                    (site,)):
            h.alert_log.append((str(d), str(r), str(t)))
        for d, r, st in conn.execute("SELECT desk, rule, state FROM active_alerts WHERE site = ?", (site,)):
            h.active[(str(d), str(r))] = str(st)
    except sqlite3.OperationalError:  # tables not created yet
        pass
    finally:
        conn.close()
    return h


@dataclass
class DeskOutcome:
    desk: str
    boots: list[int]
    events: int
    minutes: int
    lost_events: list[tuple[int, int]]
    lost_minutes: list[tuple[int, int]]
    exposed_lost: list[tuple[str, int, int]]
    """("event"|"minute", boot, seq) lost, but logged inside an exposure window (see :func:`compare`)."""
    duplicated: int
    gaps: list[tuple[int, int]]
    """(boot, minute_ts) missing inside a boot's run of minutes, not excused."""
    excused: list[tuple[int, int]]
    not_spooled_events: int
    tracebacks: list[str]


@dataclass
class Outcome:
    desks: dict[str, DeskOutcome]

    @property
    def durable(self) -> int:
        return sum(d.events + d.minutes for d in self.desks.values())

    @property
    def lost(self) -> int:
        return sum(len(d.lost_events) + len(d.lost_minutes) for d in self.desks.values())

    @property
    def exposed_lost(self) -> int:
        return sum(len(d.exposed_lost) for d in self.desks.values())

    @property
    def duplicated(self) -> int:
        return sum(d.duplicated for d in self.desks.values())

    @property
    def gaps(self) -> int:
        return sum(len(d.gaps) for d in self.desks.values())

    def describe(self) -> str:
        parts = []
        for d in self.desks.values():
            parts.append(f"{d.desk}: boots {d.boots}, durable {d.events} events + {d.minutes} minutes, "
                         f"lost {d.lost_events[:5] + d.lost_minutes[:5]} ({len(d.lost_events)}+{len(d.lost_minutes)}), "
                         f"lost in an exposure window {len(d.exposed_lost)}, "
                         f"duplicated {d.duplicated}, gaps {d.gaps[:5]}, excused {len(d.excused)}, "
                         f"not spooled events {d.not_spooled_events}")
        return "; ".join(parts)


def minute_gaps(stored: list[tuple[int, int, int]], excused: set[tuple[int, int]]) -> tuple[list[tuple[int, int]],
                                                                                          list[tuple[int, int]]]:
    """(gaps, excused gaps) in each boot's run of minute_ts: (boot, missing minute_ts)."""
    by_boot: dict[int, set[int]] = defaultdict(set)
    for boot, _, minute_ts in stored:
        by_boot[boot].add(minute_ts)
    gaps: list[tuple[int, int]] = []
    ok: list[tuple[int, int]] = []
    for boot, got in sorted(by_boot.items()):
        for m in range(min(got), max(got) + MINUTE_MS, MINUTE_MS):
            if m not in got:
                (ok if (boot, m) in excused else gaps).append((boot, m))
    return gaps, ok


def compare(logs: dict[str, Path], db: Path, site: str = SITE,
            exposed: list[tuple[float, float]] | None = None, until: float | None = None) -> Outcome:
    """Each desk's durable messages (its log) against the host's history (``db``).

    ``exposed``: wall-time windows (s since the epoch) in which the fault itself voids the guarantee (a
    broker without persistence, killed: what it acknowledged and had not yet delivered, and what desks sent
    before the host had subscribed again, is gone). A durable message logged inside one and missing is
    counted in ``exposed_lost``, not in ``lost``, and a minute gap it leaves is excused.

    ``until`` (s since the epoch): judge only what was logged up to then (while desks still run, what
    they logged a moment ago may still be on its way; after they stopped, leave it None).
    """
    h = history(db, site)
    windows = exposed or []
    out: dict[str, DeskOutcome] = {}
    for desk, path in logs.items():
        dl = desk_log(path)
        if until is not None:
            dl.events = {k for k in dl.events if dl.logged_at.get(("event", *k), 0.0) <= until}
            dl.minutes = {k: m for k, m in dl.minutes.items() if dl.logged_at.get(("minute", *k), 0.0) <= until}
        ev_rows = h.events.get(desk, [])
        mn_rows = h.minutes.get(desk, [])
        ev_keys = set(ev_rows)
        mn_keys = {(b, s) for b, s, _ in mn_rows}
        dup = (len(ev_rows) - len(ev_keys)) + (len(mn_rows) - len(mn_keys))
        dup += len(mn_rows) - len({(b, m) for b, _, m in mn_rows})

        def in_window(key: tuple[str, int, int], dl: DeskLog = dl) -> bool:
            t = dl.logged_at.get(key, 0.0)
            return any(t0 <= t <= t1 for t0, t1 in windows)

        lost_ev = [k for k in sorted(dl.events - ev_keys) if not in_window(("event", *k))]
        lost_mn = [k for k in sorted(set(dl.minutes) - mn_keys) if not in_window(("minute", *k))]
        exposed_lost = [("event", *k) for k in sorted(dl.events - ev_keys) if in_window(("event", *k))]
        exposed_lost += [("minute", *k) for k in sorted(set(dl.minutes) - mn_keys) if in_window(("minute", *k))]
        excused = set(dl.not_spooled_minutes) | {(b, dl.minutes[(b, s)]) for kind, b, s in exposed_lost
                                                   if kind == "minute"}
        gaps, ok = minute_gaps(mn_rows, excused)
        out[desk] = DeskOutcome(
            desk=desk, boots=dl.boots, events=len(dl.events), minutes=len(dl.minutes),
            lost_events=lost_ev, lost_minutes=lost_mn, exposed_lost=exposed_lost,
            duplicated=dup, gaps=gaps, excused=ok, not_spooled_events=dl.not_spooled_events,
            tracebacks=dl.tracebacks)
    return Outcome(out)


def restless_speech(path: Path) -> Path:
    """Own speech (the demo clips, two channels) 12 s at its level, then 12 s about 16 dB louder: looped,
    the volume cue goes on and off every loop, so the desk sends events all the time (about one per wall
    second at ``SCALE``)."""
    import numpy as np
    import soundfile as sf

    from tests.device.helpers import two_channel_speech

    base = two_channel_speech(path.with_name("base.wav"), seconds=12)
    x, sr = sf.read(base, dtype="float32", always_2d=True)
    loud = np.clip(x * 6.3, -1.0, 1.0)
    sf.write(path, np.concatenate([x, loud]), sr, subtype="PCM_16")
    return path


# --- the rig --------------------------------------------------------------------------------------

def _mosquitto() -> str | None:
    return shutil.which("mosquitto") or ("/usr/sbin/mosquitto" if os.path.exists("/usr/sbin/mosquitto") else None)


def wait_for(pred: Callable[[], Any], deadline_s: float, what: str, poll_s: float = 0.05) -> Any:
    end = time.monotonic() + deadline_s
    while True:
        value = pred()
        if value:
            return value
        if time.monotonic() >= end:
            raise TimeoutError(f"{what}: not reached within {deadline_s:g} s")
        time.sleep(poll_s)


def _listening(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.2):
            return True
    except OSError:
        return False


def _stop_proc(proc: subprocess.Popen[bytes] | None, deadline_s: float) -> int | str | None:
    """SIGTERM, then wait up to ``deadline_s``: the exit code, or ``"hung"`` (then SIGUSR1, which makes our
    agents write every thread's stack to their log, and killed)."""
    if proc is None:
        return None
    if proc.poll() is not None:
        return proc.returncode
    proc.send_signal(signal.SIGCONT)  # a stopped process cannot take SIGTERM
    proc.send_signal(signal.SIGTERM)
    try:
        return proc.wait(deadline_s)
    except subprocess.TimeoutExpired:
        proc.send_signal(signal.SIGUSR1)  # the agents dump every thread's stack to their log: why it hung
        time.sleep(1.0)
        proc.kill()
        proc.wait()
        return "hung"


class Broker:
    """A real mosquitto; ``persistence`` with ``autosave_interval 1`` (what the guarantee needs)."""

    def __init__(self, workdir: Path, persistence: bool) -> None:
        self.workdir = workdir
        self.persistence = persistence
        self.port = free_port()
        self.proc: subprocess.Popen[bytes] | None = None
        workdir.mkdir(parents=True, exist_ok=True)

    @property
    def url(self) -> str:
        return f"mqtt://127.0.0.1:{self.port}"

    def start(self) -> None:
        exe = _mosquitto()
        if exe is None:
            raise RuntimeError("mosquitto is not installed (apt-get install mosquitto)")
        conf = self.workdir / "mosquitto.conf"
        persist = (f"persistence true\npersistence_location {self.workdir}/\nautosave_interval 1\n"
                   if self.persistence else "persistence false\n")
        conf.write_text(f"listener {self.port} 127.0.0.1\nallow_anonymous true\n"
                        f"{'user root' if os.geteuid() == 0 else ''}\n{persist}max_queued_messages 0\n"
                        f"log_dest file {self.workdir}/mosquitto.log\n")
        self.proc = subprocess.Popen([exe, "-c", str(conf)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        wait_for(lambda: _listening(self.port) or self.proc.poll() is not None, 10, "mosquitto listening")  # type: ignore[union-attr]
        if self.proc.poll() is not None:
            raise RuntimeError(f"mosquitto exited: {(self.workdir / 'mosquitto.log').read_text()[-2000:]}")

    def kill9(self) -> None:
        assert self.proc is not None
        self.proc.kill()
        self.proc.wait(10)

    def signal(self, sig: int) -> None:
        assert self.proc is not None
        self.proc.send_signal(sig)

    def stop(self, deadline_s: float = 10.0) -> int | str | None:
        rc = _stop_proc(self.proc, deadline_s)
        self.proc = None
        return rc


class Desk:
    """``headset-agent run`` as a process; its JSON log lines go to ``log``."""

    def __init__(self, rig: Rig, name: str) -> None:
        self.rig = rig
        self.name = name
        self.state_dir = rig.workdir / name / "state"
        self.log = rig.workdir / name / "agent.log"
        self.config = rig.workdir / name / "agent.toml"
        self.origin_ms = rig.origin_ms
        self.proc: subprocess.Popen[bytes] | None = None
        self.state_dir.mkdir(parents=True, exist_ok=True)

    def start(self) -> None:
        self.config.write_text(f'[desk]\nsite = "{SITE}"\ndesk = "{self.name}"\n\n'
                               f'[mqtt]\nurl = "{self.rig.broker.url}"\nkeepalive_s = {KEEPALIVE_S}\n\n'
                               "[cues]\nmin_on_s = 1\nvolume_persist_s = 1\nclear_s = 0.5\n",
                               encoding="utf-8")
        args = [sys.executable, "-m", "device.cli", "run", "--config", str(self.config),
                "--audio", f"file:{self.rig.speech}", "--loop", "--headset", "none", "--mock-gpio",
                "--state-dir", str(self.state_dir), "--log-level", "info",
                "--time-scale", f"{self.rig.scale:g}", "--time-origin-ms", str(self.origin_ms)]
        with self.log.open("ab") as log:
            self.proc = subprocess.Popen(args, stdout=log, stderr=log, stdin=subprocess.DEVNULL, cwd=ROOT)

    def now_ms(self) -> int:
        """This desk's clock now (its own origin: a shifted one steps its clock)."""
        return int(self.origin_ms + (time.time_ns() / 1e6 - self.origin_ms) * self.rig.scale)

    def step_clock(self, delta_ms: int) -> None:
        """Shift the origin so that this desk's clock reads ``delta_ms`` more (the next start takes it).

        ``now = T + (wall - T) * S``: a new origin ``T' = T - delta / (S - 1)`` adds ``delta`` to ``now``.
        """
        self.origin_ms = int(self.origin_ms - delta_ms / (self.rig.scale - 1))

    def kill9(self) -> None:
        assert self.proc is not None
        self.proc.kill()
        self.proc.wait(10)

    def stop(self, deadline_s: float = 20.0) -> int | str | None:
        rc = _stop_proc(self.proc, deadline_s)
        self.proc = None
        return rc

    def logged(self) -> DeskLog:
        return desk_log(self.log)


class Host:
    """``headset-host run -v`` as a process, with a fixed client id (a persistent session)."""

    def __init__(self, rig: Rig) -> None:
        self.rig = rig
        self.db = rig.workdir / "host" / "host.db"
        self.log = rig.workdir / "host" / "host.log"
        self.config = rig.workdir / "host" / "host.toml"
        self.proc: subprocess.Popen[bytes] | None = None
        self.db.parent.mkdir(parents=True, exist_ok=True)

    def broker_lines(self) -> str:
        """The ``[broker]`` table's settings (a subclass points the host at other brokers)."""
        return f'url = "{self.rig.broker.url}"\nclient_id = "fault-host"\n'

    def start(self) -> None:
        self.config.write_text(
            f'[broker]\n{self.broker_lines()}keepalive_s = {KEEPALIVE_S}\n'
            f'[host]\nsites = ["{SITE}"]\ndb = "{self.db}"\n[dashboard]\nenabled = false\n'
            f'[rules.desk-offline]\nfor_s = {OFFLINE_FOR_S}\n', encoding="utf-8")
        size = self.log.stat().st_size if self.log.exists() else 0
        with self.log.open("ab") as log:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "host_agent.cli", "run", "--config", str(self.config), "-v",
                 "--time-scale", f"{self.rig.scale:g}", "--time-origin-ms", str(self.rig.origin_ms)],
                stdout=log, stderr=log, stdin=subprocess.DEVNULL, cwd=ROOT)

        def ready() -> bool:
            assert self.proc is not None
            if self.proc.poll() is not None:
                raise RuntimeError(f"the host exited: {self.log.read_text()[-2000:]}")
            with self.log.open("rb") as f:
                f.seek(size)
                return b"headset-host: following" in f.read()

        wait_for(ready, 30, "host connected and subscribed")

    def kill9(self) -> None:
        assert self.proc is not None
        self.proc.kill()
        self.proc.wait(10)

    def stop(self, deadline_s: float = 20.0) -> int | str | None:
        rc = _stop_proc(self.proc, deadline_s)
        self.proc = None
        return rc

    def tracebacks(self) -> int:
        """Tracebacks in the host's log (a crash, or ``processing failed``): there should be none."""
        return self.log.read_text(errors="replace").count("Traceback") if self.log.exists() else 0

    def max_rowids(self) -> dict[str, int]:
        """desk -> the highest rowid of its events and minutes (rows are never deleted here)."""
        out: dict[str, int] = {}
        if not self.db.exists():
            return out
        try:
            conn = _ro(self.db)
            try:
                for table in ("events", "minutes"):
                    for d, r in conn.execute(f"SELECT desk, MAX(rowid) FROM {table} WHERE site = ? GROUP BY desk",
                                             (SITE,)):
                        out[f"{table}:{d}"] = int(r)
            finally:
                conn.close()
        except sqlite3.OperationalError:
            pass
        return out

    def rows_for(self, desk: str) -> int:
        h = history(self.db)
        return len(h.events.get(desk, [])) + len(h.minutes.get(desk, []))


def retained_alerts(port: int, site: str = SITE, quiet_s: float = 0.5) -> dict[str, bytes]:
    """The broker's retained alerts of ``site`` (topic -> payload), read by a throwaway subscriber."""
    import paho.mqtt.client as mqtt
    from paho.mqtt.enums import CallbackAPIVersion

    got: dict[str, bytes] = {}
    last = [time.monotonic()]
    done = threading.Event()
    c = mqtt.Client(CallbackAPIVersion.VERSION2, client_id="", protocol=mqtt.MQTTv311)

    def on_message(cl: Any, u: Any, m: Any) -> None:
        if m.retain and m.payload:
            got[m.topic] = bytes(m.payload)
        last[0] = time.monotonic()

    c.on_message = on_message
    c.on_subscribe = lambda *a: done.set()
    c.connect("127.0.0.1", port)
    c.loop_start()
    try:
        c.subscribe(f"hsc/v1/{site}/alert/#", 1)
        done.wait(5)
        last[0] = time.monotonic()
        while time.monotonic() - last[0] < quiet_s:
            time.sleep(0.05)
    finally:
        c.disconnect()
        c.loop_stop()
    return got


@dataclass
class FaultRecord:
    """One injected fault: when it ended (wall, monotonic) and which desk it aimed at."""

    name: str
    desk: str | None
    end_s: float = 0.0
    """``time.monotonic()`` when the fault ended (the process restarted, the signal sent, the disk freed)."""
    notes: dict[str, Any] = field(default_factory=dict)


class Rig:
    """A broker, a host and ``n_desks`` desks in ``workdir``, on one scaled clock."""

    def __init__(self, workdir: Path, n_desks: int = 1, persistence: bool = True, scale: float = SCALE,
                 speech: Path | None = None) -> None:
        self.workdir = workdir
        self.scale = scale
        self.origin_ms = time.time_ns() // 1_000_000
        self.broker = Broker(workdir / "broker", persistence)
        self.host = Host(self)
        self.desks = [Desk(self, f"desk-{i + 1:02d}") for i in range(n_desks)]
        self.speech = speech or self._speech()
        self.mounts: list[Path] = []
        self.exposed: list[tuple[float, float]] = []
        """Exposure windows the faults declared (see :func:`compare`)."""
        self.hold_until_evidence = False
        """End a fault's hold once it did what it is held for (see :func:`_hold`), not after its full length:
        the CI matrix's choice; the chaos bench keeps the full holds."""

    def outcome(self, until: float | None = None) -> Outcome:
        return compare(self.logs(), self.host.db, exposed=self.exposed, until=until)

    def alert_problems(self) -> list[str]:
        """What is inconsistent about the alerts now (every desk running and online): a ``desk-offline``
        still active at the host, or the broker's retained alerts not matching the host's firing ones."""
        h = history(self.host.db)
        problems = [f"{d}: desk-offline still {st}" for (d, r), st in h.active.items() if r == "desk-offline"]
        firing = {f"hsc/v1/{SITE}/alert/{d}/{r}" for (d, r), st in h.active.items() if st == "firing"}
        retained = set(retained_alerts(self.broker.port))
        if firing != retained:
            problems.append(f"host firing {sorted(firing)} but retained on the broker {sorted(retained)}")
        return problems

    def alerts_consistent(self, deadline_s: float = 10.0) -> list[str]:
        """Wait (up to ``deadline_s``) for :meth:`alert_problems` to be empty; the problems left."""
        end = time.monotonic() + deadline_s
        while True:
            problems = self.alert_problems()
            if not problems or time.monotonic() >= end:
                return problems
            time.sleep(0.2)

    def _speech(self) -> Path:
        return restless_speech(self.workdir / "speech.wav")

    def desk(self, name: str) -> Desk:
        return next(d for d in self.desks if d.name == name)

    def logs(self) -> dict[str, Path]:
        return {d.name: d.log for d in self.desks}

    def start(self) -> None:
        self.broker.start()
        self.host.start()
        for d in self.desks:
            d.start()

    def durable_minutes_at_host(self, desk: str, boot: int | None = None) -> int:
        rows = history(self.host.db).minutes.get(desk, [])
        return sum(1 for b, _, _ in rows if boot is None or b == boot)

    def warm_up(self, minutes: int = 1, deadline_s: float = 40.0) -> None:
        """Until every desk has ``minutes`` minute rollups and an event in the host's history."""
        def ready() -> bool:
            h = history(self.host.db)
            return all(len(h.minutes.get(d.name, [])) >= minutes and h.events.get(d.name) for d in self.desks)

        wait_for(ready, deadline_s, f"{minutes} minute(s) and an event of every desk at the host", 0.1)

    def wait_new_event_logged(self, desk: Desk, deadline_s: float = 15.0) -> None:
        """Until ``desk`` logs a new durable event (it is being published right now)."""
        n = len(desk.logged().events)
        wait_for(lambda: len(desk.logged().events) > n, deadline_s, f"a new event logged by {desk.name}", 0.01)

    def recovery_s(self, rec: FaultRecord, deadline_s: float = 60.0) -> float:
        """Seconds from the fault's end to the first new message (event or minute) of the fault's desk (or of
        every desk) stored by the host; ``rec.end_s`` must be set. Polls the history DB every 20 ms."""
        names = [rec.desk] if rec.desk else [d.name for d in self.desks]
        before = rec.notes.get("rowids_at_end", {})

        def fresh() -> bool:
            now = self.host.max_rowids()
            return all(any(now.get(f"{t}:{n}", 0) > before.get(f"{t}:{n}", 0) for t in ("events", "minutes"))
                       for n in names)

        wait_for(fresh, deadline_s, f"a new message from {', '.join(names)} at the host after {rec.name}", 0.02)
        return time.monotonic() - rec.end_s

    def settle(self, more_minutes: int = 1, deadline_s: float = 40.0) -> None:
        """Until every running desk has ``more_minutes`` more minute rollups at the host than now."""
        h = history(self.host.db)
        base = {d.name: len(h.minutes.get(d.name, [])) for d in self.desks}

        def ready() -> bool:
            h2 = history(self.host.db)
            return all(len(h2.minutes.get(d.name, [])) >= base[d.name] + more_minutes for d in self.desks)

        wait_for(ready, deadline_s, f"{more_minutes} more minute(s) of every desk at the host", 0.1)

    def host_has_every_durable(self, deadline_s: float = 20.0) -> bool:
        """Wait (up to ``deadline_s``) until the host stored every message the desks logged as durable."""
        try:
            wait_for(lambda: self.outcome().lost == 0, deadline_s, "every durable message stored",
                     0.2)
            return True
        except TimeoutError:
            return False

    def stop(self, deadline_s: float = 20.0) -> dict[str, int | str | None]:
        """SIGTERM everything (desks, then the host once it holds what they flushed, then the broker)."""
        rcs: dict[str, int | str | None] = {}
        for d in self.desks:
            rcs[d.name] = d.stop(deadline_s)
        if self.host.proc is not None and self.broker.proc is not None:
            self.host_has_every_durable(15.0)
        rcs["host"] = self.host.stop(deadline_s)
        rcs["broker"] = self.broker.stop(deadline_s)
        return rcs

    def kill_all(self) -> None:
        """Teardown after a failure: nothing survives the test."""
        for p in [d.proc for d in self.desks] + [self.host.proc, self.broker.proc]:
            if p is not None and p.poll() is None:
                p.send_signal(signal.SIGCONT)
                p.kill()
                p.wait()
        for m in self.mounts:
            subprocess.run(["umount", "-l", str(m)], check=False, capture_output=True)
        self.mounts.clear()

    def mount_tmpfs(self, where: Path, size: str) -> bool:
        where.mkdir(parents=True, exist_ok=True)
        done = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(where)],
                              capture_output=True, text=True)
        if done.returncode == 0:
            self.mounts.append(where)
        return done.returncode == 0


# --- the faults -------------------------------------------------------------------------------------

def _end(rig: Rig, rec: FaultRecord) -> FaultRecord:
    rec.notes["rowids_at_end"] = rig.host.max_rowids()
    rec.end_s = time.monotonic()
    return rec


def _host_subscribes(rig: Rig) -> int:
    text = rig.host.log.read_text(errors="replace") if rig.host.log.exists() else ""
    return text.count("subscribed to")


def broker_kill9(rig: Rig, rng: random.Random, hold_s: float) -> FaultRecord:
    """kill -9 of the broker right after a desk spooled an event (on its way through the broker), down
    ``hold_s``, start again.

    Without persistence the broker forgets the host's session, its queued messages and the retained
    alerts. The exposure window (see :func:`compare`) is then from 1 s before the kill until 1 s after
    the host has subscribed again: what the broker had acknowledged and not delivered, and what the desks
    sent before the host's subscription was back, went nowhere. The retained alerts must come back (the
    host publishes them again after a reconnect): the fault waits for one to be retained first.
    """
    rec = FaultRecord("broker-kill9", None)
    if not rig.broker.persistence:
        try:
            wait_for(lambda: retained_alerts(rig.broker.port, quiet_s=0.2), 30, "a retained alert", 0.5)
            rec.notes["retained_before"] = True
        except TimeoutError:
            rec.notes["retained_before"] = False
    subscribes = _host_subscribes(rig)
    rig.wait_new_event_logged(rng.choice(rig.desks))  # mid-flight: an event on its way through the broker
    t_kill = time.time()
    rig.broker.kill9()
    time.sleep(hold_s)
    rig.broker.start()
    _end(rig, rec)
    if not rig.broker.persistence:
        wait_for(lambda: _host_subscribes(rig) > subscribes, 30, "the host subscribed again", 0.02)
        rig.exposed.append((t_kill - 1.0, time.time() + 1.0))
    return rec


def _logged_since(sizes: dict[Path, int], text: bytes) -> bool:
    """True once every log of ``sizes`` (path -> byte offset) has ``text`` after its offset."""
    for path, start in sizes.items():
        with path.open("rb") as f:
            f.seek(start)
            if text not in f.read():
                return False
    return True


def _hold(rig: Rig, hold_s: float, max_s: float, evidence: Callable[[], bool]) -> bool:
    """Hold a fault ``max_s``; with ``rig.hold_until_evidence``, end it sooner once ``hold_s`` passed and
    ``evidence()`` says the fault did what it is held for. Whether the evidence showed."""
    end = time.monotonic() + max_s
    early = time.monotonic() + hold_s
    while time.monotonic() < end:
        if rig.hold_until_evidence and time.monotonic() >= early and evidence():
            return True
        time.sleep(0.1)
    return evidence()


def broker_sigstop(rig: Rig, rng: random.Random, hold_s: float) -> FaultRecord:
    """SIGSTOP for ``hold_s`` (at least 2.5 keepalives: every client gives the broker up), then SIGCONT.

    With ``rig.hold_until_evidence`` the broker resumes as soon as every client did give it up (its
    keepalive timed out, about 1.5 keepalives: ``lost the broker`` in its log) and ``hold_s`` passed."""
    rec = FaultRecord("broker-sigstop", None)
    logs = [rig.host.log] + [d.log for d in rig.desks]
    sizes = {p: p.stat().st_size if p.exists() else 0 for p in logs}
    rig.broker.signal(signal.SIGSTOP)
    rec.notes["every_client_gave_up"] = _hold(rig, hold_s, max(hold_s, 2.5 * KEEPALIVE_S),
                                              lambda: _logged_since(sizes, b"lost the broker"))
    rig.broker.signal(signal.SIGCONT)
    return _end(rig, rec)


def desk_kill9(rig: Rig, rng: random.Random, hold_s: float) -> FaultRecord:
    """kill -9 right after the desk spooled an event (its publish is in flight), down ``hold_s`` (longer
    than ``desk-offline``'s ``for:``), then start it again: the next boot. With ``rig.hold_until_evidence``
    it comes back once ``hold_s`` passed and its ``desk-offline`` fired at the host."""
    desk = rng.choice(rig.desks)
    rec = FaultRecord("desk-kill9", desk.name)
    rig.wait_new_event_logged(desk)
    before = len(history(rig.host.db).alert_log)
    desk.kill9()
    rec.notes["boot_before"] = max(desk.logged().boots)
    _hold(rig, hold_s, max(hold_s, 2.5 * OFFLINE_FOR_S / rig.scale),
          lambda: (desk.name, "desk-offline", "firing") in history(rig.host.db).alert_log[before:])
    desk.start()
    return _end(rig, rec)


def host_kill9(rig: Rig, rng: random.Random, hold_s: float) -> FaultRecord:
    """kill -9 of the host right after a desk spooled an event (its delivery is under way), down
    ``hold_s``, then start it again with the same client id (its session)."""
    rec = FaultRecord("host-kill9", None)
    rig.wait_new_event_logged(rng.choice(rig.desks))
    rig.host.kill9()
    time.sleep(hold_s)
    rig.host.start()
    return _end(rig, rec)


def _fill(folder: Path) -> int:
    chunk = b"\0" * 65536
    written = 0
    with (folder / "filler").open("wb", buffering=0) as f:
        while True:
            try:
                written += f.write(chunk)
            except OSError:
                break
    with (folder / "filler2").open("wb", buffering=0) as f:  # the last few bytes
        while True:
            try:
                written += f.write(b"\0" * 512)
            except OSError:
                return written


def disk_full(rig: Rig, rng: random.Random, hold_s: float) -> FaultRecord:
    """The desk's state folder is its own small tmpfs (``Rig.prepare_disk``): fill it until ENOSPC, keep it
    full for ``hold_s``, at least 2 minutes of agent time, free it. With ``rig.hold_until_evidence`` it is
    freed once ``hold_s`` passed and the desk has failed to spool a minute rollup."""
    desk = rig.desks[0]
    rec = FaultRecord("disk-full", desk.name)
    disk = desk.state_dir.parent
    rec.notes["filled_bytes"] = _fill(disk)
    _hold(rig, hold_s, max(hold_s, 2 * 60 / rig.scale + 0.5), lambda: bool(desk.logged().not_spooled_minutes))
    dl = desk.logged()
    rec.notes["not_spooled"] = dl.not_spooled_events + len(dl.not_spooled_minutes)
    for f in ("filler", "filler2"):
        (disk / f).unlink(missing_ok=True)
    return _end(rig, rec)


def prepare_disk(rig: Rig, size: str = "8m") -> bool:
    """Put the first desk's state folder on a small tmpfs (before the desk starts); False when not allowed."""
    desk = rig.desks[0]
    disk = desk.state_dir.parent / "disk"
    if not rig.mount_tmpfs(disk, size):
        return False
    desk.state_dir = disk / "state"
    desk.state_dir.mkdir()
    return True


def corrupt_spool(rig: Rig, rng: random.Random, hold_s: float) -> FaultRecord:
    """Stop the desk cleanly (its spool flushed), write garbage over ``spool.db``, start it again."""
    desk = rng.choice(rig.desks)
    rec = FaultRecord("corrupt-spool", desk.name)
    rec.notes["stop_rc"] = desk.stop()
    spool = desk.state_dir / "spool.db"
    size = max(spool.stat().st_size, 8192)
    spool.write_bytes(rng.randbytes(size))
    for side in ("spool.db-wal", "spool.db-shm"):
        (desk.state_dir / side).unlink(missing_ok=True)
    time.sleep(hold_s)
    desk.start()
    return _end(rig, rec)


def clock_step(rig: Rig, rng: random.Random, hold_s: float) -> FaultRecord:
    """Restart the desk with its clock an hour back, let it run a minute, then an hour forward (two hours
    ahead of where it was: an hour ahead of true time)."""
    desk = rng.choice(rig.desks)
    rec = FaultRecord("clock-step", desk.name)
    rec.notes["stop_rc"] = [desk.stop()]
    desk.step_clock(-3_600_000)
    boot = max(desk.logged().boots or [0]) + 1
    desk.start()
    wait_for(lambda: rig.durable_minutes_at_host(desk.name, boot) >= 1, 40, "a minute of the stepped-back boot")
    rec.notes["stop_rc"].append(desk.stop())
    desk.step_clock(+7_200_000)
    time.sleep(hold_s)
    desk.start()
    return _end(rig, rec)


@dataclass(frozen=True)
class Fault:
    inject: Callable[[Rig, random.Random, float], FaultRecord]
    persistence: bool = True
    needs_disk: bool = False
    desks: int = 1


FAULTS: dict[str, Fault] = {
    "broker-kill9-persist": Fault(broker_kill9, persistence=True, desks=2),
    "broker-kill9-nopersist": Fault(broker_kill9, persistence=False, desks=2),
    "broker-sigstop": Fault(broker_sigstop),
    "desk-kill9": Fault(desk_kill9, desks=2),
    "host-kill9": Fault(host_kill9),
    "disk-full": Fault(disk_full, needs_disk=True),
    "corrupt-spool": Fault(corrupt_spool),
    "clock-step": Fault(clock_step),
}


def summarize(values: list[float]) -> tuple[float | None, float | None]:
    return (statistics.median(values), max(values)) if values else (None, None)
