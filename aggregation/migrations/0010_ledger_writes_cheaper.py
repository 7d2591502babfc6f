"""Cheaper ledger writes, for batches spread over many days (a contribution and a source
total per day): no database foreign keys from contributions to their day total and batch (the
ledger inserts them in the statement that adds them to their locked day totals, in the
transaction that claimed the batch; neither is deleted while it has contributions: PROTECT,
enforced by Django), and no index that another one already answers: the single-column ones
that a composite index leads with, and the partial index of unstamped contributions (the
(day total, snapshot sequence) index finds them as fast).
The source totals keep room in each page so an apply updates them in place (HOT), as the day
totals do (0005)."""

import django.db.models.deletion
from django.db import migrations, models


def leave_room_for_updates(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute("ALTER TABLE aggregation_daysourcetotal SET (fillfactor = 50)")


def pack_pages(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute("ALTER TABLE aggregation_daysourcetotal RESET (fillfactor)")


class Migration(migrations.Migration):
    dependencies = [
        ("aggregation", "0009_metric_anomaly_detection"),
        ("events", "0007_event_foreign_keys_unchecked"),
    ]

    operations = [
        migrations.AlterField(
            model_name="contribution",
            name="batch",
            field=models.ForeignKey(
                blank=True,
                db_constraint=False,
                db_index=False,
                null=True,
                on_delete=django.db.models.deletion.PROTECT,
                related_name="contributions",
                to="events.ingestbatch",
            ),
        ),
        migrations.AlterField(
            model_name="contribution",
            name="day_total",
            field=models.ForeignKey(
                db_constraint=False,
                db_index=False,
                on_delete=django.db.models.deletion.PROTECT,
                related_name="contributions",
                to="aggregation.daytotal",
            ),
        ),
        migrations.AlterField(
            model_name="daysourcetotal",
            name="day_total",
            field=models.ForeignKey(
                db_index=False,
                on_delete=django.db.models.deletion.PROTECT,
                related_name="sources",
                to="aggregation.daytotal",
            ),
        ),
        migrations.AlterField(
            model_name="daysourcetotal",
            name="metric",
            field=models.ForeignKey(
                db_index=False,
                on_delete=django.db.models.deletion.PROTECT,
                related_name="+",
                to="aggregation.metric",
            ),
        ),
        migrations.RemoveIndex(
            model_name="contribution",
            name="contribution_unsnapshotted",
        ),
        migrations.RunPython(leave_room_for_updates, pack_pages),
    ]
