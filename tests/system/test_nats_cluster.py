"""The chain on a clustered broker (issue 14 item 3): a real 3-node NATS cluster with MQTT and a replicated
JetStream (:mod:`tests.system.nats_cluster`), three real ``headset-agent run`` desks and one real
``headset-host run``, every one given all three nodes (``[mqtt] urls`` / ``[broker] urls``).

- the desks start on different nodes (each desk's list starts at another node), the host on n1;
- n1 (the host's node, and desk-01's) is killed with SIGKILL right after desk-01 spooled an event: the
  host and desk-01 move to the next node, the other desks stay where they are;
- alerts still fire after the failover: desk-01 (now on another node) is killed -9, its last will goes
  out from its new node and ``desk-offline`` fires at the host; restarted, it resolves;
- every QoS 1 event and minute rollup a desk logged as durable (in its fsynced spool) is in the host's
  history exactly once: 0 lost, 0 duplicated (judged by :func:`tests.system.fault_outcome.compare`);
- the retained alerts a surviving node serves are among the host's firing ones (no stale alert; NATS
  2.9.10 may not serve one published through another node, see the second test and ``docs/scaling.md``).

A second test pins the retained-message and last-will behaviour across nodes, and where NATS differs
from mosquitto (documented in ``docs/scaling.md``).

The rig is the fault matrix's (:mod:`tests.system.fault_outcome`): looping file audio whose volume cue goes
on and off, ``--headset none``, ``--mock-gpio``, one 20x clock for desks and host.
"""

from __future__ import annotations

import re
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.enums import CallbackAPIVersion

from tests.system.fault_outcome import (
    KEEPALIVE_S,
    ROOT,
    SITE,
    Desk,
    FaultRecord,
    Host,
    Rig,
    history,
    retained_alerts,
    wait_for,
)
from tests.system.nats_cluster import NatsCluster, cluster, nats_cluster

__all__ = ["cluster"]  # the fixture, re-exported for pytest

pytestmark = [pytest.mark.slow, pytest.mark.solo, pytest.mark.needs("nats-server")]


class ClusterDesk(Desk):
    """A desk whose ``[mqtt] urls`` list starts at node ``first`` (0-based) of the cluster."""

    def __init__(self, rig: ClusterRig, name: str, first: int) -> None:
        super().__init__(rig, name)
        self.cluster_rig = rig
        self.first = first

    @property
    def urls(self) -> list[str]:
        urls = self.cluster_rig.cluster.urls
        return urls[self.first:] + urls[:self.first]

    def start(self) -> None:
        listed = ", ".join(f'"{u}"' for u in self.urls)
        self.config.write_text(f'[desk]\nsite = "{SITE}"\ndesk = "{self.name}"\n\n'
                               f'[mqtt]\nurls = [{listed}]\nkeepalive_s = {KEEPALIVE_S}\n\n'
                               "[cues]\nmin_on_s = 1\nvolume_persist_s = 1\nclear_s = 0.5\n", encoding="utf-8")
        args = [sys.executable, "-m", "device.cli", "run", "--config", str(self.config),
                "--audio", f"file:{self.rig.speech}", "--loop", "--headset", "none", "--mock-gpio",
                "--state-dir", str(self.state_dir), "--log-level", "info",
                "--time-scale", f"{self.rig.scale:g}", "--time-origin-ms", str(self.origin_ms)]
        with self.log.open("ab") as log:
            self.proc = subprocess.Popen(args, stdout=log, stderr=log, stdin=subprocess.DEVNULL, cwd=ROOT)

    def brokers(self) -> list[str]:
        """The brokers this desk connected to, in order (its ``connected to ...`` log lines)."""
        return [str(r["broker"]) for r in read_json_log(self.log)
                if str(r.get("msg", "")).startswith("connected to") and "broker" in r]


class ClusterHost(Host):
    """``headset-host run`` with ``[broker] urls`` = every node, n1 first."""

    def broker_lines(self) -> str:
        rig = self.rig
        assert isinstance(rig, ClusterRig)
        listed = ", ".join(f'"{u}"' for u in rig.cluster.urls)
        return f'urls = [{listed}]\nclient_id = "cluster-host"\n'

    def brokers(self) -> list[str]:
        """The brokers the host connected to, in order (its ``connected to ..., subscribed`` lines)."""
        text = self.log.read_text(errors="replace") if self.log.exists() else ""
        return re.findall(r"connected to (mqtt://\S+), subscribed", text)


