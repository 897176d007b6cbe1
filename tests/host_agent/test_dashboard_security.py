"""Dashboard security on real sockets: request framing, keep-alive after refusals, HTTPS from a site
CA, viewer authentication, tokens kept out of the logs, and the warnings at start."""

from __future__ import annotations

import base64
import http.client
import json
import logging
import re
import socket
import ssl
from collections.abc import Callable, Iterator
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

import pytest

from host_agent.clock import ManualClock
from host_agent.config import DashboardConfig
from host_agent.dashboard import redact, tls_context
from host_agent.errors import ConfigError, HostError
from host_agent.service import HostService
from mqtt_schema import EventKind
from tests import real_parts
from tests.conftest import Mosquitto, make_test_ca
from tests.host_agent.conftest import TOKEN, host_config, settle
from tests.host_agent.helpers import Desk, publisher, read_response, send

if TYPE_CHECKING:
    from tests.conftest import TestCa  # not imported at run time: pytest would try to collect it

VIEWER = "viewer-secret-456"
MakeHost = Callable[..., HostService]


@pytest.fixture
def make_dash_host(mosquitto: Mosquitto, tmp_path: Path, clock: ManualClock) -> Iterator[MakeHost]:
    """``make(**dashboard_fields)``: a real HostService whose dashboard has those settings."""
    started: list[HostService] = []

    def make(**dash: Any) -> HostService:
        cfg = host_config(mosquitto.url, tmp_path / f"host{len(started)}.db")
        cfg = replace(cfg, dashboard=replace(cfg.dashboard, **dash))
        s = HostService(cfg, clock, client_id=f"host-sec-{len(started)}")
        started.append(s)
        return s.start()

    yield make
    for s in started:
        s.stop()


@pytest.fixture
def ca(tmp_path: Path) -> TestCa:
    return make_test_ca(tmp_path / "pki", "site ca")


def _addr(host: HostService) -> tuple[str, int]:
    url = host.dashboard_url
    assert url is not None
    parts = urlsplit(url)
    assert parts.hostname is not None and parts.port is not None
    return parts.hostname, parts.port


def _closed(f: Any) -> bool:
    return bool(f.read(1) == b"")


def _raw(host: HostService) -> tuple[socket.socket, Any]:
    sock = socket.create_connection(_addr(host), timeout=5)
    return sock, sock.makefile("rb")


def _post_bytes(path: str, body: bytes, auth: str | None, extra: str = "") -> bytes:
    head = f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\nContent-Length: {len(body)}\r\n"
    if auth:
        head += f"Authorization: {auth}\r\n"
    return (head + extra + "\r\n").encode() + body


GET_SNAPSHOT = b"GET /api/snapshot HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n"
SILENCE = json.dumps({"site": "site1", "desk": "d01", "rule": "break-overrun", "for_s": 600}).encode()


# --- framing and keep-alive -------------------------------------------------------------------------------


def test_refusals_drain_the_body_so_a_pipelined_get_is_parsed_right(make_dash_host: MakeHost) -> None:
    """The issue's case, byte for byte: a refused POST and a GET sent together on one connection."""
    host = make_dash_host()
    sock, f = _raw(host)
    with sock:
        for auth in ("Bearer wrong-token", None, "Basic " + base64.b64encode(f"x:{TOKEN}".encode()).decode()):
            sock.sendall(_post_bytes("/api/silence", SILENCE, auth) + GET_SNAPSHOT)
            code, headers, body = read_response(f)
            assert code == 401 and json.loads(body) == {"error": "missing or wrong token"}
            assert "connection" not in headers  # kept alive, and still in step:
            code, _, body = read_response(f)
            assert code == 200 and "desks" in json.loads(body)
        sock.sendall(_post_bytes("/api/nothing-here", SILENCE, f"Bearer {TOKEN}") + GET_SNAPSHOT)
        assert read_response(f)[0] == 404 and read_response(f)[0] == 200
        sock.sendall(b"GET /api/snapshot HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: 9\r\n\r\n{\"a\": 1}\n" + GET_SNAPSHOT)
        assert read_response(f)[0] == 200 and read_response(f)[0] == 200  # a GET's body is dropped too


