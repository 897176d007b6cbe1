"""The host config (TOML): broker, sites, history, dashboard, alert rules, allowed breaks.

Every validation error raises :class:`ConfigError` naming the field, e.g. ``rules.posture.for_s``.
A minimal file::

    [broker]
    url = "mqtt://127.0.0.1:1883"       # mqtts:// for TLS
    [host]
    sites = ["site1"]
    db = "/var/lib/headset-coach/host.db"
    [dashboard]
    port = 8080
    token = "change-me"
    # viewer_token = "..."                # needed to read the page, /api/snapshot, /events, /metrics
    # tls_cert = "dashboard.crt"          # HTTPS (with tls_key), e.g. issued by the site CA
    [breaks]
    allowed_s = 900                       # 15 min
    sites = { site2 = 1200 }
    [rules.posture]
    threshold = 240                       # s slouched within window_s
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from host_agent.errors import ConfigError
from mqtt_schema import SchemaError, Severity, check_id


@dataclass(frozen=True)
class RuleSpec:
    """One alert rule's parameters. Durations in seconds; ``threshold`` in the rule's unit."""

    rule: str
    enabled: bool = True
    for_s: float = 0.0
    """The condition must hold this long before the alert fires (pending -> firing)."""
    keep_firing_for_s: float = 0.0
    """A firing alert stays firing this long after its condition clears."""
    severity: Severity = Severity.WARNING
    window_s: float = 0.0
    threshold: float = 0.0
    summary: str = ""
    inhibits: tuple[str, ...] = ()
    """Rules of the same desk that this rule mutes while it fires: one cause, one alert."""


DEFAULT_RULES: dict[str, RuleSpec] = {
    r.rule: r
    for r in (
        RuleSpec("volume", window_s=300, threshold=60, keep_firing_for_s=30,
                 summary="volume cue active for {value:.0f} s of speech in the last 5 min"),
        RuleSpec("pace", window_s=300, threshold=60, keep_firing_for_s=30,
                 summary="pace cue active for {value:.0f} s of speech in the last 5 min"),
        RuleSpec("mic-position", window_s=300, threshold=60, keep_firing_for_s=30, inhibits=("volume",),
                 summary="mic position cue active for {value:.0f} s of speech in the last 5 min"),
        RuleSpec("posture", window_s=600, threshold=300, keep_firing_for_s=30,
                 summary="slouched {value:.0f} s in the last 10 min"),
        RuleSpec("break-overrun", summary="headset off beyond the allowed break ([breaks] allowed_s)"),
        RuleSpec("desk-offline", for_s=30, severity=Severity.CRITICAL, summary="desk lost (no clean offline)"),
        RuleSpec("noisy-floor", for_s=600, threshold=-45.0, keep_firing_for_s=60, severity=Severity.INFO,
                 summary="site median noise floor {value:.1f} dBov"),
    )
}
"""The product's default rules (see shared/design/NORMS.md). ``break-overrun`` uses the
allowed break of ``[breaks]``; ``noisy-floor``'s threshold is the median noise floor (dBov) counted as high."""


@dataclass(frozen=True)
class BrokerConfig:
    url: str = "mqtt://127.0.0.1:1883"
    username: str | None = None
    password: str | None = None
    protocol: str = "3.1.1"
    """``3.1.1`` (default, works with amqtt) or ``5``."""
    client_id: str = ""
    keepalive_s: int = 30
    tls_ca: str | None = None
    tls_cert: str | None = None
    tls_key: str | None = None
    tls_insecure: bool = False
    shared_group: str | None = None
    """MQTT 5 only: read metrics/event/minute through ``$share/{group}/...`` (state stays ordinary)."""

    @property
    def host(self) -> str:
        return urlsplit(self.url).hostname or "127.0.0.1"

    @property
    def port(self) -> int:
        parts = urlsplit(self.url)
        return parts.port or (8883 if parts.scheme == "mqtts" else 1883)

    @property
    def tls(self) -> bool:
        return urlsplit(self.url).scheme == "mqtts"


