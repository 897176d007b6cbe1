"""mqtt_schema: the one contract between the desk units and the host.

Topics are built and parsed by :mod:`mqtt_schema.topics`; payloads are the frozen
:mod:`msgspec` structs of :mod:`mqtt_schema.messages`, encoded and validated by
:mod:`mqtt_schema.codec`. The clock both sides share (``--time-scale``) is :mod:`mqtt_schema.clock`.
It imports nothing else of the project.
"""

from mqtt_schema.codec import MAX_PAYLOAD_BYTES, decode, decode_topic, encode, type_for_kind
from mqtt_schema.errors import REJECT_REASONS, SchemaError
from mqtt_schema.messages import (
    SCHEMA_MINOR,
    SCHEMA_VERSION,
    Alert,
    AlertLog,
    AlertTransition,
    Call,
    CallDirection,
    CallStatus,
    Config,
    Cti,
    CtiPhase,
    Cue,
    DeskMessage,
    DeskStatus,
    Event,
    EventKind,
    Message,
    Metrics,
    Minute,
    PartStatus,
    Posture,
    Severity,
    State,
    Versions,
)
from mqtt_schema.qos import QOS, RETAIN
from mqtt_schema.topics import (
    AlertLogTopic,
    AlertTopic,
    DeskKind,
    DeskTopic,
    alert_filter,
    alert_log_filter,
    check_id,
    desk_filter,
    parse_topic,
    shared,
)

__all__ = [
    "REJECT_REASONS",
    "MAX_PAYLOAD_BYTES", "QOS", "RETAIN", "SCHEMA_MINOR", "SCHEMA_VERSION", "Alert", "AlertLog",
    "AlertLogTopic", "AlertTopic", "AlertTransition", "Call", "CallDirection", "CallStatus", "Config", "Cti",
    "CtiPhase", "Cue", "DeskKind", "DeskMessage",
    "DeskStatus", "DeskTopic", "Event", "EventKind", "Message", "Metrics", "Minute", "PartStatus",
    "Posture", "SchemaError", "Severity", "State", "Versions", "alert_filter", "alert_log_filter",
    "check_id", "decode", "decode_topic", "desk_filter", "encode", "parse_topic", "shared",
    "type_for_kind",
]
__version__ = "1.1.0"
