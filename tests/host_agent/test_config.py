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
    # NaN passes every range comparison: refused by name, not a traceback nor a rule that never fires
    ('[dashboard]\nport = nan', "dashboard.port"),
    ('[dashboard]\nmax_body_bytes = nan', "dashboard.max_body_bytes"),
    ('[rules.slow-answer]\nthreshold = nan', "rules.slow-answer.threshold"),
    ('[rules.posture]\nwindow_s = nan', "rules.posture.window_s"),
    ('[host]\nretention_days = nan', "host.retention_days"),
    ('[breaks]\nsites = { site2 = nan }', "breaks.sites.site2"),
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


# --- shifts and receivers (issue 16, supervisors 5 and 6) --------------------------------------------

SHIFTS_AND_RECEIVERS = """
[host]
sites = ["site1", "site2"]

[shifts]
tz = "Europe/Berlin"                 # host-wide default
grace_s = 600

[shifts.site1]
mon-fri = "08:00-17:00"
sat = ["09:00-12:00", "12:30-14:00"]
severity = "warning"

[shifts.site2]
tz = "Asia/Shanghai"
sun-thu = "22:00-06:00"
alert_on_offline = false

[[receivers.webhook]]
name = "pager"
url = "https://alerts.example:9443/hook?team=floor"
bearer_token = "s3cret"
ca_file = "ca.pem"
timeout_s = 2.5
max_retry_s = 120

[[receivers.webhook]]
url = "http://127.0.0.1:5001/"
username = "host"
password = "pw"
"""


def test_shifts_and_receivers_load(tmp_path: Path) -> None:
    from host_agent.shifts import Span

    (tmp_path / "ca.pem").write_text("ca")
    p = tmp_path / "host.toml"
    p.write_text(SHIFTS_AND_RECEIVERS)
    c = load_config(p)
    s1, s2 = c.shifts["site1"], c.shifts["site2"]
    assert s1.tz == "Europe/Berlin" and s1.grace_s == 600 and s1.severity is not None and s1.severity.value == "warning"
    assert s1.spans[:1] == (Span(0, 480, 1020),) and len(s1.spans) == 7  # 5 weekdays + 2 on saturday
    assert s1.alert_on_offline
    assert s2.tz == "Asia/Shanghai" and s2.severity is None and not s2.alert_on_offline
    assert [sp.day for sp in s2.spans] == [0, 1, 2, 3, 6] and all(sp.crosses_midnight for sp in s2.spans)
    pager, plain = c.webhooks
    assert pager.name == "pager" and pager.bearer_token == "s3cret" and pager.ca_file == str(tmp_path / "ca.pem")
    assert pager.timeout_s == 2.5 and pager.max_retry_s == 120 and pager.queue_size == 1000
    assert plain.name == "webhook-2" and plain.username == "host" and plain.password == "pw"
    assert plain.timeout_s == 5 and plain.max_retry_s == 300 and plain.send_resolved
    empty = tmp_path / "empty.toml"
    empty.write_text("")
    assert load_config(empty).shifts == {} and load_config(empty).webhooks == ()


H = "[shifts.site1]\n"
W = "[[receivers.webhook]]\n"


