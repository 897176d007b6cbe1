"""Counters and the ingest-latency histogram of the host, and their Prometheus text rendering.

Written by the processing thread only; read by the HTTP threads (plain ints and floats).
"""

from __future__ import annotations

import bisect
from collections import Counter
from collections.abc import Iterable, Mapping
from typing import Protocol

from mqtt_schema import REJECT_REASONS

MESSAGE_KINDS = ("state", "metrics", "event", "minute")
"""Desk message kinds the host applies (label ``kind``)."""
SPOOLED_KINDS = ("event", "minute")
"""Kinds deduplicated by (desk, boot, seq)."""
SNAPSHOT_KINDS = ("state", "metrics")
"""Kinds where an older snapshot than the one applied is superseded."""
INTERNAL_ERROR = "internal-error"
"""The reject reason of a message that failed for a reason of the host's own (a bug, storage)."""

LATENCY_BUCKETS_S = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0)


class Histogram:
    """A cumulative Prometheus histogram with fixed buckets (seconds)."""

    def __init__(self, buckets: tuple[float, ...] = LATENCY_BUCKETS_S) -> None:
        self.buckets = buckets
        self.counts = [0] * (len(buckets) + 1)
        self.count = 0
        self._sum_ns = 0
        """Observations in integer nanoseconds (``observe_ns``), kept apart so that the hot path adds ints."""
        self._sum_s = 0.0
        self._bounds_ns = [round(b * 1e9) for b in buckets]

    @property
    def sum(self) -> float:
        """Sum of the observed values (s)."""
        return self._sum_s + self._sum_ns / 1e9

    def observe(self, value: float) -> None:
        self.counts[bisect.bisect_left(self.buckets, value)] += 1
        self._sum_s += value
        self.count += 1

    def observe_ns(self, value_ns: int) -> None:
        """``observe(value_ns / 1e9)`` for the processing thread's per-message latency, without float work."""
        self.counts[bisect.bisect_left(self._bounds_ns, value_ns)] += 1
        self._sum_ns += value_ns
        self.count += 1

    def quantile(self, q: float) -> float:
        """Upper bound of the bucket holding quantile ``q`` (inf past the last bucket)."""
        if self.count == 0:
            return 0.0
        target, run = q * self.count, 0
        for i, c in enumerate(self.counts):
            run += c
            if run >= target:
                return self.buckets[i] if i < len(self.buckets) else float("inf")
        return float("inf")


class ReceiverCounts(Protocol):
    """What a receiver (``host_agent.webhook.WebhookReceiver``) counts; read from the rendering thread."""

    @property
    def name(self) -> str: ...
    @property
    def sent(self) -> int: ...
    @property
    def failed(self) -> int: ...
    @property
    def dropped(self) -> int: ...
    @property
    def queue_depth(self) -> int: ...


class Stats:
    """What the host counts while ingesting."""

    def __init__(self) -> None:
        self.messages_in = 0
        self.accepted: Counter[str] = Counter()
        self.rejected: Counter[str] = Counter()
        self.duplicates: Counter[str] = Counter()
        self.superseded: Counter[str] = Counter()
        self.ignored: Counter[str] = Counter()
        self.latency = Histogram()
        self.alerts_published = 0

    @property
    def rejected_total(self) -> int:
        return sum(self.rejected.values())

    @property
    def handled_total(self) -> int:
        """Every message that got an outcome (accepted, duplicate, superseded, ignored or rejected)."""
        return (sum(self.accepted.values()) + self.rejected_total + sum(self.duplicates.values())
                + sum(self.superseded.values()) + sum(self.ignored.values()))


def _labels(**kw: str) -> str:
    inner = ",".join(f'{k}="{_esc(v)}"' for k, v in kw.items())
    return "{" + inner + "}" if inner else ""


def _esc(v: str) -> str:
    return v.replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')


def _family(lines: list[str], name: str, kind: str, help_text: str,
            samples: Iterable[tuple[str, float]]) -> None:
    lines.append(f"# HELP {name} {help_text}")
    lines.append(f"# TYPE {name} {kind}")
    for labels, value in samples:
        lines.append(f"{name}{labels} {value:g}" if isinstance(value, float) else f"{name}{labels} {value}")


