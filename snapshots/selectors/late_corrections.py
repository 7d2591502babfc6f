"""The anomaly rule's history: each recent day's largest late correction, kept up to date in
the process instead of ranked again by PostgreSQL at every snapshot run.

`late_corrections_recent` (snapshots/selectors/history.py) answers one question: among a
metric's newest `limit * CORRECTIONS_READ_PER_DAY` late corrections, the largest (by
|change| / |value before it|) of each day, for the `limit` days whose newest correction is
newest. Ranked in SQL that costs a sort of up to 2,000 rows per snapshot run with late
corrections (~6 ms on the 2-core machine once the history is full; most of a replay's
PostgreSQL time on a log with hourly snapshots). Here the same window is kept in memory per
(database, metric) and each call reads only the corrections newer than the newest one it
holds: one index range scan, usually of no row at all.

Why the window is exact: snapshots are never updated or deleted (the trigger refuses), and
only the snapshot run inserts them, one run at a time (its advisory lock, held to the end
of its transaction), so they commit in id order: a correction with an id below the newest
one held can never appear later. What can disappear is a correction read inside a
transaction that then rolled back (a failed run read in its own transaction, a test's
rollback); the newest one held is then gone too, which each read checks in the same
statement, and the window is read again from scratch.
"""

from __future__ import annotations

import threading
from collections import OrderedDict, deque
from dataclasses import dataclass, field
from decimal import Decimal

from django.db import connection

from snapshots.models import LATE_CORRECTION_REASONS

# The corrections newer than `after`, newest first, at most `size`; and a row of NULLs when
# the newest one held (`after`) no longer exists.
_NEWER = """
(SELECT id, day_total_id, change, value FROM snapshots_snapshot
 WHERE metric_id = %s AND reason = ANY(%s) AND id > %s ORDER BY id DESC LIMIT %s)
UNION ALL
SELECT NULL, NULL, NULL, NULL
WHERE %s > 0 AND NOT EXISTS (SELECT 1 FROM snapshots_snapshot WHERE id = %s)
"""


def _rank(change: Decimal, value: Decimal) -> Decimal | None:
    """The SQL ranking's |change| / |value - change|; None (ranked last) when undefined."""
    before = abs(value - change)
    return None if before == 0 else abs(change) / before


@dataclass
class _Correction:
    id: int
    day_total_id: int
    change: Decimal
    value: Decimal
    rank: Decimal | None


@dataclass
class _Window:
    """A metric's newest `size` late corrections, by day."""

    size: int
    newest_id: int = 0
    rows: deque[_Correction] = field(default_factory=deque)  # oldest first
    # day total id -> its corrections in the window, oldest first; days ordered by their
    # newest correction, oldest first.
    days: OrderedDict[int, list[_Correction]] = field(default_factory=OrderedDict)
    largest: dict[int, _Correction] = field(default_factory=dict)

    def add(self, row: _Correction) -> None:
        self.rows.append(row)
        self.newest_id = row.id
        day = self.days.setdefault(row.day_total_id, [])
        day.append(row)
        self.days.move_to_end(row.day_total_id)
        best = self.largest.get(row.day_total_id)
        if best is None or _larger(row, best):
            self.largest[row.day_total_id] = row
        while len(self.rows) > self.size:
            self._drop_oldest()

    def _drop_oldest(self) -> None:
        row = self.rows.popleft()
        day = self.days[row.day_total_id]
        day.pop(0)  # the day's oldest: rows leave in id order
        if not day:
            del self.days[row.day_total_id]
            del self.largest[row.day_total_id]
        elif self.largest[row.day_total_id] is row:
            best = day[0]
            for other in day[1:]:
                if _larger(other, best):
                    best = other
            self.largest[row.day_total_id] = best

    def recent(self, limit: int) -> list[tuple[Decimal, Decimal]]:
        picked = []
        for day_total_id in reversed(self.days):
            if len(picked) == limit:
                break
            best = self.largest[day_total_id]
            picked.append((best.change, best.value))
        return picked


def _larger(row: _Correction, than: _Correction) -> bool:
    if row.rank is None:
        return False
    return than.rank is None or row.rank > than.rank


_windows: dict[tuple[str, str, int], _Window] = {}
_lock = threading.Lock()


def late_corrections_window(
    *, metric_id: int, limit: int, per_day: int
) -> list[tuple[Decimal, Decimal]]:
    """See the module docstring and `late_corrections_recent`."""
    size = limit * per_day
    key = (connection.alias, str(connection.settings_dict["NAME"]), metric_id)
    with _lock:
        window = _windows.get(key)
        if window is None or window.size != size:
            window = _windows[key] = _Window(size=size)
        with connection.cursor() as cursor:
            after = window.newest_id
            cursor.execute(_NEWER, [metric_id, LATE_CORRECTION_REASONS, after, size, after, after])
            rows = cursor.fetchall()
            if rows and rows[-1][0] is None:  # the newest one held was rolled back
                window = _windows[key] = _Window(size=size)
                cursor.execute(_NEWER, [metric_id, LATE_CORRECTION_REASONS, 0, size, 0, 0])
                rows = cursor.fetchall()
        for pk, day_total_id, change, value in reversed(rows):
            window.add(_Correction(pk, day_total_id, change, value, _rank(change, value)))
        return window.recent(limit)
