"""The webhook receiver against a real local HTTP server (http.server in a thread): the Alertmanager
payload, retries with backoff after 503s, giving up and counting drops, a slow or down receiver never
blocking the processing thread, auth headers, HTTPS with a CA file, metrics, and the whole host."""

from __future__ import annotations

import json
import socket
import ssl
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field, replace
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from host_agent.alerts import AlertEngine, Change
from host_agent.clock import ManualClock
from host_agent.config import HostConfig, WebhookConfig
from host_agent.floor import Floor
from host_agent.service import HostService
from host_agent.stats import Stats, render_prometheus
from host_agent.webhook import ZERO_TIME, WebhookReceiver, alertmanager_payload, fingerprint, rfc3339
from mqtt_schema import AlertTransition, DeskKind, DeskStatus, EventKind, encode
from tests.conftest import Mosquitto, make_test_ca
from tests.host_agent.conftest import MakeProcessor, settle
from tests.host_agent.helpers import T0, Desk, publisher, send
from tests.waiting import wait_for


@dataclass
class Hook:
    """What the test server does and saw. ``fail_first`` answers 503 to that many attempts; ``status``
    answers every request; ``gate`` (when set) holds each answer until the test opens it."""

    fail_first: int = 0
    status: int = 200
    gate: threading.Event | None = None
    requests: list[dict[str, Any]] = field(default_factory=list)
    arrived: list[float] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def bodies(self, status: int | None = 200) -> list[dict[str, Any]]:
        with self.lock:
            return [r["body"] for r in self.requests if status is None or r["answer"] == status]


class Server:
    def __init__(self, hook: Hook, tls: ssl.SSLContext | None = None) -> None:
        self.hook = hook

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
                with hook.lock:
                    hook.arrived.append(time.monotonic())
                    n = len(hook.requests)
                    answer = 503 if n < hook.fail_first else hook.status
                    hook.requests.append({"path": self.path, "headers": dict(self.headers),
                                          "body": json.loads(body), "answer": answer})
                if hook.gate is not None:
                    hook.gate.wait(30)
                self.send_response(answer)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args: object) -> None:
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        if tls is not None:
            self.httpd.socket = tls.wrap_socket(self.httpd.socket, server_side=True)
        self.port = self.httpd.server_address[1]
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()

    def url(self, scheme: str = "http") -> str:
        return f"{scheme}://127.0.0.1:{self.port}/hook"

    def close(self) -> None:
        if self.hook.gate is not None:
            self.hook.gate.set()
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture
def server() -> Iterator[Server]:
    s = Server(Hook())
    yield s
    s.close()


def fast(url: str, **kw: Any) -> WebhookConfig:
    """A receiver with short retry delays, so a test covers several attempts in well under a second."""
    return WebhookConfig(url=url, name=kw.pop("name", "test"), **{"backoff_s": 0.05, "max_backoff_s": 0.4,
                                                                   "timeout_s": 2.0, **kw})


def transitions() -> list[Change]:
    """Real changes of the engine: a desk lost (pending, firing), back online (resolved)."""
    engine, floor = AlertEngine(HostConfig()), Floor()
    now = T0
    d = Desk("site1", "d07", clock=lambda: now)
    floor.apply_state(d.state(), now)
    floor.apply_state(d.state(DeskStatus.LOST), now)
    out = engine.evaluate(floor, now)
    now += 31_000
    out += engine.evaluate(floor, now)
    now += 60_000
    floor.apply_state(d.state(), now)
    out += engine.evaluate(floor, now)
    assert [c.log.transition for c in out] == [AlertTransition.PENDING, AlertTransition.FIRING,
                                              AlertTransition.RESOLVED]
    return out