def read_json_log(path: Path) -> list[dict[str, Any]]:
    from tests.system.fault_outcome import read_log

    return read_log(path)


class ClusterRig(Rig):
    """The fault matrix's rig on a NATS cluster: desk N's url list starts at node N mod 3."""

    def __init__(self, workdir: Path, cluster: NatsCluster, n_desks: int = 3) -> None:
        super().__init__(workdir, n_desks=n_desks)
        self.cluster = cluster
        self.chost = ClusterHost(self)
        self.cdesks = [ClusterDesk(self, f"desk-{i + 1:02d}", i % len(cluster.nodes)) for i in range(n_desks)]
        self.host: Host = self.chost
        self.desks: list[Desk] = list(self.cdesks)

    def retained_alerts(self, port: int) -> set[str]:
        """Topics of the retained (non-empty) alerts of the site, read from the node on ``port``."""
        return set(retained_alerts(port, SITE))

    def stop_all(self, deadline_s: float = 20.0) -> dict[str, int | str | None]:
        rcs: dict[str, int | str | None] = {}
        for d in self.desks:
            rcs[d.name] = d.stop(deadline_s)
        self.host_has_every_durable(20.0)
        rcs["host"] = self.host.stop(deadline_s)
        return rcs


@pytest.fixture
def rig(tmp_path: Path) -> Iterator[ClusterRig]:
    with nats_cluster(tmp_path / "nats") as c:
        r = ClusterRig(tmp_path, c)
        try:
            yield r
        finally:
            r.kill_all()


def _wait_line(log: Path, pattern: str, start: int, deadline_s: float) -> float:
    """Until ``pattern`` (a regex) shows in ``log`` after byte ``start``; the ``time.monotonic()`` then."""
    rx = re.compile(pattern)

    def seen() -> bool:
        with log.open("rb") as f:
            f.seek(start)
            return bool(rx.search(f.read().decode(errors="replace")))

    wait_for(seen, deadline_s, f"{pattern!r} in {log.name}", 0.02)
    return time.monotonic()


