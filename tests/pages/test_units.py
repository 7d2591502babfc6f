"""A metric's unit follows its values on every page (one formatting helper): the dashboard,
the day page, what changed, Periods and Sources, and their CSV exports."""

from __future__ import annotations

import datetime as dt
import re
from decimal import Decimal

import pytest

from aggregation.models import Metric
from common.formatting import figure, signed_figure
from tests.pages.conftest import DAY, FINAL_AT

pytestmark = pytest.mark.django_db
NBSP = "\N{NO-BREAK SPACE}"


def _text(html: str) -> str:
    return re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", html)).strip()


def test_a_figure_carries_its_unit_and_none_without_one():
    assert figure(Decimal("4690.63"), "EUR") == f"4,690.63{NBSP}EUR"
    assert signed_figure(Decimal("-5.5"), "ms") == f"\N{MINUS SIGN}5.50{NBSP}ms"
    assert figure(Decimal("4690.63"), "") == figure(Decimal("4690.63")) == "4,690.63"


@pytest.fixture
def in_eur(pipeline):
    Metric.objects.filter(is_default=True).update(unit="EUR")
    return pipeline


@pytest.fixture
def page(client, viewer, history, at, in_eur):
    at(FINAL_AT + dt.timedelta(hours=3))
    client.force_login(viewer)
    return lambda path: _text(client.get(path).content.decode())


def test_the_dashboard_shows_values_and_changes_with_the_unit(page):
    text = page("/")
    assert "25.00 EUR" in text
    assert "+10.00 EUR +7.00 EUR late, +3.00 EUR after final" in text


def test_the_day_page_shows_the_unit_in_headline_sentences_and_history(page):
    text = page(f"/days/default/{DAY}/")
    assert "At day end 15.00 EUR → now 25.00 EUR (+7.00 EUR late, +3.00 EUR after final)" in text
    assert "Changed by +7.00 EUR because 1 late event arrived." in text
    assert "First snapshot of the day: 15.00 EUR from 2 events." in text
    as_of = page(f"/days/default/{DAY}/?as_of=2026-11-21T02:30:00%2B00:00")
    assert "this day showed 15.00 EUR" in as_of


def test_what_changed_shows_the_unit(page):
    text = page(f"/days/default/{DAY}/snapshots/2/")
    assert "From 15.00 EUR to 22.00 EUR." in text
    assert "equals the change of +7.00 EUR" in text


def test_periods_and_sources_show_the_unit(page):
    query = f"?period=custom&day_from={DAY}&day_to={DAY}"
    assert "25.00 EUR" in page(f"/periods/{query}")
    sources = page(f"/sources/{query}")
    assert "10.00 EUR" in sources  # web


def test_csv_exports_keep_the_unit_the_page_shows(client, viewer, history, at, in_eur):
    at(FINAL_AT + dt.timedelta(hours=3))
    client.force_login(viewer)
    csv = client.get("/", {"export": "csv"}).content.decode()
    assert "25.00 EUR" in csv


def test_a_metric_without_a_unit_shows_bare_numbers(client, viewer, history, at):
    at(FINAL_AT + dt.timedelta(hours=3))
    client.force_login(viewer)
    text = _text(client.get(f"/days/default/{DAY}/").content.decode())
    assert "At day end 15.00 → now 25.00 (+7.00 late" in text
