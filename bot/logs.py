"""Structured logs: readable lines for a person, or one JSON object per line for a log collector.

Fields passed with ``logger.info("...", extra={"meeting_id": ...})`` become keys of the JSON
object, so a collector can filter by meeting or bot without parsing messages.
"""

from __future__ import annotations

import json
import logging
import sys
from datetime import UTC, datetime
from typing import Any, TextIO

# Attributes every LogRecord has; anything else on a record came from ``extra=`` and is kept.
_STANDARD_ATTRIBUTES = frozenset(
    vars(logging.LogRecord("", logging.INFO, "", 0, "", None, None)).keys()
) | {"message", "asctime", "taskName"}

_TEXT_FORMAT = "%(asctime)s %(levelname)-7s %(name)s: %(message)s"


class JsonLinesFormatter(logging.Formatter):
    """One JSON object per record: ``t`` (ISO 8601 UTC), ``level``, ``logger``, ``message``, the
    record's ``extra`` fields, and ``exception`` (the formatted traceback) when there is one."""

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "t": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        for key, value in vars(record).items():
            if key not in _STANDARD_ATTRIBUTES and not key.startswith("_"):
                entry[key] = value
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        elif record.exc_text:
            entry["exception"] = record.exc_text
        if record.stack_info:
            entry["stack"] = self.formatStack(record.stack_info)
        # default=str: an extra value that JSON cannot hold is logged as its text, never dropped.
        return json.dumps(entry, ensure_ascii=False, default=str)


def configure_logging(
    level: str = "INFO", log_format: str = "text", stream: TextIO | None = None
) -> logging.Handler:
    """Installs one handler on the root logger (replacing the one this function installed
    before) and returns it. ``log_format`` is ``"text"`` or ``"json"``."""
    if log_format not in ("text", "json"):
        raise ValueError(f"Expected a log format in ['text', 'json']. Received: {log_format!r}")
    handler = logging.StreamHandler(stream or sys.stderr)
    handler.setFormatter(
        JsonLinesFormatter() if log_format == "json" else logging.Formatter(_TEXT_FORMAT)
    )
    handler._classpulse = True  # type: ignore[attr-defined]  # marks the handler we own
    root = logging.getLogger()
    for old in [h for h in root.handlers if getattr(h, "_classpulse", False)]:
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(level.upper())
    # Alembic announces its plugins and dialect at INFO on every start (migrations run each
    # time the storage opens); its warnings still show.
    logging.getLogger("alembic").setLevel(max(logging.WARNING, root.level))
    return handler
