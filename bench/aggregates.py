"""Aggregates: server time and query count of the slices API and pages, with 3 years x 50
sources of stored days, each day with a few snapshots and every source in each of them.

    DATABASE_URL=postgres://... .venv/bin/python -m bench.aggregates

Each path is requested in process through Django's full handler (middleware, auth,
serialisation; no network), as a logged-in staff user with an API token: the median server
time of several requests, and the number of SQL queries. The same paths are measured on a
history ten times shorter: the query count must not grow with history.
Target (issue 11): <= 50 ms server time each, query count flat.
"""

from __future__ import annotations

import argparse
import datetime as dt

from bench.common import (
    Report,
    bench_database_url,
    bench_environment,
    data_reset,
    database_prepare,
    django_setup,
    own_peak_rss_mib,
    vacuum_analyze,
)
from bench.pages import _client, _measure, served_figures

HISTORY_DAYS = 3 * 365
SOURCES = 50
SNAPSHOTS_PER_DAY = 4
TARGET_MS = 50.0
PATHS = {
    "this year by month (API)": "/api/aggregates/?period=this_year&group_by=month",
    "top 10 sources over a year (API)": (
        "/api/aggregates/?from={year_ago}&to={today}&group_by=source&order=-value&limit=10"
    ),
    "top 10 sources over a year, as of a time (API)": (
        "/api/aggregates/?from={year_ago}&to={today}&group_by=source&order=-value&limit=10"
        "&as_of={as_of}"
    ),
    "a year by week, one source (API)": (
        "/api/aggregates/?from={year_ago}&to={today}&group_by=week&source=source-07"
    ),
    "all sources (API)": "/api/sources/",
    "Periods page, this year by month (HTML)": "/periods/?period=this_year&group_by=month",
    "Periods page, a year by day (HTML)": (
        "/periods/?period=custom&day_from={year_ago}&day_to={today}&group_by=day"
    ),
    "Sources page, last year (HTML)": "/sources/?period=last_year",
}

# Day totals, their source totals, SNAPSHOTS_PER_DAY snapshots per day and a slice per
# source in each: written in SQL (generate_series), since the snapshot job would take hours.
_LOAD_SQL = """
INSERT INTO aggregation_daytotal
    (metric_id, day, day_end, value, event_count, late_event_count, too_late_event_count,
     revision, snapshot_revision, snapshot_count, snapshot_value, finalized, restated,
     last_snapshot_at)
SELECT %(metric)s, d::date, d + interval '1 day', %(sources)s * 55, %(sources)s * 10, 0, 0,
       %(per_day)s, %(per_day)s, %(per_day)s, %(sources)s * 55, true, false,
       d + interval '1 day'
FROM generate_series(%(first)s::date, %(last)s::date, interval '1 day') d;

INSERT INTO aggregation_daysourcetotal
    (day_total_id, metric_id, day, source, value, event_count, late_event_count)
SELECT t.id, t.metric_id, t.day, 'source-' || lpad(s::text, 2, '0'), s + 30, 10, 0
FROM aggregation_daytotal t, generate_series(0, %(sources)s - 1) s
WHERE t.metric_id = %(metric)s;

INSERT INTO snapshots_snapshotrun (trigger, started_at, finished_at, outcome, days_snapshotted,
                                   error)
VALUES ('schedule', now(), now(), 'ok', 0, '');

INSERT INTO snapshots_snapshot
    (day_total_id, metric_id, day, sequence, taken_at, run_id, value, event_count,
     late_event_count, change, change_events, late_events, too_late_events, status, reason)
SELECT t.id, t.metric_id, t.day, n, t.day_end + (n - 1) * interval '2 hours',
       (SELECT max(id) FROM snapshots_snapshotrun), t.value * n / %(per_day)s,
       t.event_count * n / %(per_day)s, 0, t.value / %(per_day)s,
       t.event_count / %(per_day)s, 0, 0,
       CASE WHEN n = %(per_day)s THEN 'final' ELSE 'provisional' END,
       CASE WHEN n = 1 THEN 'first' ELSE 'update' END
FROM aggregation_daytotal t, generate_series(1, %(per_day)s) n
WHERE t.metric_id = %(metric)s;

INSERT INTO snapshots_snapshotsource
    (snapshot_id, metric_id, day, sequence, source, value, event_count, late_event_count,
     change, change_events, late_events)
SELECT sn.id, sn.metric_id, sn.day, sn.sequence, st.source,
       st.value * sn.sequence / %(per_day)s, st.event_count * sn.sequence / %(per_day)s, 0,
       st.value / %(per_day)s, st.event_count / %(per_day)s, 0
FROM snapshots_snapshot sn JOIN aggregation_daysourcetotal st ON st.day_total_id = sn.day_total_id
WHERE sn.metric_id = %(metric)s;
"""


