"""MQTT topic tree of the headset coach, schema major version 1.

Every topic string in the project is built or parsed here, and nowhere else::

    hsc/v1/{site}/{desk}/{kind}          kind in state, metrics, event, minute, call, config, cti
    hsc/v1/{site}/alert/{desk}/{rule}    retained while an alert is active
    hsc/v1/{site}/alert-log              every alert transition

Ids (site, desk, rule) match ``[a-z0-9-]{1,32}``. The words ``alert`` and
``alert-log`` are reserved and cannot be desk ids.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from enum import StrEnum

from mqtt_schema.errors import SchemaError

ROOT = "hsc"
VERSION_SEGMENT = "v1"
PREFIX = f"{ROOT}/{VERSION_SEGMENT}"

_ID_RE = re.compile(r"[a-z0-9-]{1,32}")
RESERVED_DESK_IDS = frozenset({"alert", "alert-log"})


class DeskKind(StrEnum):
    """The message kinds under a desk's topic."""

    STATE = "state"
    METRICS = "metrics"
    EVENT = "event"
    MINUTE = "minute"
    CALL = "call"
    """1.1: per-call summaries (desk → host)."""
    CONFIG = "config"
    CTI = "cti"
    """1.1: call state from a PBX or softphone bridge (→ desk)."""


def check_id(value: str, what: str) -> str:
    """Return ``value`` if it is a valid id, else raise :class:`SchemaError` naming ``what``."""
    if not isinstance(value, str) or not _ID_RE.fullmatch(value):
        raise SchemaError(f"{what} {value!r} is not a valid id: it must match [a-z0-9-]{{1,32}}", field=what)
    return value


def _check_desk(desk: str) -> str:
    check_id(desk, "desk")
    if desk in RESERVED_DESK_IDS:
        raise SchemaError(f"desk {desk!r} is a reserved word", field="desk")
    return desk


@dataclass(frozen=True)
class DeskTopic:
    """``hsc/v1/{site}/{desk}/{kind}``: a message from (or, for config, to) one desk."""

    site: str
    desk: str
    kind: DeskKind

    def __post_init__(self) -> None:
        check_id(self.site, "site")
        _check_desk(self.desk)
        if not isinstance(self.kind, DeskKind):
            try:
                object.__setattr__(self, "kind", DeskKind(self.kind))
            except ValueError:
                raise SchemaError(f"unknown desk topic kind {self.kind!r}", field="kind") from None

    def __str__(self) -> str:
        return f"{PREFIX}/{self.site}/{self.desk}/{self.kind.value}"

    @classmethod
    def parse(cls, topic: str) -> DeskTopic:
        """Parse a desk topic string, raising :class:`SchemaError` when it is not one."""
        parts = topic.split("/")
        if len(parts) != 5 or parts[0] != ROOT or parts[1] != VERSION_SEGMENT:
            raise SchemaError(f"not a desk topic: {topic!r}", field="topic")
        return cls(parts[2], parts[3], DeskKind._value2member_map_.get(parts[4], parts[4]))  # type: ignore[arg-type]


@dataclass(frozen=True)
class AlertTopic:
    """``hsc/v1/{site}/alert/{desk}/{rule}``: one retained active alert."""

    site: str
    desk: str
    rule: str

    def __post_init__(self) -> None:
        check_id(self.site, "site")
        _check_desk(self.desk)
        check_id(self.rule, "rule")

    def __str__(self) -> str:
        return f"{PREFIX}/{self.site}/alert/{self.desk}/{self.rule}"

    @classmethod
    def parse(cls, topic: str) -> AlertTopic:
        parts = topic.split("/")
        if len(parts) != 6 or parts[:2] != [ROOT, VERSION_SEGMENT] or parts[3] != "alert":
            raise SchemaError(f"not an alert topic: {topic!r}", field="topic")
        return cls(parts[2], parts[4], parts[5])


@dataclass(frozen=True)
class AlertLogTopic:
    """``hsc/v1/{site}/alert-log``: the stream of alert transitions of one site."""

    site: str

    def __post_init__(self) -> None:
        check_id(self.site, "site")

    def __str__(self) -> str:
        return f"{PREFIX}/{self.site}/alert-log"

    @classmethod
    def parse(cls, topic: str) -> AlertLogTopic:
        parts = topic.split("/")
        if len(parts) != 4 or parts[:2] != [ROOT, VERSION_SEGMENT] or parts[3] != "alert-log":
            raise SchemaError(f"not an alert-log topic: {topic!r}", field="topic")
        return cls(parts[2])


Topic = DeskTopic | AlertTopic | AlertLogTopic


def parse_topic(topic: str) -> Topic:
    """Parse any topic of the tree; raise :class:`SchemaError` for anything else."""
    parts = topic.split("/")
    if len(parts) == 6 and len(parts) > 3 and parts[3] == "alert":
        return AlertTopic.parse(topic)
    if len(parts) == 4:
        return AlertLogTopic.parse(topic)
    return DeskTopic.parse(topic)


def desk_filter(site: str = "+", desk: str = "+", kind: DeskKind | str = "+") -> str:
    """A subscription filter over desk topics; ``+`` is the MQTT single-level wildcard."""
    site_s = site if site == "+" else check_id(site, "site")
    desk_s = desk if desk == "+" else _check_desk(desk)
    kind_s = kind.value if isinstance(kind, DeskKind) else kind
    if kind_s != "+" and kind_s not in DeskKind._value2member_map_:
        raise SchemaError(f"unknown desk topic kind {kind_s!r}", field="kind")
    return f"{PREFIX}/{site_s}/{desk_s}/{kind_s}"


def alert_filter(site: str = "+") -> str:
    """Subscription filter for every retained alert of a site (``+`` for all sites)."""
    site_s = site if site == "+" else check_id(site, "site")
    return f"{PREFIX}/{site_s}/alert/#"


def alert_log_filter(site: str = "+") -> str:
    site_s = site if site == "+" else check_id(site, "site")
    return f"{PREFIX}/{site_s}/alert-log"


def shared(group: str, topic_filter: str) -> str:
    """An MQTT 5 shared-subscription filter, ``$share/{group}/{filter}``.

    Shared subscriptions receive no retained messages: read ``state`` with an ordinary one.
    """
    check_id(group, "group")
    return f"$share/{group}/{topic_filter}"
