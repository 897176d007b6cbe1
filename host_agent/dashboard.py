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
  connection's own thread, so a slow or broken client never stalls the accept loop, and must end within
  :data:`REQUEST_DEADLINE_S`. Serving plain HTTP on anything but a loopback address is logged as a
  WARNING at start.
- Reads: with ``viewer_token`` set, every GET but ``/healthz`` needs it (or the write token), as
  ``Authorization: Bearer <it>`` or HTTP basic auth with any user name and it as the password (what
  a browser prompts for; the browser then sends it with ``/events`` too).
- Writes need ``Authorization: Bearer <token>``; browsers never attach that by themselves, so a
  foreign page cannot silence alerts through a supervisor's browser (and no CORS preflight is ever
  answered). A POST body sent as another Content-Type than ``application/json`` (UTF-8) is refused
  (415): an HTML form can send no other, and always sends one. The body must be one JSON object of the
  action's known fields, each of its type, without duplicate keys or NaN/Infinity (400 naming the field).
- Bound to a loopback address, the dashboard answers only requests whose ``Host`` names a loopback
  address or ``localhost`` (403 otherwise): a foreign web page that a supervisor's browser opens cannot
  re-point its own name at 127.0.0.1 (DNS rebinding) and read the floor.
- Every response says ``nosniff``, ``no-store``, ``X-Frame-Options: DENY`` and a Content-Security-Policy
  of ``default-src 'self'; frame-ancestors 'none'`` (no page may frame the dashboard's buttons), and
  text types carry ``charset=utf-8``. Every refusal, the HTTP parser's own included (414, 431, 400 for
  a broken request line, 405 for another method), is JSON ``{"error": ...}`` naming the problem.
- Request bodies: Content-Length only (no chunked bodies), at most ``max_body_bytes`` bytes.
  Whatever a handler leaves of a body is read and dropped before its response is sent, so a refusal
  (401, 403, 404, ...) never leaves bytes that the next request on a keep-alive connection would be
  parsed from. A body that cannot be framed (bad Content-Length: 400; chunked: 411) or that is too
  large (413) gets a JSON error and the connection is closed.
- Slow clients: a request (its line, headers and body) must arrive within :data:`REQUEST_DEADLINE_S`
  of its first byte being awaited, however slowly it trickles in; else it gets 408 (or, if nothing of
  it came, the idle connection is closed). A client may hold at most :data:`MAX_CONNECTIONS_PER_CLIENT`
  connections and the dashboard :data:`MAX_CONNECTIONS`; beyond that a new connection gets 503 at once
  and is closed, so neither slow nor many connections exhaust the host's threads or hang other clients.
- Logs: access lines at DEBUG name the method and the path, never a query string. Every line the
  server logs has the configured tokens and any ``Bearer``/``Basic`` credentials redacted.

