"""What an operator can list: rejected events, conflicts, and batches that failed to apply."""

from __future__ import annotations

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from events import admin as events_admin
from events import tasks
from events.models import BatchStatus, IngestBatch, RejectedEvent
from events.services.ingest import REJECTED_PAYLOAD_MAX_CHARS
from tests.conftest import T0, event

pytestmark = pytest.mark.django_db


def test_invalid_events_of_an_accepted_request_are_kept_with_their_reason(pipeline):
    result = pipeline.ingest(
        [
            event("ok", T0, "1"),
            event("bad-value", T0, "1.0000001"),
            {**event("extra", T0, "1"), "colour": "red"},
            "not an object",
        ],
        at=T0,
    )

    rejections = list(RejectedEvent.objects.order_by("index"))
    assert [(r.batch_id, r.index, r.event_id, r.field) for r in rejections] == [
        (result.batch_id, 1, "bad-value", "value"),
        (result.batch_id, 2, "extra", "colour"),
        (result.batch_id, 3, "", "event"),
    ]
    assert rejections[0].reason == "value has more than 6 decimal places."
    assert '"value": "1.0000001"' in rejections[0].raw_payload
    assert rejections[2].raw_payload == '"not an object"'


def test_a_request_whose_events_are_all_invalid_stores_nothing(api_client):
    response = api_client.post(
        "/api/events/", {"events": [event("a", T0, "NaN"), {"event_id": "b"}]}, format="json"
    )

    assert response.status_code == 400
    assert len(response.json()["errors"]) == 2
    assert not IngestBatch.objects.exists()
    assert not RejectedEvent.objects.exists()


def test_the_payload_kept_is_cut_short_and_free_of_nul_characters(pipeline):
    huge = {**event("x" * 500 + "\x00", T0, "1"), "source": "s\x00" * 50_000}

    pipeline.ingest([event("ok", T0, "1"), huge], at=T0)

    rejection = RejectedEvent.objects.get()
    assert len(rejection.raw_payload) == REJECTED_PAYLOAD_MAX_CHARS
    assert "\x00" not in rejection.raw_payload + rejection.event_id
    assert rejection.field == "event_id"


def test_rejections_are_written_in_one_insert(pipeline):
    events = [event("ok", T0, "1")] + [event(f"bad-{n}", T0, "x") for n in range(50)]

    with CaptureQueriesContext(connection) as queries:
        pipeline.ingest(events, at=T0)

    inserts = [q for q in queries if q["sql"].startswith('INSERT INTO "events_rejectedevent"')]
    assert len(inserts) == 1
    assert RejectedEvent.objects.count() == 50


def test_a_failing_apply_records_its_error_on_the_batch_and_still_raises(pipeline, monkeypatch):
    batch_id = pipeline.ingest([event("a", T0, "1")], at=T0).batch_id

    def broken(**kwargs):
        raise RuntimeError("disk full")

    monkeypatch.setattr(tasks, "batches_apply_coalesced", broken)
    with pytest.raises(RuntimeError, match="disk full"):
        tasks.apply_batch(batch_id)

    batch = IngestBatch.objects.get(pk=batch_id)
    assert (batch.status, batch.last_error) == (BatchStatus.RECEIVED, "RuntimeError: disk full")
    assert batch.last_error_at is not None


def test_the_admin_lists_batches_that_failed_to_apply_and_queues_them_again(
    pipeline, client, operator, monkeypatch
):
    pipeline.post([event("b", T0, "1")], at=T0)
    failed = pipeline.ingest([event("a", T0, "1")], at=T0).batch_id
    IngestBatch.objects.filter(pk=failed).update(
        last_error="OperationalError: gone", last_error_at=T0
    )
    queued = []
    monkeypatch.setattr(events_admin, "batch_enqueue_apply", lambda pk: queued.append(pk) or True)
    client.force_login(operator)
    changelist = reverse("admin:events_ingestbatch_changelist")

    listing = client.get(changelist, {"apply": "failed"})
    client.post(changelist, {"action": "enqueue_again", "_selected_action": [failed]})

    assert [batch.pk for batch in listing.context["cl"].result_list] == [failed]
    assert b"OperationalError: gone" in listing.content
    assert queued == [failed]


def test_the_conflict_listing_says_what_differed(pipeline, client, operator):
    pipeline.post([event("a", T0, "12.50", source="web")], at=T0)
    pipeline.post([event("a", T0, "13", source="mobile")], at=T0)
    client.force_login(operator)

    page = client.get(reverse("admin:events_conflict_changelist"))

    assert b"value differs: counted 12.50, refused 13.00" in page.content
    assert b"source differs: counted web, refused mobile" in page.content


def test_rejected_events_are_listed_and_searchable_by_event_id(pipeline, client, operator):
    pipeline.ingest([event("ok", T0, "1"), event("bad", T0, "x"), event("worse", T0, "y")], at=T0)
    client.force_login(operator)

    page = client.get(reverse("admin:events_rejectedevent_changelist"), {"q": "bad"})

    assert page.context["cl"].result_count == 1
    assert b"value is not a decimal number." in page.content
