"""A day's status in words: the badge (text and a shape, never colour alone) and the
sentence that says what the status means for the reader."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from decimal import Decimal

from aggregation.calendar import DayStatus
from aggregation.models import DayTotal, TooLatePolicy
from aggregation.selectors import reporting_timezone
from common.formatting import plural, signed_figure, zone_time


def local_time(instant: dt.datetime, *, year: int | None = None) -> str:
    """ "23 Nov 00:00 UTC" in the reporting zone; the year is added when it is not `year`."""
    return zone_time(instant, tz=reporting_timezone(), year=year)


@dataclass(frozen=True)
class StatusBadge:
    key: str
    label: str
    icon: str
    hint: str


BADGES = {
    "live": StatusBadge("live", "Live", "○", "The day is not over: the value still grows."),
    "provisional": StatusBadge(
        "provisional", "Provisional", "◐", "Over, but late events may still change it."
    ),
    "final": StatusBadge("final", "Final", "●", "Settled: the allowed lateness has passed."),
    "restated": StatusBadge(
        "restated", "Restated", "◆", "Changed after it was final: events arrived after final."
    ),
}


def day_badge(day_total: DayTotal, now: dt.datetime) -> StatusBadge:
    status = day_total.status_at(now)
    if status == DayStatus.FINAL and day_total.restated:
        return BADGES["restated"]
    return BADGES[status.value]


def day_status_sentence(day_total: DayTotal, now: dt.datetime) -> str:
    year = now.year
    final_at = local_time(day_total.final_at, year=year)
    badge = day_badge(day_total, now)
    if badge.key == "live":
        return (
            f"Live: this day is not over yet, so the value grows as events arrive. It ends at "
            f"{local_time(day_total.day_end, year=year)}; late events may change it until "
            f"{final_at}."
        )
    if badge.key == "provisional":
        return f"Provisional: late events may still change this until {final_at}."
    if badge.key == "restated":
        return (
            f"Restated: this day changed after it became final at {final_at}, because "
            f"{plural(day_total.too_late_event_count, 'event')} arrived after final."
        )
    if day_total.metric.too_late_policy == TooLatePolicy.QUARANTINE:
        after = "an event arriving for it now is held for an operator to review."
    else:
        after = (
            "an event arriving for it now would still be counted, and the day shown as restated."
        )
    return f"Final since {final_at}: this value is settled; {after}"


def unpublished_sentence(day_total: DayTotal, published_events: int) -> str | None:
    """What the current value holds that no snapshot has recorded yet (None: nothing)."""
    if day_total.snapshot_count == 0:
        return (
            "Not published yet: no snapshot has recorded this day so far; the next snapshot "
            "run will."
        )
    pending = day_total.event_count - published_events
    change: Decimal = day_total.unsnapshotted_change
    if not pending and not change:
        return None
    return (
        f"The value includes {signed_figure(change, day_total.metric.unit)} from "
        f"{plural(pending, 'event')} that "
        "arrived after the last snapshot; the next snapshot run will record them."
    )


def completeness_sentence(share: float | None) -> str | None:
    """How complete a day that is not final probably is, from recent days' arrivals."""
    if share is None:
        return None
    if share >= 0.995:
        return (
            "Nearly all of a day's events have usually arrived by now (judged from the last "
            "final days); a few late ones may still come."
        )
    return (
        f"About {share:.0%} of a day's events have usually arrived by now (judged from how "
        "late events arrived on the last final days), so this value may still grow."
    )
