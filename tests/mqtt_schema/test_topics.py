"""Topic building and parsing: ids are validated, strings round-trip."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from mqtt_schema import (
    AlertLogTopic,
    AlertTopic,
    DeskKind,
    DeskTopic,
    SchemaError,
    alert_filter,
    desk_filter,
    parse_topic,
    shared,
)

ids = st.from_regex(r"[a-z0-9-]{1,32}", fullmatch=True).filter(lambda s: s not in ("alert", "alert-log"))


def test_desk_topic_builds_the_documented_string() -> None:
    assert str(DeskTopic("site1", "d01", DeskKind.METRICS)) == "hsc/v1/site1/d01/metrics"


def test_alert_topics_build_the_documented_strings() -> None:
    assert str(AlertTopic("site1", "d01", "posture")) == "hsc/v1/site1/alert/d01/posture"
    assert str(AlertLogTopic("site1")) == "hsc/v1/site1/alert-log"


@pytest.mark.parametrize("bad", ["", "Site", "a/b", "a+b", "#", "x" * 33, "dé", "a b"])
def test_bad_ids_are_refused_with_the_field_named(bad: str) -> None:
    with pytest.raises(SchemaError) as err:
        DeskTopic("site1", bad, DeskKind.STATE)
    assert err.value.field == "desk"
    assert "desk" in str(err.value)


def test_reserved_words_cannot_be_desks() -> None:
    with pytest.raises(SchemaError, match="reserved"):
        DeskTopic("site1", "alert", DeskKind.STATE)


@pytest.mark.parametrize(
    "topic",
    ["hsc/v2/s/d/state", "hsc/v1/s/d/audio", "hsc/v1/s/d", "other/v1/s/d/state", "hsc/v1/S/d/state",
     "hsc/v1/s/alert/d", "hsc/v1/s/d/state/extra/x"],
)
def test_foreign_topics_are_refused(topic: str) -> None:
    with pytest.raises(SchemaError):
        parse_topic(topic)


@given(ids, ids, st.sampled_from(list(DeskKind)))
def test_desk_topics_round_trip(site: str, desk: str, kind: DeskKind) -> None:
    topic = DeskTopic(site, desk, kind)
    assert parse_topic(str(topic)) == topic


@given(ids, ids, ids)
def test_alert_topics_round_trip(site: str, desk: str, rule: str) -> None:
    topic = AlertTopic(site, desk, rule)
    assert parse_topic(str(topic)) == topic
    assert parse_topic(str(AlertLogTopic(site))) == AlertLogTopic(site)


def test_filters() -> None:
    assert desk_filter() == "hsc/v1/+/+/+"
    assert desk_filter("site1", kind=DeskKind.STATE) == "hsc/v1/site1/+/state"
    assert alert_filter("site1") == "hsc/v1/site1/alert/#"
    assert shared("hosts", desk_filter("site1")) == "$share/hosts/hsc/v1/site1/+/+"
    with pytest.raises(SchemaError):
        desk_filter("site1", kind="audio")
    with pytest.raises(SchemaError):
        desk_filter("Site1")
