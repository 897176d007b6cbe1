"""Host config: defaults, overrides, and errors that name the field."""

from __future__ import annotations

from pathlib import Path

import pytest

from host_agent.clock import ScaledClock
from host_agent.config import DEFAULT_RULES, load_config
from host_agent.errors import ConfigError, UsageError
from host_agent.timeflags import parse_duration

FULL = """
[broker]
url = "mqtts://broker.example:8883"
username = "host"
password = "secret"
protocol = "5"
shared_group = "hosts"
tls_ca = "/etc/ca.pem"

[host]
sites = ["site1", "site2"]
db = "data/host.db"
retention_days = 30

[dashboard]
bind = "0.0.0.0"
port = 9000
token = "0123456789abcdef"

[breaks]
allowed_s = 600
sites = { site2 = 1200 }

[rules.posture]
threshold = 240
keep_firing_for_s = 0

[rules.noisy-floor]
enabled = false
"""


def test_full_config_loads(tmp_path: Path) -> None:
    p = tmp_path / "host.toml"
    p.write_text(FULL)
    c = load_config(p)
    assert c.broker.tls and c.broker.port == 8883 and c.broker.host == "broker.example"
    assert c.broker.shared_group == "hosts" and c.broker.protocol == "5"
    assert c.sites == ("site1", "site2")
    assert c.db == str(tmp_path / "data/host.db")  # relative to the config file
    assert c.dashboard.port == 9000 and c.dashboard.token == "0123456789abcdef"
    assert c.allowed_break("site1") == 600 and c.allowed_break("site2") == 1200
    assert c.rules["posture"].threshold == 240 and c.rules["posture"].window_s == 600
    assert not c.rules["noisy-floor"].enabled
    assert c.rules["volume"] == DEFAULT_RULES["volume"]


def test_empty_config_gives_defaults(tmp_path: Path) -> None:
    p = tmp_path / "host.toml"
    p.write_text("")
    c = load_config(p)
    assert c.broker.url == "mqtt://127.0.0.1:1883" and c.broker.protocol == "3.1.1"
    assert c.dashboard.bind == "127.0.0.1" and c.dashboard.token is None
    assert c.allowed_break("any") == 900 and c.retention_days == 90


@pytest.mark.parametrize(("text", "field"), [
    ('[broker]\nurl = "http://x"', "broker.url"),
    ('[broker]\nprotocol = "4"', "broker.protocol"),
    ('[broker]\nshared_group = "g"', "broker.shared_group"),
    ('[broker]\nport = 1', "broker.port"),
    ('[host]\nsites = ["Site 1"]', "host.sites[0]"),
    ('[host]\nretention_days = "long"', "host.retention_days"),
    ('[dashboard]\nport = 70000', "dashboard.port"),
    ('[dashboard]\ntoken = "short"', "dashboard.token"),
    ('[dashboard]\nviewer_token = "short"', "dashboard.viewer_token"),
    ('[dashboard]\nmax_body_bytes = 100', "dashboard.max_body_bytes"),
    ('[dashboard]\nmax_body_bytes = "64k"', "dashboard.max_body_bytes"),
    ('[dashboard]\ntls_cert = 5', "dashboard.tls_cert"),
    ('[dashboard]\ntls_key = "missing.key"', "dashboard.tls_key"),
    ('[breaks]\nsites = { site2 = -5 }', "breaks.sites.site2"),
    ('[rules.posture]\nfor_s = "5m"', "rules.posture.for_s"),
    ('[rules.posture]\nseverity = "panic"', "rules.posture.severity"),
    ('[rules.volume]\nwindow_s = 0', "rules.volume.window_s"),
    ('[rules.unknown]\nfor_s = 1', "rules.unknown"),
    ("[nonsense]", "nonsense"),
])
def test_errors_name_the_field(tmp_path: Path, text: str, field: str) -> None:
    p = tmp_path / "host.toml"
    p.write_text(text)
    with pytest.raises(ConfigError, match=field.replace("[", r"\[").replace("]", r"\]")):
        load_config(p)


