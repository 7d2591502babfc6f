"""The "What changed" page of a snapshot of an archived day reads the archive file and
shows the same groups, figures and events as before."""

from __future__ import annotations

import re

import pytest

from archive.services import archive_run_execute
from events.models import Event
from tests.archive.conftest import ARCHIVE_AT, DAY
from tests.factories import UserFactory

pytestmark = [pytest.mark.django_db]

DAY_URL = f"/days/default/{DAY.isoformat()}/"


def pages(client) -> dict[int, str]:
    html = {}
    for sequence in (1, 2, 3, 4):
        page = client.get(f"{DAY_URL}snapshots/{sequence}/", {"on_time-page": 1}).content
        # The CSRF token in the header's logout form changes per request.
        html[sequence] = re.sub(r'name="csrfmiddlewaretoken" value="[^"]+"', "", page.decode())
    return html


def test_what_changed_is_the_same_after_archival(archived_day, client) -> None:
    client.force_login(UserFactory(username="reader", is_staff=True))
    before = pages(client)
    assert "late1" in before[2]
    assert "restated1" in before[4]
    archive_run_execute(now=ARCHIVE_AT, trigger="command")
    assert not Event.objects.filter(day=DAY).exists()
    after = pages(client)
    for sequence in before:
        assert after[sequence] == before[sequence], sequence
