"""Hostile and odd input beyond tests/events/test_ingest.py and tests/api/test_api.py: each
case is a clear 4xx naming what is wrong, never a 5xx, and nothing half-stored."""

from __future__ import annotations

import json

import pytest
from django.test import Client
from django.utils import timezone

from aggregation.models import Metric
from events.models import Event, IngestBatch

pytestmark = pytest.mark.django_db

NOW = "2026-11-20T10:00:00Z"


@pytest.fixture
def client(api_client):
    # Answers as a real server would, instead of re-raising a server error in the test.
    api_client.raise_request_exception = False
    return api_client


def post_raw(client, body: str | bytes, **extra):
    data = body.encode("utf-8", "surrogatepass") if isinstance(body, str) else body
    return client.post("/api/events/", data=data, content_type="application/json", **extra)


def _one(event_id: str = "a", event_time: str = NOW, value: str = "1", **more: str) -> str:
    fields = {"event_id": event_id, "event_time": event_time, **more}
    return json.dumps(fields)[:-1] + f', "value": {value}}}'


def test_very_deep_nesting_is_400_not_a_crash(client):
    response = post_raw(client, '{"events": ' + "[" * 100_000 + "]" * 100_000 + "}")

    assert response.status_code == 400
    assert response.json()["error"] == "invalid_json"


@pytest.mark.parametrize(
    "literal",
    [
        pytest.param("1e400", id="float-overflow"),
        pytest.param("-1e400", id="negative-overflow"),
        pytest.param("9" * 5000, id="5000-digit-integer"),
        pytest.param('"1e-400"', id="underflow-string"),
        pytest.param("123456789012345678901234567890", id="beyond-column-integer"),
    ],
)
def test_huge_numbers_are_rejected_with_400(client, literal):
    response = post_raw(client, _one(value=literal))

    assert response.status_code == 400
    assert response.json()["error"] in {"invalid_events", "invalid_json"}
    assert not Event.objects.exists()


@pytest.mark.parametrize(
    "literal",
    [
        pytest.param('"1_000"', id="underscore"),
        pytest.param('"\\u0661\\u0662"', id="arabic-indic-digits"),
        pytest.param('"0x10"', id="hexadecimal"),
        pytest.param('"1,5"', id="decimal-comma"),
        pytest.param('"-inf"', id="negative-infinity-string"),
        pytest.param('"sNaN"', id="signalling-nan"),
    ],
)
def test_decimal_strings_must_be_plain_ascii_decimals(client, literal):
    response = post_raw(client, _one(value=literal))

    assert response.status_code == 400
    assert response.json()["errors"][0]["field"] == "value"


def test_plain_decimal_string_forms_are_accepted(client):
    forms = ["12", "+12", "-0.5", ".5", "5.", "1.5e2", " 7 "]
    body = {
        "events": [
            {"event_id": f"f{i}", "event_time": NOW, "value": v} for i, v in enumerate(forms)
        ]
    }

    response = client.post("/api/events/", body, format="json")

    assert response.status_code == 202
    assert response.json()["accepted"] == len(forms)


@pytest.mark.parametrize("field", ["event_time", "arrival_time"])
def test_an_offset_pushing_a_time_past_year_9999_is_400(client, field):
    times = {"event_time": NOW, field: "9999-12-31T23:00:00-05:00"}
    response = post_raw(client, _one(**times))

    assert response.status_code == 400
    assert response.json()["errors"][0]["field"] == field


def test_as_of_past_year_9999_means_the_latest_not_a_500(client, pipeline):
    # A valid date-time as the schema says (it was a 400 the schema did not announce).
    pipeline.post([{"event_id": "a", "event_time": NOW, "value": "1"}], at=timezone.now())

    response = client.get("/api/days/default/2026-11-20/", {"as_of": "9999-12-31T23:00:00-05:00"})

    # No snapshot was taken here, so even the latest instant has none.
    assert (response.status_code, response.json()["error"]) == (404, "not_found")


@pytest.mark.parametrize("field", ["event_id", "source", "metric"])
def test_lone_surrogates_are_rejected_and_echoed_safely(client, field):
    fields = {"event_id": "ok", "source": "web", "metric": "default", field: "x\\ud800"}
    body = (
        f'{{"event_id": "{fields["event_id"]}", "event_time": "{NOW}", "value": 1, '
        f'"source": "{fields["source"]}", "metric": "{fields["metric"]}"}}'
    )

    response = post_raw(client, body)

    assert response.status_code == 400
    [error] = response.json()["errors"]
    assert error["field"] == field
    assert error["event_id"] in {"ok", "x\\ud800"}  # escaped, so the answer is valid JSON
    assert not IngestBatch.objects.exists()


def test_duplicate_json_keys_take_the_last_value_like_every_mainstream_parser(client):
    body = f'{{"event_id": "first", "event_id": "last", "event_time": "{NOW}", "value": 1}}'

    response = post_raw(client, body)

    assert response.status_code == 202
    assert list(Event.objects.values_list("event_id", flat=True)) == ["last"]


def test_a_chunked_body_the_server_cannot_bound_is_411(client):
    response = post_raw(client, _one(), CONTENT_LENGTH="", HTTP_TRANSFER_ENCODING="chunked")

    assert response.status_code == 411
    assert response.json()["error"] == "length_required"
    assert not Event.objects.exists()


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("get", "/api/events/"),
        ("put", "/api/events/"),
        ("patch", "/api/events/"),
        ("delete", "/api/events/"),
        ("post", "/api/events/a/"),
        ("delete", "/api/events/a/"),
        ("get", "/api/snapshots/run/"),
        ("post", "/api/days/"),
        ("put", "/api/days/default/2026-11-20/"),
        ("post", "/api/metrics/"),
        ("post", "/api/health/"),
    ],
)
def test_wrong_methods_are_405_with_allow(operator_client, method, path):
    # An operator's token: permissions allow everything, so only the method is wrong.
    response = getattr(operator_client, method)(path)

    assert response.status_code == 405
    assert response.json()["error"] == "method_not_allowed"
    assert response["Allow"]


@pytest.mark.parametrize(
    ("path", "status"),
    [
        ("/api/events/a%00b/", 404),
        ("/api/days/de%00fault/2026-11-20/", 404),
        ("/api/days/?metric=a%00b", 400),
        ("/api/days/de%00fault/2026-11-20/snapshots/1/events/", 404),
        ("/api/days/default/2026-11-20/snapshots/99999999999999999999/events/", 404),
        ("/api/events/%ED%A0%80/", 404),
    ],
)
def test_nul_bytes_and_odd_values_in_paths_and_queries_are_4xx(client, path, status):
    response = client.get(path)

    assert response.status_code == status
    assert response.json()["error"]


def test_without_a_default_metric_an_event_must_name_its_metric(client):
    Metric.objects.update(is_default=False)

    response = post_raw(client, _one())

    assert response.status_code == 400
    assert response.json()["errors"][0]["field"] == "metric"


def test_html_form_posts_are_415_not_parsed(client):
    response = client.post("/api/events/", {"event_id": "a"})  # multipart form

    assert response.status_code == 415


def test_health_and_schema_refuse_writes_without_crashing():
    anonymous = Client(raise_request_exception=False)

    assert anonymous.post("/api/health/").status_code == 405
    assert anonymous.post("/api/schema/").status_code == 405