def test_the_payload_is_alertmanager_webhook_version_4() -> None:
    pending, firing, resolved = transitions()
    body = alertmanager_payload("pager", firing.snapshot, firing.log, "firing", "http://host:8080/")
    assert body["version"] == "4" and body["status"] == "firing" and body["receiver"] == "pager"
    assert body["groupKey"] == '{}:{alertname="desk-offline", desk="d07", site="site1"}'
    assert body["groupLabels"] == {"alertname": "desk-offline", "site": "site1", "desk": "d07"}
    assert body["truncatedAlerts"] == 0 and body["externalURL"] == "http://host:8080/"
    (a,) = body["alerts"]
    assert a["status"] == "firing"
    assert a["labels"] == {"alertname": "desk-offline", "site": "site1", "desk": "d07", "severity": "critical"}
    assert a["annotations"]["summary"] == "desk lost for 31 s" and a["annotations"]["value"] == "31"
    assert a["startsAt"] == rfc3339(T0 + 31_000) == "2026-11-18T11:07:11.000Z"
    assert a["endsAt"] == ZERO_TIME and a["generatorURL"] == "http://host:8080/"
    assert a["fingerprint"] == fingerprint(a["labels"]) and len(a["fingerprint"]) == 16
    assert body["commonLabels"] == a["labels"] and body["commonAnnotations"] == a["annotations"]
    done = alertmanager_payload("pager", resolved.snapshot, resolved.log, "resolved")["alerts"][0]
    assert done["status"] == "resolved" and done["endsAt"] == rfc3339(T0 + 91_000)
    assert done["startsAt"] == a["startsAt"] and done["fingerprint"] == a["fingerprint"]
    # the fingerprint is Prometheus' (FNV-1a 64 over sorted name/value pairs with 0xff separators)
    assert fingerprint({}) == "cbf29ce484222325"


def test_each_firing_and_resolved_transition_is_posted(server: Server) -> None:
    with WebhookReceiver(fast(server.url(), name="floor-pager"), external_url="http://dash/") as hook:
        for change in transitions():  # pending sends nothing
            assert hook.notify(change)
        wait_for(lambda: hook.sent == 2, 5, "two notifications")
    firing, resolved = server.hook.bodies()
    assert [firing["status"], resolved["status"]] == ["firing", "resolved"]
    assert firing["receiver"] == "floor-pager" and firing["externalURL"] == "http://dash/"
    assert server.hook.requests[0]["path"] == "/hook"
    assert server.hook.requests[0]["headers"]["Content-Type"] == "application/json"
    assert (hook.sent, hook.failed, hook.dropped) == (2, 0, 0)


def test_503s_are_retried_with_exponential_backoff(server: Server) -> None:
    server.hook.fail_first = 3
    with WebhookReceiver(fast(server.url())) as hook:
        hook.notify(transitions()[1])
        wait_for(lambda: hook.sent == 1, 10, "delivery after three 503s")
        assert (hook.sent, hook.failed, hook.dropped) == (1, 3, 0)
    assert [r["answer"] for r in server.hook.requests] == [503, 503, 503, 200]
    t = server.hook.arrived
    gaps = [b - a for a, b in zip(t, t[1:], strict=False)]
    assert gaps[0] >= 0.05 and gaps[1] >= 0.1 and gaps[2] >= 0.2  # 0.05 s, doubling
    assert len({json.dumps(r["body"]) for r in server.hook.requests}) == 1  # the same body each time


def test_gives_up_after_max_retry_s_and_counts_the_drop(server: Server) -> None:
    server.hook.fail_first = 1000
    with WebhookReceiver(fast(server.url(), max_retry_s=0.6)) as hook:
        hook.notify(transitions()[1])
        wait_for(lambda: hook.dropped == 1, 10, "given up")
        assert hook.sent == 0 and 2 <= hook.failed <= 6  # at 0, .05, .15, .35 s (the next would pass 0.6 s)
        attempts = len(server.hook.requests)
    # closed: the worker thread is joined, so whatever it would still try has been tried
    assert len(server.hook.requests) == attempts == hook.failed


def test_a_client_error_is_not_retried(server: Server) -> None:
    server.hook.status = 400
    with WebhookReceiver(fast(server.url())) as hook:
        hook.notify(transitions()[1])
        wait_for(lambda: hook.dropped == 1, 5, "refused")
        assert (hook.sent, hook.failed) == (0, 1) and len(server.hook.requests) == 1


