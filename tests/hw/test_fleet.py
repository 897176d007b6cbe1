"""headset-flash fleet against a real mosquitto, with retained state messages published by real paho
clients (one per desk, as desk agents do)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.enums import CallbackAPIVersion

from hw import cli
from mqtt_schema import DeskKind, DeskStatus, DeskTopic, State, Versions, encode
from tests.conftest import Mosquitto
from tests.hw.conftest import FirmwareDir
from tests.ports import free_port

TS = 1_795_000_000_000  # ms


def publish_retained(broker: Mosquitto, topic: str, payload: bytes) -> None:
    client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id="", protocol=mqtt.MQTTv311)
    client.connect("127.0.0.1", broker.port)
    client.loop_start()
    try:
        client.publish(topic, payload, qos=1, retain=True).wait_for_publish(5)
    finally:
        client.disconnect()
        client.loop_stop()


def state(site: str, desk: str, status: DeskStatus = DeskStatus.ONLINE, firmware: str | None = None,
          headset: str | None = None, config_hash: str | None = None, ts: int = TS) -> State:
    return State(site=site, desk=desk, boot=3, seq=1, ts=ts, status=status,
                 versions=Versions(agent="0.4.0", schema="1.0", firmware=firmware), headset_id=headset,
                 config_hash=config_hash)


@pytest.fixture
def fleet(mosquitto: Mosquitto, firmware_dir: FirmwareDir) -> Iterator[tuple[Mosquitto, Path]]:
    desks = [
        state("s1", "d01", firmware="1.9.2", headset="e661410300000001", config_hash="0123456789abcdef"),
        state("s1", "d02", firmware="1.10.0", headset="e661410300000002", ts=TS + 60_000),
        state("s1", "d03", status=DeskStatus.LOST),  # no headset ever reported
        state("s2", "d01", firmware="1.2", headset="e661410300000004"),
    ]
    for s in desks:
        publish_retained(mosquitto, str(DeskTopic(s.site, s.desk, DeskKind.STATE)), encode(s))
    # a desk whose payload names another desk: refused by the contract, reported, not shown
    publish_retained(mosquitto, str(DeskTopic("s1", "d09", DeskKind.STATE)), encode(state("s1", "d08")))
    # the manifest says 1.10.0: as strings, "1.9.2" would look newer
    yield mosquitto, firmware_dir("1.10.0")


def run(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    rc = cli.main(["fleet", *args])
    out = capsys.readouterr()
    return rc, out.out, out.err


def test_fleet_table_flags_older_firmware(
        fleet: tuple[Mosquitto, Path], capsys: pytest.CaptureFixture[str]) -> None:
    broker, fw = fleet
    rc, out, err = run(capsys, "--broker", broker.url, "--firmware-dir", str(fw))
    assert rc == 0
    header, *lines = out.splitlines()
    assert header.split()[:4] == ["site", "desk", "status", "headset"] and "config hash" in header
    rows = {tuple(line.split()[:2]): line for line in lines[:-1]}
    assert list(rows) == [("s1", "d01"), ("s1", "d02"), ("s1", "d03"), ("s2", "d01")]
    d01 = rows[("s1", "d01")]
    assert "e661410300000001" in d01 and "1.9.2" in d01 and "0123456789ab" in d01 and "OLDER than 1.10.0" in d01
    assert "2026-11-18T11:06:40Z" in d01  # last seen: the state's ts (1_795_000_000_000 ms), UTC
    assert "OLDER" not in rows[("s1", "d02")]
    assert "lost" in rows[("s1", "d03")] and "firmware unknown" in rows[("s1", "d03")]
    assert "OLDER than 1.10.0" in rows[("s2", "d01")]
    assert lines[-1] == "4 desk(s); 2 with headset firmware older than 1.10.0"
    assert "headset-flash: skipped an invalid state message on hsc/v1/s1/d09/state" in err


def test_fleet_site_filter_and_json(
        fleet: tuple[Mosquitto, Path], capsys: pytest.CaptureFixture[str]) -> None:
    broker, fw = fleet
    rc, out, _err = run(capsys, "--broker", broker.url, "--site", "s1", "--json", "--firmware-dir", str(fw))
    assert rc == 0
    data = json.loads(out)
    assert data["firmware_latest"] == "1.10.0"
    by_desk = {d["desk"]: d for d in data["desks"]}
    assert set(by_desk) == {"d01", "d02", "d03"} and {d["site"] for d in data["desks"]} == {"s1"}
    assert by_desk["d01"]["firmware_older"] is True and by_desk["d02"]["firmware_older"] is False
    assert by_desk["d03"]["firmware_older"] is None and by_desk["d03"]["status"] == "lost"
    assert by_desk["d02"]["last_seen_ms"] == TS + 60_000 and by_desk["d02"]["headset_id"] == "e661410300000002"
    assert by_desk["d01"]["config_hash"] == "0123456789abcdef" and by_desk["d01"]["agent"] == "0.4.0"


def test_a_newer_state_replaces_the_retained_one(
        fleet: tuple[Mosquitto, Path], capsys: pytest.CaptureFixture[str]) -> None:
    broker, fw = fleet
    publish_retained(broker, str(DeskTopic("s1", "d01", DeskKind.STATE)),
                     encode(state("s1", "d01", firmware="1.10.0", headset="e661410300000001", ts=TS + 120_000)))
    rc, out, _err = run(capsys, "--broker", broker.url, "--site", "s1", "--json", "--firmware-dir", str(fw))
    d01 = next(d for d in json.loads(out)["desks"] if d["desk"] == "d01")
    assert rc == 0 and d01["firmware"] == "1.10.0" and d01["firmware_older"] is False


def test_fleet_errors_are_one_line(mosquitto: Mosquitto, capsys: pytest.CaptureFixture[str]) -> None:
    rc, _out, err = run(capsys, "--broker", f"mqtt://127.0.0.1:{free_port()}", "--timeout", "2")
    assert rc == 1 and err.startswith("headset-flash: cannot connect to the broker mqtt://127.0.0.1:")
    rc, _out, err = run(capsys, "--broker", mosquitto.url, "--site", "Site 1")
    assert rc == 2 and err == "headset-flash: --site 'Site 1' is not a valid id: it must match [a-z0-9-]{1,32}\n"
    rc, _out, err = run(capsys, "--broker", "http://x")
    assert rc == 2 and "--broker: 'http://x' must start with mqtt:// or mqtts://" in err
    rc, out, _err = run(capsys, "--broker", mosquitto.url, "--site", "empty")
    assert rc == 0 and out.startswith("no desk of site empty has a retained state")


@pytest.mark.parametrize(("flag", "value"), [("--timeout", "nan"), ("--timeout", "inf"), ("--timeout", "1e308"),
                                             ("--timeout", "3601"), ("--quiet", "nan"), ("--quiet", "0")])
def test_fleet_timeouts_must_be_finite_seconds_up_to_an_hour(
        flag: str, value: str, capsys: pytest.CaptureFixture[str]) -> None:
    rc, out, err = run(capsys, "--broker", f"mqtt://127.0.0.1:{free_port()}", flag, value)
    assert rc == 2 and out == ""
    assert err == f"headset-flash: {flag} must be a number of seconds more than 0 and at most 3600, not {float(value):g}\n"


def test_fleet_ca_cert_that_is_no_certificate_is_one_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    junk = tmp_path / "ca.crt"
    junk.write_bytes(bytes(range(256)) * 4)
    rc, out, err = run(capsys, "--broker", f"mqtts://127.0.0.1:{free_port()}", "--ca-cert", str(junk), "--timeout", "2")
    assert rc == 1 and out == ""
    (line,) = err.splitlines()
    assert line.startswith(f"headset-flash: mqtt: cannot set up TLS with ca_cert {junk}: ")  # not "{junk}, None: "
    assert "None" not in line
