"""The host config (TOML): broker, sites, history, dashboard, alert rules, allowed breaks.

Every validation error raises :class:`ConfigError` naming the field, e.g. ``rules.posture.for_s``.
A minimal file::

    [broker]
    url = "mqtt://127.0.0.1:1883"       # mqtts:// for TLS
    # urls = ["mqtt://n1:1883", "mqtt://n2:1883", "mqtt://n3:1883"]   # a cluster: tried in order
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
    [shifts.site1]                        # desks expected online (desk-offline only fires inside)
    tz = "Europe/Berlin"
    mon-fri = "08:00-17:00"
    [[receivers.webhook]]                 # Alertmanager-format POST of each firing/resolved
    url = "https://alerts.example/hook"

An error of a value names its field and, from :func:`load_config`, the file and line
(``host.toml:12: shifts.site1.mon-fri ...``).
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from host_agent import config_checks as check
from host_agent.errors import ConfigError
from host_agent.shifts import (
    ShiftSchedule,
    parse_shifts,
)
from mqtt_schema import Severity
from mqtt_schema.broker import uses_tls


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
        RuleSpec("slow-answer", window_s=600, threshold=1, keep_firing_for_s=0,
                 summary="{value:.0f} call(s) answered after more than the allowed rings in the last 10 min"),
        RuleSpec("late-greeting", window_s=600, threshold=1, keep_firing_for_s=0,
                 summary="{value:.0f} call(s) greeted later than the allowed time in the last 10 min"),
        RuleSpec("monotone", window_s=600, threshold=60, keep_firing_for_s=30,
                 summary="monotone intonation for {value:.0f} s of speech in the last 10 min"),
        RuleSpec("noisy-floor", for_s=600, threshold=-45.0, keep_firing_for_s=60, severity=Severity.INFO,
                 summary="site median noise floor {value:.1f} dBov"),
    )
}
"""The product's default rules (see shared/design/NORMS.md). ``break-overrun`` uses the
allowed break of ``[breaks]``; ``noisy-floor``'s threshold is the median noise floor (dBov) counted as high.
``slow-answer`` and ``late-greeting`` count ``call`` summaries with ``answer_ok`` / ``greeting_ok`` false
within ``window_s`` and are active from ``threshold`` calls on (at least 1); ``monotone`` counts own-speech
seconds with the desk's monotone cue on (live metrics; ``minute.monotone_s`` after a restart) and is active
above ``threshold`` s. Windows reach back 10 min at most."""
WINDOW_RULES = ("volume", "pace", "mic-position", "posture", "slow-answer", "late-greeting", "monotone")
"""Desk rules that total a window (``window_s`` > 0 required; the windows keep 10 min)."""
COUNT_RULES = ("slow-answer", "late-greeting")
"""Window rules that count calls (``threshold``: calls, at least 1)."""


@dataclass(frozen=True)
class BrokerConfig:
    url: str = "mqtt://127.0.0.1:1883"
    username: str | None = None
    password: str | None = None
    protocol: str = "3.1.1"
    """``3.1.1`` (default, works with amqtt) or ``5``."""
    client_id: str = ""
    keepalive_s: int = 30
    ca_cert: str | None = None
    """The CA certificate (PEM) the broker's certificate is checked against; read as ``tls_ca`` too."""
    client_cert: str | None = None
    """The host's client certificate (PEM), with ``client_key``; read as ``tls_cert`` too."""
    client_key: str | None = None
    """The private key of ``client_cert``; read as ``tls_key`` too."""
    tls_insecure: bool = False
    shared_group: str | None = None
    """MQTT 5 only: read metrics/event/minute through ``$share/{group}/...`` (state stays ordinary)."""
    urls: tuple[str, ...] = ()
    """The nodes of a clustered broker, tried in this order: the first connect goes to ``urls[0]``, every
    later attempt (after a failed connect or a lost connection) to the next one, with the reconnect
    backoff in between. Empty: ``url`` alone. With ``urls``, ``url`` is ``urls[0]``."""

    @property
    def broker_urls(self) -> tuple[str, ...]:
        """Every broker to try, in order (``urls``, or ``url`` alone)."""
        return self.urls or (self.url,)

    def starting_at(self, url: str | None) -> BrokerConfig:
        """This config with ``urls`` rotated to start at ``url`` (unchanged when it is not one of them)."""
        urls = self.broker_urls
        if url is None or url not in urls or len(urls) == 1:
            return self
        i = urls.index(url)
        return replace(self, url=url, urls=urls[i:] + urls[:i])

    @staticmethod
    def endpoint(url: str) -> tuple[str, int]:
        """(host, port) of one broker url (1883, or 8883 for ``mqtts``, when it names no port)."""
        return check.endpoint(url)

    @property
    def host(self) -> str:
        return self.endpoint(self.url)[0]

    @property
    def port(self) -> int:
        return self.endpoint(self.url)[1]

    @property
    def tls(self) -> bool:
        """TLS to the broker: an ``mqtts://`` url, or a CA certificate given (the desk's rule too)."""
        return uses_tls(self.url, self.ca_cert)


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
class WebhookConfig:
    """One ``[[receivers.webhook]]``: an Alertmanager-format POST of every firing/resolved alert."""

    url: str
    name: str = "webhook"
    """The ``receiver`` of the payload and the ``receiver`` label of the metrics."""
    timeout_s: float = 5.0
    """Per attempt: connect and answer."""
    max_retry_s: float = 300.0
    """Give up on a notification (counted dropped) this long after it was queued."""
    backoff_s: float = 0.5
    """First retry delay; it doubles after each failure, up to ``max_backoff_s``."""
    max_backoff_s: float = 30.0
    queue_size: int = 1000
    """Notifications waiting for delivery; when full, new ones are dropped (counted)."""
    bearer_token: str | None = None
    username: str | None = None
    password: str | None = None
    """HTTP basic auth (with ``username``); exclusive with ``bearer_token``."""
    ca_file: str | None = None
    """PEM CA bundle to verify an ``https://`` receiver (default: the system's)."""
    send_resolved: bool = True


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
    shifts: dict[str, ShiftSchedule] = field(default_factory=dict)
    """Per site, when desks are expected online (``desk-offline`` only fires inside a shift)."""
    webhooks: tuple[WebhookConfig, ...] = ()

    def allowed_break(self, site: str) -> float:
        """Allowed break of ``site`` in seconds."""
        return self.allowed_break_by_site.get(site, self.allowed_break_s)

    def with_sites(self, sites: list[str] | tuple[str, ...]) -> HostConfig:
        for s in sites:
            check.ident(s, "--site")
        return replace(self, sites=tuple(sites))


