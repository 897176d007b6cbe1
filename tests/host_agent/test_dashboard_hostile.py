"""Hostile requests to a real host's dashboard over real sockets: every one gets a JSON refusal naming the
problem with the security headers, nothing stored changes, no traceback is logged; a trickling or idle
client is cut off at the request deadline, too many connections are turned away without hanging anyone
else, a foreign Host name (DNS rebinding) is refused on a loopback bind, and no page may frame the
dashboard (clickjacking), the last two also in Chromium."""

from __future__ import annotations

import json
import logging
import socket
import ssl
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest

from host_agent import dashboard
from host_agent.clock import ManualClock
from host_agent.service import HostService
from tests import real_parts
from tests.conftest import Mosquitto, make_test_ca
from tests.host_agent.conftest import TOKEN, host_config, replace, settle
from tests.host_agent.helpers import T0, Desk, Response, publisher, read_response, send, sql_rows
from tests.ports import free_port
from tests.waiting import wait_for

JSON_TYPE = "application/json; charset=utf-8"


@pytest.fixture(scope="module")
def floor(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[HostService, Path]]:
    """One real host (real mosquitto) for the module: desk d01 of site1 seen, one silence stored."""
    real_parts.require("mosquitto")
    folder = tmp_path_factory.mktemp("hostile")
    broker = Mosquitto(folder, free_port())
    broker.start()
    clock = ManualClock(T0)
    db = folder / "host.db"
    host = HostService(host_config(broker.url, db), clock, client_id="host-hostile").start()
    try:
        pub = publisher(broker.port, "hostile-desks")
        d = Desk("site1", "d01", clock=clock.now_ms)
        send(pub, d, d.state())
        settle(host, 1)
        pub.disconnect()
        host.add_silence("site1", "d01", "posture", 3600)
        yield host, db
    finally:
        host.stop()
        broker.stop()


def _addr(host: HostService) -> tuple[str, int]:
    parts = urlsplit(host.dashboard_url or "")
    assert parts.hostname is not None and parts.port is not None
    return parts.hostname, parts.port


def _connect(host: HostService, source: str = "127.0.0.1", timeout: float = 5) -> socket.socket:
    return socket.create_connection(_addr(host), timeout=timeout, source_address=(source, 0))


def _exchange(host: HostService, raw: bytes, source: str = "127.0.0.1") -> Response:
    with _connect(host, source) as sock:
        sock.sendall(raw)
        return read_response(sock.makefile("rb"))


def _get(path: str, host_header: str = "127.0.0.1", extra: str = "") -> bytes:
    return f"GET {path} HTTP/1.1\r\nHost: {host_header}\r\n{extra}\r\n".encode("latin-1")


def _post(path: str, body: bytes, ctype: str | None = "application/json") -> bytes:
    head = f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer {TOKEN}\r\nContent-Length: {len(body)}\r\n"
    if ctype is not None:
        head += f"Content-Type: {ctype}\r\n"
    return (head + "\r\n").encode() + body


def _silence(**fields: Any) -> bytes:
    return _post("/api/silence", json.dumps(fields).encode())


TYPO = _silence(site="site1", dsek="d01", rule="volume", **{"for": "1h"})
"""A typo in a field name: this used to silence the rule on every desk of the site."""

