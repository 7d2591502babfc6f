"""Moving a day's events out of (and back into) events_event, for the archive job.

The archive app decides what to move and keeps the files; only these functions write the
events and the archived-id table, always inside the caller's transaction, so the deletion
commits together with the manifest that proves the file holds the events.
"""

from __future__ import annotations

from collections.abc import Sequence

import psycopg
from django.db import connection, transaction

from events.content import EventRecord
from events.models import ArchivedEvent, Event


class ArchiveMismatch(Exception):
    """The database no longer holds exactly the events the archive file holds."""


def _lock_out_inserts() -> None:
    # An ingest racing the deletion could otherwise insert an id being archived: its
    # ON CONFLICT waits for this transaction, then finds no row, and its NOT EXISTS was
    # evaluated before the archived id committed. SHARE ROW EXCLUSIVE waits for running
    # inserts and holds new ones (reads go on) until commit; it lasts one day's deletion.
    with connection.cursor() as cursor:
        cursor.execute("LOCK TABLE events_event IN SHARE ROW EXCLUSIVE MODE")


def events_archive(*, day_total_id: int, records: Sequence[EventRecord]) -> int:
    """Delete these events of one day and keep their ids and content hashes.

    Must run in the transaction that records the manifest. Raises ArchiveMismatch (rolling
    the caller back) unless every record is still stored, unchanged.
    """
    if not connection.in_atomic_block:
        raise RuntimeError("events_archive must run inside the manifest's transaction")
    _lock_out_inserts()
    pks = [r.pk for r in records]
    connection.ensure_connection()
    # Server-side binding of whole arrays, as ingest does: one round trip per statement
    # however many events the day holds, and no ORM deletion collector loading every row.
    with psycopg.Cursor(connection.connection) as cursor:
        stored = dict(cursor.execute(_STORED, [pks, day_total_id]).fetchall())
        if len(stored) != len(records) or any(stored.get(r.pk) != r.event_id for r in records):
            raise ArchiveMismatch(
                f"day total {day_total_id}: {len(records)} archived events, {len(stored)} stored"
            )
        ids = [r.event_id for r in records]
        hashes = [r.content_sha256 for r in records]
        cursor.execute(_KEEP_IDS, [day_total_id, ids, hashes])
        deleted = cursor.execute(_DELETE, [pks]).rowcount
    if deleted != len(records):
        raise ArchiveMismatch(f"day total {day_total_id}: deleted {deleted} of {len(records)}")
    return deleted


_STORED = """
SELECT id, event_id FROM events_event WHERE id = ANY(%b::bigint[]) AND day_total_id = %b
"""
_KEEP_IDS = """
INSERT INTO events_archivedevent (event_id, content_sha256, day_total_id)
SELECT i, h, %b FROM unnest(%b::text[], %b::bytea[]) AS x(i, h)
"""
_DELETE = "DELETE FROM events_event WHERE id = ANY(%b::bigint[])"


def events_restore(*, records: Sequence[EventRecord]) -> int:
    """Put archived events back, under their original primary keys, and forget their
    archived ids. Idempotent per event: one already back is left alone."""
    with transaction.atomic():
        ids = [r.event_id for r in records]
        present = set(Event.objects.filter(event_id__in=ids).values_list("event_id", flat=True))
        Event.objects.bulk_create(
            [
                Event(
                    pk=r.pk,
                    event_id=r.event_id,
                    metric_id=r.metric_id,
                    day=r.day,
                    day_total_id=r.day_total_id,
                    event_time=r.event_time,
                    arrival_time=r.arrival_time,
                    value=r.value,
                    source=r.source,
                    batch_id=r.batch_id,
                )
                for r in records
                if r.event_id not in present
            ],
            batch_size=5000,
        )
        ArchivedEvent.objects.filter(event_id__in=ids).delete()
    return len(records) - len(present)
