"""The webhook receiver: every alert that fires or resolves, POSTed in Alertmanager's webhook format.

``[[receivers.webhook]]`` in host.toml (:class:`host_agent.config.WebhookConfig`). The body is
Alertmanager's webhook payload (``version`` "4"), one alert per POST, so that tools built for
Alertmanager (chat bridges, paging services, ticket hooks) take it unchanged::

    {"version": "4", "groupKey": "{}:{alertname=\\"desk-offline\\", desk=\\"d07\\", site=\\"site1\\"}",
     "truncatedAlerts": 0, "status": "firing", "receiver": "pager",
     "groupLabels": {...}, "commonLabels": {...}, "commonAnnotations": {...}, "externalURL": "http://...",
     "alerts": [{"status": "firing", "labels": {"alertname": "desk-offline", "site": "site1", "desk": "d07",
                 "severity": "critical"}, "annotations": {"summary": "desk lost for 2 min", ...},
                 "startsAt": "2026-11-30T08:05:30.000Z", "endsAt": "0001-01-01T00:00:00Z",
                 "generatorURL": "http://...", "fingerprint": "a1b2c3d4e5f60718"}]}

What is sent (as Alertmanager would notify): ``firing`` when an alert fires, changes level, or is no
longer silenced or inhibited while firing, unless it is silenced or inhibited then; ``resolved``
when an alert that had fired resolves (``send_resolved``). Pending alerts, and alerts cleared before
firing, send nothing. The level and value are annotations, not labels, so the fingerprint of an alert
stays the same while its level changes. Times are the host clock's (RFC 3339, UTC).

Threads and failure: :meth:`WebhookReceiver.notify` runs on the processing thread and never
blocks: it puts the body on a bounded queue (``queue_size``), or counts it dropped when the queue is
full. One sender thread per receiver POSTs them in order, each attempt bounded by ``timeout_s``;
a connection error, a timeout, 408, 429 or 5xx is retried after ``backoff_s``, doubling up to
``max_backoff_s``, until ``max_retry_s`` after the notification was queued: then it is dropped
(counted, logged). Any other answer outside 2xx (a 4xx, a redirect) is not retried: dropped at once.
Counts: ``sent`` (notifications delivered), ``failed`` (attempts that failed), ``dropped``
(notifications given up). On close, the sender has ``flush_s`` to deliver what is queued, without
waiting for retries; the rest is dropped.
"""

from __future__ import annotations

import base64
import http.client
import json
import logging
import queue
import ssl
import threading
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlsplit

from host_agent.alerts import FIRING, ActiveAlert, Change
from host_agent.config import WebhookConfig
from mqtt_schema import AlertLog, AlertTransition

log = logging.getLogger("host_agent.webhook")

ZERO_TIME = "0001-01-01T00:00:00Z"
"""``endsAt`` of a firing alert, as Alertmanager sends it."""
RETRY_STATUS = frozenset({408, 425, 429, 500, 502, 503, 504})
"""Answers worth another attempt (plus any other 5xx)."""
LOG_EVERY_S = 60.0
USER_AGENT = "headset-host-webhook/1"