CASES: list[tuple[str, bytes, int, str, dict[str, str]]] = [
    # the request line and headers (the standard library's parser: its answers were HTML, or no HTTP at all)
    ("nul-in-path", b"GET /static/app\x00.js HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n", 404, "no such file", {}),
    ("http-0.9", b"GET /\r\n\r\n", 400, "HTTP/0.9 requests are not served", {}),
    ("tls-hello-to-http", b"\x16\x03\x01\x00\xa5\x01\x00\x00\xa1\x03\x03 hello\r\n\r\n", 400, "Bad HTTP/0.9 request type", {}),
    ("unknown-version", b"GET / HTTP/9.9\r\nHost: 127.0.0.1\r\n\r\n", 505, "Invalid HTTP version (9.9)", {}),
    ("url-over-64k", _get("/" + "a" * 70_000), 414, "longer than 65536 bytes", {}),
    ("header-over-64k", _get("/", extra="X-Big: " + "b" * 70_000 + "\r\n"), 431, "Line too long", {}),
    ("200-headers", _get("/", extra="".join(f"X-{i}: 1\r\n" for i in range(200))), 431, "Too many headers", {}),
    # methods
    ("delete", b"DELETE /api/silence HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n", 405,
     "DELETE is not a method of /api/silence: use POST", {"allow": "POST"}),
    ("cors-preflight", b"OPTIONS /api/silence HTTP/1.1\r\nHost: 127.0.0.1\r\nOrigin: http://evil.example\r\n"
     b"Access-Control-Request-Method: POST\r\n\r\n", 405, "OPTIONS is not a method", {"allow": "POST"}),
    ("unknown-method", b"BREW /pot HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n", 404, "no such page: /pot", {}),
    ("get-an-action", _get("/api/silence"), 405, "GET is not a method of /api/silence: use POST", {"allow": "POST"}),
    ("post-a-page", _post("/api/snapshot", b"{}"), 405, "POST is not a method of /api/snapshot: use GET",
     {"allow": "GET, HEAD"}),
    # query parameters
    ("unknown-parameter", _get("/api/alert-log?dsek=d01"), 400, "unknown parameter 'dsek' (known: site, desk, rule, limit)", {}),
    ("repeated-parameter", _get("/api/alert-log?limit=5&limit=500000"), 400, "limit is given 2 times", {}),
    # bodies: wrong content types, not UTF-8, duplicate keys, NaN/Infinity, wrong JSON types, unknown fields
    ("form-post", _post("/api/silence", b"site=site1&all=true", "application/x-www-form-urlencoded"), 415,
     "must be sent as Content-Type: application/json, not 'application/x-www-form-urlencoded'", {}),
    ("json-as-text-plain", _post("/api/silence", json.dumps({"site": "site1", "desk": "d01", "rule": "volume"}).encode(),
                                 "text/plain"), 415, "not 'text/plain'", {}),
    ("utf-16", _post("/api/silence", json.dumps({"site": "site1", "desk": "d01", "rule": "volume"}).encode("utf-16")),
     400, "the body is not UTF-8 (byte 0xff at offset 0)", {}),
    ("field-name-typo", TYPO, 400, 'unknown field "dsek" (known: "site", "desk", "rule", "for", "for_s", "all")', {}),
    ("duplicate-key", _post("/api/silence", b'{"site": "site1", "desk": "d01", "rule": "volume", "rule": "*"}'), 400,
     "field 'rule' is given twice", {}),
    ("nan", _post("/api/silence", b'{"site": "site1", "desk": "d01", "rule": "volume", "for_s": NaN}'), 400,
     "NaN is not a number JSON allows", {}),
    ("infinity", _post("/api/silences/1/extend", b'{"for_s": Infinity}'), 400,
     "bad extend request: Infinity is not a number JSON allows", {}),
    ("5000-digit-number", _post("/api/silence", b'{"site": ' + b"9" * 5000 + b"}"), 400, "(5000 digits) is too large", {}),
    ("null-desk", _silence(site="site1", desk=None, rule="volume"), 400,
     '"desk" must be a text such as "d07" or "*", not null', {}),
    ("number-desk", _silence(site="site1", desk=1, rule="volume"), 400, '"desk" must be a text such as "d07" or "*", not 1', {}),
    ("all-as-text", _silence(site="site1", all="true"), 400, '"all" must be true or false, not "true"', {}),
    ("for-and-for_s", _silence(site="site1", desk="d01", rule="volume", for_s="x", **{"for": "1h"}), 400,
     'give "for" or "for_s", not both', {}),
    ("missing-site", _silence(desk="d01", rule="volume"), 400, '"site" is required', {}),
    ("extend-without-for", _post("/api/silences/1/extend", b"{}"), 400, 'bad extend request: "for" is required', {}),
    # DNS rebinding: a foreign name resolved to 127.0.0.1 by the attacker's DNS
    ("foreign-host", _get("/api/snapshot", "evil.example:8080"), 403,
     "answers only requests for localhost or a loopback address, not Host 'evil.example:8080'", {}),
]