def test_actions_disabled_refusal_keeps_the_connection(make_dash_host: MakeHost) -> None:
    host = make_dash_host(token=None)
    sock, f = _raw(host)
    with sock:
        sock.sendall(_post_bytes("/api/silence", SILENCE, "Bearer anything") + GET_SNAPSHOT)
        code, _, body = read_response(f)
        assert code == 403 and "dashboard.token" in json.loads(body)["error"]
        assert read_response(f)[0] == 200


@pytest.mark.parametrize(("headers", "code", "words"), [
    ("Content-Length: -5\r\n", 400, "whole number of bytes, not '-5'"),
    ("Content-Length: ten\r\n", 400, "not 'ten'"),
    ("Content-Length: 1e3\r\n", 400, "not '1e3'"),
    ("Content-Length: 5\r\nContent-Length: 6\r\n", 400, "conflicting Content-Length"),
    ("Transfer-Encoding: chunked\r\n", 411, "chunked request bodies are not supported"),
    ("Content-Length: 10000000\r\n", 413, "10000000 bytes is over the limit of 2048 bytes"),
    ("Content-Length: 99999999999999999999999\r\n", 400, "whole number of bytes"),
])
def test_bad_framing_gets_a_json_error_and_the_connection_closes(
        make_dash_host: MakeHost, caplog: pytest.LogCaptureFixture, headers: str, code: int, words: str) -> None:
    host = make_dash_host(max_body_bytes=2048)
    caplog.set_level(logging.DEBUG, logger="host_agent.dashboard")
    sock, f = _raw(host)
    with sock:
        sock.sendall(f"POST /api/silence HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer {TOKEN}\r\n{headers}\r\n".encode())
        got, hdrs, body = read_response(f)
        assert got == code and hdrs["content-type"] == "application/json; charset=utf-8" and hdrs["connection"] == "close"
        assert words in json.loads(body)["error"]
        assert _closed(f)
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR]  # no traceback anywhere


def test_body_cap_is_exact_and_expect_100_is_not_answered_for_too_large(make_dash_host: MakeHost) -> None:
    host = make_dash_host(max_body_bytes=1024)
    padded = json.dumps({"site": "site1", "desk": "d01", "rule": "break-overrun", "pad": "x" * 2000}).encode()
    sock, f = _raw(host)
    with sock:
        sock.sendall(_post_bytes("/api/silence", padded[:1024], f"Bearer {TOKEN}") + GET_SNAPSHOT)
        code, _, body = read_response(f)
        assert code == 400 and "bad silence request" in json.loads(body)["error"]  # 1024 bytes: read, truncated JSON
        assert read_response(f)[0] == 200
        sock.sendall(_post_bytes("/api/silence", b"", f"Bearer {TOKEN}", "Expect: 100-continue\r\n")
                     .replace(b"Content-Length: 0", b"Content-Length: 1025"))
        code, _, body = read_response(f)  # the final answer straight away, not "100 Continue"
        assert code == 413 and "1025 bytes" in json.loads(body)["error"] and _closed(f)


