"""The explanation of a snapshot: exactly the events whose values make up its change (the
events of the contributions it stamped), split into on-time, late and restatement."""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from enum import StrEnum

from django.db.models import Count, DurationField, ExpressionWrapper, F, Q, QuerySet, Sum

from aggregation.models import Contribution, ContributionKind, DayTotal
from archive.selectors import archived_events, day_is_archived
from events.models import Event
from events.selectors.events import event_state


def contribution_events(
    contributions: list[Contribution], *, source: str | None = None
) -> QuerySet[Event]:
    """Exactly the events whose values make up these contributions (all of one source when
    `source` is given: pass the contributions of that source)."""
    if not contributions:
        return Event.objects.none()
    day_total_id = contributions[0].day_total_id
    batch_ids = [c.batch_id for c in contributions if c.kind == ContributionKind.BATCH]
    accepted_ids = [c.pk for c in contributions if c.kind == ContributionKind.ACCEPTED]
    from_batches = Q(day_total_id=day_total_id, batch_id__in=batch_ids, quarantine__isnull=True)
    if source is not None:
        # A batch's contribution covers its events of one source on the day.
        from_batches &= Q(source=source)
    from_quarantine = Q(quarantine__contribution_id__in=accepted_ids)
    return (
        Event.objects.filter(from_batches | from_quarantine)
        .select_related("metric", "batch", "day_total", "quarantine__contribution")
        .order_by("arrival_time", "pk")
    )


def snapshot_events(
    *,
    day_total: DayTotal,
    contributions: list[Contribution],
    sequence: int,
    source: str | None = None,
) -> QuerySet[Event] | list[Event]:
    """The events of a snapshot's change (of one source when given), oldest arrival first.

    A day whose older events moved to the archive gets them from the files (as unsaved
    Event objects carrying their state) merged with those still stored; any other day stays
    a lazy queryset.
    """
    stored = contribution_events(contributions, source=source)
    if not day_is_archived(day_total_id=day_total.pk):
        return stored
    events = list(stored)
    for event in events:
        event.state = event_state(event, contribution_for_event(event, contributions))
    archived = archived_events(day_total=day_total, contributions=contributions, sequence=sequence)
    events += [e for e in archived if source is None or e.source == source]
    events.sort(key=lambda e: (e.arrival_time, e.pk))
    return events


def contribution_for_event(event: Event, contributions: list[Contribution]) -> Contribution | None:
    quarantine = getattr(event, "quarantine", None)
    if quarantine is not None:
        return quarantine.contribution
    return next(
        (c for c in contributions if c.batch_id == event.batch_id and c.source == event.source),
        None,
    )


# --- What changed: the events behind a snapshot, grouped --------------------------------


class ChangeGroup(StrEnum):
    ON_TIME = "on_time"
    LATE = "late"
    RESTATEMENT = "restatement"


# Matches no event, and stays valid SQL when negated or used as an aggregate filter.
_NOTHING = Q(pk__isnull=True)


def _batches_by_source(contributions: list[Contribution]) -> Q:
    """Events of these batch contributions: each covers one batch's events of one source."""
    by_source: dict[str, list[int]] = {}
    for contribution in contributions:
        by_source.setdefault(contribution.source, []).append(contribution.batch_id)
    matched = _NOTHING
    for source, batch_ids in by_source.items():
        matched |= Q(source=source, batch_id__in=batch_ids, quarantine__isnull=True)
    return matched


def _restatement_filter(day_total: DayTotal, contributions: list[Contribution]) -> Q:
    """Events counted after their day was final. Apply marks a whole contribution too late
    when the day already had its final snapshot, else exactly the events that arrived at or
    after day end + allowed lateness; events accepted from quarantine are all too late."""
    whole, partial = [], []
    for contribution in contributions:
        if contribution.kind != ContributionKind.BATCH or not contribution.too_late_event_count:
            continue
        if contribution.too_late_event_count == contribution.event_count:
            whole.append(contribution)
        else:
            partial.append(contribution)
    accepted = [c.pk for c in contributions if c.kind == ContributionKind.ACCEPTED]
    restated = _NOTHING
    if whole:
        restated |= _batches_by_source(whole)
    if partial:
        restated |= _batches_by_source(partial) & Q(arrival_time__gte=day_total.final_at)
    if accepted:
        restated |= Q(quarantine__contribution_id__in=accepted)
    return restated


