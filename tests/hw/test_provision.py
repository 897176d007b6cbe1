"""provision-desk: the generated password line and ACL, enforced by a real mosquitto."""

from __future__ import annotations

import base64
import datetime as dt
import getpass
import os
import threading
import time
import tomllib
from collections.abc import Callable
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from paho.mqtt.enums import CallbackAPIVersion
from paho.mqtt.properties import Properties
from paho.mqtt.reasoncodes import ReasonCode

from hw import cli
from hw.errors import ProvisionError
from hw.flashing.provision import mosquitto_hash, provision_desk
from mqtt_schema.topics import DeskKind, DeskTopic
from tests.conftest import Mosquitto, make_test_ca


class Client:
    def __init__(self, port: int, user: str, password: str):
        self.got: list[tuple[str, bytes | bytearray]] = []
        self.connected = threading.Event()
        self.rc: object = None
        self.c = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=f"t-{user}-{time.monotonic_ns()}")
        self.c.username_pw_set(user, password)
        self.c.on_connect = self._on_connect
        self.c.on_message = lambda c, u, m: self.got.append((m.topic, m.payload))
        self.c.connect("127.0.0.1", port)
        self.c.loop_start()

    def _on_connect(self, c: mqtt.Client, u: Any, flags: mqtt.ConnectFlags, rc: ReasonCode,
                    props: Properties | None = None) -> None:
        self.rc = rc
        self.connected.set()

    def ok(self) -> bool:
        assert self.connected.wait(5)
        return not self.rc.is_failure  # type: ignore[attr-defined]

    def sub(self, topic: str) -> None:
        done = threading.Event()
        self.c.on_subscribe = lambda *a: done.set()
        self.c.subscribe(topic, qos=1)
        assert done.wait(5)

    def pub(self, topic: str, payload: bytes, retain: bool = False) -> None:
        self.c.publish(topic, payload, qos=1, retain=retain).wait_for_publish(5)

    def stop(self) -> None:
        self.c.loop_stop()
        self.c.disconnect()


def wait_until(pred: Callable[[], bool], deadline_s: float = 5.0) -> bool:
    end = time.monotonic() + deadline_s
    while time.monotonic() < end:
        if pred():
            return True
        time.sleep(0.02)
    return False


def test_password_hash_matches_mosquitto_format() -> None:
    # the line mosquitto_passwd wrote for alice/secret with this salt
    salt = base64.b64decode("di8ZbCCnEyiKkjzx")
    assert mosquitto_hash("secret", salt) == (
        "$7$101$di8ZbCCnEyiKkjzx$BUtaAGeZ29IhILBXvgc+YaaJFOMag7fbcrHZjBs6Sjv8NhlqGN5WZmm51ZDRKCokQCk3/wkvlZsgWJfd2t1Ivw==")