# --- loading ----------------------------------------------------------------------------------------


TLS_FILES = ("ca_cert", "client_cert", "client_key")
"""The broker TLS files, named as on the desk (``[mqtt]`` of agent.toml)."""
TLS_ALIASES = {"tls_ca": "ca_cert", "tls_cert": "client_cert", "tls_key": "client_key"}
"""The old names of the TLS files in ``[broker]``, still read."""


def _broker(t: dict[str, Any]) -> BrokerConfig:
    known = {f.name for f in fields(BrokerConfig)} | set(TLS_ALIASES)
    check.no_unknown(t, known, "broker.")
    kw: dict[str, Any] = {}
    if "url" in t:
        kw["url"] = check.broker_url(t["url"], "broker.url")
    if "urls" in t:
        kw["urls"] = check.broker_urls(t["urls"])
        if "url" in kw and kw["url"] not in kw["urls"]:
            raise ConfigError(f"broker.url {kw['url']!r} is not one of broker.urls; set only "
                                   "broker.urls (they are tried in their order)", field="broker.url")
        kw["url"] = kw["urls"][0]
    for key in ("username", "password", "client_id", *TLS_FILES):
        if key in t:
            kw[key] = check.string(t[key], f"broker.{key}")
    for old, key in TLS_ALIASES.items():
        if old in t:
            if key in t:
                raise ConfigError(f"broker.{old} is the old name of broker.{key}: set only broker.{key}",
                                  field=f"broker.{old}")
            kw[key] = check.string(t[old], f"broker.{old}")
    if ("client_cert" in kw) != ("client_key" in kw):
        have, missing = ("client_cert", "client_key") if "client_cert" in kw else ("client_key", "client_cert")
        raise ConfigError(f"broker.{missing} is missing: broker.{have} needs it", field=f"broker.{have}")
    if "protocol" in t:
        proto = str(t["protocol"])
        if proto not in ("3.1.1", "5"):
            raise ConfigError(f"broker.protocol must be \"3.1.1\" or \"5\", not {t['protocol']!r}")
        kw["protocol"] = proto
    if "keepalive_s" in t:
        kw["keepalive_s"] = int(check.number(t["keepalive_s"], "broker.keepalive_s", 5, 3600))
    if "tls_insecure" in t:
        kw["tls_insecure"] = check.boolean(t["tls_insecure"], "broker.tls_insecure")
    if "shared_group" in t:
        kw["shared_group"] = check.ident(t["shared_group"], "broker.shared_group")
    cfg = BrokerConfig(**kw)
    if cfg.shared_group and cfg.protocol != "5":
        raise ConfigError("broker.shared_group needs broker.protocol = \"5\"")
    return cfg


