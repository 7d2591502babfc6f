"""Pages: server time and query count of the pages people read, with 3 years of days and
288 snapshots per day (one every 5 minutes).

    DATABASE_URL=postgres://... .venv/bin/python -m bench.pages

Each page is requested in process through Django's full handler (middleware, auth,
serialisation; no network), as a logged-in staff user with an API token: the median
server time of several requests, and the number of SQL queries. The same pages are
measured on a history ten times shorter: the query count must not grow with history.
Target: <= 100 ms and a query count that does not grow.

Another page is measured the same way when added to PAGES or passed with
--page "label=/path/{day}/".
"""

from __future__ import annotations

import argparse
import datetime as dt
import random
import statistics
import time
from decimal import Decimal

from bench.common import (
    Report,
    Table,
    api_token,
    bench_database_url,
    bench_environment,
    data_reset,
    database_prepare,
    django_setup,
    own_peak_rss_mib,
    vacuum_analyze,
)

SNAPSHOTS_PER_DAY = 288
RECENT_EVENT_DAYS = 30  # days with their events stored (the dashboard's completeness)
HISTORY_DAYS = 3 * 365
TARGET_MS = 100.0
# label -> path; {day} is a day in the middle of the history, {today} the last day.
PAGES = {
    "dashboard (HTML)": "/",
    "dashboard, a year's range (HTML)": "/?metric=default&from={year_ago}&to={today}",
    "day page with all its snapshots (HTML)": "/days/default/{day}/",
    "what changed in one snapshot (HTML)": "/days/default/{day}/snapshots/{sequence}/",
    "day list, first page (API)": "/api/days/?metric=default",
    "day list, a year's range (API)": "/api/days/?metric=default&from={year_ago}&to={today}",
    "day detail with all its snapshots (API)": "/api/days/default/{day}/",
    "day as of a time (API)": "/api/days/default/{day}/?as_of={as_of}",
    "events behind a snapshot (API)": "/api/days/default/{day}/snapshots/{sequence}/events/",
}