def test_acl_lets_a_desk_write_and_read_only_its_own_topics(
        tmp_path: Path, mosquitto_factory: Callable[[str], Mosquitto]) -> None:
    a = provision_desk("site1", "d01", tmp_path / "d01")
    b = provision_desk("site1", "d02", tmp_path / "d02")
    observer_pw = "observer-secret"
    (tmp_path / "passwd").write_text(
        (tmp_path / "d01/mosquitto.passwd").read_text() + (tmp_path / "d02/mosquitto.passwd").read_text()
        + f"observer:{mosquitto_hash(observer_pw)}\n")
    (tmp_path / "acl").write_text(
        (tmp_path / "d01/mosquitto.acl").read_text() + (tmp_path / "d02/mosquitto.acl").read_text()
        + "user observer\ntopic readwrite hsc/#\n")
    # As root, mosquitto drops to the 'mosquitto' user, which cannot read pytest's 0700 tmp folder.
    user = f"user {getpass.getuser()}\n" if os.geteuid() == 0 else ""
    broker = mosquitto_factory(f"{user}password_file {tmp_path / 'passwd'}\nacl_file {tmp_path / 'acl'}\n")

    cfg = tomllib.loads((tmp_path / "d01/agent.toml").read_text())
    assert cfg["desk"] == {"site": "site1", "desk": "d01"} and cfg["mqtt"]["username"] == a.username
    assert (tmp_path / "d01/agent.toml").stat().st_mode & 0o077 == 0  # a secret: owner only

    obs = Client(broker.port, "observer", observer_pw)
    assert obs.ok()
    obs.sub("hsc/#")
    own_config = str(DeskTopic("site1", "d01", DeskKind.CONFIG))
    other_config = str(DeskTopic("site1", "d02", DeskKind.CONFIG))
    obs.pub(own_config, b"cfg-d01", retain=True)
    obs.pub(other_config, b"cfg-d02", retain=True)

    desk = Client(broker.port, cfg["mqtt"]["username"], cfg["mqtt"]["password"])
    assert desk.ok()
    desk.sub(own_config)
    desk.sub(other_config)
    desk.sub(str(DeskTopic("site1", "d02", DeskKind.STATE)))
    own_state = str(DeskTopic("site1", "d01", DeskKind.STATE))
    desk.pub(own_state, b"mine")
    desk.pub(str(DeskTopic("site1", "d02", DeskKind.STATE)), b"forged")
    desk.pub(own_config, b"self-config")  # not allowed: config comes from the host
    desk.pub("hsc/v1/site1/alert/d01/x", b"fake alert")
    assert wait_until(lambda: (own_state, b"mine") in obs.got)
    assert wait_until(lambda: (own_config, b"cfg-d01") in desk.got)
    marker = str(DeskTopic("site1", "d01", DeskKind.EVENT))
    desk.pub(marker, b"last")  # everything before this was processed in order
    assert wait_until(lambda: (marker, b"last") in obs.got)
    topics = [t for t, _ in obs.got]
    assert (str(DeskTopic("site1", "d02", DeskKind.STATE)), b"forged") not in obs.got
    assert (own_config, b"self-config") not in obs.got and "hsc/v1/site1/alert/d01/x" not in topics
    assert all(t == own_config for t, _ in desk.got)  # never d02's config or state

    bad = Client(broker.port, b.username, "wrong-password")
    assert not bad.ok()
    for c in (obs, desk, bad):
        c.stop()


def test_refuses_to_overwrite_and_bad_ids(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["provision-desk", "--site", "s1", "--desk", "d1", "--out", str(tmp_path / "d1")]) == 0
    before = (tmp_path / "d1/agent.toml").read_text()
    assert cli.main(["provision-desk", "--site", "s1", "--desk", "d1", "--out", str(tmp_path / "d1")]) == 1
    assert "exists; not overwriting" in capsys.readouterr().err
    assert (tmp_path / "d1/agent.toml").read_text() == before
    for flags, message in ((["--site", "Site 1", "--desk", "d1"], "--site 'Site 1' is not a valid id"),
                           (["--site", "BAD", "--desk", "d1"], "--site 'BAD' is not a valid id"),
                           (["--site", "s1", "--desk", "d 1"], "--desk 'd 1' is not a valid id")):
        assert cli.main(["provision-desk", *flags, "--out", str(tmp_path / "x")]) == 2  # a usage error
        (line,) = capsys.readouterr().err.splitlines()
        assert line.startswith(f"headset-flash: {message}: it must match "), line
    assert not (tmp_path / "x").exists()
    with pytest.raises(ProvisionError, match="go together"):
        provision_desk("s1", "d2", tmp_path / "d2", ca_cert=tmp_path / "ca.crt")


def test_client_certificate_is_signed_by_the_site_ca(tmp_path: Path) -> None:
    ca_key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "site1 CA")])
    now = dt.datetime.now(dt.UTC)
    ca = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(ca_key.public_key())
          .serial_number(1).not_valid_before(now).not_valid_after(now + dt.timedelta(days=30))
          .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True).sign(ca_key, hashes.SHA256()))
    (tmp_path / "ca.crt").write_bytes(ca.public_bytes(serialization.Encoding.PEM))
    (tmp_path / "ca.key").write_bytes(ca_key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                                           serialization.NoEncryption()))
    p = provision_desk("site1", "d03", tmp_path / "d03", ca_cert=tmp_path / "ca.crt", ca_key=tmp_path / "ca.key")
    cert = x509.load_pem_x509_certificate((tmp_path / "d03/desk.crt").read_bytes())
    assert cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value == p.username
    cert.verify_directly_issued_by(ca)
    key = serialization.load_pem_private_key((tmp_path / "d03/desk.key").read_bytes(), None)
    assert key.public_key().public_numbers() == cert.public_key().public_numbers()  # type: ignore[union-attr]
    cfg = tomllib.loads((tmp_path / "d03/agent.toml").read_text())
    assert cfg["mqtt"]["url"].startswith("mqtts://") and cfg["mqtt"]["client_cert"] == "desk.crt"
    other = ec.generate_private_key(ec.SECP256R1())
    (tmp_path / "other.key").write_bytes(other.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                                             serialization.NoEncryption()))
    with pytest.raises(ProvisionError, match="does not belong"):
        provision_desk("site1", "d04", tmp_path / "d04", ca_cert=tmp_path / "ca.crt", ca_key=tmp_path / "other.key")


