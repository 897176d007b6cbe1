"""The one error type of the contract."""

from __future__ import annotations

REJECT_REASONS: tuple[str, ...] = (
    "malformed-json", "missing-field", "invalid-field", "too-large", "empty", "site-mismatch", "desk-mismatch",
    "invalid",
)
"""Every :attr:`SchemaError.reason` the contract raises (consumers count rejections by these)."""


class SchemaError(ValueError):
    """A topic or payload that breaks the contract.

    ``field`` names the offending field (a JSON path such as ``$.seq`` or a topic part) when known;
    ``reason`` is a short machine-friendly category used for reject counters.
    """

    def __init__(self, message: str, *, field: str | None = None, reason: str = "invalid") -> None:
        super().__init__(message)
        self.field = field
        self.reason = reason
