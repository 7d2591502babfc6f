"""The explanation of a snapshot: exactly the events whose values make up its change (the
events of the contributions it stamped), split into on-time, late and restatement."""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from enum import StrEnum

from django.db.models import Count, DurationField, ExpressionWrapper, F, Q, QuerySet, Sum

from aggregation.models import Contribution, ContributionKind, DayTotal
from events.models import Event


def contribution_events(contributions: list[Contribution]) -> QuerySet[Event]:
    """Exactly the events whose values make up these contributions."""
    if not contributions:
        return Event.objects.none()
    day_total_id = contributions[0].day_total_id
    batch_ids = [c.batch_id for c in contributions if c.kind == ContributionKind.BATCH]
    accepted_ids = [c.pk for c in contributions if c.kind == ContributionKind.ACCEPTED]
    from_batches = Q(day_total_id=day_total_id, batch_id__in=batch_ids, quarantine__isnull=True)
    from_quarantine = Q(quarantine__contribution_id__in=accepted_ids)
    return (
        Event.objects.filter(from_batches | from_quarantine)
        .select_related("metric", "batch", "day_total", "quarantine__contribution")
        .order_by("arrival_time", "pk")
    )


def contribution_for_event(event: Event, contributions: list[Contribution]) -> Contribution | None:
    quarantine = getattr(event, "quarantine", None)
    if quarantine is not None:
        return quarantine.contribution
    return next((c for c in contributions if c.batch_id == event.batch_id), None)


# --- What changed: the events behind a snapshot, grouped --------------------------------


class ChangeGroup(StrEnum):
    ON_TIME = "on_time"
    LATE = "late"
    RESTATEMENT = "restatement"


# Matches no event, and stays valid SQL when negated or used as an aggregate filter.
_NOTHING = Q(pk__isnull=True)


def _restatement_filter(day_total: DayTotal, contributions: list[Contribution]) -> Q:
    """Events counted after their day was final. Apply marks a whole contribution too late
    when the day already had its final snapshot, else exactly the events that arrived at or
    after day end + allowed lateness; events accepted from quarantine are all too late."""
    whole, partial = [], []
    for contribution in contributions:
        if contribution.kind != ContributionKind.BATCH or not contribution.too_late_event_count:
            continue
        if contribution.too_late_event_count == contribution.event_count:
            whole.append(contribution.batch_id)
        else:
            partial.append(contribution.batch_id)
    accepted = [c.pk for c in contributions if c.kind == ContributionKind.ACCEPTED]
    restated = _NOTHING
    if whole:
        restated |= Q(batch_id__in=whole, quarantine__isnull=True)
    if partial:
        restated |= Q(
            batch_id__in=partial, quarantine__isnull=True, arrival_time__gte=day_total.final_at
        )
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
        c.batch_id
        for c in contributions
        if c.kind == ContributionKind.BATCH and c.late_event_count > c.too_late_event_count
    ]
    late = _NOTHING
    if late_batches:
        late = Q(batch_id__in=late_batches, arrival_time__gte=day_total.day_end) & ~restated
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
    *, day_total: DayTotal, contributions: list[Contribution]
) -> list[ChangeGroupSum]:
    """Count and sum of each group, in one query."""
    filters = change_group_filters(day_total=day_total, contributions=contributions)
    aggregates = {}
    for group, condition in filters.items():
        aggregates[f"{group}_events"] = Count("pk", filter=condition)
        aggregates[f"{group}_value"] = Sum("value", filter=condition)
    figures = contribution_events(contributions).order_by().aggregate(**aggregates)
    return [
        ChangeGroupSum(
            group=group,
            events=figures[f"{group}_events"] or 0,
            value=figures[f"{group}_value"] or Decimal(0),
        )
        for group in filters
    ]


def change_group_events(
    *, day_total: DayTotal, contributions: list[Contribution], group: ChangeGroup
) -> QuerySet[Event]:
    """One group's events, oldest arrival first, with their lateness."""
    condition = change_group_filters(day_total=day_total, contributions=contributions)[group]
    return (
        contribution_events(contributions)
        .filter(condition)
        .annotate(
            arrived_after=ExpressionWrapper(
                F("arrival_time") - F("event_time"), output_field=DurationField()
            )
        )
    )


def day_waiting_events(*, day_total: DayTotal, limit: int = 20) -> list[Event]:
    """Events counted in the day's value that no snapshot has published yet (two queries):
    the contributions not stamped by a snapshot, and their events."""
    waiting = list(Contribution.objects.filter(day_total=day_total, snapshot_sequence__isnull=True))
    return list(contribution_events(waiting)[:limit])
