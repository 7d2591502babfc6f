"""Posting events from the pages: the form for one, the CSV upload for up to 10,000. Both go
through `events_ingest`, so they accept and refuse exactly what the API does."""

from __future__ import annotations

import datetime as dt
from html import unescape

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.utils import timezone

from events.models import Event, IngestBatch, IngestChannel
from events.services.apply import batch_apply
from tests.conftest import T0
from tests.pages.test_dashboard import _cells, _text

pytestmark = pytest.mark.django_db

HEADER = "event_id,event_time,value,metric,source\n"


def _csv(text: str, name: str = "events.csv") -> SimpleUploadedFile:
    return SimpleUploadedFile(name, text.encode(), content_type="text/csv")


def _upload(client, text: str):
    return client.post("/events/upload/", {"file": _csv(text)}, follow=True)


def _form(**fields):
    return {
        "event_id": "order-1",
        "metric": "default",
        "event_time": "2026-11-20T10:00",
        "value": "12.50",
        "source": "web",
        **fields,
    }


def test_form_offers_a_fresh_event_id_and_the_default_metric(client, operator):
    client.force_login(operator)

    html = client.get("/events/new/").content.decode()

    assert 'name="event_id" value="form-' in html
    assert '<option value="default" selected>' in html
    assert 'type="datetime-local"' in html
    assert "Time in UTC." in html


def test_form_stores_the_event_and_says_what_happened(client, operator):
    client.force_login(operator)

    response = client.post("/events/new/", _form(), follow=True)
    html = response.content.decode()

    stored = Event.objects.select_related("batch").get(event_id="order-1")
    assert stored.event_time == dt.datetime(2026, 11, 20, 10, 0, tzinfo=dt.UTC)
    assert str(stored.value) == "12.500000"
    assert stored.source == "web"
    assert stored.batch.channel == IngestChannel.FORM
    assert stored.batch.submitted_by == operator
    assert "Accepted 1" in _text(html)
    assert 'href="/days/default/2026-11-20/"' in html
    assert f'href="/events/batches/{stored.batch_id}/"' in html


def test_form_shows_the_api_validation_error_on_the_field(client, operator):
    client.force_login(operator)

    html = client.post("/events/new/", _form(value="12.1234567"), follow=True).content.decode()

    assert "value has more than 6 decimal places." in html
    assert not Event.objects.exists()


def test_form_refuses_an_event_time_in_the_future(client, operator):
    client.force_login(operator)
    future = (timezone.now() + dt.timedelta(days=2)).strftime("%Y-%m-%dT%H:%M")

    html = client.post("/events/new/", _form(event_time=future), follow=True).content.decode()

    assert "event_time is in the future." in html
    assert not Event.objects.exists()


def test_form_reports_a_duplicate_and_a_conflict(client, operator):
    client.force_login(operator)
    client.post("/events/new/", _form(), follow=True)

    duplicate = _text(client.post("/events/new/", _form(), follow=True).content.decode())
    conflict = _text(client.post("/events/new/", _form(value="99"), follow=True).content.decode())

    assert "Duplicates 1" in duplicate
    assert "Accepted 0" in duplicate
    assert "Conflicts 1" in conflict
    assert "not counted" in conflict
    assert Event.objects.count() == 1


def test_csv_upload_keeps_good_lines_and_names_the_bad_one(client, operator):
    client.force_login(operator)
    text = HEADER + (
        "u1,2026-11-20T09:00:00Z,5,,web\n"
        "u2,2026-11-20T09:30:00Z,not-a-number,,web\n"
        "u3,2026-11-19T23:00:00+00:00,7.25,default,\n"
    )

    html = _upload(client, text).content.decode()
    errors = _cells(html.split('id="errors-heading"', 1)[1])

    assert sorted(Event.objects.values_list("event_id", flat=True)) == ["u1", "u3"]
    assert "Accepted 2" in _text(html)
    assert "Rejected 1" in _text(html)
    assert errors == [["3", "u2", "value", "value is not a decimal number."]]
    assert 'href="/days/default/2026-11-20/"' in html
    assert 'href="/days/default/2026-11-19/"' in html
    assert IngestBatch.objects.get().channel == IngestChannel.CSV


