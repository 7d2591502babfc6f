"""The database also refuses TRUNCATE on snapshots and their per-source rows (a statement-level trigger: row triggers
do not fire on TRUNCATE), unless the session has said on purpose that it empties the whole
database: `SET snapagg.allow_truncate = 'on'`. Only throwaway databases do that: the test
database (tests/conftest.py: Django's flush between transactional tests is a TRUNCATE) and
the benchmark's (bench/common.py: data_reset)."""

from django.db import migrations

POSTGRES_FORWARD = """
CREATE OR REPLACE FUNCTION snapshots_snapshot_no_truncate() RETURNS trigger AS $$
BEGIN
    IF coalesce(current_setting('snapagg.allow_truncate', true), '') = 'on' THEN
        RETURN NULL;
    END IF;
    RAISE EXCEPTION USING
        MESSAGE = 'snapshots are immutable: TRUNCATE on ' || TG_TABLE_NAME || ' is refused',
        ERRCODE = 'integrity_constraint_violation';
END;
$$ LANGUAGE plpgsql;
CREATE TRIGGER snapshots_snapshot_no_truncate
    BEFORE TRUNCATE ON snapshots_snapshot
    FOR EACH STATEMENT EXECUTE FUNCTION snapshots_snapshot_no_truncate();
CREATE TRIGGER snapshots_snapshotsource_no_truncate
    BEFORE TRUNCATE ON snapshots_snapshotsource
    FOR EACH STATEMENT EXECUTE FUNCTION snapshots_snapshot_no_truncate();
"""
POSTGRES_BACKWARD = """
DROP TRIGGER IF EXISTS snapshots_snapshotsource_no_truncate ON snapshots_snapshotsource;
DROP TRIGGER IF EXISTS snapshots_snapshot_no_truncate ON snapshots_snapshot;
DROP FUNCTION IF EXISTS snapshots_snapshot_no_truncate();
"""


class Migration(migrations.Migration):
    dependencies = [("snapshots", "0007_snapshot_anomaly")]

    operations = [migrations.RunSQL(POSTGRES_FORWARD, POSTGRES_BACKWARD)]
