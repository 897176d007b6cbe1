"""The host's dashboard and ``/metrics``, on the standard library's ThreadingHTTPServer.

    GET  /                  the floor page (static/index.html)
    GET  /static/<file>     its script and style (no external assets)
    GET  /api/snapshot      desks, alerts, sites as JSON
    GET  /events            the same snapshot as Server-Sent Events, pushed on every change
    GET  /api/silences      the running silences, with their ids, and the rule ids
    GET  /api/alert-log     the newest alert transitions from the history (?site= &desk= &rule= &limit=)
    POST /api/silence       {"site", "desk", "rule", "for": "30m" (or "for_s": 1800), "all"}: add a silence
    POST /api/silences/<id>/expire            end a silence now
    POST /api/silences/<id>/extend  {"for"}   move its end later
                            (every POST needs ``Authorization: Bearer <token>``)
    GET  /metrics           Prometheus text format
    GET  /healthz           {"ok": true}, never behind authentication

Binds 127.0.0.1 by default. Actions are refused when the config has no dashboard token.

Security (see :class:`~host_agent.config.DashboardConfig`):

- HTTPS when ``tls_cert`` and ``tls_key`` are set (TLS 1.2 or newer). The handshake runs in the
  connection's own thread, so a slow or broken client never stalls the accept loop. Serving plain
  HTTP on anything but a loopback address is logged as a WARNING at start.
- Reads: with ``viewer_token`` set, every GET but ``/healthz`` needs it (or the write token), as
  ``Authorization: Bearer <it>`` or HTTP basic auth with any user name and it as the password (what
  a browser prompts for; the browser then sends it with ``/events`` too).
- Writes need ``Authorization: Bearer <token>``; browsers never attach that by themselves, so a
  foreign page cannot silence alerts through a supervisor's browser.
- Request bodies: Content-Length only (no chunked bodies), at most ``max_body_bytes`` bytes.
  Whatever a handler leaves of a body is read and dropped before its response is sent, so a refusal
  (401, 403, 404, ...) never leaves bytes that the next request on a keep-alive connection would be
  parsed from. A body that cannot be framed (bad Content-Length: 400; chunked: 411) or that is too
  large (413) gets a JSON error and the connection is closed.
- Logs: access lines at DEBUG name the method and the path, never a query string. Every line the
  server logs has the configured tokens and any ``Bearer``/``Basic`` credentials redacted.

Threads: ``serve_forever`` runs in ``host-dashboard``; each connection has a daemon thread that
only reads the floor's snapshots and hands actions to it, through the :class:`FloorView` protocol
(:mod:`host_agent.floor_view`; the host service implements it), never the service's own locks. Each connection's socket
times out after :data:`REQUEST_TIMEOUT_S` seconds without progress (idle keep-alive, a stalled
body or handshake), and the connection is then closed.
"""

from __future__ import annotations

import base64
import hmac
import ipaddress
import json
import logging
import re
import socket
import ssl
import threading
from collections.abc import Iterable
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs

from host_agent.config import DashboardConfig
from host_agent.errors import ConfigError, HostError
from host_agent.floor_view import FloorView
from host_agent.silences import NoSuchSilence, parse_span
from mqtt_schema import SchemaError, check_id

log = logging.getLogger("host_agent.dashboard")
STATIC = Path(__file__).parent / "static"
TYPES = {".html": "text/html; charset=utf-8", ".js": "text/javascript; charset=utf-8",
         ".css": "text/css; charset=utf-8", ".svg": "image/svg+xml"}
SSE_PING_S = 15.0
"""Seconds between keep-alive comments on an idle ``/events`` stream."""
REQUEST_TIMEOUT_S = 60.0
"""Socket timeout of a connection, in seconds."""
LINGER_S = 2.0
"""Seconds a closing connection waits for the client to stop sending (see ``_Server.shutdown_request``)."""
LINGER_BYTES = 1024 * 1024
"""Bytes a closing connection reads and drops at most before it closes anyway."""
REALM = "headset coach dashboard"
REDACTED = "<redacted>"
_QUERY = re.compile(r"\?[^\s'\"]*")
_CREDENTIALS = re.compile(r"(?i)\b(bearer|basic)(\s+)\S+")
_DIGITS = re.compile(r"[0-9]{1,19}")
_SILENCE_ACTION = re.compile(r"/api/silences/([0-9]{1,18})/(expire|extend)")
HISTORY_LIMIT = 500
"""The most alert transitions ``/api/alert-log`` returns at once."""