def _snapshot(folder: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(folder.iterdir())} if folder.exists() else {}


@pytest.mark.parametrize(("url", "reason"), [
    ("http://x", "must start with mqtt:// or mqtts://"),
    ("broker.lan:1883", "must start with mqtt:// or mqtts://"),
    ("mqtt://:1883", "has no host"),
    ("mqtt://broker:99999", "not a valid url"),
    ("mqtt://user:pw@broker:1883", "credentials go in username/password"),
])
def test_broker_url_is_checked_by_the_desk_agents_rule(
        url: str, reason: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "d1"
    assert cli.main(["provision-desk", "--site", "s1", "--desk", "d1", "--out", str(out)]) == 0
    before = _snapshot(out)
    capsys.readouterr()
    assert cli.main(["provision-desk", "--site", "s1", "--desk", "d1", "--out", str(out), "--broker", url,
                     "--force"]) == 2  # a bad command-line value: a usage error
    (line,) = capsys.readouterr().err.splitlines()
    assert line.startswith(f"headset-flash: --broker {url!r} is not a broker URL the desk agent accepts") and reason in line
    assert _snapshot(out) == before  # the refused --force kept the desk's credentials
    assert cli.main(["provision-desk", "--site", "s1", "--desk", "d2", "--out", str(tmp_path / "d2"),
                     "--broker", url]) == 2
    assert not (tmp_path / "d2").exists()


def test_a_certificate_that_is_not_a_ca_is_refused(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    pki = make_test_ca(tmp_path / "pki", "site1 CA")
    out = tmp_path / "d1"
    assert cli.main(["provision-desk", "--site", "s1", "--desk", "d1", "--out", str(out), "--ca-cert",
                     str(pki.ca_cert), "--ca-key", str(pki.ca_key)]) == 0
    before = _snapshot(out)
    capsys.readouterr()
    # the broker's own certificate and key (a real pair, signed by the CA, but no CA itself)
    assert cli.main(["provision-desk", "--site", "s1", "--desk", "d1", "--out", str(out), "--ca-cert",
                     str(pki.server_cert), "--ca-key", str(pki.server_key), "--force"]) == 1
    (line,) = capsys.readouterr().err.splitlines()
    assert line.startswith(f"headset-flash: --ca-cert {pki.server_cert} is not a CA certificate (CN=127.0.0.1 has no "
                           "basicConstraints CA=true)"), line
    assert _snapshot(out) == before
    x509.load_pem_x509_certificate((out / "desk.crt").read_bytes()).verify_directly_issued_by(
        x509.load_pem_x509_certificate(pki.ca_cert.read_bytes()))  # still the one from the real CA


def test_an_expired_ca_is_refused(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "old CA")])
    now = dt.datetime.now(dt.UTC)
    ca = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
          .serial_number(1).not_valid_before(now - dt.timedelta(days=40)).not_valid_after(now - dt.timedelta(days=10))
          .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True).sign(key, hashes.SHA256()))
    (tmp_path / "ca.crt").write_bytes(ca.public_bytes(serialization.Encoding.PEM))
    (tmp_path / "ca.key").write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                                        serialization.NoEncryption()))
    assert cli.main(["provision-desk", "--site", "s1", "--desk", "d1", "--out", str(tmp_path / "d1"), "--ca-cert",
                     str(tmp_path / "ca.crt"), "--ca-key", str(tmp_path / "ca.key")]) == 1
    assert "CN=old CA expired on" in capsys.readouterr().err
    assert not (tmp_path / "d1").exists()


