"""Every path and error code of API.md, through HTTP."""

from __future__ import annotations

import datetime as dt
import json

import pytest
from django.test import override_settings
from django.utils import timezone
from rest_framework.test import APIClient

from events.models import BatchStatus, Event, IngestBatch
from snapshots.services.run import SNAPSHOT_LOCK
from tests.conftest import event
from tests.locks import advisory_lock_held_elsewhere

pytestmark = pytest.mark.django_db


@pytest.fixture
def now() -> dt.datetime:
    return timezone.now().replace(microsecond=0)


def post_json(client: APIClient, body, **extra):
    data = body if isinstance(body, str | bytes) else json.dumps(body)
    return client.post("/api/events/", data=data, content_type="application/json", **extra)


# --- Authentication ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("post", "/api/events/"),
        ("get", "/api/events/x/"),
        ("get", "/api/metrics/"),
        ("get", "/api/days/"),
        ("get", "/api/days/default/2026-11-20/"),
        ("get", "/api/days/default/2026-11-20/snapshots/1/events/"),
        ("post", "/api/snapshots/run/"),
    ],
)
def test_every_api_call_needs_a_token(method, path):
    anonymous = getattr(APIClient(), method)(path)
    wrong = getattr(APIClient(HTTP_AUTHORIZATION="Token not-a-real-key"), method)(path)

    assert anonymous.status_code == wrong.status_code == 401
    assert anonymous.json()["error"] == "not_authenticated"
    assert wrong.json()["error"] == "authentication_failed"
    assert anonymous["WWW-Authenticate"] == "Token"


def test_health_and_schema_need_no_token():
    assert APIClient().get("/api/health/").status_code == 200
    schema = APIClient().get("/api/schema/", HTTP_ACCEPT="application/json")
    assert schema.status_code == 200


def test_the_schema_lists_every_documented_path():
    schema = APIClient().get("/api/schema/?format=json").json()

    assert schema["openapi"].startswith("3.")
    assert set(schema["paths"]) >= {
        "/api/events/",
        "/api/events/{event_id}/",
        "/api/metrics/",
        "/api/days/",
        "/api/days/{metric}/{day}/",
        "/api/days/{metric}/{day}/snapshots/{sequence}/events/",
        "/api/snapshots/run/",
        "/api/health/",
    }


# --- POST /api/events/ ---------------------------------------------------------------------


def test_one_event_is_accepted_durably_with_202(api_client, now):
    response = post_json(api_client, event("a", now, "12.50", source="web"))

    assert response.status_code == 202
    assert response.json() == {
        "accepted": 1, "duplicates": 0, "conflicts": 0, "rejected": 0, "errors": []
    }  # fmt: skip
    assert Event.objects.get().event_id == "a"


def test_a_batch_reports_duplicates_conflicts_and_rejections(api_client, now):
    post_json(api_client, event("a", now, 1))

    response = post_json(
        api_client,
        {
            "events": [
                event("a", now, 1),
                event("b", now, 2),
                event("b", now, 3),
                event("c", "2026-11-20T10:00:00", 4),
            ]
        },
    )

    assert response.status_code == 202
    assert response.json() == {
        "accepted": 1,
        "duplicates": 1,
        "conflicts": 1,
        "rejected": 1,
        "errors": [
            {
                "index": 3,
                "event_id": "c",
                "field": "event_time",
                "detail": "event_time has no UTC offset; add Z or +hh:mm.",
            }
        ],
    }


def test_values_travel_as_numbers_or_decimal_strings_and_stay_exact(api_client, now):
    body = (
        '{"events": ['
        + ",".join(
            [
                json.dumps(event("n", now.isoformat(), 0))[:-2] + " 0.1}",
                json.dumps(event("s", now, "0.2")),
                json.dumps(event("big", now, "12345678901234.123456")),
            ]
        )
        + "]}"
    )

    assert post_json(api_client, body).status_code == 202

    values = {e.event_id: str(e.value) for e in Event.objects.all()}
    assert values == {"n": "0.100000", "s": "0.200000", "big": "12345678901234.123456"}