Threads: ``serve_forever`` runs in ``host-dashboard``; each connection has a daemon thread that
only reads the floor's snapshots and hands actions to it, through the :class:`FloorView` protocol
(:mod:`host_agent.floor_view`; the host service implements it), never the service's own locks. Each connection's socket
times out after :data:`REQUEST_TIMEOUT_S` seconds without progress (a client that stops reading a
response or the event stream), and the connection is then closed.
"""

from __future__ import annotations

import base64
import hmac
import io
import ipaddress
import json
import logging
import math
import re
import select
import socket
import ssl
import threading
import time
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
STATIC_FILES = frozenset(p.name for p in STATIC.iterdir() if p.is_file())
"""The files ``/static/<name>`` serves: these names exactly, nothing else (no path is ever built from a request)."""
JSON_TYPE = "application/json; charset=utf-8"
SECURITY_HEADERS = {
    "Cache-Control": "no-store",
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Content-Security-Policy": "default-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'none'",
    "Referrer-Policy": "no-referrer",
}
"""Sent with every response (see the module doc)."""
SSE_PING_S = 15.0
"""Seconds between keep-alive comments on an idle ``/events`` stream."""
REQUEST_TIMEOUT_S = 60.0
"""Socket timeout of a connection, in seconds: how long a response may wait for the client to read it."""
REQUEST_DEADLINE_S = 30.0
"""Seconds a request (line, headers and body; or a TLS handshake) may take to arrive in full."""
MAX_CONNECTIONS = 256
"""Connections the dashboard holds open at once (each is a thread); more get 503 and are closed."""
MAX_CONNECTIONS_PER_CLIENT = 64
"""Connections one client address may hold open at once (a browser uses at most 6)."""
TURN_AWAY_LOG_EVERY_S = 60.0
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
ALERT_LOG_PARAMS = ("site", "desk", "rule", "limit")
GET_PAGES = frozenset({"/", "/index.html", "/api/snapshot", "/events", "/api/silences", "/api/alert-log", "/metrics",
                       "/healthz"})
SILENCE_FIELDS = ("site", "desk", "rule", "for", "for_s", "all")
EXTEND_FIELDS = ("for", "for_s")
MAX_INT_DIGITS = 18
"""Digits of the longest whole number a request body may hold (silence ids and seconds fit)."""


def allowed_methods(path: str) -> str | None:
    """The methods ``path`` answers (the ``Allow`` header of a 405), or None: no such page."""
    if path in GET_PAGES or path.startswith("/static/"):
        return "GET, HEAD"
    if path == "/api/silence" or _SILENCE_ACTION.fullmatch(path):
        return "POST"
    return None


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


def is_loopback_host(header: str) -> bool:
    """True when a ``Host`` header (name or address, with or without a port) names this machine only:
    ``localhost``, a name under ``.localhost`` (browsers resolve those to the loopback), or a loopback address."""
    host = header.strip().lower()
    if host.startswith("["):  # [::1]:8080
        host = host[1:host.find("]")] if "]" in host else host
    elif host.count(":") == 1:  # name:port (more colons: a bare IPv6 address)
        host = host.partition(":")[0]
    host = host.rstrip(".")
    return host.endswith(".localhost") or is_loopback(host)


class _TooSlow(Exception):
    """A request did not arrive in full within :data:`REQUEST_DEADLINE_S` (not a TimeoutError: the
    handler answers it with 408, where the standard library would drop the connection silently)."""


class _DeadlineReader(io.RawIOBase):
    """The connection's input, with a deadline for the request being read (:meth:`start`, :meth:`stop`).

    The socket's own timeout bounds each read without progress; a client that trickles a byte now and
    then resets that every time, so the deadline bounds the whole request instead.
    """

    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock
        self.deadline: float | None = None
        self.got = 0
        """Bytes received since :meth:`start`."""

    def readable(self) -> bool:
        return True

    def start(self, seconds: float) -> None:
        self.deadline, self.got = time.monotonic() + seconds, 0

    def stop(self) -> None:
        if self.deadline is not None:
            self.deadline = None
            self.sock.settimeout(REQUEST_TIMEOUT_S)

    def readinto(self, buffer: Any) -> int:
        if self.deadline is not None:
            left = self.deadline - time.monotonic()
            if left <= 0:
                raise _TooSlow()
            self.sock.settimeout(min(left, REQUEST_TIMEOUT_S))
        try:
            n = self.sock.recv_into(buffer)
        except TimeoutError:
            if self.deadline is not None and time.monotonic() >= self.deadline:
                raise _TooSlow() from None
            raise
        self.got += n
        return n


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 64
    service: FloorView
    cfg: DashboardConfig
    closing: threading.Event
    loopback: bool = True
    """Bound to a loopback address: only requests for a loopback Host are answered."""

    def server_activate(self) -> None:
        self.open_by_client: dict[str, int] = {}
        self.open_lock = threading.Lock()
        self.turned_away = 0
        self._turn_away_logged = -TURN_AWAY_LOG_EVERY_S
        super().server_activate()

    def handle_error(self, request: Any, client_address: Any) -> None:
        log.exception("dashboard: error while serving %s", client_address[0] if client_address else "?")

    def process_request(self, request: Any, client_address: Any) -> None:
        """A thread for the connection, unless its client (or the dashboard) has too many open already."""
        client = str(client_address[0]) if client_address else "?"
        with self.open_lock:
            total, mine = sum(self.open_by_client.values()), self.open_by_client.get(client, 0)
            if mine >= MAX_CONNECTIONS_PER_CLIENT:
                why = f"{client} has {mine} connections open, the most one client may"
            elif total >= MAX_CONNECTIONS:
                why = f"the dashboard has {total} connections open, its limit"
            else:
                why = ""
                self.open_by_client[client] = mine + 1
        if why:
            return self._turn_away(request, why)
        try:
            super().process_request(request, client_address)
        except BaseException:
            self._release(client)
            raise

    def process_request_thread(self, request: Any, client_address: Any) -> None:
        try:
            super().process_request_thread(request, client_address)
        finally:
            self._release(str(client_address[0]) if client_address else "?")

    def _release(self, client: str) -> None:
        with self.open_lock:
            n = self.open_by_client.get(client, 0) - 1
            if n > 0:
                self.open_by_client[client] = n
            else:
                self.open_by_client.pop(client, None)

    def _turn_away(self, request: Any, why: str) -> None:
        """503 and close, from the accept loop: never blocks (a TLS connection is closed without a word,
        as its handshake could)."""
        self.turned_away += 1
        now = time.monotonic()
        if now - self._turn_away_logged >= TURN_AWAY_LOG_EVERY_S:
            self._turn_away_logged = now
            log.warning("dashboard: turned a connection away (%d so far): %s", self.turned_away, why)
        if not isinstance(request, ssl.SSLSocket):
            body = json.dumps({"error": f"too many connections: {why}; try again later"}).encode()
            head = "".join(f"{k}: {v}\r\n" for k, v in {
                "Content-Type": JSON_TYPE, "Content-Length": str(len(body)), "Retry-After": "5",
                "Connection": "close", **SECURITY_HEADERS}.items())
            try:
                request.setblocking(False)
                request.send(f"HTTP/1.1 503 Service Unavailable\r\n{head}\r\n".encode("latin-1") + body)
                request.shutdown(socket.SHUT_WR)
                for _ in range(16):  # what the client sent already: closing on unread bytes would send RST,
                    if not request.recv(65536):  # which can destroy the 503 before the client reads it
                        break
            except OSError:  # BlockingIOError: nothing more to read now
                pass
        self.close_request(request)

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


class _BadBody(ValueError):
    """A request body that is not what the action takes (400, the message names what is wrong)."""


class _Handler(BaseHTTPRequestHandler):
    server: _Server
    protocol_version = "HTTP/1.1"
    timeout = REQUEST_TIMEOUT_S
    _body_left = 0
    """Bytes of the current request's body not read yet."""
    _has_length = False
    """The current request has a Content-Length header."""
    _reader: _DeadlineReader | None = None
    _responded = False
    """A response to the current request has begun."""

    # --- connection, framing, logging ------------------------------------------------------------------

    def setup(self) -> None:
        super().setup()
        plain = self.rfile
        self._reader = _DeadlineReader(self.connection)
        self.rfile = io.BufferedReader(self._reader)
        plain.close()  # the socket's own file object: unused, and it would keep the socket open

    def handle(self) -> None:
        try:
            if isinstance(self.connection, ssl.SSLSocket):
                self._handshake(self.connection)
            super().handle()
        except ssl.SSLError as exc:
            log.info("dashboard: TLS with %s failed: %s", self.client_address[0], exc.reason or exc)
        except (ConnectionError, TimeoutError, _TooSlow):
            pass  # the client went away or stalled: its connection closes

    @staticmethod
    def _handshake(conn: ssl.SSLSocket) -> None:
        """The TLS handshake, within :data:`REQUEST_DEADLINE_S` however slowly the client's bytes come."""
        deadline = time.monotonic() + REQUEST_DEADLINE_S
        conn.setblocking(False)
        try:
            while True:
                try:
                    conn.do_handshake()
                    return
                except ssl.SSLWantReadError:
                    want: tuple[list[socket.socket], list[socket.socket]] = ([conn], [])
                except ssl.SSLWantWriteError:
                    want = ([], [conn])
                left = deadline - time.monotonic()
                if left <= 0 or not any(select.select(*want, [], left)[:2]):
                    raise TimeoutError("TLS handshake not done within the deadline")
        finally:
            conn.settimeout(REQUEST_TIMEOUT_S)

    def handle_one_request(self) -> None:
        """One request (the standard library's, with the request deadline and every method checked)."""
        reader = self._reader
        assert reader is not None
        reader.start(REQUEST_DEADLINE_S)
        self.raw_requestline, self._responded = b"", False
        self.command, self.request_version, self.requestline, self.path = "", "HTTP/1.1", "", ""
        try:
            self.raw_requestline = self.rfile.readline(65537)
            if len(self.raw_requestline) > 65536:
                self.requestline = self.request_version = self.command = ""
                self.send_error(HTTPStatus.REQUEST_URI_TOO_LONG, "the request line is longer than 65536 bytes")
                return
            if not self.raw_requestline:
                self.close_connection = True
                return
            if not self.parse_request():
                return
            getattr(self, "do_" + self.command)()
            self.wfile.flush()
        except _TooSlow:
            self.close_connection = True
            if (self.raw_requestline or reader.got) and not self._responded:
                log.info("dashboard: %s did not send its request within %g s: 408", self.client_address[0],
                         REQUEST_DEADLINE_S)
                if self.request_version == "HTTP/0.9":
                    self.request_version = "HTTP/1.0"
                self._body_left = 0
                self._refuse_and_close(HTTPStatus.REQUEST_TIMEOUT,
                                       f"the request did not arrive in full within {REQUEST_DEADLINE_S:g} s")
                self.wfile.flush()
        except TimeoutError:
            self.close_connection = True  # a client that stopped reading: drop it

    def parse_request(self) -> bool:
        self._body_left, self._has_length, self.path = 0, False, ""
        if not super().parse_request():
            return False
        if self.request_version == "HTTP/0.9":  # a request line without a version: no headers either
            self.send_error(HTTPStatus.BAD_REQUEST, "HTTP/0.9 requests are not served: send HTTP/1.1")
            return False
        hosts = self.headers.get_all("Host") or []
        if len(hosts) > 1:
            return self._refuse_and_close(HTTPStatus.BAD_REQUEST, "more than one Host header")
        if self.server.loopback and hosts and not is_loopback_host(hosts[0]):
            log.info("dashboard: refused a request from %s for Host %s: not a loopback name",
                     self.client_address[0], redact(repr(hosts[0][:80]), self._secrets()))
            return self._refuse_and_close(
                HTTPStatus.FORBIDDEN, f"this dashboard listens on a loopback address and answers only requests for "
                f"localhost or a loopback address, not Host {hosts[0][:80]!r}")
        if self.command not in ("GET", "HEAD", "POST"):
            path = self.path.split("?", 1)[0]
            allowed = allowed_methods(path)
            if allowed is None:
                return self._refuse_and_close(HTTPStatus.NOT_FOUND, f"no such page: {path[:200]}")
            return self._refuse_and_close(HTTPStatus.METHOD_NOT_ALLOWED,
                                          f"{self.command[:20]} is not a method of {path[:200]}: use {allowed}",
                                          {"Allow": allowed})
        return True

    def send_error(self, code: int, message: str | None = None, explain: str | None = None) -> None:
        """The HTTP parser's refusals (400, 414, 431, 505, ...) as JSON, with every header of ours."""
        try:
            phrase = HTTPStatus(code).phrase
        except ValueError:
            phrase = ""
        self.log_error("code %d, message %s", code, message)
        if self.request_version == "HTTP/0.9":  # a broken request line: answer with a status line anyway
            self.request_version = "HTTP/1.0"
        self._body_left = 0
        self._refuse_and_close(code, (message or phrase or f"error {code}")[:300])

    def handle_expect_100(self) -> bool:
        raw = self.headers.get("Content-Length", "").strip()
        if _DIGITS.fullmatch(raw) and int(raw) <= self.server.cfg.max_body_bytes:
            return super().handle_expect_100()
        return True  # no "100 Continue": the request is refused (400/411/413) before its body is sent

    def send_response(self, code: int, message: str | None = None) -> None:
        self._drain()  # every response, refusals included: nothing of this request is left to misparse
        if self._reader is not None:
            self._reader.stop()  # the request is read: the deadline is over, the response has the socket timeout
        self._responded = True
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

    def _refuse_and_close(self, code: int, error: str, extra: dict[str, str] | None = None) -> bool:
        self._body_left = 0  # never read: the framing is unknown or too large, so the connection closes
        self._send(code, json.dumps({"error": error}).encode(), extra={**(extra or {}), "Connection": "close"})
        return False

    def _secrets(self) -> tuple[str | None, ...]:
        return self.server.cfg.token, self.server.cfg.viewer_token

    def log_request(self, code: int | str = "-", size: int | str = "-") -> None:
        if isinstance(code, HTTPStatus):
            code = code.value
        path = (getattr(self, "path", None) or "-").split("?", 1)[0]
        self.log_message('"%s %s" %s', self.command or "-", path[:200], str(code))

    def log_message(self, format: str, *args: Any) -> None:
        log.debug("dashboard: %s %s", self.address_string(), redact(format % args, self._secrets()))

    # --- responses -------------------------------------------------------------------------------------

    def _send(self, code: int, body: bytes, ctype: str = JSON_TYPE, extra: dict[str, str] | None = None) -> None:
        self.send_response(code)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(body)))
        for k, v in {**SECURITY_HEADERS, **(extra or {})}.items():
            self.send_header(k, v)
        self.end_headers()
        if self.command != "HEAD":
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

    def do_HEAD(self) -> None:
        self.do_GET()  # the same answer without its body (_send, _events)

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
        if allowed_methods(path) == "POST":
            return self._json(405, {"error": f"{self.command} is not a method of {path[:200]}: use POST"}, {"Allow": "POST"})
        self._json(404, {"error": f"no such page: {path[:200]}"})

    def _alert_log(self) -> None:
        filters: dict[str, str | None] = {}
        try:
            text = self.path.partition("?")[2]
            if text.count("&") >= 2 * len(ALERT_LOG_PARAMS):
                raise ValueError(f"too many parameters (known: {', '.join(ALERT_LOG_PARAMS)})")
            query = parse_qs(text)
            for name, values in query.items():
                if name not in ALERT_LOG_PARAMS:
                    raise ValueError(f"unknown parameter {name[:40]!r} (known: {', '.join(ALERT_LOG_PARAMS)})")
                if len(values) > 1:
                    raise ValueError(f"{name} is given {len(values)} times")
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
        if name not in STATIC_FILES:
            return self._json(404, {"error": f"no such file: {name[:200]}"})
        f = STATIC / name
        self._send(200, f.read_bytes(), TYPES.get(f.suffix, "application/octet-stream"))

    def _events(self) -> None:
        service = self.server.service
        self.send_response(200)
        self.send_header("Content-Type", "text/event-stream; charset=utf-8")
        for k, v in SECURITY_HEADERS.items():
            self.send_header(k, v)
        self.send_header("Connection", "close")
        self.end_headers()
        self.close_connection = True
        if self.command == "HEAD":
            return
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
            if allowed_methods(path) is not None:
                return self._json(405, {"error": f"POST is not a method of {path[:200]}: use GET"}, {"Allow": "GET, HEAD"})
            return self._json(404, {"error": f"no such action: {path[:200]}"})
        token = self.server.cfg.token
        if not token:
            return self._json(403, {"error": "actions are disabled: set dashboard.token in the host config"})
        if not _matches(self._credential(basic=False), token):
            log.info("dashboard: refused POST %s from %s: missing or wrong token", path, self.client_address[0])
            return self._json(401, {"error": "missing or wrong token"},
                              extra={"WWW-Authenticate": f'Bearer realm="{REALM}"'})
        what = "silence" if change is None else change.group(2)
        given = self.headers.get("Content-Type")
        if self._body_left and given is not None and not _is_json(given):
            return self._json(415, {"error": f"bad {what} request: the body must be sent as Content-Type: "
                                             f"application/json, not {given[:60]!r}"})
        if not self._has_length and what != "expire":
            return self._json(411, {"error": f"bad {what} request: a JSON body with Content-Length is required"})
        service = self.server.service
        try:
            fields = SILENCE_FIELDS if change is None else EXTEND_FIELDS if what == "extend" else ()
            body = _body(self._read_body(), fields)
            if change is None:
                site = _text(body, "site", None, '"site1"')
                desk, rule = _text(body, "desk", "*", '"d07" or "*"'), _text(body, "rule", "*", '"posture" or "*"')
                everything = body.get("all", False)
                if not isinstance(everything, bool):
                    raise _BadBody(f'"all" must be true or false, not {_shown(everything)}')
                for_s = _duration(body, default_s=1800)
            elif what == "extend":
                for_s = _duration(body, default_s=None)
        except _BadBody as exc:
            return self._json(400, {"error": f"bad {what} request: {exc}"})
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