def redact(text: str, secrets: Iterable[str | None] = ()) -> str:
    """``text`` without ``secrets``, query strings, or ``Bearer``/``Basic`` credentials."""
    for secret in secrets:
        if secret:
            text = text.replace(secret, REDACTED)
    text = _QUERY.sub("?" + REDACTED, text)
    return _CREDENTIALS.sub(r"\1\2" + REDACTED, text)


def tls_context(cfg: DashboardConfig) -> ssl.SSLContext | None:
    """The server TLS context of ``cfg``, or None for plain HTTP.

    Raises :class:`ConfigError` naming the field and the file when a certificate or key is missing,
    unreadable, not PEM, encrypted, or when the two do not match.
    """
    if cfg.tls_cert is None and cfg.tls_key is None:
        return None
    if cfg.tls_cert is None or cfg.tls_key is None:
        have, missing = ("tls_cert", "tls_key") if cfg.tls_key is None else ("tls_key", "tls_cert")
        raise ConfigError(f"dashboard.{missing} is missing: dashboard.{have} ({getattr(cfg, have)}) "
                          "needs it for HTTPS")
    cert, key = _read_pem("tls_cert", cfg.tls_cert), _read_pem("tls_key", cfg.tls_key)
    try:
        ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT).load_verify_locations(cadata=cert.decode("ascii"))
    except (ssl.SSLError, ValueError):
        raise ConfigError(f"dashboard.tls_cert: {cfg.tls_cert} holds no valid PEM certificate") from None
    if b"PRIVATE KEY-----" not in key:
        raise ConfigError(f"dashboard.tls_key: {cfg.tls_key} holds no PEM private key")
    if b"ENCRYPTED" in key:
        raise ConfigError(f"dashboard.tls_key: {cfg.tls_key} is encrypted; give an unencrypted key "
                          "readable only by the host's user")
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    try:
        ctx.load_cert_chain(cfg.tls_cert, cfg.tls_key, password=lambda: b"")  # never prompt on a terminal
    except (ssl.SSLError, ValueError) as exc:
        why = getattr(exc, "reason", None) or exc
        if why == "KEY_VALUES_MISMATCH":
            raise ConfigError(f"dashboard.tls_key: {cfg.tls_key} is not the key of dashboard.tls_cert "
                              f"{cfg.tls_cert}") from None
        raise ConfigError(f"dashboard.tls_key: {cfg.tls_key} does not load with dashboard.tls_cert "
                          f"{cfg.tls_cert}: {why}") from None
    return ctx


def _read_pem(name: str, path: str) -> bytes:
    try:
        return Path(path).read_bytes()
    except OSError as exc:
        raise ConfigError(f"dashboard.{name}: cannot read {path}: {exc.strerror or exc}") from None


def is_loopback(host: str) -> bool:
    """True when ``host`` (an address or ``localhost``) is reachable only from this machine."""
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    service: FloorView
    cfg: DashboardConfig
    closing: threading.Event

    def handle_error(self, request: Any, client_address: Any) -> None:
        log.exception("dashboard: error while serving %s", client_address[0] if client_address else "?")

    def shutdown_request(self, request: Any) -> None:
        """Lingering close: send FIN, then drop what the client still sends (bounded), then close.

        Closing a socket with unread input makes the kernel send RST, which can destroy the
        response (a 413, say) before the client reads it.
        """
        try:
            request.shutdown(socket.SHUT_WR)
            request.settimeout(LINGER_S)
            left = LINGER_BYTES
            while left > 0 and (chunk := request.recv(min(left, 65536))):
                left -= len(chunk)
        except OSError:
            pass
        self.close_request(request)


class _Server6(_Server):
    address_family = socket.AF_INET6


