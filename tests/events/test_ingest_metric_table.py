"""Ingest keeps a copy of the metric table per process: a change to the table is seen by the
next batch all the same, whether it adds, renames or removes a metric or moves the default."""

from __future__ import annotations

import datetime as dt

import pytest

from aggregation.models import Metric
from events.models import Event, IngestBatch
from tests.conftest import T0, event
from tests.factories import MetricFactory

pytestmark = pytest.mark.django_db


def test_a_metric_added_after_the_copy_was_made_is_accepted(pipeline):
    pipeline.ingest([event("warm", T0)], at=T0)  # the copy knows "default" only

    MetricFactory(name="signups")
    result = pipeline.ingest([event("s", T0, metric="signups")], at=T0)

    assert (result.accepted, result.rejected) == (1, 0)
    assert Event.objects.get(event_id="s").metric.name == "signups"


def test_a_renamed_metric_is_refused_under_its_old_name(pipeline):
    MetricFactory(name="orders")
    pipeline.ingest([event("warm", T0, metric="orders")], at=T0)

    Metric.objects.filter(name="orders").update(name="sales")
    result = pipeline.ingest([event("o", T0, metric="orders"), event("ok", T0)], at=T0)

    assert (result.accepted, result.rejected) == (1, 1)
    assert result.errors[0]["field"] == "metric"
    assert not Event.objects.filter(event_id="o").exists()
    # The refused attempt left no second batch row behind.
    assert IngestBatch.objects.count() == 2


def test_a_batch_that_is_all_invalid_under_a_stale_copy_is_judged_again(pipeline):
    MetricFactory(name="orders")
    pipeline.ingest([event("warm", T0, metric="orders")], at=T0)

    Metric.objects.filter(name="orders").update(name="sales")
    result = pipeline.ingest([event("o", T0, metric="orders", source=7)], at=T0)

    # Against the fresh table the metric is what is wrong (checked before the source).
    assert result.errors[0]["field"] == "metric"


def test_moving_the_default_sends_unnamed_events_to_the_new_default(pipeline):
    pipeline.ingest([event("warm", T0)], at=T0)

    Metric.objects.filter(is_default=True).update(is_default=False)
    MetricFactory(name="visits", is_default=True)
    pipeline.ingest([event("v", T0 + dt.timedelta(seconds=1))], at=T0 + dt.timedelta(minutes=1))

    assert Event.objects.get(event_id="v").metric.name == "visits"
