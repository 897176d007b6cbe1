"""Schema 1.1 and 1.2: the ``call`` summary and ``cti`` call state round-trip, stay additive for older readers,
and refuse what breaks the contract (by field)."""

from __future__ import annotations

import json

import msgspec
import pytest

from mqtt_schema import (
    QOS,
    RETAIN,
    SCHEMA_MINOR,
    Call,
    CallStatus,
    Cti,
    CtiPhase,
    DeskKind,
    DeskTopic,
    Metrics,
    Minute,
    SchemaError,
    decode,
    decode_topic,
    desk_filter,
    encode,
    type_for_kind,
)
from mqtt_schema.json_schema import build_schemas
from tests.mqtt_schema.header import Header

HEADER: Header = {"site": "site1", "desk": "d01", "boot": 3, "seq": 7, "ts": 1_795_000_000_000}


def call(**kw: object) -> Call:
    fields: dict[str, object] = {**HEADER, "call_id": "5f2c0a9e41b7d388", "source": "baresip",
                                 "direction": "incoming", "start_ts": 1_794_999_990_000, "end_ts": 1_795_000_000_000,
                                 "answered": True, "rings": 2, "ring_s": 6.1, "greeting_latency_s": 1.2,
                                 "talk_s": 3.9, "answer_ok": True, "greeting_ok": True}
    fields.update(kw)
    return msgspec.convert(fields, Call)


def test_the_new_kinds_have_topics_qos_and_types() -> None:
    assert SCHEMA_MINOR >= 1
    assert str(DeskTopic("site1", "d01", DeskKind.CALL)) == "hsc/v1/site1/d01/call"
    assert str(DeskTopic("site1", "d01", DeskKind.CTI)) == "hsc/v1/site1/d01/cti"
    assert (QOS["call"], RETAIN["call"], QOS["cti"], RETAIN["cti"]) == (1, False, 1, False)
    assert type_for_kind(DeskKind.CALL) is Call and type_for_kind("cti") is Cti
    assert desk_filter("site1", kind=DeskKind.CALL) == "hsc/v1/site1/+/call"
    assert {"call.schema.json", "cti.schema.json"} <= set(build_schemas())


def test_call_round_trips_through_its_topic() -> None:
    c = call(intonation_st=6.8, monotone_share=0.25, level_dbov=-25.4, rate_spm=126.0)
    topic, back = decode_topic("hsc/v1/site1/d01/call", encode(c))
    assert back == c and isinstance(topic, DeskTopic) and topic.kind is DeskKind.CALL
    doc = json.loads(encode(c))
    assert doc["type"] == "call" and doc["silent_call"] is None  # not measured: null, never a guess
    assert not any(isinstance(v, str) and ("sip:" in v or "@" in v) for v in doc.values())


def test_cti_round_trips_and_has_no_desk_header() -> None:
    cti = Cti(site="site1", desk="d01", ts=1, call_id="1795000000.4711@pbx", phase=CtiPhase.ESTABLISHED,
              rings=3)
    _, back = decode_topic("hsc/v1/site1/d01/cti", encode(cti))
    assert back == cti
    assert "boot" not in json.loads(encode(cti))


@pytest.mark.parametrize(("kind", "doc", "field"), [
    ("call", {"call_id": "sip:13800138000@pbx"}, "$.call_id"),  # ids are hashes, never a number or URI
    ("call", {"rings": -1}, "$.rings"),
    ("call", {"monotone_share": 1.5}, "$.monotone_share"),
    ("call", {"greeting_latency_s": -0.1}, "$.greeting_latency_s"),
    ("call", {"source": "Bare SIP"}, "$.source"),
    ("cti", {"call_id": "has space"}, "$.call_id"),
    ("cti", {"phase": "on-hold"}, "$.phase"),
])
def test_bad_values_are_refused_naming_the_field(kind: str, doc: dict[str, object], field: str) -> None:
    if kind == "call":
        base = json.loads(encode(call()))
    else:
        base = {"type": "cti", "v": 1, "site": "site1", "desk": "d01", "ts": 1, "call_id": "x1", "phase": "ringing"}
    base.update(doc)
    with pytest.raises(SchemaError) as err:
        decode_topic(f"hsc/v1/site1/d01/{kind}", json.dumps(base).encode())
    assert err.value.field == field


def test_a_cti_for_another_desk_is_refused() -> None:
    cti = Cti(site="site1", desk="d02", ts=1, call_id="x", phase=CtiPhase.RINGING)
    with pytest.raises(SchemaError) as err:
        decode_topic("hsc/v1/site1/d01/cti", encode(cti))
    assert err.value.reason == "desk-mismatch"