def test_desks_and_host_fail_over_when_a_node_is_killed_and_nothing_is_lost(
        rig: ClusterRig, capsys: pytest.CaptureFixture[str]) -> None:
    t_start = time.monotonic()
    n1, n2, n3 = rig.cluster.nodes
    rig.host.start()
    for d in rig.desks:
        d.start()
    rig.warm_up(minutes=1, deadline_s=40)
    d1, d2, d3 = rig.cdesks
    # each starts on the first node of its list (on a starved machine a node may drop a client that missed
    # its keepalive, and the client moves on: that is failover too, so only the first node is asserted here)
    assert rig.chost.brokers()[0] == n1.url
    assert [d.brokers()[0] for d in rig.cdesks] == [n1.url, n2.url, n3.url]  # spread over the nodes

    # kill -9 the host's node (desk-01's too) right after desk-01 spooled an event: it is on its way
    host_from, d1_from = rig.host.log.stat().st_size, d1.log.stat().st_size
    rig.wait_new_event_logged(d1)
    n1.kill9()
    killed = time.monotonic()
    rec = FaultRecord("node-kill9", d1.name)
    rec.notes["rowids_at_end"] = rig.host.max_rowids()
    rec.end_s = killed
    host_back = _wait_line(rig.host.log, r"connected to mqtt://\S+, subscribed", host_from, 40) - killed
    d1_back = _wait_line(d1.log, r'"msg": ?"connected to', d1_from, 40) - killed
    recovery = rig.recovery_s(rec, deadline_s=40)
    assert rig.chost.brokers()[-1] in (n2.url, n3.url)
    assert d1.brokers()[-1] in (n2.url, n3.url)
    assert d2.brokers()[-1] != n1.url and d3.brokers()[-1] != n1.url  # none is left on the dead node
    rig.cluster.wait_ready(30)  # the two survivors agree on a JetStream leader

    # alerts still fire: desk-01, now on another node, dies; its will goes out from there
    before = len(history(rig.host.db).alert_log)
    d1.kill9()
    wait_for(lambda: (d1.name, "desk-offline", "firing") in history(rig.host.db).alert_log[before:], 30,
             "desk-offline of desk-01 firing at the host after the failover", 0.1)
    d1.start()  # its spool replays what it had not sent
    wait_for(lambda: (d1.name, "desk-offline", "resolved") in history(rig.host.db).alert_log[before:], 30,
             "desk-offline of desk-01 resolved", 0.1)
    rig.settle(more_minutes=1, deadline_s=40)

    rcs = rig.stop_all()
    outcome = rig.outcome()
    h = history(rig.host.db)
    stored = sum(len(v) for v in h.events.values()) + sum(len(v) for v in h.minutes.values())
    firing = {f"hsc/v1/{SITE}/alert/{d}/{r}" for (d, r), st in h.active.items() if st == "firing"}
    retained = rig.retained_alerts(n2.mqtt_port)
    fired = sorted({(d, r) for d, r, t in h.alert_log if t == "firing"})
    wall = time.monotonic() - t_start
    with capsys.disabled():
        print(f"\nNATS cluster failover: n1 killed -9; host back on {rig.chost.brokers()[-1]} after {host_back:.2f} s, "
              f"desk-01 on {d1.brokers()[-1]} after {d1_back:.2f} s, desk-01's next message stored "
              f"{recovery:.2f} s after the kill; {outcome.durable} QoS 1 messages durable at the desks, "
              f"{stored} rows stored, lost {outcome.lost}, duplicated {outcome.duplicated}, minute gaps "
              f"{outcome.gaps}; alerts fired {fired}; test wall time {wall:.1f} s")
    assert outcome.lost == 0 and outcome.duplicated == 0 and outcome.gaps == 0, outcome.describe()
    assert stored == outcome.durable, (stored, outcome.durable)
    # NATS 2.9.10 serves a retained message to a new subscriber on another node only if that node loaded
    # it (docs/scaling.md): what n2 serves is a subset of the host's firing alerts, never a stale extra
    assert retained <= firing, (firing, retained)
    assert rcs == {**{d.name: 0 for d in rig.desks}, "host": 0}, rcs
    assert rig.host.tracebacks() == 0
    assert not any(d.logged().tracebacks for d in rig.desks)


# --- retained messages and last wills across the nodes ---------------------------------------------------

WILL_CLIENT = """
import sys, time
import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion
c = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=sys.argv[2], protocol=mqtt.MQTTv311)
c.will_set(sys.argv[3], b"lost", qos=1, retain=True)
c.connect("127.0.0.1", int(sys.argv[1]), keepalive=5)
c.loop_start()
c.publish(sys.argv[3], b"online", qos=1, retain=True).wait_for_publish(10)
print("up", flush=True)
time.sleep(60)
"""
"""A desk in miniature: birth ``online`` and a retained will ``lost``; killed -9 by the test."""


class Watcher:
    """A paho subscriber on one node that keeps (topic, payload, retain) of everything it receives."""

    def __init__(self, port: int, topic_filter: str, client_id: str = "", clean: bool = True) -> None:
        self.got: list[tuple[str, bytes, bool]] = []
        self.disconnected = threading.Event()
        subscribed = threading.Event()
        self.c = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=client_id, protocol=mqtt.MQTTv311,
                             clean_session=clean)
        self.c.on_message = lambda cl, u, m: self.got.append((m.topic, bytes(m.payload), bool(m.retain)))
        self.c.on_subscribe = lambda *a: subscribed.set()
        self.c.on_disconnect = lambda *a: self.disconnected.set()
        self.c.reconnect_delay_set(30, 30)  # a takeover must not be undone by paho reconnecting at once
        self.c.connect("127.0.0.1", port, keepalive=5)
        self.c.loop_start()
        self.c.subscribe(topic_filter, 1)
        assert subscribed.wait(15), f"no SUBACK from port {port}"

    def payloads(self, topic: str) -> list[tuple[bytes, bool]]:
        return [(p, r) for t, p, r in self.got if t == topic]

    def close(self) -> None:
        self.c.disconnect()
        self.c.loop_stop()