def _dashboard(t: dict[str, Any], base_dir: Path | None = None) -> DashboardConfig:
    check.no_unknown(t, {f.name for f in fields(DashboardConfig)}, "dashboard.")
    kw: dict[str, Any] = {}
    if "enabled" in t:
        kw["enabled"] = check.boolean(t["enabled"], "dashboard.enabled")
    if "bind" in t:
        kw["bind"] = check.string(t["bind"], "dashboard.bind")
    if "port" in t:
        kw["port"] = int(check.number(t["port"], "dashboard.port", 0, 65535))
    for key in ("token", "viewer_token"):
        if key in t:
            tok = check.string(t[key], f"dashboard.{key}")
            if len(tok) < 8:
                raise ConfigError(f"dashboard.{key} must be at least 8 characters")
            kw[key] = tok
    if "max_body_bytes" in t:
        kw["max_body_bytes"] = int(check.number(t["max_body_bytes"], "dashboard.max_body_bytes", 1024, 16 * 1024 * 1024))
    for key in ("tls_cert", "tls_key"):
        if key in t:
            kw[key] = check.readable_file(t[key], f"dashboard.{key}", base_dir)
    if ("tls_cert" in kw) != ("tls_key" in kw):
        have, missing = ("tls_cert", "tls_key") if "tls_cert" in kw else ("tls_key", "tls_cert")
        raise ConfigError(f"dashboard.{missing} is missing: dashboard.{have} ({kw[have]}) needs it for HTTPS")
    return DashboardConfig(**kw)