def test_post_without_content_length_or_with_a_non_object_body(make_dash_host: MakeHost) -> None:
    host = make_dash_host()
    sock, f = _raw(host)
    with sock:
        sock.sendall(f"POST /api/silence HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer {TOKEN}\r\n\r\n".encode()
                     + GET_SNAPSHOT)
        code, _, body = read_response(f)
        assert code == 411 and "Content-Length is required" in json.loads(body)["error"]
        assert read_response(f)[0] == 200  # no body was declared, so the connection stays in step
        sock.sendall(_post_bytes("/api/silence", b"[1, 2]", f"Bearer {TOKEN}") + GET_SNAPSHOT)
        code, _, body = read_response(f)
        assert code == 400 and "JSON object" in json.loads(body)["error"]
        assert read_response(f)[0] == 200
        deep = b"[" * 30_000 + b"]" * 30_000  # within the body cap, deeper than Python's JSON decoder goes
        sock.sendall(_post_bytes("/api/silence", deep, f"Bearer {TOKEN}") + GET_SNAPSHOT)
        code, _, body = read_response(f)
        assert code == 400 and "nested too deeply" in json.loads(body)["error"]
        assert read_response(f)[0] == 200
        for path in ("/api/silence", "/api/silences/1/extend"):  # an integer too large for a float
            huge = b'{"site": "site1", "all": true, "for_s": 1' + b"0" * 400 + b"}"
            sock.sendall(_post_bytes(path, huge, f"Bearer {TOKEN}") + GET_SNAPSHOT)
            code, _, body = read_response(f)
            assert code == 400 and "too large" in json.loads(body)["error"], body
            assert read_response(f)[0] == 200


def test_unsupported_method_with_a_body_closes_rather_than_misparses(make_dash_host: MakeHost) -> None:
    host = make_dash_host()
    sock, f = _raw(host)
    with sock:
        sock.sendall(b"PUT /api/silence HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: 7\r\n\r\nGET / X" + GET_SNAPSHOT)
        code, headers, body = read_response(f)
        assert code == 405 and headers["connection"] == "close" and headers["allow"] == "POST" and _closed(f)
        assert json.loads(body) == {"error": "PUT is not a method of /api/silence: use POST"}


# --- HTTPS ------------------------------------------------------------------------------------------------


def _https(host: HostService, cafile: Path) -> http.client.HTTPSConnection:
    ctx = ssl.create_default_context(cafile=str(cafile))  # verifies the chain and the name 127.0.0.1
    return http.client.HTTPSConnection(*_addr(host), context=ctx, timeout=5)


def test_https_with_a_site_ca_certificate_keeps_alive_after_a_refusal(
        make_dash_host: MakeHost, ca: TestCa, clock: ManualClock, mosquitto: Mosquitto) -> None:
    host = make_dash_host(tls_cert=str(ca.server_cert), tls_key=str(ca.server_key))
    assert (host.dashboard_url or "").startswith("https://127.0.0.1:")
    pub = publisher(mosquitto.port)
    d = Desk("site1", "d01", clock=clock.now_ms)
    send(pub, d, d.state())
    send(pub, d, d.event(EventKind.DOFFED))
    settle(host, 2)
    clock.advance(16 * 60)
    host.sync()
    pub.disconnect()
    conn = _https(host, ca.ca_cert)
    conn.request("POST", "/api/silence", SILENCE, {"Authorization": "Bearer wrong-token"})
    r = conn.getresponse()
    assert r.status == 401 and json.loads(r.read())["error"] == "missing or wrong token"
    tls_sock = conn.sock
    assert isinstance(tls_sock, ssl.SSLSocket) and tls_sock.version() in ("TLSv1.2", "TLSv1.3")
    conn.request("GET", "/api/snapshot")
    r = conn.getresponse()
    assert r.status == 200 and [x["desk"] for x in json.loads(r.read())["desks"]] == ["d01"]
    conn.request("POST", "/api/silence", SILENCE, {"Authorization": f"Bearer {TOKEN}"})
    r = conn.getresponse()
    assert r.status == 200 and json.loads(r.read())["rule"] == "break-overrun"
    assert conn.sock is tls_sock  # one TLS connection throughout
    conn.close()