def render_prometheus(stats: Stats, desks_by_state: Mapping[str, int], firing_by_rule: Mapping[str, int],
                      fired: Mapping[str, int], resolved: Mapping[str, int], rules: Iterable[str],
                      queue_depth: int, receivers: Iterable[ReceiverCounts] = ()) -> str:
    """The Prometheus text exposition format (version 0.0.4)."""
    rules = list(rules)
    receivers = list(receivers)
    lines: list[str] = []
    # every family and label value exists from the start at 0, so that rate() and absent() work
    # before the first message of a kind or the first rejection of a reason
    kinds = sorted(set(MESSAGE_KINDS) | set(stats.accepted))
    reasons = sorted(set(REJECT_REASONS) | {INTERNAL_ERROR} | set(stats.rejected))
    _family(lines, "hsc_host_messages_in_total", "counter", "Messages received from the broker.",
            [("", stats.messages_in)])
    _family(lines, "hsc_host_messages_accepted_total", "counter", "Valid messages applied, by kind.",
            [(_labels(kind=k), stats.accepted.get(k, 0)) for k in kinds])
    _family(lines, "hsc_host_messages_rejected_total", "counter", "Invalid messages, by reason.",
            [(_labels(reason=k), stats.rejected.get(k, 0)) for k in reasons])
    _family(lines, "hsc_host_messages_duplicate_total", "counter", "Redelivered event/minute messages dropped.",
            [(_labels(kind=k), stats.duplicates.get(k, 0)) for k in sorted(set(SPOOLED_KINDS) | set(stats.duplicates))])
    _family(lines, "hsc_host_messages_superseded_total", "counter",
            "State/metrics snapshots older than the one applied.",
            [(_labels(kind=k), stats.superseded.get(k, 0))
             for k in sorted(set(SNAPSHOT_KINDS) | set(stats.superseded))])
    _family(lines, "hsc_host_desks", "gauge", "Desks by state.",
            [(_labels(state=k), v) for k, v in sorted(desks_by_state.items())])
    _family(lines, "hsc_host_alerts_firing", "gauge", "Alerts firing (not inhibited), by rule.",
            [(_labels(rule=r), firing_by_rule.get(r, 0)) for r in rules])
    _family(lines, "hsc_host_alerts_fired_total", "counter", "Alerts that started firing, by rule.",
            [(_labels(rule=r), fired.get(r, 0)) for r in rules])
    _family(lines, "hsc_host_alerts_resolved_total", "counter", "Firing alerts that resolved, by rule.",
            [(_labels(rule=r), resolved.get(r, 0)) for r in rules])
    _family(lines, "hsc_host_queue_depth", "gauge", "Messages waiting for the processing thread.",
            [("", queue_depth)])
    # one sample per configured webhook, at 0 from the start; without webhooks the families are empty
    _family(lines, "hsc_host_webhook_sent_total", "counter", "Alert notifications delivered (2xx), by receiver.",
            [(_labels(receiver=r.name), r.sent) for r in receivers])
    _family(lines, "hsc_host_webhook_failed_total", "counter",
            "Webhook POST attempts that failed (error, timeout or non-2xx; retries count again), by receiver.",
            [(_labels(receiver=r.name), r.failed) for r in receivers])
    _family(lines, "hsc_host_webhook_dropped_total", "counter",
            "Alert notifications given up (queue full, retries exhausted, refused, shutdown), by receiver.",
            [(_labels(receiver=r.name), r.dropped) for r in receivers])
    _family(lines, "hsc_host_webhook_queue_depth", "gauge", "Alert notifications waiting for delivery, by receiver.",
            [(_labels(receiver=r.name), r.queue_depth) for r in receivers])
    h = stats.latency
    name = "hsc_host_ingest_latency_seconds"
    lines.append(f"# HELP {name} Time from receipt by the MQTT thread to the end of processing.")
    lines.append(f"# TYPE {name} histogram")
    run = 0
    for bound, c in zip(h.buckets, h.counts, strict=False):
        run += c
        lines.append(f'{name}_bucket{{le="{bound:g}"}} {run}')
    lines.append(f'{name}_bucket{{le="+Inf"}} {h.count}')
    lines.append(f"{name}_sum {h.sum:.6f}")
    lines.append(f"{name}_count {h.count}")
    return "\n".join(lines) + "\n"
