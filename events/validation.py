"""Turn one decoded JSON event into a validated event, or say which field is wrong and why.

Plain Python rather than a DRF serializer: a batch holds up to 10,000 events and per-event
serializer overhead would dominate ingest time.
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from typing import Any, NamedTuple
from zoneinfo import ZoneInfo

from aggregation.calendar import day_of

EVENT_FIELDS = frozenset({"event_id", "event_time", "value", "metric", "arrival_time", "source"})
MAX_EVENT_ID_LENGTH = 128
MAX_SOURCE_LENGTH = 64
VALUE_QUANTUM = Decimal("0.000001")
ZERO = Decimal("0.000000")
VALUE_LIMIT = Decimal(10) ** 14  # the column holds 20 digits, 6 of them decimals
EARLIEST_YEAR = 1970
UTC_ZONE_NAMES = frozenset({"UTC", "Etc/UTC"})


class EventFieldError(Exception):
    def __init__(self, field: str, detail: str) -> None:
        super().__init__(detail)
        self.field = field
        self.detail = detail


class ValidEvent(NamedTuple):
    """A validated event. A named tuple: a batch builds up to 10,000 of them and a frozen
    dataclass costs three times as much to construct."""

    event_id: str
    metric_id: int
    metric_name: str
    day: dt.date
    event_time: dt.datetime
    arrival_time: dt.datetime
    value: Decimal
    source: str

    def content(self) -> dict[str, str]:
        """What must match for a repeat of this event_id to be a harmless duplicate.
        arrival_time is left out: a client retrying the same event is not a conflict."""
        return {
            "metric": self.metric_name,
            "event_time": self.event_time.astimezone(dt.UTC).isoformat(),
            "value": str(self.value),
            "source": self.source,
        }


@dataclass(frozen=True, slots=True)
class ValidationContext:
    metric_ids: dict[str, int]
    default_metric: str
    tz: ZoneInfo
    received_at: dt.datetime
    max_future_skew: dt.timedelta

    # When days are UTC days, an event's day is its UTC date: no zone conversion per event.
    days_are_utc: bool = field(init=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "days_are_utc", self.tz.key in UTC_ZONE_NAMES)


def _text(raw: Any, field: str, *, max_length: int, required: bool) -> str:
    if raw is None:
        if required:
            raise EventFieldError(field, f"{field} is required.")
        return ""
    if not isinstance(raw, str):
        raise EventFieldError(field, f"{field} must be a string.")
    if required and not raw.strip():
        raise EventFieldError(field, f"{field} must not be empty.")
    if len(raw) > max_length:
        raise EventFieldError(field, f"{field} must be at most {max_length} characters.")
    if "\x00" in raw:
        raise EventFieldError(field, f"{field} must not contain NUL characters.")
    if not is_unicode_text(raw):
        raise EventFieldError(field, f"{field} must be valid Unicode (a lone surrogate).")
    return raw


def is_unicode_text(raw: str) -> bool:
    """False for strings JSON can carry but UTF-8 cannot ("\ud800"): PostgreSQL, and our own
    JSON answers, would fail on them."""
    try:
        raw.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def echo_text(raw: Any) -> str | None:
    """A client's string as it can safely be echoed back in an error, or None."""
    if not isinstance(raw, str):
        return None
    return raw if is_unicode_text(raw) else raw.encode("utf-8", "backslashreplace").decode()


def parse_instant(raw: Any, field: str) -> dt.datetime:
    if not isinstance(raw, str):
        raise EventFieldError(field, f"{field} must be an ISO 8601 string with an offset.")
    try:
        instant = dt.datetime.fromisoformat(raw)
    except ValueError:
        raise EventFieldError(
            field, f"{field} is not an ISO 8601 time (e.g. 2026-11-20T14:30:00Z)."
        ) from None
    if instant.tzinfo is None or instant.utcoffset() is None:
        raise EventFieldError(field, f"{field} has no UTC offset; add Z or +hh:mm.")
    if instant.year < EARLIEST_YEAR:
        raise EventFieldError(field, f"{field} is before {EARLIEST_YEAR}.")
    try:
        return instant.astimezone(dt.UTC)
    except OverflowError:  # e.g. 9999-12-31T23:00:00-05:00 is in the year 10000 in UTC
        raise EventFieldError(field, f"{field} is out of range.") from None