def test_https_refuses_untrusted_clients_and_survives_plain_http_and_stalled_handshakes(
        make_dash_host: MakeHost, ca: TestCa, tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    host = make_dash_host(tls_cert=str(ca.server_cert), tls_key=str(ca.server_key))
    caplog.set_level(logging.INFO, logger="host_agent.dashboard")
    other = make_test_ca(tmp_path / "other", "another ca")
    conn = _https(host, other.ca_cert)
    with pytest.raises(ssl.SSLCertVerificationError):
        conn.request("GET", "/healthz")
    conn.close()
    with socket.create_connection(_addr(host), timeout=5) as plain:  # plain HTTP to the HTTPS port
        plain.sendall(GET_SNAPSHOT)
        try:
            got = plain.recv(4096)
        except ConnectionResetError:
            got = b""
        assert b"desks" not in got
    with socket.create_connection(_addr(host), timeout=5):  # connects and never says hello
        conn = _https(host, ca.ca_cert)
        conn.request("GET", "/healthz")
        assert conn.getresponse().status == 200  # the accept loop is not held up by the silent one
        conn.close()
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR]


def test_bad_tls_files_name_the_field_and_the_file(ca: TestCa, tmp_path: Path) -> None:
    garbage = tmp_path / "garbage.pem"
    garbage.write_text("not a certificate\n")
    other = make_test_ca(tmp_path / "other", "another ca")
    encrypted = tmp_path / "encrypted.key"
    encrypted.write_text("-----BEGIN ENCRYPTED PRIVATE KEY-----\nAAAA\n-----END ENCRYPTED PRIVATE KEY-----\n")
    cert, key = str(ca.server_cert), str(ca.server_key)
    cases: list[tuple[DashboardConfig, str]] = [
        (DashboardConfig(tls_cert=cert), f"dashboard.tls_key is missing: dashboard.tls_cert ({cert})"),
        (DashboardConfig(tls_key=key), f"dashboard.tls_cert is missing: dashboard.tls_key ({key})"),
        (DashboardConfig(tls_cert=cert, tls_key=str(tmp_path / "nope.key")),
         f"dashboard.tls_key: cannot read {tmp_path / 'nope.key'}: No such file"),
        (DashboardConfig(tls_cert=str(tmp_path), tls_key=key), f"dashboard.tls_cert: cannot read {tmp_path}: Is a directory"),
        (DashboardConfig(tls_cert=str(garbage), tls_key=key), f"dashboard.tls_cert: {garbage} holds no valid PEM"),
        (DashboardConfig(tls_cert=cert, tls_key=str(garbage)), f"dashboard.tls_key: {garbage} holds no PEM private key"),
        (DashboardConfig(tls_cert=cert, tls_key=str(encrypted)), f"dashboard.tls_key: {encrypted} is encrypted"),
        (DashboardConfig(tls_cert=cert, tls_key=str(other.server_key)),
         f"dashboard.tls_key: {other.server_key} is not the key of dashboard.tls_cert {cert}"),
    ]
    for cfg, words in cases:
        with pytest.raises(ConfigError) as err:
            tls_context(cfg)
        assert words in str(err.value)
        assert isinstance(err.value, HostError)
    assert tls_context(DashboardConfig()) is None
    assert tls_context(DashboardConfig(tls_cert=cert, tls_key=key)) is not None


def test_host_start_with_a_mismatched_key_fails_with_the_message(
        make_dash_host: MakeHost, ca: TestCa, tmp_path: Path) -> None:
    other = make_test_ca(tmp_path / "other", "another ca")
    with pytest.raises(ConfigError, match="is not the key of dashboard.tls_cert"):
        make_dash_host(tls_cert=str(ca.server_cert), tls_key=str(other.server_key))


# --- viewer authentication ----------------------------------------------------------------------------------


def _get(host: HostService, path: str, auth: str | None = None) -> tuple[int, dict[str, str], bytes]:
    conn = http.client.HTTPConnection(*_addr(host), timeout=5)
    conn.request("GET", path, headers={"Authorization": auth} if auth else {})
    r = conn.getresponse()
    streaming = r.status == 200 and path == "/events"
    out = r.status, {k.lower(): v for k, v in r.getheaders()}, r.read(20) if streaming else r.read()
    conn.close()
    return out