def test_plain_mqtt_with_tls_material_is_refused_not_rewritten(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    pki = make_test_ca(tmp_path / "pki")
    tls = ["--ca-cert", str(pki.ca_cert), "--ca-key", str(pki.ca_key)]

    def url(folder: Path) -> str:
        return str(tomllib.loads((folder / "agent.toml").read_text())["mqtt"]["url"])

    assert cli.main(["provision-desk", "--site", "s1", "--desk", "d1", "--out", str(tmp_path / "d1"),
                     "--broker", "mqtt://broker.lan:1883", *tls]) == 2  # flags that do not go together: usage
    (line,) = capsys.readouterr().err.splitlines()
    assert line == ("headset-flash: --broker mqtt://broker.lan:1883 is plain MQTT, but --ca-cert/--ca-key make a TLS "
                    "client certificate: pass the broker's TLS listener, e.g. --broker mqtts://broker.lan:8883")
    assert not (tmp_path / "d1").exists()
    assert cli.main(["provision-desk", "--site", "s1", "--desk", "d1", "--out", str(tmp_path / "d1"),
                     "--broker", "mqtt://broker.lan:18830", *tls]) == 2
    assert "e.g. --broker mqtts://broker.lan:18830" in capsys.readouterr().err
    # what the user says is written as said
    assert cli.main(["provision-desk", "--site", "s1", "--desk", "d1", "--out", str(tmp_path / "d1"),
                     "--broker", "mqtts://broker.lan:8884", *tls]) == 0
    assert url(tmp_path / "d1") == "mqtts://broker.lan:8884"
    assert cli.main(["provision-desk", "--site", "s1", "--desk", "d2", "--out", str(tmp_path / "d2"),
                     "--broker", "mqtt://broker.lan:1883"]) == 0
    assert url(tmp_path / "d2") == "mqtt://broker.lan:1883"
    assert cli.main(["provision-desk", "--site", "s1", "--desk", "d3", "--out", str(tmp_path / "d3"), *tls]) == 0
    assert url(tmp_path / "d3") == "mqtts://localhost:8883"  # the default follows the TLS material
    assert cli.main(["provision-desk", "--site", "s1", "--desk", "d4", "--out", str(tmp_path / "d4")]) == 0
    assert url(tmp_path / "d4") == "mqtt://localhost:1883"


# --- provision-host ----------------------------------------------------------------------------------

def test_provision_host_writes_a_host_config_the_host_loads_and_its_acl(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from host_agent.config import load_config

    pki = make_test_ca(tmp_path / "pki", "site1 CA")
    out = tmp_path / "host"
    assert cli.main(["provision-host", "--name", "floor", "--site", "site1", "--site", "site2", "--site", "site1",
                     "--out", str(out), "--broker", "mqtts://broker.lan:8883", "--ca-cert", str(pki.ca_cert),
                     "--ca-key", str(pki.ca_key)]) == 0
    printed = capsys.readouterr()
    assert sorted(Path(line).name for line in printed.out.split()) == sorted(
        ["host.key", "host.crt", "ca.crt", "host.toml", "mosquitto.passwd", "mosquitto.acl"])
    assert "broker user host.floor" in printed.err
    cfg = load_config(out / "host.toml")  # the host's own loader takes it as written
    assert cfg.sites == ("site1", "site2")
    assert (cfg.broker.url, cfg.broker.username) == ("mqtts://broker.lan:8883", "host.floor")
    assert cfg.broker.client_cert is not None and Path(cfg.broker.client_cert).is_absolute()
    cert = x509.load_pem_x509_certificate(Path(cfg.broker.client_cert).read_bytes())
    assert cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value == "host.floor"
    cert.verify_directly_issued_by(x509.load_pem_x509_certificate(pki.ca_cert.read_bytes()))
    for secret in ("host.toml", "host.key", "mosquitto.passwd"):
        assert (out / secret).stat().st_mode & 0o077 == 0, secret
    assert (out / "mosquitto.passwd").read_text().startswith("host.floor:$7$101$") and cfg.broker.password
    acl = (out / "mosquitto.acl").read_text().splitlines()
    assert acl[0] == "user host.floor"
    assert set(acl[1:]) - {""} == {
        *(f"topic read hsc/v1/{s}/+/{k}" for s in ("site1", "site2") for k in ("state", "metrics", "event", "minute")),
        *(f"topic readwrite hsc/v1/{s}/+/config" for s in ("site1", "site2")),
        *(f"topic readwrite hsc/v1/{s}/alert/#" for s in ("site1", "site2")),
        *(f"topic write hsc/v1/{s}/alert-log" for s in ("site1", "site2")),
    }


def test_provision_host_help_has_an_example(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exc:
        cli.main(["provision-host", "--help"])
    assert exc.value.code == 0
    text = capsys.readouterr().out
    assert "example:\n  headset-flash provision-host --name floor --site site1 --out ./host" in text


def test_provision_host_refuses_bad_input_and_keeps_existing_files(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "host"
    assert cli.main(["provision-host", "--name", "floor", "--site", "site1", "--out", str(out)]) == 0
    before = _snapshot(out)
    password = tomllib.loads((out / "host.toml").read_text())["broker"]["password"]
    capsys.readouterr()
    refusals = [
        (["--name", "floor", "--site", "site1"], 1, "exist; not overwriting (use --force"),
        (["--name", "Floor", "--site", "site1", "--force"], 2, "--name 'Floor' is not a valid id"),
        (["--name", "floor", "--site", "site1", "--site", "site 1", "--force"], 2, "--site 'site 1' is not a valid id"),
        (["--name", "floor", "--site", "site1", "--broker", "http://x", "--force"], 2,
         "--broker 'http://x' is not a broker URL"),
        (["--name", "floor", "--site", "site1", "--ca-cert", "ca.crt", "--force"], 2,
         "--ca-cert and --ca-key go together"),
    ]
    for args, code, message in refusals:
        assert cli.main(["provision-host", *args, "--out", str(out)]) == code, args
        (line,) = capsys.readouterr().err.splitlines()
        assert line.startswith("headset-flash: ") and message in line, line
        assert _snapshot(out) == before, args
    # only one existing file is enough to refuse
    (tmp_path / "h2").mkdir()
    (tmp_path / "h2/mosquitto.acl").write_text("user someone-else\n")
    assert cli.main(["provision-host", "--name", "floor", "--site", "site1", "--out", str(tmp_path / "h2")]) == 1
    assert "h2/mosquitto.acl exists; not overwriting" in capsys.readouterr().err
    assert sorted(p.name for p in (tmp_path / "h2").iterdir()) == ["mosquitto.acl"]
    with pytest.raises(SystemExit) as exc:  # at least one --site: argparse says so, exit 2
        cli.main(["provision-host", "--name", "floor", "--out", str(out)])
    assert exc.value.code == 2
    assert "--site" in capsys.readouterr().err
    assert cli.main(["provision-host", "--name", "floor", "--site", "site1", "--out", str(out), "--force"]) == 0
    assert tomllib.loads((out / "host.toml").read_text())["broker"]["password"] != password


@pytest.mark.parametrize("command", ["provision-desk", "provision-host"])
@pytest.mark.parametrize(("flags", "message"), [
    (["--broker", "nonsense://x"], "--broker 'nonsense://x' is not a broker URL the desk agent accepts (mqtt.url: "
                                   "'nonsense://x' must start with mqtt:// or mqtts://)"),
    (["--broker", ""], "--broker '' is not a broker URL the desk agent accepts"),
    (["--broker", "mqtt://broker.lan:99999"], "--broker 'mqtt://broker.lan:99999' is not a broker URL the desk agent "
                                              "accepts (mqtt.url: 'mqtt://broker.lan:99999' is not a valid url"),
    (["--broker", "mqtt://broker.lan:0"], "--broker 'mqtt://broker.lan:0' is not a broker URL the desk agent accepts "
                                          "(mqtt.url: 'mqtt://broker.lan:0' has port 0"),  # was written as given
    (["--out", ""], "--out: empty path"),  # was the current folder: the files were written there
    (["--ca-cert", "", "--ca-key", "ca.key"], "--ca-cert: empty path"),
    (["--ca-cert", "ca.crt"], "--ca-cert and --ca-key go together"),
])
def test_a_bad_flag_value_is_a_usage_error_naming_the_flag(
        command: str, flags: list[str], message: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    """A bad --broker (or --out, --ca-cert, --ca-key) is a bad command-line value: exit 2, not 1, and
    one line naming the flag; nothing is written."""
    monkeypatch.chdir(tmp_path)  # an empty --out taken as "." would write here
    who = ["--site", "s1", "--desk", "d1"] if command == "provision-desk" else ["--name", "floor", "--site", "s1"]
    assert cli.main([command, *who, "--out", "out", *flags]) == 2
    out = capsys.readouterr()
    (line,) = out.err.splitlines()
    assert line.startswith(f"headset-flash: {message}"), line
    assert out.out == "" and list(tmp_path.iterdir()) == []
