"""`snapagg day` and `snapagg explain` show the metric's unit (from GET /api/metrics/)."""

from __future__ import annotations

import pytest

from aggregation.models import Metric
from tests.cli.test_read import two_snapshots  # noqa: F401 (a fixture)

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def in_eur(two_snapshots):  # noqa: F811
    Metric.objects.filter(is_default=True).update(unit="EUR")
    return two_snapshots


def test_day_shows_the_unit_in_the_headline_and_the_table_header(cli, event_day, in_eur):
    result = cli("day", "default", event_day.isoformat())

    assert result.exit_code == 0, result.output
    assert result.stdout.startswith(f"default {event_day.isoformat()}: 22.75 EUR (provisional)")
    assert "Value (EUR)" in result.stdout


def test_explain_shows_the_unit_in_its_sums(cli, event_day, in_eur):
    result = cli("explain", "default", event_day.isoformat(), "2")

    assert result.exit_code == 0, result.output
    assert "2 events sum to 3.00 EUR; the snapshot changed the day by 3.00 EUR: they match." in (
        result.stdout
    )


def test_a_metric_without_a_unit_shows_bare_values(cli, event_day, two_snapshots):  # noqa: F811
    result = cli("day", "default", event_day.isoformat())

    assert result.stdout.startswith(f"default {event_day.isoformat()}: 22.75 (provisional)")