def test_a_slow_receiver_never_blocks_the_processing_thread(make_processor: MakeProcessor, clock: ManualClock,
                                                           server: Server) -> None:
    """The server holds every answer; the processor keeps evaluating, the queue fills, drops are counted."""
    server.hook.gate = threading.Event()
    p = make_processor()
    store = p.store
    hook = WebhookReceiver(fast(server.url(), queue_size=3, timeout_s=20)).start()
    p.receivers.append(hook.notify)
    desks = [Desk("site1", f"d{i:02d}", clock=clock.now_ms) for i in range(10)]

    def flap() -> None:  # each desk lost then back: 10 firing + 10 resolved transitions
        for d in desks:
            p.handle(d.topic(DeskKind.STATE), encode(d.state(DeskStatus.LOST)))
        p.evaluate(everything=True)
        clock.advance(31)
        p.evaluate(everything=True)
        for d in desks:
            p.handle(d.topic(DeskKind.STATE), encode(d.state()))
        clock.advance(1)
        p.evaluate(everything=True)

    hook.notify(transitions()[1])  # one POST in flight first, held by the server
    wait_for(lambda: len(server.hook.requests) == 1, 5, "the first POST in flight")
    worker = threading.Thread(target=flap)
    worker.start()
    worker.join(timeout=5)  # with the server holding answers for 30 s, a blocking notify would still be here
    assert not worker.is_alive(), "the processing thread blocked on the webhook"
    assert p.engine.fired["desk-offline"] == 10 and p.engine.resolved["desk-offline"] == 10
    # 20 more notifications: 3 queued, 17 dropped
    assert hook.dropped == 17 and hook.queue_depth == 3 and len(server.hook.requests) == 1
    text = render_prometheus(Stats(), {}, {}, {}, {}, (), 0, receivers=[hook])
    assert 'hsc_host_webhook_dropped_total{receiver="test"} 17' in text
    assert 'hsc_host_webhook_queue_depth{receiver="test"} 3' in text
    server.hook.gate.set()
    wait_for(lambda: hook.sent == 4, 10, "the queue delivered once the receiver answers")
    sent = [(b["status"], b["alerts"][0]["labels"]["desk"]) for b in server.hook.bodies()]
    assert sent == [("firing", "d07"), ("firing", "d00"), ("firing", "d01"), ("firing", "d02")]  # in order
    hook.close()
    store.close()


def test_a_receiver_that_is_down_is_counted_not_waited_for() -> None:
    with socket.socket() as s:  # a port with nobody listening
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    hook = WebhookReceiver(fast(f"http://127.0.0.1:{port}/", max_retry_s=0.3, queue_size=2)).start()
    changes = transitions()
    started = time.monotonic()
    for _ in range(5):
        hook.notify(changes[1])
    assert time.monotonic() - started < 1.0  # 5 notifications queued or dropped, none waited on
    wait_for(lambda: hook.dropped == 5, 10, "all given up")
    assert hook.sent == 0 and hook.failed >= 3
    hook.close()
    assert hook.dropped == 5  # close() is idempotent and had nothing more to drop


def test_close_gives_queued_notifications_one_last_chance(server: Server) -> None:
    hook = WebhookReceiver(fast(server.url())).start()
    changes = transitions()
    for _ in range(3):
        hook.notify(changes[1])
    hook.close(flush_s=5)
    assert hook.sent == 3 and len(server.hook.bodies()) == 3
    assert not hook.notify(changes[1]) and hook.dropped == 1  # a closed receiver drops, never blocks


def test_bearer_and_basic_auth_headers(server: Server) -> None:
    changes = transitions()
    with WebhookReceiver(fast(server.url(), bearer_token="tok-123")) as hook:
        hook.notify(changes[1])
        wait_for(lambda: hook.sent == 1, 5, "bearer")
    with WebhookReceiver(fast(server.url(), username="host", password="p@ss:word")) as hook:
        hook.notify(changes[1])
        wait_for(lambda: hook.sent == 1, 5, "basic")
    auth = [r["headers"]["Authorization"] for r in server.hook.requests]
    assert auth == ["Bearer tok-123", "Basic aG9zdDpwQHNzOndvcmQ="]


