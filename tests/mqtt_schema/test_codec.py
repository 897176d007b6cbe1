"""Payload encoding and validation: round trips, errors that name the field, bounds."""

from __future__ import annotations

import json

import msgspec
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mqtt_schema import (
    MAX_PAYLOAD_BYTES,
    Alert,
    AlertLog,
    AlertTransition,
    Config,
    Cue,
    DeskStatus,
    Event,
    EventKind,
    Metrics,
    Minute,
    Posture,
    SchemaError,
    State,
    Versions,
    decode,
    decode_topic,
    encode,
)
from tests.mqtt_schema.header import Header

HEADER: Header = dict(site="site1", desk="d01", boot=3, seq=42, ts=1_795_000_000_000)


def sample_messages() -> list[msgspec.Struct]:
    return [
        State(**HEADER, status=DeskStatus.ONLINE, versions=Versions(agent="0.1.0", schema="1.0"),
              capabilities=["dual-mic", "imu"], config_hash="ab12cd34"),
        Metrics(**HEADER, speaking=True, speech_s=0.8, level_dbov=-26.5, rate_spm=131.0, distance_cm=5.2,
                noise_dbov=-58.0, clipping=0.0, worn=True, posture=Posture.UPRIGHT, pitch_deg=3.0,
                roll_deg=-1.0, cues=[Cue.PACE_FAST]),
        Event(**HEADER, kind=EventKind.CUE_ON, cue=Cue.VOLUME_HIGH, value=-14.0),
        Minute(**HEADER, minute_ts=1_794_999_960_000, speech_s=31.5, level_dbov=-25.0, rate_spm=118.0,
               cue_s={Cue.PACE_FAST: 4.0}, worn_s=60.0, upright_s=60.0),
        Config(site="site1", desk="d01", ts=1, config={"cues": {"pace": {"high_spm": 150}}}),
        Alert(site="site1", desk="d01", rule="break-overrun", level=2, since_ts=1, ts=2),
        AlertLog(site="site1", desk="d01", rule="posture", transition=AlertTransition.FIRING, ts=3),
    ]


@pytest.mark.parametrize("message", sample_messages(), ids=lambda m: type(m).__name__)
def test_round_trip(message: msgspec.Struct) -> None:
    data = encode(message)
    assert decode(data) == message
    assert decode(data, type(message)) == message


def test_wrong_type_names_the_field() -> None:
    doc = json.loads(encode(sample_messages()[1]))
    doc["seq"] = "forty-two"
    with pytest.raises(SchemaError) as err:
        decode(json.dumps(doc).encode(), Metrics)
    assert err.value.field == "$.seq"
    assert "seq" in str(err.value)


def test_missing_field_names_the_field() -> None:
    doc = json.loads(encode(sample_messages()[1]))
    del doc["boot"]
    with pytest.raises(SchemaError) as err:
        decode(json.dumps(doc).encode(), Metrics)
    assert err.value.field == "$.boot"
    assert err.value.reason == "missing-field"


@pytest.mark.parametrize(
    ("field", "value"),
    [("level_dbov", 20.0), ("rate_spm", -1.0), ("distance_cm", 500.0), ("clipping", 1.5),
     ("pitch_deg", 270.0), ("site", "Site 1"), ("v", 2), ("speech_s", 61.0)],
)
def test_out_of_range_values_are_rejected(field: str, value: object) -> None:
    doc = json.loads(encode(sample_messages()[1]))
    doc[field] = value
    with pytest.raises(SchemaError) as err:
        decode(json.dumps(doc).encode(), Metrics)
    assert err.value.field == f"$.{field}"


def test_unknown_fields_from_a_newer_minor_version_are_tolerated() -> None:
    doc = json.loads(encode(sample_messages()[1]))
    doc["pitch_variation_st"] = 2.5
    assert decode(json.dumps(doc).encode(), Metrics).rate_spm == 131.0


def test_encode_refuses_values_a_reader_would_refuse() -> None:
    with pytest.raises(SchemaError, match="level_dbov"):
        encode(Metrics(**HEADER, level_dbov=float("nan")))
    with pytest.raises(SchemaError):
        negative_seq: Header = {**HEADER, "seq": -1}
        encode(Metrics(**negative_seq))