class _Handler(BaseHTTPRequestHandler):
    server: _Server
    protocol_version = "HTTP/1.1"
    timeout = REQUEST_TIMEOUT_S
    _body_left = 0
    """Bytes of the current request's body not read yet."""
    _has_length = False
    """The current request has a Content-Length header."""

    # --- connection, framing, logging ------------------------------------------------------------------

    def handle(self) -> None:
        try:
            if isinstance(self.connection, ssl.SSLSocket):
                self.connection.do_handshake()
            super().handle()
        except ssl.SSLError as exc:
            log.info("dashboard: TLS with %s failed: %s", self.client_address[0], exc.reason or exc)
        except (ConnectionError, TimeoutError):
            pass  # the client went away or stalled: its connection closes

    def parse_request(self) -> bool:
        self._body_left, self._has_length, self.path = 0, False, ""
        return super().parse_request()

    def handle_expect_100(self) -> bool:
        raw = self.headers.get("Content-Length", "").strip()
        if _DIGITS.fullmatch(raw) and int(raw) <= self.server.cfg.max_body_bytes:
            return super().handle_expect_100()
        return True  # no "100 Continue": the request is refused (400/411/413) before its body is sent

    def send_response(self, code: int, message: str | None = None) -> None:
        self._drain()  # every response, refusals included: nothing of this request is left to misparse
        super().send_response(code, message)

    def _drain(self) -> None:
        if self._body_left:
            self._read_body()

    def _read_body(self) -> bytes:
        n, self._body_left = self._body_left, 0
        data = self.rfile.read(n) if n else b""
        if len(data) < n:  # the client closed mid-body
            self.close_connection = True
        return data

    def _check_framing(self) -> bool:
        """Check the body's framing; on a bad one, answer (and close) and return False."""
        if self.headers.get("Transfer-Encoding") is not None:
            return self._refuse_and_close(HTTPStatus.LENGTH_REQUIRED,
                                          "chunked request bodies are not supported: send Content-Length")
        values = {v.strip() for v in self.headers.get_all("Content-Length") or []}
        if not values:
            return True
        if len(values) > 1:
            return self._refuse_and_close(HTTPStatus.BAD_REQUEST, "conflicting Content-Length headers")
        raw = values.pop()
        if not _DIGITS.fullmatch(raw):
            return self._refuse_and_close(
                HTTPStatus.BAD_REQUEST, f"Content-Length must be a whole number of bytes, not {raw[:24]!r}")
        length, cap = int(raw), self.server.cfg.max_body_bytes
        if length > cap:
            return self._refuse_and_close(HTTPStatus.REQUEST_ENTITY_TOO_LARGE,
                                          f"request body of {length} bytes is over the limit of {cap} bytes")
        self._body_left, self._has_length = length, True
        return True

    def _refuse_and_close(self, code: int, error: str) -> bool:
        self._body_left = 0  # never read: the framing is unknown or too large, so the connection closes
        self._send(code, json.dumps({"error": error}).encode(), extra={"Connection": "close"})
        return False

    def _secrets(self) -> tuple[str | None, ...]:
        return self.server.cfg.token, self.server.cfg.viewer_token

    def log_request(self, code: int | str = "-", size: int | str = "-") -> None:
        if isinstance(code, HTTPStatus):
            code = code.value
        path = (getattr(self, "path", None) or "-").split("?", 1)[0]
        self.log_message('"%s %s" %s', self.command or "-", path, str(code))

    def log_message(self, format: str, *args: Any) -> None:
        log.debug("dashboard: %s %s", self.address_string(), redact(format % args, self._secrets()))

    # --- responses -------------------------------------------------------------------------------------

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

    def _json(self, code: int, obj: object, extra: dict[str, str] | None = None) -> None:
        self._send(code, json.dumps(obj).encode(), extra=extra)

    # --- authentication --------------------------------------------------------------------------------

    def _credential(self, basic: bool) -> str:
        """The secret the request presents: a Bearer token, or (if ``basic``) a basic-auth password."""
        scheme, _, value = self.headers.get("Authorization", "").strip().partition(" ")
        if scheme.lower() == "bearer":
            return value.strip()
        if basic and scheme.lower() == "basic":
            try:
                return base64.b64decode(value.strip(), validate=True).decode("utf-8").partition(":")[2]
            except (ValueError, UnicodeDecodeError):
                return ""
        return ""

    def _viewer_allowed(self) -> bool:
        cfg = self.server.cfg
        if not cfg.viewer_token:
            return True
        return _matches(self._credential(basic=True), cfg.viewer_token, cfg.token)

    # --- GET -------------------------------------------------------------------------------------------

    def do_GET(self) -> None:
        if not self._check_framing():
            return
        path = self.path.split("?", 1)[0]
        if path == "/healthz":
            return self._json(200, {"ok": True})
        if not self._viewer_allowed():
            return self._json(401, {"error": "reading the dashboard needs the viewer token (dashboard.viewer_token)"},
                              extra={"WWW-Authenticate": f'Basic realm="{REALM}", charset="UTF-8"'})
        if path in ("/", "/index.html"):
            return self._static("index.html")
        if path.startswith("/static/"):
            return self._static(path[len("/static/"):])
        if path == "/api/snapshot":
            return self._json(200, self.server.service.snapshot()[1])
        if path == "/events":
            return self._events()
        if path == "/api/silences":
            service = self.server.service
            return self._json(200, {"silences": service.silences(), "rules": service.rule_names()})
        if path == "/api/alert-log":
            return self._alert_log()
        if path == "/metrics":
            text = self.server.service.metrics_text().encode()
            return self._send(200, text, "text/plain; version=0.0.4; charset=utf-8")
        self._json(404, {"error": f"no such page: {path}"})

    def _alert_log(self) -> None:
        query = parse_qs(self.path.partition("?")[2])
        filters: dict[str, str | None] = {}
        try:
            for name in ("site", "desk", "rule"):
                value = (query.get(name) or [""])[-1]
                filters[name] = check_id(value, name) if value else None
            raw = (query.get("limit") or ["50"])[-1]
            if not _DIGITS.fullmatch(raw) or not 1 <= int(raw) <= HISTORY_LIMIT:
                raise ValueError(f"limit must be a whole number from 1 to {HISTORY_LIMIT}, not {raw[:24]!r}")
        except (SchemaError, ValueError) as exc:
            return self._json(400, {"error": f"bad alert-log query: {exc}"})
        rows = self.server.service.alert_history(limit=int(raw), **filters)
        self._json(200, {"entries": rows})

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
                version, snap = service.wait_for_change(seen, SSE_PING_S)
                if version == seen:
                    self.wfile.write(b": ping\n\n")
                else:
                    seen = version
                    self.wfile.write(b"event: snapshot\ndata: " + json.dumps(snap).encode() + b"\n\n")
                self.wfile.flush()
        except (BrokenPipeError, ConnectionResetError):
            return

    # --- POST ------------------------------------------------------------------------------------------

    def do_POST(self) -> None:
        if not self._check_framing():
            return
        path = self.path.split("?", 1)[0]
        change = _SILENCE_ACTION.fullmatch(path)
        if path != "/api/silence" and change is None:
            return self._json(404, {"error": f"no such action: {path}"})
        token = self.server.cfg.token
        if not token:
            return self._json(403, {"error": "actions are disabled: set dashboard.token in the host config"})
        if not _matches(self._credential(basic=False), token):
            log.info("dashboard: refused POST %s from %s: missing or wrong token", path, self.client_address[0])
            return self._json(401, {"error": "missing or wrong token"},
                              extra={"WWW-Authenticate": f'Bearer realm="{REALM}"'})
        what = "silence" if change is None else change.group(2)
        if not self._has_length and what != "expire":
            return self._json(411, {"error": f"bad {what} request: a JSON body with Content-Length is required"})
        service = self.server.service
        try:
            body = json.loads(self._read_body() or b"{}")
            if not isinstance(body, dict):
                raise TypeError("the body must be a JSON object")
            if change is None:
                site, desk, rule = str(body["site"]), str(body.get("desk", "*")), str(body.get("rule", "*"))
                for_s, everything = _duration(body, default_s=1800), body.get("all") is True
            elif what == "extend":
                for_s = _duration(body, default_s=None)
        except (ValueError, KeyError, TypeError, OverflowError) as exc:  # Overflow: "for_s": 1e400 as an int
            return self._json(400, {"error": f"bad {what} request: {exc}"})
        except RecursionError:  # json.loads on a body nested thousands deep
            return self._json(400, {"error": f"bad {what} request: the JSON body is nested too deeply"})
        try:
            if change is None:
                out = service.add_silence(site, desk, rule, for_s, by="dashboard", everything=everything)
            else:
                out = service.change_silence(int(change.group(1)), for_s if what == "extend" else None)
        except NoSuchSilence as exc:
            return self._json(404, {"error": str(exc)})
        except HostError as exc:
            return self._json(400, {"error": str(exc)})
        self._json(200, out)