def _is_json(content_type: str) -> bool:
    """``application/json``, with no charset or UTF-8's."""
    mime, *params = (part.strip().lower() for part in content_type.split(";"))
    charsets = [p.partition("=")[2].strip('"') for p in params if p.startswith("charset=")]
    return mime == "application/json" and all(c in ("utf-8", "utf8") for c in charsets)


def _no_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in pairs:
        if key in out:
            raise _BadBody(f"field {key[:40]!r} is given twice")
        out[key] = value
    return out


def _no_constant(name: str) -> Any:
    raise _BadBody(f"{name} is not a number JSON allows: give a finite number")


def _whole(text: str) -> int:
    if len(text.lstrip("-")) > MAX_INT_DIGITS:
        raise _BadBody(f"the number {text[:20]}... ({len(text.lstrip('-'))} digits) is too large")
    return int(text)


def _real(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):
        raise _BadBody(f"the number {text[:24]} is too large")
    return value


def _body(raw: bytes, fields: tuple[str, ...]) -> dict[str, Any]:
    """A request body: one JSON object (UTF-8) of ``fields`` only; empty is ``{}``. Raises :class:`_BadBody`."""
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise _BadBody(f"the body is not UTF-8 (byte 0x{raw[exc.start]:02x} at offset {exc.start})") from None
    if not text.strip():
        return {}
    try:
        body = json.loads(text, object_pairs_hook=_no_duplicates, parse_constant=_no_constant, parse_int=_whole,
                          parse_float=_real)
    except RecursionError:  # json.loads on a body nested thousands deep
        raise _BadBody("the JSON body is nested too deeply") from None
    except json.JSONDecodeError as exc:
        raise _BadBody(f"the body is not valid JSON: {exc}") from None
    if not isinstance(body, dict):
        raise _BadBody(f"the body must be a JSON object, not {_shown(body)}")
    for key in body:
        if key not in fields:
            known = ", ".join(f'"{f}"' for f in fields) or "none"
            raise _BadBody(f"unknown field {json.dumps(key)[:42]} (known: {known})")
    return body


