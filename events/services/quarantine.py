"""Quarantine decisions: an operator accepts held too-late events (counted as a
restatement, through aggregation's ledger) or rejects them (kept, never counted)."""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from collections.abc import Sequence
from decimal import Decimal

from django.db import transaction

from aggregation.models import ContributionKind
from aggregation.services.ledger import LedgerEntry, day_totals_lock, ledger_append
from events.models import QuarantinedEvent, QuarantineStatus

ZERO = Decimal(0)


def _held_locked(event_pks: Sequence[int]) -> list[QuarantinedEvent]:
    return list(
        QuarantinedEvent.objects.select_for_update(of=("self",))
        .select_related("event")
        .filter(pk__in=event_pks, status=QuarantineStatus.HELD)
        .order_by("pk")
    )


def _ledger_entry(day_total, source: str, held: list[QuarantinedEvent]) -> LedgerEntry:
    """Accepted events are all too late (their day was final); late as well when their
    day already had a snapshot and they arrived after it ended."""
    late = sum(
        1
        for entry in held
        if day_total.snapshot_count and entry.event.arrival_time >= day_total.day_end
    )
    return LedgerEntry(
        day_total_id=day_total.pk,
        kind=ContributionKind.ACCEPTED,
        value=sum((entry.event.value for entry in held), ZERO),
        event_count=len(held),
        late_event_count=late,
        too_late_event_count=len(held),
        source=source,
    )


def quarantine_accept(
    *, event_pks: Sequence[int], decided_by_id: int | None, reason: str, now: dt.datetime
) -> int:
    """Count held events after all, as a restatement of their days. Returns how many."""
    with transaction.atomic():
        held = _held_locked(event_pks)
        by_slice: dict[tuple[int, str], list[QuarantinedEvent]] = defaultdict(list)
        for entry in held:
            by_slice[(entry.day_total_id, entry.event.source)].append(entry)
        day_totals = day_totals_lock(day_total_id for day_total_id, _ in by_slice)
        entries = [
            _ledger_entry(day_totals[day_total_id], source, held_here)
            for (day_total_id, source), held_here in by_slice.items()
        ]
        contribution_ids = ledger_append(entries=entries, now=now)
        for slice_key, held_here in by_slice.items():
            QuarantinedEvent.objects.filter(pk__in=[entry.pk for entry in held_here]).update(
                status=QuarantineStatus.ACCEPTED,
                decided_at=now,
                decided_by_id=decided_by_id,
                decision_reason=reason,
                contribution_id=contribution_ids[(None, *slice_key)],
            )
    return len(held)


def quarantine_reject(
    *, event_pks: Sequence[int], decided_by_id: int | None, reason: str, now: dt.datetime
) -> int:
    """Keep held events on record, uncounted. Returns how many were rejected."""
    with transaction.atomic():
        held = _held_locked(event_pks)
        QuarantinedEvent.objects.filter(pk__in=[entry.pk for entry in held]).update(
            status=QuarantineStatus.REJECTED,
            decided_at=now,
            decided_by_id=decided_by_id,
            decision_reason=reason,
        )
    return len(held)
