"""Several hosts, one history (issue 14 item 2): two real ``headset-host run`` processes with disjoint
``--site`` lists write into one real PostgreSQL, fed by one real mosquitto; simulated desks (paho, the
messages built by ``mqtt_schema``) publish QoS 1 events and minute rollups on three sites.

- ``headset-host report`` covers any site from either host's config (the history is shared);
- one host is killed with SIGKILL mid-run and restarted with the same client id: its persistent session
  at the broker holds what arrived meanwhile and what it had received but not acknowledged, so every
  QoS 1 message a desk had handed to the broker (PUBACK received) is stored exactly once: 0 lost, 0
  duplicated (the redelivered ones hit the (site, desk, boot, seq) unique key and count as duplicates);
- the database password is in the configs but never in the hosts' output.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import re
import signal
import subprocess
import sys
import threading
import time
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path

import paho.mqtt.client as mqtt
import pytest

from mqtt_schema import Event, EventKind
from tests.conftest import Mosquitto, Postgres
from tests.host_agent.helpers import Desk, publisher, send, sql_rows
from tests.waiting import wait_for

pytestmark = [pytest.mark.slow, pytest.mark.needs("mosquitto", "postgresql")]

ROOT = Path(__file__).resolve().parents[2]
HOSTS = {"host-a": ("north", "south"), "host-b": ("east",)}
DESKS_PER_SITE = 3
DAY = dt.datetime.now(dt.UTC).date() - dt.timedelta(days=1)
"""The day the minute rollups cover (yesterday: in the past, well inside the 90-day retention)."""
DAY_MS = int(dt.datetime.combine(DAY, dt.time(8, 0), dt.UTC).timestamp() * 1000)


class HostProc:
    """``headset-host run -v --site ...`` as a process, with a fixed client id (a persistent session)."""

    def __init__(self, workdir: Path, name: str, sites: tuple[str, ...], broker: str, db: str) -> None:
        self.name, self.sites = name, sites
        self.log = workdir / f"{name}.log"
        self.config = workdir / f"{name}.toml"
        self.config.write_text(f'[broker]\nurl = "{broker}"\nclient_id = "{name}"\nkeepalive_s = 5\n'
                               f'[host]\ndb = "{db}"\n[dashboard]\nport = 0\n', encoding="utf-8")
        self.proc: subprocess.Popen[bytes] | None = None
        self._log_from = 0

    def start(self) -> None:
        self._log_from = self.log.stat().st_size if self.log.exists() else 0
        argv = [sys.executable, "-m", "host_agent.cli", "run", "--config", str(self.config), "-v"]
        for s in self.sites:
            argv += ["--site", s]
        with self.log.open("ab") as log:
            self.proc = subprocess.Popen(argv, stdout=log, stderr=log, stdin=subprocess.DEVNULL, cwd=ROOT,
                                         env={**os.environ, "PYTHONPATH": str(ROOT)})

    def output(self) -> str:
        with self.log.open("rb") as f:
            f.seek(self._log_from)
            return f.read().decode(errors="replace")

    def wait_ready(self, deadline_s: float = 30.0) -> str:
        """Until it follows its sites; returns its dashboard URL."""
        end = time.monotonic() + deadline_s
        while time.monotonic() < end:
            assert self.proc is not None
            if self.proc.poll() is not None:
                raise AssertionError(f"{self.name} exited: {self.output()[-2000:]}")
            m = re.search(r"headset-host: dashboard (http://\S+/) ", self.output())
            if m:
                return m.group(1)
            time.sleep(0.05)
        raise AssertionError(f"{self.name} did not start: {self.output()[-2000:]}")

    def metric(self, url: str, name: str) -> float:
        with urllib.request.urlopen(url + "metrics", timeout=5) as r:
            text = r.read().decode()
        return sum(float(line.rsplit(" ", 1)[1]) for line in text.splitlines() if line.startswith(name))

    def kill9(self) -> None:
        assert self.proc is not None
        self.proc.kill()
        self.proc.wait(10)

    def stop(self) -> int | None:
        if self.proc is None or self.proc.poll() is not None:
            return self.proc.returncode if self.proc else None
        self.proc.send_signal(signal.SIGTERM)
        try:
            return self.proc.wait(30)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
            return None


class Desks:
    """Simulated desks of every site, one paho client per site, publishing until stopped. A message counts
    as sent once the broker acknowledged it (QoS 1 PUBACK): from then on it must reach the history."""

    def __init__(self, port: int) -> None:
        self.desks = [Desk(site, f"d{i + 1:02d}", clock=lambda: int(time.time() * 1000))
                      for sites in HOSTS.values() for site in sites for i in range(DESKS_PER_SITE)]
        self.clients = {site: publisher(port, f"desks-{site}") for sites in HOSTS.values() for site in sites}
        self.sent: set[tuple[str, str, str, int, int]] = set()
        """(table, site, desk, boot, seq) of every QoS 1 event and minute the broker acknowledged."""
        self.minutes: dict[tuple[str, str], int] = {}
        self.events: list[tuple[Desk, Event]] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="desks", daemon=True)
        self.error: BaseException | None = None
        for d in self.desks:
            send(self.clients[d.site], d, d.state())

    def _client(self, d: Desk) -> mqtt.Client:
        return self.clients[d.site]

    def _run(self) -> None:
        try:
            n = 0
            while not self._stop.is_set():
                for d in self.desks:
                    ev = d.event(EventKind.DOFFED if n % 2 else EventKind.WORN)
                    send(self._client(d), d, ev)
                    self.sent.add(("events", d.site, d.desk, d.boot, ev.seq))
                    self.events.append((d, ev))
                    if n % 3 == 0:
                        k = self.minutes.get((d.site, d.desk), 0)
                        mi = d.minute(DAY_MS + k * 60_000, speech_s=20.0, level_dbov=-26.0, rate_spm=120.0,
                                      worn_s=60.0, upright_s=60.0)
                        send(self._client(d), d, mi)
                        self.sent.add(("minutes", d.site, d.desk, d.boot, mi.seq))
                        self.minutes[(d.site, d.desk)] = k + 1
                n += 1
                time.sleep(0.03)
        except BaseException as exc:  # reported by stop()
            self.error = exc

    def resend(self, sites: tuple[str, ...], n: int) -> int:
        """Publish again the first ``n`` events of ``sites`` (what a desk's spool does after a reconnect)."""
        old = [(d, ev) for d, ev in self.events[: 10 * n] if d.site in sites][:n]
        for d, ev in old:
            send(self._client(d), d, ev)
        return len(old)

    def start(self) -> Desks:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(30)
        for c in self.clients.values():
            c.disconnect()
            c.loop_stop()
        assert self.error is None, self.error


def _stored(db: str) -> list[tuple[str, str, str, int, int]]:
    return [(str(t), str(s), str(d), int(b), int(q)) for t, s, d, b, q in sql_rows(
        db, "SELECT 'events', site, desk, boot, seq FROM events UNION ALL "
            "SELECT 'minutes', site, desk, boot, seq FROM minutes")]


def _report(config: Path, site: str, fmt: str = "json") -> str:
    proc = subprocess.run([sys.executable, "-m", "host_agent.cli", "report", "--config", str(config), "--site", site,
                           "--date", DAY.isoformat(), "--format", fmt], cwd=ROOT, capture_output=True, text=True,
                          timeout=60, env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert proc.returncode == 0, proc.stderr
    return proc.stdout


@pytest.fixture
def hosts(tmp_path: Path, mosquitto_factory: Callable[[str], Mosquitto],
          postgresql: Postgres) -> Iterator[tuple[dict[str, HostProc], Mosquitto, str]]:
    broker = mosquitto_factory("max_queued_messages 0\nautosave_interval 1")  # what the ack guarantee needs
    db = postgresql.create_database()
    procs = {name: HostProc(tmp_path, name, sites, broker.url, db) for name, sites in HOSTS.items()}
    yield procs, broker, db
    for h in procs.values():
        h.stop()


def test_two_hosts_share_one_postgres_history_and_a_killed_host_loses_nothing(
        hosts: tuple[dict[str, HostProc], Mosquitto, str], postgresql: Postgres, capsys: pytest.CaptureFixture[str]) -> None:
    procs, broker, db = hosts
    a, b = procs["host-a"], procs["host-b"]
    a.start()
    b.start()  # both at once: the migrations run once, under PostgreSQL's advisory lock
    url_a, url_b = a.wait_ready(), b.wait_ready()
    from host_agent.history.migrations import SCHEMA_VERSION

    assert sql_rows(db, "SELECT version FROM schema_version ORDER BY version") == [
        (v,) for v in range(1, SCHEMA_VERSION + 1)]  # every migration once, though two hosts started together
    desks = Desks(broker.port).start()

    time.sleep(2.0)
    a.kill9()  # mid-run: messages in flight, delivered but not yet committed or acknowledged
    killed_at = len(desks.sent)
    time.sleep(2.0)  # the broker queues host-a's sites for its session meanwhile
    a.start()  # the same config: the same client id
    url_a = a.wait_ready()
    # stored before the kill; the restarted host's memory has not seen them: the history's unique key drops them
    resent = desks.resend(HOSTS["host-a"], 60)
    time.sleep(2.0)
    desks.stop()
    sent = desks.sent

    stored: list[tuple[str, str, str, int, int]] = []

    def complete() -> bool:
        stored[:] = _stored(db)
        return set(stored) >= sent

    wait_for(complete, 60, "every acknowledged QoS 1 message in the shared history", poll_s=0.2)
    lost = sent - set(stored)
    duplicated = len(stored) - len(set(stored))
    wait_for(lambda: a.metric(url_a, "hsc_host_messages_duplicate_total") >= resent, 20, "the re-sent events", poll_s=0.2)
    redelivered = a.metric(url_a, "hsc_host_messages_duplicate_total")
    by_host = {name: sum(1 for _, site, *_ in stored if site in sites) for name, sites in HOSTS.items()}
    with capsys.disabled():
        print(f"\ntwo hosts, one PostgreSQL: {len(sent)} QoS 1 messages sent ({killed_at} before the kill -9), "
              f"{len(stored)} stored (host-a's sites {by_host['host-a']}, host-b's {by_host['host-b']}), "
              f"lost {len(lost)}, duplicated {duplicated}; {resent} events re-sent after the restart, the restarted "
              f"host-a counted {redelivered:g} duplicates and stored none of them")
    assert not lost and duplicated == 0 and len(stored) == len(sent)
    assert set(stored) == sent  # nothing that was not sent
    assert b.metric(url_b, "hsc_host_messages_duplicate_total") == 0  # host-b never saw host-a's sites

    # either host's config reports any site: the history is one
    for config, site in ((a.config, "east"), (b.config, "north"), (b.config, "south")):
        rep = json.loads(_report(config, site))
        rows = {r["key"]: r["minutes"] for r in rep["rows"]}
        assert rows == {d: desks.minutes[(site, d)] for s, d in desks.minutes if s == site}, (site, rows)
    assert "<svg" in _report(a.config, "east", "html")
    assert _report(b.config, "north", "csv").splitlines()[0].startswith("desk,")

    # desk records live in the one database; the restarted host-a restored and shows only its own sites
    assert {str(s) for (s,) in sql_rows(db, "SELECT DISTINCT site FROM desks")} == {"north", "south", "east"}
    with urllib.request.urlopen(url_a + "api/snapshot", timeout=5) as r:
        snap = json.loads(r.read())
    assert {d["site"] for d in snap["desks"]} == {"north", "south"} and len(snap["desks"]) == 2 * DESKS_PER_SITE

    for h in (a, b):
        assert h.stop() == 0
        text = h.log.read_text(errors="replace")
        assert "Traceback" not in text, text[-3000:]
        assert postgresql.password not in text and ":***@" in text  # the banner names the db, not its password