@pytest.mark.parametrize(("raw", "code", "words", "headers"), [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_a_hostile_request_gets_a_json_refusal_naming_the_problem(
        floor: tuple[HostService, Path], caplog: pytest.LogCaptureFixture,
        raw: bytes, code: int, words: str, headers: dict[str, str]) -> None:
    host, db = floor
    caplog.set_level(logging.DEBUG, logger="host_agent.dashboard")
    silences = sql_rows(db, "SELECT * FROM silences ORDER BY id")
    got, hdrs, body = _exchange(host, raw)
    assert got == code and words in json.loads(body)["error"], body
    assert hdrs["content-type"] == JSON_TYPE and hdrs["x-content-type-options"] == "nosniff"
    assert hdrs["cache-control"] == "no-store" and "frame-ancestors 'none'" in hdrs["content-security-policy"]
    for k, v in headers.items():
        assert hdrs[k] == v
    assert sql_rows(db, "SELECT * FROM silences ORDER BY id") == silences  # nothing stored changed
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR]  # no traceback
    assert _exchange(host, _get("/healthz"))[0] == 200


def test_a_typo_in_a_field_name_no_longer_silences_every_desk(floor: tuple[HostService, Path]) -> None:
    """``dsek`` for ``desk``: the desk defaulted to ``*``, and the volume rule was silenced on the whole site."""
    host, _ = floor
    assert _exchange(host, TYPO)[0] == 400
    assert [(s["desk"], s["rule"]) for s in host.silences()] == [("d01", "posture")]


def test_every_answer_carries_the_security_headers(floor: tuple[HostService, Path]) -> None:
    """nosniff, no-store, no framing (X-Frame-Options and CSP frame-ancestors), and a charset on text."""
    host, _ = floor
    want = {"x-content-type-options": "nosniff", "cache-control": "no-store", "x-frame-options": "DENY",
            "referrer-policy": "no-referrer"}
    for raw, ctype in ((_get("/"), "text/html; charset=utf-8"), (_get("/static/app.js"), "text/javascript; charset=utf-8"),
                       (_get("/api/snapshot"), JSON_TYPE), (_get("/api/silences"), JSON_TYPE),
                       (_get("/metrics"), "text/plain; version=0.0.4; charset=utf-8"), (_get("/healthz"), JSON_TYPE),
                       (_get("/nope"), JSON_TYPE), (_post("/api/silence", b"[]"), JSON_TYPE),
                       (b"HEAD /events HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n", "text/event-stream; charset=utf-8")):
        code, hdrs, _ = _exchange(host, raw)
        assert code < 500 and hdrs["content-type"] == ctype, raw[:40]
        assert {k: hdrs.get(k) for k in want} == want, raw[:40]
        assert hdrs["content-security-policy"] == ("default-src 'self'; frame-ancestors 'none'; base-uri 'none'; "
                                                   "form-action 'none'")


def test_head_answers_like_get_without_a_body(floor: tuple[HostService, Path]) -> None:
    host, _ = floor
    with _connect(host) as sock:
        f = sock.makefile("rb")
        sock.sendall(b"HEAD /api/snapshot HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n" + _get("/healthz"))
        status = f.readline()
        assert status.startswith(b"HTTP/1.1 200")
        length = 0
        while (line := f.readline()) != b"\r\n":
            if line.lower().startswith(b"content-length:"):
                length = int(line.split(b":")[1])
        assert length > 0  # the GET's length, and no body: the next response follows at once
        assert read_response(f)[:1] == (200,)


@pytest.mark.parametrize("name", ["localhost", "127.0.0.1", "127.0.0.2", "[::1]", "dash.localhost", "LOCALHOST."])
def test_loopback_names_are_served(floor: tuple[HostService, Path], name: str) -> None:
    host, _ = floor
    port = _addr(host)[1]
    for value in (name, f"{name}:{port}"):
        assert _exchange(host, _get("/api/snapshot", value))[0] == 200


def test_a_bind_beyond_loopback_takes_any_host_name(mosquitto: Mosquitto, tmp_path: Path, clock: ManualClock) -> None:
    """The Host check is for loopback binds only: a name the site gives the host is not known to it."""
    cfg = host_config(mosquitto.url, tmp_path / "host.db")
    host = HostService(replace(cfg, dashboard=replace(cfg.dashboard, bind="0.0.0.0")), clock,
                       client_id="host-any-name").start()
    try:
        port = urlsplit(host.dashboard_url or "").port
        with socket.create_connection(("127.0.0.1", port or 0), timeout=5) as sock:
            sock.sendall(_get("/healthz", "coach.example:8080"))
            assert read_response(sock.makefile("rb"))[0] == 200
    finally:
        host.stop()


# --- slow and many clients -----------------------------------------------------------------------------------


def test_a_trickling_request_gets_408_at_the_deadline_and_others_are_served(
        floor: tuple[HostService, Path], monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture) -> None:
    """Slowloris: a byte every 0.1 s kept the connection (and its thread) forever, as every byte reset the
    60 s socket timeout. Now the whole request must arrive within the deadline: headers, or a body."""
    monkeypatch.setattr(dashboard, "REQUEST_DEADLINE_S", 1.5, raising=False)
    host, db = floor
    silences = sql_rows(db, "SELECT * FROM silences ORDER BY id")
    body = json.dumps({"site": "site1", "desk": "d01", "rule": "volume", "for": "1h"}).encode()
    for head, rest in ((b"GET /api/snapshot HTTP/1.1\r\nHost: 127.0.0.1\r\n", b"X-Slow: " + b"a" * 200),
                       (_post("/api/silence", body), b"")):
        if not rest:  # the body trickles in: its head went ahead whole
            head, rest = head[:-len(body)], body
        with _connect(host) as slow:
            slow.settimeout(0.1)
            start = time.monotonic()
            slow.sendall(head)
            got = b""
            for i in range(len(rest)):
                try:
                    slow.sendall(rest[i:i + 1])
                    got = slow.recv(65536)
                except TimeoutError:
                    pass
                except OSError:
                    break
                if got:
                    break
                if i == 3:  # meanwhile another client is served at once
                    t = time.monotonic()
                    assert _exchange(host, _get("/healthz"))[0] == 200 and time.monotonic() - t < 1.0
            took = time.monotonic() - start
            slow.settimeout(5)
            try:  # the rest of the answer (the body may come in a later segment), then the server closes it
                while chunk := slow.recv(65536):
                    got += chunk
            except ConnectionResetError:  # it drops what the client still sends
                pass
            assert got.startswith(b"HTTP/1.1 408 "), got[:80]
            assert 1.4 < took < 5, took
            assert b'"the request did not arrive in full within 1.5 s"' in got and b"Connection: close" in got
    assert sql_rows(db, "SELECT * FROM silences ORDER BY id") == silences  # the half-sent silence was not added
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR]


