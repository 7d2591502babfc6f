"""The archive job: move the raw events of old, final, snapshotted days to files.

Per day, four steps, each safe to crash after:
1. write the file (content-addressed name) and record its manifest as "written";
2. read it back and check count, sum and checksum against the day's contributions
   (manifest "verified");
3. in ONE transaction: lock the day, delete its events keeping their ids and content hashes
   (events' service), mark the manifest "archived".
Before 3 commits the events are in the database; after, a verified file holds them. A rerun
finds the same file by name and the same manifest, and carries on.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass
from decimal import Decimal

from django.db import transaction

from aggregation.models import Contribution, DayTotal, Metric
from aggregation.services.ledger import day_totals_lock
from archive.files import decode, file_name, file_read, file_write, sha256_hex
from archive.files import encode as file_encode
from archive.models import ArchiveManifest, ArchiveOutcome, ArchiveRun, ManifestState
from archive.selectors import (
    ArchiveCorrupt,
    archivable_days,
    day_contributions,
    manifest_lines,
    manifest_list,
)
from common.db import advisory_lock_try, advisory_unlock
from events.content import EventRecord
from events.selectors.archived import day_event_records, day_has_uncounted_events
from events.services.archive import ArchiveMismatch, events_archive, events_restore

logger = logging.getLogger(__name__)

ARCHIVE_LOCK = "snapagg-archive-run"


class ArchiveRunBusy(Exception):
    """Another archive run holds the lock."""


class ArchiveVerifyError(Exception):
    """A file read back does not match the day's contributions: the day is left alone."""


@dataclass
class DayOutcome:
    day_total: DayTotal
    events: int = 0
    bytes: int = 0
    skipped: str = ""


# --- One day ------------------------------------------------------------------------------


def _file_for(day_total: DayTotal, records: list[EventRecord], contributions) -> bytes:
    sequence_of = {(c.batch_id, c.source): c.snapshot_sequence for c in contributions}
    return file_encode(
        (r, day_total.metric.name, sequence_of[(r.batch_id, r.source)]) for r in records
    )


def _manifest_written(
    *, run: ArchiveRun, day_total: DayTotal, records: list[EventRecord], data: bytes, now
) -> ArchiveManifest:
    """Step 1: the file in storage and its manifest (state written)."""
    sha = sha256_hex(data)
    name = file_write(
        name=file_name(metric=day_total.metric.name, day=day_total.day, sha256=sha), data=data
    )
    sequences = sorted({s for s in _sequences(records, day_total)})
    manifest, _ = ArchiveManifest.objects.get_or_create(
        day_total=day_total,
        sha256=sha,
        defaults={
            "metric_id": day_total.metric_id,
            "day": day_total.day,
            "run": run,
            "state": ManifestState.WRITTEN,
            "event_count": len(records),
            "value_sum": sum((r.value for r in records), Decimal(0)),
            "bytes": len(data),
            "location": name,
            "snapshot_sequences": sequences,
            "written_at": now,
        },
    )
    if manifest.state in (ManifestState.SUPERSEDED, ManifestState.RESTORED):
        manifest.state, manifest.run, manifest.verified_at = ManifestState.WRITTEN, run, None
        manifest.save(update_fields=["state", "run", "verified_at"])
    # An earlier attempt's file for other events (the day changed since) is never used.
    ArchiveManifest.objects.filter(
        day_total=day_total, state__in=[ManifestState.WRITTEN, ManifestState.VERIFIED]
    ).exclude(pk=manifest.pk).update(state=ManifestState.SUPERSEDED)
    return manifest


def _sequences(records: list[EventRecord], day_total: DayTotal) -> set[int]:
    batches = {r.batch_id for r in records}
    return set(
        Contribution.objects.filter(day_total=day_total, batch_id__in=batches).values_list(
            "snapshot_sequence", flat=True
        )
    )


def _verify(manifest: ArchiveManifest, contributions: list[Contribution], now) -> None:
    """Step 2: read the file back; its checksum, count and sum must match the manifest, and
    per (batch, source) its events must be exactly the contribution the snapshots stamped."""
    data = file_read(manifest.location)
    if sha256_hex(data) != manifest.sha256:
        raise ArchiveVerifyError(f"{manifest.location}: checksum differs after writing")
    lines = decode(data)
    total = sum((line.record.value for line in lines), Decimal(0))
    if len(lines) != manifest.event_count or total != manifest.value_sum:
        raise ArchiveVerifyError(f"{manifest.location}: count or sum differs from the manifest")
    by_batch: dict[tuple[int, str], list] = defaultdict(list)
    for line in lines:
        by_batch[(line.record.batch_id, line.record.source)].append(line)
    contribution_of = {(c.batch_id, c.source): c for c in contributions}
    for (batch_id, source), batch_lines in by_batch.items():
        contribution = contribution_of.get((batch_id, source))
        if (
            contribution is None
            or contribution.snapshot_sequence is None
            or contribution.event_count != len(batch_lines)
            or contribution.value != sum((x.record.value for x in batch_lines), Decimal(0))
            or any(x.snapshot_sequence != contribution.snapshot_sequence for x in batch_lines)
        ):
            raise ArchiveVerifyError(
                f"{manifest.location}: batch {batch_id} (source {source!r}) differs from "
                "its contribution"
            )
    if manifest.state == ManifestState.WRITTEN:
        manifest.state, manifest.verified_at = ManifestState.VERIFIED, now
        manifest.save(update_fields=["state", "verified_at"])


