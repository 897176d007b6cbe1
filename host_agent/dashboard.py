"""The host's dashboard and ``/metrics``, on the standard library's ThreadingHTTPServer.

    GET  /                  the floor page (static/index.html)
    GET  /static/<file>     its script and style (no external assets)
    GET  /api/snapshot      desks, alerts, sites as JSON
    GET  /events            the same snapshot as Server-Sent Events, pushed on every change
    POST /api/silence       {"site", "desk", "rule", "for_s"}; needs ``Authorization: Bearer <token>``
    GET  /metrics           Prometheus text format

Binds 127.0.0.1 by default. Actions are refused when the config has no dashboard token.
"""

from __future__ import annotations

import hmac
import json
import logging
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import TYPE_CHECKING, Any

from host_agent.config import DashboardConfig
from host_agent.errors import HostError

if TYPE_CHECKING:
    from host_agent.service import HostService

log = logging.getLogger("host_agent.dashboard")
STATIC = Path(__file__).parent / "static"
TYPES = {".html": "text/html; charset=utf-8", ".js": "text/javascript; charset=utf-8",
         ".css": "text/css; charset=utf-8", ".svg": "image/svg+xml"}
SSE_PING_S = 15.0
MAX_BODY = 4096


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    service: HostService
    token: str | None
    closing: threading.Event


class _Handler(BaseHTTPRequestHandler):
    server: _Server
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: Any) -> None:
        log.debug("%s " + format, self.address_string(), *args)

    def _send(self, code: int, body: bytes, ctype: str = "application/json", extra: dict[str, str] | None = None) -> None:
        self.send_response(code)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Cache-Control", "no-store")
        self.send_header("X-Content-Type-Options", "nosniff")
        for k, v in (extra or {}).items():
            self.send_header(k, v)
        self.end_headers()
        self.wfile.write(body)

    def _json(self, code: int, obj: object) -> None:
        self._send(code, json.dumps(obj).encode())

    def do_GET(self) -> None:
        path = self.path.split("?", 1)[0]
        if path in ("/", "/index.html"):
            return self._static("index.html")
        if path.startswith("/static/"):
            return self._static(path[len("/static/"):])
        if path == "/api/snapshot":
            return self._json(200, self.server.service.snapshot()[1])
        if path == "/events":
            return self._events()
        if path == "/metrics":
            text = self.server.service.metrics_text().encode()
            return self._send(200, text, "text/plain; version=0.0.4; charset=utf-8")
        if path == "/healthz":
            return self._json(200, {"ok": True})
        self._json(404, {"error": f"no such page: {path}"})

    def _static(self, name: str) -> None:
        f = (STATIC / name).resolve()
        if STATIC.resolve() not in f.parents or not f.is_file():
            return self._json(404, {"error": f"no such file: {name}"})
        self._send(200, f.read_bytes(), TYPES.get(f.suffix, "application/octet-stream"))

    def _events(self) -> None:
        service = self.server.service
        self.send_response(200)
        self.send_header("Content-Type", "text/event-stream")
        self.send_header("Cache-Control", "no-store")
        self.send_header("Connection", "close")
        self.end_headers()
        self.close_connection = True
        seen = -1
        try:
            while not self.server.closing.is_set():
                with service.snapshot_changed:
                    version, snap = service.snapshot()
                    if version == seen:
                        service.snapshot_changed.wait(SSE_PING_S)
                        version, snap = service.snapshot()
                if version == seen:
                    self.wfile.write(b": ping\n\n")
                else:
                    seen = version
                    self.wfile.write(b"event: snapshot\ndata: " + json.dumps(snap).encode() + b"\n\n")
                self.wfile.flush()
        except (BrokenPipeError, ConnectionResetError):
            return

    def do_POST(self) -> None:
        path = self.path.split("?", 1)[0]
        if path != "/api/silence":
            return self._json(404, {"error": f"no such action: {path}"})
        token = self.server.token
        if not token:
            return self._json(403, {"error": "actions are disabled: set dashboard.token in the host config"})
        auth = self.headers.get("Authorization", "")
        given = auth[7:] if auth.startswith("Bearer ") else ""
        if not hmac.compare_digest(given.encode(), token.encode()):
            return self._json(401, {"error": "missing or wrong token"})
        try:
            length = int(self.headers.get("Content-Length", "0"))
            if not 0 < length <= MAX_BODY:
                raise ValueError(f"body of {length} bytes")
            body = json.loads(self.rfile.read(length))
            site, desk, rule = str(body["site"]), str(body.get("desk", "*")), str(body.get("rule", "*"))
            for_s = float(body.get("for_s", 1800))
        except (ValueError, KeyError, TypeError) as exc:
            return self._json(400, {"error": f"bad silence request: {exc}"})
        try:
            s = self.server.service.silence(site, desk, rule, for_s, by="dashboard")
        except HostError as exc:
            return self._json(400, {"error": str(exc)})
        self._json(200, {"site": s.site, "desk": s.desk, "rule": s.rule, "until_ms": s.until_ms})


class Dashboard:
    """Serves the dashboard for a :class:`HostService` in a thread. ``stop()`` is idempotent."""

    def __init__(self, service: HostService, cfg: DashboardConfig) -> None:
        self.cfg = cfg
        try:
            self.server = _Server((cfg.bind, cfg.port), _Handler)
        except OSError as exc:
            raise HostError(f"cannot serve the dashboard on {cfg.bind}:{cfg.port}: {exc.strerror or exc}") from None
        self.server.service = service
        self.server.token = cfg.token
        self.server.closing = threading.Event()
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        host, port = self.server.server_address[:2]
        return f"http://{host!s}:{port}/"

    def start(self) -> Dashboard:
        self._thread = threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.2},
                                        name="host-dashboard", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._thread is None:
            return
        self.server.closing.set()
        with self.server.service.snapshot_changed:
            self.server.service.snapshot_changed.notify_all()
        self.server.shutdown()
        self.server.server_close()
        self._thread.join(timeout=5)
        self._thread = None
