"""Replay an event log through the production services with a simulated clock.

The log (CSV with a header, or JSON lines; the fields of POST /api/events/ with
`arrival_time` required) is fed in arrival order to the same services the API and the
worker use: `events_ingest` with each event's own arrival time, `batch_apply`, and, at
every interval boundary of simulated time, `snapshot_run_execute` as of that boundary.
Nothing reads the wall clock, so the same log with the same interval writes the same
snapshots, on any database: `snapshot_table_digest` proves it.

Consecutive events between two boundaries are ingested together, up to INGEST_GROUP_MAX
per call, always cut at the same places, so grouping is deterministic. A group never spans
a boundary, so every event meets exactly the day states (snapshotted, final) it would have
met arriving on its own.

The work of many boundaries commits together (COMMIT_EVERY_BOUNDARIES): each service still
runs in its own atomic block (inside the group, without a savepoint: see _CommitGroups),
so what each one reads and writes is the same, but a replay of hourly snapshots no longer
waits for three synchronous commits per simulated hour. Every commit stays synchronous. A
failure rolls back to the last commit point; a replay is only meaningful from an empty
database anyway, so it is run again. While replaying, the statements the services send
through server-binding cursors are prepared once per connection, and the database is
analyzed between groups each time the events replayed double, so that those statements'
plans follow the tables as they grow from empty.
"""

from __future__ import annotations

import contextlib
import csv
import datetime as dt
import gzip
import json
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import IO, Any

from django.db import connection, transaction
from django.db.models import Min, Sum

from aggregation.models import FINAL_AT, DayTotal
from events.models import Event, IngestChannel, QuarantinedEvent
from events.services.apply import batch_apply
from events.services.ingest import IngestResult, events_ingest
from events.validation import EVENT_FIELDS, EventFieldError, parse_instant
from snapshots.models import RunTrigger
from snapshots.selectors.history import snapshot_table_digest
from snapshots.services.run import snapshot_run_execute

INGEST_GROUP_MAX = 1000
# Boundaries (with a snapshot run) per transaction: enough that commits stop mattering,
# few enough that locks and the open transaction stay small on a long log.
COMMIT_EVERY_BOUNDARIES = 100
# The first ANALYZE between groups, then one each time the events replayed double.
ANALYZE_FIRST_AT_EVENTS = 5000
EPOCH = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)
CSV_EXTENSIONS = {".csv"}
JSONL_EXTENSIONS = {".jsonl", ".ndjson", ".json"}
REJECTIONS_SHOWN = 20


class ReplayLogError(Exception):
    """The log cannot be replayed as written (nothing has been stored)."""


class ReplayRefused(Exception):
    """The database already holds events; a replay needs an empty one."""


@dataclass(frozen=True, slots=True)
class LogRecord:
    line: int
    arrival: dt.datetime
    raw: dict[str, Any]


# --- Reading the log ------------------------------------------------------------------------


def _open_text(path: Path) -> IO[str]:
    if path.suffix == ".gz":
        return gzip.open(path, "rt", encoding="utf-8", newline="")
    return path.open(encoding="utf-8", newline="")


def _is_jsonl(path: Path) -> bool:
    suffixes = [s for s in path.suffixes if s != ".gz"]
    if suffixes and suffixes[-1] in CSV_EXTENSIONS:
        return False
    if suffixes and suffixes[-1] in JSONL_EXTENSIONS:
        return True
    with _open_text(path) as handle:
        for line in handle:
            if line.strip():
                return line.lstrip().startswith("{")
    return False


def _csv_rows(handle: IO[str]) -> Iterator[tuple[int, dict[str, Any]]]:
    reader = csv.reader(handle)
    header = [name.strip() for name in next(reader, [])]
    unknown = sorted(set(header) - EVENT_FIELDS)
    if unknown:
        raise ReplayLogError(f"line 1: unknown column {unknown[0]!r}.")
    if "arrival_time" not in header:
        raise ReplayLogError("line 1: the header has no arrival_time column; a replay needs it.")
    for row in reader:
        if not any(cell.strip() for cell in row):
            continue
        if len(row) != len(header):
            raise ReplayLogError(
                f"line {reader.line_num}: {len(row)} cells, but the header has {len(header)}."
            )
        # An empty cell means "absent": no metric is the default metric, no source is "".
        cells = zip(header, row, strict=True)
        yield reader.line_num, {name: cell for name, cell in cells if cell != ""}


