"""The database itself refuses UPDATE and DELETE on snapshots, whatever the client."""

from django.db import migrations

POSTGRES_FORWARD = """
CREATE OR REPLACE FUNCTION snapshots_snapshot_immutable() RETURNS trigger AS $$
BEGIN
    RAISE EXCEPTION USING
        MESSAGE = 'snapshots are immutable: ' || TG_OP || ' on snapshots_snapshot is refused',
        ERRCODE = 'integrity_constraint_violation';
END;
$$ LANGUAGE plpgsql;
CREATE TRIGGER snapshots_snapshot_immutable
    BEFORE UPDATE OR DELETE ON snapshots_snapshot
    FOR EACH ROW EXECUTE FUNCTION snapshots_snapshot_immutable();
"""
POSTGRES_BACKWARD = """
DROP TRIGGER IF EXISTS snapshots_snapshot_immutable ON snapshots_snapshot;
DROP FUNCTION IF EXISTS snapshots_snapshot_immutable();
"""


class Migration(migrations.Migration):
    dependencies = [("snapshots", "0001_initial")]

    operations = [migrations.RunSQL(POSTGRES_FORWARD, POSTGRES_BACKWARD)]
