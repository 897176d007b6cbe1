"""A real 3-node NATS cluster with MQTT on the loopback (Debian's ``nats-server``, tested with 2.9.10).

Each node gets free ports (client, cluster route, MQTT, HTTP monitoring), its own JetStream store in a
temp dir and a config file::

    server_name: n1
    listen: 127.0.0.1:<client port>
    http: 127.0.0.1:<monitor port>
    jetstream { store_dir: "<dir>/n1/js" }
    cluster { name: hsc, listen: 127.0.0.1:<route port>, routes: [nats-route://127.0.0.1:<each route port>] }
    mqtt { listen: 127.0.0.1:<mqtt port>, stream_replicas: 3, consumer_replicas: 3, ack_wait: "2s" }

:meth:`NatsCluster.start` returns once every MQTT port accepts connections and the JetStream meta group
has a leader that all three nodes know (``/jsz`` of each node's monitoring port). A node can be killed
with SIGKILL (:meth:`NatsNode.kill9`) and started again on the same ports and store.

``ack_wait`` is the time after which NATS redelivers a QoS 1 message a subscriber has not PUBACKed: on a
subscriber that moved to another node (its node died) this is what resends the messages that were in
flight, so it is short here (the default is 30 s). See ``docs/scaling.md``.

Use :func:`nats_cluster` as a context manager, or the :func:`cluster` fixture; both fail (or skip,
outside strict mode, see ``tests/real_parts.py``) with a message naming ``nats-server`` when the binary is
missing.
"""

from __future__ import annotations

import json
import signal
import socket
import subprocess
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from tests import real_parts
from tests.ports import free_port

ACK_WAIT = "2s"
"""``mqtt.ack_wait`` of every node: NATS redelivers an unacknowledged QoS 1 message after this long."""
START_DEADLINE_S = 30.0
"""Seconds to wait for the MQTT ports and a JetStream meta leader."""


def _listening(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.2):
            return True
    except OSError:
        return False