def _jsonl_rows(handle: IO[str]) -> Iterator[tuple[int, dict[str, Any]]]:
    for number, line in enumerate(handle, start=1):
        if not line.strip():
            continue
        try:
            raw = json.loads(line, parse_float=Decimal)  # values stay exact
        except ValueError as exc:
            raise ReplayLogError(f"line {number}: not valid JSON ({exc}).") from None
        if not isinstance(raw, dict):
            raise ReplayLogError(f"line {number}: each line must be a JSON object.")
        yield number, raw


def _rows(path: Path) -> Iterator[tuple[int, dict[str, Any]]]:
    parse = _jsonl_rows if _is_jsonl(path) else _csv_rows
    with _open_text(path) as handle:
        yield from parse(handle)


def _arrival(line: int, raw: dict[str, Any]) -> dt.datetime:
    if raw.get("arrival_time") in (None, ""):
        raise ReplayLogError(f"line {line}: arrival_time is required in a replay log.")
    try:
        return parse_instant(raw["arrival_time"], "arrival_time")
    except EventFieldError as exc:
        raise ReplayLogError(f"line {line}: {exc.detail}") from None


@dataclass(frozen=True)
class ReplaySelection:
    """Which events of the log to replay: one metric, and arrivals in [start, end)."""

    default_metric: str
    metric: str | None = None
    start: dt.datetime | None = None
    end: dt.datetime | None = None

    def wants(self, raw: dict[str, Any], arrival: dt.datetime) -> bool:
        if self.metric is not None and (raw.get("metric") or self.default_metric) != self.metric:
            return False
        if self.start is not None and arrival < self.start:
            return False
        return self.end is None or arrival < self.end


@dataclass
class ReplayLog:
    """A log checked end to end before anything is stored."""

    path: Path
    selection: ReplaySelection
    count: int = 0
    in_order: bool = True
    first_arrival: dt.datetime | None = None
    last_arrival: dt.datetime | None = None

    def records(self) -> Iterator[LogRecord]:
        """The selected events in arrival order (ties in file order). A log already in
        arrival order streams in constant memory; any other is sorted in memory."""
        if self.in_order:
            return self._selected()
        return iter(sorted(self._selected(), key=lambda record: record.arrival))

    def _selected(self) -> Iterator[LogRecord]:
        for line, raw in _rows(self.path):
            arrival = _arrival(line, raw)
            if self.selection.wants(raw, arrival):
                yield LogRecord(line, arrival, raw)


def replay_log_scan(*, path: Path, selection: ReplaySelection) -> ReplayLog:
    """First pass: every line readable and with an arrival time, how many events are
    selected, and whether they are already in arrival order. Raises ReplayLogError."""
    log = ReplayLog(path=path, selection=selection)
    previous: dt.datetime | None = None
    for line, raw in _rows(path):
        arrival = _arrival(line, raw)
        if not selection.wants(raw, arrival):
            continue
        log.count += 1
        if previous is not None and arrival < previous:
            log.in_order = False
        previous = arrival
        log.first_arrival = min(log.first_arrival or arrival, arrival)
        log.last_arrival = max(log.last_arrival or arrival, arrival)
    return log


# --- The simulated clock --------------------------------------------------------------------