DEFAULT_MAX_BODY_BYTES = 64 * 1024
"""The dashboard's default cap on a request body, in bytes (a silence request is about 100 bytes)."""


@dataclass(frozen=True)
class DashboardConfig:
    enabled: bool = True
    bind: str = "127.0.0.1"
    """Address to listen on. Anything but a loopback address without TLS is logged as a WARNING at start."""
    port: int = 8080
    """0 picks a free port."""
    token: str | None = None
    """Needed for actions (silence). Without one, actions are refused."""
    viewer_token: str | None = None
    """When set, reading the page, ``/api/snapshot``, ``/events`` and ``/metrics`` needs it (or ``token``):
    ``Authorization: Bearer <it>``, or HTTP basic auth with any user name and it as the password."""
    tls_cert: str | None = None
    """PEM certificate (chain) of the dashboard, e.g. issued by the site CA: serve HTTPS. Needs ``tls_key``."""
    tls_key: str | None = None
    """PEM private key (unencrypted) of ``tls_cert``."""
    max_body_bytes: int = DEFAULT_MAX_BODY_BYTES
    """Largest request body accepted, in bytes; a larger one gets 413 and the connection is closed."""

    @property
    def tls(self) -> bool:
        return self.tls_cert is not None


@dataclass(frozen=True)
class HostConfig:
    broker: BrokerConfig = field(default_factory=BrokerConfig)
    sites: tuple[str, ...] = ()
    """Sites to follow; empty means every site (``+``)."""
    db: str = "host.db"
    retention_days: float = 90.0
    stale_after_s: float = 10.0
    dashboard: DashboardConfig = field(default_factory=DashboardConfig)
    rules: dict[str, RuleSpec] = field(default_factory=lambda: dict(DEFAULT_RULES))
    allowed_break_s: float = 900.0
    allowed_break_by_site: dict[str, float] = field(default_factory=dict)

    def allowed_break(self, site: str) -> float:
        """Allowed break of ``site`` in seconds."""
        return self.allowed_break_by_site.get(site, self.allowed_break_s)

    def with_sites(self, sites: list[str] | tuple[str, ...]) -> HostConfig:
        for s in sites:
            _id(s, "--site")
        return replace(self, sites=tuple(sites))


# --- loading ----------------------------------------------------------------------------------------


def _id(value: object, name: str) -> str:
    if not isinstance(value, str):
        raise ConfigError(f"{name} must be a string id, not {value!r}")
    try:
        return check_id(value, name)
    except SchemaError:
        raise ConfigError(f"{name} {value!r} is not a valid id: it must match [a-z0-9-]{{1,32}}") from None


def _num(value: object, name: str, lo: float | None = None, hi: float | None = None) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ConfigError(f"{name} must be a number, not {value!r}")
    if (lo is not None and value < lo) or (hi is not None and value > hi):
        raise ConfigError(f"{name} = {value} is out of range [{lo}, {hi}]")
    return float(value)


def _str(value: object, name: str) -> str:
    if not isinstance(value, str):
        raise ConfigError(f"{name} must be a string, not {value!r}")
    return value


def _bool(value: object, name: str) -> bool:
    if not isinstance(value, bool):
        raise ConfigError(f"{name} must be true or false, not {value!r}")
    return value