def _delete(manifest: ArchiveManifest, records: list[EventRecord], now) -> int:
    """Step 3: the events out of the database and the manifest archived, in one commit."""
    with transaction.atomic():
        day_totals_lock([manifest.day_total_id])  # no apply adds to the day meanwhile
        deleted = events_archive(day_total_id=manifest.day_total_id, records=records)
        manifest.state, manifest.archived_at = ManifestState.ARCHIVED, now
        manifest.save(update_fields=["state", "archived_at"])
    return deleted


# Test seam: called with the step just completed ("written", "verified", "deleted").
after_step: Callable[[str, DayTotal], None] = lambda step, day_total: None  # noqa: E731


def _archive_day(run: ArchiveRun, day_total: DayTotal, now: dt.datetime) -> DayOutcome:
    outcome = DayOutcome(day_total)
    if day_has_uncounted_events(day_total_id=day_total.pk):
        outcome.skipped = "events not yet counted (left for the next run)"
        return outcome
    contributions = day_contributions(day_total_id=day_total.pk)
    if any(c.snapshot_sequence is None for c in contributions):
        outcome.skipped = "a contribution is not in a snapshot yet"
        return outcome
    records = list(day_event_records(day_total_id=day_total.pk))
    if not records:
        return outcome
    data = _file_for(day_total, records, contributions)
    manifest = _manifest_written(run=run, day_total=day_total, records=records, data=data, now=now)
    after_step("written", day_total)
    _verify(manifest, contributions, now)
    after_step("verified", day_total)
    outcome.events = _delete(manifest, records, now)
    outcome.bytes = manifest.bytes
    after_step("deleted", day_total)
    return outcome


# --- The run ------------------------------------------------------------------------------


def archive_run_execute(
    *,
    now: dt.datetime,
    trigger: str,
    metric: Metric | None = None,
    dry_run: bool = False,
    on_day: Callable[[DayOutcome], None] | None = None,
    on_days: Callable[[int], None] | None = None,
) -> ArchiveRun:
    """Archive every eligible day once, under the single-run lock. Raises ArchiveRunBusy if
    another run holds it. A day that fails verification is logged and left in the database.
    """
    if not advisory_lock_try(ARCHIVE_LOCK):
        raise ArchiveRunBusy
    try:
        run = ArchiveRun.objects.create(
            trigger=trigger,
            started_at=now,
            outcome=ArchiveOutcome.DRY_RUN if dry_run else ArchiveOutcome.RUNNING,
        )
        days = list(archivable_days(now=now, metric=metric))
        if on_days is not None:
            on_days(len(days))
        errors = []
        for day_total in days:
            outcome = _run_day(run, day_total, now, dry_run, errors)
            if on_day is not None:
                on_day(outcome)
        run.finished_at = now
        if not dry_run:
            run.outcome = ArchiveOutcome.FAILED if errors else ArchiveOutcome.SUCCEEDED
        run.error = "\n".join(errors)
        run.save()
        return run
    finally:
        advisory_unlock(ARCHIVE_LOCK)


def _run_day(run, day_total, now, dry_run, errors) -> DayOutcome:
    if dry_run:
        outcome = DayOutcome(day_total, events=day_total.events.count())
        run.days += 1
        run.events += outcome.events
        return outcome
    try:
        outcome = _archive_day(run, day_total, now)
    except (ArchiveVerifyError, ArchiveMismatch, OSError) as exc:
        logger.exception("archive of %s left in the database", day_total)
        errors.append(f"{day_total.metric.name} {day_total.day}: {exc}")
        return DayOutcome(day_total, skipped=str(exc))
    if outcome.events:
        run.days += 1
        run.events += outcome.events
        run.bytes += outcome.bytes
        run.files_written += 1
        run.save(update_fields=["days", "events", "bytes", "files_written"])
    return outcome


# --- Restore and deep check ---------------------------------------------------------------


def archive_restore(*, metric: Metric, day: dt.date) -> int:
    """Bring a day's archived events back into the database (the files stay)."""
    restored = 0
    for manifest in manifest_list(metric=metric, day=day, states=[ManifestState.ARCHIVED]):
        lines = manifest_lines(manifest, use_cache=False)
        with transaction.atomic():
            day_totals_lock([manifest.day_total_id])
            restored += events_restore(records=[line.record for line in lines])
            manifest.state = ManifestState.RESTORED
            manifest.save(update_fields=["state"])
    return restored


@dataclass(frozen=True)
class FileProblem:
    metric: str
    day: dt.date
    location: str
    detail: str


def archive_files_check(*, metric: Metric | None = None) -> tuple[int, list[FileProblem]]:
    """Re-read every archived file: checksum, count and sum against its manifest, and the
    day's archived parts plus the events left in the database against the ledger."""
    manifests = ArchiveManifest.objects.filter(state=ManifestState.ARCHIVED).select_related(
        "metric"
    )
    if metric is not None:
        manifests = manifests.filter(metric=metric)
    problems, checked = [], 0
    for manifest in manifests.order_by("pk"):
        checked += 1
        try:
            lines = manifest_lines(manifest, use_cache=False)
        except ArchiveCorrupt as exc:
            problems.append(
                FileProblem(manifest.metric.name, manifest.day, manifest.location, str(exc))
            )
            continue
        total = sum((line.record.value for line in lines), Decimal(0))
        if len(lines) != manifest.event_count or total != manifest.value_sum:
            problems.append(
                FileProblem(
                    manifest.metric.name,
                    manifest.day,
                    manifest.location,
                    f"file holds {len(lines)} events summing to {total}; manifest says "
                    f"{manifest.event_count} and {manifest.value_sum}",
                )
            )
    return checked, problems
