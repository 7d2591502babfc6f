"""What the day APIs' answers depend on, as plain values (their ETag and cache key, see
common/conditional.py): the revision counters of the day totals they show (`revision`
grows with each apply, `snapshot_count` with each snapshot; the ledger moves the per-source
figures with the revision) and what time changes without a write: which days are closed
or final as of `now`, and the completeness estimate of the days that are not final yet.

Each is one or two light queries on the day totals (no events, no snapshots), so that
telling a client "you have it" costs much less than the answer.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from django.db.models import Count, Q, Sum

from aggregation.models import DayTotal, Metric
from aggregation.selectors import day_total_list
from archive.selectors import day_is_archived
from events.selectors.lateness import days_completeness

Profiles = dict[int, list[float] | None]


def _completeness(open_days: list[DayTotal], now: dt.datetime, profiles: Profiles) -> tuple:
    """The estimate each not-final day shows at `now` (it moves with time alone)."""
    values = days_completeness(day_totals=open_days, now=now, profiles=profiles)
    return tuple(sorted(values.items()))


def day_list_version(
    *,
    metric: Metric | None,
    day_from: dt.date | None,
    day_to: dt.date | None,
    now: dt.datetime,
    profiles: Profiles,
) -> tuple[Any, ...]:
    """GET /api/days/ with these filters (any page, any source: the query string is part of
    the tag). A day appearing changes the count and the id sum; an apply or a snapshot on
    any selected day, its revision or snapshot sums (both only grow); time, the counts of
    closed and final days (they only grow with it) and the open days' completeness."""
    selected = day_total_list(metric=metric, day_from=day_from, day_to=day_to).order_by()
    figures = selected.with_final_at().aggregate(
        days=Count("id"),
        ids=Sum("id"),
        revisions=Sum("revision"),
        snapshots=Sum("snapshot_count"),
        closed=Count("id", filter=Q(day_end__lte=now)),
        final=Count("id", filter=Q(final_instant__lte=now)),
    )
    if metric is not None:
        metrics: list[tuple] = [(metric.pk, metric.name, metric.allowed_lateness)]
    else:  # the names and lateness of every metric shown (a handful of rows)
        metrics = list(Metric.objects.order_by("pk").values_list("pk", "name", "allowed_lateness"))
    open_days = []
    if figures["final"] < figures["days"]:
        open_days = list(selected.with_final_at().filter(final_instant__gt=now))
    return (*figures.values(), *metrics, _completeness(open_days, now, profiles))


def day_version(*, day_total: DayTotal, now: dt.datetime, profiles: Profiles) -> tuple[Any, ...]:
    """GET /api/days/{metric}/{day}/ (any as_of or source): the day as loaded (no query),
    its status now and, until it is final, its completeness (one profile query)."""
    metric = day_total.metric
    return (
        day_total.pk,
        day_total.revision,
        day_total.snapshot_count,
        metric.name,
        metric.allowed_lateness,
        day_total.status_at(now).value,
        _completeness([day_total], now, profiles),
    )


def snapshot_events_version(*, day_total: DayTotal) -> tuple[Any, ...]:
    """GET .../snapshots/{n}/events/: a snapshot's events are fixed once it is taken; they
    are read from the archive files once the day is archived (one exists query)."""
    return (
        day_total.pk,
        day_total.revision,
        day_total.snapshot_count,
        day_is_archived(day_total_id=day_total.pk),
    )