def change_group_filters(
    *, day_total: DayTotal, contributions: list[Contribution]
) -> dict[ChangeGroup, Q]:
    """Split the events of these contributions into on-time, late and restatement, with the
    same rules apply used to count them (so each group's count matches the snapshot)."""
    restated = _restatement_filter(day_total, contributions)
    late_batches = [
        c
        for c in contributions
        if c.kind == ContributionKind.BATCH and c.late_event_count > c.too_late_event_count
    ]
    late = _NOTHING
    if late_batches:
        late = _batches_by_source(late_batches) & Q(arrival_time__gte=day_total.day_end) & ~restated
    return {
        ChangeGroup.ON_TIME: ~restated & ~late,
        ChangeGroup.LATE: late,
        ChangeGroup.RESTATEMENT: restated,
    }


@dataclass(frozen=True)
class ChangeGroupSum:
    group: ChangeGroup
    events: int
    value: Decimal


def change_group_sums(
    *, day_total: DayTotal, contributions: list[Contribution], source: str | None = None
) -> list[ChangeGroupSum]:
    """Count and sum of each group, in one query."""
    filters = change_group_filters(day_total=day_total, contributions=contributions)
    aggregates = {}
    for group, condition in filters.items():
        aggregates[f"{group}_events"] = Count("pk", filter=condition)
        aggregates[f"{group}_value"] = Sum("value", filter=condition)
    events = contribution_events(contributions, source=source)
    figures = events.order_by().aggregate(**aggregates)
    sums = {
        group: [figures[f"{group}_events"] or 0, figures[f"{group}_value"] or Decimal(0)]
        for group in filters
    }
    for event in _archived(day_total, contributions, source):
        sums[event.change_group][0] += 1
        sums[event.change_group][1] += event.value
    return [
        ChangeGroupSum(group=group, events=count, value=value)
        for group, (count, value) in sums.items()
    ]


def _archived(
    day_total: DayTotal, contributions: list[Contribution], source: str | None
) -> list[Event]:
    """The archived events of these contributions (of one source when given), each with its
    change group and lateness: the filters above, applied in Python to events read from the
    archive files."""
    if not contributions or not day_is_archived(day_total_id=day_total.pk):
        return []
    events = []
    for sequence in sorted({c.snapshot_sequence for c in contributions}):
        events += archived_events(
            day_total=day_total, contributions=contributions, sequence=sequence
        )
    events = [e for e in events if source is None or e.source == source]
    contribution_of = {(c.batch_id, c.source): c for c in contributions}
    for event in events:
        contribution = contribution_of[(event.batch_id, event.source)]
        event.change_group = _group_of(event, contribution, day_total)
        event.arrived_after = event.arrival_time - event.event_time
    return events


def _group_of(event: Event, contribution: Contribution, day_total: DayTotal) -> ChangeGroup:
    # Archived days hold no quarantined events, so only the batch rules apply.
    too_late, count = contribution.too_late_event_count, contribution.event_count
    if too_late and (too_late == count or event.arrival_time >= day_total.final_at):
        return ChangeGroup.RESTATEMENT
    if contribution.late_event_count > too_late and event.arrival_time >= day_total.day_end:
        return ChangeGroup.LATE
    return ChangeGroup.ON_TIME


def change_group_events(
    *,
    day_total: DayTotal,
    contributions: list[Contribution],
    group: ChangeGroup,
    source: str | None = None,
) -> QuerySet[Event] | list[Event]:
    """One group's events, oldest arrival first, with their lateness (a list when some
    come from the archive)."""
    condition = change_group_filters(day_total=day_total, contributions=contributions)[group]
    stored = (
        contribution_events(contributions, source=source)
        .filter(condition)
        .annotate(
            arrived_after=ExpressionWrapper(
                F("arrival_time") - F("event_time"), output_field=DurationField()
            )
        )
    )
    archived = [e for e in _archived(day_total, contributions, source) if e.change_group == group]
    if not archived and not day_is_archived(day_total_id=day_total.pk):
        return stored
    return sorted([*stored, *archived], key=lambda e: (e.arrival_time, e.pk))


def day_waiting_events(*, day_total: DayTotal, limit: int = 20) -> list[Event]:
    """Events counted in the day's value that no snapshot has published yet (two queries):
    the contributions not stamped by a snapshot, and their events."""
    waiting = list(Contribution.objects.filter(day_total=day_total, snapshot_sequence__isnull=True))
    return list(contribution_events(waiting)[:limit])