def test_csv_errors_are_the_errors_the_api_gives(client, operator, api_client):
    client.force_login(operator)
    bad = {"event_id": "x", "event_time": "2026-11-20T09:00:00", "value": "1"}

    api = api_client.post("/api/events/", {"events": [bad]}, format="json").json()
    html = _upload(client, "event_id,event_time,value\nx,2026-11-20T09:00:00,1\n").content.decode()

    assert api["errors"][0]["detail"] in html
    assert api["errors"][0]["field"] == "event_time"


def test_csv_line_numbers_count_the_header_and_lines_with_too_many_cells(client, operator):
    client.force_login(operator)
    text = HEADER + "u1,2026-11-20T09:00:00Z,5,,web,surprise\nu2,2026-11-20T09:00:00Z,5,,\n"

    html = _upload(client, text).content.decode()
    errors = _cells(html.split('id="errors-heading"', 1)[1])

    assert errors == [
        ["2", "u1", "line", "This line has more cells than the first line has columns."]
    ]
    assert list(Event.objects.values_list("event_id", flat=True)) == ["u2"]


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", "The submitted file is empty."),
        ("event_id,when,value\n", "Unknown column 'when'"),
        ("event_id,value\nx,1\n", "The first line has no 'event_time' column"),
        ("event_id,event_time,value,value\n", "Column 'value' appears twice"),
        (HEADER, "The file has a header line but no events."),
    ],
)
def test_csv_files_that_cannot_be_read_are_explained(client, operator, text, message):
    client.force_login(operator)

    html = _upload(client, text).content.decode()

    assert message in unescape(html)
    assert not IngestBatch.objects.exists()


def test_csv_must_be_utf8(client, operator):
    client.force_login(operator)

    response = client.post(
        "/events/upload/", {"file": SimpleUploadedFile("e.csv", "event_id,é\n".encode("latin-1"))}
    )

    assert "not UTF-8" in response.content.decode()


def test_csv_of_ten_thousand_lines_is_accepted_and_one_more_is_refused(client, operator):
    client.force_login(operator)
    lines = [f"big-{n},2026-11-20T09:00:00Z,1,,\n" for n in range(10_001)]

    too_many = _upload(client, HEADER + "".join(lines)).content.decode()
    accepted = _text(_upload(client, HEADER + "".join(lines[:10_000])).content.decode())

    assert "more than 10,000 events" in too_many
    assert "Accepted 10000" in accepted
    assert Event.objects.count() == 10_000


def test_batch_page_shows_waiting_then_applied(client, operator):
    client.force_login(operator)
    client.post("/events/new/", _form(), follow=True)
    batch = IngestBatch.objects.get()

    waiting = client.get(f"/events/batches/{batch.pk}/").content.decode()
    batch_apply(batch_id=batch.pk, now=T0)
    applied = client.get(f"/events/batches/{batch.pk}/").content.decode()

    assert "Waiting" in waiting
    assert 'http-equiv="refresh"' in waiting
    assert "Applied" in applied
    assert "waiting for the next snapshot run" in applied
    # Still something to happen (the snapshot), so it keeps reloading until then.
    assert 'http-equiv="refresh"' in applied
    assert 'href="/days/default/2026-11-20/"' in applied


def test_posting_redirects_to_a_result_page_that_a_refresh_does_not_resend(client, operator):
    client.force_login(operator)

    response = client.post("/events/new/", _form())
    result_url = response["Location"]
    first = _text(client.get(result_url).content.decode())
    again = _text(client.get(result_url).content.decode())

    assert response.status_code == 302
    assert result_url.startswith("/events/results/")
    assert "Accepted 1" in first
    assert again == first
    assert IngestBatch.objects.count() == 1