def _basic(user: str, password: str) -> str:
    return "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()


def test_viewer_token_guards_every_read_but_healthz(make_dash_host: MakeHost) -> None:
    host = make_dash_host(viewer_token=VIEWER)
    for path in ("/", "/index.html", "/static/app.js", "/api/snapshot", "/events", "/metrics", "/nope"):
        code, headers, body = _get(host, path)
        assert code == 401, path
        assert headers["www-authenticate"].startswith("Basic realm=")
        assert "dashboard.viewer_token" in json.loads(body)["error"]
        assert _get(host, path, "Bearer not-the-viewer")[0] == 401
        assert _get(host, path, _basic("supervisor", "not-the-viewer"))[0] == 401
        assert _get(host, path, "Basic %%%")[0] == 401
    assert _get(host, "/healthz")[0] == 200
    for auth in (f"Bearer {VIEWER}", _basic("supervisor", VIEWER), _basic("", VIEWER), f"Bearer {TOKEN}"):
        assert _get(host, "/api/snapshot", auth)[0] == 200
        assert _get(host, "/", auth)[0] == 200
        assert b"hsc_host" in _get(host, "/metrics", auth)[2]
        code, headers, first = _get(host, "/events", auth)
        assert code == 200 and headers["content-type"] == "text/event-stream; charset=utf-8" and first.startswith(b"event: snapshot")


def test_the_viewer_token_cannot_write_and_writes_need_bearer(make_dash_host: MakeHost) -> None:
    host = make_dash_host(viewer_token=VIEWER)
    sock, f = _raw(host)
    with sock:
        for auth in (f"Bearer {VIEWER}", _basic("x", VIEWER), _basic("x", TOKEN)):
            sock.sendall(_post_bytes("/api/silence", SILENCE, auth))
            code, headers, _ = read_response(f)
            assert code == 401 and headers["www-authenticate"].startswith("Bearer")
        sock.sendall(_post_bytes("/api/silence", json.dumps({"site": "site1", "rule": "nope"}).encode(),
                                 f"Bearer {TOKEN}"))
        assert read_response(f)[0] == 400  # past authentication: the rule is checked


# --- logs and warnings ----------------------------------------------------------------------------------


