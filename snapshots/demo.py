"""A demo event log that tells the late-data story, and the metrics it needs.

Sources behave as they do in life: web events arrive within seconds, mobile ones within
minutes to hours (a few phones are offline until the next day), the partner sends each day
as one file the next morning. One day has a flash sale, on the web and at the partner, whose
file the next morning is several times the usual (the one unusually large late correction).
About 3% of events are sent twice, a few are sent again with a different value (conflicts),
and a handful arrive after their day was final: three orders (the day is restated) and four
sign-ups (held in quarantine).

Everything is drawn from one seeded generator in a fixed order: the same seed, number of
days and end time write the same file, byte for byte.
"""

from __future__ import annotations

import csv
import datetime as dt
import random
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from zoneinfo import ZoneInfo

from aggregation.calendar import day_end, day_start
from aggregation.models import Metric, TooLatePolicy

LOG_COLUMNS = ["event_id", "event_time", "arrival_time", "value", "metric", "source"]
ORDERS = "orders"
ORDERS_UNIT = "EUR"
SIGNUPS = "signups"
# Share of a day's events in each hour: quiet nights, busy evenings.
HOUR_WEIGHTS = [1, 1, 1, 1, 1, 2, 3, 5, 6, 6, 6, 6, 7, 6, 6, 6, 6, 7, 8, 9, 9, 7, 4, 2]
ORDER_PRICES = ["4.99", "9.99", "12.50", "19.90", "24.00", "49.99", "99.00"]
PARTNER_PRICES = ["120.00", "250.00", "75.50", "310.25"]
DUPLICATE_SHARE = 0.03
CONFLICTS = 4
FLASH_SALE_DAYS_AGO = 8
RESTATED_DAYS_AGO = 6
QUARANTINED_DAYS_AGO = (4, 9)


def demo_metrics_ensure() -> None:
    """The demo's metrics: orders (in EUR; the default metric, so events that name no metric
    count there) and sign-ups (short allowed lateness, too-late events held for review).

    The first migrate creates the default metric as "default"; while nothing was counted in
    it, the demo renames it to what it holds. A default metric already in use stays as it is
    and orders get a metric of their own."""
    orders = {"description": "Orders placed, in euros.", "unit": ORDERS_UNIT}
    unused_default = Metric.objects.filter(
        is_default=True, name="default", day_totals__isnull=True
    ).first()
    if unused_default is not None and not Metric.objects.filter(name=ORDERS).exists():
        for field, value in {"name": ORDERS, **orders}.items():
            setattr(unused_default, field, value)
        unused_default.save(update_fields=["name", *orders])
    else:
        Metric.objects.get_or_create(name=ORDERS, defaults=orders)
    Metric.objects.get_or_create(
        name=SIGNUPS,
        defaults={
            "description": "Sign-ups. Too-late events are held for an operator to review.",
            "allowed_lateness": dt.timedelta(hours=12),
            "too_late_policy": TooLatePolicy.QUARANTINE,
        },
    )


@dataclass(frozen=True)
class DemoEvent:
    event_id: str
    event_time: dt.datetime
    arrival_time: dt.datetime
    value: str
    metric: str
    source: str

    def row(self) -> list[str]:
        return [
            self.event_id,
            _iso(self.event_time),
            _iso(self.arrival_time),
            self.value,
            self.metric,
            self.source,
        ]


def _iso(instant: dt.datetime) -> str:
    return instant.astimezone(dt.UTC).isoformat().replace("+00:00", "Z")


@dataclass
class _DayPlan:
    day: dt.date
    start: dt.datetime
    end: dt.datetime
    days_ago: int