def test_payloads_over_16_kib_are_refused() -> None:
    big = Config(site="site1", desk="d01", ts=1, config={"pad": "x" * MAX_PAYLOAD_BYTES})
    with pytest.raises(SchemaError) as err:
        encode(big)
    assert err.value.reason == "too-large"
    with pytest.raises(SchemaError):
        decode(b" " * (MAX_PAYLOAD_BYTES + 1))


def test_free_text_is_short() -> None:
    with pytest.raises(SchemaError, match="message"):
        encode(Event(**HEADER, kind=EventKind.ERROR, message="x" * 201))


def test_lists_are_short_so_no_samples_fit() -> None:
    doc = json.loads(encode(sample_messages()[1]))
    doc["cues"] = ["pace_fast"] * 100
    with pytest.raises(SchemaError):
        decode(json.dumps(doc).encode(), Metrics)


def test_decode_topic_checks_kind_and_desk() -> None:
    metrics = encode(sample_messages()[1])
    topic, message = decode_topic("hsc/v1/site1/d01/metrics", metrics)
    assert isinstance(message, Metrics)
    with pytest.raises(SchemaError) as err:
        decode_topic("hsc/v1/site1/d02/metrics", metrics)
    assert err.value.reason == "desk-mismatch"
    with pytest.raises(SchemaError):
        decode_topic("hsc/v1/site1/d01/event", metrics)
    with pytest.raises(SchemaError):
        decode_topic("hsc/v1/site1/d01/state", b"")


def test_empty_payload_clears_an_alert() -> None:
    topic, message = decode_topic("hsc/v1/site1/alert/d01/posture", b"")
    assert message is None


# --- property tests ------------------------------------------------------------------------------

finite = st.floats(allow_nan=False, allow_infinity=False)


@given(
    boot=st.integers(0, 2**53), seq=st.integers(0, 2**53), ts=st.integers(0, 2**53),
    level=st.none() | st.floats(-200, 10), rate=st.none() | st.floats(0, 1200),
    dist=st.none() | st.floats(0, 100), clip=st.floats(0, 1), speaking=st.booleans(),
    cues=st.lists(st.sampled_from(list(Cue)), max_size=7), posture=st.sampled_from(list(Posture)),
)
def test_metrics_round_trip(boot: int, seq: int, ts: int, level: float | None, rate: float | None,
                            dist: float | None, clip: float, speaking: bool, cues: list[Cue],
                            posture: Posture) -> None:
    m = Metrics(site="s", desk="d", boot=boot, seq=seq, ts=ts, level_dbov=level, rate_spm=rate,
                distance_cm=dist, clipping=clip, speaking=speaking, cues=cues, posture=posture)
    assert decode(encode(m), Metrics) == m


@given(kind=st.sampled_from(list(EventKind)), cue=st.none() | st.sampled_from(list(Cue)),
       value=st.none() | finite, count=st.none() | st.integers(0, 10**9),
       message=st.none() | st.text(max_size=200))
def test_event_round_trip(kind: EventKind, cue: Cue | None, value: float | None, count: int | None,
                          message: str | None) -> None:
    e = Event(**HEADER, kind=kind, cue=cue, value=value, count=count, message=message)
    assert decode(encode(e)) == e


@settings(max_examples=300)
@given(st.binary(max_size=2048))
def test_random_bytes_raise_only_schema_error(data: bytes) -> None:
    for type_ in (None, State, Metrics, Event, Minute, Config, Alert, AlertLog):
        try:
            decode(data, type_)
        except SchemaError:
            pass


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | finite | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=10), inner, max_size=4),
    max_leaves=20,
)


@settings(max_examples=300)
@given(base=st.sampled_from(sample_messages()), key=st.text(max_size=12), value=json_values)
def test_mutated_documents_raise_only_schema_error(base: msgspec.Struct, key: str, value: object) -> None:
    doc = json.loads(encode(base))
    target = key if key in doc or not doc else sorted(doc)[len(key) % len(doc)]
    doc[target] = value
    try:
        decode(json.dumps(doc).encode(), type(base))
    except SchemaError:
        pass