def test_tokens_never_reach_the_logs(make_dash_host: MakeHost, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    host = make_dash_host(viewer_token=VIEWER)
    sock, f = _raw(host)
    with sock:
        sock.sendall(f"GET /api/snapshot?token={TOKEN}&v={VIEWER} HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                     f"Authorization: Bearer {VIEWER}\r\n\r\n".encode())
        assert read_response(f)[0] == 200
        sock.sendall(f"GET /static/{VIEWER}.js HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer {TOKEN}\r\n\r\n".encode())
        assert read_response(f)[0] == 404
        sock.sendall(_post_bytes(f"/api/silence?t={TOKEN}", SILENCE, "Bearer wrong-but-secret"))
        assert read_response(f)[0] == 401
    for bad_line in (f"GET /?token={TOKEN} extra HTTP/1.1", f"GET /{TOKEN} extra HTTP/1.1", f"GET /{TOKEN} HTTP/9.9",
                     f"BREW /{VIEWER} HTTP/1.1"):
        s, fb = _raw(host)
        with s:
            s.sendall(f"{bad_line}\r\nHost: 127.0.0.1\r\n\r\n".encode())
            code, _, body = read_response(fb)  # a JSON refusal (even to "HTTP/9.9"), then EOF
            assert code in (400, 404, 505) and json.loads(body)["error"] and _closed(fb)
    lines = [r.getMessage() for r in caplog.records]
    access = [x for x in lines if x.startswith("dashboard: 127.0.0.1")]
    assert any('"GET /api/snapshot" 200' in x for x in access) and any("Bad request" in x for x in access)
    assert any("refused POST /api/silence from 127.0.0.1: missing or wrong token" in x for x in lines)
    for secret in (TOKEN, VIEWER, "wrong-but-secret"):
        assert not [x for x in lines if secret in x], secret


def test_redact() -> None:
    assert redact('"GET /a?token=abc HTTP/1.1" 400', ()) == '"GET /a?<redacted> HTTP/1.1" 400'
    assert redact("Authorization: Bearer abc.def and basic Zm9vOmJhcg==", ()) == \
        "Authorization: Bearer <redacted> and basic <redacted>"
    assert redact("path /s3cr3t-token/x", ("s3cr3t-token", None, "")) == "path /<redacted>/x"


@pytest.mark.parametrize(("dash", "warned"), [
    ({"bind": "127.0.0.1"}, []),
    ({"bind": "0.0.0.0"}, ["PLAIN HTTP", "dashboard token", "set dashboard.viewer_token"]),
    ({"bind": "0.0.0.0", "viewer_token": VIEWER}, ["PLAIN HTTP"]),
    ({"bind": "0.0.0.0", "viewer_token": VIEWER, "tls": True}, []),
])
def test_warns_loudly_when_exposed(make_dash_host: MakeHost, ca: TestCa, caplog: pytest.LogCaptureFixture,
                                   dash: dict[str, Any], warned: list[str]) -> None:
    caplog.set_level(logging.WARNING, logger="host_agent.dashboard")
    if dash.pop("tls", False):
        dash.update(tls_cert=str(ca.server_cert), tls_key=str(ca.server_key))
    make_dash_host(**dash)
    text = " ".join(r.getMessage() for r in caplog.records
                    if r.name == "host_agent.dashboard" and r.levelno == logging.WARNING)
    for words in warned:
        assert words in text
    if not warned:
        assert text == ""
    if "viewer_token" in dash:
        assert "viewer_token" not in text


# --- the page in Chromium, over HTTPS with a viewer login ------------------------------------------------------


@pytest.mark.needs("chromium")
def test_dashboard_in_chromium_over_https_with_viewer_login(
        make_dash_host: MakeHost, ca: TestCa, mosquitto: Mosquitto, clock: ManualClock) -> None:
    from playwright.sync_api import Error as PlaywrightError
    from playwright.sync_api import expect, sync_playwright

    host = make_dash_host(tls_cert=str(ca.server_cert), tls_key=str(ca.server_key), viewer_token=VIEWER)
    pub = publisher(mosquitto.port)
    d = Desk("site1", "d01", clock=clock.now_ms)
    send(pub, d, d.state())
    send(pub, d, d.event(EventKind.DOFFED))
    settle(host, 2)
    clock.advance(16 * 60)
    host.sync()
    pub.disconnect()
    url = host.dashboard_url
    assert url is not None and url.startswith("https://")
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=real_parts.find("chromium"), args=[
            "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking"])
        # The test CA is not in Chromium's store; the Python clients above verify the chain for real.
        denied = browser.new_context(ignore_https_errors=True)
        with pytest.raises(PlaywrightError, match="ERR_INVALID_AUTH_CREDENTIALS"):  # challenged, no login given
            denied.new_page().goto(url)
        ctx = browser.new_context(ignore_https_errors=True,
                                  http_credentials={"username": "supervisor", "password": VIEWER})
        page = ctx.new_page()
        page.goto(url + f"#token={TOKEN}")
        expect(page.locator("#conn")).to_have_text("live", timeout=5000)  # /events got the login too
        tile = page.locator('.tile[data-site="site1"][data-desk="d01"]')
        expect(tile).to_have_class(re.compile(r"\balerting\b"), timeout=5000)
        button = page.locator('#alerts li:has-text("d01 · break-overrun") button')
        button.click()
        expect(button).to_have_text("silenced", timeout=3000)
        browser.close()