def _load(days: int, per_day: int) -> dict[str, str]:
    """Day totals and snapshots written straight to the database (a history this long
    would take hours through the snapshot job), plus the events behind one snapshot."""
    from aggregation.calendar import day_end
    from aggregation.models import Contribution, DayTotal, Metric
    from aggregation.selectors import reporting_timezone
    from events.models import BatchStatus, Event, IngestBatch, IngestChannel
    from snapshots.models import Snapshot, SnapshotReason, SnapshotRun

    data_reset()
    metric = Metric.objects.get(is_default=True)
    last = dt.datetime.now(dt.UTC).date() - dt.timedelta(days=1)
    first = last - dt.timedelta(days=days - 1)
    step = dt.timedelta(minutes=5)
    totals = DayTotal.objects.bulk_create(
        [
            DayTotal(
                metric=metric, day=first + dt.timedelta(days=n),
                day_end=day_end(first + dt.timedelta(days=n), reporting_timezone()),
                value=Decimal(per_day * 10), event_count=per_day * 4,
                revision=per_day, snapshot_revision=per_day,
                snapshot_count=per_day, snapshot_value=Decimal(per_day * 10),
                finalized=True,
            )
            for n in range(days)
        ],
        batch_size=1000,
    )  # fmt: skip
    for day_total in totals:
        start = dt.datetime.combine(day_total.day, dt.time(), tzinfo=dt.UTC)
        run = SnapshotRun.objects.create(
            trigger="schedule", started_at=start, finished_at=start, outcome="ok"
        )
        Snapshot.objects.bulk_create(
            [
                Snapshot(
                    day_total=day_total, metric=metric, day=day_total.day, sequence=n,
                    taken_at=start + n * step, run=run, value=Decimal(n * 10),
                    event_count=n * 4, late_event_count=0, change=Decimal(10), change_events=4,
                    late_events=0, status="live" if n < per_day else "final",
                    reason=SnapshotReason.FIRST if n == 1 else SnapshotReason.UPDATE,
                )
                for n in range(1, per_day + 1)
            ]
        )  # fmt: skip
    middle = totals[len(totals) // 2]
    sequence = min(100, per_day)
    taken = dt.datetime.combine(middle.day, dt.time(), tzinfo=dt.UTC) + sequence * step
    batch = IngestBatch.objects.create(
        received_at=taken, channel=IngestChannel.API, status=BatchStatus.APPLIED,
        applied_at=taken, accepted_count=4,
    )  # fmt: skip
    Event.objects.bulk_create(
        Event(
            event_id=f"page-{n}", metric=metric, day=middle.day, day_total=middle,
            event_time=taken - dt.timedelta(minutes=n), arrival_time=taken,
            value=Decimal("2.50"), batch=batch,
        )
        for n in range(4)
    )  # fmt: skip
    Contribution.objects.create(
        day_total=middle, batch=batch, value=Decimal(10), event_count=4, applied_at=taken,
        snapshot_sequence=sequence,
    )  # fmt: skip
    _recent_events(totals[-RECENT_EVENT_DAYS:], per_day * 4)
    vacuum_analyze()
    return {
        "day": middle.day.isoformat(),
        "today": last.isoformat(),
        "year_ago": (last - dt.timedelta(days=365)).isoformat(),
        "as_of": (taken + dt.timedelta(seconds=1)).isoformat().replace("+00:00", "Z"),
        "sequence": str(sequence),
    }


def _recent_events(day_totals, per_day: int) -> None:
    """The events of the last days, with a spread of lateness: the dashboard estimates
    completeness from the arrivals of recent final days."""
    from events.models import BatchStatus, Event, IngestBatch, IngestChannel

    rng = random.Random(7)
    for day_total in day_totals:
        start = dt.datetime.combine(day_total.day, dt.time(), tzinfo=dt.UTC)
        batch = IngestBatch.objects.create(
            received_at=start + dt.timedelta(days=1), channel=IngestChannel.API,
            status=BatchStatus.APPLIED, applied_at=start + dt.timedelta(days=1),
            accepted_count=per_day,
        )  # fmt: skip
        events = []
        for n in range(per_day):
            event_time = start + dt.timedelta(seconds=rng.randrange(86_400))
            lateness = dt.timedelta(seconds=rng.choice([2, 30, 300, 3_600, 20_000, 90_000]))
            events.append(
                Event(
                    event_id=f"recent-{day_total.day}-{n}", metric_id=day_total.metric_id,
                    day=day_total.day, day_total=day_total, event_time=event_time,
                    arrival_time=event_time + lateness, value=Decimal("2.50"), batch=batch,
                )
            )  # fmt: skip
        Event.objects.bulk_create(events, batch_size=2000)


def _client():
    from django.contrib.auth import get_user_model
    from django.test import Client

    user, _ = get_user_model().objects.get_or_create(
        username="bench-pages", defaults={"is_staff": True, "is_superuser": True}
    )
    client = Client(HTTP_AUTHORIZATION=f"Token {api_token(user.username)}")
    client.force_login(user)
    return client


def _measure(client, path: str, repeats: int) -> tuple[int, float, int]:
    """(status, median ms, queries) of GET path."""
    from django.db import connection

    queries: list[str] = []

    def record(execute, sql, params, many, context):
        queries.append(sql)
        return execute(sql, params, many, context)

    # An execute wrapper rather than CaptureQueriesContext: Django empties the query log
    # at the start of every request.
    with connection.execute_wrapper(record):
        status = client.get(path).status_code  # warm-up, and the query count
    timings = []
    for _ in range(repeats):
        started = time.perf_counter()
        client.get(path)
        timings.append((time.perf_counter() - started) * 1000)
    return status, statistics.median(timings), len(queries)


def served_figures(
    report: Report,
    results: dict[str, tuple[int, float, int]],
    counts: dict[int, dict[str, int]],
    *,
    short: int,
    full: int,
    column: str,
    target_ms: float,
) -> None:
    """Each measured path against the target (server time, flat query count), and the
    query counts by history length."""
    for label, (status, median_ms, queries) in results.items():
        grows = queries > counts[short][label]
        report.figure(
            label,
            f"{median_ms:.1f} ms, {queries} queries (HTTP {status})",
            f"<= {target_ms:.0f} ms, queries flat",
            status == 200 and median_ms <= target_ms and not grows,
        )
    report.tables.append(
        Table(
            "Query count by history length",
            [column, f"{short} days", f"{full} days"],
            [[label, str(counts[short][label]), str(counts[full][label])] for label in results],
        )
    )


def _pages(extra: list[str]) -> dict[str, str]:
    pages = dict(PAGES)
    for item in extra:
        label, _, path = item.partition("=")
        pages[label] = path
    return pages


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeats", type=int, default=15)
    parser.add_argument("--page", action="append", default=[], help='"label=/path/{day}/"')
    parser.add_argument("--days", type=int, default=HISTORY_DAYS)
    parser.add_argument("--snapshots-per-day", type=int, default=SNAPSHOTS_PER_DAY)
    args = parser.parse_args()
    database_url = bench_database_url()
    env = bench_environment(database_url=database_url)
    database_prepare(database_url, env)
    django_setup()
    pages = _pages(args.page)
    counts: dict[int, dict[str, int]] = {}
    results: dict[str, tuple[int, float, int]] = {}
    short, full = max(args.days // 10, 2), args.days
    for days in (short, full):
        values = _load(days, args.snapshots_per_day)
        client = _client()
        counts[days] = {}
        for label, path in pages.items():
            results[label] = _measure(client, path.format(**values), args.repeats)
            counts[days][label] = results[label][2]
    report = Report(f"Pages ({full} days x {args.snapshots_per_day} snapshots)")
    served_figures(
        report, results, counts, short=short, full=full, column="page", target_ms=TARGET_MS
    )
    report.memory([("benchmark process", own_peak_rss_mib())])
    report.notes += [
        f"{full} days x {args.snapshots_per_day} snapshots = "
        f"{full * args.snapshots_per_day:,} snapshots, written directly (one run per day), "
        f"and the events of the last {RECENT_EVENT_DAYS} days ({args.snapshots_per_day * 4:,} "
        "a day, arriving seconds to a day late); "
        f"median of {args.repeats} requests after one warm-up, through Django's handler in "
        "process (no network, no gunicorn).",
        "Other pages: add them to PAGES, or pass --page 'label=/path/{day}/'.",
    ]
    report.emit()


if __name__ == "__main__":
    main()
