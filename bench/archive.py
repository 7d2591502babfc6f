"""Raw event archive: PostgreSQL bytes per event before and after archiving, archive bytes
per event, the archive job's events/s and the explanation latency of an archived snapshot.

    DATABASE_URL=postgres://... .venv/bin/python -m bench.archive [--events 1000000]

A history of N events over D days is loaded through the services (a snapshot run every
simulated day, so every old day is final and snapshotted), the default metric gets a raw
retention of one day, and the archive job runs once (files in var/bench/archive/).
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import shutil
import statistics
import time

from bench.common import (
    LOG_DIR,
    Report,
    Table,
    bench_database_url,
    bench_environment,
    data_reset,
    database_prepare,
    django_setup,
    own_peak_rss_mib,
    postgres_backend_peaks,
    vacuum_analyze,
)
from bench.replay import history_first_day, history_load

ARCHIVE_DIR = LOG_DIR / "archive"
EXPLAIN_ROUNDS = 15


def _table_bytes(table: str) -> int:
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_total_relation_size(%s)", [table])
        return cursor.fetchone()[0]


def _vacuum(table: str, *, full: bool = False) -> None:
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute(f"VACUUM {'FULL ' if full else ''}ANALYZE {table}")


def _explanation_ms(day_total) -> tuple[float, float, int]:
    """Cold (file read and parsed) and warm (cached) milliseconds of the explanation API
    for the first snapshot of an archived day, and the number of events it lists."""
    from rest_framework.test import APIClient

    from archive.selectors import cache_clear
    from tests.factories import UserFactory, api_key_for

    user = UserFactory(username=f"bench-archive-{time.time_ns()}")
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {api_key_for(user)}")
    url = f"/api/days/{day_total.metric.name}/{day_total.day.isoformat()}/snapshots/1/events/"
    cold, warm, listed = [], [], 0
    for _ in range(EXPLAIN_ROUNDS):
        cache_clear()
        started = time.perf_counter()
        response = client.get(url)
        cold.append((time.perf_counter() - started) * 1000)
        started = time.perf_counter()
        client.get(url)
        warm.append((time.perf_counter() - started) * 1000)
        listed = response.json()["count"]
    return statistics.median(cold), statistics.median(warm), listed


def measure(events: int, days: int) -> dict[str, float]:
    from aggregation.models import Metric
    from archive.models import ArchiveManifest, ArchiveTrigger, ManifestState
    from archive.services import archive_run_execute
    from bench.workload import history_events
    from events.models import ArchivedEvent, Event

    data_reset()
    shutil.rmtree(ARCHIVE_DIR, ignore_errors=True)
    first_day = history_first_day(days)
    history = history_events(prefix=f"a{events}", count=events, first_day=first_day, days=days)
    loaded = history_load(history, interval=dt.timedelta(days=1))
    vacuum_analyze()
    stored = Event.objects.count()
    before = _table_bytes("events_event")
    Metric.objects.filter(is_default=True).update(raw_retention_days=1)
    now = dt.datetime.now(dt.UTC)
    started = time.perf_counter()
    run = archive_run_execute(now=now, trigger=ArchiveTrigger.COMMAND)
    seconds = time.perf_counter() - started
    if run.error:
        raise RuntimeError(run.error)
    _vacuum("events_event")
    _vacuum("events_archivedevent")
    after_vacuum = _table_bytes("events_event")
    _vacuum("events_event", full=True)
    after_full = _table_bytes("events_event")
    remaining = Event.objects.count()
    archived_ids = ArchivedEvent.objects.count()
    id_bytes = _table_bytes("events_archivedevent")
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("REINDEX TABLE events_archivedevent")
    id_bytes_reindexed = _table_bytes("events_archivedevent")
    manifests = ArchiveManifest.objects.filter(state=ManifestState.ARCHIVED)
    file_bytes = sum(manifests.values_list("bytes", flat=True))
    day_total = manifests.select_related("day_total__metric").first().day_total
    cold_ms, warm_ms, listed = _explanation_ms(day_total)
    return {
        "events": events,
        "days": days,
        "load_rate": loaded.events / loaded.seconds,
        "stored": stored,
        "before_per_event": before / stored,
        "archived": run.events,
        "files": run.files_written,
        "remaining": remaining,
        "after_vacuum": after_vacuum,
        "after_full": after_full,
        "id_per_event": id_bytes / archived_ids,
        "id_per_event_reindexed": id_bytes_reindexed / archived_ids,
        "file_per_event": file_bytes / run.events,
        "rate": run.events / seconds,
        "seconds": seconds,
        "cold_ms": cold_ms,
        "warm_ms": warm_ms,
        "listed": listed,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--events", type=int, default=10**6)
    parser.add_argument("--days", type=int, default=365)
    args = parser.parse_args()
    database_url = bench_database_url()
    env = bench_environment(database_url=database_url)
    env["ARCHIVE_DIR"] = os.environ["ARCHIVE_DIR"] = str(ARCHIVE_DIR)
    database_prepare(database_url, env)
    django_setup()
    r = measure(args.events, args.days)
    report = Report("Raw event archive")
    report.figure(
        "PostgreSQL bytes per event before archiving (events_event with its indexes)",
        f"{r['before_per_event']:.0f}",
    )
    report.figure(
        "events_event after archiving (VACUUM / VACUUM FULL)",
        f"{r['after_vacuum']:,} / {r['after_full']:,} bytes for {r['remaining']:,} events left",
    )
    report.figure(
        "PostgreSQL bytes per archived event (events_archivedevent: id + content hash), "
        "as written / after REINDEX",
        f"{r['id_per_event']:.0f} / {r['id_per_event_reindexed']:.0f}",
    )
    report.figure("archive file bytes per event (gzip JSON lines)", f"{r['file_per_event']:.1f}")
    report.figure(
        "archive job",
        f"{r['rate']:,.0f} events/s ({r['archived']:,} events, {r['files']} files, "
        f"{r['seconds']:.1f} s)",
    )
    report.figure(
        f"explanation of an archived snapshot ({r['listed']} events), cold / cached",
        f"{r['cold_ms']:.1f} / {r['warm_ms']:.1f} ms",
    )
    report.tables.append(
        Table(
            "History loading (the replay loop in process, a snapshot run every simulated day)",
            ["events", "days", "events/s", "stored"],
            [[f"{r['events']:,}", str(r["days"]), f"{r['load_rate']:,.0f}", f"{r['stored']:,}"]],
        )
    )
    report.memory(
        [("benchmark process", own_peak_rss_mib())]
        + [(f"PostgreSQL backend {i + 1}", p) for i, p in enumerate(postgres_backend_peaks())]
    )
    report.notes += [
        "Archive files on the local file system (FileSystemStorage); S3 adds a round trip "
        "per file written and read back.",
        f"Explanation: GET .../snapshots/1/events/ of an archived day in process, median of "
        f"{EXPLAIN_ROUNDS}; cold = the parsed-file cache emptied first.",
    ]
    report.emit()


if __name__ == "__main__":
    main()