def _table(value: object, name: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise ConfigError(f"{name} must be a table, not {value!r}")
    return value


def _no_unknown(table: dict[str, Any], known: set[str], prefix: str) -> None:
    for key in table:
        if key not in known:
            raise ConfigError(f"{prefix}{key} is not a known setting (known: {', '.join(sorted(known))})")


def _broker(t: dict[str, Any]) -> BrokerConfig:
    known = {f.name for f in fields(BrokerConfig)}
    _no_unknown(t, known, "broker.")
    kw: dict[str, Any] = {}
    if "url" in t:
        url = _str(t["url"], "broker.url")
        parts = urlsplit(url)
        if parts.scheme not in ("mqtt", "mqtts") or not parts.hostname:
            raise ConfigError(f"broker.url {url!r} must look like mqtt://host:port or mqtts://host:port")
        try:
            parts.port  # noqa: B018 - raises on a bad port
        except ValueError:
            raise ConfigError(f"broker.url {url!r} has an invalid port") from None
        kw["url"] = url
    for key in ("username", "password", "client_id", "tls_ca", "tls_cert", "tls_key"):
        if key in t:
            kw[key] = _str(t[key], f"broker.{key}")
    if "protocol" in t:
        proto = str(t["protocol"])
        if proto not in ("3.1.1", "5"):
            raise ConfigError(f"broker.protocol must be \"3.1.1\" or \"5\", not {t['protocol']!r}")
        kw["protocol"] = proto
    if "keepalive_s" in t:
        kw["keepalive_s"] = int(_num(t["keepalive_s"], "broker.keepalive_s", 5, 3600))
    if "tls_insecure" in t:
        kw["tls_insecure"] = _bool(t["tls_insecure"], "broker.tls_insecure")
    if "shared_group" in t:
        kw["shared_group"] = _id(t["shared_group"], "broker.shared_group")
    cfg = BrokerConfig(**kw)
    if cfg.shared_group and cfg.protocol != "5":
        raise ConfigError("broker.shared_group needs broker.protocol = \"5\"")
    return cfg


def _readable_file(value: object, name: str, base_dir: Path | None) -> str:
    """A file path that can be opened for reading; relative paths are relative to the config file."""
    p = Path(_str(value, name)).expanduser()
    if base_dir is not None and not p.is_absolute():
        p = base_dir / p
    try:
        with p.open("rb"):
            pass
    except OSError as exc:
        raise ConfigError(f"{name}: cannot read {p}: {exc.strerror or exc}") from None
    return str(p)


def _dashboard(t: dict[str, Any], base_dir: Path | None = None) -> DashboardConfig:
    _no_unknown(t, {f.name for f in fields(DashboardConfig)}, "dashboard.")
    kw: dict[str, Any] = {}
    if "enabled" in t:
        kw["enabled"] = _bool(t["enabled"], "dashboard.enabled")
    if "bind" in t:
        kw["bind"] = _str(t["bind"], "dashboard.bind")
    if "port" in t:
        kw["port"] = int(_num(t["port"], "dashboard.port", 0, 65535))
    for key in ("token", "viewer_token"):
        if key in t:
            tok = _str(t[key], f"dashboard.{key}")
            if len(tok) < 8:
                raise ConfigError(f"dashboard.{key} must be at least 8 characters")
            kw[key] = tok
    if "max_body_bytes" in t:
        kw["max_body_bytes"] = int(_num(t["max_body_bytes"], "dashboard.max_body_bytes", 1024, 16 * 1024 * 1024))
    for key in ("tls_cert", "tls_key"):
        if key in t:
            kw[key] = _readable_file(t[key], f"dashboard.{key}", base_dir)
    if ("tls_cert" in kw) != ("tls_key" in kw):
        have, missing = ("tls_cert", "tls_key") if "tls_cert" in kw else ("tls_key", "tls_cert")
        raise ConfigError(f"dashboard.{missing} is missing: dashboard.{have} ({kw[have]}) needs it for HTTPS")
    return DashboardConfig(**kw)


def _rule(name: str, t: dict[str, Any], base: RuleSpec) -> RuleSpec:
    p = f"rules.{name}."
    _no_unknown(t, {"enabled", "for_s", "keep_firing_for_s", "severity", "window_s", "threshold", "inhibits"}, p)
    kw: dict[str, Any] = {}
    if "enabled" in t:
        kw["enabled"] = _bool(t["enabled"], p + "enabled")
    for key in ("for_s", "keep_firing_for_s", "window_s"):
        if key in t:
            kw[key] = _num(t[key], p + key, 0, 7 * 86400)
    if "threshold" in t:
        kw["threshold"] = _num(t["threshold"], p + "threshold", -200, 86400)
    if "inhibits" in t:
        muted = t["inhibits"]
        if not isinstance(muted, list) or not all(isinstance(r, str) for r in muted):
            raise ConfigError(f"{p}inhibits must be a list of rule names")
        for r in muted:
            if r not in DEFAULT_RULES or r in (name, "desk-offline", "noisy-floor"):
                raise ConfigError(f"{p}inhibits: {r!r} is not another desk rule of this desk")
        kw["inhibits"] = tuple(muted)
    if "severity" in t:
        try:
            kw["severity"] = Severity(t["severity"])
        except ValueError:
            raise ConfigError(f"{p}severity must be one of info, warning, critical, not {t['severity']!r}") from None
    spec = replace(base, **kw)
    if name in ("volume", "pace", "mic-position", "posture") and spec.window_s <= 0:
        raise ConfigError(f"{p}window_s must be > 0")
    return spec


def parse_config(data: dict[str, Any], base_dir: Path | None = None) -> HostConfig:
    """Build a :class:`HostConfig` from a parsed TOML document."""
    _no_unknown(data, {"broker", "host", "dashboard", "rules", "breaks"}, "")
    kw: dict[str, Any] = {}
    if "broker" in data:
        kw["broker"] = _broker(_table(data["broker"], "broker"))
    if "dashboard" in data:
        kw["dashboard"] = _dashboard(_table(data["dashboard"], "dashboard"), base_dir)
    host = _table(data.get("host", {}), "host")
    _no_unknown(host, {"sites", "db", "retention_days", "stale_after_s"}, "host.")
    if "sites" in host:
        sites = host["sites"]
        if not isinstance(sites, list):
            raise ConfigError("host.sites must be a list of site ids")
        kw["sites"] = tuple(_id(s, f"host.sites[{i}]") for i, s in enumerate(sites))
    if "db" in host:
        db = _str(host["db"], "host.db")
        if base_dir is not None and db != ":memory:" and not Path(db).is_absolute():
            db = str(base_dir / db)
        kw["db"] = db
    if "retention_days" in host:
        kw["retention_days"] = _num(host["retention_days"], "host.retention_days", 1, 36500)
    if "stale_after_s" in host:
        kw["stale_after_s"] = _num(host["stale_after_s"], "host.stale_after_s", 1, 3600)
    breaks = _table(data.get("breaks", {}), "breaks")
    _no_unknown(breaks, {"allowed_s", "sites"}, "breaks.")
    if "allowed_s" in breaks:
        kw["allowed_break_s"] = _num(breaks["allowed_s"], "breaks.allowed_s", 0, 86400)
    if "sites" in breaks:
        by_site = _table(breaks["sites"], "breaks.sites")
        kw["allowed_break_by_site"] = {
            _id(s, "breaks.sites key"): _num(v, f"breaks.sites.{s}", 0, 86400) for s, v in by_site.items()
        }
    rules = dict(DEFAULT_RULES)
    for name, t in _table(data.get("rules", {}), "rules").items():
        if name not in DEFAULT_RULES:
            raise ConfigError(f"rules.{name} is not a known rule (known: {', '.join(DEFAULT_RULES)})")
        rules[name] = _rule(name, _table(t, f"rules.{name}"), DEFAULT_RULES[name])
    kw["rules"] = rules
    return HostConfig(**kw)


def load_config(path: str | Path) -> HostConfig:
    """Read and validate a host config file."""
    p = Path(path)
    try:
        text = p.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(f"cannot read config {p}: {exc.strerror or exc}") from None
    except UnicodeDecodeError as exc:
        raise ConfigError(f"{p} is not UTF-8 text (byte {exc.start}): save it as UTF-8") from None
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{p} is not valid TOML: {exc}") from None
    except RecursionError:
        raise ConfigError(f"{p} is not valid TOML: nested too deeply") from None
    try:
        return parse_config(data, base_dir=p.parent)
    except ConfigError as exc:
        raise ConfigError(f"{p}: {exc}") from None