def _duration(body: dict[str, Any], default_s: float | None) -> float:
    """A request's duration: ``"for": "1h30m"`` (units required) or ``"for_s"`` seconds."""
    if "for" in body:
        if not isinstance(body["for"], str):
            raise TypeError('"for" must be a duration text such as "30m" or "2h"')
        return parse_span(body["for"])
    if "for_s" in body:
        value = body["for_s"]
        if isinstance(value, bool) or not isinstance(value, int | float):  # true is no 1 s, "600" no number
            raise TypeError(f'"for_s" must be a number of seconds such as 1800, not {json.dumps(value)[:40]}')
        return float(value)
    if default_s is None:
        raise KeyError("for")
    return default_s


def _matches(given: str, *secrets: str | None) -> bool:
    """Constant-time: does ``given`` equal one of the set ``secrets``? An empty ``given`` never does."""
    ok = False
    for secret in secrets:
        if secret:
            ok |= hmac.compare_digest(given.encode(), secret.encode())
    return ok and bool(given)


class Dashboard:
    """Serves the dashboard of a :class:`FloorView` (the host service) in a thread. ``stop()`` is idempotent.

    Raises :class:`HostError` when the address cannot be bound, and :class:`ConfigError` (naming the
    field and the file) when the TLS certificate or key cannot be used.
    """

    def __init__(self, service: FloorView, cfg: DashboardConfig) -> None:
        self.cfg = cfg
        ctx = tls_context(cfg)
        server_class = _Server6 if ":" in cfg.bind else _Server
        try:
            self.server = server_class((cfg.bind, cfg.port), _Handler)
        except OSError as exc:
            raise HostError(f"cannot serve the dashboard on {cfg.bind}:{cfg.port}: {exc.strerror or exc}") from None
        if ctx is not None:
            # The handshake runs in each connection's thread (see _Handler.handle), not in accept().
            self.server.socket = ctx.wrap_socket(self.server.socket, server_side=True, do_handshake_on_connect=False)
        self.server.service = service
        self.server.cfg = cfg
        self.server.closing = threading.Event()
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        addr, port = str(self.server.server_address[0]), self.server.server_address[1]
        host = f"[{addr}]" if ":" in addr else addr
        return f"{'https' if self.cfg.tls else 'http'}://{host}:{port}/"

    def start(self) -> Dashboard:
        self._warn_if_exposed()
        self._thread = threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.2},
                                        name="host-dashboard", daemon=True)
        self._thread.start()
        return self

    def _warn_if_exposed(self) -> None:
        host = str(self.server.server_address[0])
        if is_loopback(host):
            return
        if not self.cfg.tls:
            log.warning("dashboard: serving PLAIN HTTP on %s, which is not a loopback address: per-agent data%s "
                        "cross the network unencrypted. Set dashboard.tls_cert and dashboard.tls_key (a certificate "
                        "from the site CA) or bind 127.0.0.1.", self.url,
                        " and the dashboard token" if self.cfg.token else "")
        if not self.cfg.viewer_token:
            log.warning("dashboard: anyone who can reach %s can read per-agent data: set dashboard.viewer_token "
                        "to require a login.", self.url)

    def stop(self) -> None:
        if self._thread is None:
            return
        self.server.closing.set()
        self.server.service.wake_viewers()
        self.server.shutdown()
        self.server.server_close()
        self._thread.join(timeout=5)
        self._thread = None
