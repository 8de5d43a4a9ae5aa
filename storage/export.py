"""Export of any query result to CSV or JSON, for the teacher's own tools.

JSON keeps the nesting of the result dataclasses. CSV needs flat rows: nested dataclasses become
``parent.field`` columns, and a result holding one list of rows (a meeting summary's students)
becomes one CSV row per element with the parent's fields repeated. Times are ISO 8601 UTC.
"""

from __future__ import annotations

import csv
import dataclasses
import json
from collections.abc import Sequence
from datetime import datetime
from pathlib import Path
from typing import Any, TextIO

FORMATS = ("csv", "json")


def to_jsonable(value: Any) -> Any:
    """Dataclasses to dicts, tuples to lists, datetimes to ISO strings."""
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: to_jsonable(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, list | tuple):
        return [to_jsonable(item) for item in value]
    if isinstance(value, datetime):
        return value.isoformat()
    # Names stay exactly as stored: formula escaping is a CSV matter (``_csv_cell``).
    return value


def to_records(value: Any) -> list[dict[str, Any]]:
    """Flat rows (column → value) for one result dataclass or a sequence of them."""
    items = list(value) if isinstance(value, list | tuple) else [value]
    records: list[dict[str, Any]] = []
    for item in items:
        if not (dataclasses.is_dataclass(item) and not isinstance(item, type)):
            raise ValueError(
                f"Expected query results (dataclasses) to export. Received: {type(item).__name__}"
            )
        records.extend(_flatten(item, prefix=""))
    return records


def write_json(value: Any, out: TextIO) -> None:
    json.dump(to_jsonable(value), out, indent=2, ensure_ascii=False)
    out.write("\n")


def write_csv(value: Any, out: TextIO) -> None:
    records = to_records(value)
    columns: list[str] = []
    for record in records:
        for key in record:
            if key not in columns:
                columns.append(key)
    writer = csv.DictWriter(out, fieldnames=columns, lineterminator="\n")
    writer.writeheader()
    for record in records:
        writer.writerow({key: _csv_cell(record.get(key)) for key in columns})


def export_to_path(value: Any, path: str | Path, format: str | None = None) -> Path:
    """Writes ``value`` to ``path`` as CSV or JSON (from ``format``, else the file's suffix)."""
    path = Path(path)
    chosen = (format or path.suffix.lstrip(".")).lower()
    if chosen not in FORMATS:
        raise ValueError(
            f"Expected an export format in {list(FORMATS)} (or a .csv / .json path). "
            f"Received: {format or str(path)!r}"
        )
    with path.open("w", encoding="utf-8", newline="") as out:
        (write_csv if chosen == "csv" else write_json)(value, out)
    return path


def _flatten(item: Any, prefix: str) -> list[dict[str, Any]]:
    scalars: dict[str, Any] = {}
    expanded: list[tuple[str, Sequence[Any]]] = []
    for field in dataclasses.fields(item):
        value = getattr(item, field.name)
        key = f"{prefix}{field.name}"
        if dataclasses.is_dataclass(value) and not isinstance(value, type):
            nested = _flatten(value, prefix=f"{key}.")
            if len(nested) != 1:
                raise ValueError(
                    f"Expected a list of rows only at the top of a result for CSV. Received: {key}"
                )
            scalars.update(nested[0])
        elif isinstance(value, list | tuple):
            expanded.append((key, value))
        else:
            scalars[key] = value
    if not expanded:
        return [scalars]
    if len(expanded) > 1:
        raise ValueError(
            "Expected at most one list of rows per result for CSV. "
            f"Received: {[key for key, _ in expanded]}"
        )
    key, children = expanded[0]
    rows = []
    for child in children:
        for flat in _flatten(child, prefix=f"{key}."):
            rows.append({**scalars, **flat})
    return rows or [scalars]


def _csv_cell(value: Any) -> Any:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, str) and value[:1] in _FORMULA_STARTS:
        # Display names come from meeting participants: "=HYPERLINK(...)" must stay text when a
        # teacher opens the export in a spreadsheet (CSV formula injection).
        return "'" + value
    return value


_FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")