def test_an_idle_connection_is_closed_at_the_deadline(floor: tuple[HostService, Path],
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(dashboard, "REQUEST_DEADLINE_S", 1.0, raising=False)
    host, _ = floor
    with _connect(host) as idle:
        idle.settimeout(10)
        start = time.monotonic()
        assert idle.recv(100) == b""  # closed without a word: it asked nothing
        assert time.monotonic() - start < 5


def _wait_open(host: HostService, n: int) -> None:
    """Wait until the dashboard has accepted ``n`` connections (its accept loop may lag on a busy machine)."""
    assert host.dashboard is not None
    server = host.dashboard.server
    if not hasattr(server, "open_by_client"):  # a dashboard that counts nothing (the code before)
        time.sleep(0.5)
        return
    wait_for(lambda: sum(server.open_by_client.values()) == n, 10, f"{n} connections accepted")


def test_too_many_connections_get_503_at_once_and_nobody_else_waits(
        floor: tuple[HostService, Path], monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture) -> None:
    """Each connection is a thread: 1,500 half-open ones made 1,500 threads. Now one client address holds at
    most MAX_CONNECTIONS_PER_CLIENT and all of them MAX_CONNECTIONS; the next gets 503 naming the limit."""
    monkeypatch.setattr(dashboard, "MAX_CONNECTIONS_PER_CLIENT", 4, raising=False)
    monkeypatch.setattr(dashboard, "MAX_CONNECTIONS", 6, raising=False)
    caplog.set_level(logging.WARNING, logger="host_agent.dashboard")
    host, _ = floor
    held: list[socket.socket] = []
    try:
        for _ in range(4):  # one client's slow requests
            s = _connect(host, "127.0.0.2")
            s.sendall(b"GET / HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: ")
            held.append(s)
        _wait_open(host, 4)
        code, hdrs, body = _exchange(host, _get("/healthz"), "127.0.0.2")
        assert (code, hdrs["retry-after"], hdrs["connection"]) == (503, "5", "close")
        assert json.loads(body)["error"] == ("too many connections: 127.0.0.2 has 4 connections open, the most one "
                                             "client may; try again later")
        assert _exchange(host, _get("/healthz"), "127.0.0.1")[0] == 200  # another client is served
        # that connection is released only after the server's lingering close: until then it still counts, so
        # the second connection below could be turned away and the limit found free a moment later (200 where
        # 503 was due, in 1 of 3 runs beside other tests)
        _wait_open(host, 4)
        for _ in range(2):
            s = _connect(host, "127.0.0.3")
            s.sendall(b"GET / HTTP/1.1\r\n")
            held.append(s)
        _wait_open(host, 6)
        code, _, body = _exchange(host, _get("/healthz"), "127.0.0.1")
        assert code == 503 and "the dashboard has 6 connections open, its limit" in json.loads(body)["error"]
        held.pop(0).close()
        deadline = time.monotonic() + 5
        while _exchange(host, _get("/healthz"), "127.0.0.1")[0] != 200:  # a slot is free again
            assert time.monotonic() < deadline
            time.sleep(0.05)
    finally:
        for s in held:
            s.close()
    assert any("turned a connection away" in r.getMessage() for r in caplog.records)
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR]