@pytest.mark.parametrize(
    ("body", "code"),
    [
        pytest.param("{not json", "invalid_json", id="malformed"),
        pytest.param(b"\xff\xfe", "invalid_json", id="not-utf8"),
        pytest.param("", "empty_body", id="empty-body"),
        pytest.param("[]", "invalid_shape", id="top-level-list"),
        pytest.param('"text"', "invalid_shape", id="string"),
        pytest.param('{"events": []}', "empty_batch", id="empty-batch"),
        pytest.param('{"events": {"a": 1}}', "invalid_shape", id="events-not-a-list"),
        pytest.param('{"events": [], "x": 1}', "invalid_shape", id="extra-key"),
        pytest.param(
            '{"event_id": "a", "event_time": "2026-11-20T10:00:00Z", "value": NaN}',
            "invalid_json",
            id="nan-literal",
        ),
        pytest.param(
            '{"event_id": "a", "event_time": "2026-11-20T10:00:00Z", "value": Infinity}',
            "invalid_json",
            id="infinity-literal",
        ),
    ],
)
def test_malformed_bodies_are_400_with_a_code(api_client, body, code):
    response = post_json(api_client, body)

    assert response.status_code == 400
    assert response.json()["error"] == code
    assert response.json()["detail"]


@pytest.mark.parametrize(
    "bad",
    [
        pytest.param(
            {"event_id": "a", "event_time": "2026-11-20T10:00:00", "value": 1}, id="naive"
        ),
        pytest.param(
            {"event_id": "a", "event_time": "2026-11-20T10:00:00Z", "value": "NaN"}, id="nan"
        ),
        pytest.param(
            {"event_id": "a", "event_time": "2026-11-20T10:00:00Z", "value": "1.0000001"},
            id="seven-places",
        ),
        pytest.param(
            {"event_id": "a\u0000", "event_time": "2026-11-20T10:00:00Z", "value": 1}, id="nul"
        ),
    ],
)
def test_a_single_invalid_event_is_400_naming_the_field(api_client, bad):
    response = post_json(api_client, bad)

    assert response.status_code == 400
    body = response.json()
    assert (body["error"], body["accepted"], body["rejected"]) == ("invalid_events", 0, 1)
    assert body["errors"][0]["index"] == 0
    assert body["errors"][0]["field"] in {"event_time", "value", "event_id"}


def test_a_batch_where_every_event_is_invalid_is_400_listing_each(api_client):
    response = post_json(api_client, {"events": [{"event_id": "a"}, {"value": 1}]})

    assert response.status_code == 400
    assert [e["index"] for e in response.json()["errors"]] == [0, 1]
    assert not IngestBatch.objects.exists()


def test_more_than_10000_events_is_413(api_client, now):
    events = [event(f"e{i}", now, 1) for i in range(10_001)]

    response = post_json(api_client, {"events": events})

    assert response.status_code == 413
    assert response.json()["error"] == "too_many_events"
    assert not Event.objects.exists()


def test_exactly_10000_events_are_accepted(api_client, now):
    events = [event(f"e{i}", now, 1) for i in range(10_000)]

    response = post_json(api_client, {"events": events})

    assert response.status_code == 202
    assert response.json()["accepted"] == 10_000


@override_settings(INGEST_MAX_BODY_BYTES=2048)
def test_a_body_over_the_size_limit_is_413(api_client, now):
    events = [event(f"e{i}", now, 1) for i in range(50)]

    response = post_json(api_client, {"events": events})

    assert response.status_code == 413
    assert response.json()["error"] == "body_too_large"


def test_a_body_that_is_not_json_is_415(api_client):
    response = api_client.post("/api/events/", data="a,b,c", content_type="text/csv")

    assert response.status_code == 415
    assert response.json()["error"] == "unsupported_media_type"


def test_the_apply_task_is_enqueued_after_commit(
    api_client, now, django_capture_on_commit_callbacks, monkeypatch
):
    enqueued = []
    monkeypatch.setattr("events.services.ingest.batch_enqueue_apply_once", enqueued.append)

    with django_capture_on_commit_callbacks(execute=True):
        post_json(api_client, event("a", now, 1))

    assert enqueued == [IngestBatch.objects.get().pk]


# --- GET /api/events/{event_id}/ -----------------------------------------------------------


