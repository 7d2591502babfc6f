"""The schema carries no redundant index: every index is a write cost on each insert, and a
redundant one can also be picked by the planner in place of the right one (an index on
day totals' metric alone, beside the unique (metric, day), was chosen for the ingest's
day-total lookup on a table without statistics yet: a scan of every day of the metric for
each event)."""

from __future__ import annotations

import pytest
from django.db import connection

APPS = ("aggregation", "events", "snapshots", "alerts", "archive", "apikeys", "web")

# Plain btree indexes (no expression, no predicate) of the project's tables, with their key
# columns in order, each with its operator class (a `_like` index serves other queries).
_INDEXES = """
SELECT t.relname, i.relname, ix.indisunique,
       ARRAY(SELECT a.attname || ' ' || oc.opcname
             FROM unnest(ix.indkey[:ix.indnkeyatts - 1], ix.indclass[:ix.indnkeyatts - 1])
                  WITH ORDINALITY k(n, opclass, o)
             JOIN pg_attribute a ON a.attrelid = t.oid AND a.attnum = k.n
             JOIN pg_opclass oc ON oc.oid = k.opclass
             ORDER BY k.o)
FROM pg_index ix
JOIN pg_class t ON t.oid = ix.indrelid
JOIN pg_class i ON i.oid = ix.indexrelid
JOIN pg_am am ON am.oid = i.relam
WHERE am.amname = 'btree' AND ix.indpred IS NULL AND ix.indexprs IS NULL
  AND t.relnamespace = 'public'::regnamespace
"""


@pytest.mark.django_db
def test_no_index_is_a_prefix_of_another() -> None:
    with connection.cursor() as cursor:
        cursor.execute(_INDEXES)
        rows = [row for row in cursor.fetchall() if row[0].split("_")[0] in APPS]
    assert len(rows) > 20  # the query sees the schema
    redundant = [
        (table, name, other)
        for table, name, unique, columns in rows
        if not unique
        for other_table, other, _, other_columns in rows
        if other_table == table and other != name and other_columns[: len(columns)] == columns
    ]
    assert redundant == [], redundant
