"""Structured logs of the desk agent: one record per line on stderr.

``json`` format: one JSON object per line (``ts`` ISO 8601 UTC, ``level``, ``logger``, ``msg`` and
any ``extra`` fields given as ``log.info("msg", extra={"fields": {...}})`` or through :func:`kv`).
``kv`` format: ``ts=... level=info logger=... msg="..." key=value``, for a terminal.
No audio, no transcripts: log numbers, states and ids only.
"""

from __future__ import annotations

import json
import logging
import sys
import time
from collections.abc import Mapping
from typing import Any, TextIO

LEVELS = ("debug", "info", "warning", "error")
FORMATS = ("json", "kv")
ROOT = "device"


def kv(**fields: Any) -> dict[str, Any]:
    """``extra=`` for a log call carrying structured fields: ``log.info("x", extra=kv(a=1))``."""
    return {"fields": fields}


def _ts(record: logging.LogRecord) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created)) + f".{int(record.msecs):03d}Z"


def _fields(record: logging.LogRecord) -> Mapping[str, Any]:
    fields = getattr(record, "fields", None)
    return fields if isinstance(fields, Mapping) else {}


class JsonFormatter(logging.Formatter):
    """One JSON object per line."""

    def format(self, record: logging.LogRecord) -> str:
        out: dict[str, Any] = {"ts": _ts(record), "level": record.levelname.lower(), "logger": record.name,
                               "msg": record.getMessage()}
        for key, value in _fields(record).items():
            out.setdefault(key, value)
        if record.exc_info:
            out["exc"] = self.formatException(record.exc_info)
        return json.dumps(out, default=str, ensure_ascii=False)


def _kv_value(value: Any) -> str:
    text = str(value)
    if not text or any(c in text for c in ' "=\n'):
        return json.dumps(text, ensure_ascii=False)
    return text


class KvFormatter(logging.Formatter):
    """``key=value`` pairs, one record per line."""

    def format(self, record: logging.LogRecord) -> str:
        parts = [f"ts={_ts(record)}", f"level={record.levelname.lower()}", f"logger={record.name}",
                 f"msg={_kv_value(record.getMessage())}"]
        parts += [f"{k}={_kv_value(v)}" for k, v in _fields(record).items()]
        line = " ".join(parts)
        if record.exc_info:
            line += " exc=" + _kv_value(self.formatException(record.exc_info))
        return line


def setup(level: str = "info", fmt: str = "json", stream: TextIO | None = None) -> logging.Logger:
    """Configure the ``device`` logger tree to write to ``stream`` (default stderr); idempotent."""
    if level not in LEVELS:
        raise ValueError(f"log level {level!r}: choose from {', '.join(LEVELS)}")
    if fmt not in FORMATS:
        raise ValueError(f"log format {fmt!r}: choose from {', '.join(FORMATS)}")
    logger = logging.getLogger(ROOT)
    for h in list(logger.handlers):
        if getattr(h, "_headset_agent", False):
            logger.removeHandler(h)
    handler = logging.StreamHandler(stream or sys.stderr)
    handler.setFormatter(JsonFormatter() if fmt == "json" else KvFormatter())
    handler._headset_agent = True  # type: ignore[attr-defined]
    logger.addHandler(handler)
    logger.setLevel(level.upper())
    logger.propagate = False
    return logger
