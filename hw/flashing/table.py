"""Plain-text tables for the terminal: a header row, columns padded to their widest cell."""

from __future__ import annotations

from collections.abc import Iterable, Sequence


def format_table(header: Sequence[str], rows: Iterable[Sequence[str]]) -> str:
    """Left-aligned columns two spaces apart; the last column is not padded."""
    all_rows = [tuple(header)] + [tuple(r) for r in rows]
    widths = [max(len(r[i]) for r in all_rows) for i in range(len(header))]
    lines = ("  ".join(c.ljust(widths[i]) for i, c in enumerate(r[:-1])) + "  " + r[-1] for r in all_rows)
    return "\n".join(line.rstrip() for line in lines)