def test_new_fields_are_optional_and_old_payloads_decode() -> None:
    """A 1.0 desk's metrics and minute (no 1.1 fields) decode with the 1.1 fields null."""
    old_metrics = {"type": "metrics", "v": 1, **HEADER, "speaking": True}
    m = decode(json.dumps(old_metrics).encode(), Metrics)
    assert (m.call, m.intonation_st, m.monotone) == (None, None, None)
    old_minute = {"type": "minute", "v": 1, **HEADER, "minute_ts": 1_794_999_960_000}
    n = decode(json.dumps(old_minute).encode(), Minute)
    assert (n.intonation_st, n.monotone_s) == (None, None)


def test_a_1_0_reader_reads_1_1_metrics_and_minutes() -> None:
    """The 1.0 structs (the same minus the 1.1 fields) decode 1.1 payloads: unknown fields are ignored."""
    new = ("call", "intonation_st", "monotone", "monotone_s")

    def v1_0(t: type[msgspec.Struct]) -> type[msgspec.Struct]:
        fields = [(f.name, f.type, f.default if f.default is not msgspec.NODEFAULT else msgspec.NODEFAULT)
                  for f in msgspec.structs.fields(t) if f.name not in new]
        return msgspec.defstruct(t.__name__, [(n, tp) if d is msgspec.NODEFAULT else (n, tp, d) for n, tp, d in fields],
                                 kw_only=True, tag=t.__struct_config__.tag, tag_field="type")

    metrics = Metrics(**HEADER, call=CallStatus.ESTABLISHED, intonation_st=6.4, monotone=False)
    old = msgspec.json.decode(encode(metrics), type=v1_0(Metrics))
    assert old.seq == 7 and not hasattr(old, "call")  # type: ignore[attr-defined]
    minute = Minute(**HEADER, minute_ts=1_794_999_960_000, intonation_st=6.1, monotone_s=3.0)
    assert msgspec.json.decode(encode(minute), type=v1_0(Minute)).minute_ts == 1_794_999_960_000  # type: ignore[attr-defined]


def test_metrics_call_state_values() -> None:
    for status in CallStatus:
        m = Metrics(**HEADER, call=status)
        assert decode(encode(m), Metrics).call is status
    bad = json.loads(encode(Metrics(**HEADER)))
    bad["call"] = "closed"  # closed is a transition, not a live state: the desk is idle again
    with pytest.raises(SchemaError) as err:
        decode(json.dumps(bad).encode(), Metrics)
    assert err.value.field == "$.call"


def test_1_2_far_end_fields_are_optional_and_a_1_1_reader_ignores_them() -> None:
    """1.2 adds the far end and the silent-call norm to ``call``: a 1.1 payload decodes with them null,
    and the 1.1 struct (without them) reads a 1.2 payload."""
    assert SCHEMA_MINOR == 2
    new = ("far_talk_s", "silent_prompts", "silent_min_wait_s", "silent_call_ok")
    old_doc = json.loads(encode(call()))
    for name in new:
        old_doc.pop(name)
    c = decode(json.dumps(old_doc).encode(), Call)
    assert (c.far_talk_s, c.silent_prompts, c.silent_min_wait_s, c.silent_call_ok) == (None, None, None, None)
    v1_1 = msgspec.defstruct("Call", [(f.name, f.type, f.default) if f.default is not msgspec.NODEFAULT
                                      else (f.name, f.type) for f in msgspec.structs.fields(Call) if f.name not in new],
                             kw_only=True, tag="call", tag_field="type")
    silent = call(silent_call=True, longest_mutual_silence_s=2.6, far_talk_s=0.0, silent_prompts=2,
                  silent_min_wait_s=2.4, silent_call_ok=True)
    assert msgspec.json.decode(encode(silent), type=v1_1).silent_call is True  # type: ignore[attr-defined]
    assert decode_topic("hsc/v1/site1/d01/call", encode(silent))[1] == silent
    schema = build_schemas()["call.schema.json"]["$defs"]["Call"]
    assert set(new) <= set(schema["properties"]) and not set(new) & set(schema["required"])


@pytest.mark.parametrize(("doc", "field"), [({"silent_prompts": -1}, "$.silent_prompts"),
                                            ({"far_talk_s": -0.5}, "$.far_talk_s"),
                                            ({"silent_call_ok": "yes"}, "$.silent_call_ok")])
def test_bad_1_2_values_are_refused_naming_the_field(doc: dict[str, object], field: str) -> None:
    base = json.loads(encode(call()))
    base.update(doc)
    with pytest.raises(SchemaError) as err:
        decode_topic("hsc/v1/site1/d01/call", json.dumps(base).encode())
    assert err.value.field == field
