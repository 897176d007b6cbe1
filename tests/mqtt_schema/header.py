"""The message header fields the schema tests spell out, typed for ``**HEADER`` into the messages."""

from __future__ import annotations

from typing import TypedDict


class Header(TypedDict):
    """The header every message carries (mqtt_schema's common fields)."""

    site: str
    desk: str
    boot: int
    seq: int
    ts: int
