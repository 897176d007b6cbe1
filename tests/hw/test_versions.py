"""Firmware versions are compared as versions, not as strings."""

from __future__ import annotations

import pytest

from hw.flashing.versions import FirmwareVersion, is_older


@pytest.mark.parametrize(("older", "newer"), [
    ("1.9.2", "1.10.0"), ("0.9", "0.10"), ("1.0.0", "1.0.1"), ("1.2.0-rc1", "1.2.0"), ("1.2.0rc1", "1.2.0rc2"),
    ("1.2.0.dev3", "1.2.0a1"), ("1.2.0-alpha.2", "1.2.0-beta.1"), ("1.99.99", "v2"), ("2.0.0-rc9", "2.0.0"),
])
def test_order(older: str, newer: str) -> None:
    assert FirmwareVersion.parse(older) < FirmwareVersion.parse(newer)
    assert is_older(older, newer) is True and is_older(newer, older) is False


def test_equal_versions_are_not_older() -> None:
    assert FirmwareVersion.parse("1.2") == FirmwareVersion.parse("1.2.0") == FirmwareVersion.parse("v1.2.0+build7")
    assert is_older("1.2", "1.2.0") is False  # as strings, "1.2" < "1.2.0"


def test_unknown_or_unreadable_is_not_guessed() -> None:
    assert is_older(None, "1.0.0") is None and is_older("", "1.0.0") is None and is_older("banana", "1.0.0") is None
    with pytest.raises(ValueError, match="'1.0.0-wat' is not a version number"):
        FirmwareVersion.parse("1.0.0-wat")