def _shown(value: Any) -> str:
    """``value`` as JSON, cut short, for a message."""
    text = json.dumps(value)
    return text if len(text) <= 40 else text[:37] + "..."


def _text(body: dict[str, Any], name: str, default: str | None, example: str) -> str:
    if name not in body:
        if default is None:
            raise _BadBody(f'"{name}" is required (a text such as {example})')
        return default
    value = body[name]
    if not isinstance(value, str):
        raise _BadBody(f'"{name}" must be a text such as {example}, not {_shown(value)}')
    return value


def _duration(body: dict[str, Any], default_s: float | None) -> float:
    """A request's duration: ``"for": "1h30m"`` (units required) or ``"for_s"`` seconds."""
    if "for" in body and "for_s" in body:
        raise _BadBody('give "for" or "for_s", not both')
    if "for" in body:
        if not isinstance(body["for"], str):
            raise _BadBody(f'"for" must be a duration text such as "30m" or "2h", not {_shown(body["for"])}')
        try:
            return parse_span(body["for"])
        except (ValueError, OverflowError) as exc:  # UsageError is a ValueError
            raise _BadBody(str(exc)) from None
    if "for_s" in body:
        value = body["for_s"]
        if isinstance(value, bool) or not isinstance(value, int | float):  # true is no 1 s, "600" no number
            raise _BadBody(f'"for_s" must be a number of seconds such as 1800, not {_shown(value)}')
        return float(value)
    if default_s is None:
        raise _BadBody('"for" is required (a duration such as "1h")')
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
        self.server.loopback = is_loopback(str(self.server.server_address[0]))
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