def test_a_trickling_tls_handshake_is_cut_off_at_the_deadline(
        mosquitto: Mosquitto, tmp_path: Path, clock: ManualClock, monkeypatch: pytest.MonkeyPatch) -> None:
    """The handshake read the client's hello with the 60 s socket timeout per byte: a hello sent a byte at a
    time held the connection for hours."""
    monkeypatch.setattr(dashboard, "REQUEST_DEADLINE_S", 1.5, raising=False)
    ca = make_test_ca(tmp_path / "pki")
    cfg = host_config(mosquitto.url, tmp_path / "host.db")
    host = HostService(replace(cfg, dashboard=replace(cfg.dashboard, tls_cert=str(ca.server_cert),
                                                      tls_key=str(ca.server_key))), clock, client_id="host-tls").start()
    try:
        client = ssl.create_default_context(cafile=str(ca.ca_cert))
        out = ssl.MemoryBIO()
        tls = client.wrap_bio(ssl.MemoryBIO(), out, server_hostname="127.0.0.1")
        with pytest.raises(ssl.SSLWantReadError):
            tls.do_handshake()
        hello = out.read()
        with _connect(host) as slow:
            slow.settimeout(0.1)
            start = time.monotonic()
            closed = False
            for i in range(len(hello)):
                try:
                    slow.sendall(hello[i:i + 1])
                    closed = slow.recv(100) == b""
                except TimeoutError:
                    pass
                except OSError:
                    closed = True
                if closed or time.monotonic() - start > 10:
                    break
            assert closed and 1.4 < time.monotonic() - start < 5
        ok = ssl.create_default_context(cafile=str(ca.ca_cert))
        with ok.wrap_socket(_connect(host), server_hostname="127.0.0.1") as s:  # a prompt client is still served
            s.sendall(_get("/healthz"))
            assert read_response(s.makefile("rb"))[0] == 200
    finally:
        host.stop()


# --- in a real browser: DNS rebinding and framing ----------------------------------------------------------------


@pytest.mark.needs("chromium")
def test_chromium_cannot_read_it_by_a_rebound_name_or_frame_it(floor: tuple[HostService, Path]) -> None:
    """A page of evil.example whose name now resolves to 127.0.0.1 (DNS rebinding) reads the floor as its own
    origin; a page that frames the dashboard (whose token is in its local storage) lays a decoy over its
    silence buttons. Chromium resolves evil.example to 127.0.0.1 here, as the attacker's DNS would."""
    from playwright.sync_api import sync_playwright

    host, _ = floor
    port = _addr(host)[1]
    decoy = _DecoyPage(f"http://127.0.0.1:{port}/#token={TOKEN}")
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=real_parts.find("chromium"), args=[
            "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
            "--host-resolver-rules=MAP evil.example 127.0.0.1"])
        page = browser.new_page()
        response = page.goto(f"http://evil.example:{port}/api/snapshot")
        assert response is not None and response.status == 403
        assert "not Host 'evil.example:" in json.loads(page.inner_text("body"))["error"]
        page.goto(f"http://localhost:{decoy.port}/")  # another origin
        page.wait_for_timeout(1500)
        framed = [f for f in page.frames if f is not page.main_frame]
        assert len(framed) == 1
        assert framed[0].locator("#grid").count() == 0  # the dashboard did not render inside the frame
        direct = browser.new_page()
        direct.goto(f"http://127.0.0.1:{port}/")
        direct.locator("#grid").wait_for(state="attached", timeout=5000)  # and does on its own
        browser.close()
    decoy.close()


class _DecoyPage:
    """A page on another origin that frames ``target`` (what a clickjacking page does)."""

    def __init__(self, target: str) -> None:
        page = f'<!doctype html><title>win a prize</title><iframe src="{target}" width="1200" height="800"></iframe>'
        body = page.encode()
        self.sock = socket.create_server(("127.0.0.1", 0))
        self.port = self.sock.getsockname()[1]
        self.response = (b"HTTP/1.1 200 OK\r\nContent-Type: text/html\r\nConnection: close\r\nContent-Length: "
                         + str(len(body)).encode() + b"\r\n\r\n" + body)
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _serve(self) -> None:
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            with conn:
                conn.settimeout(2)
                try:
                    conn.recv(65536)
                    conn.sendall(self.response)
                except OSError:
                    pass

    def close(self) -> None:
        self.sock.close()
