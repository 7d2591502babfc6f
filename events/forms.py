"""Posting events from the pages: one event through a form, or many through a CSV file.

Both turn their input into the same raw event objects the API receives and hand them to
`events_ingest`, so every value is judged by the same validation as the API. The forms only
check what the API cannot see: the shape of a CSV file.
"""

from __future__ import annotations

import csv
import io
import secrets
from dataclasses import dataclass, field
from typing import Any

from django import forms
from django.conf import settings

from aggregation.forms import ReportingZoneForm, datetime_local_input, reporting_zone_name
from aggregation.models import Metric
from events.validation import EVENT_FIELDS

REQUIRED_COLUMNS = ("event_id", "event_time", "value")
OPTIONAL_COLUMNS = tuple(sorted(EVENT_FIELDS - set(REQUIRED_COLUMNS)))


def suggested_event_id() -> str:
    return f"form-{secrets.token_hex(6)}"


class EventForm(ReportingZoneForm):
    event_id = forms.CharField(
        label="Event id",
        help_text="A unique id. Sending the same id again is harmless: it is counted once.",
    )
    metric = forms.ModelChoiceField(
        queryset=Metric.objects.order_by("name"), to_field_name="name", empty_label=None
    )
    event_time = forms.DateTimeField(label="When it happened", widget=datetime_local_input())
    value = forms.CharField(
        label="Value", help_text="A decimal number with up to 6 decimal places, e.g. 12.50."
    )
    source = forms.CharField(
        label="Source", required=False, help_text="Optional label, e.g. web, mobile, partner."
    )

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.fields["event_time"].help_text = f"Time in {reporting_zone_name()}."

    def raw_event(self) -> dict[str, Any]:
        """The event as the API would receive it."""
        data = self.cleaned_data
        raw = {
            "event_id": data["event_id"],
            "event_time": data["event_time"].isoformat(),
            "value": data["value"].strip(),
            "metric": data["metric"].name,
        }
        if data.get("source"):
            raw["source"] = data["source"]
        return raw

    def add_ingest_errors(self, errors: list[dict[str, Any]]) -> None:
        for error in errors:
            name = error["field"] if error["field"] in self.fields else None
            self.add_error(name, error["detail"])


@dataclass
class ParsedCsv:
    events: list[dict[str, str]] = field(default_factory=list)
    lines: list[int] = field(default_factory=list)  # the file line of each event
    errors: list[dict[str, Any]] = field(default_factory=list)  # lines refused while reading


def _header_problem(header: list[str] | None) -> str | None:
    if not header:
        return "The file is empty; the first line must name the columns."
    unknown = [name for name in header if name not in EVENT_FIELDS]
    if unknown:
        return (
            f"Unknown column {unknown[0]!r} in the first line. Columns are "
            f"{', '.join(REQUIRED_COLUMNS)} (required) and {', '.join(OPTIONAL_COLUMNS)}."
        )
    repeated = sorted({name for name in header if header.count(name) > 1})
    if repeated:
        return f"Column {repeated[0]!r} appears twice in the first line."
    missing = [name for name in REQUIRED_COLUMNS if name not in header]
    if missing:
        return f"The first line has no {missing[0]!r} column; it is required."
    return None


DELIMITERS = {",": "commas", ";": "semicolons", "\t": "tabs"}


def csv_delimiter(text: str) -> str:
    """The delimiter of the file, judged from its first line (spreadsheets in many locales
    save semicolons); a comma when the sniffer cannot tell."""
    first_line = text.split("\n", 1)[0]
    try:
        return csv.Sniffer().sniff(first_line, delimiters="".join(DELIMITERS)).delimiter
    except csv.Error:
        return ","


def parse_events_csv(text: str, *, max_events: int) -> ParsedCsv:
    """Read a CSV with a header of API field names into raw events (empty cells left out,
    so they take the API's defaults). Commas, semicolons or tabs separate the cells.
    Raises ValueError for a file that cannot be read."""
    delimiter = csv_delimiter(text)
    reader = csv.DictReader(io.StringIO(text, newline=""), delimiter=delimiter, restkey="\x00extra")
    problem = _header_problem(reader.fieldnames)
    if problem:
        raise ValueError(
            f"{problem} (Cells read as separated by {DELIMITERS[delimiter]}.)"
            if reader.fieldnames
            else problem
        )
    parsed = ParsedCsv()
    for row in reader:
        if len(parsed.events) + len(parsed.errors) >= max_events:
            raise ValueError(
                f"The file has more than {max_events:,} events; the limit is {max_events:,} "
                "per upload. Split it into smaller files."
            )
        event_id = (row.get("event_id") or "").strip() or None
        if "\x00extra" in row:
            parsed.errors.append(
                {
                    "line": reader.line_num,
                    "event_id": event_id,
                    "field": "line",
                    "detail": "This line has more cells than the first line has columns.",
                }
            )
            continue
        parsed.events.append(
            {name: cell.strip() for name, cell in row.items() if cell and cell.strip()}
        )
        parsed.lines.append(reader.line_num)
    if not parsed.events and not parsed.errors:
        raise ValueError("The file has a header line but no events.")
    return parsed


class CsvUploadForm(forms.Form):
    file = forms.FileField(
        label="CSV file",
        help_text=(
            f"First line: the column names {', '.join(REQUIRED_COLUMNS)} (required) and any of "
            f"{', '.join(OPTIONAL_COLUMNS)}, separated by commas, semicolons or tabs. Times "
            "in ISO 8601 with an offset, e.g. 2026-11-20T14:30:00Z. arrival_time is optional: "
            "when your system received the event, if earlier than this upload (it decides "
            "whether the event was late); leave it out and the upload time is used. "
            "Up to 10,000 events."
        ),
    )

    def clean_file(self) -> ParsedCsv:
        upload = self.cleaned_data["file"]
        limit = settings.INGEST_MAX_BODY_BYTES
        if upload.size > limit:
            raise forms.ValidationError(f"The file is larger than {limit:,} bytes; split it.")
        try:
            text = upload.read().decode("utf-8-sig")
        except UnicodeDecodeError:
            raise forms.ValidationError(
                "The file is not UTF-8 text; save it as CSV UTF-8."
            ) from None
        try:
            return parse_events_csv(text, max_events=settings.INGEST_MAX_EVENTS)
        except (ValueError, csv.Error) as exc:
            raise forms.ValidationError(str(exc)) from None
