"""Broker settings from the provisioned agent.toml, and the persisted boot counter."""

from __future__ import annotations

import multiprocessing
import time
import tomllib
from pathlib import Path

import pytest

from device.boot_counter import BootCounterError, next_boot, read_boot
from device.config.mqtt_settings import MqttSettings
from device.errors import ConfigError


def test_reads_what_provision_desk_writes(tmp_path: Path) -> None:
    from hw.flashing.provision import provision_desk

    done = provision_desk("s1", "d7", tmp_path, broker_url="mqtt://broker.example:1884")
    table = tomllib.loads((tmp_path / "agent.toml").read_text())["mqtt"]
    s = MqttSettings.from_table(table, base_dir=tmp_path)
    assert (s.host, s.port, s.tls) == ("broker.example", 1884, False)
    assert (s.username, s.password) == (done.username, done.password)


def test_tls_paths_resolve_against_the_config_folder(tmp_path: Path) -> None:
    for name in ("ca.crt", "desk.crt", "desk.key"):
        (tmp_path / name).write_text("x")
    s = MqttSettings.from_table({"url": "mqtts://broker", "ca_cert": "ca.crt", "client_cert": "desk.crt",
                                 "client_key": "desk.key"}, base_dir=tmp_path)
    assert (s.port, s.tls, s.ca_cert, s.client_key) == (8883, True, tmp_path / "ca.crt", tmp_path / "desk.key")


@pytest.mark.parametrize(("table", "message"), [
    ({"url": "http://broker:1883"}, r"mqtt\.url: 'http://broker:1883' must start with mqtt:// or mqtts://"),
    ({"url": "mqtt://:1883"}, r"mqtt\.url: .* has no host"),
    ({"url": "mqtt://broker:99999"}, r"mqtt\.url: .* not a valid url"),
    ({"url": "mqtt://user:pw@broker"}, r"mqtt\.url: .* \(credentials go in username/password\)"),
    ({"url": 1883}, r"mqtt\.url: must be a string"),
    ({"password": "secret"}, r"mqtt\.password: set without mqtt\.username"),
    ({"username": ""}, r"mqtt\.username: must be a non-empty string"),
    ({"ca_cert": "missing.crt"}, r"mqtt\.ca_cert: no such file"),
    ({"keepalive_s": 2}, r"mqtt\.keepalive_s: must be an integer number of seconds in 5\.\.3600"),
    ({"host": "broker"}, r"mqtt\.host: unknown key"),
])
def test_errors_name_the_field(tmp_path: Path, table: dict[str, object], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        MqttSettings.from_table(table, base_dir=tmp_path)


def test_client_cert_and_key_go_together(tmp_path: Path) -> None:
    (tmp_path / "desk.crt").write_text("x")
    with pytest.raises(ConfigError, match="client_cert and mqtt.client_key go together"):
        MqttSettings.from_table({"client_cert": "desk.crt"}, base_dir=tmp_path)


def test_boot_counter_counts_up_across_restarts(tmp_path: Path) -> None:
    state = tmp_path / "state"
    assert read_boot(state) is None
    clock = 1_800_000_000.7  # 2027-01-15
    assert [next_boot(state, lambda: clock) for _ in range(3)] == [1_800_000_000, 1_800_000_001, 1_800_000_002]
    assert read_boot(state) == 1_800_000_002
    assert sorted(p.name for p in state.iterdir()) == ["boot"]  # no temp files left behind


def test_a_replacement_unit_counts_on_above_the_unit_it_replaced(tmp_path: Path) -> None:
    """A new state folder (a replaced desk unit, a re-imaged card) starts from the wall clock, so its
    boots lie above the old unit's, which the host would otherwise take for stale ones."""
    old = tmp_path / "old"
    month_ago = time.time() - 30 * 86400
    for _ in range(5000):  # the old unit, installed a month ago, restarted 5,000 times since
        next_boot(old, lambda: month_ago)
    new = next_boot(tmp_path / "new")  # its replacement, now
    assert read_boot(old) == int(month_ago) + 4999 < new


def test_an_unset_clock_starts_the_counter_at_1(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    assert next_boot(tmp_path, lambda: 42.0) == 1  # a Pi without RTC before NTP: 1970
    assert "wall clock is not set" in caplog.text
    assert next_boot(tmp_path, lambda: 42.0) == 2


def _boot_in_child(state: str) -> None:
    next_boot(Path(state))


def test_boot_counter_persists_for_the_next_process(tmp_path: Path) -> None:
    first = next_boot(tmp_path)
    ctx = multiprocessing.get_context("spawn")
    p = ctx.Process(target=_boot_in_child, args=(str(tmp_path),))
    p.start()
    p.join(30)
    assert p.exitcode == 0
    assert next_boot(tmp_path) == first + 2


@pytest.mark.parametrize("content", ["", "seven\n", "-3\n", "1e5\n", "\x00\x00"])
def test_a_corrupt_counter_is_a_clear_error_not_a_reset(tmp_path: Path, content: str) -> None:
    (tmp_path / "boot").write_text(content)
    with pytest.raises(BootCounterError, match=r"boot counter .*boot is corrupt"):
        next_boot(tmp_path)
    assert (tmp_path / "boot").read_text() == content  # left for a person to look at


def test_unwritable_state_folder(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("")
    with pytest.raises(BootCounterError, match="cannot create the state folder"):
        next_boot(blocker / "state")