def _publish(port: int, topic: str, payload: bytes, retain: bool) -> None:
    c = mqtt.Client(CallbackAPIVersion.VERSION2, client_id="", protocol=mqtt.MQTTv311)
    c.connect("127.0.0.1", port)
    c.loop_start()
    try:
        info = c.publish(topic, payload, qos=1, retain=retain)
        info.wait_for_publish(15)
        assert info.is_published(), f"no PUBACK for {topic}"
    finally:
        c.disconnect()
        c.loop_stop()


def _will_client(port: int, client_id: str, topic: str) -> subprocess.Popen[bytes]:
    proc = subprocess.Popen([sys.executable, "-c", WILL_CLIENT, str(port), client_id, topic],
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, cwd=ROOT)
    assert proc.stdout is not None and proc.stdout.readline().strip() == b"up", "the will client did not start"
    return proc


def test_retained_messages_and_last_wills_across_the_nodes(cluster: NatsCluster,
                                                           capsys: pytest.CaptureFixture[str]) -> None:
    n1, n2, n3 = cluster.nodes
    base = "hsc/v1/nats/state"
    # live QoS 1 traffic and the will of a client killed -9 reach subscribers on every node
    watchers = [Watcher(n.mqtt_port, f"{base}/#") for n in cluster.nodes]
    desk = _will_client(n2.mqtt_port, "will-desk", f"{base}/d1")
    wait_for(lambda: all(w.payloads(f"{base}/d1") for w in watchers), 15, "the birth on every node")
    desk.kill()
    desk.wait(10)
    wait_for(lambda: all((b"lost", False) in w.payloads(f"{base}/d1") for w in watchers), 15,
             "the will, published by n2, on every node")

    # retained: the node it was published through serves it, and so does a node whose first MQTT client
    # comes after; an empty retained message clears it
    _publish(n1.mqtt_port, f"{base}/d2", b"online", retain=True)
    same = Watcher(n1.mqtt_port, f"{base}/d2")
    wait_for(lambda: same.payloads(f"{base}/d2") == [(b"online", True)], 10, "the retained message on n1")
    _publish(n1.mqtt_port, f"{base}/d2", b"", retain=True)
    again = Watcher(n1.mqtt_port, f"{base}/d2")
    time.sleep(1.0)
    assert again.payloads(f"{base}/d2") == [], "a cleared retained message came back"

    # client id takeover across nodes: the same id connecting to n3 closes the connection on n1 (a desk
    # that failed over while its old node only looked dead)
    old = Watcher(n1.mqtt_port, f"{base}/x", client_id="takeover-desk")
    new = Watcher(n3.mqtt_port, f"{base}/x", client_id="takeover-desk")
    assert old.disconnected.wait(10), "the old connection of the client id was not closed"
    assert not new.disconnected.is_set()

    # cross-node retained: measured, not pinned (docs/scaling.md): n2 had MQTT clients before the publish
    _publish(n3.mqtt_port, f"{base}/d4", b"online", retain=True)
    late = Watcher(n2.mqtt_port, f"{base}/d4")
    time.sleep(2.0)
    cross = late.payloads(f"{base}/d4")

    # a will lives on its client's node: killing that node publishes no will at all
    doomed = _will_client(n1.mqtt_port, "doomed-desk", f"{base}/d3")
    wait_for(lambda: watchers[1].payloads(f"{base}/d3"), 15, "the birth of the client on n1")
    n1.kill9()
    time.sleep(3.0)
    seen_on_n2 = watchers[1].payloads(f"{base}/d3")
    doomed.kill()
    doomed.wait(10)
    with capsys.disabled():
        print(f"\nNATS retained/wills: will of a client killed -9 on every node; retained served by its node, "
              f"cleared by an empty one; takeover across nodes closes the old connection; node killed -9: "
              f"its clients' wills {'published' if (b'lost', False) in seen_on_n2 else 'not published'}; "
              f"a retained message published through n3 served by n2 (which had clients before) within 2 s: "
              f"{bool(cross)}")
    assert (b"lost", False) not in seen_on_n2, "NATS now publishes the wills of a dead node: update docs/scaling.md"
    for w in [*watchers, same, again, old, new, late]:
        w.close()
