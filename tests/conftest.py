"""Shared fixtures: real brokers started on free ports, and the test data folder."""

from __future__ import annotations

import logging
import os
import socket
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from device import logs as device_logs
from tests import real_parts
from tests.ports import free_port

DATA_DIR = Path(__file__).parent / "data"
MOSQUITTO = real_parts.find("mosquitto")


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "needs(*parts): the real parts a test needs (see tests/real_parts.py)")


@pytest.fixture(autouse=True)
def _agent_logging_ends_with_the_test() -> Iterator[None]:
    """A command run in-process (``headset-agent run`` under capsys) points the ``device`` logger at that
    test's captured stderr; once the test ends the stream is closed, and a later test's thread that logs
    would print "Logging error". Each test leaves the logger as it found it."""
    logger = logging.getLogger(device_logs.ROOT)
    before = (list(logger.handlers), logger.level, logger.propagate)
    yield
    logger.handlers[:] = before[0]
    logger.setLevel(before[1])
    logger.propagate = before[2]


def pytest_runtest_setup(item: pytest.Item) -> None:
    for mark in item.iter_markers("needs"):
        real_parts.require(*mark.args)


def _reason(report: pytest.TestReport) -> str:
    """The text of a skip or failure (a skip's longrepr is (file, line, reason))."""
    return report.longrepr[2] if isinstance(report.longrepr, tuple) else str(report.longrepr)


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Iterator[None]:
    """In strict mode (CI, root, ./run test) no test may skip: a skip becomes a failure that says why."""
    outcome = yield
    report: pytest.TestReport = outcome.get_result()  # type: ignore[attr-defined]
    if report.skipped and not hasattr(report, "wasxfail") and real_parts.strict():
        report.outcome = "failed"
        report.longrepr = f"a test may not skip here (CI, root or ./run test without --allow-missing): {_reason(report)}"


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    """List the real parts that were missing, with how many tests each one cost."""
    counts: dict[str, int] = {}
    for report in terminalreporter.stats.get("skipped", []) + terminalreporter.stats.get("failed", []):
        text = _reason(report)
        if real_parts.MISSING_PREFIX in text:
            part = text.split(real_parts.MISSING_PREFIX, 1)[1].split(" ", 1)[0]
            counts[part] = counts.get(part, 0) + 1
    if counts:
        terminalreporter.section("missing real parts")
        for part, n in sorted(counts.items()):
            terminalreporter.write_line(f"{part}: {n} test(s); install: {real_parts.PARTS[part].install}")


def wait_for_port(port: int, deadline_s: float = 10.0) -> None:
    end = time.monotonic() + deadline_s
    while time.monotonic() < end:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                return
        except OSError:
            time.sleep(0.02)
    raise TimeoutError(f"nothing listens on 127.0.0.1:{port} after {deadline_s} s")


@dataclass
class Mosquitto:
    """A real mosquitto process on 127.0.0.1:``port`` with its own config in ``workdir``.

    ``stop()`` and ``start()`` stop and restart the process for real (fault tests); persistence
    is on, so retained messages and queued QoS 1 messages survive a restart.
    """

    workdir: Path
    port: int
    extra_config: str = ""
    proc: subprocess.Popen[bytes] | None = field(default=None, repr=False)

    @property
    def url(self) -> str:
        return f"mqtt://127.0.0.1:{self.port}"

    def start(self) -> None:
        assert MOSQUITTO is not None
        conf = self.workdir / "mosquitto.conf"
        conf.write_text(
            f"listener {self.port} 127.0.0.1\n"
            # as root, mosquitto drops to its own user and then cannot write its log and saved state here
            f"{'user root' if os.geteuid() == 0 and 'user ' not in self.extra_config else ''}\n"
            f"persistence true\npersistence_location {self.workdir}/\n"
            f"log_dest file {self.workdir}/mosquitto.log\n"
            f"{'allow_anonymous true' if 'password_file' not in self.extra_config else ''}\n"
            f"{self.extra_config}\n"
        )
        self.proc = subprocess.Popen([MOSQUITTO, "-c", str(conf)], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        try:
            wait_for_port(self.port)
        except TimeoutError:
            self.stop()
            log = self.workdir / "mosquitto.log"
            why = log.read_text()[-2000:] if log.exists() else "(no log: is the config valid?)"
            raise RuntimeError(f"mosquitto did not start: {why}") from None

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.proc = None

    def restart(self) -> None:
        self.stop()
        self.start()


def _mosquitto(tmp_path: Path, extra: str = "") -> Iterator[Mosquitto]:
    real_parts.require("mosquitto")
    broker = Mosquitto(tmp_path, free_port(), extra)
    broker.start()
    try:
        yield broker
    finally:
        broker.stop()


@pytest.fixture
def mosquitto(tmp_path: Path) -> Iterator[Mosquitto]:
    """A fresh real mosquitto for one test (anonymous access)."""
    yield from _mosquitto(tmp_path)


@pytest.fixture
def mosquitto_factory(tmp_path: Path) -> Iterator[object]:
    """Start mosquitto with extra config lines (ACLs, password files): ``factory(extra)``."""
    brokers: list[Mosquitto] = []

    def make(extra: str = "") -> Mosquitto:
        real_parts.require("mosquitto")
        d = tmp_path / f"broker{len(brokers)}"
        d.mkdir()
        b = Mosquitto(d, free_port(), extra)
        b.start()
        brokers.append(b)
        return b

    yield make
    for b in brokers:
        b.stop()


@dataclass(frozen=True)
class TestCa:
    """PEM files of a test site CA and a broker certificate for 127.0.0.1 signed by it."""

    ca_cert: Path
    ca_key: Path
    server_cert: Path
    server_key: Path


def make_test_ca(d: Path, cn: str = "test ca") -> TestCa:
    """A P-256 site CA (valid for a day) and a broker certificate for 127.0.0.1, written into ``d``."""
    import datetime as dt
    import ipaddress

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    def name(common_name: str) -> x509.Name:
        return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])

    def pem_key(k: ec.EllipticCurvePrivateKey) -> bytes:
        return k.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                               serialization.NoEncryption())

    now = dt.datetime.now(dt.UTC)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca = (x509.CertificateBuilder().subject_name(name(cn)).issuer_name(name(cn))
          .public_key(ca_key.public_key()).serial_number(1).not_valid_before(now - dt.timedelta(hours=1))
          .not_valid_after(now + dt.timedelta(days=1))
          .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
          .sign(ca_key, hashes.SHA256()))
    key = ec.generate_private_key(ec.SECP256R1())
    cert = (x509.CertificateBuilder().subject_name(name("127.0.0.1")).issuer_name(ca.subject)
            .public_key(key.public_key()).serial_number(2).not_valid_before(now - dt.timedelta(hours=1))
            .not_valid_after(now + dt.timedelta(days=1))
            .add_extension(x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
                           critical=False)
            .sign(ca_key, hashes.SHA256()))
    d.mkdir(parents=True, exist_ok=True)
    out = TestCa(d / "ca.pem", d / "ca.key", d / "server.pem", d / "server.key")
    out.ca_cert.write_bytes(ca.public_bytes(serialization.Encoding.PEM))
    out.ca_key.write_bytes(pem_key(ca_key))
    out.server_cert.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    out.server_key.write_bytes(pem_key(key))
    return out


