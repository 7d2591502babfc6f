"""What schemathesis found when run from outside (issue 14): one 500 and seven places where
the schema and the API disagreed. Each case, both sides: the answer and the schema."""

from __future__ import annotations

import datetime as dt
import re

import pytest
from django.test import override_settings

from tests.conftest import T0, event

pytestmark = pytest.mark.django_db


@pytest.fixture
def schema(api_client) -> dict:
    return api_client.get("/api/schema/?format=json").json()


def _parameter(schema: dict, path: str, name: str) -> dict:
    operation = schema["paths"][path]["get"]
    return next(p for p in operation["parameters"] if p["name"] == name)["schema"]


def _event_in(schema: dict) -> dict:
    body = schema["paths"]["/api/events/"]["post"]["requestBody"]
    assert body["required"] is True
    return body["content"]["application/json"]["schema"]


def test_lateness_with_to_in_year_one_is_answered_not_a_500(api_client):
    response = api_client.get("/api/metrics/default/lateness/?to=0001-01-02")

    assert response.status_code == 200
    assert response.json()["from"] == "0001-01-01"


def test_lateness_with_to_before_from_is_an_empty_range_as_the_schema_allows(api_client):
    response = api_client.get("/api/metrics/default/lateness/?from=2026-11-20&to=2026-11-01")

    assert response.status_code == 200


@pytest.mark.parametrize("path", ["/api/days/", "/api/metrics/{name}/lateness/"])
def test_an_empty_to_is_taken_by_the_api_and_allowed_by_the_schema(api_client, schema, path):
    allowed = _parameter(schema, path, "to")["anyOf"]

    assert {"type": "string", "maxLength": 0} in allowed
    assert {"type": "string", "format": "date"} in allowed
    url = path.replace("{name}", "default")
    assert api_client.get(f"{url}?to=").status_code == 200


def test_to_before_1970_is_taken_by_the_days_list(api_client):
    assert api_client.get("/api/days/?to=1969-12-31").status_code == 200


def test_as_of_before_1970_is_answered_no_snapshot_yet_not_refused(api_client, pipeline):
    pipeline.post([event("a", T0)], at=T0)
    pipeline.snapshot(at=T0 + dt.timedelta(hours=1))

    response = api_client.get(f"/api/days/default/{T0.date()}/?as_of=1969-12-31T00:00:00Z")

    assert response.status_code == 404
    assert response.json()["error"] == "not_found"


@override_settings(INGEST_RATE_LIMIT=None)
def test_an_empty_source_is_taken_by_the_api_and_allowed_by_the_schema(api_client, schema):
    source = _event_in(schema)["properties"]["source"]

    assert "minLength" not in source
    assert re.search(source["pattern"], "")
    response = api_client.post("/api/events/", event("s", T0, "1", source=""), format="json")
    assert response.status_code == 202


@override_settings(INGEST_RATE_LIMIT=None)
def test_an_empty_value_is_refused_by_both(api_client, schema):
    value_string = _event_in(schema)["properties"]["value"]["oneOf"][1]

    assert not re.search(value_string["pattern"], "")
    assert re.search(value_string["pattern"], " -12.500000 ")
    response = api_client.post("/api/events/", event("v", T0, ""), format="json")
    assert response.status_code == 400


def test_an_event_time_before_1970_is_refused_by_both(schema):
    event_time = _event_in(schema)["properties"]["event_time"]

    assert not re.search(event_time["pattern"], "1969-12-31T23:00:00Z")
    assert re.search(event_time["pattern"], "1970-01-01T00:00:00Z")
    assert _event_in(schema)["additionalProperties"] is False


def test_as_of_before_1970_is_taken_by_the_aggregates(api_client, pipeline):
    pipeline.post([event("a", T0)], at=T0)
    pipeline.snapshot(at=T0 + dt.timedelta(hours=1))

    response = api_client.get(
        f"/api/aggregates/?from={T0.date()}&to={T0.date()}&as_of=1847-07-05T05:53:56-05:33"
    )

    assert response.status_code == 200
    assert response.json()["total"]["value"] == "0"