def test_event_detail_shows_status_late_and_first_snapshot(api_client, pipeline, now):
    pipeline.post([event("a/b c", now, "2.5", source="mobile")], at=now)
    received = pipeline.ingest([event("waiting", now, 1)], at=now)
    pipeline.snapshot(at=now)

    applied = api_client.get("/api/events/a/b c/")
    waiting = api_client.get("/api/events/waiting/")

    assert applied.status_code == 200
    assert applied.json() == {
        "event_id": "a/b c",
        "metric": "default",
        "day": now.date().isoformat(),
        "event_time": now.isoformat().replace("+00:00", "Z"),
        "arrival_time": now.isoformat().replace("+00:00", "Z"),
        "value": "2.50",
        "source": "mobile",
        "status": "applied",
        "late": False,
        "snapshot": 1,
        "archived": False,
    }
    assert received.batch_id
    assert (waiting.json()["status"], waiting.json()["snapshot"]) == ("received", None)


def test_unknown_event_is_404(api_client):
    response = api_client.get("/api/events/nope/")

    assert response.status_code == 404
    assert response.json()["error"] == "not_found"


# --- metrics and days ----------------------------------------------------------------------


def test_metrics_are_listed_with_lateness_and_policy(api_client):
    assert api_client.get("/api/metrics/").json() == [
        {
            "name": "default",
            "description": "Events that name no metric.",
            "allowed_lateness_seconds": 86400,
            "too_late_policy": "restate",
            "unit": "",
            "raw_retention_days": None,
        }
    ]


def _three_days(pipeline, now):
    for n in range(3):
        pipeline.post([event(f"d{n}", now - dt.timedelta(days=n), n + 1)], at=now)
    pipeline.snapshot(at=now)


def test_days_are_listed_newest_first_and_paginated(api_client, pipeline, now):
    _three_days(pipeline, now)

    page = api_client.get("/api/days/?page_size=2").json()

    assert page["count"] == 3
    assert page["next"]
    assert page["previous"] is None
    assert [d["day"] for d in page["results"]] == [
        now.date().isoformat(),
        (now.date() - dt.timedelta(days=1)).isoformat(),
    ]
    first = page["results"][0]
    assert first == {
        "metric": "default",
        "day": now.date().isoformat(),
        "value": "1.00",
        "event_count": 1,
        "late_event_count": 0,
        "status": "live",
        "snapshot_count": 1,
        "last_snapshot_at": now.isoformat().replace("+00:00", "Z"),
        "restated": False,
        "completeness": 0.0,  # live; the final day before it had its event arrive later
    }


def test_days_filter_by_metric_and_range(api_client, pipeline, now):
    _three_days(pipeline, now)
    yesterday = (now.date() - dt.timedelta(days=1)).isoformat()

    ranged = api_client.get(f"/api/days/?metric=default&from={yesterday}&to={yesterday}").json()

    assert [d["day"] for d in ranged["results"]] == [yesterday]


@pytest.mark.parametrize(
    ("query", "field"),
    [("from=yesterday", "from"), ("to=2026-13-01", "to"), ("metric=nope", "metric")],
)
def test_bad_day_filters_are_400_naming_the_field(api_client, query, field):
    response = api_client.get(f"/api/days/?{query}")

    assert response.status_code == 400
    assert response.json()["field"] == field


def test_day_detail_lists_snapshots_in_sequence(api_client, pipeline, now):
    pipeline.post([event("a", now, "1")], at=now)
    pipeline.snapshot(at=now)
    pipeline.post([event("b", now, "2")], at=now)
    pipeline.snapshot(at=now + dt.timedelta(minutes=5))

    body = api_client.get(f"/api/days/default/{now.date()}/").json()

    assert body["value"] == "3.00"
    assert [(s["sequence"], s["value"], s["change"], s["reason"]) for s in body["snapshots"]] == [
        (1, "1.00", "1.00", "first"),
        (2, "3.00", "2.00", "update"),
    ]
    assert set(body["snapshots"][0]) == {
        "sequence", "taken_at", "value", "event_count", "change",
        "change_events", "late_events", "status", "reason", "anomaly",
    }  # fmt: skip