@dataclass
class Postgres:
    """A real PostgreSQL cluster (Debian's ``postgresql``: ``initdb`` and ``pg_ctl``) in ``workdir``, on
    127.0.0.1:``port`` with its unix socket in ``workdir``. As root it runs as the ``postgres`` user the
    package creates (PostgreSQL refuses to run as root). TCP logins need the password (scram-sha-256),
    so the URLs the tests use carry a real one. ``fsync`` is off: the tests kill hosts, not the server."""

    workdir: Path
    port: int
    bindir: Path
    user: str = "hsc"
    password: str = "hsc-pw-s3cret"
    _n: int = 0

    def url(self, dbname: str) -> str:
        return f"postgresql://{self.user}:{self.password}@127.0.0.1:{self.port}/{dbname}"

    def _cmd(self, *argv: str) -> list[str]:
        cmd = [str(self.bindir / argv[0]), *argv[1:]]
        return ["runuser", "-u", "postgres", "--", *cmd] if os.geteuid() == 0 else cmd

    def start(self) -> None:
        data, pwfile = self.workdir / "data", self.workdir / "pw"
        pwfile.write_text(self.password + "\n")
        if os.geteuid() == 0:
            import shutil

            shutil.chown(self.workdir, "postgres", "postgres")
            shutil.chown(pwfile, "postgres", "postgres")
        subprocess.run(self._cmd("initdb", "-D", str(data), "-U", self.user, f"--pwfile={pwfile}", "-E", "UTF8",
                                 "--locale=C", "--auth-local=trust", "--auth-host=scram-sha-256", "--no-sync"),
                       check=True, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        opts = (f"-p {self.port} -k {self.workdir} -c listen_addresses=127.0.0.1 -c fsync=off "
                "-c full_page_writes=off -c max_connections=300")
        res = subprocess.run(self._cmd("pg_ctl", "-D", str(data), "-l", str(self.workdir / "postgres.log"), "-w",
                                       "-t", "60", "-o", opts, "start"), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        if res.returncode != 0:
            log = self.workdir / "postgres.log"
            raise RuntimeError(f"PostgreSQL did not start: {res.stderr.decode()} {log.read_text()[-2000:] if log.exists() else ''}")

    def stop(self) -> None:
        subprocess.run(self._cmd("pg_ctl", "-D", str(self.workdir / "data"), "-m", "immediate", "-w", "stop"),
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)

    def create_database(self, name: str | None = None) -> str:
        """A fresh, empty database; returns its URL."""
        import psycopg

        self._n += 1
        name = name or f"hsc_test_{self._n}"
        with psycopg.connect(self.url("postgres"), autocommit=True) as conn:
            conn.execute(f'CREATE DATABASE "{name}" STRATEGY FILE_COPY')
        return self.url(name)


@pytest.fixture(scope="session")
def postgresql() -> Iterator[Postgres]:
    """One PostgreSQL for the test session; ``create_database()`` gives each test its own database."""
    import shutil
    import tempfile

    real_parts.require("postgresql")
    initdb = real_parts.find("postgresql")
    assert initdb is not None
    # not under pytest's temp root: that is private to root, and the server runs as postgres
    workdir = Path(tempfile.mkdtemp(prefix="hsc-pg-"))
    pg = Postgres(workdir, free_port(), Path(initdb).parent)
    try:
        pg.start()
        yield pg
    finally:
        pg.stop()
        shutil.rmtree(workdir, ignore_errors=True)
