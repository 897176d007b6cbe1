"""Random and garbled config for the desk agent and the host: always a clean error, never a traceback.

- the agent's ``agent.toml`` (``device.config.agent.load_config``) and the host's ``host.toml``
  (``host_agent.config.load_config``): random bytes, garbled TOML, and well-formed TOML whose tables
  hold random keys and values of every type;
- remote ``config`` payloads (``device.config.agent.apply_remote``): random JSON-shaped tables.

Each either loads or raises the module's ConfigError (AgentError / HostError) with a message.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, example, given, seed, settings
from hypothesis import strategies as st

from device.config.agent import TABLES, AgentConfig, apply_remote
from device.config.agent import load_config as load_agent
from device.errors import ConfigError
from host_agent.config import load_config as load_host
from host_agent.errors import HostError

FUZZ = settings(max_examples=400, deadline=None, database=None,
                suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
AGENT_KEYS = sorted({k for keys in TABLES.values() if keys for k in keys} | {
    "volume_band_db", "pace_min_spm", "pace_max_spm", "mic_min_cm", "mic_max_cm", "priority", "rgb", "bar",
    "posture", "button", "url", "username", "password", "ca_cert", "client_cert", "client_key", "keepalive_s"})
HOST_TABLES = ["broker", "host", "dashboard", "breaks", "rules", "rules.posture", "rules.desk-offline",
               "rules.volume", "breaks.sites"]
HOST_KEYS = ["url", "username", "password", "protocol", "client_id", "ca_cert", "client_cert", "client_key", "tls_ca", "tls_cert", "tls_key",
             "tls_insecure", "shared_group", "keepalive_s", "sites", "db", "retention_days", "stale_after_s",
             "enabled", "bind", "port", "token", "viewer_token", "max_body_bytes", "allowed_s", "for_s",
             "keep_firing_for_s", "severity", "window_s", "threshold", "inhibits", "site1"]

scalars = (st.none() | st.booleans() | st.integers() | st.integers(-(2**600), 2**600) | st.floats()
           | st.text(max_size=30) | st.sampled_from(["~nosuchuser/x", "~", "a\x00b", "/dev/null", ".", "..", "/",
                                                     "file:", "file:/dev/null", "alsa:", "mqtt://", "mqtt://[::1",
                                                     "mqtts://h:0", "mqtt://h:99999", "none", "json", "info", "-1"]))
json_like = st.recursive(scalars, lambda inner: st.lists(inner, max_size=4)
                         | st.dictionaries(st.text(max_size=8) | st.sampled_from(AGENT_KEYS), inner, max_size=4),
                         max_leaves=12)


def deep(depth: int, leaf: Any = 1) -> Any:
    out: Any = leaf
    for i in range(depth):
        out = [out] if i % 2 else {"a": out}
    return out


# --- a small TOML writer (the generated text must be TOML for the validation to be reached) --------------


def toml_value(v: Any) -> str:
    if v is None:
        return '""'  # TOML has no null
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, int):
        return str(v)
    if isinstance(v, float):
        return "nan" if math.isnan(v) else ("inf" if v > 0 else "-inf") if math.isinf(v) else repr(v)
    if isinstance(v, str):
        return json.dumps(v)
    if isinstance(v, list):
        return "[" + ", ".join(toml_value(x) for x in v) + "]"
    if isinstance(v, dict):
        return "{" + ", ".join(f"{json.dumps(str(k))} = {toml_value(x)}" for k, x in v.items()) + "}"
    raise TypeError(type(v))


def toml_text(tables: dict[str, dict[str, Any]]) -> str:
    lines: list[str] = []
    for name, table in tables.items():
        lines.append(f"[{name}]")
        lines.extend(f"{json.dumps(k)} = {toml_value(v)}" for k, v in table.items())
    return "\n".join(lines) + "\n"


def agent_tables() -> st.SearchStrategy[dict[str, dict[str, Any]]]:
    table_names = st.sampled_from(sorted(TABLES)) | st.text(alphabet="abcdefghijklmnopqrstuvwxyz_", min_size=1,
                                                           max_size=8)
    keys = st.sampled_from(AGENT_KEYS) | st.text(max_size=8)
    return st.dictionaries(table_names, st.dictionaries(keys, json_like, max_size=5), max_size=6).map(
        lambda t: {"desk": {"site": "site1", "desk": "d01"}, **t} if "desk" not in t else t)


def host_tables() -> st.SearchStrategy[dict[str, dict[str, Any]]]:
    return st.dictionaries(st.sampled_from(HOST_TABLES) | st.text(alphabet="abcdefghij.", min_size=1, max_size=6),
                           st.dictionaries(st.sampled_from(HOST_KEYS) | st.text(max_size=6), json_like, max_size=5),
                           max_size=5)


@st.composite
def garbled_text(draw: st.DrawFn, tables: st.SearchStrategy[dict[str, dict[str, Any]]], deep: bool = True) -> bytes:
    """Well-formed TOML, then cut, with bytes flipped or inserted, or random bytes altogether
    (``deep``: or with an array nested up to 20,000 deep)."""
    raw = toml_text(draw(tables)).encode()
    how = draw(st.sampled_from(["as-is", "cut", "flip", "insert", "random", "bom"] + ["deep"] * deep))
    if how == "cut" and raw:
        raw = raw[: draw(st.integers(0, len(raw) - 1))]
    elif how == "flip" and raw:
        i = draw(st.integers(0, len(raw) - 1))
        raw = raw[:i] + bytes([draw(st.integers(0, 255))]) + raw[i + 1:]
    elif how == "insert":
        i = draw(st.integers(0, len(raw)))
        raw = raw[:i] + draw(st.binary(min_size=1, max_size=12)) + raw[i:]
    elif how == "random":
        raw = draw(st.binary(max_size=300))
    elif how == "deep":
        n = draw(st.sampled_from([50, 400, 2000, 20000]))
        raw += b"x = " + b"[" * n + b"]" * n + b"\n"
    elif how == "bom":
        raw = b"\xef\xbb\xbf" + raw
    return raw


def clean(fn: Callable[[], Any], error: type[Exception]) -> None:
    try:
        fn()
    except error as exc:
        assert str(exc).strip(), f"{type(exc).__name__} without a message"


@pytest.fixture(scope="module")
def base(tmp_path_factory: pytest.TempPathFactory) -> AgentConfig:
    d = tmp_path_factory.mktemp("agent")
    (d / "agent.toml").write_text('[desk]\nsite = "site1"\ndesk = "d01"\n[agent]\nstate_dir = "state"\n')
    return load_agent(d / "agent.toml")


# --- the agent's TOML -------------------------------------------------------------------------------------


@seed(13)
@FUZZ
@given(raw=garbled_text(agent_tables()))
@example(raw=b'[desk]\nsite = "site1"\ndesk = "d01"\n[agent]\nmetrics_interval_s = ' + str(10**400).encode() + b"\n")
@example(raw=b'[desk]\nsite = "site1"\ndesk = "d01"\n[agent]\nstate_dir = "~nosuchuser/state"\n')
@example(raw=b'[desk]\nsite = "site1"\ndesk = "d01"\n[cues]\npace_min_spm = ' + str(10**400).encode() + b"\n")
@example(raw=b"x = " + b"[" * 5000 + b"]" * 5000 + b"\n")
@example(raw=b"[desk]\nsite = \"\xff\"\n")
def test_agent_toml_loads_or_is_a_config_error(tmp_path: Path, raw: bytes) -> None:
    path = tmp_path / "agent.toml"
    path.write_bytes(raw)
    clean(lambda: load_agent(path), ConfigError)


@seed(14)
@FUZZ
@given(tables=agent_tables(), flags=st.dictionaries(st.sampled_from(["desk.site", "mqtt.url", "audio.source",
                                                                     "agent.log_level", "headset.port"]),
                                                    st.text(max_size=20), max_size=3))
def test_agent_toml_with_overrides_loads_or_is_a_config_error(tmp_path: Path, tables: dict[str, Any],
                                                              flags: dict[str, str]) -> None:
    path = tmp_path / "agent.toml"
    path.write_text(toml_text(tables))
    clean(lambda: load_agent(path, flags), ConfigError)


# --- the host's TOML (host_agent/config.py) --------------------------------------------------------------


@seed(15)
@FUZZ
@given(raw=garbled_text(host_tables(), deep=True))
@example(raw=b"[host]\nretention_days = " + str(10**400).encode() + b"\n")
def test_host_toml_loads_or_is_a_config_error(tmp_path: Path, raw: bytes) -> None:
    path = tmp_path / "host.toml"
    path.write_bytes(raw)
    clean(lambda: load_host(path), HostError)



@pytest.mark.parametrize("raw", [b"[host]\nsites = [\"\xff\"]\n", b"x = " + b"[" * 5000 + b"]" * 5000 + b"\n"],
                         ids=["not-utf8", "deep"])
def test_host_toml_that_is_not_utf8_or_too_deep_is_a_config_error(tmp_path: Path, raw: bytes) -> None:
    path = tmp_path / "host.toml"
    path.write_bytes(raw)
    with pytest.raises(HostError):
        load_host(path)


# --- remote config payloads ----------------------------------------------------------------------------


@seed(16)
@FUZZ
@given(remote=st.dictionaries(st.sampled_from(sorted(TABLES)) | st.text(max_size=8),
                              json_like | st.dictionaries(st.sampled_from(AGENT_KEYS) | st.text(max_size=6), json_like,
                                                          max_size=5), max_size=5) | json_like)
@example(remote={"agent": {"metrics_interval_s": 10**400}})
@example(remote={"cues": {"volume_band_db": 10**400}})
@example(remote={"posture": {"forward_deg": -(10**400)}})
@example(remote={"calibration": {"file": "~nosuchuser/cal.toml"}})
def test_remote_config_applies_or_is_a_config_error(base: AgentConfig, remote: Any) -> None:
    def apply() -> None:
        new = apply_remote(base, remote)
        assert isinstance(new, AgentConfig) and new.config_hash

    clean(apply, ConfigError)


@pytest.mark.parametrize("remote", [{"cues": deep(3000)}, {"x": deep(3000)}, {"desk": {"site": deep(3000)}},
                                    {"posture": {"forward_deg": deep(3000)}}],
                         ids=["cues", "unknown-table", "local-only", "value"])
def test_remote_config_nested_thousands_deep_is_a_config_error(base: AgentConfig, remote: dict[str, Any]) -> None:
    with pytest.raises(ConfigError, match=r"^config[.:]"):
        apply_remote(base, remote)