@pytest.mark.parametrize(("text", "where"), [
    # every message names the file and line, then the field
    ('[rules.posture]\nfor_s = "5m"', "host.toml:2: rules.posture.for_s must be a number"),
    ('[host]\nsites = ["site1",\n  "Site 2"]', "host.toml:2: host.sites[1] 'Site 2' is not a valid id"),
    (H + 'mon-fri = "8-17"', "host.toml:2: shifts.site1.mon-fri: '8' is not a time HH:MM"),
    (H + 'mon-fri = "08:00-25:00"', "host.toml:2: shifts.site1.mon-fri: '25:00' is not a time between"),
    (H + 'mon = "17:00-17:00"', "host.toml:2: shifts.site1.mon: '17:00-17:00' is empty"),
    (H + 'monday = "08:00-17:00"', "host.toml:2: shifts.site1.monday is not a day or a setting"),
    (H + 'mon = 8', "host.toml:2: shifts.site1.mon must be hours such as"),
    (H + 'mon = ["08:00-12:00", 13]', "host.toml:2: shifts.site1.mon[1] must be hours"),
    (H + 'mon = []', "host.toml:2: shifts.site1.mon must be hours"),
    (H + 'mon-fri = "08:00-17:00"\n\nmon = "18:00-20:00"',
     "host.toml:4: shifts.site1.mon: mon is also given by shifts.site1.mon-fri"),
    (H + 'mon = ["08:00-12:00", "11:00-17:00"]', "host.toml:1: shifts.site1: mon 08:00-12:00 and mon 11:00-17:00 overlap"),
    (H + 'sun = "22:00-06:00"\nmon = "05:00-09:00"', "host.toml:1: shifts.site1: sun 22:00-06:00 and mon 05:00-09:00 overlap"),
    ('[shifts]\n\ntz = "Mars/Olympus"\n' + H + 'mon = "08:00-17:00"',
     "host.toml:3: shifts.tz 'Mars/Olympus' is not a known time zone"),
    (H + 'tz = "../etc/passwd"\nmon = "08:00-17:00"', "host.toml:2: shifts.site1.tz '../etc/passwd' is not a known"),
    (H + 'mon = "08:00-17:00"\nseverity = "page"', "host.toml:3: shifts.site1.severity must be one of info"),
    (H + 'mon = "08:00-17:00"\ngrace_s = -1', "host.toml:3: shifts.site1.grace_s = -1 is out of range"),
    (H + 'mon = "08:00-17:00"\nalert_on_offline = "yes"', "host.toml:3: shifts.site1.alert_on_offline must be true"),
    (H + 'tz = "UTC"', "host.toml:1: shifts.site1 has no hours"),
    ('[host]\nsites = ["site1"]\n[shifts.site9]\nmon = "08:00-17:00"', "host.toml:3: shifts.site9: site 'site9' is not in"),
    ('[shifts]\nsite1 = "08:00-17:00"', "host.toml:2: shifts.site1 must be a site table"),
    ('[shifts."Site 1"]\nmon = "08:00-17:00"', "host.toml:1: shifts.Site 1 'Site 1' is not a valid id"),
    (W + 'url = "ftp://x/"', "host.toml:2: receivers.webhook[0].url 'ftp://x/' must look like http"),
    (W + 'url = "http://x:99999/"', "host.toml:2: receivers.webhook[0].url"),
    (W + 'timeout_s = 5', "host.toml:1: receivers.webhook[0].url is missing"),
    (W + 'url = "http://a/"\n' + W + 'url = "http://b/"\ntimeout_s = 0',
     "host.toml:5: receivers.webhook[1].timeout_s = 0 is out of range"),
    (W + 'url = "http://a/"\nretries = 3', "host.toml:3: receivers.webhook[0].retries is not a known setting"),
    (W + 'url = "http://a/"\nbearer_token = "t"\nusername = "u"\npassword = "p"',
     "host.toml:3: receivers.webhook[0].bearer_token and username/password exclude each other"),
    (W + 'url = "http://a/"\nusername = "u"', "host.toml:3: receivers.webhook[0].password is missing"),
    (W + 'url = "http://a/"\nca_file = "ca.pem"', "host.toml:3: receivers.webhook[0].ca_file needs an https:// url"),
    (W + 'url = "https://a/"\nca_file = "nope.pem"', "host.toml:3: receivers.webhook[0].ca_file: cannot read"),
    (W + 'url = "http://a/"\nname = "x"\n' + W + 'url = "http://b/"\nname = "x"',
     "host.toml:6: receivers.webhook[1].name 'x' is used twice"),
    ('[receivers]\nwebhook = "http://a/"', "host.toml:2: receivers.webhook must be tables"),
    ('[receivers.email]\nto = "a@b"', "host.toml:1: receivers.email is not a known setting"),
])
def test_shift_and_receiver_errors_name_the_line_and_the_field(tmp_path: Path, text: str, where: str) -> None:
    p = tmp_path / "host.toml"
    p.write_text(text)
    with pytest.raises(ConfigError) as err:
        load_config(p)
    assert where in str(err.value), str(err.value)
    assert str(err.value).startswith(str(p))


