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
SQLITE_FORWARD = [
    """CREATE TRIGGER snapshots_snapshot_no_update BEFORE UPDATE ON snapshots_snapshot
       BEGIN SELECT RAISE(ABORT, 'snapshots are immutable: UPDATE is not allowed'); END;""",
    """CREATE TRIGGER snapshots_snapshot_no_delete BEFORE DELETE ON snapshots_snapshot
       BEGIN SELECT RAISE(ABORT, 'snapshots are immutable: DELETE is not allowed'); END;""",
]
SQLITE_BACKWARD = [
    "DROP TRIGGER IF EXISTS snapshots_snapshot_no_update;",
    "DROP TRIGGER IF EXISTS snapshots_snapshot_no_delete;",
]


def forward(apps, schema_editor):
    vendor = schema_editor.connection.vendor
    if vendor == "postgresql":
        schema_editor.execute(POSTGRES_FORWARD)
    elif vendor == "sqlite":
        for statement in SQLITE_FORWARD:
            schema_editor.execute(statement)


def backward(apps, schema_editor):
    vendor = schema_editor.connection.vendor
    if vendor == "postgresql":
        schema_editor.execute(POSTGRES_BACKWARD)
    elif vendor == "sqlite":
        for statement in SQLITE_BACKWARD:
            schema_editor.execute(statement)


class Migration(migrations.Migration):
    dependencies = [("snapshots", "0001_initial")]

    operations = [migrations.RunPython(forward, backward)]