def test_unreadable_and_invalid_toml(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="cannot read config"):
        load_config(tmp_path / "missing.toml")
    p = tmp_path / "bad.toml"
    p.write_text("[broker\nurl=")
    with pytest.raises(ConfigError, match="not valid TOML"):
        load_config(p)


@pytest.mark.parametrize(("text", "seconds"), [("90", 90), ("90s", 90), ("30m", 1800), ("1h30m", 5400),
                                                ("2d", 172800), ("1.5h", 5400)])
def test_durations(text: str, seconds: float) -> None:
    assert parse_duration(text) == seconds


@pytest.mark.parametrize("text", ["", "m", "30x", "1h 30m", "-5m"])
def test_bad_durations(text: str) -> None:
    with pytest.raises(UsageError, match="bad duration"):
        parse_duration(text)


def test_scaled_clock_agrees_across_processes_with_the_same_origin() -> None:
    origin = ScaledClock(1.0).now_ms() - 10_000  # origin 10 s ago
    a, b = ScaledClock(60.0, origin), ScaledClock(60.0, origin)
    ta, tb = a.now_ms(), b.now_ms()
    assert abs(ta - tb) < 60 * 50  # two reads within 50 ms of wall time
    assert ta - origin >= 60 * 10_000  # 10 s of wall time is 10 min on the clock


@pytest.mark.parametrize(("value", "why"), [
    ("volume", "must be a list"), (["nope"], "'nope' is not another desk rule"),
    (["mic-position"], "'mic-position' is not another desk rule"), (["desk-offline"], "is not another desk rule"),
])
def test_rule_inhibits_is_validated(value: object, why: str) -> None:
    from host_agent.config import parse_config

    with pytest.raises(ConfigError, match=why):
        parse_config({"rules": {"mic-position": {"inhibits": value}}})


def test_dashboard_security_settings(tmp_path: Path) -> None:
    (tmp_path / "tls").mkdir()
    (tmp_path / "tls" / "dash.crt").write_text("cert")
    (tmp_path / "tls" / "dash.key").write_text("key")
    p = tmp_path / "host.toml"
    p.write_text('[dashboard]\nviewer_token = "look-but-do-not-touch"\nmax_body_bytes = 4096\n'
                 'tls_cert = "tls/dash.crt"\ntls_key = "tls/dash.key"\n')
    d = load_config(p).dashboard
    assert d.viewer_token == "look-but-do-not-touch" and d.max_body_bytes == 4096
    assert d.tls and d.tls_cert == str(tmp_path / "tls/dash.crt") and d.tls_key == str(tmp_path / "tls/dash.key")
    empty = tmp_path / "empty.toml"
    empty.write_text("")
    d = load_config(empty).dashboard
    assert not d.tls and d.viewer_token is None and d.max_body_bytes == 64 * 1024


@pytest.mark.parametrize(("text", "words"), [
    ('tls_cert = "c.pem"', "dashboard.tls_key is missing: dashboard.tls_cert ({d}/c.pem) needs it for HTTPS"),
    ('tls_key = "k.pem"', "dashboard.tls_cert is missing: dashboard.tls_key ({d}/k.pem) needs it for HTTPS"),
    ('tls_cert = "c.pem"\ntls_key = "nope.pem"', "dashboard.tls_key: cannot read {d}/nope.pem: No such file or directory"),
    ('tls_cert = "sub"\ntls_key = "k.pem"', "dashboard.tls_cert: cannot read {d}/sub: Is a directory"),
])
def test_dashboard_tls_errors_name_the_field_and_the_file(tmp_path: Path, text: str, words: str) -> None:
    (tmp_path / "c.pem").write_text("cert")
    (tmp_path / "k.pem").write_text("key")
    (tmp_path / "sub").mkdir()
    p = tmp_path / "host.toml"
    p.write_text("[dashboard]\n" + text + "\n")
    with pytest.raises(ConfigError) as err:
        load_config(p)
    assert words.format(d=tmp_path) in str(err.value)