def _rule(name: str, t: dict[str, Any], base: RuleSpec) -> RuleSpec:
    p = f"rules.{name}."
    check.no_unknown(t, {"enabled", "for_s", "keep_firing_for_s", "severity", "window_s", "threshold", "inhibits"}, p)
    kw: dict[str, Any] = {}
    if "enabled" in t:
        kw["enabled"] = check.boolean(t["enabled"], p + "enabled")
    for key in ("for_s", "keep_firing_for_s", "window_s"):
        if key in t:
            kw[key] = check.number(t[key], p + key, 0, 7 * 86400)
    if "threshold" in t:
        kw["threshold"] = check.number(t["threshold"], p + "threshold", -200, 86400)
    if "inhibits" in t:
        muted = t["inhibits"]
        if not isinstance(muted, list) or not all(isinstance(r, str) for r in muted):
            raise ConfigError(f"{p}inhibits must be a list of rule names")
        for r in muted:
            if r not in DEFAULT_RULES or r in (name, "desk-offline", "noisy-floor"):
                raise ConfigError(f"{p}inhibits: {r!r} is not another desk rule of this desk")
        kw["inhibits"] = tuple(muted)
    if "severity" in t:
        kw["severity"] = check.severity(t["severity"], p + "severity")
    spec = replace(base, **kw)
    if name in WINDOW_RULES and spec.window_s <= 0:
        raise ConfigError(f"{p}window_s must be > 0")
    if name in COUNT_RULES and (spec.threshold < 1 or spec.threshold != int(spec.threshold)):
        raise ConfigError(f"{p}threshold must be a whole number of calls, at least 1")
    return spec


def parse_config(data: dict[str, Any], base_dir: Path | None = None) -> HostConfig:
    """Build a :class:`HostConfig` from a parsed TOML document."""
    check.no_unknown(data, {"broker", "host", "dashboard", "rules", "breaks", "shifts", "receivers"}, "")
    kw: dict[str, Any] = {}
    if "broker" in data:
        kw["broker"] = _broker(check.table(data["broker"], "broker"))
    if "dashboard" in data:
        kw["dashboard"] = _dashboard(check.table(data["dashboard"], "dashboard"), base_dir)
    host = check.table(data.get("host", {}), "host")
    check.no_unknown(host, {"sites", "db", "retention_days", "stale_after_s"}, "host.")
    if "sites" in host:
        sites = host["sites"]
        if not isinstance(sites, list):
            raise ConfigError("host.sites must be a list of site ids")
        kw["sites"] = tuple(check.ident(s, f"host.sites[{i}]") for i, s in enumerate(sites))
    if "db" in host:
        # imported here: host_agent.history imports the alert engine, which imports this module
        from host_agent.history.url import check_db

        db = check_db(check.string(host["db"], "host.db"), "host.db")
        if base_dir is not None and db != ":memory:" and "://" not in db and not Path(db).is_absolute():
            db = str(base_dir / db)
        kw["db"] = db
    if "retention_days" in host:
        kw["retention_days"] = check.number(host["retention_days"], "host.retention_days", 1, 36500)
    if "stale_after_s" in host:
        kw["stale_after_s"] = check.number(host["stale_after_s"], "host.stale_after_s", 1, 3600)
    breaks = check.table(data.get("breaks", {}), "breaks")
    check.no_unknown(breaks, {"allowed_s", "sites"}, "breaks.")
    if "allowed_s" in breaks:
        kw["allowed_break_s"] = check.number(breaks["allowed_s"], "breaks.allowed_s", 0, 86400)
    if "sites" in breaks:
        by_site = check.table(breaks["sites"], "breaks.sites")
        kw["allowed_break_by_site"] = {
            check.ident(s, "breaks.sites key"): check.number(v, f"breaks.sites.{s}", 0, 86400) for s, v in by_site.items()
        }
    rules = dict(DEFAULT_RULES)
    for name, t in check.table(data.get("rules", {}), "rules").items():
        if name not in DEFAULT_RULES:
            raise ConfigError(f"rules.{name} is not a known rule (known: {', '.join(DEFAULT_RULES)})")
        rules[name] = _rule(name, check.table(t, f"rules.{name}"), DEFAULT_RULES[name])
    kw["rules"] = rules
    if "shifts" in data:
        kw["shifts"] = parse_shifts(check.table(data["shifts"], "shifts"), kw.get("sites", ()))
    if "receivers" in data:
        kw["webhooks"] = _receivers(check.table(data["receivers"], "receivers"), base_dir)
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
        if exc.field is None:
            raise ConfigError(f"{p}: {exc}") from None
        line = check.line_of(text, exc.field)
        where = f"{p}:{line}" if line is not None else str(p)
        raise ConfigError(f"{where}: {exc}", field=exc.field, line=line) from None


