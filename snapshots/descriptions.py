"""Why a snapshot's number moved, in one plain sentence."""

from __future__ import annotations

from common.formatting import figure, plural, signed_figure
from snapshots.models import Snapshot, SnapshotReason

CHANGE_ICONS = {1: "▲", -1: "▼", 0: "="}
# The glossary's words (templates/aggregation/glossary.html): one word per idea.
REASON_WORDS = {
    SnapshotReason.FIRST: "First snapshot of the day",
    SnapshotReason.UPDATE: "New events arrived",
    SnapshotReason.LATE_DATA: "Late events arrived",
    SnapshotReason.FINAL: "The day became final",
    SnapshotReason.RESTATEMENT: "Restated: events arrived after final",
}


def change_direction(snapshot: Snapshot) -> int:
    return (snapshot.change > 0) - (snapshot.change < 0)


def _arrivals(snapshot: Snapshot, kind: str, count: int) -> str:
    """ "3 late events arrived" or "5 events arrived, 3 of them late"."""
    if count == snapshot.change_events:
        return f"{plural(count, f'{kind} event')} arrived"
    return f"{plural(snapshot.change_events, 'event')} arrived, {count:,} of them {kind}"


def snapshot_explanation(snapshot: Snapshot, unit: str = "") -> str:
    """The sentence for one snapshot; values carry `unit`, the metric's unit."""
    if snapshot.reason == SnapshotReason.FIRST:
        return (
            f"First snapshot of the day: {figure(snapshot.value, unit)} from "
            f"{plural(snapshot.change_events, 'event')}."
        )
    if snapshot.reason == SnapshotReason.FINAL:
        return "No new events: the value did not change and is now settled."
    if snapshot.reason == SnapshotReason.RESTATEMENT:
        why = _arrivals(snapshot, "after-final", snapshot.too_late_events)
        moved = f"after the day was final, because {why}"
    elif snapshot.reason == SnapshotReason.LATE_DATA:
        moved = f"because {_arrivals(snapshot, 'late', snapshot.late_events)}"
    else:
        moved = f"because {plural(snapshot.change_events, 'new event')} arrived"
    if not snapshot.change:
        return f"No net change {moved.replace('because', 'although', 1)}, adding up to zero."
    return f"Changed by {signed_figure(snapshot.change, unit)} {moved}."
