"""Encoding and validating decoding of the contract's payloads (JSON, UTF-8, at most 16 KiB)."""

from __future__ import annotations

import math
import re
from typing import TypeVar, overload

import msgspec

from mqtt_schema.errors import SchemaError
from mqtt_schema.messages import (
    MESSAGE_TYPES,
    Alert,
    AlertLog,
    Call,
    Config,
    Cti,
    Event,
    Message,
    Metrics,
    Minute,
    State,
)
from mqtt_schema.topics import AlertLogTopic, AlertTopic, DeskKind, DeskTopic, Topic, parse_topic

MAX_PAYLOAD_BYTES = 16 * 1024

T = TypeVar("T", bound=msgspec.Struct)

_encoder = msgspec.json.Encoder()
_any_decoder: msgspec.json.Decoder[Message] = msgspec.json.Decoder(Message)
_decoders: dict[type[msgspec.Struct], msgspec.json.Decoder[msgspec.Struct]] = {
    t: msgspec.json.Decoder(t) for t in MESSAGE_TYPES
}
_KIND_TO_TYPE: dict[str, type[msgspec.Struct]] = {t.__struct_config__.tag: t for t in MESSAGE_TYPES}  # type: ignore[misc]
_PATH_RE = re.compile(r"at `(\$[^`]*)`")
_MISSING_RE = re.compile(r"missing required field `([^`]*)`")


def _schema_error(exc: msgspec.MsgspecError, what: str) -> SchemaError:
    text = str(exc)
    match = _PATH_RE.search(text)
    field = match.group(1) if match else None
    missing = _MISSING_RE.search(text)
    if missing:
        field = f"{field or '$'}.{missing.group(1)}"
    if isinstance(exc, msgspec.ValidationError):
        reason = "missing-field" if "missing required field" in text.lower() else "invalid-field"
    else:
        reason = "malformed-json"
    return SchemaError(f"invalid {what}: {text}", field=field, reason=reason)


def encode(message: msgspec.Struct) -> bytes:
    """Encode a message to JSON bytes, validating it exactly as a reader would.

    Raises :class:`SchemaError` if a value is out of range or the payload exceeds 16 KiB.
    """
    _check_finite(message)
    data = _encoder.encode(message)
    decoder = _decoders.get(type(message))
    if decoder is None:
        raise SchemaError(f"{type(message).__name__} is not a message type of the contract")
    _check_size(data)
    try:
        decoder.decode(data)
    except msgspec.MsgspecError as exc:
        raise _schema_error(exc, type(message).__name__) from None
    return data


def _check_finite(message: msgspec.Struct) -> None:
    """JSON has no NaN or infinity (msgspec would write ``null``): refuse them by name."""
    for name in message.__struct_fields__:
        _check_value(getattr(message, name), f"$.{name}")


def _check_value(value: object, path: str) -> None:
    if isinstance(value, float) and not math.isfinite(value):
        raise SchemaError(f"{path} is {value}: only finite numbers are allowed", field=path)
    if isinstance(value, dict):
        for key, item in value.items():
            _check_value(item, f"{path}.{key}")
    elif isinstance(value, list):
        for i, item in enumerate(value):
            _check_value(item, f"{path}[{i}]")
    elif isinstance(value, msgspec.Struct):
        for name in value.__struct_fields__:
            _check_value(getattr(value, name), f"{path}.{name}")


def _check_size(data: bytes | bytearray | memoryview) -> None:
    if len(data) > MAX_PAYLOAD_BYTES:
        raise SchemaError(
            f"payload of {len(data)} bytes exceeds the {MAX_PAYLOAD_BYTES}-byte limit",
            field="payload",
            reason="too-large",
        )


@overload
def decode(data: bytes | bytearray | memoryview, type_: type[T]) -> T: ...
@overload
def decode(data: bytes | bytearray | memoryview, type_: None = None) -> Message: ...
def decode(data: bytes | bytearray | memoryview, type_: type[T] | None = None) -> T | Message:
    """Decode and validate a payload; with ``type_`` it must be that message type.

    Unknown fields (from a newer minor version) are ignored. Anything else wrong raises
    :class:`SchemaError` naming the field.
    """
    _check_size(data)
    try:
        if type_ is None:
            return _any_decoder.decode(data)
        decoder = _decoders.get(type_)
        if decoder is None:
            raise SchemaError(f"{type_.__name__} is not a message type of the contract")
        return decoder.decode(data)  # type: ignore[return-value]
    except msgspec.MsgspecError as exc:
        raise _schema_error(exc, type_.__name__ if type_ else "message") from None
    except RecursionError:  # msgspec's decoder on JSON nested thousands deep
        raise SchemaError(f"invalid {type_.__name__ if type_ else 'message'}: JSON nested too deeply",
                          field="payload", reason="malformed-json") from None


def type_for_kind(kind: DeskKind | str) -> type[msgspec.Struct]:
    """The message type published under a desk topic kind (or ``alert``/``alert-log``)."""
    key = kind.value if isinstance(kind, DeskKind) else kind
    try:
        return _KIND_TO_TYPE[key]
    except KeyError:
        raise SchemaError(f"no message type for kind {key!r}", field="kind") from None


def decode_topic(topic: str, data: bytes | bytearray | memoryview) -> tuple[Topic, Message | None]:
    """Parse ``topic`` and decode ``data`` as the message that topic carries.

    The payload's ``site`` and ``desk`` (and ``rule`` for alerts) must match the topic's. An empty
    payload is valid only on an alert topic, where it clears the alert: then the message is None.
    """
    parsed = parse_topic(topic)
    if isinstance(parsed, AlertTopic):
        if len(data) == 0:
            return parsed, None
        alert = decode(data, Alert)
        _match(parsed.site, alert.site, "site")
        _match(parsed.desk, alert.desk, "desk")
        _match(parsed.rule, alert.rule, "rule")
        return parsed, alert
    if isinstance(parsed, AlertLogTopic):
        log = decode(data, AlertLog)
        _match(parsed.site, log.site, "site")
        return parsed, log
    assert isinstance(parsed, DeskTopic)
    return parsed, decode_desk(parsed, data)


_DESK_TYPES: dict[DeskKind, type[msgspec.Struct]] = {k: _KIND_TO_TYPE[k.value] for k in DeskKind
                                                     if k.value in _KIND_TO_TYPE}


def decode_desk(topic: DeskTopic, data: bytes | bytearray | memoryview,
                ) -> State | Metrics | Event | Minute | Call | Config | Cti:
    """The payload half of :func:`decode_topic`, for a desk topic already parsed.

    For a subscriber that parses each topic string once and keeps the :class:`DeskTopic`: the same
    checks in the same order with the same errors (``empty``, ``too-large``, the decoder's, then the
    site and desk of the payload against the topic's), one decoder per kind.
    """
    if len(data) == 0:
        raise SchemaError(f"empty payload on {topic}", field="payload", reason="empty")
    message = decode(data, _DESK_TYPES.get(topic.kind) or type_for_kind(topic.kind))
    assert isinstance(message, (State, Metrics, Event, Minute, Call, Config, Cti))
    _match(topic.site, message.site, "site")
    _match(topic.desk, message.desk, "desk")
    return message


def _match(from_topic: str, from_payload: str, field: str) -> None:
    if from_topic != from_payload:
        raise SchemaError(
            f"topic {field} {from_topic!r} differs from payload {field} {from_payload!r}",
            field=f"$.{field}",
            reason=f"{field}-mismatch",
        )
