"""Conditional GET (common.conditional) on GET /api/metrics/: an ETag from what the answer
shows, 304 when the client already has it, and never a 304 to a client refused the 200."""

from __future__ import annotations

import pytest
from rest_framework.test import APIClient

from aggregation.models import Metric
from common.conditional import etag_from
from tests.factories import MetricFactory

pytestmark = pytest.mark.django_db


def test_a_read_carries_an_etag_and_asks_the_client_to_revalidate(api_client):
    response = api_client.get("/api/metrics/")

    assert response.status_code == 200
    assert response["ETag"].startswith('"')
    assert len(response["ETag"]) == 34
    assert "private" in response["Cache-Control"]
    assert "no-cache" in response["Cache-Control"]
    assert "Authorization" in response["Vary"]


def test_the_same_etag_gets_304_without_a_body(api_client):
    etag = api_client.get("/api/metrics/")["ETag"]

    again = api_client.get("/api/metrics/", HTTP_IF_NONE_MATCH=etag)

    assert again.status_code == 304
    assert again.content == b""
    assert again["ETag"] == etag


def test_a_changed_metric_changes_the_etag_and_gets_the_new_list(api_client):
    metric = MetricFactory(name="orders")
    etag = api_client.get("/api/metrics/")["ETag"]
    Metric.objects.filter(pk=metric.pk).update(description="Orders placed.")

    changed = api_client.get("/api/metrics/", HTTP_IF_NONE_MATCH=etag)

    assert changed.status_code == 200
    assert changed["ETag"] != etag
    assert {"name": "orders", "description": "Orders placed."}.items() <= next(
        m for m in changed.json() if m["name"] == "orders"
    ).items()


def test_a_stale_or_foreign_etag_gets_the_full_answer(api_client):
    response = api_client.get("/api/metrics/", HTTP_IF_NONE_MATCH='"not-this-one"')

    assert response.status_code == 200
    assert isinstance(response.json(), list)


def test_a_client_without_a_key_gets_no_304_even_with_the_right_etag(api_client):
    etag = api_client.get("/api/metrics/")["ETag"]

    anonymous = APIClient().get("/api/metrics/", HTTP_IF_NONE_MATCH=etag)

    assert anonymous.status_code in (401, 403)


def test_etag_from_is_stable_and_tells_values_apart():
    assert etag_from("a", 1, None) == etag_from("a", 1, None)
    assert etag_from("a", 1) != etag_from("a1")
    assert etag_from(1) != etag_from("1")