def _load(days: int, sources: int, per_day: int) -> dict[str, str]:
    from django.db import connection

    from aggregation.models import Metric

    data_reset()
    metric = Metric.objects.get(is_default=True)
    last = dt.datetime.now(dt.UTC).date() - dt.timedelta(days=1)
    first = last - dt.timedelta(days=days - 1)
    params = {
        "metric": metric.pk,
        "first": first,
        "last": last,
        "sources": sources,
        "per_day": per_day,
    }
    with connection.cursor() as cursor:
        for statement in _LOAD_SQL.split(";\n"):
            if statement.strip():
                cursor.execute(statement, params)
    vacuum_analyze()
    as_of = dt.datetime.combine(last - dt.timedelta(days=30), dt.time(12), tzinfo=dt.UTC)
    return {
        "today": last.isoformat(),
        "year_ago": (last - dt.timedelta(days=364)).isoformat(),
        "as_of": as_of.isoformat().replace("+00:00", "Z"),
    }


def _row_counts() -> dict[str, int]:
    from aggregation.models import DaySourceTotal
    from snapshots.models import SnapshotSource

    return {
        "source totals": DaySourceTotal.objects.count(),
        "snapshot slices": SnapshotSource.objects.count(),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeats", type=int, default=15)
    parser.add_argument("--days", type=int, default=HISTORY_DAYS)
    parser.add_argument("--sources", type=int, default=SOURCES)
    parser.add_argument("--snapshots-per-day", type=int, default=SNAPSHOTS_PER_DAY)
    args = parser.parse_args()
    database_url = bench_database_url()
    env = bench_environment(database_url=database_url)
    database_prepare(database_url, env)
    django_setup()
    counts: dict[int, dict[str, int]] = {}
    results: dict[str, tuple[int, float, int]] = {}
    short, full = max(args.days // 10, 2), args.days
    rows = {}
    for days in (short, full):
        values = _load(days, args.sources, args.snapshots_per_day)
        rows = _row_counts()
        client = _client()
        counts[days] = {}
        for label, path in PATHS.items():
            results[label] = _measure(client, path.format(**values), args.repeats)
            counts[days][label] = results[label][2]
    report = Report(f"Aggregates ({full} days x {args.sources} sources)")
    served_figures(
        report, results, counts, short=short, full=full, column="path", target_ms=TARGET_MS
    )
    report.memory([("benchmark process", own_peak_rss_mib())])
    report.notes += [
        f"{full} days x {args.sources} sources: {rows['source totals']:,} source totals and "
        f"{args.snapshots_per_day} snapshots a day with a slice per source "
        f"({rows['snapshot slices']:,} slices), written directly in SQL; median of "
        f"{args.repeats} requests after one warm-up, through Django's handler in process "
        "(no network, no gunicorn).",
        "Without as_of, time groups read the day totals (one row a day) and source groups "
        "the source totals; with as_of, each day's latest snapshot at that time (DISTINCT ON "
        "over the unique (metric, day, sequence) index) and its slices.",
    ]
    report.emit()


if __name__ == "__main__":
    main()
