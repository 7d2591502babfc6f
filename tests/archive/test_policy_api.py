"""The retention policy: GET /api/metrics/ shows it; PATCH /api/metrics/{name}/ edits it."""

from __future__ import annotations

import datetime as dt

import pytest

from aggregation.models import Metric

pytestmark = [pytest.mark.django_db]


def test_metrics_list_carries_unit_and_retention(api_client) -> None:
    item = api_client.get("/api/metrics/").json()[0]
    assert item["unit"] == ""
    assert item["raw_retention_days"] is None


def test_operator_patches_every_editable_setting(operator_client) -> None:
    response = operator_client.patch(
        "/api/metrics/default/",
        {
            "description": "Orders",
            "unit": "EUR",
            "allowed_lateness_seconds": 7200,
            "too_late_policy": "quarantine",
            "raw_retention_days": 90,
        },
        format="json",
    )
    assert response.status_code == 200, response.content
    body = response.json()
    assert body["unit"] == "EUR"
    assert body["raw_retention_days"] == 90
    assert body["allowed_lateness_seconds"] == 7200
    metric = Metric.objects.get(name="default")
    assert metric.allowed_lateness == dt.timedelta(hours=2)
    assert metric.too_late_policy == "quarantine"
    assert metric.description == "Orders"


def test_retention_back_to_forever(operator_client) -> None:
    Metric.objects.filter(name="default").update(raw_retention_days=30)
    response = operator_client.patch(
        "/api/metrics/default/", {"raw_retention_days": None}, format="json"
    )
    assert response.status_code == 200
    assert Metric.objects.get(name="default").raw_retention_days is None


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"raw_retention_days": 0}, "raw_retention_days"),
        ({"raw_retention_days": "soon"}, "raw_retention_days"),
        ({"allowed_lateness_seconds": -1}, "allowed_lateness_seconds"),
        ({"too_late_policy": "ignore"}, "too_late_policy"),
        ({"unit": "x" * 33}, "unit"),
        ({"unit": 1.5e267}, "unit"),
        ({"description": 12}, "description"),
        ({"description": "a\x00b"}, "description"),
        ({"name": "renamed"}, "name"),
        ({"is_default": False}, "is_default"),
    ],
)
def test_bad_field_is_named(operator_client, body, field) -> None:
    response = operator_client.patch("/api/metrics/default/", body, format="json")
    assert response.status_code == 400
    assert response.json()["field"] == field
    assert Metric.objects.get(name="default").raw_retention_days is None


def test_unknown_metric_is_404(operator_client) -> None:
    response = operator_client.patch("/api/metrics/nope/", {"unit": "ms"}, format="json")
    assert response.status_code == 404


def test_non_operator_cannot_patch(api_client) -> None:
    response = api_client.patch("/api/metrics/default/", {"unit": "ms"}, format="json")
    assert response.status_code == 403
    assert Metric.objects.get(name="default").unit == ""