class _DemoGenerator:
    def __init__(self, seed: int) -> None:
        self.rng = random.Random(seed)
        # The shops and e-mail sources draw from their own stream, so the web, mobile and
        # partner events of a seed stay what they were before those sources existed; the
        # partner's flash-sale orders have a stream of their own for the same reason.
        self.more_rng = random.Random(seed + 1)
        self.sale_rng = random.Random(seed + 2)

    def _moment(
        self, plan: _DayPlan, hours: range | None = None, rng: random.Random | None = None
    ) -> dt.datetime:
        rng = rng or self.rng
        if hours is None:
            hour = rng.choices(range(24), weights=HOUR_WEIGHTS)[0]
        else:
            hour = rng.choice(hours)
        return plan.start + dt.timedelta(hours=hour, seconds=rng.randrange(3600))

    def _mobile_delay(self, plan: _DayPlan, event_time: dt.datetime) -> dt.datetime:
        draw = self.rng.random()
        if draw < 0.03:  # offline until the next day
            return plan.end + dt.timedelta(hours=self.rng.uniform(8, 20))
        if draw < 0.25:
            return event_time + dt.timedelta(minutes=self.rng.uniform(60, 480))
        return event_time + dt.timedelta(minutes=self.rng.uniform(1, 30))

    def orders(self, plan: _DayPlan) -> Iterator[DemoEvent]:
        stamp = f"{plan.day:%Y%m%d}"
        web = self.rng.randint(50, 70)
        for n in range(web):
            event_time = self._moment(plan)
            yield DemoEvent(
                f"web-{stamp}-{n:04d}",
                event_time,
                event_time + dt.timedelta(seconds=self.rng.uniform(0.2, 40)),
                self.rng.choice(ORDER_PRICES),
                ORDERS,
                "web",
            )
        if plan.days_ago == FLASH_SALE_DAYS_AGO:
            for n in range(web, web + self.rng.randint(150, 200)):
                event_time = self._moment(plan, hours=range(18, 21))
                yield DemoEvent(
                    f"web-{stamp}-{n:04d}",
                    event_time,
                    event_time + dt.timedelta(seconds=self.rng.uniform(0.2, 90)),
                    self.rng.choice(ORDER_PRICES[:4]),
                    ORDERS,
                    "web",
                )
        for n in range(self.rng.randint(20, 30)):
            event_time = self._moment(plan)
            yield DemoEvent(
                f"mobile-{stamp}-{n:04d}",
                event_time,
                self._mobile_delay(plan, event_time),
                self.rng.choice(ORDER_PRICES),
                ORDERS,
                "mobile",
            )
        batch_at = plan.end + dt.timedelta(hours=6)  # the partner's file, next morning
        for n in range(self.rng.randint(8, 12)):
            yield DemoEvent(
                f"partner-{stamp}-{n:04d}",
                self._moment(plan),
                batch_at + dt.timedelta(seconds=n),
                self.rng.choice(PARTNER_PRICES),
                ORDERS,
                "partner",
            )
        if plan.days_ago == FLASH_SALE_DAYS_AGO:
            yield from self._partner_sale(plan, stamp, batch_at)
        yield from self._shops_and_email(plan, stamp)

    def _partner_sale(
        self, plan: _DayPlan, stamp: str, batch_at: dt.datetime
    ) -> Iterator[DemoEvent]:
        """The partner ran the flash sale too: its next-morning file is several times the
        usual, the one late correction of the demo that is unusually large."""
        rng = self.sale_rng
        for n in range(100, 100 + rng.randint(40, 50)):
            yield DemoEvent(
                f"partner-{stamp}-{n:04d}",
                self._moment(plan, hours=range(18, 21), rng=rng),
                batch_at + dt.timedelta(seconds=n),
                rng.choice(PARTNER_PRICES),
                ORDERS,
                "partner",
            )

    def _shops_and_email(self, plan: _DayPlan, stamp: str) -> Iterator[DemoEvent]:
        """Two more sources with their own lateness: the shops' tills upload at the next
        full hour; e-mail orders are confirmed in batches 2 to 10 hours later."""
        rng = self.more_rng
        for n in range(rng.randint(10, 16)):
            event_time = self._moment(plan, rng=rng)
            next_hour = event_time.replace(minute=0, second=0, microsecond=0)
            yield DemoEvent(
                f"store-{stamp}-{n:04d}",
                event_time,
                next_hour + dt.timedelta(hours=1, seconds=rng.uniform(5, 300)),
                rng.choice(ORDER_PRICES),
                ORDERS,
                "store",
            )
        for n in range(rng.randint(4, 8)):
            event_time = self._moment(plan, rng=rng)
            yield DemoEvent(
                f"email-{stamp}-{n:04d}",
                event_time,
                event_time + dt.timedelta(hours=rng.uniform(2, 10)),
                rng.choice(ORDER_PRICES),
                ORDERS,
                "email",
            )

    def signups(self, plan: _DayPlan) -> Iterator[DemoEvent]:
        stamp = f"{plan.day:%Y%m%d}"
        for n in range(self.rng.randint(15, 25)):
            source = self.rng.choices(["web", "mobile"], weights=[3, 2])[0]
            event_time = self._moment(plan)
            minutes = self.rng.uniform(0.01, 1) if source == "web" else self.rng.uniform(1, 180)
            yield DemoEvent(
                f"signup-{stamp}-{n:04d}",
                event_time,
                event_time + dt.timedelta(minutes=minutes),
                "1",
                SIGNUPS,
                source,
            )

    def too_late(self, plan: _DayPlan) -> Iterator[DemoEvent]:
        """Phones that stayed offline for days: past allowed lateness on purpose."""
        stamp = f"{plan.day:%Y%m%d}"
        if plan.days_ago == RESTATED_DAYS_AGO:
            for n in range(3):
                yield DemoEvent(
                    f"mobile-{stamp}-offline-{n}",
                    self._moment(plan),
                    plan.end + dt.timedelta(days=2, hours=9, minutes=n),
                    self.rng.choice(ORDER_PRICES),
                    ORDERS,
                    "mobile",
                )
        if plan.days_ago in QUARANTINED_DAYS_AGO:
            for n in range(2):
                yield DemoEvent(
                    f"signup-{stamp}-offline-{n}",
                    self._moment(plan),
                    plan.end + dt.timedelta(days=1, hours=3, minutes=n),
                    "1",
                    SIGNUPS,
                    "mobile",
                )

    def repeats(self, events: list[DemoEvent]) -> Iterator[DemoEvent]:
        """Client retries (same content, a little later) and a few corrected resends."""
        for event in events:
            if self.rng.random() < DUPLICATE_SHARE:
                retry = dt.timedelta(seconds=self.rng.uniform(1, 120))
                yield DemoEvent(**{**event.__dict__, "arrival_time": event.arrival_time + retry})
        partner = [event for event in events if event.source == "partner"]
        for event in self.rng.sample(partner, min(CONFLICTS, len(partner))):
            yield DemoEvent(
                **{
                    **event.__dict__,
                    "value": "1.00",
                    "arrival_time": event.arrival_time + dt.timedelta(hours=2),
                }
            )


def demo_events(*, days: int, seed: int, until: dt.datetime, tz: ZoneInfo) -> list[DemoEvent]:
    """The demo log's events in arrival order: `days` days ending with the day of `until`,
    without anything that would only arrive after `until`."""
    generator = _DemoGenerator(seed)
    last_day = until.astimezone(tz).date()
    events: list[DemoEvent] = []
    for days_ago in range(days - 1, -1, -1):
        day = last_day - dt.timedelta(days=days_ago)
        plan = _DayPlan(day, day_start(day, tz), day_end(day, tz), days_ago)
        events += generator.orders(plan)
        events += generator.signups(plan)
        events += generator.too_late(plan)
    events += list(generator.repeats(events))
    events = [e for e in events if e.event_time <= until and e.arrival_time <= until]
    return sorted(events, key=lambda e: (e.arrival_time, e.event_id))


def demo_log_write(*, path: Path, events: list[DemoEvent]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", encoding="utf-8", newline="") as handle:
        writer = csv.writer(handle, lineterminator="\n")
        writer.writerow(LOG_COLUMNS)
        writer.writerows(event.row() for event in events)