def test_line_of_follows_tables_arrays_of_tables_and_quoted_keys() -> None:
    from host_agent.config_checks import line_of

    text = ('# c\n[broker]\nurl = "x"\n[rules."mic-position"]\ninhibits = []\n[[receivers.webhook]]\nurl = "a"\n'
            '[[receivers.webhook]]\n  url = "b"  # two\n[breaks]\nsites = { site2 = 5 }\n')
    assert line_of(text, "broker.url") == 3
    assert line_of(text, "rules.mic-position.inhibits") == 5
    assert line_of(text, "receivers.webhook[1].url") == 9
    assert line_of(text, "receivers.webhook[1].timeout_s") == 8  # a default: its table
    assert line_of(text, "breaks.sites.site2") == 11
    assert line_of(text, "host.db") is None


def test_the_commented_shift_and_webhook_examples_load_when_uncommented(tmp_path: Path) -> None:
    example = (Path(__file__).resolve().parents[2] / "host_agent" / "host.example.toml").read_text(encoding="utf-8")
    tail = example[example.index("# [shifts]"):]
    text = "\n".join(line[2:] if line.startswith("# ") and "=" in line or line.startswith("# [") else line
                     for line in tail.splitlines())
    (tmp_path / "ca.pem").write_text("ca")
    p = tmp_path / "host.toml"
    p.write_text(text.replace("/etc/headset-coach/ca.pem", "ca.pem"))
    c = load_config(p)
    assert set(c.shifts) == {"site1", "site2"} and c.shifts["site2"].tz == "Asia/Shanghai"
    assert c.shifts["site1"].tz == "Europe/Berlin" and c.shifts["site1"].grace_s == 300
    (hook,) = c.webhooks
    assert hook.name == "pager" and hook.url.startswith("https://") and hook.max_retry_s == 300


# --- the broker's TLS files: the desk's names, the old ones as aliases, the desk's rule -----------------

def test_broker_tls_files_have_the_desks_names_and_the_old_tls_names_still_read(tmp_path: Path) -> None:
    from host_agent.config import parse_config

    new = parse_config({"broker": {"url": "mqtts://b:8883", "ca_cert": "/ca.pem", "client_cert": "/h.crt",
                                   "client_key": "/h.key"}}).broker
    old = parse_config({"broker": {"url": "mqtts://b:8883", "tls_ca": "/ca.pem", "tls_cert": "/h.crt",
                                   "tls_key": "/h.key"}}).broker
    assert new == old
    assert (new.ca_cert, new.client_cert, new.client_key) == ("/ca.pem", "/h.crt", "/h.key")


def test_a_tls_file_given_under_both_names_or_a_lone_client_cert_is_refused_naming_the_field(tmp_path: Path) -> None:
    both = tmp_path / "both.toml"
    both.write_text('[broker]\nurl = "mqtts://b:8883"\nca_cert = "/a.pem"\ntls_ca = "/b.pem"\n')
    with pytest.raises(ConfigError, match=r"both.toml:4: broker.tls_ca is the old name of broker.ca_cert") as e:
        load_config(both)
    assert (e.value.field, e.value.line) == ("broker.tls_ca", 4)
    lone = tmp_path / "lone.toml"
    lone.write_text('[broker]\nurl = "mqtts://b:8883"\ntls_cert = "/h.crt"\n')
    with pytest.raises(ConfigError, match=r"broker.client_key is missing"):
        load_config(lone)


def test_a_config_error_carries_the_field_and_the_line(tmp_path: Path) -> None:
    p = tmp_path / "host.toml"
    p.write_text('[broker]\nurl = "mqtt://b:1883"\n\n[host]\nretention_days = "x"\n')
    with pytest.raises(ConfigError) as e:
        load_config(p)
    assert (e.value.field, e.value.line) == ("host.retention_days", 5)
    assert str(e.value).startswith(f"{p}:5: host.retention_days must be a number")