# A decimal string as JSON writes numbers: ASCII digits, no "_" or other scripts' digits,
# which Decimal() would otherwise accept ("1_000", "١٢").
DECIMAL_STRING = re.compile(r"\s*[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?\s*", re.ASCII)


def parse_value(raw: Any) -> Decimal:
    if isinstance(raw, bool) or not isinstance(raw, int | Decimal | str | float):
        raise EventFieldError("value", "value must be a number or a decimal string.")
    if isinstance(raw, str) and not DECIMAL_STRING.fullmatch(raw):
        if raw.strip().lower().lstrip("+-") in {"nan", "snan", "inf", "infinity"}:
            raise EventFieldError("value", "value must be finite (not NaN or Infinity).")
        raise EventFieldError("value", "value is not a decimal number.")
    try:
        value = raw if isinstance(raw, Decimal) else Decimal(str(raw).strip())
    except InvalidOperation:
        raise EventFieldError("value", "value is not a decimal number.") from None
    if not value.is_finite():
        raise EventFieldError("value", "value must be finite (not NaN or Infinity).")
    if abs(value) >= VALUE_LIMIT:
        raise EventFieldError("value", "value must be smaller than 10^14 in magnitude.")
    quantized = value.quantize(VALUE_QUANTUM)
    if quantized != value:
        raise EventFieldError("value", "value has more than 6 decimal places.")
    # -0 and 0 are the same stored number; keep a retried "-0.0" a duplicate, not a conflict.
    return quantized if quantized else ZERO


def _valid_text(raw: Any, max_length: int) -> bool:
    """The common case, checked without a function call per rule."""
    return (
        type(raw) is str
        and 0 < len(raw) <= max_length
        and not raw.isspace()
        and "\x00" not in raw
        and (raw.isascii() or is_unicode_text(raw))  # no lone surrogate ("\ud800")
    )


def validate_event(raw: Any, context: ValidationContext) -> ValidEvent:
    """Validate one decoded event. Runs once per event of a batch of up to 10,000, so the
    common case is written straight through; each failure raises with the field's name."""
    if not isinstance(raw, dict):
        raise EventFieldError("event", "each event must be a JSON object.")
    if not raw.keys() <= EVENT_FIELDS:
        name = sorted(str(key) for key in raw.keys() - EVENT_FIELDS)[0]
        raise EventFieldError(name, f"unknown field {name!r}.")
    event_id = raw.get("event_id")
    if not _valid_text(event_id, MAX_EVENT_ID_LENGTH):
        event_id = _text(event_id, "event_id", max_length=MAX_EVENT_ID_LENGTH, required=True)
    event_time = parse_instant(raw.get("event_time"), "event_time")
    latest = context.received_at + context.max_future_skew
    if event_time > latest:
        raise EventFieldError("event_time", "event_time is in the future.")
    if "value" not in raw:
        raise EventFieldError("value", "value is required.")
    value = parse_value(raw["value"])
    arrival_raw = raw.get("arrival_time")
    arrival_time = context.received_at
    if arrival_raw is not None:
        arrival_time = parse_instant(arrival_raw, "arrival_time")
        if arrival_time > latest:
            raise EventFieldError("arrival_time", "arrival_time is in the future.")
        if arrival_time < event_time - context.max_future_skew:
            raise EventFieldError("arrival_time", "arrival_time is before event_time.")
    metric_name = raw.get("metric")
    if metric_name is None:
        metric_name = context.default_metric
        if not metric_name:  # an operator removed the default: say so, do not crash
            raise EventFieldError("metric", "metric is required: no default metric is set.")
    elif not isinstance(metric_name, str) or metric_name not in context.metric_ids:
        raise EventFieldError("metric", f"unknown metric {metric_name!r}.")
    source = raw.get("source")
    if source is None:
        source = ""
    elif not _valid_text(source, MAX_SOURCE_LENGTH):
        source = _text(source, "source", max_length=MAX_SOURCE_LENGTH, required=False)
    return ValidEvent(
        event_id,
        context.metric_ids[metric_name],
        metric_name,
        event_time.date() if context.days_are_utc else day_of(event_time, context.tz),
        event_time,
        arrival_time,
        value,
        source,
    )
