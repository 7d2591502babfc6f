"""Read event files (CSV with a header of API field names, or JSON lines) into events that
remember the file line they came from, so the API's answers can be mapped back to lines."""

from __future__ import annotations

import csv
import json
from collections.abc import Iterator
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any, Literal

EVENT_FIELDS = ("event_id", "event_time", "value", "metric", "arrival_time", "source")
REQUIRED_COLUMNS = ("event_id", "event_time", "value")
CSV_DELIMITERS = ",;\t"
SNIFF_BYTES = 64 * 1024

FileFormat = Literal["csv", "jsonl"]
JSONL_SUFFIXES = {".jsonl", ".ndjson", ".json"}
CSV_SUFFIXES = {".csv", ".tsv", ".txt"}


class FileProblem(Exception):
    """The file as a whole cannot be read (no header, unknown column, not UTF-8)."""


@dataclass(frozen=True, slots=True)
class FileEvent:
    line: int
    event: dict[str, Any]


@dataclass(frozen=True, slots=True)
class LineRejected:
    """A line refused before sending: the API would not know which event it was."""

    line: int
    event_id: str | None
    field: str
    detail: str
    text: str


FileItem = FileEvent | LineRejected


def file_format_guess(path: Path) -> FileFormat:
    """By suffix, else by the first character: JSON lines start with "{"."""
    suffix = path.suffix.lower()
    if suffix in JSONL_SUFFIXES:
        return "jsonl"
    if suffix in CSV_SUFFIXES:
        return "csv"
    with path.open(encoding="utf-8-sig", errors="replace") as handle:
        for line in handle:
            if line.strip():
                return "jsonl" if line.lstrip().startswith("{") else "csv"
    return "csv"


def file_items(path: Path, file_format: FileFormat) -> Iterator[FileItem]:
    """The events of the file in order, one at a time (files may be larger than memory)."""
    try:
        if file_format == "jsonl":
            yield from _jsonl_items(path)
        else:
            yield from _csv_items(path)
    except UnicodeDecodeError as exc:
        raise FileProblem(f"{path} is not UTF-8 text ({exc.reason}); save it as UTF-8.") from None


def file_event_count(path: Path) -> int:
    """Roughly how many events the file holds (non-blank lines less a CSV header), for the
    progress bar only; quoted CSV cells spanning lines make it an overestimate."""
    with path.open("rb") as handle:
        return sum(1 for line in handle if line.strip())


def _jsonl_items(path: Path) -> Iterator[FileItem]:
    with path.open(encoding="utf-8-sig") as handle:
        for number, text in enumerate(handle, start=1):
            if not text.strip():
                continue
            try:
                # parse_float=Decimal: values stay exact on their way to the server.
                event = json.loads(text, parse_float=Decimal)
            except ValueError as exc:
                yield LineRejected(number, None, "line", f"Not valid JSON: {exc}.", text.rstrip())
                continue
            if not isinstance(event, dict):
                detail = "Each line must be one JSON object (an event)."
                yield LineRejected(number, None, "line", detail, text.rstrip())
                continue
            yield FileEvent(number, event)


def _csv_items(path: Path) -> Iterator[FileItem]:
    with path.open(encoding="utf-8-sig", newline="") as handle:
        dialect = _csv_dialect(handle.read(SNIFF_BYTES))
        handle.seek(0)
        reader = csv.DictReader(handle, dialect=dialect, restkey="\x00extra")
        _check_header(reader.fieldnames)
        for row in reader:
            cells = [cell or "" for name, cell in row.items() if name != "\x00extra"]
            cells += row.get("\x00extra", [])
            # line_num counts the physical lines read so far; a quoted cell may span lines,
            # and blank lines before the row are skipped, so count back from its end.
            first_line = reader.line_num - sum(cell.count("\n") for cell in cells)
            event_id = (row.get("event_id") or "").strip() or None
            if "\x00extra" in row:  # restkey: cells beyond the header's columns
                detail = "This line has more cells than the header has columns."
                text = dialect.delimiter.join(cells)
                yield LineRejected(first_line, event_id, "line", detail, text)
                continue
            if not any((cell or "").strip() for cell in row.values()):
                continue
            # Empty cells are left out so that they take the API's defaults.
            event = {name: cell.strip() for name, cell in row.items() if cell and cell.strip()}
            yield FileEvent(first_line, event)


def _csv_dialect(sample: str) -> type[csv.Dialect]:
    header = sample.splitlines()[0] if sample else ""
    try:
        # The header alone decides: it holds only field names, so the one delimiter it
        # uses is unambiguous, where values (decimal commas, free text) could mislead.
        delimiter = csv.Sniffer().sniff(header, delimiters=CSV_DELIMITERS).delimiter
    except csv.Error:
        return csv.excel
    # Only the delimiter is taken: the sniffer's guesses about quoting, made from a line
    # without quotes, would break quoted cells in the rows below.
    return type("SniffedDialect", (csv.excel,), {"delimiter": delimiter})


def _check_header(header: list[str] | None) -> None:
    if not header:
        raise FileProblem("The file is empty; its first line must name the columns.")
    unknown = [name for name in header if name not in EVENT_FIELDS]
    if unknown:
        raise FileProblem(
            f"Unknown column {unknown[0]!r} in the first line. Columns are "
            f"{', '.join(REQUIRED_COLUMNS)} (required) and metric, arrival_time, source."
        )
    missing = [name for name in REQUIRED_COLUMNS if name not in header]
    if missing:
        raise FileProblem(f"The first line has no {missing[0]!r} column; it is required.")