def rfc3339(ms: int) -> str:
    """``2026-11-30T08:05:30.123Z`` for epoch milliseconds."""
    return datetime.fromtimestamp(ms / 1000, UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def fingerprint(labels: dict[str, str]) -> str:
    """16 hex digits of FNV-1a 64 over the sorted labels (name, 0xff, value, 0xff), like Prometheus."""
    h = 0xCBF29CE484222325
    for name in sorted(labels):
        for part in (name.encode(), b"\xff", labels[name].encode(), b"\xff"):
            for byte in part:
                h ^= byte
                h = (h * 0x100000001B3) & 0xFFFFFFFFFFFFFFFF
    return f"{h:016x}"


def _label_set(labels: dict[str, str]) -> str:
    return "{" + ", ".join(f'{k}={json.dumps(v)}' for k, v in sorted(labels.items())) + "}"


def notification_status(change: Change, send_resolved: bool = True) -> str | None:
    """``firing``, ``resolved`` or None (nothing to send) for one alert transition."""
    a, t = change.snapshot, change.log.transition
    if t is AlertTransition.RESOLVED:
        return "resolved" if send_resolved and a.fired_ms is not None else None
    if t in (AlertTransition.FIRING, AlertTransition.LEVEL_CHANGED, AlertTransition.UNSILENCED):
        if a.state == FIRING and not a.silenced and not a.inhibited:
            return "firing"
    return None


def alertmanager_payload(receiver: str, a: ActiveAlert, entry: AlertLog, status: str,
                         external_url: str = "") -> dict[str, Any]:
    """The Alertmanager webhook body (version 4) for one alert of the host."""
    labels = {"alertname": a.rule, "site": a.site, "desk": a.desk, "severity": a.severity.value}
    annotations = {"summary": a.summary or entry.summary, "transition": entry.transition.value}
    if a.level is not None:
        annotations["level"] = str(a.level)
    value = entry.value if entry.value is not None else a.value
    if value is not None:
        annotations["value"] = f"{value:g}"
    group = {"alertname": a.rule, "site": a.site, "desk": a.desk}
    alert = {
        "status": status,
        "labels": labels,
        "annotations": annotations,
        "startsAt": rfc3339(a.fired_ms if a.fired_ms is not None else a.since_ms),
        "endsAt": rfc3339(entry.ts) if status == "resolved" else ZERO_TIME,
        "generatorURL": external_url,
        "fingerprint": fingerprint(labels),
    }
    return {
        "version": "4",
        "groupKey": "{}:" + _label_set(group),
        "truncatedAlerts": 0,
        "status": status,
        "receiver": receiver,
        "groupLabels": group,
        "commonLabels": dict(labels),
        "commonAnnotations": dict(annotations),
        "externalURL": external_url,
        "alerts": [alert],
    }


@dataclass(frozen=True, slots=True)
class _Item:
    body: bytes
    queued: float
    """time.monotonic() when queued (s)."""
    what: str
    """For logs: ``firing site1/d07 desk-offline``."""


class WebhookReceiver:
    """One webhook receiver: a bounded queue and a sender thread. ``close()`` is idempotent."""

    def __init__(self, config: WebhookConfig, *, external_url: str = "") -> None:
        self.config = config
        self.name = config.name
        self.external_url = external_url
        """The dashboard's address, sent as ``externalURL``/``generatorURL`` (set once it is known)."""
        self._queue: queue.Queue[_Item] = queue.Queue(maxsize=config.queue_size)
        self._closing = threading.Event()
        self._close_deadline = float("inf")
        self._lock = threading.Lock()
        self._sent = self._failed = self._dropped = 0
        self._thread: threading.Thread | None = None
        self._last_log = -LOG_EVERY_S
        parts = urlsplit(config.url)
        self._https = parts.scheme == "https"
        self._host = parts.hostname or "localhost"
        self._port = parts.port or (443 if self._https else 80)
        self._path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
        self._ssl = ssl.create_default_context(cafile=config.ca_file) if self._https else None
        self._headers = {"Content-Type": "application/json", "User-Agent": USER_AGENT}
        if config.bearer_token:
            self._headers["Authorization"] = f"Bearer {config.bearer_token}"
        elif config.username is not None and config.password is not None:
            cred = base64.b64encode(f"{config.username}:{config.password}".encode()).decode()
            self._headers["Authorization"] = f"Basic {cred}"

    # --- counts (read from any thread) ---------------------------------------------------------------

    @property
    def sent(self) -> int:
        return self._sent

    @property
    def failed(self) -> int:
        return self._failed

    @property
    def dropped(self) -> int:
        return self._dropped

    @property
    def queue_depth(self) -> int:
        return self._queue.qsize()

    # --- lifecycle -----------------------------------------------------------------------------------

    def start(self) -> WebhookReceiver:
        if self._thread is None:
            self._thread = threading.Thread(target=self._run, name=f"webhook-{self.name}", daemon=True)
            self._thread.start()
        return self

    def close(self, flush_s: float = 2.0) -> None:
        """Deliver what is queued within ``flush_s`` (one attempt each), then stop; drop the rest."""
        if self._closing.is_set():
            return
        self._close_deadline = time.monotonic() + flush_s
        self._closing.set()
        if self._thread is not None:
            self._thread.join(timeout=flush_s + self.config.timeout_s + 1.0)
        left = 0
        while True:
            try:
                self._queue.get_nowait()
            except queue.Empty:
                break
            left += 1
        if left:
            self._count(dropped=left)
            log.warning("webhook %s: %d notification(s) dropped at shutdown", self.name, left)

    def __enter__(self) -> WebhookReceiver:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.close()

    # --- the processing thread -----------------------------------------------------------------------

    def notify(self, change: Change) -> bool:
        """Queue ``change`` if it is a notification; never blocks. False when it was dropped."""
        status = notification_status(change, self.config.send_resolved)
        if status is None:
            return True
        a = change.snapshot
        body = json.dumps(alertmanager_payload(self.name, a, change.log, status, self.external_url),
                          separators=(",", ":"), ensure_ascii=False).encode()
        item = _Item(body, time.monotonic(), f"{status} {a.site}/{a.desk} {a.rule}")
        if self._closing.is_set():
            self._drop(item, "the receiver is closed")
            return False
        try:
            self._queue.put_nowait(item)
        except queue.Full:
            self._drop(item, f"queue full ({self.config.queue_size})")
            return False
        return True

    # --- the sender thread ---------------------------------------------------------------------------

    def _run(self) -> None:
        while True:
            try:
                item = self._queue.get(timeout=0.1)
            except queue.Empty:
                if self._closing.is_set():
                    return
                continue
            if self._closing.is_set() and time.monotonic() >= self._close_deadline:
                self._drop(item, "shutdown")
                continue
            try:
                self._deliver(item)
            except Exception as exc:  # a bug: never let the sender thread die
                log.exception("webhook %s: delivery of %s failed: %s", self.name, item.what, exc)
                self._drop(item, "internal error")

    def _deliver(self, item: _Item) -> None:
        delay = self.config.backoff_s
        attempts = 0
        while True:
            attempts += 1
            ok, retry, why = self._post(item.body)
            if ok:
                self._count(sent=1)
                return
            self._count(failed=1)
            if not retry:
                self._drop(item, f"{why} (not retried)")
                return
            if self._closing.is_set():
                self._drop(item, f"{why}; shutting down after {attempts} attempt(s)")
                return
            deadline = item.queued + self.config.max_retry_s
            if time.monotonic() + delay > deadline:
                self._drop(item, f"{why}; gave up after {attempts} attempt(s) in {self.config.max_retry_s:g} s")
                return
            self._closing.wait(delay)  # close() wakes it for one last attempt
            delay = min(delay * 2, self.config.max_backoff_s)

    def _post(self, body: bytes) -> tuple[bool, bool, str]:
        """One attempt: (delivered, worth retrying, why not)."""
        conn: http.client.HTTPConnection
        if self._https:
            conn = http.client.HTTPSConnection(self._host, self._port, timeout=self.config.timeout_s,
                                               context=self._ssl)
        else:
            conn = http.client.HTTPConnection(self._host, self._port, timeout=self.config.timeout_s)
        try:
            conn.request("POST", self._path, body=body, headers=self._headers)
            resp = conn.getresponse()
            resp.read(64 * 1024)
            status = resp.status
        except (OSError, http.client.HTTPException) as exc:
            return False, True, f"{type(exc).__name__}: {exc}"
        finally:
            conn.close()
        if 200 <= status < 300:
            return True, False, ""
        return False, status in RETRY_STATUS or status >= 500, f"HTTP {status}"

    # --- counting ------------------------------------------------------------------------------------

    def _count(self, sent: int = 0, failed: int = 0, dropped: int = 0) -> None:
        with self._lock:
            self._sent += sent
            self._failed += failed
            self._dropped += dropped

    def _drop(self, item: _Item, why: str) -> None:
        self._count(dropped=1)
        now = time.monotonic()
        with self._lock:
            quiet = now - self._last_log < LOG_EVERY_S
            if not quiet:
                self._last_log = now
        if not quiet:
            log.warning("webhook %s: dropped %s: %s (dropped so far: %d)", self.name, item.what, why, self._dropped)