# --- receivers --------------------------------------------------------------------------------------


def _receivers(t: dict[str, Any], base_dir: Path | None) -> tuple[WebhookConfig, ...]:
    check.no_unknown(t, {"webhook"}, "receivers.")
    hooks = t.get("webhook", [])
    if isinstance(hooks, dict):
        hooks = [hooks]
    if not isinstance(hooks, list):
        raise ConfigError("receivers.webhook must be tables ([[receivers.webhook]])", field="receivers.webhook")
    out: list[WebhookConfig] = []
    for i, h in enumerate(hooks):
        out.append(_webhook(check.table(h, f"receivers.webhook[{i}]"), f"receivers.webhook[{i}].", i, base_dir))
    names = [w.name for w in out]
    for i, n in enumerate(names):
        if n in names[:i]:
            raise ConfigError(f"receivers.webhook[{i}].name {n!r} is used twice: "
                                                                     "give each webhook its own name", field=f"receivers.webhook[{i}].name")
    return tuple(out)


def _webhook(t: dict[str, Any], p: str, index: int, base_dir: Path | None) -> WebhookConfig:
    check.no_unknown(t, {f.name for f in fields(WebhookConfig)}, p)
    if "url" not in t:
        raise ConfigError(f"{p}url is missing: the receiver's http:// or https:// address", field=p.rstrip("."))
    url = check.string(t["url"], p + "url")
    parts = urlsplit(url)
    try:
        parts.port  # noqa: B018 - raises on a bad port
        port_ok = True
    except ValueError:
        port_ok = False
    if parts.scheme not in ("http", "https") or not parts.hostname or not port_ok:
        raise ConfigError(f"{p}url {url!r} must look like http://host:port/path or https://...", field=p + "url")
    kw: dict[str, Any] = {"url": url, "name": f"webhook-{index + 1}"}
    if "name" in t:
        kw["name"] = check.ident(t["name"], p + "name")
    for key, lo, hi in (("timeout_s", 0.05, 300), ("max_retry_s", 0, 7 * 86400), ("backoff_s", 0.01, 3600),
                        ("max_backoff_s", 0.01, 86400)):
        if key in t:
            kw[key] = check.number(t[key], p + key, lo, hi)
    if "queue_size" in t:
        kw["queue_size"] = int(check.number(t["queue_size"], p + "queue_size", 1, 1_000_000))
    for key in ("bearer_token", "username", "password"):
        if key in t:
            kw[key] = check.string(t[key], p + key)
            if not kw[key] or any(c in kw[key] for c in "\r\n"):
                raise ConfigError(f"{p}{key} must be a non-empty string on one line", field=p + key)
    if "send_resolved" in t:
        kw["send_resolved"] = check.boolean(t["send_resolved"], p + "send_resolved")
    if "ca_file" in t:
        if parts.scheme != "https":
            raise ConfigError(f"{p}ca_file needs an https:// url, not {url!r}", field=p + "ca_file")
        kw["ca_file"] = check.readable_file(t["ca_file"], p + "ca_file", base_dir)
    if "bearer_token" in kw and ("username" in kw or "password" in kw):
        raise ConfigError(f"{p}bearer_token and username/password exclude each other", field=p + "bearer_token")
    if ("username" in kw) != ("password" in kw):
        have, missing = ("username", "password") if "username" in kw else ("password", "username")
        raise ConfigError(f"{p}{missing} is missing: basic auth needs both username and password", field=p + have)
    cfg = WebhookConfig(**kw)
    if cfg.max_backoff_s < cfg.backoff_s:
        raise ConfigError(f"{p}max_backoff_s must be >= backoff_s ({cfg.backoff_s:g})", field=p + "max_backoff_s")
    return cfg
