"""Times in query strings (as_of, since): any ISO 8601 date-time with an offset, as the
OpenAPI schema says; beyond the years Python holds in UTC, the first or last instant."""

from __future__ import annotations

import datetime as dt


def query_instant(raw: str) -> dt.datetime | None:
    """The aware UTC instant `raw` names, or None when it is not a time with an offset."""
    try:
        instant = dt.datetime.fromisoformat(raw.strip())
    except ValueError:
        return None
    if instant.utcoffset() is None:
        return None
    try:
        return instant.astimezone(dt.UTC)
    except OverflowError:
        edge = dt.datetime.min if instant.year == dt.MINYEAR else dt.datetime.max
        return edge.replace(tzinfo=dt.UTC)
