"""Reads over the archive: which days may be archived, and archived events read back from
their files (parsed files are cached: a file never changes once its manifest exists)."""

from __future__ import annotations

import datetime as dt
from collections import OrderedDict
from decimal import Decimal
from threading import Lock

from django.conf import settings
from django.db.models import DateTimeField, Exists, ExpressionWrapper, F, OuterRef, QuerySet, Sum

from aggregation.models import Contribution, DayTotal, Metric
from archive.files import ArchivedLine, decode, file_read, sha256_hex
from archive.models import ArchiveManifest, ArchiveRun, ManifestState
from events.models import Event
from events.selectors.events import EventSums, applied_event_state, counted_event_sums


class ArchiveCorrupt(Exception):
    """An archive file is missing or no longer matches its manifest."""


def archivable_days(*, now: dt.datetime, metric: Metric | None = None) -> QuerySet[DayTotal]:
    """Days whose raw events may move to the archive: the metric keeps raw events for a
    limited time, the day is final (FINAL_AT) with its final snapshot, older than that time,
    every contribution is stamped by a snapshot, and events are left in the database."""
    days = (
        DayTotal.objects.final_by(now)
        .select_related("metric")
        .filter(metric__raw_retention_days__isnull=False, finalized=True, snapshot_due=False)
        .annotate(
            retention_ends=ExpressionWrapper(
                F("day_end") + F("metric__raw_retention_days") * dt.timedelta(days=1),
                output_field=DateTimeField(),
            )
        )
        .filter(retention_ends__lte=now)
        .filter(Exists(Event.objects.filter(day_total_id=OuterRef("pk"))))
        .exclude(
            Exists(
                Contribution.objects.filter(
                    day_total_id=OuterRef("pk"), snapshot_sequence__isnull=True
                )
            )
        )
        .order_by("metric__name", "day")
    )
    if metric is not None:
        days = days.filter(metric=metric)
    return days


def day_contributions(*, day_total_id: int) -> list[Contribution]:
    return list(Contribution.objects.filter(day_total_id=day_total_id).order_by("pk"))


def archived_manifests(*, day_total_id: int) -> list[ArchiveManifest]:
    return list(
        ArchiveManifest.objects.filter(
            day_total_id=day_total_id, state=ManifestState.ARCHIVED
        ).order_by("pk")
    )


def manifest_list(*, metric: Metric, day: dt.date, states: list[str]) -> list[ArchiveManifest]:
    return list(
        ArchiveManifest.objects.filter(metric=metric, day=day, state__in=states).order_by("pk")
    )


def run_recent(*, limit: int = 10) -> list[ArchiveRun]:
    return list(ArchiveRun.objects.all()[:limit])


# --- Files read back ----------------------------------------------------------------------

_cache: OrderedDict[tuple[str, str], list[ArchivedLine]] = OrderedDict()
_cache_lock = Lock()


def manifest_lines(manifest: ArchiveManifest, *, use_cache: bool = True) -> list[ArchivedLine]:
    """The events of an archive file, checked against its manifest's checksum."""
    key = (manifest.location, manifest.sha256)
    if use_cache:
        with _cache_lock:
            if key in _cache:
                _cache.move_to_end(key)
                return _cache[key]
    try:
        data = file_read(manifest.location)
    except (FileNotFoundError, OSError) as exc:
        raise ArchiveCorrupt(f"{manifest.location}: cannot be read ({exc})") from exc
    if sha256_hex(data) != manifest.sha256:
        raise ArchiveCorrupt(f"{manifest.location}: checksum differs from its manifest")
    lines = decode(data)
    if use_cache:
        with _cache_lock:
            _cache[key] = lines
            while len(_cache) > settings.ARCHIVE_CACHE_FILES:
                _cache.popitem(last=False)
    return lines


def cache_clear() -> None:
    with _cache_lock:
        _cache.clear()


def archived_events(
    *, day_total: DayTotal, contributions: list[Contribution], sequence: int | None = None
) -> list[Event]:
    """The archived events of a day (of one snapshot when `sequence` is given) as unsaved
    Event objects carrying their state, ready for the same serializers and pages."""
    contribution_of = {(c.batch_id, c.source): c for c in contributions}
    events = []
    for manifest in archived_manifests(day_total_id=day_total.pk):
        if sequence is not None and sequence not in manifest.snapshot_sequences:
            continue
        for line in manifest_lines(manifest):
            if sequence is not None and line.snapshot_sequence != sequence:
                continue
            events.append(
                _as_event(
                    line, day_total, contribution_of[(line.record.batch_id, line.record.source)]
                )
            )
    return events


def _as_event(line: ArchivedLine, day_total: DayTotal, contribution: Contribution) -> Event:
    r = line.record
    event = Event(
        pk=r.pk,
        event_id=r.event_id,
        metric=day_total.metric,
        day=r.day,
        day_total=day_total,
        event_time=r.event_time,
        arrival_time=r.arrival_time,
        value=r.value,
        source=r.source,
        batch_id=r.batch_id,
    )
    Event.quarantine.related.set_cached_value(event, None)  # archived days hold none
    event.state = applied_event_state(event, contribution)
    event.archived = True
    return event


def archived_event_find(*, day_total: DayTotal, event_id: str) -> Event | None:
    """One archived event of a day, read from its file."""
    for manifest in archived_manifests(day_total_id=day_total.pk):
        for line in manifest_lines(manifest):
            if line.record.event_id == event_id:
                contribution = Contribution.objects.get(
                    day_total_id=day_total.pk,
                    batch_id=line.record.batch_id,
                    source=line.record.source,
                )
                return _as_event(line, day_total, contribution)
    return None


def day_is_archived(*, day_total_id: int) -> bool:
    return ArchiveManifest.objects.filter(
        day_total_id=day_total_id, state=ManifestState.ARCHIVED
    ).exists()


# --- Reconcile ----------------------------------------------------------------------------


def event_sums_with_archive(day_total_ids: QuerySet) -> dict[int, EventSums]:
    """Counted events per day total: those in the database plus, for archived parts, the
    figures of their manifests (verified against the file and the ledger when archived)."""
    sums = counted_event_sums(day_total_ids)
    archived = (
        ArchiveManifest.objects.filter(day_total_id__in=day_total_ids, state=ManifestState.ARCHIVED)
        .values("day_total_id")
        .annotate(total=Sum("value_sum"), count=Sum("event_count"))
        .order_by()
    )
    for row in archived:
        current = sums.get(row["day_total_id"], EventSums())
        sums[row["day_total_id"]] = EventSums(
            current.value + (row["total"] or Decimal(0)), current.count + row["count"]
        )
    return sums
