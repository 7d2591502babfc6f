"""An event's content: what must match for a repeat of its event_id to be a duplicate.

Written once, for stored rows and for archived ones, in the same form as
`ValidEvent.content()`, so a resend compares equal to what was stored or archived.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from dataclasses import dataclass
from decimal import Decimal


def event_content(
    *, metric: str, event_time: dt.datetime, value: Decimal, source: str
) -> dict[str, str]:
    return {
        "metric": metric,
        "event_time": event_time.astimezone(dt.UTC).isoformat(),
        "value": str(value),
        "source": source,
    }


def content_sha256(content: dict[str, str]) -> bytes:
    """SHA-256 of the content in a canonical JSON form (sorted keys, no spaces)."""
    canonical = json.dumps(content, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(canonical.encode()).digest()


@dataclass(frozen=True)
class EventRecord:
    """One event as archived: every column of events_event."""

    pk: int
    event_id: str
    metric_id: int
    day: dt.date
    day_total_id: int
    event_time: dt.datetime
    arrival_time: dt.datetime
    value: Decimal
    source: str
    batch_id: int
    content_sha256: bytes
