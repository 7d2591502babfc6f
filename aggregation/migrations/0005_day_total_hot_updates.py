"""Let applies update day totals in place (HOT updates): the snapshot job's partial index
filters on a generated column that an apply leaves unchanged, instead of on revision, and
the table keeps free room in each page for the new row versions."""

from django.db import migrations, models


def leave_room_for_updates(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute("ALTER TABLE aggregation_daytotal SET (fillfactor = 50)")


def pack_pages(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute("ALTER TABLE aggregation_daytotal RESET (fillfactor)")


class Migration(migrations.Migration):
    dependencies = [
        ("aggregation", "0004_reconcile_schedule"),
    ]

    operations = [
        migrations.RemoveIndex(
            model_name="daytotal",
            name="daytotal_unsnapshotted",
        ),
        migrations.AddField(
            model_name="daytotal",
            name="snapshot_due",
            field=models.GeneratedField(
                db_persist=True,
                expression=models.ExpressionWrapper(
                    models.Q(("revision__gt", models.F("snapshot_revision"))),
                    output_field=models.BooleanField(),
                ),
                help_text="Changed since its last snapshot.",
                output_field=models.BooleanField(),
            ),
        ),
        migrations.AddIndex(
            model_name="daytotal",
            index=models.Index(
                condition=models.Q(("snapshot_due", True)), fields=["id"], name="daytotal_due"
            ),
        ),
        migrations.RunPython(leave_room_for_updates, pack_pages),
    ]