def test_day_detail_as_of_returns_the_snapshot_then_or_404(api_client, pipeline, now):
    pipeline.post([event("a", now, "1")], at=now)
    pipeline.snapshot(at=now)
    pipeline.post([event("b", now, "2")], at=now)
    pipeline.snapshot(at=now + dt.timedelta(minutes=5))
    url = f"/api/days/default/{now.date()}/"
    between = (now + dt.timedelta(minutes=1)).isoformat()

    found = api_client.get(url, {"as_of": between})
    before = api_client.get(url, {"as_of": (now - dt.timedelta(minutes=1)).isoformat()})
    naive = api_client.get(url, {"as_of": "2026-11-20T10:00:00"})

    assert found.status_code == 200
    assert found.json() == {
        "metric": "default",
        "day": now.date().isoformat(),
        "as_of": (now + dt.timedelta(minutes=1)).isoformat().replace("+00:00", "Z"),
        "value": "1.00",
        "sequence": 1,
        "taken_at": now.isoformat().replace("+00:00", "Z"),
    }
    assert before.status_code == 404
    assert (naive.status_code, naive.json()["field"]) == (400, "as_of")


@pytest.mark.parametrize(
    ("path", "status"),
    [
        ("/api/days/nope/2026-11-20/", 404),
        ("/api/days/default/1999-01-01/", 404),
        ("/api/days/default/not-a-day/", 400),
        ("/api/days/default/2026-11-20/snapshots/1/events/", 404),
        ("/api/nothing-here/", 404),
    ],
)
def test_unknown_days_and_paths_are_json_errors(api_client, path, status):
    response = api_client.get(path)

    assert response.status_code == status
    assert response.json()["error"]


def test_snapshot_events_sum_to_its_change(api_client, pipeline, now):
    pipeline.post([event("a", now, "1.5"), event("b", now, "2")], at=now)
    pipeline.snapshot(at=now)
    pipeline.post([event("c", now, "4.25")], at=now)
    pipeline.snapshot(at=now + dt.timedelta(minutes=5))
    day = now.date()

    first = api_client.get(f"/api/days/default/{day}/snapshots/1/events/").json()
    second = api_client.get(f"/api/days/default/{day}/snapshots/2/events/").json()
    missing = api_client.get(f"/api/days/default/{day}/snapshots/3/events/")

    assert [e["event_id"] for e in first["results"]] == ["a", "b"]
    assert first["count"] == 2
    assert [(e["event_id"], e["value"], e["snapshot"]) for e in second["results"]] == [
        ("c", "4.25", 2)
    ]
    assert missing.status_code == 404


# --- POST /api/snapshots/run/ --------------------------------------------------------------


def test_running_snapshots_now_reports_the_run(operator_client, pipeline, now):
    pipeline.post([event("a", now, "1")], at=now)

    response = operator_client.post("/api/snapshots/run/")

    assert response.status_code == 200
    body = response.json()
    assert set(body) == {"run_id", "days_snapshotted", "started_at", "finished_at"}
    assert body["days_snapshotted"] == 1


@pytest.mark.django_db(transaction=True)
def test_running_snapshots_while_a_run_holds_the_lock_is_409(operator_client):
    with advisory_lock_held_elsewhere(SNAPSHOT_LOCK):
        response = operator_client.post("/api/snapshots/run/")

    assert response.status_code == 409
    assert response.json()["error"] == "snapshot_run_in_progress"


# --- GET /api/health/ ----------------------------------------------------------------------


def test_health_reports_backlog_and_oldest_unapplied(pipeline, now):
    pipeline.ingest([event("a", now, 1), event("b", now, 1)], at=now - dt.timedelta(seconds=30))

    body = APIClient().get("/api/health/").json()

    assert body["database"] == "ok"
    assert body["broker"] in {"ok", "down"}
    assert body["backlog"] == 2
    assert body["oldest_unapplied_seconds"] >= 30
    assert body["workers"] == 0
    assert body["last_snapshot_run"] is None
    assert IngestBatch.objects.get().status == BatchStatus.RECEIVED


def test_health_with_nothing_pending(pipeline, now):
    pipeline.post([event("a", now, 1)], at=now)
    run = pipeline.snapshot(at=now)

    body = APIClient().get("/api/health/").json()

    assert (body["backlog"], body["oldest_unapplied_seconds"]) == (0, None)
    assert body["last_snapshot_run"] == run.finished_at.isoformat().replace("+00:00", "Z")
