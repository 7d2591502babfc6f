"""Reads for the archive job: a day's events with their content hashes, archived ids."""

from __future__ import annotations

from collections.abc import Iterator

from events.content import EventRecord, content_sha256, event_content
from events.models import ArchivedEvent, BatchStatus, Event


def day_event_records(*, day_total_id: int) -> Iterator[EventRecord]:
    """Every event of a day total, oldest arrival first (the archive file's order)."""
    rows = (
        Event.objects.filter(day_total_id=day_total_id)
        .order_by("arrival_time", "pk")
        .values_list(
            "pk",
            "event_id",
            "metric_id",
            "metric__name",
            "day",
            "event_time",
            "arrival_time",
            "value",
            "source",
            "batch_id",
        )
    )
    for (
        pk,
        event_id,
        metric_id,
        metric,
        day,
        event_time,
        arrival,
        value,
        source,
        batch,
    ) in rows.iterator(chunk_size=5000):
        content = event_content(metric=metric, event_time=event_time, value=value, source=source)
        yield EventRecord(
            pk=pk,
            event_id=event_id,
            metric_id=metric_id,
            day=day,
            day_total_id=day_total_id,
            event_time=event_time,
            arrival_time=arrival,
            value=value,
            source=source,
            batch_id=batch,
            content_sha256=content_sha256(content),
        )


def day_has_uncounted_events(*, day_total_id: int) -> bool:
    """Events of the day not (yet) in its totals: an unapplied batch or a quarantine."""
    events = Event.objects.filter(day_total_id=day_total_id)
    return (
        events.filter(batch__status=BatchStatus.RECEIVED).exists()
        or events.filter(quarantine__isnull=False).exists()
    )


def archived_event_get(*, event_id: str) -> ArchivedEvent | None:
    return ArchivedEvent.objects.filter(event_id=event_id).select_related("day_total").first()