def test_https_with_the_site_ca_file(tmp_path: Path) -> None:
    ca = make_test_ca(tmp_path / "ca")
    tls = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    tls.load_cert_chain(ca.server_cert, ca.server_key)
    srv = Server(Hook(), tls)
    try:
        with WebhookReceiver(fast(srv.url("https"), ca_file=str(ca.ca_cert))) as hook:
            hook.notify(transitions()[1])
            wait_for(lambda: hook.sent == 1, 5, "https delivery")
        # without the CA the certificate is refused: a failed attempt, retried, then dropped
        with WebhookReceiver(fast(srv.url("https"), max_retry_s=0.2)) as other:
            other.notify(transitions()[1])
            wait_for(lambda: other.dropped == 1, 5, "refused certificate")
            assert other.sent == 0 and other.failed >= 1
        assert len(srv.hook.bodies()) == 1
    finally:
        srv.close()


def test_silenced_alerts_are_not_posted_but_their_end_is() -> None:
    pending, firing, resolved = transitions()
    muted = replace(firing, snapshot=replace(firing.snapshot, silenced=True))
    hook = WebhookReceiver(fast("http://127.0.0.1:9/"))  # not started: notify only queues
    assert hook.notify(pending) and hook.notify(muted) and hook.queue_depth == 0
    assert hook.notify(resolved) and hook.queue_depth == 1
    quiet = WebhookReceiver(fast("http://127.0.0.1:9/", send_resolved=False))
    assert quiet.notify(resolved) and quiet.queue_depth == 0


def test_metric_families_exist_at_zero_from_the_start() -> None:
    hook = WebhookReceiver(fast("http://127.0.0.1:9/", name="pager"))
    text = render_prometheus(Stats(), {}, {}, {}, {}, (), 0, receivers=[hook])
    for family in ("sent", "failed", "dropped"):
        assert f"# TYPE hsc_host_webhook_{family}_total counter" in text
        assert f'hsc_host_webhook_{family}_total{{receiver="pager"}} 0' in text
    none = render_prometheus(Stats(), {}, {}, {}, {}, (), 0)
    assert "# TYPE hsc_host_webhook_sent_total counter" in none  # the family, even without receivers


def test_the_host_posts_its_alerts(mosquitto: Mosquitto, make_host: Any, clock: ManualClock, server: Server) -> None:
    server.hook.fail_first = 1
    host: HostService = make_host(mosquitto.url, webhooks=(fast(server.url(), name="floor"),))
    assert 'hsc_host_webhook_sent_total{receiver="floor"} 0' in host.metrics_text()
    pub = publisher(mosquitto.port)
    d = Desk("site1", "d01", clock=clock.now_ms)
    send(pub, d, d.state())
    send(pub, d, d.event(EventKind.DOFFED))
    send(pub, d, d.state(DeskStatus.LOST))
    settle(host, 3)
    clock.advance(31)
    host.sync()
    wait_for(lambda: len(server.hook.bodies()) == 1, 10, "desk-offline posted after one 503")
    (body,) = server.hook.bodies()
    assert body["receiver"] == "floor" and body["externalURL"] == host.dashboard_url
    assert body["alerts"][0]["labels"]["alertname"] == "desk-offline"
    send(pub, d, d.state())
    settle(host, 4)
    wait_for(lambda: len(server.hook.bodies()) == 2, 10, "resolved posted")
    assert server.hook.bodies()[1]["status"] == "resolved"
    # the server has the body before the receiver has its answer and counts it sent
    wait_for(lambda: 'hsc_host_webhook_sent_total{receiver="floor"} 2' in host.metrics_text(), 10, "2 sent")
    text = host.metrics_text()
    assert 'hsc_host_webhook_failed_total{receiver="floor"} 1' in text
    assert 'hsc_host_webhook_dropped_total{receiver="floor"} 0' in text
    pub.disconnect()
