"""Admin rows link to the pages; day totals filter by their status now."""

from __future__ import annotations

import datetime as dt

import pytest
from django.urls import reverse

from aggregation.models import DayTotal
from snapshots.models import Snapshot
from tests.conftest import event
from tests.pages.conftest import DAY_URL, FINAL_AT

pytestmark = pytest.mark.django_db


@pytest.fixture
def admin_client_(client, django_user_model, history):
    admin = django_user_model.objects.create_superuser("root", "root@example.com", "pw")
    client.force_login(admin)
    return client


@pytest.mark.parametrize(
    ("changelist", "link"),
    [
        ("aggregation_daytotal", f'href="{DAY_URL}">Day page'),
        ("snapshots_snapshot", f'href="{DAY_URL}snapshots/2/">What changed'),
        ("events_event", f'href="{DAY_URL}">Day page'),
        ("events_ingestbatch", ">Batch page"),
    ],
)
def test_admin_rows_link_to_the_pages(admin_client_, changelist, link):
    html = admin_client_.get(reverse(f"admin:{changelist}_changelist")).content.decode()

    assert link in html


def test_day_total_and_snapshot_change_pages_offer_view_on_site(admin_client_):
    day_total = DayTotal.objects.get()
    snapshot = Snapshot.objects.get(sequence=3)

    assert day_total.get_absolute_url() == DAY_URL
    assert snapshot.get_absolute_url() == f"{DAY_URL}snapshots/3/"
    for model, obj in ((DayTotal, day_total), (Snapshot, snapshot)):
        url = reverse(
            f"admin:{model._meta.app_label}_{model._meta.model_name}_change", args=[obj.pk]
        )
        assert "View on site" in admin_client_.get(url).content.decode()


@pytest.mark.parametrize(("status", "days"), [("live", 1), ("provisional", 0), ("final", 1)])
def test_day_totals_filter_by_status_now(admin_client_, pipeline, at, status, days):
    later = FINAL_AT + dt.timedelta(days=5)
    pipeline.post([event("later", later, "1")], at=later)
    at(later + dt.timedelta(hours=1))
    url = reverse("admin:aggregation_daytotal_changelist")

    page = admin_client_.get(url, {"status": status})

    assert page.context["cl"].result_count == days