@dataclass
class NatsNode:
    """One ``nats-server`` process of the cluster."""

    name: str
    workdir: Path
    client_port: int
    route_port: int
    mqtt_port: int
    http_port: int
    proc: subprocess.Popen[bytes] | None = field(default=None, repr=False)

    @property
    def url(self) -> str:
        """The node's MQTT url, as the desk and host configs take it."""
        return f"mqtt://127.0.0.1:{self.mqtt_port}"

    @property
    def log(self) -> Path:
        return self.workdir / "nats.log"

    def write_config(self, route_ports: list[int], extra_mqtt: str = "") -> Path:
        self.workdir.mkdir(parents=True, exist_ok=True)
        routes = ", ".join(f"nats-route://127.0.0.1:{p}" for p in route_ports)
        conf = self.workdir / "nats.conf"
        conf.write_text(
            f"server_name: {self.name}\n"
            f"listen: 127.0.0.1:{self.client_port}\n"
            f"http: 127.0.0.1:{self.http_port}\n"
            f'jetstream {{ store_dir: "{self.workdir / "js"}" }}\n'
            f"cluster {{ name: hsc, listen: 127.0.0.1:{self.route_port}, routes: [{routes}] }}\n"
            f'mqtt {{ listen: 127.0.0.1:{self.mqtt_port}, stream_replicas: 3, consumer_replicas: 3, '
            f'ack_wait: "{ACK_WAIT}" {extra_mqtt} }}\n',
            encoding="utf-8")
        return conf

    def start(self) -> None:
        exe = real_parts.find("nats-server")
        assert exe is not None
        conf = self.workdir / "nats.conf"
        with self.log.open("ab") as log:
            self.proc = subprocess.Popen([exe, "-c", str(conf)], stdout=log, stderr=log, stdin=subprocess.DEVNULL)

    @property
    def running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def jsz(self) -> dict[str, object]:
        """The node's ``/jsz`` monitoring document ({} when it does not answer)."""
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{self.http_port}/jsz", timeout=1) as r:
                doc = json.loads(r.read())
        except (OSError, ValueError):
            return {}
        return doc if isinstance(doc, dict) else {}

    def meta_leader(self) -> str | None:
        meta = self.jsz().get("meta_cluster")
        leader = meta.get("leader") if isinstance(meta, dict) else None
        return str(leader) if leader else None

    def kill9(self) -> None:
        """SIGKILL: no clean shutdown, no last words to the cluster."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait(10)

    def stop(self, deadline_s: float = 10.0) -> None:
        if self.proc is None or self.proc.poll() is not None:
            return
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(deadline_s)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()


@dataclass
class NatsCluster:
    """Three NATS nodes with MQTT and a replicated JetStream (R3) on the loopback."""

    nodes: list[NatsNode]

    @property
    def urls(self) -> list[str]:
        """The MQTT urls of the nodes, n1 first."""
        return [n.url for n in self.nodes]

    def node(self, name: str) -> NatsNode:
        return next(n for n in self.nodes if n.name == name)

    def start(self, deadline_s: float = START_DEADLINE_S) -> NatsCluster:
        for n in self.nodes:
            n.start()
        self.wait_ready(deadline_s)
        return self

    def wait_ready(self, deadline_s: float = START_DEADLINE_S) -> str:
        """Until the running nodes' MQTT ports accept and they agree on a JetStream meta leader; its name."""
        end = time.monotonic() + deadline_s
        while True:
            running = [n for n in self.nodes if n.proc is not None]
            dead = [n for n in running if n.proc is not None and n.proc.poll() is not None]
            for n in dead:
                if n.proc is not None and n.proc.returncode not in (-signal.SIGKILL, None):
                    raise RuntimeError(f"nats-server {n.name} exited with {n.proc.returncode}: "
                                       f"{n.log.read_text(errors='replace')[-2000:]}")
            alive = [n for n in running if n.running]
            if alive and all(_listening(n.mqtt_port) for n in alive):
                leaders = {n.meta_leader() for n in alive}
                if len(leaders) == 1 and None not in leaders:
                    return str(leaders.pop())
            if time.monotonic() > end:
                logs = "\n".join(f"--- {n.name}\n{n.log.read_text(errors='replace')[-1500:]}"
                                 for n in self.nodes if n.log.exists())
                raise RuntimeError(f"the nats-server cluster was not ready within {deadline_s:g} s "
                                   f"(MQTT ports accepting and one JetStream meta leader):\n{logs}")
            time.sleep(0.1)

    def stop(self) -> None:
        for n in self.nodes:
            n.stop()


def make_cluster(workdir: Path, size: int = 3, extra_mqtt: str = "") -> NatsCluster:
    """Configure (not start) ``size`` nodes n1..nK under ``workdir`` on free ports."""
    nodes = [NatsNode(f"n{i + 1}", workdir / f"n{i + 1}", free_port(), free_port(), free_port(), free_port())
             for i in range(size)]
    for n in nodes:
        n.write_config([m.route_port for m in nodes], extra_mqtt)
    return NatsCluster(nodes)


@contextmanager
def nats_cluster(workdir: Path, extra_mqtt: str = "") -> Iterator[NatsCluster]:
    """A started 3-node cluster, stopped (every node) on exit. Fails or skips naming ``nats-server``
    when the binary is missing (see ``tests/real_parts.py``)."""
    real_parts.require("nats-server")
    cluster = make_cluster(workdir, extra_mqtt=extra_mqtt)
    try:
        cluster.start()
        yield cluster
    finally:
        cluster.stop()


@pytest.fixture
def cluster(tmp_path: Path) -> Iterator[NatsCluster]:
    """A fresh 3-node NATS cluster with MQTT for one test."""
    with nats_cluster(tmp_path / "nats") as c:
        yield c