def test_csv_upload_redirects_too(client, operator):
    client.force_login(operator)

    upload = _csv(HEADER + "r1,2026-11-20T09:00:00Z,5,,\n")

    response = client.post("/events/upload/", {"file": upload})

    assert response.status_code == 302
    assert "Accepted 1" in _text(client.get(response["Location"]).content.decode())


def test_an_unknown_result_key_is_a_404(client, operator):
    client.force_login(operator)

    assert client.get("/events/results/nope/").status_code == 404


def test_csv_upload_names_duplicates_and_conflicts_by_line_and_id(client, operator):
    client.force_login(operator)
    _upload(client, HEADER + "d1,2026-11-20T09:00:00Z,5,,\nc1,2026-11-20T09:00:00Z,5,,\n")
    text = HEADER + (
        "n1,2026-11-20T09:00:00Z,1,,\n"
        "d1,2026-11-20T09:00:00Z,5,,\n"
        "c1,2026-11-20T09:00:00Z,6,,\n"
        "n1,2026-11-20T09:00:00Z,1,,\n"
    )

    html = _upload(client, text).content.decode()
    repeats = _cells(html.split('id="repeats-heading"', 1)[1].split("</table>", 1)[0])

    assert [row[:2] for row in repeats] == [["3", "d1"], ["4", "c1"], ["5", "n1"]]
    assert repeats[0][2].startswith("Duplicate")
    assert repeats[1][2].startswith("Conflict")
    assert repeats[2][2].startswith("Duplicate")


@pytest.mark.parametrize("delimiter", [";", "\t", ","])
def test_csv_delimiter_is_detected(client, operator, delimiter):
    client.force_login(operator)
    text = (HEADER + "s1,2026-11-20T09:00:00Z,12.5,,web\n").replace(",", delimiter)

    html = _upload(client, text).content.decode()

    assert "Accepted 1" in _text(html)
    assert Event.objects.get(event_id="s1").source == "web"


def test_a_wrong_header_says_which_separator_was_read(client, operator):
    client.force_login(operator)

    html = unescape(_upload(client, "id;time;amount\nx;y;1\n").content.decode())

    assert "Unknown column 'id'" in html
    assert "separated by semicolons" in html


def test_upload_form_says_what_arrival_time_means(client, operator):
    client.force_login(operator)

    html = client.get("/events/upload/").content.decode()

    assert "arrival_time is optional: when your system received the event" in html
    assert "semicolons or tabs" in html


def test_batch_page_links_the_snapshot_that_published_it_and_stops_reloading(client, operator):
    from snapshots.services.run import snapshot_run_execute

    client.force_login(operator)
    client.post("/events/new/", _form(event_time="2026-11-20T09:00"), follow=True)
    batch = IngestBatch.objects.get()
    batch_apply(batch_id=batch.pk, now=T0)
    snapshot_run_execute(now=T0 + dt.timedelta(minutes=1), trigger="manual")

    html = client.get(f"/events/batches/{batch.pk}/").content.decode()

    assert 'href="/days/default/2026-11-20/snapshots/1/"' in html
    assert "Published" in html
    assert 'http-equiv="refresh"' not in html
    assert "Pause reloading" not in html


def test_batch_page_reload_can_be_paused_and_resumed(client, operator):
    client.force_login(operator)
    client.post("/events/new/", _form(), follow=True)
    batch = IngestBatch.objects.get()

    running = client.get(f"/events/batches/{batch.pk}/").content.decode()
    paused = client.get(f"/events/batches/{batch.pk}/?paused").content.decode()

    assert f'href="/events/batches/{batch.pk}/?paused">Pause reloading' in running
    assert 'http-equiv="refresh"' not in paused
    assert f'href="/events/batches/{batch.pk}/">Resume reloading' in paused
