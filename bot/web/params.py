"""Parsing what people type: durations (``10s``, ``180d``) and points in time (``2026-03-01``).

Shared by the REST API's query parameters and the CLI's flags so both accept the same words.
Every error says what was expected and ends with ``Received: ...``.
"""

from __future__ import annotations

import math
import re
from datetime import UTC, date, datetime

_UNITS_S = {"ms": 0.001, "s": 1.0, "m": 60.0, "min": 60.0, "h": 3600.0, "d": 86400.0, "w": 604800.0}
_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(ms|s|min|m|h|d|w)?\s*$")


def parse_duration(
    text: str,
    *,
    default_unit: str = "s",
    min_s: float = 0.0,
    max_s: float = math.inf,
    name: str = "duration",
) -> float:
    """Seconds in ``text``: a number with an optional unit (ms, s, m/min, h, d, w); a bare number
    is in ``default_unit``. Raises ``ValueError`` outside ``[min_s, max_s]``."""
    match = _DURATION.match(text) if isinstance(text, str) else None
    if match is None:
        raise ValueError(
            f"Expected {name} as a number with an optional unit (ms, s, m, h, d, w), "
            "e.g. 10s or 180d. "
            f"Received: {_shown(text)}"
        )
    seconds = float(match.group(1)) * _UNITS_S[match.group(2) or default_unit]
    if not (math.isfinite(seconds) and min_s <= seconds <= max_s):
        raise ValueError(
            f"Expected {name} from {_human(min_s)} to {_human(max_s)}. Received: {_shown(text)}"
        )
    return seconds


def parse_time(text: str, *, name: str = "time") -> datetime:
    """An aware UTC datetime from ISO 8601 (``2026-03-01``, ``2026-03-01T09:00``,
    ``2026-03-01T09:00:00+01:00``; no offset means UTC) or Unix seconds (``1772355600``)."""
    if not isinstance(text, str) or not text.strip():
        raise ValueError(
            f"Expected {name} as an ISO 8601 date or time, or Unix seconds. "
            f"Received: {_shown(text)}"
        )
    value = text.strip()
    try:
        if re.fullmatch(r"\d+(\.\d+)?", value):
            seconds = float(value)
            if seconds > 253402300799:  # 9999-12-31: datetime's end
                raise ValueError(value)
            return datetime.fromtimestamp(seconds, UTC)
        if re.fullmatch(r"\d{4}-\d{2}-\d{2}", value):
            day = date.fromisoformat(value)
            return datetime(day.year, day.month, day.day, tzinfo=UTC)
        parsed = datetime.fromisoformat(
            value.replace("Z", "+00:00") if value.endswith("Z") else value
        )
        # astimezone may overflow near year 1 or 9999.
        return parsed.replace(tzinfo=UTC) if parsed.tzinfo is None else parsed.astimezone(UTC)
    except (ValueError, OverflowError, OSError):
        raise ValueError(
            f"Expected {name} as an ISO 8601 date or time (2026-03-01, 2026-03-01T09:00Z) or Unix "
            f"seconds. Received: {_shown(text)}"
        ) from None


def _human(seconds: float) -> str:
    if math.isinf(seconds):
        return "any length"
    if seconds >= 86400 and seconds % 86400 == 0:
        return f"{seconds / 86400:g} d"
    return f"{seconds:g} s"


def _shown(text: object) -> str:
    shown = repr(text)
    return shown if len(shown) <= 80 else shown[:77] + "..."