def boundary_after(instant: dt.datetime, interval: dt.timedelta) -> dt.datetime:
    """The first interval boundary strictly after `instant`. Boundaries are multiples of
    the interval since the Unix epoch, so they do not depend on where a log starts."""
    return EPOCH + ((instant - EPOCH) // interval + 1) * interval


@dataclass
class ReplaySummary:
    events: int = 0
    batches: int = 0
    accepted: int = 0
    duplicates: int = 0
    conflicts: int = 0
    rejected: int = 0
    late: int = 0
    too_late_counted: int = 0
    quarantined: int = 0
    snapshot_runs: int = 0
    idle_boundaries: int = 0
    snapshots_written: int = 0
    simulated_from: dt.datetime | None = None
    simulated_to: dt.datetime | None = None
    rejections: list[str] = field(default_factory=list)
    digest: str = ""


ProgressCallback = Callable[[int, dt.datetime], None]


_UNKNOWN = object()  # next_final_at not looked up since the last run


class _CommitGroups:
    """One transaction around the work of several boundaries (see the module docstring).

    Inside a group apply's and the snapshot run's atomic blocks take no savepoints when the
    group is the outermost transaction (ingest keeps its own: see `savepoints`). A
    savepoint per service call is a subtransaction, and the day totals that every boundary
    updates, locked by one subtransaction and key-share checked (foreign keys) by another,
    then carry a multixact that grows with the group; PostgreSQL spent about 40% of its
    time on it before events lost their foreign keys. What each service reads and writes
    is the same. The price: an error inside apply or the snapshot run can no longer be
    rolled back alone, so it dooms the whole group, which a replay does anyway (the error
    propagates and the group rolls back to the last commit).
    """

    def __init__(self) -> None:
        self._atomic: Any = None
        self._runs = 0
        self._no_savepoints = False
        self._analyzed_at_events = 0

    def open(self) -> None:
        outermost = not connection.in_atomic_block
        self._atomic = transaction.atomic()
        self._atomic.__enter__()
        if outermost:
            # An instance attribute of this connection's features, removed at close.
            connection.features.uses_savepoints = False
            self._no_savepoints = True

    @contextlib.contextmanager
    def savepoints(self) -> Iterator[None]:
        """Savepoints as usual for one service call: ingest rolls part of its own work back
        and tries again (a stale metric table), which needs its savepoint. It locks no day
        total, so its subtransaction adds nothing to the multixacts."""
        if not self._no_savepoints:
            yield
            return
        del connection.features.uses_savepoints
        try:
            yield
        finally:
            connection.features.uses_savepoints = False

    def run_done(self, *, events: int) -> None:
        self._runs += 1
        if self._runs >= COMMIT_EVERY_BOUNDARIES:
            self.close(None)
            self._statistics_refresh(events)
            self.open()

    def _statistics_refresh(self, events: int) -> None:
        """Between two groups, ANALYZE the database each time the events replayed have
        doubled. A replay starts from empty tables and commits faster than autovacuum
        analyzes them, and the statements prepared while the tables were empty keep plans
        made for empty tables (a sequential scan of the events, for one, that costs more
        with every day replayed); ANALYZE also invalidates those plans."""
        if events < max(ANALYZE_FIRST_AT_EVENTS, 2 * self._analyzed_at_events):
            return
        with connection.cursor() as cursor:
            cursor.execute("ANALYZE")
        self._analyzed_at_events = events

    def close(self, error: BaseException | None) -> None:
        atomic, self._atomic, self._runs = self._atomic, None, 0
        try:
            if atomic is not None:
                atomic.__exit__(type(error) if error else None, error, None)
        finally:
            if self._no_savepoints:
                del connection.features.uses_savepoints
                self._no_savepoints = False


@dataclass
class _Replayer:
    interval: dt.timedelta
    on_progress: ProgressCallback | None
    summary: ReplaySummary = field(default_factory=ReplaySummary)
    next_boundary: dt.datetime | None = None
    applied_since_run: bool = False
    next_final_at: Any = None  # a datetime, None (no day awaits final) or _UNKNOWN
    commits: _CommitGroups = field(default_factory=_CommitGroups)

    def ingest(self, group: list[LogRecord]) -> None:
        if not group:
            return
        received_at = group[-1].arrival  # the simulated moment the group is posted
        with self.commits.savepoints():
            result = events_ingest(
                raw_events=[record.raw for record in group],
                received_at=received_at,
                channel=IngestChannel.REPLAY,
                enqueue=False,
            )
        if result.batch_id is not None and result.accepted:
            batch_apply(batch_id=result.batch_id, now=received_at)
            self.applied_since_run = True
        self._count(result, group)
        if self.on_progress is not None:
            self.on_progress(len(group), received_at)

    def _count(self, result: IngestResult, group: list[LogRecord]) -> None:
        summary = self.summary
        summary.events += len(group)
        summary.batches += 1 if result.batch_id is not None else 0
        summary.accepted += result.accepted
        summary.duplicates += result.duplicates
        summary.conflicts += result.conflicts
        summary.rejected += result.rejected
        for error in result.errors[: REJECTIONS_SHOWN - len(summary.rejections)]:
            line = group[error["index"]].line
            summary.rejections.append(f"line {line}: {error['field']}: {error['detail']}")

    def tick(self, boundary: dt.datetime) -> None:
        """The snapshot run at one boundary. A boundary with nothing applied since the last
        run and no day turning final would write nothing: it is counted, not run."""
        self.summary.simulated_to = boundary
        if not (self.applied_since_run or self._final_due(boundary)):
            self.summary.idle_boundaries += 1
            return
        run = snapshot_run_execute(now=boundary, trigger=RunTrigger.REPLAY)
        self.summary.snapshot_runs += 1
        self.summary.snapshots_written += run.days_snapshotted
        self.applied_since_run = False
        # Looked up only when a boundary without applies asks: on a busy log every
        # boundary has applies, and the query would be one round trip per boundary.
        self.next_final_at = _UNKNOWN
        self.commits.run_done(events=self.summary.accepted)

    def _final_due(self, boundary: dt.datetime) -> bool:
        if self.next_final_at is _UNKNOWN:
            self.next_final_at = _next_final_at()
        return self.next_final_at is not None and self.next_final_at <= boundary

    def advance_to(self, instant: dt.datetime, *, inclusive: bool) -> None:
        """Take the snapshot runs of every boundary before `instant` (or at it)."""
        while self.next_boundary is not None and (
            self.next_boundary < instant or (inclusive and self.next_boundary == instant)
        ):
            self.tick(self.next_boundary)
            self.next_boundary += self.interval


@contextlib.contextmanager
def _statements_prepared() -> Iterator[None]:
    """While replaying, the statements the services send through server-binding cursors
    are prepared on first use (the same few run once per boundary), then the connection
    goes back to preparing none."""
    connection.ensure_connection()
    raw = connection.connection
    before = raw.prepare_threshold
    raw.prepare_threshold = 0
    try:
        yield
    finally:
        raw.prepare_threshold = before


def _next_final_at() -> dt.datetime | None:
    """When the next snapshotted day turns final (partial index: days awaiting final)."""
    return DayTotal.objects.filter(finalized=False, snapshot_count__gt=0).aggregate(
        at=Min(FINAL_AT)
    )["at"]


def _outcome_counts(summary: ReplaySummary) -> None:
    # The database was empty when the replay began, so its totals are the replay's.
    totals = DayTotal.objects.aggregate(
        late=Sum("late_event_count"), too=Sum("too_late_event_count")
    )
    summary.late = totals["late"] or 0
    summary.too_late_counted = totals["too"] or 0
    summary.quarantined = QuarantinedEvent.objects.count()


def replay_run(
    *,
    records: Iterable[LogRecord],
    interval: dt.timedelta,
    start: dt.datetime | None = None,
    until: dt.datetime | None = None,
    on_progress: ProgressCallback | None = None,
) -> ReplaySummary:
    """Feed records (in arrival order) through ingest, apply and the snapshot job.

    The clock starts at `start` (or the first arrival) and snapshot runs are taken at every
    boundary up to `until` (or the first boundary after the last arrival). Refuses a
    database that already has events: the digest of a replay only means something from an
    empty start.
    """
    if Event.objects.exists():
        raise ReplayRefused(
            "The database already has events. Replay into an empty database (migrate a "
            "fresh database and point DATABASE_URL at it), so that the "
            "snapshots written are exactly the log's."
        )
    replayer = _Replayer(interval=interval, on_progress=on_progress)
    if start is not None:
        replayer.next_boundary = boundary_after(start, interval)
        replayer.summary.simulated_from = start
    replayer.commits.open()
    with _statements_prepared():
        try:
            _replay_records(replayer, records, until)
        except BaseException as exc:
            replayer.commits.close(exc)
            raise
        replayer.commits.close(None)
    _outcome_counts(replayer.summary)
    replayer.summary.digest = snapshot_table_digest()
    return replayer.summary


def _replay_records(
    replayer: _Replayer, records: Iterable[LogRecord], until: dt.datetime | None
) -> None:
    group: list[LogRecord] = []
    for record in records:
        if replayer.next_boundary is None:
            replayer.next_boundary = boundary_after(record.arrival, replayer.interval)
            replayer.summary.simulated_from = record.arrival
        if replayer.next_boundary <= record.arrival:
            replayer.ingest(group)
            group = []
            replayer.advance_to(record.arrival, inclusive=True)
        group.append(record)
        if len(group) == INGEST_GROUP_MAX:
            replayer.ingest(group)
            group = []
    replayer.ingest(group)
    if replayer.next_boundary is not None:
        replayer.advance_to(until or replayer.next_boundary, inclusive=True)
